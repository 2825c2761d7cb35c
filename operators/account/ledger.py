"""The account's books, kept from execution reports only: cash, positions, average prices, realised and
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from operators.execution.broker import Position
from schemas.events import ExecutionReport

from .attribution import UNATTRIBUTED

_UNATTRIBUTED_SHARES = {UNATTRIBUTED: 1.0}  # a symbol without strategy shares (never modified)

__all__ = ["Ledger", "StrategyBook"]


@dataclass(slots=True)
class StrategyBook:
    """What one strategy's orders did: ``fees`` and ``traded`` notional (quote), ``fills`` (count)."""

    fees: float = 0.0
    traded: float = 0.0
    fills: int = 0


_NO_POSITION, _NO_BOOK = Position(), StrategyBook()  # never booked into (see Ledger.book_many)


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
        sym, last = r.symbol, r.last_price
        assert sym is not None and last is not None  # (a fill report has both: ExecutionReport checks it)
        price = float(last)
        qty = r.last_qty
        fee = r.fee
        p = self.positions.get(sym)
        if p is None:
            p = self.positions[sym] = Position()
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

    def book_many(
        self,
        reports: Sequence[ExecutionReport],
        attribution: Any = None,
        shares: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """Book fill reports in order: :meth:`book` of each and, with ``attribution`` (a
        :class:`~operators.account.attribution.StrategyAttribution`), its ``on_fill`` of the signed quantity under
        ``shares[symbol]`` -- the very floating-point operations of those methods and of
        :meth:`~operators.execution.broker.Position.apply` (inlined here: ``tests/unit/operators/account/test_account_reference.py``
        compares the books with the frozen implementation that calls them), in the same order, in one loop."""
        positions, by_strategy = self.positions, self.by_strategy
        flow: dict[str, float] | None = None
        afees: dict[str, float] = {}
        if attribution is not None:
            flow, afees = attribution._flow, attribution.fees
        cash = self.cash
        psym: str | None = None
        pname: str | None = None
        p = _NO_POSITION  # (placeholders: the first report sets both)
        sb = _NO_BOOK
        sh: Any = ()
        for r in reports:
            sym, last = r.symbol, r.last_price
            assert sym is not None and last is not None  # (a fill report has both: ExecutionReport checks it)
            if sym != psym:
                got = positions.get(sym)
                if got is None:
                    got = positions[sym] = Position()
                p = got
                if flow is not None:
                    sh = ((shares.get(sym) if shares else None) or _UNATTRIBUTED_SHARES).items()
                psym = sym
            name = r.strategy or "unknown"
            if name != pname:
                bk = by_strategy.get(name)
                if bk is None:
                    bk = by_strategy[name] = StrategyBook()
                sb, pname = bk, name
            price = float(last)
            qty = r.last_qty
            fee = r.fee
            signed = qty if r.side == "buy" else -qty  # sign * qty (exact)
            pq = price * qty
            # Position.apply(sign, price, qty, fee)
            pos = p.qty
            if pos == 0 or (pos > 0) == (signed > 0):
                new = pos + signed
                p.avg_price = (p.avg_price * abs(pos) + pq) / abs(new)
            else:
                closed = min(abs(pos), qty)
                p.realised += closed * (price - p.avg_price) * (1.0 if pos > 0 else -1.0)
                new = pos + signed
                if abs(new) < 1e-12:
                    new = 0.0
                if new != 0 and (new > 0) != (pos > 0):
                    p.avg_price = price
                elif new == 0:
                    p.avg_price = 0.0
            p.qty = new
            p.fees += fee
            p.traded += pq
            sp = signed * price  # sign * qty * price
            cash -= sp + fee
            sb.fees += fee
            sb.traded += pq
            sb.fills += 1
            if flow is not None:  # StrategyAttribution.on_fill(sym, signed, price, fee, shares.get(sym))
                flow[sym] = flow.get(sym, 0.0) - sp - fee
                for k, w in sh:
                    afees[k] = afees.get(k, 0.0) + fee * w
        self.cash = cash
        self.fills += len(reports)

    def position(self, symbol: str) -> float:
        """Signed position of ``symbol`` (base units)."""
        p = self.positions.get(symbol)
        return p.qty if p is not None else 0.0

    def holdings(self) -> dict[str, float]:
        """Non-zero positions (signed base units)."""
        return {s: p.qty for s, p in self.positions.items() if p.qty != 0.0}

    def equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus every position at ``marks`` (quote/base; a symbol without a mark counts at its average price)."""
        return self.cash + math.fsum([p.qty * marks.get(s, p.avg_price) for s, p in self.positions.items()])

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
