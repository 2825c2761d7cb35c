"""Historical (empirical) VaR and CVaR from a window of returns.

Conventions (``docs/risk.md``):

* Results are in **return sign**: a loss is negative (``VaR_95`` of typical returns is < 0); use
  :func:`operators.risk.to_loss` for the positive-loss convention. Units are those of the returns (fraction per
  period for simple or log returns).
* ``VaR_alpha`` is the ``(1 - alpha)`` sample quantile with **linear interpolation** (numpy's default,
  ``np.quantile(r, 1 - alpha, method="linear")``, Hyndman-Fan type 7): with sorted returns ``x_0 <= ... <=
  x_{n-1}`` and ``h = (1 - alpha)(n - 1)``, ``VaR = x_⌊h⌋ + (h - ⌊h⌋)(x_⌊h⌋+1 - x_⌊h⌋)``.
* ``CVaR_alpha`` (expected shortfall) is the **mean of the returns strictly below** ``VaR_alpha``. When no
  return is strictly below (only possible when ``VaR`` equals the sample minimum: ``h < 1`` with ``h`` integer,
  or ties at the minimum) ``CVaR = VaR``. So ``CVaR <= VaR`` always.
* :func:`acerbi_tasche_cvar` is the coherent empirical ES (Acerbi & Tasche 2002), given for comparison: it is
  subadditive on every sample, the "strictly below" estimator only when the number of returns strictly below
  the quantile is the same for the portfolio and its parts (always true for tie-free samples).

>>> r = [-0.05, -0.02, 0.0, 0.01, 0.03]
>>> historical_var(r, 0.75)          # h = 0.25 * 4 = 1 -> x_1
-0.02
>>> historical_cvar(r, 0.75)         # mean of returns < -0.02
-0.05
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ._common import RollingEstimator, as_returns, check_alpha

__all__ = ["historical_var", "historical_cvar", "historical_var_cvar", "acerbi_tasche_cvar", "RollingHistorical"]


def historical_var(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Empirical ``(1 - alpha)`` quantile of ``returns`` (linear interpolation), return sign.

    >>> historical_var([0.01, -0.02, 0.03, -0.04, 0.0], 0.5)
    0.0
    """
    a = check_alpha(alpha)
    r = as_returns(returns)
    return float(np.quantile(r, 1.0 - a, method="linear"))


def historical_cvar(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Mean of the returns strictly below :func:`historical_var`; equal to the VaR when none is, return sign.

    >>> historical_cvar([0.01, -0.02, 0.03, -0.04, 0.0], 0.5)
    -0.03
    >>> historical_cvar([-0.01, 0.02], 0.99)   # h = 0.01: VaR inside (x_0, x_1), x_0 strictly below
    -0.01
    """
    return historical_var_cvar(returns, alpha)[1]


def historical_var_cvar(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> tuple[float, float]:
    """``(historical_var, historical_cvar)`` from one quantile computation, return sign.

    >>> historical_var_cvar([0.01, -0.02, 0.03, -0.04, 0.0], 0.5)
    (0.0, -0.03)
    """
    a = check_alpha(alpha)
    r = as_returns(returns)
    q = float(np.quantile(r, 1.0 - a, method="linear"))
    tail = r[r < q]
    if tail.size == 0:
        return q, q
    return q, float(math.fsum(tail.tolist()) / tail.size)


def acerbi_tasche_cvar(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
    """Coherent empirical ES (Acerbi & Tasche 2002), return sign: with ``p = 1 - alpha``, ``m = n p`` and sorted
    returns, ``ES = (Σ_{i<⌊m⌋} x_i + (m - ⌊m⌋) x_⌊m⌋) / m`` — the mean of the worst ``p`` fraction of the
    sample, the boundary return counted fractionally. Subadditive on every sample.

    >>> acerbi_tasche_cvar([-0.04, -0.02, 0.0, 0.01, 0.03], 0.7)   # m = 1.5: (-0.04 + 0.5 * -0.02) / 1.5
    -0.03333333333333333
    """
    a = check_alpha(alpha)
    x = np.sort(as_returns(returns))
    m = x.size * (1.0 - a)
    k = math.floor(m)
    s = math.fsum(x[:k].tolist())
    if k < x.size:
        s += (m - k) * float(x[k])
    return s / m


class RollingHistorical(RollingEstimator):
    """Historical VaR/CVaR over the last ``window`` returns; ``update`` O(1), ``var``/``cvar`` O(window).

    >>> est = RollingHistorical(window=4)
    >>> for r in (0.03, -0.01, 0.02, -0.05, 0.01):
    ...     est.update(r)
    >>> est.values().tolist(), round(est.var(0.75), 4), est.cvar(0.75)
    ([-0.01, 0.02, -0.05, 0.01], -0.02, -0.05)
    """

    __slots__ = ()
    _var_fn = staticmethod(historical_var)
    _cvar_fn = staticmethod(historical_cvar)
