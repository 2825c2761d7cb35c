"""Bars to synthetic ticks: a deterministic intra-bar path that respects each bar's OHLCV.

The bundled market data are 30-minute OHLCV bars, not trades. To replay them as a tick stream every bar is
expanded into ``n`` ticks (default 8) along a fixed path:

* waypoints: ``open -> low -> high -> close`` when ``close >= open`` (an up bar dips first, then rallies),
  ``open -> high -> low -> close`` otherwise; waypoint ticks sit at indices ``0, round((n-1)/3),
  round(2(n-1)/3), n-1`` and the ticks between two waypoints are linearly interpolated (then clipped to
  ``[low, high]`` against float rounding), so every price lies in ``[low, high]`` and O, H, L, C are all hit
  exactly;
* time: tick ``j`` of a bar opening at ``ts`` (ns) with resolution ``R`` (s) is at ``ts + (j * R * 1e9) // n``
  (integer ns): the first tick is at the bar's open time, all ticks are strictly increasing and inside
  ``[ts, ts + R)``;
* quantity: ``volume / n`` each, the last tick takes the remainder ``volume - sum(others)`` so the bar volume
  is conserved to float rounding;
* side: the tick rule over the whole (per-symbol, time-ordered) stream: uptick = buy (+1), downtick = sell (-1),
  unchanged = previous side; a first tick with nothing before it is ``unknown`` (0) unless ``prev_side`` /
  ``prev_close`` are given (this makes generation in chunks identical to generation in one go);
* id: ``f"{venue}:{symbol}:{bar_ts_ns}:{j}"`` — a pure function of the input, so a replay re-emits the same ids;
* every tick is marked ``synthetic=True``.

Example:

>>> import numpy as np
>>> t = synthesize_ticks(np.array([0]), np.array([100.0]), np.array([110.0]), np.array([95.0]),
...                      np.array([105.0]), np.array([8.0]), resolution_s=1800, n=4, symbol="BTC")
>>> t.price.tolist(), t.qty.tolist(), t.side.tolist()
([100.0, 95.0, 110.0, 105.0], [2.0, 2.0, 2.0, 2.0], [0, -1, 1, -1])
>>> t.trade_id(1)
'synthetic:BTC:0:1'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from schemas.time import NS_PER_S

__all__ = [
    "SIDE_BUY",
    "SIDE_SELL",
    "SIDE_UNKNOWN",
    "SIDE_NAMES",
    "SyntheticTick",
    "SyntheticTicks",
    "path_layout",
    "synthesize_ticks",
    "synthesize_from_bars",
    "iter_synthetic_ticks",
    "merge_order",
    "make_trade_id",
]

SIDE_BUY: int = 1
SIDE_SELL: int = -1
SIDE_UNKNOWN: int = 0
#: side code (int8) -> Tick.side string
SIDE_NAMES: dict[int, str] = {SIDE_BUY: "buy", SIDE_SELL: "sell", SIDE_UNKNOWN: "unknown"}
DEFAULT_TICKS_PER_BAR = 8
DEFAULT_VENUE = "synthetic"


class SyntheticTick(NamedTuple):
    """A Tick-like record (same attribute names as ``schemas.events.Tick``); ``ts`` in ns UTC, ``qty`` in base units."""

    symbol: str
    ts: int
    price: float
    qty: float
    side: str
    trade_id: str
    venue: str
    synthetic: bool = True
    schema_version: int = 1


def make_trade_id(venue: str, symbol: str, bar_ts_ns: int, index: int) -> str:
    """Deterministic trade id of tick ``index`` of the bar opening at ``bar_ts_ns`` (ns)."""
    return f"{venue}:{symbol}:{bar_ts_ns}:{index}"


@dataclass(frozen=True, slots=True)
class SyntheticTicks:
    """Columnar synthetic ticks of one symbol, in time order.

    ``ts`` int64 ns UTC; ``price`` float64 (quote currency); ``qty`` float64 (base units); ``side`` int8
    (+1 buy, -1 sell, 0 unknown); ``bar_ts`` int64 ns (open time of the source bar); ``index`` int32 (position
    of the tick inside its bar). Trade ids are built on demand from ``(venue, symbol, bar_ts, index)``.
    """

    symbol: str
    venue: str
    ts: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    bar_ts: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def trade_id(self, i: int) -> str:
        """Trade id of row ``i``."""
        return make_trade_id(self.venue, self.symbol, int(self.bar_ts[i]), int(self.index[i]))

    def trade_ids(self) -> list[str]:
        """Trade ids of all rows (one Python string each)."""
        prefix = f"{self.venue}:{self.symbol}:"
        return [f"{prefix}{b}:{j}" for b, j in zip(self.bar_ts.tolist(), self.index.tolist(), strict=True)]

    def iter_ticks(self, factory: Callable[..., Any] = SyntheticTick) -> Iterator[Any]:
        """Yield one Tick-like object per row, built as ``factory(symbol=..., ts=..., ..., synthetic=True)``.

        Pass ``schemas.events.Tick`` as ``factory`` to get the wire type directly.
        """
        prefix = f"{self.venue}:{self.symbol}:"
        sym, venue, names = self.symbol, self.venue, SIDE_NAMES
        for ts, p, q, s, b, j in zip(
            self.ts.tolist(),
            self.price.tolist(),
            self.qty.tolist(),
            self.side.tolist(),
            self.bar_ts.tolist(),
            self.index.tolist(),
            strict=True,
        ):
            yield factory(
                symbol=sym,
                ts=ts,
                price=p,
                qty=q,
                side=names[s],
                trade_id=f"{prefix}{b}:{j}",
                venue=venue,
                synthetic=True,
            )


def path_layout(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tick position ``j`` in ``0..n-1``: the path segment (0, 1 or 2) and the weight in [0, 1] inside it.

    Waypoints (open, first extreme, second extreme, close) sit at ``0, k1, k2, n-1`` with
    ``k1 = floor((n-1)/3 + 0.5)`` and ``k2 = floor(2(n-1)/3 + 0.5)``. Requires ``n >= 4``.
    """
    if n < 4:
        raise ValueError(f"need at least 4 ticks per bar to visit open, high, low and close, got n={n}")
    k = np.array([0, int(np.floor((n - 1) / 3 + 0.5)), int(np.floor(2 * (n - 1) / 3 + 0.5)), n - 1])
    j = np.arange(n)
    seg = np.clip(np.searchsorted(k, j, side="right") - 1, 0, 2)
    w = (j - k[seg]) / (k[seg + 1] - k[seg])
    return seg, w


