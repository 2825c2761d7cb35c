"""VaR backtesting: rolling out-of-sample forecasts, breach counts and Kupiec's proportion-of-failures test.

* Forecast for period ``t`` uses only returns before ``t``: the window estimators see ``returns[t - window:t]``;
  EWMA runs its recursion over ``returns[:t]`` (seeded with ``returns[0]²``), the window only fixing where the
  evaluation starts, so every method is scored on the same periods ``window .. T-1``.
* A **breach** is ``r_t < VaR_t`` (strictly below, return sign).
* Kupiec (1995) POF: with ``n`` forecasts, ``x`` breaches, expected rate ``p = 1 - α`` and ``p̂ = x/n``,
  ``LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-p̂)^(n-x) p̂^x]`` (``0 ln 0 = 0``), asymptotically χ²(1) under a correct
  model; the p-value is ``chi2_1_sf(LR) = erfc(sqrt(LR/2))``. Small p-values reject the VaR model.
* Christoffersen (1998) independence: from the breach sequence's transition counts ``n_ij`` (state i then j,
  1 = breach), ``π01 = n01/(n00+n01)``, ``π11 = n11/(n10+n11)``, ``π = (n01+n11)/(n00+n01+n10+n11)``,
  ``LR_ind = -2 ln[(1-π)^(n00+n10) π^(n01+n11)] + 2 ln[(1-π01)^n00 π01^n01 (1-π11)^n10 π11^n11]``, χ²(1) when
  breaches do not cluster; conditional coverage ``LR_cc = LR_pof + LR_ind``, χ²(2), p-value ``exp(-LR_cc/2)``.

>>> r = kupiec_pof(n=1000, breaches=10, alpha=0.99)        # exactly the expected rate
>>> r.lr, r.p_value
(0.0, 1.0)
>>> round(kupiec_pof(1000, 20, 0.99).lr, 6)
7.827239
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._common import as_returns, check_alpha
from .cornish_fisher import _tail_factor, cornish_fisher_cvar, cornish_fisher_var, cornish_fisher_z
from .ewma import RISKMETRICS_LAMBDA, ewma_variance_path
from .filtered import FHS_LAMBDA, fhs_var_cvar, standardised_residuals
from .gaussian import _DEGENERATE, gaussian_cvar, gaussian_var, normal_cvar, normal_var
from .historical import historical_cvar, historical_var
from .standard_normal import chi2_1_sf, norm_pdf, norm_ppf

__all__ = [
    "Method",
    "METHODS",
    "KupiecResult",
    "ChristoffersenResult",
    "VarBacktest",
    "var_breaches",
    "kupiec_pof",
    "christoffersen",
    "rolling_forecasts",
    "var_backtest",
]

Method = Literal["historical", "gaussian", "cornish_fisher", "ewma", "fhs"]
METHODS: tuple[str, ...] = ("historical", "gaussian", "cornish_fisher", "ewma", "fhs")

_WINDOW_FNS: dict[str, tuple[Callable[[np.ndarray, float], float], Callable[[np.ndarray, float], float]]] = {
    "historical": (historical_var, historical_cvar),
    "gaussian": (gaussian_var, gaussian_cvar),
    "cornish_fisher": (cornish_fisher_var, cornish_fisher_cvar),
}


@dataclass(frozen=True, slots=True)
class KupiecResult:
    """Kupiec POF test: ``lr`` (χ²(1) statistic, >= 0) and ``p_value`` (fraction)."""

    lr: float
    p_value: float


@dataclass(frozen=True, slots=True)
class VarBacktest:
    """One VaR backtest. ``n`` forecasts, ``breaches`` count, ``rate`` = breaches/n and ``expected`` = 1 - α
    (fractions); ``lr``/``p_value`` Kupiec; ``mean_var``/``mean_cvar`` average forecasts and
    ``mean_breach_return`` the average return on breach periods (NaN if none), return units, return sign."""

    method: str
    alpha: float
    window: int
    n: int
    breaches: int
    rate: float
    expected: float
    lr: float
    p_value: float
    mean_var: float
    mean_cvar: float
    mean_breach_return: float


def var_breaches(returns: np.ndarray, var_forecasts: np.ndarray) -> np.ndarray:
    """Boolean array ``returns < var_forecasts`` (same length; return sign).

    >>> var_breaches(np.array([-0.03, 0.01, -0.02]), np.array([-0.02, -0.02, -0.02])).tolist()
    [True, False, False]
    """
    r = np.asarray(returns, dtype=np.float64)
    v = np.asarray(var_forecasts, dtype=np.float64)
    if r.shape != v.shape:
        raise ValueError(f"returns {r.shape} and forecasts {v.shape} differ in shape")
    return r < v


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def kupiec_pof(n: int, breaches: int, alpha: float) -> KupiecResult:
    """Kupiec proportion-of-failures LR statistic and χ²(1) p-value for ``breaches`` out of ``n`` at ``alpha``."""
    a = check_alpha(alpha)
    if not 0 <= breaches <= n or n <= 0:
        raise ValueError(f"need 0 <= breaches <= n and n > 0, got {breaches}, {n}")
    p = 1.0 - a
    x = breaches
    ph = x / n
    ll0 = _xlogy(n - x, 1.0 - p) + _xlogy(x, p)
    ll1 = _xlogy(n - x, 1.0 - ph) + _xlogy(x, ph)
    lr = -2.0 * (ll0 - ll1)
    lr = lr if lr > 0.0 else 0.0  # rounding can give -0.0 or -1e-16 at p̂ == p
    return KupiecResult(lr, chi2_1_sf(lr))


@dataclass(frozen=True, slots=True)
class ChristoffersenResult:
    """Christoffersen's tests of a breach sequence: independence ``lr_ind`` (χ²(1)) with ``p_ind``, conditional
    coverage ``lr_cc`` (Kupiec + independence, χ²(2)) with ``p_cc``; ``p01``/``p11`` the breach rate after a
    quiet period and after a breach (fractions)."""

    lr_ind: float
    p_ind: float
    lr_cc: float
    p_cc: float
    p01: float
    p11: float


def christoffersen(hits: Iterable[bool] | np.ndarray, alpha: float) -> ChristoffersenResult:
    """Christoffersen independence and conditional-coverage tests of a boolean breach sequence (see module doc).

    >>> r = christoffersen([False, True, False, False, True, False, False, False, True, False], 0.9)
    >>> round(r.lr_ind, 6), round(r.p01, 4), r.p11
    (3.139489, 0.5, 0.0)
    """
    a = check_alpha(alpha)
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 1 or h.size < 2:
        raise ValueError(f"need a 1-d breach sequence of at least 2 periods, got shape {h.shape}")
    prev, cur = h[:-1], h[1:]
    n00 = int(np.count_nonzero(~prev & ~cur))
    n01 = int(np.count_nonzero(~prev & cur))
    n10 = int(np.count_nonzero(prev & ~cur))
    n11 = int(np.count_nonzero(prev & cur))
    p01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    p11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    ll0 = _xlogy(n00 + n10, 1.0 - pi) + _xlogy(n01 + n11, pi)
    ll1 = _xlogy(n00, 1.0 - p01) + _xlogy(n01, p01) + _xlogy(n10, 1.0 - p11) + _xlogy(n11, p11)
    lr_ind = max(-2.0 * (ll0 - ll1), 0.0)
    pof = kupiec_pof(int(h.size), int(h.sum()), a)
    lr_cc = pof.lr + lr_ind
    return ChristoffersenResult(lr_ind, chi2_1_sf(lr_ind), lr_cc, math.exp(-lr_cc / 2.0), p01, p11)


def rolling_forecasts(
    returns: np.ndarray, window: int, alpha: float, method: Method = "historical", lam: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample ``(VaR, CVaR)`` forecasts for periods ``window .. T-1`` (arrays of length ``T - window``),
    return sign. ``method`` one of :data:`METHODS`; ``lam`` the EWMA decay (default
    :data:`~operators.risk.ewma.RISKMETRICS_LAMBDA` for ``ewma``, :data:`~operators.risk.filtered.FHS_LAMBDA` for
    ``fhs``, whose quantile runs over the ``window`` residuals before each period).

    >>> v, c = rolling_forecasts(np.array([0.01, -0.02, 0.03, -0.01]), window=3, alpha=0.5)
    >>> v.tolist(), c.tolist()
    ([0.01], [-0.02])
    """
    a = check_alpha(alpha)
    r = as_returns(returns)
    w = int(window)
    if not 1 <= w < r.size:
        raise ValueError(f"need 1 <= window < len(returns) = {r.size}, got {window!r}")
    m = r.size - w
    if method == "fhs":
        lf = FHS_LAMBDA if lam is None else lam
        z, _ = standardised_residuals(r, lf)
        sig = np.sqrt(ewma_variance_path(r, lf)[w - 1 : -1])  # σ_t for t = w .. T-1
        var = np.empty(m)
        cvar = np.empty(m)
        views = sliding_window_view(z[:-1], w)  # row i = z[i:i + w], the residuals before period w + i
        for lo in range(0, m, _CHUNK):
            var[lo : lo + _CHUNK], cvar[lo : lo + _CHUNK] = _window_stats(views[lo : lo + _CHUNK], a, "historical")
        var[0], cvar[0] = fhs_var_cvar(r[:w], a, lf, window=w)  # z[0] forecasts nothing: left out, as there
        var[1:] *= sig[1:]
        cvar[1:] *= sig[1:]
        return var, cvar
    if method == "ewma":
        lam = RISKMETRICS_LAMBDA if lam is None else lam
        s2 = ewma_variance_path(r[:-1], lam)[w - 1 :]  # s²_{t-1}: forecast for t = w .. T-1
        sig = np.sqrt(s2)
        return sig * normal_var(0.0, 1.0, a), sig * normal_cvar(0.0, 1.0, a)
    if method not in _WINDOW_FNS:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    var = np.empty(m)
    cvar = np.empty(m)
    views = sliding_window_view(r[:-1], w)  # row i = returns[i:i + w], the window before period w + i
    for lo in range(0, m, _CHUNK):
        var[lo : lo + _CHUNK], cvar[lo : lo + _CHUNK] = _window_stats(views[lo : lo + _CHUNK], a, method)
    return var, cvar


