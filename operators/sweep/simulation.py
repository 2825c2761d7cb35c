"""The sweep's simulation: positions, fills, fees and equity marks of many parameter sets at once, in numpy.

The model is the event-driven pipeline's (``operators.pipeline`` with ``PaperBroker``), so a sweep and a
``levibot backtest`` of the same parameters agree (``tests/unit/operators/sweep/test_sweep.py`` checks it):

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from schemas.time import NS_PER_S as NS

__all__ = ["NS", "SimConfig", "BarArrays", "SimResult", "next_open_fill_prices", "simulate", "combine_equity"]


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


class _Columns(Protocol):
    """Columns by name, as a DataFrame gives them (``frame["close"]``)."""

    def __getitem__(self, key: str, /) -> Any: ...


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
    def from_columns(cls, symbol: str, cols: Mapping[str, Any] | _Columns, resolution_s: int) -> BarArrays:
        """From a mapping (or DataFrame) with ``ts, open, high, low, close, volume``."""

        def f(k: str) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(cols[k], dtype=np.float64))

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
    trade_pnls: list[np.ndarray] = field(default_factory=list)
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

    def trades(self, row: int, symbol: str, mark_ts: Any, strategy: str = "") -> list[Any]:
        """Round trips of parameter set ``row`` (:func:`operators.report.trades_from_positions` over its marks),
        each with the fees of its fills; a flip's fee split between the trade it closes and the one it opens in
        proportion to the quantities. Closed and open trades' fees add up to :attr:`fees` of the row."""
        from operators.report.trades import trades_from_positions

        return trades_from_positions(
            symbol, mark_ts, self.position[row], self.equity[row], strategy, fees=self.fee_marks(row)
        )


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
