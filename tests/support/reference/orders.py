"""[Reference: operators/.../orders.py as of commit ae8e5c8, kept verbatim but for absolute imports; see __init__.py.] Order state machine and in-flight tracking for the execution stage.

Every order the flow sends is tracked by its client order id (the deterministic ``Order.order_id``) through

``new`` → ``acknowledged`` → ``partially_filled`` → ``filled`` | ``cancelled`` | ``rejected`` | ``expired``

driven only by :class:`schemas.events.ExecutionReport` events. ``new`` is the state between sending and the
venue's ``ack``; a fill may arrive without an ack (some venues skip it) and counts as one. Terminal states never
change again; a report for a terminal or unknown order is counted in ``ignored`` (it is an anomaly the account
reconciles), never applied twice. Reports are applied at most once: per venue, a report whose ``seq`` is not above
the last applied one is a duplicate (``duplicates``), and a jump in ``seq`` is recorded in ``gaps`` (the account
reconciles on it).

Client ids are never reused: :meth:`OrderManager.new` refuses an id it has seen, open or finished (the last
``remember`` finished ids are kept; the deterministic ids make a collision a bug, not an accident).

``in_flight(symbol)`` is the signed quantity still working at the venue (base units; + buy): the account adds it to
its position when it sizes the next order, so nothing is ordered twice while reports are on their way.

>>> from schemas.events import ExecutionReport, Order
>>> m = OrderManager()
>>> o = Order(order_id="c1", strategy="s", symbol="BTC-USD", side="buy", qty=3.0, type="market", ts=10**18)
>>> m.new(o); m.in_flight("BTC-USD")
3.0
>>> def rep(seq, kind, **kw):
...     return ExecutionReport(id=f"v:a:{seq}", venue="v", kind=kind, seq=seq, client_order_id="c1",
...                            symbol="BTC-USD", side="buy", order_qty=3.0, ts=10**18, **kw)
>>> [len(m.apply(r)) for r in (rep(0, "ack"), rep(1, "partial_fill", last_qty=1.0, last_price=10.0, cum_qty=1.0),
...                            rep(1, "partial_fill", last_qty=1.0, last_price=10.0, cum_qty=1.0))]
[0, 1, 0]
>>> m.state("c1").status, m.in_flight("BTC-USD"), m.duplicates
('partially_filled', 2.0, 1)
>>> _ = m.apply(rep(2, "cancel")); m.state("c1").status, m.in_flight("BTC-USD")
('cancelled', 0.0)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from schemas.events import ExecutionReport, Order

__all__ = ["OrderStatus", "OrderState", "OrderManager", "TERMINAL"]

OrderStatus = Literal["new", "acknowledged", "partially_filled", "filled", "cancelled", "rejected", "expired"]
TERMINAL: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "expired"})
_TERMINAL_OF = {"cancel": "cancelled", "reject": "rejected", "expire": "expired"}


@dataclass(slots=True)
class OrderState:
    """One tracked order: ``cum_qty`` filled (base units), ``notional`` filled (quote), ``fees`` (quote)."""

    order: Order
    status: OrderStatus = "new"
    cum_qty: float = 0.0
    notional: float = 0.0
    fees: float = 0.0
    reason: str = ""
    sent: bool = True  # False while a child waits in the account for its release time
    cancel_requested: bool = False  # a CancelRequest went to the remote venue; it still works until it reports

    @property
    def leaves(self) -> float:
        """Quantity still working (base units; 0 once terminal)."""
        return 0.0 if self.status in TERMINAL else max(self.order.qty - self.cum_qty, 0.0)

    @property
    def avg_price(self) -> float:
        """Average fill price (quote/base; 0 before the first fill)."""
        return self.notional / self.cum_qty if self.cum_qty > 0 else 0.0


class OrderManager:
    """Open orders, their states, and the report bookkeeping of the account's venues; picklable."""

    def __init__(self, remember: int = 200_000) -> None:
        self.open: dict[str, OrderState] = {}
        self.by_symbol: dict[str, dict[str, None]] = {}  # symbol -> open client ids (insertion order)
        self.finished: deque[str] = deque(maxlen=remember)
        self._finished_set: set[str] = set()
        self.last_seq: dict[str, int] = {}
        self.duplicates = 0
        self.ignored = 0
        self.gaps: list[tuple[str, int, int]] = []  # (venue, expected seq, got)
        self.counts: dict[str, int] = {}
        self._recent: dict[str, OrderState] = {}  # states of recently finished orders, for queries

    # -- sending ----------------------------------------------------------------------------------------------
    def new(self, order: Order) -> None:
        """Track a new order before it is sent; ``ValueError`` if its client id was used before."""
        oid = order.order_id
        if oid in self.open or oid in self._finished_set:
            raise ValueError(f"client order id {oid!r} was used before")
        self.open[oid] = OrderState(order)
        self.by_symbol.setdefault(order.symbol, {})[oid] = None

    # -- queries ----------------------------------------------------------------------------------------------
    def state(self, client_order_id: str) -> OrderState | None:
        """The open order's state (None once finished and forgotten, or unknown)."""
        return self.open.get(client_order_id) or self._recent.get(client_order_id)

    def in_flight(self, symbol: str) -> float:
        """Signed quantity of ``symbol`` still working at the venue (base units; + buy)."""
        ids = self.by_symbol.get(symbol)
        if not ids:
            return 0.0
        tot = 0.0
        for oid in ids:
            st = self.open[oid]
            tot += st.leaves if st.order.side == "buy" else -st.leaves
        return tot

    def open_ids(self, symbol: str | None = None) -> list[str]:
        """Client ids of open orders (of ``symbol``, or all), in the order they were sent."""
        if symbol is not None:
            return list(self.by_symbol.get(symbol, ()))
        return list(self.open)

    def open_children(self, parent_id: str) -> list[str]:
        """Open client ids whose ``parent_id`` is ``parent_id``."""
        return [oid for oid, st in self.open.items() if st.order.parent_id == parent_id]

    # -- reports ----------------------------------------------------------------------------------------------
    def apply(self, r: ExecutionReport) -> list[ExecutionReport]:
        """Apply one report; returns ``[r]`` when it is a fill to book (the ledger books it), else ``[]``."""
        last = self.last_seq.get(r.venue)
        if last is not None and r.seq <= last:
            self.duplicates += 1
            return []
        if last is not None and r.seq != last + 1:
            self.gaps.append((r.venue, last + 1, r.seq))
        self.last_seq[r.venue] = r.seq
        self.counts[r.kind] = self.counts.get(r.kind, 0) + 1
        if r.kind == "positions":
            return []
        oid = r.client_order_id
        st = self.open.get(oid) if oid is not None else None
        if st is None:
            self.ignored += 1
            # a fill of an order this account does not track (sent before a restart and forgotten, or by someone
            # else) still moved the venue's position: book it so the ledger matches the venue, and count it
            return [r] if r.kind in ("fill", "partial_fill") else []
        if r.kind == "ack":
            if st.status == "new":
                st.status = "acknowledged"
            return []
        if r.kind in ("fill", "partial_fill"):
            st.cum_qty += r.last_qty
            st.notional += r.last_qty * (r.last_price or 0.0)
            st.fees += r.fee
            st.status = "filled" if r.kind == "fill" or st.cum_qty >= st.order.qty * (1 - 1e-12) else "partially_filled"
            if st.status == "filled":
                self._finish(oid)  # type: ignore[arg-type]
            return [r]
        st.status = _TERMINAL_OF[r.kind]  # type: ignore[assignment]
        st.reason = r.reason
        self._finish(oid)  # type: ignore[arg-type]
        return []

    def withdraw(self, client_order_id: str, reason: str) -> None:
        """Cancel an order that was never sent (a child withdrawn before its release): terminal at once."""
        st = self.open.get(client_order_id)
        if st is None or st.sent:
            raise ValueError(f"{client_order_id!r} is not an unsent open order")
        st.status = "cancelled"
        st.reason = reason
        self._finish(client_order_id)

    def _finish(self, oid: str) -> None:
        st = self.open.pop(oid)
        ids = self.by_symbol.get(st.order.symbol)
        if ids is not None:
            ids.pop(oid, None)
        if len(self.finished) == self.finished.maxlen:
            old = self.finished[0]
            self._finished_set.discard(old)
            self._recent.pop(old, None)
        self.finished.append(oid)
        self._finished_set.add(oid)
        recent = self._recent
        recent[oid] = st
        if len(recent) > 10_000:  # keep the last states for queries; ids stay in ``finished``
            for k in list(recent)[:5_000]:
                del recent[k]
