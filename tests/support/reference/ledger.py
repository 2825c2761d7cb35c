"""[Reference: operators/.../ledger.py as of commit ae8e5c8, kept verbatim but for absolute imports; see __init__.py.] The account's books, kept from execution reports only: cash, positions, average prices, realised and
unrealised P&L, fees and traded notional, by symbol and by strategy.

Booking a fill report (side +1 buy / -1 sell, ``qty`` base units at ``price`` quote/base, ``fee`` quote):
``cash -= side * qty * price + fee``; the symbol's :class:`~operators.execution.broker.Position` moves its average
price, realises P&L against it when reduced or flipped, and adds the fee. The order's strategy gets the same
fee and traded notional (``by_strategy``). Identity (tested): ``equity = cash + Σ qty * mark = initial cash +
Σ realised - Σ fees + Σ unrealised``.

>>> from schemas.events import ExecutionReport
>>> led = Ledger(1_000.0)
>>> led.book(ExecutionReport(id="v:a:0", venue="v", kind="fill", seq=0, client_order_id="o", symbol="BTC-USD",
...                          side="buy", strategy="trend", order_qty=2.0, last_qty=2.0, last_price=100.0,
...                          cum_qty=2.0, fee=0.2, ts=10**18))
>>> led.cash, led.position("BTC-USD"), led.equity({"BTC-USD": 110.0})
(799.8, 2.0, 1019.8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from schemas.events import ExecutionReport

from operators.execution.broker import Position

__all__ = ["Ledger", "StrategyBook"]


@dataclass(slots=True)
class StrategyBook:
    """What one strategy's orders did: ``fees`` and ``traded`` notional (quote), ``fills`` (count)."""

    fees: float = 0.0
    traded: float = 0.0
    fills: int = 0


class Ledger:
    """Cash (quote) and positions of one account; picklable."""

    def __init__(self, cash: float) -> None:
        self.initial_cash = float(cash)
        self.cash = float(cash)
        self.positions: dict[str, Position] = {}
        self.by_strategy: dict[str, StrategyBook] = {}
        self.fills = 0

    def book(self, r: ExecutionReport) -> None:
        """Book one fill or partial-fill report."""
        sign = 1.0 if r.side == "buy" else -1.0
        price = float(r.last_price)  # type: ignore[arg-type]
        qty = r.last_qty
        fee = r.fee
        p = self.positions.get(r.symbol)  # type: ignore[arg-type]
        if p is None:
            p = self.positions[r.symbol] = Position()  # type: ignore[index]
        p.apply(sign, price, qty, fee)
        self.cash -= sign * qty * price + fee
        name = r.strategy or "unknown"
        sb = self.by_strategy.get(name)
        if sb is None:
            sb = self.by_strategy[name] = StrategyBook()
        sb.fees += fee
        sb.traded += qty * price
        sb.fills += 1
        self.fills += 1

    def position(self, symbol: str) -> float:
        """Signed position of ``symbol`` (base units)."""
        p = self.positions.get(symbol)
        return p.qty if p is not None else 0.0

    def holdings(self) -> dict[str, float]:
        """Non-zero positions (signed base units)."""
        return {s: p.qty for s, p in self.positions.items() if p.qty != 0.0}

    def equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus every position at ``marks`` (quote/base; a symbol without a mark counts at its average price)."""
        return self.cash + math.fsum(p.qty * marks.get(s, p.avg_price) for s, p in self.positions.items())

    def exposures(self, marks: Mapping[str, float]) -> dict[str, float]:
        """Signed exposure per held symbol, quote currency."""
        return {s: p.qty * marks.get(s, p.avg_price) for s, p in self.positions.items() if p.qty != 0.0}

    def fees(self) -> float:
        """Fees paid (quote)."""
        return math.fsum(p.fees for p in self.positions.values())

    def realised(self) -> float:
        """Gross realised P&L (quote)."""
        return math.fsum(p.realised for p in self.positions.values())

    def unrealised(self, marks: Mapping[str, float]) -> float:
        """Open P&L at ``marks`` (quote)."""
        return math.fsum(p.unrealised(marks.get(s, p.avg_price)) for s, p in self.positions.items())

    def by_symbol(self, marks: Mapping[str, float]) -> dict[str, dict[str, float]]:
        """Per symbol: position (base units), average price, mark (quote/base), realised and unrealised P&L,
        fees, net P&L and traded notional (quote)."""
        out = {}
        for s, p in sorted(self.positions.items()):
            m = marks.get(s, p.avg_price)
            u = p.unrealised(m)
            out[s] = {
                "position": p.qty,
                "avg_price": p.avg_price,
                "mark": m,
                "realised_pnl": p.realised,
                "unrealised_pnl": u,
                "fees": p.fees,
                "net_pnl": p.realised + u - p.fees,
                "traded": p.traded,
            }
        return out
