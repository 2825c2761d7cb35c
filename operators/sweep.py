"""Vectorised backtests for parameter sweeps: many parameter sets of a simple strategy at once, in numpy.

The model is the event-driven pipeline's (``operators.pipeline`` with ``PaperBroker``), so a sweep and a
``levibot backtest`` of the same parameters agree (``tests/test_sweep.py`` checks it):

* **Decision** at the close of bar ``t`` (event time ``ts[t] + resolution``), from information up to that close.
  The strategy's wanted position ``s_t`` is a fraction of equity in [−1, 1] (``{−1, 0, 1}`` for the rules here).
* **Order** only when ``s_t`` changes (the strategy emits an intent), sized like the pipeline's baseline risk:
  ``target_qty = s_t * fraction * max(E_t, 0) / close_t``, capped at ``max_position_frac * max(E_t, 0) / close_t``,
  ``delta = target_qty − held``; skipped when ``|delta| * close_t < min_notional``. ``E_t = cash + held * close_t``.
* **Execution** at the next bar: ``fill_price[t]`` (default the next bar's open, which is where the pipeline's
  broker fills with ``PaperConfig(latency_s=0)``: the first synthetic tick of a bar sits at its open time),
  moved ``slippage_bps`` against the order; fee ``fee_bps`` of the filled notional. The last bar decides nothing.
* **Marks**: equity ``cash + held * close_t`` at every bar close (the pipeline's equity marks).

Between trades the quantity held is constant (not a constant fraction), exactly as with a broker. The trade
recursion runs over the *trade ordinal* (a loop of at most "number of trades" steps, each a numpy operation on
all parameter sets); positions, marks and statistics are whole-array operations.

Positions of the two rules (hysteresis: enter beyond ``entry``, leave inside ``exit``, otherwise hold):

* trend (:func:`trend_positions`): the ``ema_spread`` feature (EMA12 − EMA26) / close of ``operators.features``
  (same numbers: :func:`ema_spread`), the rule of ``operators.strategies.EmaSpreadTrend``;
* mean reversion (:func:`zscore_positions`): rolling z-score of the close, the rule of
  ``operators.strategies.ZScoreReversion`` (without its optional stop).

>>> import numpy as np
>>> trend_positions(np.array([np.nan, 0.02, 0.005, 0.0, -0.03]), np.array([0.01]), np.array([0.002])).tolist()
[[0.0, 1.0, 1.0, 0.0, -1.0]]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from operators.features.core import PARAMS_V1
from schemas.time import NS_PER_S as NS

__all__ = [
    "NS",
    "SimConfig",
    "BarArrays",
    "SimResult",
    "SweepResult",
    "param_grid",
    "hysteresis_positions",
    "trend_positions",
    "ema_spread",
    "rolling_zscore_array",
    "zscore_positions",
    "next_open_fill_prices",
    "simulate",
    "equity_stats",
    "combine_equity",
    "sweep_trend",
    "sweep_zscore",
    "strategy_targets",
]

SECONDS_PER_YEAR = 365 * 86_400


@dataclass(frozen=True)
class SimConfig:
    """Sizing and costs, as ``operators.pipeline.PipelineConfig`` and ``PaperConfig``: ``capital`` (quote) per
    symbol; ``fraction``: position notional at full conviction, fraction of equity; ``max_position_frac``: cap,
    fraction of equity; ``min_notional``: smallest order (quote); ``fee_bps``, ``slippage_bps``: bps of
    notional / price."""

    capital: float = 100_000.0
    fraction: float = 0.5
    max_position_frac: float = 1.0
    min_notional: float = 10.0
    fee_bps: float = 7.5
    slippage_bps: float = 1.0


@dataclass(frozen=True)
class BarArrays:
    """One symbol's bars as arrays, time order: ``ts`` int64 ns (bar open, UTC), prices quote/base, ``volume``
    base units, ``resolution_s`` bar length (s)."""

    symbol: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    resolution_s: int

    @classmethod
    def from_columns(cls, symbol: str, cols: Mapping[str, Any], resolution_s: int) -> BarArrays:
        """From a mapping (or DataFrame) with ``ts, open, high, low, close, volume``."""
        f = lambda k: np.ascontiguousarray(np.asarray(cols[k], dtype=np.float64))  # noqa: E731
        return cls(
            symbol,
            np.asarray(cols["ts"], dtype=np.int64),
            f("open"),
            f("high"),
            f("low"),
            f("close"),
            f("volume"),
            int(resolution_s),
        )

    def __len__(self) -> int:
        return int(self.ts.size)

    @property
    def mark_ts(self) -> np.ndarray:
        """Bar close times (ns): when the pipeline decides and marks equity."""
        return self.ts + self.resolution_s * NS

    def slice(self, start: int, stop: int) -> BarArrays:
        """Rows ``[start, stop)``."""
        s = slice(start, stop)
        return BarArrays(
            self.symbol,
            self.ts[s],
            self.open[s],
            self.high[s],
            self.low[s],
            self.close[s],
            self.volume[s],
            self.resolution_s,
        )


@dataclass
class SimResult:
    """Per parameter set (rows): ``equity`` (P, T) marks at bar closes (quote); ``position`` (P, T) base units held
    at the mark; ``n_fills``, ``traded_notional`` (quote), ``fees`` (quote),
    ``trade_pnls`` list of arrays: P&L (quote) of each non-flat position segment, measured from the equity at
    the decision that opened it (its entry costs are in) to the equity at the decision that ended it (the exit's
    costs fall in the next segment) or the last mark — used for the hit rate. ``fill_bar`` (P, K) the bar of each
    decision that filled (ordinal ``k`` of the row's position changes; -1 where nothing filled) and ``fill_fee``
    (P, K) its fee (quote): :meth:`fee_marks` and :meth:`trades` split the fees per round trip."""

    equity: np.ndarray
    position: np.ndarray
    n_fills: np.ndarray
    traded_notional: np.ndarray
    fees: np.ndarray
    trade_pnls: list = field(default_factory=list)
    fill_bar: np.ndarray | None = None
    fill_fee: np.ndarray | None = None

    def fee_marks(self, row: int) -> np.ndarray:
        """(T,) fee paid by the fill that takes effect at each mark of parameter set ``row`` (quote; 0 where the
        position did not change): a decision at bar ``t`` fills at the next bar and shows at mark ``t + 1``."""
        out = np.zeros(self.equity.shape[1])
        if self.fill_bar is None or self.fill_fee is None:
            raise ValueError("this result keeps no fills (simulate() records them)")
        b, f = self.fill_bar[row], self.fill_fee[row]
        ok = b >= 0
        np.add.at(out, b[ok] + 1, f[ok])
        return out

    def trades(self, row: int, symbol: str, mark_ts: Any, strategy: str = "") -> list:
        """Round trips of parameter set ``row`` (:func:`operators.report.trades_from_positions` over its marks),
        each with the fees of its fills; a flip's fee split between the trade it closes and the one it opens in
        proportion to the quantities. Closed and open trades' fees add up to :attr:`fees` of the row."""
        from operators.report.trades import trades_from_positions

        return trades_from_positions(
            symbol, mark_ts, self.position[row], self.equity[row], strategy, fees=self.fee_marks(row)
        )


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


# ---------------------------------------------------------------------------------------------- positions


def hysteresis_positions(long_on: np.ndarray, short_on: np.ndarray, flat_on: np.ndarray) -> np.ndarray:
    """(P, T) positions from event masks: a bar with ``long_on`` sets +1, else ``short_on`` −1, else ``flat_on`` 0,
    else the previous position is held (0 before any event).

    >>> hysteresis_positions(np.array([[0, 1, 0, 0]], bool), np.array([[0, 0, 0, 1]], bool),
    ...                      np.array([[1, 0, 0, 0]], bool)).tolist()
    [[0.0, 1.0, 1.0, -1.0]]
    """
    code = np.full(long_on.shape, np.nan)
    code[flat_on] = 0.0
    code[short_on] = -1.0
    code[long_on] = 1.0
    T = code.shape[1]
    idx = np.where(np.isnan(code), -1, np.arange(T))
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(code, np.maximum(idx, 0), axis=1)
    out[idx < 0] = 0.0
    return out


def trend_positions(spread: np.ndarray, entry: np.ndarray, exit: np.ndarray, allow_short: bool = True) -> np.ndarray:
    """``EmaSpreadTrend`` for every (entry, exit) pair: long when ``spread > entry``, short when ``< −entry`` (flat
    when shorts are off), flat when ``|spread| < exit``; ``spread`` (T,) fraction of price, NaN = not warm."""
    s = np.asarray(spread, dtype=np.float64)[None, :]
    e = np.asarray(entry, dtype=np.float64)[:, None]
    x = np.asarray(exit, dtype=np.float64)[:, None]
    up = s > e
    dn = (s < -e) & ~up
    flat = (np.abs(s) < x) & ~up & ~dn
    if not allow_short:
        flat |= dn
        dn = np.zeros_like(dn)
    return hysteresis_positions(up, dn, flat)


def ema_spread(close: np.ndarray, params: Mapping[str, Any] = PARAMS_V1) -> np.ndarray:
    """The ``ema_spread`` feature of ``operators.features`` (core v1) over closes, NaN until the whole feature vector
    is warm (so the same bars decide as in the pipeline); bit-identical to ``compute_features_array``'s column
    (same arithmetic: EMA with ``alpha = 2/(n+1)`` seeded by the ``math.fsum`` SMA of the first n closes).

    >>> ema_spread(np.linspace(100.0, 130.0, 31))[24:27].round(6).tolist()
    [nan, 0.056, 0.055556]
    """
    c = np.asarray(close, dtype=np.float64).tolist()
    out = np.full(len(c), np.nan)
    fast, slow = int(params["ema_fast"]), int(params["ema_slow"])
    warm = max(
        slow - 1,
        int(params["rv_window"]),
        int(params["skew_window"]),
        int(params["rsi_period"]),
        int(params["volz_window"]) - 1,
    )

    def ema(n: int) -> list:
        a = 2.0 / (n + 1)
        b = 1.0 - a
        vals: list = [None] * len(c)
        if len(c) < n:
            return vals
        v = math.fsum(c[:n]) / n
        vals[n - 1] = v
        for i in range(n, len(c)):
            v = a * c[i] + b * v
            vals[i] = v
        return vals

    ef, es = ema(fast), ema(slow)
    for i in range(warm, len(c)):
        out[i] = (ef[i] - es[i]) / c[i]
    return out


def rolling_zscore_array(close: np.ndarray, window: int) -> np.ndarray:
    """``(close − SMA) / SD`` (ddof = 1) over the last ``window`` closes including the current one; NaN before the
    window is full or where SD = 0. The numbers of ``ZScoreReversion`` up to float rounding (1e-12 relative).

    >>> rolling_zscore_array(np.array([10.0, 10.0, 7.0, 8.5]), 3).round(4).tolist()
    [nan, nan, -1.1547, 0.0]
    """
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.size, np.nan)
    if c.size < window:
        return out
    w = np.lib.stride_tricks.sliding_window_view(c, window)
    m = w.mean(axis=1)
    sd = np.sqrt(((w - m[:, None]) ** 2).sum(axis=1) / (window - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (c[window - 1 :] - m) / sd, np.nan)
    out[window - 1 :] = z
    return out


def zscore_positions(
    close: np.ndarray, window: np.ndarray, entry_z: np.ndarray, exit_z: np.ndarray, allow_short: bool = True
) -> np.ndarray:
    """``ZScoreReversion`` for every (window, entry_z, exit_z): long when ``z <= −entry_z``, short when
    ``z >= entry_z``, flat when ``|z| <= exit_z``, else hold."""
    window = np.asarray(window).astype(np.int64)
    P = window.size
    out = np.zeros((P, np.asarray(close).size))
    for w in np.unique(window):
        rows = np.nonzero(window == w)[0]
        z = rolling_zscore_array(close, int(w))[None, :]
        e = np.asarray(entry_z, dtype=np.float64)[rows][:, None]
        x = np.asarray(exit_z, dtype=np.float64)[rows][:, None]
        up = z <= -e
        dn = (z >= e) & ~up
        flat = (np.abs(z) <= x) & ~up & ~dn
        if not allow_short:
            flat |= dn
            dn = np.zeros_like(dn)
        out[rows] = hysteresis_positions(up, dn, flat)
    return out


# ---------------------------------------------------------------------------------------------- simulation


def next_open_fill_prices(bars: BarArrays) -> np.ndarray:
    """Fill price of a decision at bar ``t``: the open of bar ``t + 1`` (NaN for the last bar)."""
    fp = np.full(len(bars), np.nan)
    fp[:-1] = bars.open[1:]
    return fp


def simulate(targets: np.ndarray, close: np.ndarray, fill_price: np.ndarray, cfg: SimConfig = SimConfig()) -> SimResult:
    """Equity of every row of ``targets`` (P, T) (wanted position, fraction of equity, at each bar close) with the
    sizing, fills and costs of the module docstring. ``fill_price`` (T,): where a decision at bar t fills.

    >>> r = simulate(np.array([[0.0, 1.0, 1.0, 0.0]]), np.array([100.0, 100.0, 110.0, 110.0]),
    ...              np.array([100.0, 100.0, 110.0, np.nan]), SimConfig(capital=1000, fraction=1, fee_bps=0,
    ...              slippage_bps=0))
    >>> r.equity.tolist(), r.position.tolist()
    ([[1000.0, 1000.0, 1100.0, 1100.0]], [[0.0, 0.0, 10.0, 10.0]])
    """
    tg = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    c = np.asarray(close, dtype=np.float64)
    fp = np.asarray(fill_price, dtype=np.float64)
    P, T = tg.shape
    chg = np.empty((P, T), dtype=bool)
    chg[:, 0] = tg[:, 0] != 0.0
    chg[:, 1:] = tg[:, 1:] != tg[:, :-1]
    chg[:, T - 1] = False  # the last bar decides nothing (no later tick to fill at)
    chg &= np.isfinite(fp)[None, :]
    counts = chg.sum(axis=1)
    K = int(counts.max()) if P else 0
    rows, cols = np.nonzero(chg)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    idx = np.zeros((P, max(K, 1)), dtype=np.int64)
    idx[rows, np.arange(rows.size) - starts[rows]] = cols
    ar = np.arange(P)
    cash = np.full(P, float(cfg.capital))
    q = np.zeros(P)
    cash_after = np.empty((P, max(K, 1)))
    q_after = np.empty((P, max(K, 1)))
    e_before = np.empty((P, max(K, 1)))
    fill_bar = np.full((P, max(K, 1)), -1, dtype=np.int64)
    fill_fee = np.zeros((P, max(K, 1)))
    n_fills = np.zeros(P, dtype=np.int64)
    notional = np.zeros(P)
    fees = np.zeros(P)
    f, mpf, mn = cfg.fraction, cfg.max_position_frac, cfg.min_notional
    slip, fee_bps = cfg.slippage_bps, cfg.fee_bps
    for k in range(K):
        act = counts > k
        i = idx[:, k]
        ci = c[i]
        eq = cash + q * ci
        e_before[:, k] = eq
        ep = np.maximum(eq, 0.0)
        want = tg[ar, i] * f * ep / ci
        cap = mpf * ep / ci
        want = np.where(np.abs(want) > cap, np.copysign(cap, want), want)
        delta = want - q
        ok = act & ~(np.abs(delta) * ci < mn)
        sign = np.where(delta > 0, 1.0, -1.0)
        px = fp[i] * (1.0 + sign * slip / 1e4)
        qty = np.abs(delta)
        fee = px * qty * fee_bps / 1e4
        signed = sign * qty
        newq = q + signed
        newq = np.where(np.abs(newq) < 1e-12, 0.0, newq)
        cash = np.where(ok, cash - (signed * px + fee), cash)
        q = np.where(ok, newq, q)
        n_fills += ok
        notional += np.where(ok, px * qty, 0.0)
        fees += np.where(ok, fee, 0.0)
        fill_bar[:, k] = np.where(ok, i, -1)
        fill_fee[:, k] = np.where(ok, fee, 0.0)
        cash_after[:, k] = cash
        q_after[:, k] = q
    # state after the trades decided before bar t (filled before its close); column 0 = the initial state
    nb = np.zeros((P, T), dtype=np.int64)
    np.cumsum(chg[:, :-1], axis=1, out=nb[:, 1:])
    nb += (np.arange(P) * (K + 1))[:, None]
    cash_tab = np.concatenate([np.full((P, 1), float(cfg.capital)), cash_after[:, :K]], axis=1).ravel()
    q_tab = np.concatenate([np.zeros((P, 1)), q_after[:, :K]], axis=1).ravel()
    q_t = q_tab[nb]
    equity = cash_tab[nb]
    equity += q_t * c[None, :]
    pnls = []
    for p in range(P):
        n = int(counts[p])
        if n == 0:
            pnls.append(np.zeros(0))
            continue
        ends = np.append(e_before[p, 1:n], equity[p, -1])
        seg = ends - e_before[p, :n]
        pnls.append(seg[q_after[p, :n] != 0.0])
    return SimResult(equity, q_t, n_fills, notional, fees, pnls, fill_bar[:, :K], fill_fee[:, :K])


# ---------------------------------------------------------------------------------------------- statistics


def equity_stats(equity: np.ndarray, period_s: float) -> dict[str, np.ndarray]:
    """Per row of ``equity`` (P, T) (quote, > 0): ``total_return_frac``, ``sharpe`` (mean/std(ddof=1) of simple
    returns × sqrt(periods per year), NaN when flat), ``volatility_ann_frac``, ``max_drawdown_frac``,
    ``cagr_frac`` and ``calmar`` — the formulas of ``operators.performance``.

    >>> s = equity_stats(np.array([[100.0, 110.0, 99.0, 120.0]]), 86_400)
    >>> round(float(s["sharpe"][0]), 4), float(s["max_drawdown_frac"][0])
    (8.5438, 0.1)
    """
    e = np.atleast_2d(np.asarray(equity, dtype=np.float64))
    ppy = SECONDS_PER_YEAR / period_s
    r = e[:, 1:] / e[:, :-1] - 1.0
    mu = r.mean(axis=1)
    sd = r.std(axis=1, ddof=1) if r.shape[1] >= 2 else np.full(e.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 1e-12 * np.abs(mu), mu / sd * math.sqrt(ppy), np.nan)
        peak = np.maximum.accumulate(e, axis=1)
        mdd = ((peak - e) / peak).max(axis=1)
        years = (e.shape[1] - 1) * period_s / SECONDS_PER_YEAR
        growth = e[:, -1] / e[:, 0]
        cagr = growth ** (1.0 / years) - 1.0 if years > 0 else np.full(e.shape[0], np.nan)
        calmar = np.where(mdd > 0, cagr / mdd, np.nan)
    return {
        "total_return_frac": growth - 1.0,
        "cagr_frac": cagr,
        "sharpe": sharpe,
        "volatility_ann_frac": sd * math.sqrt(ppy),
        "max_drawdown_frac": mdd,
        "calmar": calmar,
    }


def combine_equity(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum of per-symbol equity curves ``(ts (T_s,), equity (P, T_s))`` on the union of their times, each symbol at
    its latest mark (counted from its first mark on) — ``operators.portfolio.combine_marks`` for P curves at once."""
    u = np.unique(np.concatenate([ts for ts, _ in parts]))
    P = parts[0][1].shape[0]
    tot = np.zeros((P, u.size))
    for ts, eq in parts:
        pos = np.searchsorted(ts, u, side="right")  # 0 = before the first mark: counts 0
        if pos[0] > 0:
            tot += np.take(eq, pos - 1, axis=1)
        else:
            tot += np.take(np.concatenate([np.zeros((P, 1)), eq], axis=1), pos, axis=1)
    return u, tot


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
    years = (ts[-1] - ts[0]) / NS / SECONDS_PER_YEAR
    notional = sum(r.traded_notional for r in per.values())
    stats["n_fills"] = sum(r.n_fills for r in per.values()).astype(np.float64)
    stats["fees_quote"] = sum(r.fees for r in per.values())
    stats["turnover_per_year"] = notional / eq.mean(axis=1) / years if years > 0 else np.full(eq.shape[0], np.nan)
    hits = []
    for p in range(eq.shape[0]):
        pn = np.concatenate([r.trade_pnls[p] for r in per.values()])
        hits.append(float((pn > 0).mean()) if pn.size else np.nan)
    stats["hit_rate_frac"] = np.array(hits)
    return SweepResult(params, stats, ts, eq, per)


def sweep_trend(
    bars: Sequence[BarArrays],
    entry: Sequence[float],
    exit: Sequence[float],
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
    window: Sequence[int],
    entry_z: Sequence[float],
    exit_z: Sequence[float],
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


def strategy_targets(
    strategy: Any,
    bars: BarArrays,
    features: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    signals: Sequence[Any] = (),
) -> np.ndarray:
    """Run an event-driven strategy (any of ``operators.strategies``, or an ``Orchestrator``) over ``bars`` and
    return its wanted position after each bar close (T,), for :func:`simulate`. ``features`` (T, F) rows (NaN row
    = not warm: None is passed), ``scores`` (T,) probabilities (NaN = none), ``signals``: ``Signal`` events, each
    delivered (``on_signal``) before the first bar closing after its ``ts``."""
    T = len(bars)
    out = np.zeros(T)
    cur = 0.0
    sigs = sorted(signals, key=lambda s: s.ts)
    j = 0
    mts = bars.mark_ts.tolist()
    closes = bars.close.tolist()

    class _B:
        __slots__ = ("open", "high", "low", "close", "volume")

    bar = _B()
    for t in range(T):
        while j < len(sigs) and sigs[j].ts <= mts[t]:
            it = strategy.on_signal(sigs[j]) if hasattr(strategy, "on_signal") else None
            if it is not None:
                cur = it.target
            j += 1
        bar.open, bar.high, bar.low = bars.open[t], bars.high[t], bars.low[t]
        bar.close, bar.volume = closes[t], bars.volume[t]
        fv = None
        if features is not None and not np.isnan(features[t]).any():
            fv = features[t].tolist()
        sc = None if scores is None or not scores[t] == scores[t] else float(scores[t])
        it = strategy.on_bar(bars.symbol, mts[t], closes[t], fv, score=sc, bar=bar)
        if it is not None:
            cur = it.target
        out[t] = cur
    return out
