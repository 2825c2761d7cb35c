"""Multi-symbol paper broker for child orders: latency, half-spread, square-root impact, fees, limit orders,
positions with realised/unrealised P&L and equity, and a rebuild from fills after a restart.

Fill rule (event time, deterministic): an order with ``ts`` is *due* from ``ts + latency_s``; it is tried
against the ticks of its symbol in stream order, from the first tick at or after that time.

* **Market** order: fills completely at the first due tick, at
  ``price = tick.price * (1 + side * slippage_bps / 1e4)`` (side +1 buy, −1 sell: always against us) with
  ``slippage_bps = half_spread_bps + min(max_impact_bps, impact_k_bps * sqrt(qty / V))`` — the square-root
  impact law; ``qty`` base units, ``V`` the symbol's traded volume (base units) in the ``volume_window_s``
  seconds ending at the fill tick, that tick included (a stand-in for "bar volume": with the default 1800 s it
  is the last 30-minute bar's volume); ``V = 0`` gives ``max_impact_bps``. Taker fee ``taker_fee_bps`` of
  the filled notional (quote), paid from cash.
* **Limit** order: fills completely at ``limit_price`` at the first due tick that trades at or through it
  (buy: ``tick.price <= limit``; sell: ``>=``), maker fee ``maker_fee_bps`` (negative = rebate), no impact;
  ``Fill.slippage_bps`` reports ``±(limit / tick − 1) * 1e4`` (positive = worse than the tick). ``IOC`` and
  ``FOK`` limits that cannot fill at their first due tick are cancelled; ``DAY`` expires 24 h after ``ts``;
  ``GTC`` waits.

Fill ids are ``stable_id("fil", order_id)`` (one fill per order). Accounting per symbol (:class:`Position`):
average entry price; realised P&L (gross, quote) booked when a position is reduced, closed or flipped; fees
kept apart. Identity (tested): ``equity = cash + Σ qty * mark = initial cash + Σ realised − Σ fees + Σ
unrealised``. Picklable; state is bounded by the open orders and the ticks of one volume window.

>>> from collections import namedtuple
>>> from schemas.events import Order
>>> T = namedtuple("T", "symbol ts price qty")
>>> b = SimBroker(10_000.0, BrokerConfig(latency_s=0, half_spread_bps=1, impact_k_bps=10, taker_fee_bps=5))
>>> b.submit(Order(order_id="o1", strategy="s", symbol="BTC-USD", side="buy", qty=2.0, type="market", ts=10**18))
>>> f = b.on_ticks([T("BTC-USD", 10**18, 100.0, 8.0)])[0]       # V = 8: impact 10 * sqrt(2/8) = 5 bps
>>> round(f.price, 10), round(f.fee, 10), f.slippage_bps
(100.06, 0.10006, 6.0)
>>> round(b.equity(), 10)                                       # cash 10000 - 200.12 - 0.10006, + 2 * 100
9999.77994
"""

from __future__ import annotations

import math
from collections import deque, namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Literal

import numpy as np

from operators.ids import stable_id
from schemas.events import Fill, Order, PortfolioSnapshot
from schemas.time import NS_PER_S as NS

__all__ = ["BrokerConfig", "Position", "SimBroker", "sqrt_impact_bps"]


@dataclass(frozen=True)
class BrokerConfig:
    """``latency_s``: order time to earliest fill (s); ``half_spread_bps``: half the bid-ask spread paid by market
    orders (bps of price); ``impact_k_bps``: square-root impact coefficient (bps at qty = V); ``max_impact_bps``:
    impact cap (bps); ``volume_window_s``: window of traded volume V (s); ``taker_fee_bps``/``maker_fee_bps``:
    bps of notional (maker may be negative, a rebate)."""

    latency_s: float = 0.05
    half_spread_bps: float = 1.0
    impact_k_bps: float = 10.0
    max_impact_bps: float = 100.0
    volume_window_s: float = 1800.0
    taker_fee_bps: float = 7.5
    maker_fee_bps: float = 2.0


def sqrt_impact_bps(qty: float, volume: float, k_bps: float, cap_bps: float) -> float:
    """Square-root impact ``min(cap, k * sqrt(qty / volume))`` in bps; ``cap`` when ``volume <= 0``.

    >>> sqrt_impact_bps(1.0, 100.0, 10.0, 50.0), sqrt_impact_bps(1.0, 0.0, 10.0, 50.0)
    (1.0, 50.0)
    """
    if volume <= 0:
        return cap_bps
    return min(cap_bps, k_bps * math.sqrt(qty / volume))


