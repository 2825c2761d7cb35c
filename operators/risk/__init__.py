"""Risk: VaR/CVaR estimators (batch and streaming), portfolio VaR decomposition, pre-trade gates, sizing and VaR
backtests. Pure, deterministic, I/O-free; conventions and formulas in ``docs/risk.md``.

All VaR/CVaR numbers are in **return sign** (a loss is negative); :func:`to_loss` converts to the positive-loss
convention used by ``schemas.events.RiskDecision``.

>>> from operators.risk import historical_var, to_loss
>>> to_loss(historical_var([-0.05, -0.02, 0.0, 0.01, 0.03], 0.75))
0.02
"""

from .backtest import METHODS, KupiecResult, VarBacktest, kupiec_pof, rolling_forecasts, var_backtest, var_breaches
from .checks import Verdict, check_confidence, check_kill_switch, check_limit, check_stale, max_feasible_qty
from .cornish_fisher import (
    RollingCornishFisher,
    cornish_fisher_cvar,
    cornish_fisher_monotone_tail,
    cornish_fisher_var,
    cornish_fisher_z,
)
from .ewma import RISKMETRICS_LAMBDA, EwmaEstimator, ewma_cvar, ewma_sigma, ewma_var, ewma_variance_path
from .filtered import FHS_LAMBDA, fhs_var_cvar, standardised_residuals
from .gate import GateState, MarketState, OrderRequest, PortfolioState, RiskGate, to_loss
from .gaussian import RollingGaussian, gaussian_cvar, gaussian_var, normal_cvar, normal_var, population_moments
from .historical import RollingHistorical, acerbi_tasche_cvar, historical_cvar, historical_var, historical_var_cvar
from .kill_switch import KillState, KillSwitch
from .limits import RiskLimits
from .portfolio import (
    component_var,
    incremental_var,
    incremental_var_historical,
    marginal_var,
    population_covariance,
    portfolio_cvar_gaussian,
    portfolio_cvar_historical,
    portfolio_returns,
    portfolio_sigma,
    portfolio_var_gaussian,
    portfolio_var_historical,
    sample_covariance,
)
from .rate_limit import TokenBucket
from .sizing import (
    PERIODS_PER_YEAR_30M,
    annualise_vol,
    kelly_fraction,
    kelly_qty,
    round_to_lot,
    vol_target_notional,
    vol_target_qty,
)
from .standard_normal import chi2_1_sf, norm_cdf, norm_pdf, norm_ppf

__all__ = [
    # estimators
    "historical_var",
    "historical_cvar",
    "historical_var_cvar",
    "acerbi_tasche_cvar",
    "RollingHistorical",
    "normal_var",
    "normal_cvar",
    "population_moments",
    "gaussian_var",
    "gaussian_cvar",
    "RollingGaussian",
    "cornish_fisher_z",
    "cornish_fisher_var",
    "cornish_fisher_cvar",
    "cornish_fisher_monotone_tail",
    "RollingCornishFisher",
    "RISKMETRICS_LAMBDA",
    "ewma_variance_path",
    "ewma_sigma",
    "ewma_var",
    "ewma_cvar",
    "EwmaEstimator",
    "FHS_LAMBDA",
    "fhs_var_cvar",
    "standardised_residuals",
    "norm_ppf",
    "norm_pdf",
    "norm_cdf",
    "chi2_1_sf",
    "to_loss",
    "make_estimator",
    # portfolio
    "sample_covariance",
    "population_covariance",
    "portfolio_returns",
    "portfolio_sigma",
    "portfolio_var_gaussian",
    "portfolio_cvar_gaussian",
    "portfolio_var_historical",
    "portfolio_cvar_historical",
    "marginal_var",
    "component_var",
    "incremental_var",
    "incremental_var_historical",
    # gates
    "RiskLimits",
    "RiskGate",
    "GateState",
    "OrderRequest",
    "PortfolioState",
    "MarketState",
    "KillSwitch",
    "KillState",
    "TokenBucket",
    "Verdict",
    "check_kill_switch",
    "check_stale",
    "check_confidence",
    "check_limit",
    "max_feasible_qty",
    # sizing
    "PERIODS_PER_YEAR_30M",
    "round_to_lot",
    "annualise_vol",
    "vol_target_notional",
    "vol_target_qty",
    "kelly_fraction",
    "kelly_qty",
    # backtest
    "METHODS",
    "KupiecResult",
    "VarBacktest",
    "var_breaches",
    "kupiec_pof",
    "rolling_forecasts",
    "var_backtest",
]


def make_estimator(
    method: str, window: int = 1000, lam: float = RISKMETRICS_LAMBDA
) -> RollingHistorical | RollingGaussian | RollingCornishFisher | EwmaEstimator:
    """A fresh streaming estimator (``update``/``var``/``cvar``) for ``method`` in :data:`METHODS`.

    >>> type(make_estimator("ewma")).__name__, make_estimator("historical", 250).window
    ('EwmaEstimator', 250)
    """
    if method == "historical":
        return RollingHistorical(window)
    if method == "gaussian":
        return RollingGaussian(window)
    if method == "cornish_fisher":
        return RollingCornishFisher(window)
    if method == "ewma":
        return EwmaEstimator(lam)
    raise ValueError(f"unknown method {method!r}; one of {METHODS}")