def _validate(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> None:
    allf = np.isfinite(open_) & np.isfinite(high) & np.isfinite(low) & np.isfinite(close) & np.isfinite(volume)
    bad = ~allf | (low > np.minimum(open_, close)) | (high < np.maximum(open_, close)) | (volume < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"inconsistent bar at row {i}: open={open_[i]} high={high[i]} low={low[i]} close={close[i]} "
            f"volume={volume[i]} (need finite values, low <= open,close <= high, volume >= 0)"
        )


def synthesize_ticks(
    ts_ns: ArrayLike,
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    *,
    resolution_s: int,
    n: int = DEFAULT_TICKS_PER_BAR,
    symbol: str,
    venue: str = DEFAULT_VENUE,
    prev_close: float | None = None,
    prev_side: int = SIDE_UNKNOWN,
) -> SyntheticTicks:
    """Expand the time-ordered bars of one symbol into ``n`` ticks each (vectorised, columnar output).

    ``ts_ns``: bar open times, int ns UTC, strictly increasing and at least ``resolution_s`` apart;
    prices in quote currency; ``volume`` in base units; ``resolution_s``: bar length in s (ticks stay inside
    ``[ts, ts + resolution_s)``); ``n``: ticks per bar (4 <= n <= resolution in ns).
    ``prev_close`` / ``prev_side``: last price and side code before the first bar, for the tick rule
    (lets a long history be generated chunk by chunk with identical output).
    Raises ``ValueError`` on an inconsistent bar (non-finite, high/low not bracketing open and close,
    negative volume) or on overlapping / unordered bar times.
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    o, h, lo, c, v = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close, volume))
    m = ts_ns.shape[0]
    if not (o.shape == h.shape == lo.shape == c.shape == v.shape == (m,)):
        raise ValueError("all bar columns must be 1-d arrays of the same length")
    res_ns = int(resolution_s) * NS_PER_S
    if res_ns <= 0 or n > res_ns:
        raise ValueError(f"need resolution_s > 0 and n <= resolution in ns, got {resolution_s=} {n=}")
    if prev_side not in SIDE_NAMES:
        raise ValueError(f"prev_side must be one of {sorted(SIDE_NAMES)}")
    seg, w = path_layout(n)
    _validate(o, h, lo, c, v)
    if m > 1 and np.any(np.diff(ts_ns) < res_ns):
        raise ValueError("bar times must be strictly increasing and at least one resolution apart")

    up = c >= o
    first = np.where(up, lo, h)
    second = np.where(up, h, lo)
    way = np.stack([o, first, second, c], axis=1)  # (m, 4)
    a = way[:, seg]
    b = way[:, seg + 1]
    price = a + w * (b - a)
    price = np.clip(price, lo[:, None], h[:, None])
    # exact waypoints (interpolation with w in {0, 1} is exact, but make it explicit)
    price[:, 0] = o
    price[:, -1] = c

    q = np.repeat((v / n)[:, None], n, axis=1)
    q[:, -1] = v - q[:, :-1].sum(axis=1)
    np.maximum(q, 0.0, out=q)  # guard -0.0 / -eps for zero volume

    offs = (np.arange(n, dtype=np.int64) * res_ns) // n
    ts = (ts_ns[:, None] + offs[None, :]).ravel()

    flat = price.ravel()
    side = _tick_rule(flat, prev_close, prev_side)
    return SyntheticTicks(
        symbol=symbol,
        venue=venue,
        ts=ts,
        price=flat,
        qty=q.ravel(),
        side=side,
        bar_ts=np.repeat(ts_ns, n),
        index=np.tile(np.arange(n, dtype=np.int32), m),
    )


def _tick_rule(price: np.ndarray, prev_price: float | None, prev_side: int) -> np.ndarray:
    """Side codes by the tick rule: +1 uptick, -1 downtick, unchanged = previous side (``prev_side`` at start)."""
    if price.size == 0:
        return np.zeros(0, dtype=np.int8)
    d = np.empty(price.size + 1, dtype=np.int8)
    d[0] = prev_side
    d[2:] = np.sign(np.diff(price))
    d[1] = 0 if prev_price is None else int(np.sign(price[0] - prev_price))
    idx = np.where(d != 0, np.arange(d.size), 0)
    np.maximum.accumulate(idx, out=idx)
    return d[idx][1:]


def _bar_columns(bars: Iterable[Any]) -> tuple[np.ndarray, ...]:
    rows = [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars]
    if not rows:
        return (np.zeros(0, np.int64),) + tuple(np.zeros(0) for _ in range(5))
    t, o, h, lo, c, v = zip(*rows, strict=True)
    return (
        np.asarray(t, np.int64),
        np.asarray(o, float),
        np.asarray(h, float),
        np.asarray(lo, float),
        np.asarray(c, float),
        np.asarray(v, float),
    )


def synthesize_from_bars(
    bars: Iterable[Any],
    *,
    resolution_s: int,
    n: int = DEFAULT_TICKS_PER_BAR,
    symbol: str | None = None,
    venue: str = DEFAULT_VENUE,
    prev_close: float | None = None,
    prev_side: int = SIDE_UNKNOWN,
) -> SyntheticTicks:
    """:func:`synthesize_ticks` for Bar-like objects (attributes ``ts, open, high, low, close, volume``; one symbol).

    ``symbol`` defaults to the first bar's ``symbol`` attribute.
    """
    bars = list(bars)
    if symbol is None:
        if not bars:
            raise ValueError("symbol is required when there are no bars")
        symbol = bars[0].symbol
    if any(getattr(b, "symbol", symbol) != symbol for b in bars):
        raise ValueError("synthesize_from_bars takes the bars of one symbol")
    t, o, h, lo, c, v = _bar_columns(bars)
    return synthesize_ticks(
        t,
        o,
        h,
        lo,
        c,
        v,
        resolution_s=resolution_s,
        n=n,
        symbol=symbol,
        venue=venue,
        prev_close=prev_close,
        prev_side=prev_side,
    )


def iter_synthetic_ticks(
    bars: Iterable[Any],
    *,
    resolution_s: int,
    n: int = DEFAULT_TICKS_PER_BAR,
    venue: str = DEFAULT_VENUE,
    factory: Callable[..., Any] = SyntheticTick,
    chunk_bars: int = 4096,
) -> Iterator[Any]:
    """Yield Tick-like objects for a (lazy, possibly unbounded) time-ordered stream of one symbol's Bar-like objects.

    Works in chunks of ``chunk_bars`` bars, carrying the tick-rule state across chunks, so the output equals
    ``synthesize_from_bars(all_bars).iter_ticks(factory)``.
    """
    prev_close: float | None = None
    prev_side = SIDE_UNKNOWN
    chunk: list[Any] = []
    it = iter(bars)
    while True:
        chunk.clear()
        for b in it:
            chunk.append(b)
            if len(chunk) >= chunk_bars:
                break
        if not chunk:
            return
        cols = synthesize_from_bars(
            chunk, resolution_s=resolution_s, n=n, venue=venue, prev_close=prev_close, prev_side=prev_side
        )
        yield from cols.iter_ticks(factory)
        prev_close = float(cols.price[-1])
        prev_side = int(cols.side[-1])


def merge_order(*ts_arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic interleaving of several time-ordered tick columns (e.g. one per symbol) by event time.

    Returns ``(source, row)`` int64 arrays: the k-th merged tick is ``row[k]`` of input ``source[k]``. Ties in
    ``ts`` are broken by the input position, so the merge is stable and reproducible.
    """
    if not ts_arrays:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ts = np.concatenate([np.asarray(a, np.int64) for a in ts_arrays])
    src = np.concatenate([np.full(len(a), i, np.int64) for i, a in enumerate(ts_arrays)])
    row = np.concatenate([np.arange(len(a), dtype=np.int64) for a in ts_arrays])
    order = np.lexsort((row, src, ts))
    return src[order], row[order]