@dataclass
class Position:
    """One symbol: ``qty`` signed base units, ``avg_price`` quote/base of the open position (0 when flat),
    ``realised`` gross realised P&L (quote), ``fees`` paid (quote), ``traded`` notional (quote).

    >>> p = Position(); p.apply(1, 100.0, 2.0, 0.0); p.apply(-1, 110.0, 3.0, 0.0)
    >>> p.qty, p.avg_price, p.realised, p.unrealised(100.0)
    (-1.0, 110.0, 20.0, 10.0)
    """

    qty: float = 0.0
    avg_price: float = 0.0
    realised: float = 0.0
    fees: float = 0.0
    traded: float = 0.0

    def apply(self, sign: float, price: float, qty: float, fee: float) -> None:
        """Book an execution of ``qty`` at ``price``, ``sign`` +1 buy / −1 sell, paying ``fee``."""
        signed = sign * qty
        pos = self.qty
        if pos == 0 or (pos > 0) == (signed > 0):
            new = pos + signed
            self.avg_price = (self.avg_price * abs(pos) + price * qty) / abs(new)
        else:
            closed = min(abs(pos), qty)
            self.realised += closed * (price - self.avg_price) * (1.0 if pos > 0 else -1.0)
            new = pos + signed
            if abs(new) < 1e-12:
                new = 0.0
            if new != 0 and (new > 0) != (pos > 0):
                self.avg_price = price
            elif new == 0:
                self.avg_price = 0.0
        self.qty = new
        self.fees += fee
        self.traded += price * qty

    def unrealised(self, mark: float) -> float:
        """P&L of the open position at ``mark`` (quote)."""
        return self.qty * (mark - self.avg_price) if self.qty else 0.0


#: a trade as :meth:`SimBroker.on_tick_columns` hands it to the tick-by-tick path
_Row = namedtuple("_Row", "symbol ts price qty")

#: time buckets of the traded-volume window (bounded state per symbol)
VOLUME_BUCKETS = 60


