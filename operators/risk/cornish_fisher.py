"""Cornish-Fisher (modified) VaR and CVaR: the Gaussian quantile corrected for skewness and excess kurtosis.

Population moments of the window (divide by n): ``μ``, ``σ``, skewness ``S = m3/m2^1.5``, excess kurtosis
``K = m4/m2² - 3``. With ``p = 1 - α`` and ``c = Φ⁻¹(p)`` (< 0 for α > 0.5), the Cornish-Fisher expansion maps a
standard normal quantile ``x`` to the standardised quantile

    ``g(x) = x + (x² - 1) S/6 + (x³ - 3x) K/24 - (2x³ - 5x) S²/36``

* ``VaR_α = μ + σ g(c)`` (the modified VaR of Favre & Galeano 2002 / Zangari 1996), return sign.
* ``CVaR_α`` is the **tail mean of the Cornish-Fisher quantile function**, ``(1/p) ∫_0^p (μ + σ g(Φ⁻¹(u))) du``.
  With the normal partial moments ``∫_{-∞}^c x^k φ(x) dx`` (k = 0..3: ``Φ(c)``, ``-φ(c)``, ``Φ(c) - cφ(c)``,
  ``-(c² + 2)φ(c)``) the integral is exact in closed form:

    ``CVaR_α = μ + (σ φ(c) / p) · (-1 - S c/6 + K (1 - c²)/24 - S² (1 - 2c²)/36)``

  (S = K = 0 gives the Gaussian ``μ - σ φ(z_α)/(1-α)``). This is **not** the Edgeworth-based "modified ES" of
  Boudt, Peterson & Croux (2008); it is the ES of the distribution whose quantile function is the CF expansion,
  checked in the tests against numerical integration of that quantile.

Domain: ``g`` is increasing (a proper quantile function) only for moderate (S, K) (Maillard 2012). Outside that
domain CVaR can come out less severe than VaR; :func:`cornish_fisher_monotone_tail` tells whether ``g`` is
increasing on the whole tail ``x <= c`` (then ``CVaR <= VaR`` is guaranteed).

>>> round(cornish_fisher_z(-1.6448536269514722, 0.0, 0.0), 12)   # no skew, no excess kurtosis: Gaussian
-1.644853626951
>>> round(cornish_fisher_z(-1.6448536269514722, 0.0, 3.0), 6)       # fat tails: (x³ - 3x) K/24 = +0.060542 at 95 %
-1.584311
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np

from ._common import RollingEstimator, check_alpha
from .gaussian import population_moments
from .standard_normal import norm_pdf, norm_ppf

_Moment = TypeVar("_Moment", float, np.ndarray)  # a skewness / excess kurtosis, or an array of them

__all__ = [
    "cornish_fisher_z",
    "cornish_fisher_var",
    "cornish_fisher_cvar",
    "cornish_fisher_monotone_tail",
    "RollingCornishFisher",
]


def cornish_fisher_z(x: float, skew: _Moment, exkurt: _Moment) -> _Moment:
    """The Cornish-Fisher standardised quantile ``g(x)`` for a normal quantile ``x`` (dimensionless); the moments
    floats, or arrays of them (one quantile per element)."""
    x2 = x * x
    g: _Moment = (
        x + (x2 - 1.0) * skew / 6.0 + (x2 * x - 3.0 * x) * exkurt / 24.0 - (2.0 * x2 * x - 5.0 * x) * skew * skew / 36.0
    )
    return g


def _tail_factor(c: float, skew: _Moment, exkurt: _Moment) -> _Moment:
    c2 = c * c
    f: _Moment = -1.0 - skew * c / 6.0 + exkurt * (1.0 - c2) / 24.0 - skew * skew * (1.0 - 2.0 * c2) / 36.0
    return f


def cornish_fisher_var(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Modified VaR ``μ + σ g(Φ⁻¹(1-α))`` with population moments, return sign."""
    a = check_alpha(alpha)
    mu, sigma, s, k = population_moments(returns)
    return mu + sigma * cornish_fisher_z(-norm_ppf(a), s, k)


def cornish_fisher_cvar(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Tail mean of the Cornish-Fisher quantile function (closed form, see module doc), return sign."""
    a = check_alpha(alpha)
    mu, sigma, s, k = population_moments(returns)
    c = -norm_ppf(a)
    return mu + sigma * norm_pdf(c) / (1.0 - a) * _tail_factor(c, s, k)


def cornish_fisher_monotone_tail(skew: float, exkurt: float, alpha: float = 0.95) -> bool:
    """True if ``g`` is strictly increasing on ``x <= Φ⁻¹(1-α)`` (then CF-CVaR <= CF-VaR).

    ``g'(x) = A x² + B x + C`` with ``A = K/8 - S²/6``, ``B = S/3``, ``C = 1 - K/8 + 5S²/36``.

    >>> cornish_fisher_monotone_tail(0.0, 0.0), cornish_fisher_monotone_tail(-3.0, 0.0)
    (True, False)
    """
    c = -norm_ppf(check_alpha(alpha))
    A = exkurt / 8.0 - skew * skew / 6.0
    B = skew / 3.0
    C = 1.0 - exkurt / 8.0 + 5.0 * skew * skew / 36.0
    if A < 0.0:
        return False  # g' -> -inf as x -> -inf
    if A == 0.0:
        return B <= 0.0 and B * c + C > 0.0
    xv = -B / (2.0 * A)  # vertex of the parabola
    xm = min(xv, c)
    return A * xm * xm + B * xm + C > 0.0


class RollingCornishFisher(RollingEstimator):
    """Cornish-Fisher VaR/CVaR over the last ``window`` returns (exact recompute, O(window)).

    >>> est = RollingCornishFisher(window=3)
    >>> for r in (0.5, -0.02, 0.0, 0.02):
    ...     est.update(r)
    >>> est.var(0.95) == cornish_fisher_var([-0.02, 0.0, 0.02], 0.95)
    True
    """

    __slots__ = ()
    _var_fn = staticmethod(cornish_fisher_var)
    _cvar_fn = staticmethod(cornish_fisher_cvar)
