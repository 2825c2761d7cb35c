"""The sweep's grid: parameter grids, running a rule over every parameter set and symbol, and ranking the
results by their statistics (all from :mod:`operators.performance`, along the last axis).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from operators import performance as perf
from operators.sweep.rules import ema_spread, trend_positions, zscore_positions
from operators.sweep.simulation import BarArrays, SimConfig, SimResult, combine_equity, next_open_fill_prices, simulate

__all__ = ["SweepResult", "param_grid", "equity_stats", "sweep_trend", "sweep_zscore"]


@dataclass
class SweepResult:
    """``params``: name -> (P,) array; ``stats``: name -> (P,) array (see :func:`equity_stats`, plus ``n_fills``,
    ``fees_quote``, ``turnover_per_year``, ``hit_rate_frac``); ``ts`` (U,) ns and ``equity`` (P, U) the portfolio
    (sum over symbols) marks; ``per_symbol``: symbol -> SimResult."""

    params: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    ts: np.ndarray
    equity: np.ndarray
    per_symbol: dict[str, SimResult]

    def rows(self, order_by: str = "sharpe", top: int | None = None) -> list[dict[str, float]]:
        """Rows of params and stats, best ``order_by`` first (NaN last)."""
        key = np.nan_to_num(self.stats[order_by], nan=-np.inf)
        idx = np.argsort(-key, kind="stable")[:top]
        return [
            {**{k: float(v[i]) for k, v in self.params.items()}, **{k: float(v[i]) for k, v in self.stats.items()}}
            for i in idx
        ]


def param_grid(**axes: Sequence[float]) -> dict[str, np.ndarray]:
    """Cartesian product of the axes, as flat arrays (first axis slowest).

    >>> g = param_grid(entry=[1, 2], exit=[0, 0.5]); g["entry"].tolist(), g["exit"].tolist()
    ([1.0, 1.0, 2.0, 2.0], [0.0, 0.5, 0.0, 0.5])
    """
    names = list(axes)
    combos = list(itertools.product(*[list(axes[n]) for n in names]))
    return {n: np.array([c[i] for c in combos], dtype=np.float64) for i, n in enumerate(names)}


def equity_stats(equity: np.ndarray, period_s: float) -> dict[str, np.ndarray]:
    """Per row of ``equity`` (P, T) (quote, > 0), from :mod:`operators.performance` along the last axis:
    ``total_return_frac``, ``cagr_frac`` (over the T - 1 bars of ``period_s`` seconds), ``sharpe``,
    ``volatility_ann_frac``, ``max_drawdown_frac`` and ``calmar``.

    >>> s = equity_stats(np.array([[100.0, 110.0, 99.0, 120.0]]), 86_400)
    >>> round(float(s["sharpe"][0]), 4), float(s["max_drawdown_frac"][0])
    (8.5438, 0.1)
    """
    e = np.atleast_2d(np.asarray(equity, dtype=np.float64))
    ppy = perf.periods_per_year(period_s)
    r = perf.period_returns(e)
    mdd = perf.max_drawdown(e)
    cagr = perf.annual_growth(e[:, -1] / e[:, 0], perf.span_years(e.shape[1] - 1, period_s))
    return {
        "total_return_frac": perf.total_return(e),
        "cagr_frac": cagr,
        "sharpe": perf.sharpe(r, ppy),
        "volatility_ann_frac": perf.volatility(r, ppy),
        "max_drawdown_frac": mdd,
        "calmar": perf.calmar(cagr, mdd),
    }


def _add(xs: Sequence[np.ndarray]) -> np.ndarray:
    """Elementwise sum of the symbols' arrays, in symbol order (the order and rounding of ``sum``)."""
    out: np.ndarray = xs[0] + 0
    for x in xs[1:]:
        out = out + x
    return out


def _sweep(
    bars: Sequence[BarArrays],
    params: dict[str, np.ndarray],
    positions: Callable[[BarArrays], np.ndarray],
    cfg: SimConfig,
) -> SweepResult:
    per: dict[str, SimResult] = {}
    parts = []
    for b in bars:
        res = simulate(positions(b), b.close, next_open_fill_prices(b), cfg)
        per[b.symbol] = res
        parts.append((b.mark_ts, res.equity))
    ts, eq = combine_equity(parts)
    period = float(bars[0].resolution_s)
    stats = equity_stats(eq, period)
    years = perf.years_between(int(ts[0]), int(ts[-1]))
    notional = _add([r.traded_notional for r in per.values()])
    stats["n_fills"] = _add([r.n_fills for r in per.values()]).astype(np.float64)
    stats["fees_quote"] = _add([r.fees for r in per.values()])
    stats["turnover_per_year"] = np.asarray(perf.turnover(notional, eq.mean(axis=1), years))
    pnls = [np.concatenate([r.trade_pnls[p] for r in per.values()]) for p in range(eq.shape[0])]
    stats["hit_rate_frac"] = np.array([perf.hit_rate(pn) for pn in pnls])
    return SweepResult(params, stats, ts, eq, per)


def sweep_trend(
    bars: Sequence[BarArrays],
    entry: ArrayLike,
    exit: ArrayLike,
    cfg: SimConfig = SimConfig(),
    allow_short: bool = True,
) -> SweepResult:
    """The EMA-spread trend rule for every ``(entry[i], exit[i])`` (fractions of price, ``exit <= entry``) over every
    symbol's bars; the portfolio is the sum of the symbols' equity (``cfg.capital`` each)."""
    e, x = np.asarray(entry, dtype=np.float64), np.asarray(exit, dtype=np.float64)
    if e.shape != x.shape or (x > e).any() or (x < 0).any():
        raise ValueError("need equal-length entry/exit with 0 <= exit <= entry")
    return _sweep(bars, {"entry": e, "exit": x}, lambda b: trend_positions(ema_spread(b.close), e, x, allow_short), cfg)


def sweep_zscore(
    bars: Sequence[BarArrays],
    window: ArrayLike,
    entry_z: ArrayLike,
    exit_z: ArrayLike,
    cfg: SimConfig = SimConfig(),
    allow_short: bool = True,
) -> SweepResult:
    """The z-score mean-reversion rule for every ``(window[i], entry_z[i], exit_z[i])``."""
    w = np.asarray(window, dtype=np.float64)
    e, x = np.asarray(entry_z, dtype=np.float64), np.asarray(exit_z, dtype=np.float64)
    if not (w.shape == e.shape == x.shape) or (x >= e).any() or (w < 2).any():
        raise ValueError("need equal-length window/entry_z/exit_z with window >= 2 and exit_z < entry_z")
    return _sweep(
        bars, {"window": w, "entry_z": e, "exit_z": x}, lambda b: zscore_positions(b.close, w, e, x, allow_short), cfg
    )
