"""Event-time OHLCV bars from ticks, per symbol, batch-oriented; coarser bars derived from base bars.

Windows: a bar of resolution ``R`` (s) covers event time ``[start, start + R)``, ``start = floor(ts / R) * R``
(ns since the Unix epoch, UTC); the bar's ``ts`` is its ``start``.

Watermark: ``max(max event time seen - allowed_lateness, last advance() argument)`` (ns). A window is closed
(and its bar emitted, once) when ``watermark >= start + R``. Only open windows are kept in the state.

Late data: a tick whose window is already closed is *late*. It is always counted (``late_count``) and returned
to the caller (``AggResult.late``) for routing to a late stream / dead letter; it is never lost silently.

* ``late_policy="drop"`` (default): the late tick is not applied.
* ``late_policy="correct"``: if its window closed no more than ``correction_horizon_s`` before the current
  watermark boundary, the tick is folded into that window and a corrected bar is emitted at the end of the
  ``add`` call with ``revision = previous revision + 1`` (one correction per touched window per call). The
  accumulators of recently closed windows are kept for that horizon only (bounded state). Older ticks are
  counted in ``late_dropped`` and not applied. ``revision > 0`` means "emitted after the window closed";
  stores should upsert by ``(symbol, ts, resolution_s)`` keeping the highest revision; streaming consumers
  (features, Resampler) use revision 0 and ignore corrections.

Inside an open window: ``open`` is the price of the earliest tick in event time (ties: first arrived),
``close`` the latest (ties: last arrived), so out-of-order ticks within the lateness bound do not change a
bar compared to sorted input. ``vwap = sum(price*qty) / volume`` (clipped to [low, high]); for a zero-volume bar ``vwap = close``.
``buy_volume``/``sell_volume`` sum the quantities of ticks with side buy/sell (``unknown`` counts in neither).
``synthetic`` is true if any tick in the bar is synthetic.

Empty intervals: no bar is emitted by default. With ``fill_empty=True`` every interval between two bars
(and up to the watermark) gets a flat bar at the previous close: volume 0, trade_count 0, vwap = close,
``synthetic=True`` (it is made up, not traded; as ``schemas.events.Bar`` specifies for empty bars).

The result of a sequence of ``add`` calls does not depend on how the tick stream is split into batches
(with ``late_policy="correct"`` the latest revision of every bar does not; the number of revisions may).

Example:

>>> from collections import namedtuple
>>> T = namedtuple("T", "symbol ts price qty side")
>>> agg = BarAggregator("BTC", resolution_s=1)
>>> r = agg.add([T("BTC", 0, 10.0, 1.0, "buy"), T("BTC", 500_000_000, 12.0, 3.0, "sell"),
...              T("BTC", 1_000_000_000, 11.0, 1.0, "buy")])
>>> [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.buy_volume, b.vwap) for b in r.bars]
[(0, 10.0, 12.0, 10.0, 12.0, 4.0, 1.0, 11.5)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from itertools import repeat
from typing import Any, Literal, NamedTuple

import numpy as np

from schemas.time import NS_PER_S

__all__ = [
    "BarRecord",
    "BarColumns",
    "AggResult",
    "BarAggregator",
    "MultiBarAggregator",
    "Resampler",
    "resample_bars",
    "aggregate_ticks",
]

LatePolicy = Literal["drop", "correct"]
_SIDE_CODE = {"buy": 1, "sell": -1, "unknown": 0}

# accumulator slots (a plain list per window: cheap to update, small to pickle)
_O, _H, _L, _C, _V, _BV, _SV, _PV, _N, _OTS, _CTS, _SYN = range(12)


class BarRecord(NamedTuple):
    """One OHLCV bar; field names follow ``schemas.events.Bar`` plus ``revision``.

    ``ts``: window start, ns UTC; ``resolution_s``: s; prices in quote currency; volumes in base units;
    ``vwap`` quote currency; ``trade_count``: ticks; ``revision``: 0 for the on-time bar, >0 for corrections.
    """

    symbol: str
    ts: int
    resolution_s: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    buy_volume: float
    sell_volume: float
    vwap: float
    trade_count: int
    synthetic: bool = False
    revision: int = 0

    @property
    def schema_version(self) -> int:
        """The ``schemas.events.Bar`` version a record stands for (a constant, not a field), so that a
        column-oriented store can take records in place of ``Bar`` events."""
        return 1

    def as_kwargs(self, include_revision: bool = False) -> dict[str, Any]:
        """Fields as a dict, e.g. ``schemas.events.Bar(**rec.as_kwargs())``."""
        d = self._asdict()
        if not include_revision:
            del d["revision"]
        return d


class AggResult(NamedTuple):
    """Output of one ``add``/``advance`` call.

    ``bars``: closed bars (window order) followed by corrections; ``late``: the late ticks (the tick objects for
    ``add``, an int64 array of row indices for ``add_columns``).
    """

    bars: list[BarRecord]
    late: Any


def _bar(symbol: str, start: int, res_s: int, a: list[Any], revision: int = 0) -> BarRecord:
    v = a[_V]
    vwap = min(max(a[_PV] / v, a[_L]), a[_H]) if v > 0 else a[_C]  # clip: float rounding / subnormal qty
    return BarRecord(
        symbol, start, res_s, a[_O], a[_H], a[_L], a[_C], v, a[_BV], a[_SV], vwap, a[_N], a[_SYN], revision
    )


_BAR_FLOATS = ("open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "vwap")


class BarColumns:
    """Bars of one symbol and one resolution as columns, in window order: ``ts`` (int64 ns window starts), the
    float64 columns of :class:`BarRecord` (``open`` … ``vwap``), ``trade_count`` (int64), ``synthetic`` (bool) and
    ``revision`` (int64). :meth:`records` builds the :class:`BarRecord` rows (only for what leaves a stage)."""

    __slots__ = (
        "symbol",
        "resolution_s",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "buy_volume",
        "sell_volume",
        "vwap",
        "trade_count",
        "synthetic",
        "revision",
    )

    def __init__(
        self,
        symbol: str,
        resolution_s: int,
        ts: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        buy_volume: np.ndarray,
        sell_volume: np.ndarray,
        vwap: np.ndarray,
        trade_count: np.ndarray,
        synthetic: np.ndarray,
        revision: np.ndarray | None = None,
    ) -> None:
        self.symbol = symbol
        self.resolution_s = int(resolution_s)
        self.ts, self.open, self.high, self.low, self.close = ts, open, high, low, close
        self.volume, self.buy_volume, self.sell_volume, self.vwap = volume, buy_volume, sell_volume, vwap
        self.trade_count, self.synthetic = trade_count, synthetic
        self.revision = revision if revision is not None else np.zeros(len(ts), np.int64)

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls, symbol: str, resolution_s: int) -> BarColumns:
        f = np.zeros(0)
        return cls(
            symbol,
            resolution_s,
            np.zeros(0, np.int64),
            f,
            f,
            f,
            f,
            f,
            f,
            f,
            f,
            np.zeros(0, np.int64),
            np.zeros(0, bool),
        )

    @classmethod
    def from_records(cls, symbol: str, resolution_s: int, bars: Sequence[BarRecord]) -> BarColumns:
        """Columns of ``bars`` (all of ``symbol`` at ``resolution_s``)."""
        if not bars:
            return cls.empty(symbol, resolution_s)
        cols = list(zip(*bars, strict=True))
        fl = [np.asarray(cols[i], np.float64) for i in range(3, 11)]
        return cls(
            symbol,
            resolution_s,
            np.asarray(cols[1], np.int64),
            fl[0],
            fl[1],
            fl[2],
            fl[3],
            fl[4],
            fl[5],
            fl[6],
            fl[7],
            np.asarray(cols[11], np.int64),
            np.asarray(cols[12], bool),
            np.asarray(cols[13], np.int64),
        )

    def take(self, idx: Any) -> BarColumns:
        """The rows ``idx`` (a slice, mask or index array)."""
        return BarColumns(
            self.symbol,
            self.resolution_s,
            self.ts[idx],
            self.open[idx],
            self.high[idx],
            self.low[idx],
            self.close[idx],
            self.volume[idx],
            self.buy_volume[idx],
            self.sell_volume[idx],
            self.vwap[idx],
            self.trade_count[idx],
            self.synthetic[idx],
            self.revision[idx],
        )

    @staticmethod
    def concat(parts: Sequence[BarColumns]) -> BarColumns:
        """The rows of ``parts`` one after the other (same symbol and resolution; at least one part)."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        p0 = parts[0]
        return BarColumns(
            p0.symbol,
            p0.resolution_s,
            *(np.concatenate([getattr(p, n) for p in parts]) for n in BarColumns.__slots__[2:]),
        )

    def records(self) -> list[BarRecord]:
        """The bars as :class:`BarRecord` rows (Python numbers)."""
        n = len(self.ts)
        if not n:
            return []
        # tuple.__new__ straight from the zipped columns: no Python frame per row (what BarRecord._make does)
        return list(
            map(
                partial(tuple.__new__, BarRecord),
                zip(
                    repeat(self.symbol, n),
                    self.ts.tolist(),
                    repeat(self.resolution_s, n),
                    self.open.tolist(),
                    self.high.tolist(),
                    self.low.tolist(),
                    self.close.tolist(),
                    self.volume.tolist(),
                    self.buy_volume.tolist(),
                    self.sell_volume.tolist(),
                    self.vwap.tolist(),
                    self.trade_count.tolist(),
                    self.synthetic.tolist(),
                    self.revision.tolist(),
                    strict=True,
                ),
            )
        )


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the runs of equal values in ``keys`` (non-empty, sorted)."""
    brk = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], brk))
    return starts, np.diff(np.concatenate((starts, [len(keys)])))


def _seq_sums(
    starts: np.ndarray, lengths: np.ndarray, values: Sequence[np.ndarray], inits: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Per run, ``init + x0 + x1 + …`` added strictly left to right (bit-identical to a Python loop of ``+=``, so
    a bar does not depend on where batches split it).

    When the runs are of similar length (padding them to the longest costs at most 4x the input), one
    ``np.add.accumulate`` along a padded (values x runs x 1+longest) block: accumulate adds each element to the
    previous partial sum in order, and the zero padding after a run's end leaves its sum as it is (``x + 0.0 == x``;
    the sums are of non-negative volumes and notionals). Otherwise (a few long runs among many short ones) one
    vectorised pass per position over the runs still open."""
    n_runs = len(starts)
    top = int(lengths.max())
    if n_runs * top <= 4 * len(values[0]) + 64:
        cols = np.arange(top)
        inside = cols[None, :] < lengths[:, None]
        idx = np.where(inside, starts[:, None] + cols[None, :], 0)
        block = np.empty((len(values), n_runs, top + 1))
        for k, (v, i) in enumerate(zip(values, inits, strict=True)):
            block[k, :, 0] = i
            block[k, :, 1:] = np.where(inside, np.asarray(v, np.float64)[idx], 0.0)
        sums = np.add.accumulate(block, axis=2)[:, :, -1]
        return [sums[k].copy() for k in range(len(values))]
    acc = [np.array(i, np.float64, copy=True) for i in inits]
    active = np.arange(n_runs)
    j = 0
    while active.size:
        rows = starts[active] + j
        for a, v in zip(acc, values, strict=True):
            a[active] += v[rows]
        j += 1
        active = active[lengths[active] > j]
    return acc


