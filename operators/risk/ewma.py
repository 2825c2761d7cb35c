"""EWMA (RiskMetrics 1996) VaR and CVaR: zero-mean normal with an exponentially weighted variance.

Recursion (the same as the ``ewma_vol`` feature, ``docs/features.md``): ``s²_1 = r_1²`` (**seeded with the first
squared return**), ``s²_t = λ s²_{t-1} + (1 - λ) r_t²``, **λ = 0.94** by default; ``σ = sqrt(s²_t)`` after the
last return is the one-period-ahead volatility forecast. Mean **zero** (RiskMetrics). Return sign, units of the
returns:

* ``VaR_α = -σ z_α``, ``z_α = Φ⁻¹(α)``
* ``CVaR_α = -σ φ(z_α) / (1 - α)``

Unlike the window estimators this one has no window: the state is one float (O(1) update, O(1) VaR); the
weight of a return ``k`` steps back is ``(1 - λ) λ^k`` (λ = 0.94: 99 % of the weight in the last 75 returns).

>>> round(ewma_sigma([0.01, -0.02]), 10)    # sqrt(0.94 * 1e-4 + 0.06 * 4e-4)
0.0108627805
>>> round(ewma_var([0.01, -0.02], 0.99), 10)
-0.0252706063
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._common import as_returns, check_alpha
from .gaussian import normal_cvar, normal_var

__all__ = ["RISKMETRICS_LAMBDA", "ewma_variance_path", "ewma_sigma", "ewma_var", "ewma_cvar", "EwmaEstimator"]

#: RiskMetrics decay for daily data; used here for every bar size unless told otherwise.
RISKMETRICS_LAMBDA = 0.94


def _check_lam(lam: float) -> float:
    x = float(lam)
    if not 0.0 < x < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    return x


def ewma_variance_path(returns: Iterable[float] | np.ndarray, lam: float = RISKMETRICS_LAMBDA) -> np.ndarray:
    """``s²_t`` after each return (same length as ``returns``), seeded ``s²_1 = r_1²``; units return².

    >>> ewma_variance_path([0.01, -0.02], 0.5).tolist()
    [0.0001, 0.00025]
    """
    lam = _check_lam(lam)
    r = as_returns(returns)
    out = np.empty(r.size)
    s2 = float(r[0]) ** 2
    out[0] = s2
    w = 1.0 - lam
    for i, x in enumerate(r[1:].tolist(), 1):
        s2 = lam * s2 + w * x * x
        out[i] = s2
    return out


def ewma_sigma(returns: Iterable[float] | np.ndarray, lam: float = RISKMETRICS_LAMBDA) -> float:
    """EWMA volatility after the last return, units of the returns."""
    return math.sqrt(float(ewma_variance_path(returns, lam)[-1]))


def ewma_var(returns: Iterable[float] | np.ndarray, alpha: float = 0.95, lam: float = RISKMETRICS_LAMBDA) -> float:
    """``-σ_ewma z_α`` (mean zero), return sign."""
    return normal_var(0.0, ewma_sigma(returns, lam), alpha)


def ewma_cvar(returns: Iterable[float] | np.ndarray, alpha: float = 0.95, lam: float = RISKMETRICS_LAMBDA) -> float:
    """``-σ_ewma φ(z_α)/(1-α)`` (mean zero), return sign."""
    return normal_cvar(0.0, ewma_sigma(returns, lam), alpha)


class EwmaEstimator:
    """Streaming EWMA VaR/CVaR: O(1) update and query, state = (λ, s², count); picklable.

    >>> est = EwmaEstimator()
    >>> for r in (0.01, -0.02):
    ...     est.update(r)
    >>> est.var(0.99) == ewma_var([0.01, -0.02], 0.99)
    True
    """

    __slots__ = ("lam", "s2", "count")

    def __init__(self, lam: float = RISKMETRICS_LAMBDA) -> None:
        self.lam = _check_lam(lam)
        self.s2: float | None = None  # return², None before the first return
        self.count = 0  # returns seen

    @property
    def n(self) -> int:
        """Returns seen."""
        return self.count

    @property
    def ready(self) -> bool:
        """True once a return has been seen."""
        return self.s2 is not None

    @property
    def sigma(self) -> float:
        """Current EWMA volatility (units of the returns); raises before the first return."""
        if self.s2 is None:
            raise ValueError("no returns yet")
        return math.sqrt(self.s2)

    def update(self, r: float) -> None:
        """Fold one return (finite)."""
        x = float(r)
        if not math.isfinite(x):
            raise ValueError(f"return must be finite, got {r!r}")
        self.s2 = x * x if self.s2 is None else self.lam * self.s2 + (1.0 - self.lam) * x * x
        self.count += 1

    def var(self, alpha: float = 0.95) -> float:
        """``-σ z_α``, return sign."""
        return normal_var(0.0, self.sigma, check_alpha(alpha))

    def cvar(self, alpha: float = 0.95) -> float:
        """``-σ φ(z_α)/(1-α)``, return sign."""
        return normal_cvar(0.0, self.sigma, check_alpha(alpha))

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.lam, self.s2, self.count)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.lam, self.s2, self.count = s
