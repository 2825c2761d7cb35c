"""[Reference: operators/.../execution_stage.py as of commit ae8e5c8, kept verbatim but for absolute imports; see __init__.py.] The execution stage of one account: approved parents become orders, orders are tracked to the end.

It owns the :class:`~operators.execution.orders.OrderManager` (the order state machine and what is in flight),
the slicing of approved parents (TWAP children over ``twap_horizon_s`` every ``twap_slice_s``, or one market
order) and the venue: :class:`~operators.execution.venue.SimVenue` in process (the embedded default, backtests,
simulated live runs), or none when the venue is remote (``levibot paper-venue`` or an exchange adapter behind the
``orders`` / ``execution.reports`` topics). With a remote venue the children of a parent wait here until the
account's event time reaches their release time (:meth:`ExecutionStage.send_due`), so an operator's halt can still
withdraw the ones not sent.

Bytewax flows are acyclic, so the stage runs inside the account's step: the account hands it approved decisions,
ticks and reports, and books the fills the stage returns (the account's positions come from reports only). Every
method that talks to an in-process venue returns the reports the venue answered; the account applies them
(:meth:`ExecutionStage.apply`) before its next decision. Pure and picklable.
"""

from __future__ import annotations

from typing import Any, Iterable

from operators.ids import stable_id
from operators.messages import Emitted
from schemas.events import CancelRequest, ExecutionReport, Order, RiskDecision

from .orders import OrderManager
from operators.execution.slicing import ChildQueue, twap_children
from operators.execution.venue import Venue, fill_of_report

__all__ = ["ExecutionStage"]

_NEVER = 2**63 - 1


