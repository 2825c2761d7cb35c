"""What a position change costs, from the venue's cost model (``operators.execution.broker.BrokerConfig``).

A market order pays, per unit of notional: the taker fee, half the bid-ask spread and the square-root impact
``min(max_impact, impact_k * sqrt(participation))`` (``participation`` = order size / traded volume of the
window, the broker's ``qty / V``). Strategies decide before they know the order's size, so the participation
is an assumption of the cost model (default 1 %: a 50,000 quote order into a 30-minute window that trades
5 million). The round trip (open now, close later) pays it twice.

>>> c = CostModel.from_broker(BrokerConfig())       # 7.5 bps fee + 1 bp half-spread + 10 * sqrt(0.01) bps
>>> round(c.one_way_bps, 6), round(c.round_trip, 8)
(9.5, 0.0019)
>>> round(CostModel.from_sim(fee_bps=7.5, slippage_bps=1.0).round_trip_bps, 6)
17.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from operators.execution.broker import BrokerConfig

__all__ = ["CostModel", "DEFAULT_COSTS"]


@dataclass(frozen=True)
class CostModel:
    """Cost of changing a position by one unit of notional, in bps of that notional: ``fee_bps`` (taker fee),
    ``spread_bps`` (half-spread) and ``impact_bps`` (at the assumed participation)."""

    fee_bps: float
    spread_bps: float = 0.0
    impact_bps: float = 0.0

    def __post_init__(self) -> None:
        for k in ("fee_bps", "spread_bps", "impact_bps"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{k} must be finite and >= 0, got {v!r}")

    @classmethod
    def from_broker(cls, cfg: BrokerConfig, participation: float = 0.01) -> CostModel:
        """The costs of ``cfg``'s market orders at ``participation`` (order qty / window volume, fraction)."""
        if not 0 < participation <= 1:
            raise ValueError("participation must be in (0, 1]")
        impact = min(cfg.max_impact_bps, cfg.impact_k_bps * math.sqrt(participation))
        return cls(max(cfg.taker_fee_bps, 0.0), max(cfg.half_spread_bps, 0.0), max(impact, 0.0))

    @classmethod
    def from_sim(cls, fee_bps: float, slippage_bps: float) -> CostModel:
        """The vectorised backtest's costs (``operators.sweep.SimConfig``: a fee and a fixed slippage)."""
        return cls(fee_bps, slippage_bps, 0.0)

    @property
    def one_way_bps(self) -> float:
        """Cost of one trade, bps of its notional."""
        return self.fee_bps + self.spread_bps + self.impact_bps

    @property
    def round_trip_bps(self) -> float:
        """Open and later close: bps of the position's notional."""
        return 2.0 * self.one_way_bps

    @property
    def round_trip(self) -> float:
        """The round trip as a fraction of notional (the unit of expected returns)."""
        return self.round_trip_bps / 1e4


#: the default venue's costs (``BrokerConfig()``, the pipeline's default broker) at 1 % participation
DEFAULT_COSTS = CostModel.from_broker(BrokerConfig())
