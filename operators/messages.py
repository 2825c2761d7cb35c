"""Messages between the stages of the decision path (inside the flow; picklable, never on a topic).

* :class:`SymbolUpdate` — signal stage (keyed by symbol) → account stage (keyed by account): one per input batch of
  the symbol: the batch's ticks (for the in-process venue and the marks), the decision points its bars closed, and
  the symbol's event-time *progress*.
* :class:`Emitted` — what a stage produced for the flow's outputs, by kind.

Ordering contract (what makes the account deterministic whatever the batching, the partitioning and the number of
processes). Every item of a symbol has a *key* in event time, non-decreasing along the symbol's stream:

* a decision point's key is its time ``ts`` (the close of its decision bar, ns);
* a tick's key is ``max(floor, running max of tick times in its batch)`` where ``floor`` is the symbol's progress
  before the batch, so a late tick keeps its place in the stream instead of jumping back in time;
* ``progress`` (ns) is the symbol's bar watermark after the batch: every later tick has a key >= it and every later
  decision point a time > it.

The account processes decision times in increasing order, all symbols' points of one time together (in the
account's symbol order), only once every symbol's progress has reached that time; before a time ``T`` it feeds the
venue every tick with key < ``T``, in symbol order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from schemas.events import (
    Alert,
    AuditEvent,
    CancelRequest,
    DeadLetter,
    ExecutionReport,
    FeatureVector,
    Fill,
    Intent,
    Order,
    RiskDecision,
    Score,
)

if TYPE_CHECKING:
    from schemas.events import Tick

__all__ = [
    "DecisionPoint",
    "TickRow",
    "TickRecord",
    "TickBatch",
    "TickColumns",
    "SymbolUpdate",
    "Emitted",
    "SIDE_CODES",
    "BarList",
]

#: Aggressor side as an int code in columnar batches (+1 buy, -1 sell, 0 unknown), as ``operators.bars`` folds them.
SIDE_CODES = {"buy": 1, "sell": -1, "unknown": 0}
_SIDES: dict[int, Literal["buy", "sell", "unknown"]] = {1: "buy", -1: "sell", 0: "unknown"}


class TickRow(NamedTuple):
    """What a venue needs of one trade: ``symbol``, ``ts`` (ns), ``price`` (quote/base), ``qty`` (base units)."""

    symbol: str
    ts: int
    price: float
    qty: float


class TickRecord(NamedTuple):
    """One tick with the fields of ``schemas.events.Tick`` by name (a row for column-oriented stores, built without
    the event's validation: the source checked the values)."""

    symbol: str
    ts: int
    price: float
    qty: float
    side: str
    trade_id: str
    venue: str
    synthetic: bool

    @property
    def schema_version(self) -> int:
        """The ``schemas.events.Tick`` version a record stands for (a constant, not a field), so that a
        column-oriented store can take records in place of ``Tick`` events."""
        return 1


class TickBatch:
    """Ticks of one source batch (one partition's poll, any symbols) as columns, stream order.

    ``symbols``: the names the int ``codes`` index; ``ts`` int64 ns; ``price`` float64 quote/base; ``qty`` float64
    base units; ``side`` int8 (:data:`SIDE_CODES`); ``synthetic`` bool; ``trade_id`` and ``venue`` object arrays of
    str; ``offsets`` int64 (the source's offset or record index of each tick, -1 when unknown). The values are
    valid ``schemas.events.Tick`` fields (the source checks them); :meth:`event` and :meth:`events` build the
    ``Tick`` objects, which the flow does only for what leaves it (a ticks sink, a dead letter)."""

    __slots__ = ("symbols", "codes", "ts", "price", "qty", "side", "synthetic", "trade_id", "venue", "offsets")

    def __init__(
        self,
        symbols: Sequence[str],
        codes: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        side: np.ndarray,
        synthetic: np.ndarray,
        trade_id: np.ndarray,
        venue: np.ndarray,
        offsets: np.ndarray | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.codes, self.ts, self.price, self.qty, self.side = codes, ts, price, qty, side
        self.synthetic, self.trade_id, self.venue = synthetic, trade_id, venue
        self.offsets = offsets if offsets is not None else np.full(len(ts), -1, np.int64)

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_ticks(cls, ticks: Sequence[Any], offsets: Sequence[int] | None = None) -> TickBatch:
        """Columns of Tick-like objects (``symbol``, ``ts``, ``price``, ``qty``, ``side``, ``trade_id``, ``venue``,
        optional ``synthetic``)."""
        n = len(ticks)
        names: dict[str, int] = {}
        codes = np.fromiter((names.setdefault(t.symbol, len(names)) for t in ticks), np.int32, n)
        sc = SIDE_CODES

        def obj(xs: Iterable[Any]) -> np.ndarray:
            return np.array([*xs, None], dtype=object)[:-1]  # always 1-d, never split

        return cls(
            list(names),
            codes,
            np.fromiter((t.ts for t in ticks), np.int64, n),
            np.fromiter((t.price for t in ticks), np.float64, n),
            np.fromiter((t.qty for t in ticks), np.float64, n),
            np.fromiter((sc.get(t.side, 0) for t in ticks), np.int8, n),
            np.fromiter((bool(getattr(t, "synthetic", False)) for t in ticks), bool, n),
            obj(t.trade_id for t in ticks),
            obj(getattr(t, "venue", "") for t in ticks),
            np.asarray(offsets, np.int64) if offsets is not None else None,
        )

    @property
    def symbol(self) -> str:
        """The symbol of a one-symbol batch (what the flow's split hands a signal stage)."""
        if len(self.symbols) == 1:
            return self.symbols[0]
        present = np.unique(self.codes)
        if len(present) != 1:
            raise ValueError(f"a batch of {len(present)} symbols has no single symbol")
        return self.symbols[int(present[0])]

    def take(self, idx: Any) -> TickBatch:
        """The ticks ``idx`` (slice, mask or index array), stream order kept."""
        return TickBatch(
            self.symbols,
            self.codes[idx],
            self.ts[idx],
            self.price[idx],
            self.qty[idx],
            self.side[idx],
            self.synthetic[idx],
            self.trade_id[idx],
            self.venue[idx],
            self.offsets[idx],
        )

    def only(self, symbol: str) -> TickBatch:
        """This batch's ticks re-labelled as one symbol's (``symbols == (symbol,)``): the split's per-symbol item."""
        return TickBatch(
            (symbol,),
            np.zeros(len(self.ts), np.int32),
            self.ts,
            self.price,
            self.qty,
            self.side,
            self.synthetic,
            self.trade_id,
            self.venue,
            self.offsets,
        )

    def event(self, i: int) -> Any:
        """Tick ``i`` as a ``schemas.events.Tick``."""
        from schemas.events import Tick

        return Tick(
            symbol=self.symbols[int(self.codes[i])],
            ts=int(self.ts[i]),
            price=float(self.price[i]),
            qty=float(self.qty[i]),
            side=_SIDES[int(self.side[i])],
            trade_id=self.trade_id[i],
            venue=self.venue[i],
            synthetic=bool(self.synthetic[i]),
        )

    def records(self) -> list[TickRecord]:
        """Every tick as a :class:`TickRecord` (for column-oriented stores; no Python frame per row)."""
        from functools import partial

        names = np.asarray(self.symbols + ("",), object)[self.codes]
        sides = np.asarray(["unknown", "buy", "sell"], object)[self.side.astype(np.int64)]  # codes 0, 1, -1
        return list(
            map(
                partial(tuple.__new__, TickRecord),
                zip(
                    names.tolist(),
                    self.ts.tolist(),
                    self.price.tolist(),
                    self.qty.tolist(),
                    sides.tolist(),
                    self.trade_id.tolist(),
                    self.venue.tolist(),
                    self.synthetic.tolist(),
                    strict=True,
                ),
            )
        )

    def events(self) -> list[Tick]:
        """Every tick as a ``schemas.events.Tick`` (for sinks)."""
        from schemas.events import Tick

        names, sides = self.symbols, _SIDES
        return [
            Tick(symbol=names[c], ts=t, price=p, qty=q, side=sides[s], trade_id=tid, venue=v, synthetic=y)
            for c, t, p, q, s, tid, v, y in zip(
                self.codes.tolist(),
                self.ts.tolist(),
                self.price.tolist(),
                self.qty.tolist(),
                self.side.tolist(),
                self.trade_id.tolist(),
                self.venue.tolist(),
                self.synthetic.tolist(),
                strict=True,
            )
        ]


class TickColumns:
    """One batch of one symbol's trades as columns (cheap to pickle into a snapshot, whatever the count), with each
    trade's event-time key (see the module doc): ``keys = max(floor, running max of ts)``."""

    __slots__ = ("symbol", "ts", "price", "qty", "keys")

    def __init__(self, symbol: str, ticks: Sequence[Any] | TickBatch, floor: int | None) -> None:
        self.symbol = symbol
        if isinstance(ticks, TickBatch):
            self.ts, self.price, self.qty = ticks.ts, ticks.price, ticks.qty
        else:
            n = len(ticks)
            self.ts = np.fromiter((t.ts for t in ticks), dtype=np.int64, count=n)
            self.price = np.fromiter((t.price for t in ticks), dtype=np.float64, count=n)
            self.qty = np.fromiter((t.qty for t in ticks), dtype=np.float64, count=n)
        n = len(self.ts)
        keys = np.maximum.accumulate(self.ts) if n else self.ts
        self.keys = np.maximum(keys, floor) if floor is not None and n else keys

    def __len__(self) -> int:
        return len(self.ts)

    def cut(self, start: int, t: int | None) -> int:
        """Index of the first trade at or after ``start`` whose key is >= ``t`` (the end when ``t`` is None)."""
        if t is None:
            return len(self.ts)
        return max(start, int(np.searchsorted(self.keys, t, side="left")))

    def rows(self, i: int, j: int) -> list[TickRow]:
        """Trades ``i:j`` as :class:`TickRow`s (stream order)."""
        sym = self.symbol
        return [
            TickRow(sym, ts, px, q)
            for ts, px, q in zip(self.ts[i:j].tolist(), self.price[i:j].tolist(), self.qty[i:j].tolist(), strict=True)
        ]

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.symbol, self.ts, self.price, self.qty, self.keys)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.symbol, self.ts, self.price, self.qty, self.keys = s


class BarList(Sequence[Any]):  # noqa: PLW1641 - unhashable like the list it stands for (__eq__ sets __hash__ to None)
    """The bars a stage emitted: blocks of :class:`~operators.bars.BarColumns` whose
    :class:`~operators.bars.BarRecord` rows are built only when somebody reads them (iteration, indexing,
    comparison); ``len`` and truth need no rows. ``append``/``extend`` take rows or other bar lists."""

    __slots__ = ("_blocks", "_rows")

    def __init__(self, rows: Any = ()) -> None:
        self._blocks: list[Any] = []
        self._rows: list[Any] | None = list(rows) if rows else None

    def add_block(self, cols: Any) -> None:
        """Append a block of columns (no rows built)."""
        if not len(cols):
            return
        if self._rows is not None:
            self._rows.extend(cols.records())
        else:
            self._blocks.append(cols)

    def blocks(self) -> list[Any]:
        """The bars as column blocks (rows appended as lists of records keep their place)."""
        return list(self._blocks) if self._rows is None else [self._rows]

    def _all(self) -> list[Any]:
        if self._rows is None:
            rows: list[Any] = []
            for b in self._blocks:
                rows.extend(b.records())
            self._rows = rows
            self._blocks = []
        return self._rows

    def append(self, bar: Any) -> None:
        self._all().append(bar)

    def extend(self, bars: Any) -> None:
        if isinstance(bars, BarList) and self._rows is None and bars._rows is None:
            self._blocks.extend(bars._blocks)
        else:
            self._all().extend(bars)

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else sum(len(b) for b in self._blocks)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Any:
        return iter(self._all())

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __eq__(self, other: object) -> bool:
        return self._all() == (list(other) if isinstance(other, (BarList, list, tuple)) else other)

    def __add__(self, other: Any) -> list[Any]:
        return self._all() + list(other)

    def __radd__(self, other: Any) -> list[Any]:
        return list(other) + self._all()

    def __repr__(self) -> str:
        return f"BarList({self._all()!r})"

    def __getstate__(self) -> list[Any]:
        return self._all()

    def __setstate__(self, rows: list[Any]) -> None:
        self._blocks, self._rows = [], rows


@dataclass(slots=True)
class DecisionPoint:
    """A closed decision bar of ``symbol``: its close time ``ts`` (ns), ``close`` (quote/base) and the intent it
    produced (None when the wanted position did not change)."""

    symbol: str
    ts: int
    close: float
    intent: Intent | None = None


@dataclass(slots=True)
class SymbolUpdate:
    """One input batch of one symbol, as the account stage needs it (see the module doc for the keys)."""

    symbol: str
    floor: int | None
    ticks: TickColumns
    points: list[DecisionPoint]
    progress: int | None


@dataclass(slots=True)
class Emitted:
    """What one stage call produced, by kind; ``marks`` are (ts ns, equity quote) of the account.

    ``received_ns`` is copied from the input batch by the flow (a monotonic clock reading of when the batch
    entered the process), so latency can be measured downstream; the stages never read it."""

    bars: BarList = field(default_factory=BarList)
    features: list[FeatureVector] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    cancels: list[CancelRequest] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    late: list[Tick] = field(default_factory=list)
    late_rows: list[int] = field(default_factory=list)  # row numbers of ``late`` in the stage's input batch
    marks: list[tuple[int, float]] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    update: SymbolUpdate | None = None
    summary: dict[str, Any] | None = None  # the account's figures, at the end of a finite run
    state: dict[str, Any] | None = None  # the account's risk and trading state after this call (for metrics)
    received_ns: int = 0

    def extend(self, other: Emitted) -> None:
        """Append every list of ``other`` to this one."""
        for name in (
            "bars",
            "features",
            "decisions",
            "orders",
            "cancels",
            "fills",
            "reports",
            "late",
            "marks",
            "scores",
            "alerts",
            "audit",
            "dead",
            "intents",
        ):
            getattr(self, name).extend(getattr(other, name))