class ExecutionStage:
    """Orders of one account: ``execution`` ``"twap"`` or ``"market"``; ``venue`` in process, or None (remote)."""

    def __init__(
        self,
        venue: Venue | None,
        *,
        execution: str = "twap",
        twap_horizon_s: float = 30.0,
        twap_slice_s: float = 10.0,
        account: str = "default",
    ) -> None:
        if execution not in ("twap", "market"):
            raise ValueError(f"execution must be 'twap' or 'market', got {execution!r}")
        self.venue = venue
        self.account = account
        self.execution = execution
        self.twap_horizon_s = twap_horizon_s
        self.twap_slice_s = twap_slice_s
        self.oms = OrderManager()
        self.children = ChildQueue()  # remote venue: children not yet due (released in event time)
        self.sent_until = 0  # remote venue: event time up to which due children were sent (ns)

    @property
    def remote(self) -> bool:
        """True when reports arrive from elsewhere (``execution.reports``), not from an in-process venue."""
        return self.venue is None

    # -- what is working --------------------------------------------------------------------------------------
    def in_flight(self, symbol: str) -> float:
        """Signed quantity of ``symbol`` still working (sent or waiting for release; base units, + buy)."""
        return self.oms.in_flight(symbol)

    def add_in_flight(self, book: dict[str, float]) -> dict[str, float]:
        """``book`` (signed base units per symbol) plus what is still working, in place; returned."""
        oms = self.oms
        for s in oms.by_symbol:
            q = oms.in_flight(s)
            if q:
                book[s] = book.get(s, 0.0) + q
        return book

    # -- reports ----------------------------------------------------------------------------------------------
    def apply(self, reports: Iterable[ExecutionReport], out: Emitted) -> list[ExecutionReport]:
        """Apply reports to the order states (each at most once); they and the fills they carry go to ``out``.
        Returns the fill reports for the account to book."""
        book: list[ExecutionReport] = []
        oms = self.oms
        made = getattr(self.venue, "fills", None) or {}  # the in-process venue's own Fill of a report, if any
        for r in reports:
            out.reports.append(r)
            fill = made.pop(r.id, None)
            for f in oms.apply(r):
                book.append(f)
                out.fills.append(fill if fill is not None and f is r else fill_of_report(f))
        return book

    def on_ticks(self, rows: Any) -> list[ExecutionReport]:
        """Market data for the in-process venue (stream order); the reports it caused. Remote: nothing."""
        return self.venue.on_ticks(rows) if self.venue is not None else []

    # -- orders -----------------------------------------------------------------------------------------------
    def submit(
        self, d: RiskDecision, strategy: str, intent_ts: int, target: float, reduce_only: bool, t: int, out: Emitted
    ) -> list[ExecutionReport]:
        """Send what decision ``d`` approved at event time ``t`` (ns): TWAP children of the parent ``d.id``, or one
        market order. In process, every order goes to the venue now (children carry their release time); remote,
        the due ones go to ``out.orders`` and later children wait for :meth:`send_due`."""
        sym = d.symbol
        if self.execution == "twap":
            parent = Order(
                order_id=d.id,
                strategy=strategy,
                symbol=sym,
                side=d.side,
                qty=d.approved_qty,
                type="market",
                tif="IOC",
                ts=t,
                reduce_only=reduce_only,
            )
            orders = twap_children(parent, self.twap_horizon_s, self.twap_slice_s)
        else:
            orders = [
                Order(
                    order_id=stable_id("ord", strategy, sym, intent_ts, target),
                    parent_id=d.id,
                    strategy=strategy,
                    symbol=sym,
                    side=d.side,
                    qty=d.approved_qty,
                    type="market",
                    tif="IOC",
                    ts=t,
                    reduce_only=reduce_only,
                )
            ]
        reports: list[ExecutionReport] = []
        oms, venue = self.oms, self.venue
        for o in orders:
            oms.new(o)
            if venue is not None:
                out.orders.append(o)
                reports.extend(venue.submit(o))
            elif o.ts <= t:
                out.orders.append(o)
            else:  # a later child: sent when the account's event time reaches it
                oms.open[o.order_id].sent = False
                self.children.push([o])
        return reports

    def send_due(self, until: int | None, out: Emitted) -> None:
        """Remote venue: send the children whose release time has come (all of them when ``until`` is None)."""
        if until is not None:
            self.sent_until = max(self.sent_until, until)
        for o in self.children.pop_due(until if until is not None else _NEVER):
            st = self.oms.state(o.order_id)
            if st is not None and st.status == "new" and not st.sent:
                st.sent = True
                out.orders.append(o)

    def cancel_open(self, sym: str, t: int, strategy: str | None = None) -> list[ExecutionReport]:
        """A new target supersedes the symbol's open orders (of ``strategy`` only, when given): in process they
        are cancelled at the venue at ``t`` (ns); remote, the children not yet sent are withdrawn (sent ones are
        IOC and end on their own)."""
        oms = self.oms
        if self.venue is None:
            for oid in oms.open_ids(sym):
                st = oms.open[oid]
                if not st.sent and (strategy is None or st.order.strategy == strategy):
                    oms.withdraw(oid, "superseded")
            return []
        reports: list[ExecutionReport] = []
        for oid in oms.open_ids(sym):
            if strategy is not None and oms.open[oid].order.strategy != strategy:
                continue
            reports.extend(self.venue.cancel(oid, t))
        return reports

    def stop(self, keep_reducing: bool, scope: str, reason: str, t: int, out: Emitted) -> list[ExecutionReport]:
        """Stop what is working in ``scope`` (``account:...``, ``symbol:<s>`` or ``strategy:<name>``) at event time
        ``t`` (ns); with ``keep_reducing`` only the orders that add risk (not ``reduce_only``).

        Remote venue: the children not sent yet are withdrawn here, and for every sent order still working a
        :class:`~schemas.events.CancelRequest` goes to ``out.cancels`` (once per order; its quantity counts as
        in flight until the venue's ``cancel`` or last fill says how it ended). In process: the venue cancels them
        now; the reports it answered are returned."""
        kind, name = scope.split(":", 1)
        oms, venue = self.oms, self.venue
        reports: list[ExecutionReport] = []
        for oid in oms.open_ids():
            st = oms.open[oid]
            o = st.order
            if keep_reducing and o.reduce_only:
                continue
            if kind == "symbol" and o.symbol != name or kind == "strategy" and o.strategy != name:
                continue
            if venue is not None:
                reports.extend(venue.cancel(oid, t))
            elif not st.sent:
                oms.withdraw(oid, "withdrawn_" + reason)
            elif not st.cancel_requested:
                st.cancel_requested = True
                out.cancels.append(
                    CancelRequest(
                        id=f"cxl:{oid}",
                        account=self.account,
                        client_order_id=oid,
                        symbol=o.symbol,
                        strategy=o.strategy,
                        reason=reason,
                        ts=t,
                    )
                )
        return reports

    def on_command(self, action: str, scope: str, t: int, out: Emitted) -> list[ExecutionReport]:
        """An applied halt or reduce-only stops what is working in its scope (:meth:`stop`): a halt every order, a
        reduce-only those that add risk. In process the reports of the cancels are returned."""
        if action not in ("halt", "reduce_only"):
            return []
        return self.stop(action == "reduce_only", scope, "operator_" + action, t, out)
