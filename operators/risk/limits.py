"""``RiskLimits``: every limit of the risk gate, with units and defaults (``docs/risk.md``).

Fractions of equity are positive losses (``0.05`` = 5 % of equity) for one period of the return series the
gate is given (e.g. one 30-minute bar). Money in quote currency, quantities in base units, times in seconds of
**event time**.

>>> lim = RiskLimits(max_leverage=3.0)
>>> lim.var_budget("BTC-USD"), lim.max_leverage
(0.01, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .filtered import FHS_LAMBDA

__all__ = ["RiskLimits"]


@dataclass(frozen=True)
class RiskLimits:
    """Limits and parameters of :class:`operators.risk.gate.RiskGate`.

    VaR and CVaR (``var_method``: ``"gaussian"`` — zero mean, sample covariance (n-1) — ``"historical"`` on the
    portfolio P&L series, or ``"fhs"``, filtered historical simulation: the historical method on each symbol's
    returns standardised by its EWMA volatility (decay ``fhs_lambda`` per period) and rescaled by today's, see
    :mod:`operators.risk.filtered`; confidence ``alpha``, fraction):

    * ``max_portfolio_var`` / ``max_portfolio_cvar``: portfolio one-period VaR / CVaR after the order, fraction of
      equity.
    * ``symbol_var_budget`` (``symbol_var_budgets`` per symbol): the order's incremental VaR (portfolio VaR after
      minus before), fraction of equity; larger orders are resized down to fit.
    * ``strategy_var_budget`` (``strategy_var_budgets`` per strategy): a strategy's Euler component of the
      Gaussian portfolio VaR after the order, fraction of equity (the book is split between strategies by their
      shares of each symbol's target; see ``PortfolioState.shares``); default no budget.
    * ``min_history``: returns needed in the window before any risk-increasing order is allowed (count).

    Exposure (exposure of a symbol = position (base units) x last price (quote/base)):

    * ``max_position_qty``: |position| per symbol, base units (absent symbol = no such limit).
    * ``max_position_frac``: |exposure| per symbol, fraction of equity.
    * ``max_gross_exposure`` / ``max_net_exposure``: ``Σ|exposure|`` / ``|Σ exposure|``, quote currency.
    * ``max_leverage``: gross exposure / equity, multiple.

    Kill switch (drawdown = 1 - equity / peak equity, fraction): halt when drawdown > ``max_drawdown``; after
    ``halt_cooldown_s`` seconds of event time move to reduce-only; back to normal when drawdown <=
    ``resume_drawdown`` (or a manual reset).

    Others: ``max_price_age_s`` (seconds of event time since the symbol's last price), ``min_confidence`` (fraction;
    intents without a confidence skip the check), order-rate token bucket ``rate_per_s`` (orders per second of event
    time) with ``rate_burst`` (orders), ``lot_sizes`` / ``default_lot_size`` (base units, 0 = none) and ``min_qty``
    (base units).
    """

    alpha: float = 0.99
    var_method: Literal["gaussian", "historical", "fhs"] = "fhs"
    fhs_lambda: float = FHS_LAMBDA
    min_history: int = 100
    max_portfolio_var: float = 0.05
    max_portfolio_cvar: float = 0.08
    symbol_var_budget: float = 0.01
    symbol_var_budgets: Mapping[str, float] = field(default_factory=dict)
    strategy_var_budget: float = math.inf
    strategy_var_budgets: Mapping[str, float] = field(default_factory=dict)
    max_position_qty: Mapping[str, float] = field(default_factory=dict)
    max_position_frac: float = 1.0
    max_gross_exposure: float = math.inf
    max_net_exposure: float = math.inf
    max_leverage: float = 2.0
    max_drawdown: float = 0.20
    halt_cooldown_s: float = 3600.0
    resume_drawdown: float = 0.10
    max_price_age_s: float = 60.0
    min_confidence: float = 0.55
    rate_per_s: float = 1.0
    rate_burst: float = 10.0
    lot_sizes: Mapping[str, float] = field(default_factory=dict)
    default_lot_size: float = 0.0
    min_qty: float = 0.0

    def __post_init__(self) -> None:
        if not 0.5 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0.5, 1), got {self.alpha!r}")
        if self.var_method not in ("gaussian", "historical", "fhs"):
            raise ValueError(f"var_method must be 'gaussian', 'historical' or 'fhs', got {self.var_method!r}")
        if not 0.0 < self.fhs_lambda < 1.0:
            raise ValueError(f"fhs_lambda must be in (0, 1), got {self.fhs_lambda!r}")
        if self.min_history < 2:
            raise ValueError("min_history must be >= 2 returns")
        for name in (
            "max_portfolio_var",
            "max_portfolio_cvar",
            "symbol_var_budget",
            "max_position_frac",
            "max_gross_exposure",
            "max_net_exposure",
            "max_leverage",
            "halt_cooldown_s",
            "max_price_age_s",
            "rate_per_s",
            "default_lot_size",
            "min_qty",
        ):
            v = getattr(self, name)
            if not v >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        if not self.strategy_var_budget >= 0.0:
            raise ValueError(f"strategy_var_budget must be >= 0, got {self.strategy_var_budget!r}")
        for name in ("symbol_var_budgets", "strategy_var_budgets", "max_position_qty", "lot_sizes"):
            for k, v in getattr(self, name).items():
                if not v >= 0.0:
                    raise ValueError(f"{name}[{k}] must be >= 0, got {v!r}")
        if not 0.0 < self.max_drawdown <= 1.0 or not 0.0 <= self.resume_drawdown < self.max_drawdown:
            raise ValueError("need 0 < max_drawdown <= 1 and 0 <= resume_drawdown < max_drawdown")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if not self.rate_burst >= 1.0:
            raise ValueError(f"rate_burst must be >= 1 order, got {self.rate_burst!r}")

    def var_budget(self, symbol: str) -> float:
        """Incremental-VaR budget of ``symbol``, fraction of equity."""
        return self.symbol_var_budgets.get(symbol, self.symbol_var_budget)

    def strategy_budget(self, strategy: str) -> float:
        """Component-VaR budget of ``strategy``, fraction of equity (inf = none)."""
        return self.strategy_var_budgets.get(strategy, self.strategy_var_budget)

    def lot_size(self, symbol: str) -> float:
        """Lot size of ``symbol``, base units (0 = no rounding)."""
        return self.lot_sizes.get(symbol, self.default_lot_size)
