"""``PositionCapGate``: the baseline gate behind the same interface as :class:`operators.risk.gate.RiskGate`
(``evaluate(intent, portfolio, market, now_ns) -> RiskDecision`` and ``update_equity(equity, now_ns)``).

It only caps the resulting position at ``max_position_frac`` of equity (``position_cap``, the order is resized) and
rejects orders below ``min_notional`` quote currency (``below_min_notional``) — the simple path that the vectorised
sweep (``operators.sweep``) reproduces exactly. No VaR, no kill switch.

>>> from operators.risk.gate import MarketState, OrderRequest, PortfolioState
>>> g = PositionCapGate(max_position_frac=1.0, min_notional=10.0)
>>> m = MarketState(prices={"BTC-USD": 100.0}, price_ts_ns={"BTC-USD": 0})
>>> d = g.evaluate(OrderRequest("i", "BTC-USD", "buy", 15.0, strategy="trend"),
...                PortfolioState(equity=1_000.0, positions={}), m, 10**18)
>>> d.action, d.approved_qty, d.reasons
('resized', 10.0, ['position_cap'])
"""

from __future__ import annotations

from typing import Any, Literal

from schemas.events import PortfolioSnapshot, RiskDecision

from .gate import decision_id

__all__ = ["PositionCapGate"]


class PositionCapGate:
    """``max_position_frac``: |position| x price <= this fraction of equity; ``min_notional``: quote currency;
    ``context``: reasons put first on every decision (e.g. the sizing rule)."""

    def __init__(
        self, max_position_frac: float = 1.0, min_notional: float = 10.0, context: tuple[str, ...] = ()
    ) -> None:
        self.max_position_frac = float(max_position_frac)
        self.min_notional = float(min_notional)
        self.context = tuple(context)
        self.peak_equity: float | None = None

    def update_equity(self, equity: float, now_ns: int) -> str:
        """Track the peak (for the snapshot's drawdown); the baseline never halts."""
        if self.peak_equity is None or equity > self.peak_equity:
            self.peak_equity = equity
        return "normal"

    def evaluate(self, intent: Any, portfolio: Any, market: Any, now_ns: int) -> RiskDecision:
        sym = intent.symbol
        price = market.prices[sym]
        equity = max(float(portfolio.equity), 0.0)
        held = float(portfolio.positions.get(sym, 0.0))
        sign = 1.0 if intent.side == "buy" else -1.0
        req = float(intent.qty)
        target = held + sign * req
        cap = self.max_position_frac * equity / price
        reasons = list(self.context) + [r for r in (getattr(intent, "reason", ""),) if r]
        action: Literal["approved", "resized", "rejected"] = "approved"
        if abs(target) > cap:
            target = cap if target > 0 else -cap
            reasons.append("position_cap")
            action = "resized"
        delta = target - held
        if abs(delta) * price < self.min_notional:
            action, delta = "rejected", 0.0
            reasons.append("below_min_notional")
        if action == "resized" and abs(delta) == req:
            action = "approved"
        peak = self.peak_equity or 0.0
        snap = PortfolioSnapshot(
            equity=float(portfolio.equity),
            gross_exposure=abs(held) * price,
            net_exposure=held * price,
            drawdown=min(1.0, max(0.0, 1 - portfolio.equity / peak)) if peak > 0 else 0.0,
            positions={s: q for s, q in portfolio.positions.items() if q != 0.0},
        )
        side: Literal["buy", "sell"] = intent.side if delta == 0.0 else ("buy" if delta > 0 else "sell")
        iid = intent.intent_id
        return RiskDecision(
            id=decision_id(iid),
            intent_id=iid,
            symbol=sym,
            ts=int(now_ns),
            action=action,
            requested_qty=req,
            approved_qty=abs(delta),
            reasons=reasons[:32],
            portfolio=snap,
            strategy=getattr(intent, "strategy", None),
            side=side,
        )
