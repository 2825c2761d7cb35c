"""Reports of a remote venue applied in event time: the account's view at a decision time ``T`` is the venue's
reports dated before ``T``, however the two topics interleave on arrival.

A remote venue's reports (``execution.reports``) and the market data (``ticks``) reach the flow on different topics,
so on arrival a report can be ahead of the ticks the account has processed. That happens after every recovery: the
flow resumes from its last snapshot and reads the reports of the orders it sent after that snapshot long before the
replayed ticks re-create those orders. Applied on arrival, such a report names an order the book does not know yet
(booked as an untracked fill), and the decisions replayed after it see a position they did not see the first time.

:class:`ReportHold` keeps the venue's reports in their sequence order and lets one through only once the account's
event time has passed the report's time ``ts`` (the venue's event time: the tick that filled, the order's arrival,
the snapshot time). The account drains it (:meth:`ReportHold.due`) before each decision time ``T`` with the reports
dated before ``T``, and after the decisions with those dated at or before its tick barrier (every symbol's progress:
every later decision time is after it).
So the reports applied before a decision are exactly those dated before it, on the first run and on every replay,
as long as the venue's reports of a time have arrived when the account decides at a later time (a venue that keeps
up with the market data; a venue that lags makes the first run see less than the replay, the same as before).

A report's time for the hold is never before the moment its order left the account: the account passes a key,
``max(report time, the account's barrier when the order was sent)`` for its own orders, and holds a report of an
order it has not sent yet (a child waiting for its release time, named by a report of an earlier run) until it
has sent it. So a venue that stamps an acknowledgement with the order's own time (the paper venue stamps
``max(order time, its last trade time)``) cannot reach a decision that came before the order was sent. A venue's
report times must not run ahead of the market data it trades on: a report dated ahead of every tick the account has
seen waits for the next one. A report is never dropped or reordered: the head blocks everything behind it (the
order manager checks the sequence numbers).

>>> from types import SimpleNamespace as R
>>> h = ReportHold()
>>> h.add([R(seq=0, ts=5), R(seq=1, ts=9), R(seq=2, ts=7)])
>>> [r.seq for r in h.due(9)]  # dated before 9; the third waits behind the second
[0]
>>> [r.seq for r in h.due(10)], len(h)
([1, 2], 0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ReportHold"]


class ReportHold:
    """A FIFO of one account's remote reports, released in event time (see the module docstring). Picklable."""

    __slots__ = ("queue", "held_max")

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.held_max = 0  # the most reports ever waiting at once (for the summary)

    def __len__(self) -> int:
        return len(self.queue)

    def __getstate__(self) -> tuple[Any, ...]:
        return (list(self.queue), self.held_max)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.queue = deque(s[0])
        self.held_max = s[1]

    def add(self, reports: Iterable[Any]) -> None:
        """Queue reports in their arrival (sequence) order."""
        self.queue.extend(reports)
        if len(self.queue) > self.held_max:
            self.held_max = len(self.queue)

    def due(self, before: int | None, key: Callable[[Any], int] | None = None) -> list[Any]:
        """Remove and return the reports at the head whose time is before ``before`` (ns; every one when None), in
        order. ``key(report)`` is a report's time for this purpose (default its ``ts``)."""
        q = self.queue
        if not q:
            return []
        if before is None:
            out = list(q)
            q.clear()
            return out
        out = []
        if key is None:
            while q and q[0].ts < before:
                out.append(q.popleft())
        else:
            while q and key(q[0]) < before:
                out.append(q.popleft())
        return out

    def head_ts(self) -> int | None:
        """The time of the report at the head (ns), None when nothing waits."""
        return self.queue[0].ts if self.queue else None
