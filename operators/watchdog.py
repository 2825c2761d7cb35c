"""Execution-report watchdog: which orders sent to a remote venue have had no execution report, and when that silence
is long enough to stop adding risk. Pure: no I/O, no thread; the caller passes the wall clock (ns) to every call
(``connectors.resilience.ReportSilenceWatchdog`` is the timer and the producer around it).

* An order is **unanswered** from the moment the flow sends it until the venue's first report that names it by
  ``client_order_id`` (any order report: ``ack``, ``partial_fill``, ``fill``, ``cancel``, ``reject``, ``expire``). A
  ``positions`` snapshot answers no order.
* Orders already answered are remembered (a bounded window of ids), so an order the flow re-sends after a recovery,
  whose report it has read again before the re-sent copy, is not counted as unanswered.
* :meth:`ReportWatchdog.check` reports a :class:`Silence` for an account once its oldest unanswered order has waited
  ``timeout_s`` or more. It fires **once** per silence: the account is re-armed when the venue answers again and no
  order of the account has been waiting ``timeout_s`` any more.

>>> w = ReportWatchdog(timeout_s=30)
>>> from types import SimpleNamespace as O
>>> w.sent([O(order_id="o1", symbol="BTC-USD"), O(order_id="o2", symbol="ETH-USD")], now_ns=0)
>>> w.reported([O(kind="ack", client_order_id="o2", account="default")], now_ns=1 * S)
>>> w.check(now_ns=29 * S)
[]
>>> s = w.check(now_ns=31 * S)[0]; (s.account, s.oldest_order_id, s.unanswered, round(s.oldest_age_s))
('default', 'o1', 1, 31)
>>> w.check(now_ns=40 * S)  # once per silence
[]
>>> w.reported([O(kind="fill", client_order_id="o1", account="default")], now_ns=41 * S); w.armed("default")
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from schemas.time import NS_PER_S as S


@dataclass(frozen=True)
class Silence:
    """An account whose oldest unanswered order has waited at least ``timeout_s``: that order's id and symbol, how
    long it has waited (s), and how many of the account's orders are unanswered."""

    account: str
    oldest_order_id: str
    oldest_symbol: str
    oldest_age_s: float
    unanswered: int
    timeout_s: float

    @property
    def reason(self) -> str:
        """The reason text of the reduce-only command (names the silence and the oldest unanswered order)."""
        return (
            f"no execution report for {self.unanswered} order(s) within {self.timeout_s:g}s; oldest unanswered "
            f"{self.oldest_order_id} ({self.oldest_symbol}), sent {self.oldest_age_s:.1f}s ago: the venue is "
            "silent or the flow cannot read execution.reports"
        )


class ReportWatchdog:
    """Unanswered orders per account (see the module docstring). ``account_of(symbol)`` names an order's account
    (orders carry no account); ``remember`` bounds the window of answered ids and the unanswered orders kept (the
    oldest are kept: they are what the watchdog reports)."""

    def __init__(
        self, timeout_s: float, *, account_of: Callable[[str], str] = lambda _s: "default", remember: int = 100_000
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_ns = int(timeout_s * S)
        self.timeout_s = float(timeout_s)
        self.account_of = account_of
        self.remember = remember
        # order id -> (sent ns, account, symbol); insertion order is send order, so the first entry is the oldest
        self.pending: dict[str, tuple[int, str, str]] = {}
        self._answered: set[str] = set()
        self._answered_order: deque[str] = deque()
        self._fired: set[str] = set()
        self.dropped = 0  # unanswered orders not kept (beyond ``remember``)

    def sent(self, orders: Iterable[Any], now_ns: int) -> None:
        """Orders the flow has just sent (``order_id``, ``symbol``)."""
        pending, answered = self.pending, self._answered
        for o in orders:
            oid = o.order_id
            if oid in answered or oid in pending:
                continue
            if len(pending) >= self.remember:
                self.dropped += 1
                continue
            pending[oid] = (now_ns, self.account_of(o.symbol), o.symbol)

    def reported(self, reports: Iterable[Any], now_ns: int) -> None:
        """Execution reports the flow has just read (``kind``, ``client_order_id``, ``account``)."""
        spoke: set[str] = set()
        for r in reports:
            if r.kind == "positions":
                continue
            oid = r.client_order_id
            if oid is None:
                continue
            self.pending.pop(oid, None)
            spoke.add(r.account)
            if oid not in self._answered:
                self._answered.add(oid)
                self._answered_order.append(oid)
                if len(self._answered_order) > self.remember:
                    self._answered.discard(self._answered_order.popleft())
        for acc in spoke & self._fired:  # the venue answers again: re-arm once nothing of it waits too long
            oldest = self._oldest(acc)
            if oldest is None or now_ns - oldest[1][0] < self.timeout_ns:
                self._fired.discard(acc)

    def _oldest(self, account: str) -> tuple[str, tuple[int, str, str]] | None:
        for oid, entry in self.pending.items():
            if entry[1] == account:
                return oid, entry
        return None

    def armed(self, account: str) -> bool:
        """False while a silence of ``account`` has fired and the venue has not answered since."""
        return account not in self._fired

    def status(self, now_ns: int) -> tuple[int, float]:
        """(unanswered orders, age in s of the oldest of them; 0 when none) over every account."""
        if not self.pending:
            return 0, 0.0
        first = next(iter(self.pending.values()))
        return len(self.pending), max(0.0, (now_ns - first[0]) / S)

    def check(self, now_ns: int) -> list[Silence]:
        """The accounts whose silence fires now (at most once per silence each)."""
        out: list[Silence] = []
        seen: dict[str, list[Any]] = {}  # account -> [first order id, symbol, ts, count]
        for oid, (t, acc, sym) in self.pending.items():
            if now_ns - t < self.timeout_ns:
                break  # send order: every later order is younger
            s = seen.get(acc)
            if s is None:
                seen[acc] = [oid, sym, t, 1]
            else:
                s[3] += 1
        for acc, (oid, sym, t, _n) in seen.items():
            if acc in self._fired:
                continue
            self._fired.add(acc)
            n = sum(1 for e in self.pending.values() if e[1] == acc)
            out.append(Silence(acc, oid, sym, (now_ns - t) / S, n, self.timeout_s))
        return out
