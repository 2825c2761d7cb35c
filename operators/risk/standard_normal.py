"""Standard normal quantile, density and CDF, and the chi-square(1) survival function, with no SciPy.

* :func:`norm_ppf` is Wichura's algorithm AS 241 (``PPND16``, Applied Statistics 37, 1988): rational
  approximations in three regions, relative accuracy about 1e-16 over ``p`` in (0, 1).
* :func:`norm_pdf` is ``exp(-x²/2) / sqrt(2π)``; :func:`norm_cdf` is ``erfc(-x/√2) / 2`` (``math.erfc``, accurate
  in both tails).
* :func:`chi2_1_sf` is the chi-square survival function with one degree of freedom:
  ``P(X > x) = P(|Z| > √x) = erfc(√(x/2))``.

All inputs and outputs are plain floats (dimensionless).

>>> round(norm_ppf(0.95), 15), round(norm_ppf(0.99), 15)
(1.644853626951472, 2.326347874040841)
>>> round(norm_pdf(0.0), 15)
0.398942280401433
>>> round(chi2_1_sf(3.841458820694124), 12)
0.05
"""

from __future__ import annotations

import math

__all__ = ["norm_ppf", "norm_pdf", "norm_cdf", "chi2_1_sf"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)

# AS 241 coefficients (Wichura 1988), highest degree first for Horner's scheme.
_A = (
    2.5090809287301226727e3,
    3.3430575583588128105e4,
    6.7265770927008700853e4,
    4.5921953931549871457e4,
    1.3731693765509461125e4,
    1.9715909503065514427e3,
    1.3314166789178437745e2,
    3.3871328727963666080e0,
)
_B = (
    5.2264952788528545610e3,
    2.8729085735721942674e4,
    3.9307895800092710610e4,
    2.1213794301586595867e4,
    5.3941960214247511077e3,
    6.8718700749205790830e2,
    4.2313330701600911252e1,
    1.0,
)
_C = (
    7.74545014278341407640e-4,
    2.27238449892691845833e-2,
    2.41780725177450611770e-1,
    1.27045825245236838258e0,
    3.64784832476320460504e0,
    5.76949722146069140550e0,
    4.63033784615654529590e0,
    1.42343711074968357734e0,
)
_D = (
    1.05075007164441684324e-9,
    5.47593808499534494600e-4,
    1.51986665636164571966e-2,
    1.48103976427480074590e-1,
    6.89767334985100004550e-1,
    1.67638483018380384940e0,
    2.05319162663775882187e0,
    1.0,
)
_E = (
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    1.24266094738807843860e-3,
    2.65321895265761230930e-2,
    2.96560571828504891230e-1,
    1.78482653991729133580e0,
    5.46378491116411436990e0,
    6.65790464350110377720e0,
)
_F = (
    2.04426310338993978564e-15,
    1.42151175831644588870e-7,
    1.84631831751005468180e-5,
    7.86869131145613259100e-4,
    1.48753612908506148525e-2,
    1.36929880922735805310e-1,
    5.99832206555887937690e-1,
    1.0,
)


def _horner(coef: tuple[float, ...], x: float) -> float:
    acc = 0.0
    for c in coef:
        acc = acc * x + c
    return acc


def norm_ppf(p: float) -> float:
    """Standard normal quantile ``Φ⁻¹(p)`` for ``p`` in (0, 1) (AS 241); ``±inf`` at 0 and 1.

    >>> norm_ppf(0.5)
    0.0
    >>> round(norm_ppf(0.05), 12)
    -1.644853626951
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _horner(_A, r) / _horner(_B, r)
    r = math.sqrt(-math.log(p if q < 0.0 else 1.0 - p))
    if r <= 5.0:
        r -= 1.6
        x = _horner(_C, r) / _horner(_D, r)
    else:
        r -= 5.0
        x = _horner(_E, r) / _horner(_F, r)
    return -x if q < 0.0 else x


def norm_pdf(x: float) -> float:
    """Standard normal density ``φ(x) = exp(-x²/2)/√(2π)``.

    >>> round(norm_pdf(1.6448536269514722), 15)
    0.103135640375371
    """
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def norm_cdf(x: float) -> float:
    """Standard normal CDF ``Φ(x) = erfc(-x/√2)/2``.

    >>> round(norm_cdf(-1.6448536269514722), 15)
    0.05
    """
    return 0.5 * math.erfc(-x * _INV_SQRT2)


def chi2_1_sf(x: float) -> float:
    """Survival function of the chi-square distribution with 1 degree of freedom, ``erfc(√(x/2))``; 1 for x <= 0.

    >>> chi2_1_sf(0.0)
    1.0
    """
    if x <= 0.0:
        return 1.0
    return math.erfc(math.sqrt(0.5 * x))
