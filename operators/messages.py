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

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np

from schemas.events import Alert, AuditEvent, DeadLetter, ExecutionReport, FeatureVector, Intent, Order, RiskDecision, Score

__all__ = ["DecisionPoint", "TickRow", "TickColumns", "SymbolUpdate", "Emitted"]


class TickRow(NamedTuple):
    """What a venue needs of one trade: ``symbol``, ``ts`` (ns), ``price`` (quote/base), ``qty`` (base units)."""

    symbol: str
    ts: int
    price: float
    qty: float


class TickColumns:
    """One batch of one symbol's trades as columns (cheap to pickle into a snapshot, whatever the count), with each
    trade's event-time key (see the module doc): ``keys = max(floor, running max of ts)``."""

    __slots__ = ("symbol", "ts", "price", "qty", "keys")

    def __init__(self, symbol: str, ticks: Sequence[Any], floor: int | None) -> None:
        n = len(ticks)
        self.symbol = symbol
        self.ts = np.fromiter((t.ts for t in ticks), dtype=np.int64, count=n)
        self.price = np.fromiter((t.price for t in ticks), dtype=np.float64, count=n)
        self.qty = np.fromiter((t.qty for t in ticks), dtype=np.float64, count=n)
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
        return [TickRow(sym, ts, px, q) for ts, px, q in
                zip(self.ts[i:j].tolist(), self.price[i:j].tolist(), self.qty[i:j].tolist())]

    def __getstate__(self) -> tuple:
        return (self.symbol, self.ts, self.price, self.qty, self.keys)

    def __setstate__(self, s: tuple) -> None:
        self.symbol, self.ts, self.price, self.qty, self.keys = s


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
    ticks: Sequence[Any]
    points: list[DecisionPoint]
    progress: int | None


@dataclass(slots=True)
class Emitted:
    """What one stage call produced, by kind; ``marks`` are (ts ns, equity quote) of the account.

    ``received_ns`` is copied from the input batch by the flow (a monotonic clock reading of when the batch
    entered the process), so latency can be measured downstream; the stages never read it."""

    bars: list = field(default_factory=list)
    features: list[FeatureVector] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    late: list = field(default_factory=list)
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

    def extend(self, other: "Emitted") -> None:
        """Append every list of ``other`` to this one."""
        for name in ("bars", "features", "decisions", "orders", "fills", "reports", "late", "marks", "scores",
                     "alerts", "audit", "dead", "intents"):
            getattr(self, name).extend(getattr(other, name))
