"""Probability metrics for binary labels: log-loss, ROC AUC, Brier score, expected calibration error (ECE).

All take ``y`` in {0, 1} and ``p`` = P(y = 1) in [0, 1]. Log-loss is in nats per sample; Brier and ECE are
in probability units (0 best). :class:`RollingMetrics` keeps the last ``window`` (label, probability) pairs
of one model for the streaming view (prequential, computed from delayed labels).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["EPS", "log_loss", "brier", "auc", "ece", "summarize", "RollingMetrics"]

#: probabilities are clipped to [EPS, 1 - EPS] before taking logs
EPS = 1e-6


def _arrays(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=np.float64).ravel()
    pa = np.asarray(p, dtype=np.float64).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"y and p differ in length: {ya.shape} vs {pa.shape}")
    return ya, pa


def log_loss(y: ArrayLike, p: ArrayLike) -> float:
    """Mean binary cross-entropy in nats: ``-mean(y ln p + (1 - y) ln(1 - p))``, p clipped to [EPS, 1-EPS]."""
    ya, pa = _arrays(y, p)
    if ya.size == 0:
        return float("nan")
    pa = np.clip(pa, EPS, 1 - EPS)
    return float(-np.mean(ya * np.log(pa) + (1 - ya) * np.log1p(-pa)))


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared error of the probability, ``mean((p - y)^2)``."""
    ya, pa = _arrays(y, p)
    return float(np.mean((pa - ya) ** 2)) if ya.size else float("nan")


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) statistic, ties counted half; NaN when one class is absent."""
    ya, pa = _arrays(y, p)
    n1 = float(ya.sum())
    n0 = ya.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(pa, kind="mergesort")
    ps = pa[order]
    ranks = np.empty(pa.size, dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[ya == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def ece(y: ArrayLike, p: ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum_b (n_b / n) |mean(p)_b - mean(y)_b|`` over ``n_bins`` equal-width bins."""
    ya, pa = _arrays(y, p)
    if ya.size == 0:
        return float("nan")
    b = np.minimum((pa * n_bins).astype(np.int64), n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    sp = np.bincount(b, weights=pa, minlength=n_bins)
    sy = np.bincount(b, weights=ya, minlength=n_bins)
    m = cnt > 0
    return float(np.sum(np.abs(sp[m] - sy[m])) / ya.size)


def summarize(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """``{"n", "log_loss", "auc", "brier", "ece", "base_rate"}`` of one prediction series."""
    ya, pa = _arrays(y, p)
    return {
        "n": int(ya.size),
        "log_loss": log_loss(ya, pa),
        "auc": auc(ya, pa),
        "brier": brier(ya, pa),
        "ece": ece(ya, pa),
        "base_rate": float(ya.mean()) if ya.size else float("nan"),
    }


class RollingMetrics:
    """Metrics over the last ``window`` resolved predictions of one model (O(1) update; AUC/ECE O(window))."""

    def __init__(self, window: int = 1000) -> None:
        self.window = int(window)
        self._y: deque[float] = deque(maxlen=self.window)
        self._p: deque[float] = deque(maxlen=self.window)
        self.n_seen = 0

    def update(self, ya: float, pa: float) -> float:
        """Add one resolved prediction; returns its log-loss (nats)."""
        self._y.append(float(ya))
        self._p.append(float(pa))
        self.n_seen += 1
        q = min(max(pa, EPS), 1 - EPS)
        return -math.log(q) if ya else -math.log1p(-q)

    def __len__(self) -> int:
        return len(self._y)

    def snapshot(self) -> dict[str, float]:
        """Current window metrics (see :func:`summarize`)."""
        return summarize(np.fromiter(self._y, float, len(self._y)), np.fromiter(self._p, float, len(self._p)))
