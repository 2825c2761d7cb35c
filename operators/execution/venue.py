"""The execution boundary: the one :class:`Venue` protocol, and :class:`SimVenue`, the simulated venue behind it.

A venue receives orders and cancel requests and answers only with :class:`schemas.events.ExecutionReport`
events: ``ack`` when an order is accepted, ``fill`` / ``partial_fill`` when (part of) it executes, ``cancel``,
``reject`` and ``expire``, and ``positions`` snapshots for reconciliation. The account stage learns about
executions *only* from these reports, whichever venue answers: :class:`SimVenue` in process (the embedded default
and backtests, deterministic in event time), the separate ``levibot paper-venue`` process (the same class behind
Kafka), or an exchange adapter implementing the same protocol.

Report ids are ``<venue>:<account>:<seq>`` with ``seq`` counting the venue's reports for the account from 0, so a
consumer can deduplicate by id and detect gaps by ``seq``.

>>> from collections import namedtuple
>>> from schemas.events import Order
>>> T = namedtuple("T", "symbol ts price qty")
>>> v = SimVenue(10_000.0, BrokerConfig(latency_s=0, half_spread_bps=0, impact_k_bps=0, max_impact_bps=0,
...                                     taker_fee_bps=10))
>>> [r.kind for r in v.submit(Order(order_id="o1", strategy="s", symbol="BTC-USD", side="buy", qty=2.0,
...                                 type="market", ts=10**18))]
['ack']
>>> (r,) = v.on_ticks([T("BTC-USD", 10**18, 100.0, 8.0)])
>>> r.kind, r.last_qty, r.last_price, round(r.fee, 6), r.cum_qty, r.leaves_qty, r.id
('fill', 2.0, 100.0, 0.2, 2.0, 0.0, 'sim:default:1')
>>> v.snapshot(10**18).positions
{'BTC-USD': 2.0}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from operators.ids import stable_id
from schemas.events import ExecutionReport, Fill, Order

from .broker import BrokerConfig, SimBroker

__all__ = ["Venue", "SimVenue", "fill_of_report"]


@runtime_checkable
class Venue(Protocol):
    """What the execution stage talks to. Every method returns the reports it caused (possibly none); a venue
    behind a network returns none and delivers its reports later on ``execution.reports``."""

    name: str

    def submit(self, order: Order) -> list[ExecutionReport]:
        """Accept (``ack``) or refuse (``reject``) a new order; an ``order_id`` seen before is ignored."""
        ...

    def cancel(self, client_order_id: str, ts: int) -> list[ExecutionReport]:
        """Cancel what is left of an open order at event time ``ts`` (ns); unknown or finished ids: no report."""
        ...

    def on_ticks(self, ticks: Iterable[Any]) -> list[ExecutionReport]:
        """Market data in stream order (any symbols); the fills and expiries it causes."""
        ...

    def snapshot(self, ts: int) -> ExecutionReport:
        """A ``positions`` report: the venue's positions, open orders and cash at ``ts`` (ns)."""
        ...


