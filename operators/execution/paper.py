"""Paper broker for one symbol: fills market orders against later ticks, keeps position, cash and P&L.

Fill rule (event time, deterministic): a market order placed at ``ts`` fills completely at the first
tick, in stream order, whose time is at or after ``ts + latency``; the fill price is that tick's price
moved against the order by ``slippage_bps`` (buy pays more, sell receives less); the fee is
``fee_bps`` of the filled notional, in quote currency, paid from cash.

Accounting: ``cash`` (quote) + ``position`` (base units, signed) × mark = ``equity``; realised P&L
is booked when a position is reduced or flipped, against the average entry price (net of fees).
After a restart, :meth:`PaperBroker.from_fills` rebuilds position, cash and P&L from the fills.
For child orders, limit orders, square-root impact and several symbols see ``operators.execution.broker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from operators.ids import stable_id
from schemas.events import Fill, Order


@dataclass(frozen=True)
class PaperConfig:
    """``latency_s``: order to earliest fill, seconds; ``slippage_bps``/``fee_bps``: basis points of price/notional."""

    latency_s: float = 0.05
    slippage_bps: float = 1.0
    fee_bps: float = 7.5


class PaperBroker:
    """Position, cash and pending market orders of one symbol; picklable, bounded by open orders."""

    def __init__(self, symbol: str, cash: float, cfg: PaperConfig = PaperConfig()) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self.latency_ns = int(cfg.latency_s * 1e9)
        self.cash = cash
        self.position = 0.0
        self.avg_price = 0.0
        self.realised = 0.0
        self.fees = 0.0
        self.last_price: float | None = None
        self.pending: list[Order] = []
        self.fills = 0

    def equity(self, mark: float | None = None) -> float:
        """Cash plus position at ``mark`` (default: last traded price), quote currency."""
        px = mark if mark is not None else (self.last_price or 0.0)
        return self.cash + self.position * px

    def submit(self, order: Order) -> None:
        """Queue a market order (limit orders are not supported by the baseline broker)."""
        if order.type != "market":
            raise ValueError("the paper broker fills market orders only")
        self.pending.append(order)

    def on_ticks(self, ticks: Sequence[Any]) -> list[Fill]:
        """Fill due orders against ``ticks`` (one symbol, stream order); updates the last price."""
        fills: list[Fill] = []
        if not ticks:
            return fills
        if self.pending:
            still: list[Order] = []
            for order in self.pending:
                due = order.ts + self.latency_ns
                tick = next((t for t in ticks if t.ts >= due), None)
                if tick is None:
                    still.append(order)
                else:
                    fills.append(self._fill(order, tick))
            self.pending = still
        self.last_price = ticks[-1].price
        return fills

    def _fill(self, order: Order, tick: Any) -> Fill:
        sign = 1.0 if order.side == "buy" else -1.0
        price = tick.price * (1.0 + sign * self.cfg.slippage_bps / 1e4)
        qty = order.qty
        fee = price * qty * self.cfg.fee_bps / 1e4
        self._book(sign, price, qty, fee)
        return Fill(fill_id=stable_id("fil", order.order_id), order_id=order.order_id, symbol=order.symbol,
                    side=order.side, price=price, qty=qty, fee=fee, slippage_bps=self.cfg.slippage_bps,
                    ts=tick.ts, liquidity="taker")

    def _book(self, sign: float, price: float, qty: float, fee: float) -> None:
        """Accounting of one execution: ``sign`` +1 buy / -1 sell, ``price`` quote/base, ``qty`` base units,
        ``fee`` quote currency."""
        signed = sign * qty
        pos = self.position
        if pos == 0 or (pos > 0) == (signed > 0):  # open or add: new average price
            new = pos + signed
            self.avg_price = (self.avg_price * abs(pos) + price * qty) / abs(new)
            self.position = new
        else:  # reduce, close or flip
            closed = min(abs(pos), qty)
            self.realised += closed * (price - self.avg_price) * (1.0 if pos > 0 else -1.0)
            new = pos + signed
            if abs(new) < 1e-12:
                new = 0.0
            if new != 0 and (new > 0) != (pos > 0):
                self.avg_price = price  # flipped: the remainder opened at this price
            elif new == 0:
                self.avg_price = 0.0
            self.position = new
        self.cash -= signed * price + fee
        self.fees += fee
        self.realised -= fee
        self.fills += 1

    # -- restart ---------------------------------------------------------------------------------------------
    def apply_fill(self, fill: Fill) -> None:
        """Book a fill produced earlier (by this broker or a venue) exactly as when it happened; the last
        price becomes the fill's price. Used to rebuild the state after a restart."""
        if fill.symbol != self.symbol:
            raise ValueError(f"fill of {fill.symbol} given to the {self.symbol} broker")
        self._book(1.0 if fill.side == "buy" else -1.0, fill.price, fill.qty, fill.fee)
        self.last_price = fill.price

    @classmethod
    def from_fills(cls, symbol: str, cash: float, fills: Sequence[Fill], cfg: PaperConfig = PaperConfig()) -> PaperBroker:
        """A broker rebuilt from its starting ``cash`` (quote) and its fills in stream order, each ``fill_id``
        booked once (consumers deduplicate by id). Pending orders are not restored: orders without a fill are
        re-sent by the deterministic pipeline replay (same ids).

        >>> from schemas.events import Fill
        >>> f = [Fill(fill_id="f1", order_id="o1", symbol="BTC-USD", side="buy", price=100.0, qty=2.0, fee=0.2,
        ...           ts=10**18)] * 2
        >>> b = PaperBroker.from_fills("BTC-USD", 1_000.0, f)
        >>> b.position, b.cash, b.equity(110.0), b.fills
        (2.0, 799.8, 1019.8, 1)
        """
        b = cls(symbol, cash, cfg)
        seen: set[str] = set()
        for f in fills:
            if f.symbol == symbol and f.fill_id not in seen:
                seen.add(f.fill_id)
                b.apply_fill(f)
        return b