_CHUNK = 2048  # rows of windows evaluated at once (bounds memory to _CHUNK * window floats)


def _window_stats(win: np.ndarray, a: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised batch estimators over rows of windows; equal to the 1-D functions up to summation order
    (relative 1e-12, tested)."""
    if method == "historical":
        q = np.quantile(win, 1.0 - a, axis=1, method="linear")
        below = win < q[:, None]
        cnt = below.sum(axis=1)
        tail_sum = np.where(below, win, 0.0).sum(axis=1)
        es = np.where(cnt > 0, tail_sum / np.maximum(cnt, 1), q)
        return q, es
    mu = win.mean(axis=1)
    d = win - mu[:, None]
    d2 = d * d
    m2 = d2.mean(axis=1)
    sd = np.sqrt(m2)
    if method == "gaussian":
        return mu + sd * normal_var(0.0, 1.0, a), mu + sd * normal_cvar(0.0, 1.0, a)
    pos = sd > _DEGENERATE * np.abs(win).max(axis=1)
    zs = d / np.where(pos, sd, 1.0)[:, None]
    z2 = zs * zs
    skew = np.where(pos, (z2 * zs).mean(axis=1), 0.0)
    exk = np.where(pos, (z2 * z2).mean(axis=1) - 3.0, 0.0)
    sd = np.where(pos, sd, 0.0)
    c = -norm_ppf(a)
    return mu + sd * cornish_fisher_z(c, skew, exk), mu + sd * norm_pdf(c) / (1.0 - a) * _tail_factor(c, skew, exk)


def var_backtest(
    returns: np.ndarray, window: int, alpha: float, method: Method = "historical", lam: float | None = None
) -> VarBacktest:
    """Rolling VaR backtest of ``method`` over ``returns`` (see module doc); pure, deterministic."""
    r = as_returns(returns)
    var, cvar = rolling_forecasts(r, window, alpha, method, lam)
    realised = r[int(window) :]
    hit = var_breaches(realised, var)
    n, x = int(hit.size), int(hit.sum())
    k = kupiec_pof(n, x, alpha)
    mbr = float(realised[hit].mean()) if x else math.nan
    return VarBacktest(
        method,
        float(alpha),
        int(window),
        n,
        x,
        x / n,
        1.0 - float(alpha),
        k.lr,
        k.p_value,
        float(var.mean()),
        float(cvar.mean()),
        mbr,
    )
