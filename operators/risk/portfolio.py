"""Portfolio VaR/CVaR across symbols: covariance, Gaussian and historical portfolio VaR, marginal, component and
incremental VaR.

Inputs: ``weights`` (N,) are exposures per symbol in any money unit — quote currency, or a fraction of equity —
and ``returns`` is a (T, N) matrix of aligned one-period returns (fractions; simple returns make ``returns @ w``
the exact P&L, log returns approximate it). Every VaR comes out in the unit of ``weights`` (times the return unit),
in **return sign** (a loss is negative).

* Covariance: **sample** covariance, divide by ``T - 1`` (:func:`sample_covariance`), as the component VaR
  convention of the issue asks. (The single-asset Gaussian estimator uses population moments; pass
  ``population_covariance`` here to reproduce it exactly.)
* Gaussian: ``σ_p = sqrt(wᵀΣw)``, ``VaR = wᵀμ - z_α σ_p``, ``CVaR = wᵀμ - σ_p φ(z_α)/(1-α)``; ``μ`` defaults to
  zero (the gate's convention).
* Marginal VaR ``∂VaR/∂w = μ - z_α Σw/σ_p``; component VaR ``w_i ∂VaR/∂w_i``. VaR is homogeneous of degree 1
  in ``w``, so the components sum to the portfolio VaR (Euler). At ``σ_p = 0`` (e.g. ``w = 0``) the marginal VaR
  is the one-sided derivative along each axis, ``μ_i - z_α σ_i``.
* Historical: :func:`operators.risk.historical.historical_var` / ``historical_cvar`` of the P&L series
  ``returns @ w``.
* Incremental VaR of a trade ``δ``: ``VaR(w + δ) - VaR(w)`` (negative = the trade adds risk).

>>> import numpy as np
>>> cov = np.array([[0.04, 0.0], [0.0, 0.01]])          # σ = 20 %, 10 %, uncorrelated
>>> w = np.array([1.0, 2.0])                              # σ_p = sqrt(0.04 + 0.04) = 0.2828
>>> round(portfolio_var_gaussian(w, cov, 0.95), 6)
-0.465235
>>> round(float(component_var(w, cov, 0.95).sum()), 6)
-0.465235
"""

from __future__ import annotations

import math

import numpy as np

from ._common import check_alpha
from .historical import historical_cvar, historical_var
from .standard_normal import norm_pdf, norm_ppf

__all__ = [
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
]


