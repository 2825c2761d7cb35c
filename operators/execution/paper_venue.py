"""``PaperVenue``: the paper-trading venue behind ``levibot paper-venue`` — a venue that behaves like an exchange
(orders and market data arrive as they come, fills may be partial, orders may be refused or expire) but trades
against the recorded tape instead of a real book. Pure and picklable; the Kafka process is ``flows/paper_venue.py``.

Rules (event time = the ticks' time; an order is *due* from ``order.ts + latency_s``, or from just after the last
trade of its symbol the venue had seen when the order arrived, whichever is later — like an exchange, it never
fills against the past):

* **Acceptance.** An order is refused (``reject``) when its symbol is not traded here, its notional at the last
  price exceeds ``max_order_notional`` (quote currency), or it is ``reduce_only`` and would increase |position|.
  A client order id seen before is ignored (nothing is executed twice after a restart of the sender). Accepted
  orders get an ``ack``.
* **Fills.** A due market order takes at most ``max_participation`` of each tick's quantity (base units), at the
  tick's price moved against it by the half spread plus square-root impact of that slice (``operators.execution
  .broker.sqrt_impact_bps``, volume = the tick's quantity), paying ``taker_fee_bps`` of the filled notional: a
  ``partial_fill`` per slice and a ``fill`` for the last one. A limit order fills the same way but only at ticks at
  or through its limit price, at the limit price, with ``maker_fee_bps``.
* **Expiry.** What is left of an order ``ttl_s`` seconds of event time after it became due is cancelled
  (``cancel``, reason ``ttl``).
* **Cancel requests** (``order.cancels``): what is left of a working order is cancelled (``cancel``, the request's
  reason); an order that already ended is left alone; a request that arrives before its order (the topics are
  read as they come) is kept (at most ``max_pending_cancels``) and cancels the order when it arrives.
* **Snapshots.** Every ``snapshot_every`` ticks a ``positions`` report carries the venue's positions, open orders
  and cash, so the account can reconcile.

``phantom`` (tests only) books a quantity into the venue's own position without reporting it — the kind of
divergence reconciliation exists to catch.

>>> from schemas.events import Order, Tick
>>> v = PaperVenue(("BTC-USD",), cash=10_000.0, latency_s=0.0, max_participation=0.5, half_spread_bps=0.0,
...                impact_k_bps=0.0, taker_fee_bps=0.0)
>>> t = 1_700_000_000_000_000_000
>>> [r.kind for r in v.submit(Order(order_id="o1", strategy="s", symbol="BTC-USD", side="buy", qty=3.0,
...                                 type="market", ts=t))]
['ack']
>>> rs = v.on_ticks([Tick(symbol="BTC-USD", ts=t + i, price=100.0, qty=4.0, side="sell", trade_id=f"x{i}",
...                        venue="x") for i in range(2)])
>>> [(r.kind, r.last_qty, r.cum_qty, r.leaves_qty) for r in rs]
[('partial_fill', 2.0, 2.0, 1.0), ('fill', 1.0, 3.0, 0.0)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.events import CancelRequest, ExecutionReport, Order
from schemas.events.trading import ReportKind
from schemas.time import NS_PER_S as NS

from .broker import Position, sqrt_impact_bps

__all__ = ["PaperVenue"]


@dataclass(slots=True)
class _Working:
    order: Order
    due: int
    cum: float = 0.0
    fees: float = 0.0


class PaperVenue:
    """See the module docstring. Money in quote currency, quantities in base units, times ns / s as named."""

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        cash: float = 100_000.0,
        name: str = "paper",
        account: str = "default",
        latency_s: float = 0.05,
        max_participation: float = 0.25,
        half_spread_bps: float = 1.0,
        impact_k_bps: float = 10.0,
        max_impact_bps: float = 100.0,
        taker_fee_bps: float = 7.5,
        maker_fee_bps: float = 2.0,
        ttl_s: float = 600.0,
        max_order_notional: float = float("inf"),
        snapshot_every: int = 1000,
    ) -> None:
        if not 0.0 < max_participation <= 1.0:
            raise ValueError("max_participation must be in (0, 1]")
        self.symbols = frozenset(symbols)
        self.name, self.account = name, account
        self.latency_ns = round(latency_s * NS)
        self.ttl_ns = round(ttl_s * NS)
        self.max_participation = max_participation
        self.half_spread_bps, self.impact_k_bps, self.max_impact_bps = half_spread_bps, impact_k_bps, max_impact_bps
        self.taker_fee_bps, self.maker_fee_bps = taker_fee_bps, maker_fee_bps
        self.max_order_notional = max_order_notional
        self.snapshot_every = snapshot_every
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self.working: dict[str, dict[str, _Working]] = {}  # symbol -> client id -> order
        self.seen: set[str] = set()
        self.last_price: dict[str, float] = {}
        self.last_sym_ts: dict[str, int] = {}  # latest trade time per symbol (ns): the venue's clock
        self.last_ts = 0
        self.seq = 0
        self.ticks = 0
        self.phantom: dict[str, float] = {}
        self._orphans: dict[str, ExecutionReport] = {}  # restored orders that were still working
        self.pending_cancels: dict[str, str] = {}  # client id -> reason: cancel requests ahead of their order
        self.max_pending_cancels = 100_000

    # -- reports ----------------------------------------------------------------------------------------------
    def _report(self, kind: ReportKind, ts: int, o: Order | None = None, **kw: Any) -> ExecutionReport:
        extra: dict[str, Any] = (
            {}
            if o is None
            else dict(
                client_order_id=o.order_id,
                venue_order_id=f"{self.name}-{self.seq}",
                parent_id=o.parent_id,
                strategy=o.strategy,
                symbol=o.symbol,
                side=o.side,
                order_qty=o.qty,
            )
        )
        r = ExecutionReport(
            id=f"{self.name}:{self.account}:{self.seq}",
            account=self.account,
            venue=self.name,
            kind=kind,
            seq=self.seq,
            ts=ts,
            **extra,
            **kw,
        )
        self.seq += 1
        return r

    def position(self, symbol: str) -> float:
        p = self.positions.get(symbol)
        return (p.qty if p else 0.0) + self.phantom.get(symbol, 0.0)

    # -- the protocol -----------------------------------------------------------------------------------------
    def submit(self, order: Order) -> list[ExecutionReport]:
        oid = order.order_id
        if oid in self.seen:
            return []
        self.seen.add(oid)
        ts = max(order.ts, self.last_ts)
        sym = order.symbol
        why = self.pending_cancels.pop(oid, None)
        if why is not None:  # its cancel request came first
            return [self._report("cancel", ts, order, leaves_qty=order.qty, reason=why)]
        if sym not in self.symbols:
            return [self._report("reject", ts, order, reason="unknown_symbol")]
        px = self.last_price.get(sym, order.limit_price or 0.0)
        if px * order.qty > self.max_order_notional:
            return [self._report("reject", ts, order, reason="max_order_notional")]
        pos = self.position(sym)
        sign = 1.0 if order.side == "buy" else -1.0
        if order.reduce_only and (pos * sign >= 0.0 or order.qty > abs(pos) * (1 + 1e-12)):
            return [self._report("reject", ts, order, reason="reduce_only_would_increase")]
        # due from its time plus the latency, but never before it arrived: the venue's clock is its last trade
        arrived = self.last_sym_ts.get(sym, 0) + 1
        self.working.setdefault(sym, {})[oid] = _Working(order, max(order.ts + self.latency_ns, arrived))
        return [self._report("ack", ts, order, leaves_qty=order.qty)]

    def cancel(self, client_order_id: str, ts: int) -> list[ExecutionReport]:
        for book in self.working.values():
            w = book.pop(client_order_id, None)
            if w is not None:
                return [
                    self._report(
                        "cancel",
                        max(ts, self.last_ts),
                        w.order,
                        cum_qty=w.cum,
                        leaves_qty=w.order.qty - w.cum,
                        reason="cancel_requested",
                    )
                ]
        return []

    def on_cancel_request(self, req: CancelRequest) -> list[ExecutionReport]:
        """A request from the account (``order.cancels``): the order's remainder is cancelled (a ``cancel`` report,
        the request's reason). An order that already ended gets nothing; one not seen yet is cancelled when it
        arrives (the two topics are read in arrival order, so a request may overtake its order)."""
        oid = req.client_order_id
        if req.account != self.account:
            return []
        book = self.working.get(req.symbol)
        w = book.pop(oid, None) if book else None
        if w is not None:
            return [
                self._report(
                    "cancel",
                    max(req.ts, self.last_ts),
                    w.order,
                    cum_qty=w.cum,
                    leaves_qty=w.order.qty - w.cum,
                    reason=req.reason or "cancel_requested",
                )
            ]
        if oid not in self.seen:
            pending = self.pending_cancels
            pending[oid] = req.reason or "cancel_requested"
            if len(pending) > self.max_pending_cancels:  # bounded: the oldest request is forgotten
                del pending[next(iter(pending))]
        return []

    def on_ticks(self, ticks: Iterable[Any]) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for t in ticks:
            sym = t.symbol
            self.last_price[sym] = t.price
            self.last_ts = max(self.last_ts, t.ts)
            if t.ts > self.last_sym_ts.get(sym, 0):
                self.last_sym_ts[sym] = t.ts
            self.ticks += 1
            book = self.working.get(sym)
            if book:
                room = self.max_participation * float(t.qty)
                for oid in list(book):
                    w = book[oid]
                    if t.ts < w.due:
                        continue
                    if t.ts >= w.due + self.ttl_ns:
                        del book[oid]
                        out.append(
                            self._report(
                                "cancel", t.ts, w.order, cum_qty=w.cum, leaves_qty=w.order.qty - w.cum, reason="ttl"
                            )
                        )
                        continue
                    if room <= 0.0:
                        continue
                    r = self._fill(w, t, room)
                    if r is not None:
                        room -= r.last_qty
                        out.append(r)
                        if r.kind == "fill":
                            del book[oid]
            if self.snapshot_every and self.ticks % self.snapshot_every == 0:
                out.append(self.snapshot(t.ts))
        return out

    def _fill(self, w: _Working, t: Any, room: float) -> ExecutionReport | None:
        o = w.order
        sign = 1.0 if o.side == "buy" else -1.0
        qty = min(o.qty - w.cum, room)
        if o.type == "market":
            slip = self.half_spread_bps + sqrt_impact_bps(qty, float(t.qty), self.impact_k_bps, self.max_impact_bps)
            price = t.price * (1.0 + sign * slip / 1e4)
            fee_bps, liq = self.taker_fee_bps, "taker"
        else:
            lim = float(o.limit_price)  # type: ignore[arg-type]
            if (sign > 0 and t.price > lim) or (sign < 0 and t.price < lim):
                return None
            price, slip, fee_bps, liq = lim, sign * (lim / t.price - 1.0) * 1e4, self.maker_fee_bps, "maker"
        fee = price * qty * fee_bps / 1e4
        w.cum += qty
        w.fees += fee
        self.positions.setdefault(o.symbol, Position()).apply(sign, price, qty, fee)
        self.cash -= sign * qty * price + fee
        done = w.cum >= o.qty * (1 - 1e-12)
        return self._report(
            "fill" if done else "partial_fill",
            t.ts,
            o,
            last_qty=qty,
            last_price=price,
            cum_qty=w.cum,
            leaves_qty=0.0 if done else o.qty - w.cum,
            fee=fee,
            slippage_bps=slip,
            liquidity=liq,
        )

    def snapshot(self, ts: int) -> ExecutionReport:
        pos = {s: self.position(s) for s in sorted(set(self.positions) | set(self.phantom))}
        return self._report(
            "positions",
            max(ts, self.last_ts),
            positions={s: q for s, q in pos.items() if q != 0.0},
            open_orders=sorted(oid for b in self.working.values() for oid in b),
            cash=self.cash,
        )

    # -- restart ----------------------------------------------------------------------------------------------
    def restore(self, reports: Iterable[ExecutionReport]) -> int:
        """Rebuild from this venue's own earlier reports (topic order): the next ``seq``, the client ids seen, the
        positions and cash from the fills. Orders that were working are not restored (their remainder is reported
        as cancelled by the caller, reason ``venue_restart``). Returns how many reports were read."""
        n = 0
        for r in reports:
            if r.venue != self.name or r.account != self.account:
                continue
            n += 1
            self.seq = max(self.seq, r.seq + 1)
            if r.client_order_id:
                self.seen.add(r.client_order_id)
                if r.kind in ("ack", "partial_fill"):
                    self._orphans[r.client_order_id] = r
                else:
                    self._orphans.pop(r.client_order_id, None)
            if r.kind in ("fill", "partial_fill") and r.symbol and r.last_price:
                sign = 1.0 if r.side == "buy" else -1.0
                self.positions.setdefault(r.symbol, Position()).apply(sign, r.last_price, r.last_qty, r.fee)
                self.cash -= sign * r.last_qty * r.last_price + r.fee
            self.last_ts = max(self.last_ts, r.ts)
        return n

    def orphan_cancels(self) -> list[ExecutionReport]:
        """After :meth:`restore`: a ``cancel`` report (reason ``venue_restart``) for every order that was still
        working when the venue stopped (its working state is not kept across restarts)."""
        out = []
        for oid, r in sorted(self._orphans.items()):
            o = Order(
                order_id=oid,
                parent_id=r.parent_id,
                strategy=r.strategy or "unknown",
                symbol=r.symbol or "X",
                side=r.side or "buy",
                qty=max(r.order_qty, 1e-300),
                type="market",
                ts=r.ts,
            )
            out.append(
                self._report(
                    "cancel",
                    max(r.ts, self.last_ts),
                    o,
                    cum_qty=r.cum_qty,
                    leaves_qty=max(r.order_qty - r.cum_qty, 0.0),
                    reason="venue_restart",
                )
            )
        self._orphans.clear()
        return out