class SimVenue:
    """:class:`~operators.execution.broker.SimBroker` behind the :class:`Venue` protocol (fill rules, impact, fees:
    see that module). Deterministic in event time and picklable; state is the broker's plus a report counter."""

    def __init__(
        self, cash: float, cfg: BrokerConfig = BrokerConfig(), *, name: str = "sim", account: str = "default"
    ) -> None:
        self.name = name
        self.account = account
        self.broker = SimBroker(cash, cfg)
        self.seq = 0
        self.orders: dict[str, Order] = {}  # open orders by client id
        # fill report id -> the broker's Fill, the very one ``fill_of_report`` would build; taken (and so emptied)
        # by whoever applies the reports
        self.fills: dict[str, Fill] = {}

    def _report(self, kind: str, ts: int, o: Order | None = None, **kw: Any) -> ExecutionReport:
        seq = self.seq
        self.seq = seq + 1
        name = self.name
        if o is None:
            return ExecutionReport(
                id=f"{name}:{self.account}:{seq}",
                account=self.account,
                venue=name,
                kind=kind,  # type: ignore[arg-type]
                seq=seq,
                ts=ts,
                **kw,
            )
        return ExecutionReport(
            id=f"{name}:{self.account}:{seq}",
            account=self.account,
            venue=name,
            kind=kind,  # type: ignore[arg-type]
            seq=seq,
            ts=ts,
            client_order_id=o.order_id,
            venue_order_id=f"{name}-{o.order_id}",
            parent_id=o.parent_id,
            strategy=o.strategy,
            symbol=o.symbol,
            side=o.side,
            order_qty=o.qty,
            **kw,
        )

    def submit(self, order: Order) -> list[ExecutionReport]:
        if order.order_id in self.orders:
            return []
        self.orders[order.order_id] = order
        self.broker.submit(order)
        return [self._report("ack", order.ts, order, leaves_qty=order.qty)]

    def cancel(self, client_order_id: str, ts: int) -> list[ExecutionReport]:
        o = self.orders.pop(client_order_id, None)
        if o is None or not self.broker.cancel(client_order_id):
            return []
        return [self._report("cancel", max(ts, o.ts), o, reason="cancel_requested")]

    def on_ticks(self, ticks: Iterable[Any]) -> list[ExecutionReport]:
        return self._reports(self.broker.on_ticks(ticks))

    def on_tick_columns(self, sym: str, ts: np.ndarray, price: np.ndarray, qty: np.ndarray) -> list[ExecutionReport]:
        """:meth:`on_ticks` of one symbol's trades as columns (``ts`` int64 ns, ``price``, ``qty`` float64): the
        same reports (see :meth:`SimBroker.on_tick_columns <operators.execution.broker.SimBroker.on_tick_columns>`)."""
        return self._reports(self.broker.on_tick_columns(sym, ts, price, qty))

    def _reports(self, fills: list[Fill]) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        if fills:
            for f in fills:
                o = self.orders.pop(f.order_id)
                r = self._report(
                    "fill",
                    f.ts,
                    o,
                    last_qty=f.qty,
                    last_price=f.price,
                    cum_qty=f.qty,
                    leaves_qty=0.0,
                    fee=f.fee,
                    slippage_bps=f.slippage_bps,
                    liquidity=f.liquidity,
                )
                self.fills[r.id] = f
                out.append(r)
        cancelled = self.broker.cancelled
        if cancelled:  # IOC/FOK limits that could not fill, DAY limits past their day
            for oid in cancelled:
                gone = self.orders.pop(oid, None)
                if gone is not None:
                    out.append(self._report("expire", gone.ts, gone, reason="time_in_force"))
            cancelled.clear()
        return out

    def snapshot(self, ts: int) -> ExecutionReport:
        b = self.broker
        return self._report(
            "positions",
            ts,
            positions={s: p.qty for s, p in b.positions.items() if p.qty != 0.0},
            open_orders=sorted(self.orders),
            cash=b.cash,
        )


def fill_of_report(r: ExecutionReport) -> Fill:
    """The ``fills`` topic's :class:`~schemas.events.Fill` for a fill report (id ``fil:<client order id>:<cum>``
    stays deterministic across replays; a complete fill of a whole order keeps the broker's historical id)."""
    assert r.kind in ("fill", "partial_fill") and r.last_price is not None and r.client_order_id and r.symbol and r.side
    fid = (
        stable_id("fil", r.client_order_id)
        if r.kind == "fill" and r.cum_qty == r.last_qty
        else stable_id("fil", r.client_order_id, repr(r.cum_qty))
    )
    return Fill(
        fill_id=fid,
        order_id=r.client_order_id,
        symbol=r.symbol,
        side=r.side,
        price=r.last_price,
        qty=r.last_qty,
        fee=r.fee,
        slippage_bps=r.slippage_bps,
        ts=r.ts,
        liquidity=r.liquidity or "taker",
    )