def _matrix(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2 or r.shape[0] == 0:
        raise ValueError(f"returns must be a non-empty (T, N) matrix, got shape {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    return r


def _vec(w: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(w, dtype=np.float64).reshape(-1)
    if v.size != n:
        raise ValueError(f"expected {n} weights, got {v.size}")
    if not np.isfinite(v).all():
        raise ValueError("weights must be finite")
    return v


def sample_covariance(returns: np.ndarray) -> np.ndarray:
    """(N, N) sample covariance of a (T, N) return matrix, divide by ``T - 1`` (needs T >= 2).

    >>> sample_covariance(np.array([[0.01, 0.02], [-0.01, 0.0], [0.0, 0.01]])).round(6).tolist()
    [[0.0001, 0.0001], [0.0001, 0.0001]]
    """
    r = _matrix(returns)
    if r.shape[0] < 2:
        raise ValueError("sample covariance needs at least 2 observations")
    d = r - r.mean(axis=0)
    cov: np.ndarray = (d.T @ d) / (r.shape[0] - 1)
    return cov


def population_covariance(returns: np.ndarray) -> np.ndarray:
    """(N, N) population covariance of a (T, N) return matrix, divide by ``T``."""
    r = _matrix(returns)
    d = r - r.mean(axis=0)
    cov: np.ndarray = (d.T @ d) / r.shape[0]
    return cov


def portfolio_returns(weights: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """P&L series ``returns @ weights`` (T,), in the unit of ``weights``."""
    r = _matrix(returns)
    pnl: np.ndarray = r @ _vec(weights, r.shape[1])
    return pnl


def portfolio_sigma(weights: np.ndarray, cov: np.ndarray) -> float:
    """``sqrt(wᵀΣw)``, unit of ``weights`` times return unit (0 if rounding makes wᵀΣw slightly negative)."""
    c = np.asarray(cov, dtype=np.float64)
    w = _vec(weights, c.shape[0])
    return math.sqrt(max(float(w @ c @ w), 0.0))


def _mu(mu: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n) if mu is None else _vec(mu, n)


def portfolio_var_gaussian(
    weights: np.ndarray, cov: np.ndarray, alpha: float = 0.95, mu: np.ndarray | None = None
) -> float:
    """``wᵀμ - z_α σ_p`` (μ = 0 by default), return sign."""
    a = check_alpha(alpha)
    c = np.asarray(cov, dtype=np.float64)
    w = _vec(weights, c.shape[0])
    return float(w @ _mu(mu, w.size)) - norm_ppf(a) * portfolio_sigma(w, c)


def portfolio_cvar_gaussian(
    weights: np.ndarray, cov: np.ndarray, alpha: float = 0.95, mu: np.ndarray | None = None
) -> float:
    """``wᵀμ - σ_p φ(z_α)/(1-α)`` (μ = 0 by default), return sign."""
    a = check_alpha(alpha)
    c = np.asarray(cov, dtype=np.float64)
    w = _vec(weights, c.shape[0])
    return float(w @ _mu(mu, w.size)) - portfolio_sigma(w, c) * norm_pdf(norm_ppf(a)) / (1.0 - a)


def portfolio_var_historical(weights: np.ndarray, returns: np.ndarray, alpha: float = 0.95) -> float:
    """Historical VaR of ``returns @ weights`` (linear-interpolated quantile), return sign."""
    return historical_var(portfolio_returns(weights, returns), alpha)


def portfolio_cvar_historical(weights: np.ndarray, returns: np.ndarray, alpha: float = 0.95) -> float:
    """Historical ES (mean strictly below the VaR) of ``returns @ weights``, return sign."""
    return historical_cvar(portfolio_returns(weights, returns), alpha)


def marginal_var(weights: np.ndarray, cov: np.ndarray, alpha: float = 0.95, mu: np.ndarray | None = None) -> np.ndarray:
    """Gradient of the Gaussian portfolio VaR, ``μ - z_α Σw/σ_p`` (N,), return unit per weight unit.

    >>> marginal_var([1.0, 0.0], np.array([[0.04, 0.0], [0.0, 0.01]]), 0.95).round(6).tolist()
    [-0.328971, 0.0]
    """
    a = check_alpha(alpha)
    c = np.asarray(cov, dtype=np.float64)
    w = _vec(weights, c.shape[0])
    m = _mu(mu, w.size)
    z = norm_ppf(a)
    sp = portfolio_sigma(w, c)
    if sp > 0.0:
        marginal: np.ndarray = m - z * (c @ w) / sp
        return marginal
    return m - z * np.sqrt(np.clip(np.diag(c), 0.0, None))


def component_var(
    weights: np.ndarray, cov: np.ndarray, alpha: float = 0.95, mu: np.ndarray | None = None
) -> np.ndarray:
    """``w_i ∂VaR/∂w_i`` (N,); sums to :func:`portfolio_var_gaussian` (Euler), unit of ``weights``."""
    c = np.asarray(cov, dtype=np.float64)
    w = _vec(weights, c.shape[0])
    comp: np.ndarray = w * marginal_var(w, c, alpha, mu)
    return comp


def incremental_var(
    weights: np.ndarray, delta: np.ndarray, cov: np.ndarray, alpha: float = 0.95, mu: np.ndarray | None = None
) -> float:
    """Gaussian ``VaR(w + δ) - VaR(w)``; negative when the trade ``δ`` adds risk (return sign).

    >>> round(incremental_var([1.0, 0.0], [0.0, 1.0], np.array([[0.04, 0.0], [0.0, 0.01]]), 0.95), 6)
    -0.03883
    """
    c = np.asarray(cov, dtype=np.float64)
    w = _vec(weights, c.shape[0])
    d = _vec(delta, c.shape[0])
    return portfolio_var_gaussian(w + d, c, alpha, mu) - portfolio_var_gaussian(w, c, alpha, mu)


def incremental_var_historical(
    weights: np.ndarray, delta: np.ndarray, returns: np.ndarray, alpha: float = 0.95
) -> float:
    """Historical ``VaR(w + δ) - VaR(w)`` on the P&L series, return sign."""
    r = _matrix(returns)
    w = _vec(weights, r.shape[1])
    d = _vec(delta, r.shape[1])
    return historical_var(r @ (w + d), alpha) - historical_var(r @ w, alpha)