def _vwap(pv: np.ndarray, v: np.ndarray, low: np.ndarray, high: np.ndarray, close: np.ndarray) -> np.ndarray:
    pos = v > 0
    return np.where(pos, np.minimum(np.maximum(pv / np.where(pos, v, 1.0), low), high), close)


class BarAggregator:
    """Event-time bar state for ONE symbol at ``resolution_s`` (s); picklable, bounded.

    ``allowed_lateness_s`` (s): how far behind the max event time a tick may be and still be folded into its
    open window. ``correction_horizon_s`` (s): with ``late_policy="correct"``, how long closed windows stay
    correctable. Counters: ``ticks_in``, ``late_count`` (all late ticks), ``late_applied`` (folded into a
    correction), ``late_dropped`` (not applied), ``bars_emitted``, ``corrections_emitted``.
    """

    def __init__(
        self,
        symbol: str,
        resolution_s: int = 1,
        *,
        allowed_lateness_s: float = 0.0,
        late_policy: LatePolicy = "drop",
        correction_horizon_s: int = 60,
        fill_empty: bool = False,
    ) -> None:
        if int(resolution_s) != resolution_s or resolution_s <= 0:
            raise ValueError("resolution_s must be a positive integer number of seconds")
        if allowed_lateness_s < 0 or correction_horizon_s < 0:
            raise ValueError("allowed_lateness_s and correction_horizon_s must be >= 0")
        if late_policy not in ("drop", "correct"):
            raise ValueError("late_policy must be 'drop' or 'correct'")
        self.symbol = symbol
        self.resolution_s = int(resolution_s)
        self.res_ns = self.resolution_s * NS_PER_S
        self.lateness_ns = round(allowed_lateness_s * NS_PER_S)
        self.late_policy = late_policy
        self.horizon_ns = int(correction_horizon_s) * NS_PER_S
        self.fill_empty = fill_empty
        self.max_ts: int | None = None
        self.boundary: int | None = None  # start of the first window not yet closed (ns)
        self.open: dict[int, list[Any]] = {}
        self.closed: dict[int, list[Any]] = {}  # start -> [acc, last revision] (correct policy only)
        self.last_start: int | None = None  # start of the last emitted on-time bar (ns)
        self.last_close: float | None = None
        self.ticks_in = 0
        self.late_count = 0
        self.late_applied = 0
        self.late_dropped = 0
        self.bars_emitted = 0
        self.corrections_emitted = 0

    # -- public API ---------------------------------------------------------------------------------------------
    @property
    def watermark(self) -> int | None:
        """Current boundary (ns): every window starting before it is closed; None before any event."""
        return self.boundary

    def add(self, ticks: Iterable[Any]) -> AggResult:
        """Fold a batch of Tick-like objects (``ts`` ns, ``price``, ``qty``, ``side`` str, optional ``synthetic``).

        Ticks of other symbols are rejected with ``ValueError`` (use :class:`MultiBarAggregator`).
        Returns the bars closed by this batch and the late ticks (objects).
        """
        ticks = ticks if isinstance(ticks, Sequence) else list(ticks)
        sym = self.symbol
        if any(t.symbol != sym for t in ticks):
            raise ValueError(f"BarAggregator({sym!r}) received a tick of another symbol")
        sc = _SIDE_CODE
        bars, late_idx = self._run(
            [t.ts for t in ticks],
            [t.price for t in ticks],
            [t.qty for t in ticks],
            [sc.get(t.side, 0) for t in ticks],
            [getattr(t, "synthetic", False) for t in ticks],
        )
        return AggResult(bars, [ticks[i] for i in late_idx])

    def add_columns(
        self,
        ts: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        side: np.ndarray,
        synthetic: np.ndarray | bool = False,
    ) -> AggResult:
        """Fold a columnar batch: ``ts`` int ns, ``price``, ``qty``, ``side`` int codes (+1 buy, -1 sell, 0 unknown),
        ``synthetic`` bool array or scalar. Returns bars and the int64 row indices of the late ticks."""
        bars, late = self.fold_columns(ts, price, qty, side, synthetic)
        return AggResult(bars.records(), late)

    def fold_rows(
        self, ts: list[Any], price: list[Any], qty: list[Any], side: list[Any], synthetic: list[Any]
    ) -> tuple[list[BarRecord], list[int]]:
        """The per-tick fold of columns given as Python lists (``side`` int codes, ``synthetic`` bools): the closed
        bars and the row numbers of the late ticks."""
        return self._run(ts, price, qty, side, synthetic)

    def fold_columns(
        self,
        ts: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        side: np.ndarray,
        synthetic: np.ndarray | bool = False,
    ) -> tuple[BarColumns, np.ndarray]:
        """:meth:`add_columns` with the closed bars as :class:`BarColumns`.

        A batch in event-time order that starts at or after the latest tick seen (the usual case) is folded with
        array operations (the sums added left to right, so the bars are bit-identical to the per-tick fold
        whatever the batching); any other batch, ``late_policy="correct"`` and ``fill_empty`` take the per-tick
        fold."""
        ts = np.asarray(ts, np.int64)
        price = np.asarray(price, np.float64)
        qty = np.asarray(qty, np.float64)
        side = np.asarray(side, np.int64)
        n = len(ts)
        syn = np.ascontiguousarray(np.broadcast_to(np.asarray(synthetic, bool), (n,)))
        if n == 0:
            return BarColumns.empty(self.symbol, self.resolution_s), np.zeros(0, np.int64)
        # in order, from the latest tick seen on, and none in a window already closed (an ``advance`` can have
        # moved the boundary past the latest tick: such a tick is late, as the per-tick fold says)
        t0 = int(ts[0])
        fast = (
            self.late_policy == "drop"
            and not self.fill_empty
            and (self.max_ts is None or t0 >= self.max_ts)
            and (self.boundary is None or t0 >= self.boundary)
            and (n == 1 or bool((ts[1:] >= ts[:-1]).all()))
        )
        if not fast:
            bars, late_idx = self._run(ts.tolist(), price.tolist(), qty.tolist(), side.tolist(), syn.tolist())
            return BarColumns.from_records(self.symbol, self.resolution_s, bars), np.asarray(late_idx, np.int64)
        res = self.res_ns
        w = ts - ts % res
        starts, lengths = _groups(w)
        ends = starts + lengths - 1
        gw = w[starts]
        high = np.maximum.reduceat(price, starts)
        low = np.minimum.reduceat(price, starts)
        open_p = price[starts]
        close = price[ends]
        ots = ts[starts]
        cts = ts[ends]
        count = lengths.astype(np.int64)
        synr = np.logical_or.reduceat(syn, starts)
        inits = [np.zeros(len(starts)) for _ in range(4)]
        open_ = self.open
        w0 = int(gw[0])
        a = open_.pop(w0, None)
        if a is not None:  # the batch continues the latest open window
            high[0] = max(high[0], a[_H])
            low[0] = min(low[0], a[_L])
            open_p[0] = a[_O]
            ots[0] = a[_OTS]
            count[0] += a[_N]
            synr[0] = synr[0] or a[_SYN]
            for k, slot in enumerate((_V, _BV, _SV, _PV)):
                inits[k][0] = a[slot]
        vol, bv, sv, pv = _seq_sums(
            starts, lengths, [qty, np.where(side == 1, qty, 0.0), np.where(side == -1, qty, 0.0), price * qty], inits
        )
        max_ts = int(ts[-1])
        nb = ((max_ts - self.lateness_ns) // res) * res
        boundary = self.boundary if self.boundary is not None and self.boundary >= nb else nb
        self.max_ts = max_ts
        self.boundary = boundary
        self.ticks_in += n
        old = [
            _bar(self.symbol, ws, self.resolution_s, open_.pop(ws)) for ws in sorted(x for x in open_ if x < boundary)
        ]
        done = gw < boundary
        k = int(done.sum())
        for i in range(k, len(gw)):  # still open
            open_[int(gw[i])] = [
                float(open_p[i]),
                float(high[i]),
                float(low[i]),
                float(close[i]),
                float(vol[i]),
                float(bv[i]),
                float(sv[i]),
                float(pv[i]),
                int(count[i]),
                int(ots[i]),
                int(cts[i]),
                bool(synr[i]),
            ]
        new = BarColumns(
            self.symbol,
            self.resolution_s,
            gw[:k],
            open_p[:k],
            high[:k],
            low[:k],
            close[:k],
            vol[:k],
            bv[:k],
            sv[:k],
            _vwap(pv[:k], vol[:k], low[:k], high[:k], close[:k]),
            count[:k],
            synr[:k],
        )
        out = BarColumns.concat([BarColumns.from_records(self.symbol, self.resolution_s, old), new]) if old else new
        if len(out):
            self.bars_emitted += len(out)
            self.last_start = int(out.ts[-1])
            self.last_close = float(out.close[-1])
        return out, np.zeros(0, np.int64)

    def fold_in_order(
        self, ts_l: list[Any], px_l: list[Any], q_l: list[Any], side_l: list[Any], syn_l: list[Any]
    ) -> list[BarRecord] | None:
        """The per-tick fold of a small batch given as Python lists (``side`` int codes, ``synthetic`` bools) when
        nothing in it can be late: the closed bars, bit-identical to :meth:`fold_rows` and :meth:`fold_columns`
        (the same comparisons, the sums added left to right), with the same state after it.

        Returns None, and leaves the state as it was, unless the batch is in event-time order from the latest
        tick seen on, none in a window already closed, with ``late_policy="drop"`` and no ``fill_empty``: the
        caller then takes :meth:`fold_rows`. One Python loop with the newest window's accumulator in locals and
        no call per tick or per bar: numpy's cost per call is most of a few dozen ticks' fold."""
        n = len(ts_l)
        if not n or self.late_policy != "drop" or self.fill_empty:
            return None
        last = self.max_ts
        boundary = self.boundary
        first = ts_l[0]
        if (last is not None and first < last) or (boundary is not None and first < boundary):
            return None
        res, lat = self.res_ns, self.lateness_ns
        sym, rs = self.symbol, self.resolution_s
        open_ = self.open
        # the older open windows (only with an allowed lateness) are never touched by in-order ticks: closed or
        # kept as they are; the newest continues in locals. Nothing of the state is changed before the end.
        starts = sorted(open_)
        pend = [(w, open_[w]) for w in starts]
        cw = None
        if pend:
            cw, acc = pend.pop()
            o, h, lo, c, v, bv, sv, pv, cnt, ots, cts, syn = acc
        out: list[BarRecord] = []
        emit = out.append
        new = tuple.__new__
        pi = 0
        if last is None:
            last = first - 1
        if lat == 0 and not pend:  # no lateness: a tick in a later window closes the newest one, nothing else open
            if n > 1 and ts_l != sorted(ts_l):  # (C loops: a sorted list sorts in one pass)
                return None  # out of order: the general fold (nothing was changed)
            for t, p, q, s, y in zip(ts_l, px_l, q_l, side_l, syn_l, strict=True):
                w = t - t % res
                if w == cw:
                    if p > h:
                        h = p
                    elif p < lo:
                        lo = p
                    c = p
                    v += q
                    if s == 1:
                        bv += q
                    elif s == -1:
                        sv += q
                    pv += p * q
                    cnt += 1
                    if y:
                        syn = True
                    continue
                if cw is not None:
                    if v > 0:
                        x = pv / v
                        x = lo if lo > x else x  # min(max(pv / v, low), high), as _bar
                        x = h if h < x else x
                    else:
                        x = c
                    emit(new(BarRecord, (sym, cw, rs, o, h, lo, c, v, bv, sv, x, cnt, syn, 0)))
                cw = w
                o = h = lo = c = p
                v = q
                bv = q if s == 1 else 0.0
                sv = q if s == -1 else 0.0
                pv = p * q
                cnt = 1
                ots = t
                syn = bool(y)
            last = cts = ts_l[-1]  # the latest tick, in the newest window
            assert cw is not None  # the loop ran (n > 0) and opened or continued a window
            if boundary is None or cw > boundary:
                boundary = cw
        else:  # an allowed lateness: several windows open, the older ones closed as the boundary passes them
            for t, p, q, s, y in zip(ts_l, px_l, q_l, side_l, syn_l, strict=True):
                if t < last:
                    return None  # out of order: the general fold (nothing was changed)
                w = t - t % res
                if w == cw:
                    if p > h:
                        h = p
                    elif p < lo:
                        lo = p
                    c = p
                    cts = t
                    v += q
                    if s == 1:
                        bv += q
                    elif s == -1:
                        sv += q
                    pv += p * q
                    cnt += 1
                    if y:
                        syn = True
                else:
                    if cw is not None:
                        pend.append((cw, [o, h, lo, c, v, bv, sv, pv, cnt, ots, cts, syn]))
                    cw = w
                    o = h = lo = c = p
                    v = q
                    bv = q if s == 1 else 0.0
                    sv = q if s == -1 else 0.0
                    pv = p * q
                    cnt = 1
                    ots = cts = t
                    syn = bool(y)
                if t > last:
                    last = t
                    nb = ((t - lat) // res) * res
                    if boundary is None or nb > boundary:
                        boundary = nb
                        while pi < len(pend) and pend[pi][0] < nb:  # the newest window is never before nb
                            ws, a = pend[pi]
                            pi += 1
                            av = a[4]
                            emit(
                                new(
                                    BarRecord,
                                    (
                                        sym,
                                        ws,
                                        rs,
                                        a[0],
                                        a[1],
                                        a[2],
                                        a[3],
                                        av,
                                        a[5],
                                        a[6],
                                        min(max(a[7] / av, a[2]), a[1]) if av > 0 else a[3],
                                        a[8],
                                        a[11],
                                        0,
                                    ),
                                )
                            )
        # commit
        assert cw is not None  # every path above ran the loop over the n > 0 ticks
        if lat == 0 and not pend:
            open_.clear()  # at most the newest window was open, and it is ``cw`` now or was closed
        for ws, _ in pend[:pi]:
            open_.pop(ws, None)
        for ws, a in pend[pi:]:
            open_[ws] = a
        open_[cw] = [o, h, lo, c, v, bv, sv, pv, cnt, ots, cts, syn]
        self.max_ts = last
        self.boundary = boundary
        self.ticks_in += n
        if out:
            self.bars_emitted += len(out)
            self.last_start = out[-1].ts
            self.last_close = out[-1].close
        return out

    def advance(self, watermark_ns: int) -> AggResult:
        """Move event time to ``watermark_ns`` (ns) without a tick, closing windows that end at or before it.

        Use it to close idle symbols' windows (e.g. with the max event time of all symbols minus the lateness).
        """
        out: list[BarRecord] = []
        nb = (int(watermark_ns) // self.res_ns) * self.res_ns
        if self.boundary is None or nb > self.boundary:
            self._close_until(nb, out)
        return AggResult(out, [])

    def flush(self) -> list[BarRecord]:
        """Close every open window now (end of a finite replay); event time jumps past the last tick."""
        if not self.open:
            return []
        return self.advance(max(self.open) + self.res_ns).bars

    def open_windows(self) -> list[int]:
        """Starts (ns) of the windows still open."""
        return sorted(self.open)

    # -- core -----------------------------------------------------------------------------------------------------
    def _run(
        self, ts_l: list[Any], px_l: list[Any], q_l: list[Any], side_l: list[Any], syn_l: list[Any]
    ) -> tuple[list[BarRecord], list[int]]:
        out: list[BarRecord] = []
        late_idx: list[int] = []
        touched: set[int] = set()
        res = self.res_ns
        lateness = self.lateness_ns
        open_ = self.open
        boundary = self.boundary
        max_ts = self.max_ts
        correct = self.late_policy == "correct"
        for i in range(len(ts_l)):
            ts = ts_l[i]
            p = px_l[i]
            q = q_l[i]
            s = side_l[i]
            w = ts - ts % res
            if boundary is not None and w < boundary:
                late_idx.append(i)
                if correct and w >= boundary - self.horizon_ns:
                    self._apply_late(w, ts, p, q, s, syn_l[i])
                    touched.add(w)
                else:
                    self.late_dropped += 1
                continue
            a = open_.get(w)
            if a is None:
                open_[w] = [
                    p,
                    p,
                    p,
                    p,
                    q,
                    q if s == 1 else 0.0,
                    q if s == -1 else 0.0,
                    p * q,
                    1,
                    ts,
                    ts,
                    bool(syn_l[i]),
                ]
            else:
                if p > a[_H]:
                    a[_H] = p
                elif p < a[_L]:
                    a[_L] = p
                if ts < a[_OTS]:
                    a[_O] = p
                    a[_OTS] = ts
                if ts >= a[_CTS]:
                    a[_C] = p
                    a[_CTS] = ts
                a[_V] += q
                if s == 1:
                    a[_BV] += q
                elif s == -1:
                    a[_SV] += q
                a[_PV] += p * q
                a[_N] += 1
                if syn_l[i]:
                    a[_SYN] = True
            if max_ts is None or ts > max_ts:
                max_ts = ts
                nb = ((ts - lateness) // res) * res
                if boundary is None or nb > boundary:
                    self.max_ts = max_ts
                    self._close_until(nb, out)
                    boundary = nb
        self.max_ts = max_ts
        self.ticks_in += len(ts_l)
        self.late_count += len(late_idx)
        for w in sorted(touched):
            entry = self.closed[w]
            entry[1] += 1
            out.append(_bar(self.symbol, w, self.resolution_s, entry[0], entry[1]))
            self.corrections_emitted += 1
        return out, late_idx

    def _apply_late(self, w: int, ts: int, p: float, q: float, s: int, syn: bool) -> None:
        self.late_applied += 1
        entry = self.closed.get(w)
        if entry is None:  # window had no trades when it closed (no bar or a filled bar): revision 0 implied
            entry = self.closed[w] = [[p, p, p, p, 0.0, 0.0, 0.0, 0.0, 0, ts, ts, False], 0]
        a = entry[0]
        a[_H] = max(a[_H], p)
        a[_L] = min(a[_L], p)
        if ts < a[_OTS]:
            a[_O], a[_OTS] = p, ts
        if ts >= a[_CTS]:
            a[_C], a[_CTS] = p, ts
        a[_V] += q
        if s == 1:
            a[_BV] += q
        elif s == -1:
            a[_SV] += q
        a[_PV] += p * q
        a[_N] += 1
        a[_SYN] = a[_SYN] or bool(syn)

    def _close_until(self, nb: int, out: list[BarRecord]) -> None:
        """Close (emit) every window starting before ``nb`` (ns) and set the boundary to ``nb``."""
        starts = sorted(w for w in self.open if w < nb)
        for w in starts:
            if self.fill_empty:
                self._fill(w, out)
            a = self.open.pop(w)
            out.append(_bar(self.symbol, w, self.resolution_s, a))
            self.bars_emitted += 1
            self.last_start = w
            self.last_close = a[_C]
            if self.late_policy == "correct":
                self.closed[w] = [a, 0]
        if self.fill_empty:
            self._fill(nb, out)
        self.boundary = nb
        if self.closed:
            cutoff = nb - self.horizon_ns
            for w in [w for w in self.closed if w < cutoff]:
                del self.closed[w]

    def _fill(self, until: int, out: list[BarRecord]) -> None:
        """Emit flat bars for empty windows after the last emitted bar and before ``until`` (ns)."""
        if self.last_start is None:
            return
        c = self.last_close
        assert c is not None  # set together with last_start
        w = self.last_start + self.res_ns
        while w < until:
            out.append(BarRecord(self.symbol, w, self.resolution_s, c, c, c, c, 0.0, 0.0, 0.0, c, 0, True, 0))
            self.bars_emitted += 1
            self.last_start = w
            w += self.res_ns


class MultiBarAggregator:
    """One :class:`BarAggregator` per symbol, created on first sight with the same settings; picklable.

    ``add`` splits a mixed batch by ``tick.symbol`` (keeping order within a symbol); ``advance`` applies one
    watermark (ns) to every symbol, so idle symbols close their windows too.
    """

    def __init__(self, resolution_s: int = 1, **settings: Any) -> None:
        self.resolution_s = resolution_s
        self.settings = settings
        BarAggregator("probe", resolution_s, **settings)  # validate settings early
        self.aggs: dict[str, BarAggregator] = {}

    def _agg(self, symbol: str) -> BarAggregator:
        a = self.aggs.get(symbol)
        if a is None:
            a = self.aggs[symbol] = BarAggregator(symbol, self.resolution_s, **self.settings)
        return a

    def add(self, ticks: Iterable[Any]) -> AggResult:
        """Fold a batch of Tick-like objects of any symbols; bars grouped by symbol (first-seen order)."""
        groups: dict[str, list[Any]] = {}
        for t in ticks:
            g = groups.get(t.symbol)
            if g is None:
                groups[t.symbol] = [t]
            else:
                g.append(t)
        bars: list[BarRecord] = []
        late: list[Any] = []
        for sym, g in groups.items():
            r = self._agg(sym).add(g)
            bars += r.bars
            late += r.late
        return AggResult(bars, late)

    def advance(self, watermark_ns: int) -> AggResult:
        """Advance every known symbol to ``watermark_ns`` (ns)."""
        bars: list[BarRecord] = []
        for sym in sorted(self.aggs):
            bars += self.aggs[sym].advance(watermark_ns).bars
        return AggResult(bars, [])

    def flush(self) -> list[BarRecord]:
        """Close all open windows of all symbols."""
        return [b for sym in sorted(self.aggs) for b in self.aggs[sym].flush()]

    @property
    def late_count(self) -> int:
        """Late ticks over all symbols."""
        return sum(a.late_count for a in self.aggs.values())


class Resampler:
    """Incremental derivation of ``resolution_s`` bars from in-order base bars of ``base_resolution_s`` (s).

    ``resolution_s`` must be a multiple of ``base_resolution_s``. A coarse window ``[start, start + R)`` is
    emitted as soon as the base bar ending at ``start + R`` arrives, or a base bar of a later window arrives,
    or ``advance(watermark_ns)`` passes its end. Combination: first open, max high, min low, last close, sums
    of volumes and trade counts, ``vwap = sum(vwap_i * volume_i) / volume`` (``close`` if volume is 0),
    ``synthetic`` = any. Zero-trade (filled) base bars are skipped unless a coarse window has nothing else,
    then it becomes a flat filled bar — so resampling equals direct aggregation with or without ``fill_empty``.
    Base bars with ``revision > 0`` (corrections) and bars older than the current coarse window are not
    applied; they are counted in ``ignored``. Picklable; state is one open coarse window.
    """

    def __init__(self, resolution_s: int, base_resolution_s: int = 1) -> None:
        if base_resolution_s <= 0 or resolution_s <= 0 or resolution_s % base_resolution_s:
            raise ValueError("resolution_s must be a positive multiple of base_resolution_s")
        self.resolution_s = int(resolution_s)
        self.base_resolution_s = int(base_resolution_s)
        self.res_ns = self.resolution_s * NS_PER_S
        self.base_ns = self.base_resolution_s * NS_PER_S
        self.start: int | None = None
        self.acc: list[Any] | None = None  # [o, h, l, c, v, bv, sv, pv, n, syn, symbol]
        self.last_start: int | None = None
        self.ignored = 0

    def update(self, bar: Any) -> list[BarRecord]:
        """Fold one base bar (Bar-like: ``ts`` ns window start, OHLC, volumes, vwap, trade_count); return closed
        coarse bars (0, 1 or 2)."""
        if (
            getattr(bar, "revision", 0)
            or getattr(bar, "resolution_s", self.base_resolution_s) != self.base_resolution_s
        ):
            self.ignored += 1
            return []
        w = bar.ts - bar.ts % self.res_ns
        out: list[BarRecord] = []
        if self.start is not None and w != self.start:
            if w < self.start:
                self.ignored += 1
                return []
            out.append(self._emit())
        if self.last_start is not None and w <= self.last_start:
            self.ignored += 1
            return out
        a = self.acc
        v = bar.volume
        if a is not None and bar.trade_count == 0:  # filled (no-trade) bar inside a window: no information
            return out
        if a is not None and a[8] == 0:  # window so far only filled bars: the first real bar replaces them
            a = None
        if a is None:
            self.start = w
            self.acc = [
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                v,
                bar.buy_volume,
                bar.sell_volume,
                bar.vwap * v,
                bar.trade_count,
                bool(getattr(bar, "synthetic", False)),
                bar.symbol,
            ]
        else:
            if bar.symbol != a[10]:
                raise ValueError("Resampler received bars of two symbols")
            a[1] = max(a[1], bar.high)
            a[2] = min(a[2], bar.low)
            a[3] = bar.close
            a[4] += v
            a[5] += bar.buy_volume
            a[6] += bar.sell_volume
            a[7] += bar.vwap * v
            a[8] += bar.trade_count
            a[9] = a[9] or bool(getattr(bar, "synthetic", False))
        if bar.ts + self.base_ns >= w + self.res_ns:
            out.append(self._emit())
        return out

    def update_rows(self, bars: Sequence[BarRecord], checked: bool = False) -> list[BarRecord]:
        """Fold a list of base bars (one symbol, window order); the closed coarse bars. Equal to :meth:`update` bar
        by bar (the same comparisons, the sums added left to right), the open window kept in locals: traded bars
        of revision 0 in a window at or after the open one take the loop, any other bar goes through
        :meth:`update` (small batches: no numpy call).

        ``checked``: the caller vouches that ``bars`` are traded on-time bars of one symbol at the base resolution
        in strictly increasing window order (what a drop-policy :class:`BarAggregator` without ``fill_empty``, or a
        :class:`Resampler`, emits); the first bar is checked against the state, the others go through the loop
        without a test each."""
        out: list[BarRecord] = []
        if not bars:
            return out
        R, base, rs = self.res_ns, self.base_resolution_s, self.resolution_s
        base_ns = self.base_ns
        new = tuple.__new__
        emit = out.append
        start, last_start = self.start, self.last_start
        a = self.acc
        if a is not None:
            o, h, lo, c, v, bv, sv, pv, cnt, syn, sym = a
        else:
            sym = None
        b0 = bars[0]
        w0 = b0[1] - b0[1] % R
        if (
            checked
            and not b0[13]
            and b0[2] == base
            and b0[11] > 0
            and (
                (start is not None and w0 >= start and cnt > 0 and b0[0] == sym)
                or (start is None and (last_start is None or w0 > last_start))
            )
        ):
            for b in bars:
                bts = b[1]
                w = bts - bts % R
                if w != start:
                    if start is not None:  # a later window: the open one is done
                        emit(
                            new(
                                BarRecord,
                                (
                                    sym,
                                    start,
                                    rs,
                                    o,
                                    h,
                                    lo,
                                    c,
                                    v,
                                    bv,
                                    sv,
                                    min(max(pv / v, lo), h) if v > 0 else c,
                                    cnt,
                                    syn,
                                    0,
                                ),
                            )
                        )
                        last_start = start
                    start = w
                    sym = b[0]
                    o, h, lo, c = b[3], b[4], b[5], b[6]
                    v = b[7]
                    bv, sv, pv = b[8], b[9], b[10] * v
                    cnt = b[11]
                    syn = bool(b[12])
                else:
                    if b[4] > h:
                        h = b[4]
                    if b[5] < lo:
                        lo = b[5]
                    c = b[6]
                    bv_ = b[7]
                    v += bv_
                    bv += b[8]
                    sv += b[9]
                    pv += b[10] * bv_
                    cnt += b[11]
                    syn = syn or bool(b[12])
                if bts + base_ns >= w + R:  # the base bar ending the window: emit at once
                    emit(
                        new(
                            BarRecord,
                            (
                                sym,
                                start,
                                rs,
                                o,
                                h,
                                lo,
                                c,
                                v,
                                bv,
                                sv,
                                min(max(pv / v, lo), h) if v > 0 else c,
                                cnt,
                                syn,
                                0,
                            ),
                        )
                    )
                    last_start = start
                    start = None
            self.start, self.last_start = start, last_start
            self.acc = None if start is None else [o, h, lo, c, v, bv, sv, pv, cnt, syn, sym]
            return out
        for b in bars:
            bts = b[1]
            w = bts - bts % R
            # the loop's case: a traded on-time base bar of the open window's symbol, in the open window or a later
            # one (after the last emitted), the open window (if any) holding a traded bar
            if (
                b[13]
                or b[2] != base
                or b[11] <= 0
                or (start is not None and (w < start or cnt <= 0 or b[0] != sym))
                or (start is None and last_start is not None and w <= last_start)
            ):
                self.start, self.last_start = start, last_start
                self.acc = None if start is None else [o, h, lo, c, v, bv, sv, pv, cnt, syn, sym]
                out.extend(self.update(b))
                start, last_start = self.start, self.last_start
                a = self.acc
                if a is not None:
                    o, h, lo, c, v, bv, sv, pv, cnt, syn, sym = a
                continue
            if start is not None and w != start:  # a later window: the open one is done
                emit(
                    new(
                        BarRecord,
                        (sym, start, rs, o, h, lo, c, v, bv, sv, min(max(pv / v, lo), h) if v > 0 else c, cnt, syn, 0),
                    )
                )
                last_start = start
                start = None
            bv_ = b[7]
            if start is None:
                start = w
                sym = b[0]
                o, h, lo, c = b[3], b[4], b[5], b[6]
                v, bv, sv, pv = bv_, b[8], b[9], b[10] * bv_
                cnt = b[11]
                syn = bool(b[12])
            else:
                if b[4] > h:
                    h = b[4]
                if b[5] < lo:
                    lo = b[5]
                c = b[6]
                v += bv_
                bv += b[8]
                sv += b[9]
                pv += b[10] * bv_
                cnt += b[11]
                syn = syn or bool(b[12])
            if bts + base_ns >= w + R:  # the base bar ending the window: emit at once
                emit(
                    new(
                        BarRecord,
                        (sym, start, rs, o, h, lo, c, v, bv, sv, min(max(pv / v, lo), h) if v > 0 else c, cnt, syn, 0),
                    )
                )
                last_start = start
                start = None
        self.start, self.last_start = start, last_start
        self.acc = None if start is None else [o, h, lo, c, v, bv, sv, pv, cnt, syn, sym]
        return out

    def update_columns(self, bars: BarColumns) -> BarColumns:
        """Fold a block of base bars (one symbol, window order); the closed coarse bars as columns.

        Equal to :meth:`update` bar by bar: in-order traded bars of revision 0 (the usual case) are folded with
        array operations, the sums added left to right; anything else goes bar by bar."""
        n = len(bars)
        if n == 0:
            return BarColumns.empty(bars.symbol, self.resolution_s)
        ts = bars.ts
        R = self.res_ns
        w = ts - ts % R
        w0 = int(w[0])
        a = self.acc
        fast = (
            bars.resolution_s == self.base_resolution_s
            and not bars.revision.any()
            and bool((bars.trade_count > 0).all())
            and (n == 1 or bool((ts[1:] > ts[:-1]).all()))
            and (a is None or (a[8] > 0 and a[10] == bars.symbol))
            and (w0 >= self.start if self.start is not None else (self.last_start is None or w0 > self.last_start))
        )
        if not fast:
            return BarColumns.from_records(
                bars.symbol, self.resolution_s, [c for b in bars.records() for c in self.update(b)]
            )
        old: list[BarRecord] = []
        if self.start is not None and w0 != self.start:  # a later window: the open one is done
            old.append(self._emit())
            a = None
        starts, lengths = _groups(w)
        ends = starts + lengths - 1
        gw = w[starts]
        o = bars.open[starts]
        h = np.maximum.reduceat(bars.high, starts)
        lo = np.minimum.reduceat(bars.low, starts)
        c = bars.close[ends]
        cnt = np.add.reduceat(bars.trade_count, starts)
        syn = np.logical_or.reduceat(bars.synthetic, starts)
        inits = [np.zeros(len(starts)) for _ in range(4)]
        if a is not None:  # the block continues the open window
            o[0] = a[0]
            h[0] = max(h[0], a[1])
            lo[0] = min(lo[0], a[2])
            cnt[0] += a[8]
            syn[0] = syn[0] or a[9]
            for k in range(4):
                inits[k][0] = a[4 + k]
        v, bv, sv, pv = _seq_sums(
            starts, lengths, [bars.volume, bars.buy_volume, bars.sell_volume, bars.vwap * bars.volume], inits
        )
        last = len(gw) - 1
        complete = int(ts[ends[last]]) + self.base_ns >= int(gw[last]) + R
        k = last + 1 if complete else last
        if complete:
            self.acc = None
            self.start = None
        else:
            self.start = int(gw[last])
            self.acc = [
                float(o[last]),
                float(h[last]),
                float(lo[last]),
                float(c[last]),
                float(v[last]),
                float(bv[last]),
                float(sv[last]),
                float(pv[last]),
                int(cnt[last]),
                bool(syn[last]),
                bars.symbol,
            ]
        if k:
            self.last_start = int(gw[k - 1])
        new = BarColumns(
            bars.symbol,
            self.resolution_s,
            gw[:k],
            o[:k],
            h[:k],
            lo[:k],
            c[:k],
            v[:k],
            bv[:k],
            sv[:k],
            _vwap(pv[:k], v[:k], lo[:k], h[:k], c[:k]),
            cnt[:k],
            syn[:k],
        )
        return BarColumns.concat([BarColumns.from_records(bars.symbol, self.resolution_s, old), new]) if old else new

    def advance(self, watermark_ns: int) -> list[BarRecord]:
        """Emit the open coarse bar if ``watermark_ns`` (ns) is at or past its end."""
        if self.start is not None and watermark_ns >= self.start + self.res_ns:
            return [self._emit()]
        return []

    def flush(self) -> list[BarRecord]:
        """Emit the open coarse bar, complete or not (end of a finite replay)."""
        return [self._emit()] if self.start is not None else []

    def _emit(self) -> BarRecord:
        a, w = self.acc, self.start
        assert a is not None and w is not None
        self.acc = None
        self.start = None
        self.last_start = w
        v = a[4]
        return BarRecord(
            a[10],
            w,
            self.resolution_s,
            a[0],
            a[1],
            a[2],
            a[3],
            v,
            a[5],
            a[6],
            min(max(a[7] / v, a[2]), a[1]) if v > 0 else a[3],
            a[8],
            a[9],
            0,
        )


def resample_bars(bars: Iterable[Any], resolution_s: int, base_resolution_s: int | None = None) -> list[BarRecord]:
    """Batch derivation of coarse bars from one symbol's time-ordered base bars (runs :class:`Resampler`).

    ``base_resolution_s`` defaults to the first bar's ``resolution_s``.
    """
    bars = list(bars)
    if not bars:
        return []
    base = base_resolution_s if base_resolution_s is not None else bars[0].resolution_s
    r = Resampler(resolution_s, base)
    out: list[BarRecord] = []
    for b in bars:
        out += r.update(b)
    return out + r.flush()


def aggregate_ticks(
    ts: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    side: np.ndarray,
    *,
    resolution_s: int,
    symbol: str,
    synthetic: np.ndarray | bool = False,
) -> dict[str, np.ndarray]:
    """Vectorised offline bars of one symbol's complete tick history (no lateness: every tick counts).

    Columns as in :meth:`BarAggregator.add_columns`. Returns a dict of equal-length arrays, one row per
    non-empty window in time order: ``ts`` (ns window start), ``open, high, low, close, volume, buy_volume,
    sell_volume, vwap, trade_count, synthetic``, plus ``symbol`` and ``resolution_s`` as 0-d values.
    Same conventions as :class:`BarAggregator` (open = earliest event time, first arrived on ties; close =
    latest, last arrived on ties), so for sorted input it equals the streaming bars.
    """
    ts = np.asarray(ts, np.int64)
    price = np.asarray(price, float)
    qty = np.asarray(qty, float)
    side = np.asarray(side)
    syn = np.broadcast_to(np.asarray(synthetic, bool), ts.shape)
    res = int(resolution_s) * NS_PER_S
    w = ts - ts % res
    order = np.lexsort((np.arange(ts.size), ts))  # by event time, stable
    w_s, p_s, q_s, sd_s, syn_s = w[order], price[order], qty[order], side[order], syn[order]
    if ts.size == 0:
        starts = np.zeros(0, np.int64)
        first = last = starts
    else:
        brk = np.flatnonzero(np.diff(w_s)) + 1
        first = np.concatenate([[0], brk])
        last = np.concatenate([brk - 1, [ts.size - 1]])
        starts = w_s[first]

    def red(f: np.ufunc, x: np.ndarray) -> np.ndarray:
        return f.reduceat(x, first) if ts.size else np.zeros(0, x.dtype)

    vol = red(np.add, q_s)
    pv = red(np.add, p_s * q_s)
    close = p_s[last] if ts.size else np.zeros(0)
    high = red(np.maximum, p_s)
    low = red(np.minimum, p_s)
    return {
        "symbol": np.asarray(symbol),
        "resolution_s": np.asarray(int(resolution_s)),
        "ts": starts,
        "open": p_s[first] if ts.size else np.zeros(0),
        "high": high,
        "low": low,
        "close": close,
        "volume": vol,
        "buy_volume": red(np.add, np.where(sd_s == 1, q_s, 0.0)),
        "sell_volume": red(np.add, np.where(sd_s == -1, q_s, 0.0)),
        "vwap": np.where(vol > 0, np.clip(pv / np.where(vol > 0, vol, 1.0), low, high), close),
        "trade_count": np.diff(np.concatenate([first, [ts.size]])).astype(np.int64)
        if ts.size
        else np.zeros(0, np.int64),
        "synthetic": red(np.logical_or, syn_s.astype(bool)) if ts.size else np.zeros(0, bool),
    }
