"""Parametric Gaussian (variance-covariance) VaR and CVaR.

Conventions (``docs/risk.md``): returns ~ N(μ, σ²) with the **population** moments of the window
(``μ = Σr/n``, ``σ² = Σ(r-μ)²/n``, divide by n); ``z_α = Φ⁻¹(α)`` (:func:`operators.risk.standard_normal.norm_ppf`).
Results in **return sign** (a loss is negative), units of the returns:

* ``VaR_α = μ - σ z_α``
* ``CVaR_α = μ - σ φ(z_α) / (1 - α)`` (the closed-form tail mean of the normal)

>>> round(normal_var(0.0, 1.0, 0.95), 12), round(normal_cvar(0.0, 1.0, 0.95), 12)
(-1.644853626951, -2.062712807507)
>>> round(gaussian_var([-0.02, 0.0, 0.02], 0.99), 6)   # μ = 0, σ = sqrt(0.0008/3)
-0.037989
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ._common import RollingEstimator, as_returns, check_alpha
from .standard_normal import norm_pdf, norm_ppf

__all__ = ["normal_var", "normal_cvar", "population_moments", "gaussian_var", "gaussian_cvar", "RollingGaussian"]


def normal_var(mu: float, sigma: float, alpha: float = 0.95) -> float:
    """VaR of N(mu, sigma²) at confidence ``alpha``: ``mu - sigma z_α`` (return sign)."""
    a = check_alpha(alpha)
    if not sigma >= 0.0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    return mu - sigma * norm_ppf(a)


def normal_cvar(mu: float, sigma: float, alpha: float = 0.95) -> float:
    """Expected shortfall of N(mu, sigma²): ``mu - sigma φ(z_α)/(1-α)`` (return sign)."""
    a = check_alpha(alpha)
    if not sigma >= 0.0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    return mu - sigma * norm_pdf(norm_ppf(a)) / (1.0 - a)


def population_moments(returns: Iterable[float] | np.ndarray) -> tuple[float, float, float, float]:
    """``(mean, std, skewness, excess kurtosis)`` with population (divide-by-n) central moments.

    ``std = sqrt(m2)``, ``skew = m3 / m2^1.5``, ``exkurt = m4 / m2² - 3``, computed on standardised deviations so
    that tiny scales do not underflow. A window whose spread is rounding noise (``std <= 1e-13 · max|r|``, e.g. a
    constant window) is degenerate: ``std``, skew and excess kurtosis are reported as 0.

    >>> population_moments([1.0, 2.0, 3.0, 4.0])
    (2.5, 1.118033988749895, 0.0, -1.3599999999999999)
    """
    r = as_returns(returns)
    mu = float(r.mean())
    d = r - mu
    sd = math.sqrt(float((d * d).mean()))
    if sd <= _DEGENERATE * float(np.abs(r).max()) or sd == 0.0:
        return mu, 0.0, 0.0, 0.0
    z = d / sd
    z2 = z * z
    return mu, sd, float((z2 * z).mean()), float((z2 * z2).mean()) - 3.0


#: Relative spread below which a window counts as constant (rounding noise), see :func:`population_moments`.
_DEGENERATE = 1e-13


def _mu_sigma(r: np.ndarray) -> tuple[float, float]:
    mu = float(r.mean())
    d = r - mu
    return mu, math.sqrt(float((d * d).mean()))


def gaussian_var(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Gaussian VaR of ``returns`` (population μ, σ), return sign."""
    mu, sigma = _mu_sigma(as_returns(returns))
    return normal_var(mu, sigma, alpha)


def gaussian_cvar(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Gaussian expected shortfall of ``returns`` (population μ, σ), return sign."""
    mu, sigma = _mu_sigma(as_returns(returns))
    return normal_cvar(mu, sigma, alpha)


class RollingGaussian(RollingEstimator):
    """Gaussian VaR/CVaR over the last ``window`` returns (recomputed exactly from the window: O(window)).

    >>> est = RollingGaussian(window=3)
    >>> for r in (0.5, -0.02, 0.0, 0.02):
    ...     est.update(r)
    >>> est.var(0.99) == gaussian_var([-0.02, 0.0, 0.02], 0.99)
    True
    """

    __slots__ = ()
    _var_fn = staticmethod(gaussian_var)
    _cvar_fn = staticmethod(gaussian_cvar)