class SimBroker:
    """Paper broker over many symbols; see the module docstring for the fill and accounting rules."""

    def __init__(self, cash: float, cfg: BrokerConfig = BrokerConfig()) -> None:
        self.cfg = cfg
        self.latency_ns = round(cfg.latency_s * NS)
        self.window_ns = round(cfg.volume_window_s * NS)
        self.bucket_ns = max(1, self.window_ns // VOLUME_BUCKETS)
        self.initial_cash = cash
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self.pending: dict[str, list[Order]] = {}
        self.last_price: dict[str, float] = {}
        self.vol_ticks: dict[str, deque[Any]] = {}
        self.n_fills = 0
        self.cancelled: list[str] = []

    # ----------------------------------------------------------------------------------------------- orders
    def submit(self, order: Order) -> None:
        """Queue an order (market or limit); a second order with the same ``order_id`` is ignored."""
        q = self.pending.setdefault(order.symbol, [])
        if all(o.order_id != order.order_id for o in q):
            q.append(order)

    def cancel(self, order_id: str) -> bool:
        """Cancel an unfilled order; True when it was pending."""
        for q in self.pending.values():
            for i, o in enumerate(q):
                if o.order_id == order_id:
                    del q[i]
                    return True
        return False

    def cancel_parent(self, parent_id: str) -> int:
        """Cancel every unfilled child of ``parent_id``; returns how many."""
        n = 0
        for sym, q in self.pending.items():
            keep = [o for o in q if o.parent_id != parent_id]
            n += len(q) - len(keep)
            self.pending[sym] = keep
        return n

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Pending orders (of ``symbol``, or all)."""
        if symbol is not None:
            return list(self.pending.get(symbol, []))
        return [o for q in self.pending.values() for o in q]

    # ------------------------------------------------------------------------------------------------ ticks
    def _add_volume(self, sym: str, ts: int, qty: float) -> None:
        """Add a trade to ``sym``'s traded-volume window, kept in ``VOLUME_BUCKETS`` time buckets (window / 60
        wide, so the state per symbol is bounded whatever the tick rate), and drop buckets that left it."""
        width = self.bucket_ns
        b = ts // width
        dq = self.vol_ticks.get(sym)
        if dq is None:
            dq = self.vol_ticks[sym] = deque()
        if dq and dq[-1][0] >= b:  # same bucket (or a late tick: counted in the newest bucket)
            dq[-1][1] += qty
        else:
            dq.append([b, qty])
        first = (ts - self.window_ns) // width  # buckets at or before this one have left the window
        while dq and dq[0][0] <= first:
            dq.popleft()

    def volume(self, sym: str) -> float:
        """Traded volume of ``sym`` over the window ending at its latest tick (base units); the window's far edge
        is exact to one bucket. An exact sum of the buckets, so it never depends on how ticks were batched."""
        dq = self.vol_ticks.get(sym)
        return math.fsum(b[1] for b in dq) if dq else 0.0

    def _add_volume_columns(self, sym: str, ts: np.ndarray, qty: np.ndarray) -> None:
        """:meth:`_add_volume` of every trade of ``ts``/``qty`` (int64 ns / float64, stream order, at least one),
        columnar, with the very state the trades added one by one leave: a trade goes to the newest bucket when
        that is at or after its own (the running maximum of the bucket numbers), each bucket's sum is the
        sequential sum of its trades in stream order (``np.add.accumulate``, the float additions of the loop),
        and a bucket has left the window when some trade's window edge reached it (the largest edge: the buckets
        are in order and a dropped bucket never comes back). Needs ``window_ns > 0`` (then the newest bucket
        always stays)."""
        width = self.bucket_ns
        dq = self.vol_ticks.get(sym)
        if dq is None:
            dq = self.vol_ticks[sym] = deque()
        b = np.maximum.accumulate(ts // width)
        if dq and dq[-1][0] > b[0]:
            b = np.maximum(b, dq[-1][0])
        starts = np.flatnonzero(b[1:] != b[:-1]) + 1
        bounds = [0, *starts.tolist(), len(b)]
        nums = b[bounds[:-1]].tolist()
        for g, k in enumerate(nums):
            part = qty[bounds[g] : bounds[g + 1]]
            if g == 0 and dq and dq[-1][0] == k:
                dq[-1][1] = np.add.accumulate(np.concatenate(((dq[-1][1],), part)))[-1].item()
            else:
                dq.append([k, np.add.accumulate(part)[-1].item()])
        first = (int(ts.max()) - self.window_ns) // width
        while dq[0][0] <= first:
            dq.popleft()

    def on_ticks(self, ticks: Iterable[Any]) -> list[Fill]:
        """Feed ticks (any symbols, stream order; ``symbol``, ``ts`` ns, ``price``, ``qty``); returns the fills."""
        fills: list[Fill] = []
        if not any(self.pending.values()):  # nothing to fill: only the volume windows and last prices move
            add = self._add_volume
            for t in ticks:
                add(t.symbol, t.ts, float(t.qty))
                self.last_price[t.symbol] = t.price
            return fills
        self._exact(ticks, fills)
        if len(self.cancelled) > 10_000:
            del self.cancelled[:-1000]
        return fills

    def on_tick_columns(self, sym: str, ts: np.ndarray, price: np.ndarray, qty: np.ndarray) -> list[Fill]:
        """:meth:`on_ticks` of the trades of one symbol given as columns (``ts`` int64 ns, ``price`` and ``qty``
        float64, stream order): the same fills and the same state. The trades before the first due order of
        ``sym`` (all of them when none is pending) only move the volume window and the last price, so they are
        taken columnar; from a due order on, tick by tick (the path of :meth:`on_ticks`) until no pending order
        of ``sym`` is due at the next trade."""
        fills: list[Fill] = []
        n = len(ts)
        if not n:
            return fills
        if self.window_ns <= 0:  # a zero window drops the newest bucket too: the columnar rule does not hold
            self._exact(map(_Row, repeat(sym), ts.tolist(), price.tolist(), qty.tolist()), fills)
        else:
            lat = self.latency_ns
            i = 0
            while i < n:
                q = self.pending.get(sym)
                k = n
                if q:
                    due = min(o.ts for o in q) + lat
                    late = ts[i:] >= due
                    k = i + int(late.argmax()) if late.any() else n
                if k > i:  # trades i:k: no order of sym is due at any of them
                    self._add_volume_columns(sym, ts[i:k], qty[i:k])
                    self.last_price[sym] = float(price[k - 1])
                    i = k
                while i < n:  # tick by tick while an order is due
                    row = _Row(sym, int(ts[i]), float(price[i]), float(qty[i]))
                    self._exact((row,), fills)
                    i += 1
                    q = self.pending.get(sym)
                    if not q or (i < n and min(o.ts for o in q) + lat > ts[i]):
                        break
        if len(self.cancelled) > 10_000:
            del self.cancelled[:-1000]
        return fills

    def _exact(self, ticks: Iterable[Any], fills: list[Fill]) -> None:
        """The tick-by-tick path: each tick moves its symbol's volume window and last price, then tries the
        symbol's pending orders that are due (fills appended to ``fills``)."""
        add = self._add_volume
        for t in ticks:
            sym = t.symbol
            add(sym, t.ts, float(t.qty))
            self.last_price[sym] = t.price
            q = self.pending.get(sym)
            if not q:
                continue
            v = self.volume(sym)
            keep: list[Order] = []
            for o in q:
                if o.ts + self.latency_ns > t.ts:
                    keep.append(o)
                    continue
                f = self._try(o, t, v)
                if f is not None:
                    fills.append(f)
                elif (o.type == "limit" and o.tif in ("IOC", "FOK")) or (
                    o.type == "limit" and o.tif == "DAY" and t.ts >= o.ts + 86_400 * NS
                ):
                    self.cancelled.append(o.order_id)
                else:
                    keep.append(o)
            self.pending[sym] = keep

    def _try(self, o: Order, t: Any, volume: float) -> Fill | None:
        sign = 1.0 if o.side == "buy" else -1.0
        cfg = self.cfg
        liq: Literal["maker", "taker"]
        if o.type == "market":
            slip = cfg.half_spread_bps + sqrt_impact_bps(o.qty, volume, cfg.impact_k_bps, cfg.max_impact_bps)
            price = t.price * (1.0 + sign * slip / 1e4)
            fee_bps, liq = cfg.taker_fee_bps, "taker"
        else:
            lim = float(o.limit_price)  # type: ignore[arg-type]
            if (sign > 0 and t.price > lim) or (sign < 0 and t.price < lim):
                return None
            price = lim
            slip = sign * (lim / t.price - 1.0) * 1e4
            fee_bps, liq = cfg.maker_fee_bps, "maker"
        fee = price * o.qty * fee_bps / 1e4
        fill = Fill(
            fill_id=stable_id("fil", o.order_id),
            order_id=o.order_id,
            symbol=o.symbol,
            side=o.side,
            price=price,
            qty=o.qty,
            fee=fee,
            slippage_bps=slip,
            ts=t.ts,
            liquidity=liq,
        )
        self._book(fill)
        return fill

    def _book(self, f: Fill) -> None:
        sign = 1.0 if f.side == "buy" else -1.0
        self.positions.setdefault(f.symbol, Position()).apply(sign, f.price, f.qty, f.fee)
        self.cash -= sign * f.qty * f.price + f.fee
        self.n_fills += 1

    # -------------------------------------------------------------------------------------------- accounting
    def position(self, symbol: str) -> float:
        """Signed position of ``symbol`` (base units)."""
        p = self.positions.get(symbol)
        return p.qty if p else 0.0

    def _mark(self, symbol: str, marks: dict[str, float] | None) -> float:
        if marks and symbol in marks:
            return marks[symbol]
        return self.last_price.get(symbol, self.positions[symbol].avg_price)

    def unrealised(self, marks: dict[str, float] | None = None) -> float:
        """Σ unrealised P&L at ``marks`` (quote; default the last prices)."""
        return math.fsum(p.unrealised(self._mark(s, marks)) for s, p in self.positions.items())

    def realised(self) -> float:
        """Σ gross realised P&L (quote)."""
        return math.fsum(p.realised for p in self.positions.values())

    def fees(self) -> float:
        """Σ fees paid (quote)."""
        return math.fsum(p.fees for p in self.positions.values())

    def equity(self, marks: dict[str, float] | None = None) -> float:
        """Cash plus every position at ``marks`` (quote; default the last prices)."""
        return self.cash + math.fsum(p.qty * self._mark(s, marks) for s, p in self.positions.items())

    def snapshot(self, marks: dict[str, float] | None = None, peak_equity: float | None = None) -> PortfolioSnapshot:
        """The state risk needs, as the wire type: equity, gross/net exposure (quote), drawdown vs ``peak_equity``
        (fraction), positions (base units)."""
        eq = self.equity(marks)
        expo = {s: p.qty * self._mark(s, marks) for s, p in self.positions.items()}
        dd = 0.0
        if peak_equity and peak_equity > 0:
            dd = min(1.0, max(0.0, 1.0 - eq / peak_equity))
        return PortfolioSnapshot(
            equity=eq,
            gross_exposure=math.fsum(abs(x) for x in expo.values()),
            net_exposure=math.fsum(expo.values()),
            drawdown=dd,
            positions={s: p.qty for s, p in self.positions.items()},
        )

    # ------------------------------------------------------------------------------------------------ restart
    def apply_fill(self, fill: Fill) -> None:
        """Book a fill from elsewhere (a venue, or this broker before a restart); its price becomes the last price."""
        self._book(fill)
        self.last_price[fill.symbol] = fill.price

    @classmethod
    def from_fills(cls, cash: float, fills: Sequence[Fill], cfg: BrokerConfig = BrokerConfig()) -> SimBroker:
        """Rebuild after a restart from the starting ``cash`` (quote) and the fills in stream order, each
        ``fill_id`` once. Open orders are not restored (the deterministic replay re-sends them with the same ids;
        a fill already booked is recognised by its id)."""
        b = cls(cash, cfg)
        seen: set[str] = set()
        for f in fills:
            if f.fill_id not in seen:
                seen.add(f.fill_id)
                b.apply_fill(f)
        return b
