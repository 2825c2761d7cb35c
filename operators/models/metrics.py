"""Probability metrics for binary labels: log-loss, ROC AUC, Brier score, expected calibration error (ECE).

All take ``y`` in {0, 1} and ``p`` = P(y = 1) in [0, 1]. Log-loss is in nats per sample; Brier and ECE are
in probability units (0 best). :class:`RollingMetrics` keeps the last ``window`` (label, probability) pairs
of one model for the streaming view (prequential, computed from delayed labels).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["EPS", "log_loss", "brier", "auc", "ece", "summarize", "RollingMetrics"]

#: probabilities are clipped to [EPS, 1 - EPS] before taking logs
EPS = 1e-6


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p differ in length: {y.shape} vs {p.shape}")
    return y, p


def log_loss(y, p) -> float:
    """Mean binary cross-entropy in nats: ``-mean(y ln p + (1 - y) ln(1 - p))``, p clipped to [EPS, 1-EPS]."""
    y, p = _arrays(y, p)
    if y.size == 0:
        return float("nan")
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y, p) -> float:
    """Mean squared error of the probability, ``mean((p - y)^2)``."""
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def auc(y, p) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) statistic, ties counted half; NaN when one class is absent."""
    y, p = _arrays(y, p)
    n1 = float(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    ranks = np.empty(p.size, dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def ece(y, p, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum_b (n_b / n) |mean(p)_b - mean(y)_b|`` over ``n_bins`` equal-width bins."""
    y, p = _arrays(y, p)
    if y.size == 0:
        return float("nan")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    sp = np.bincount(b, weights=p, minlength=n_bins)
    sy = np.bincount(b, weights=y, minlength=n_bins)
    m = cnt > 0
    return float(np.sum(np.abs(sp[m] - sy[m])) / y.size)


def summarize(y, p) -> dict[str, float]:
    """``{"n", "log_loss", "auc", "brier", "ece", "base_rate"}`` of one prediction series."""
    y, p = _arrays(y, p)
    return {
        "n": int(y.size),
        "log_loss": log_loss(y, p),
        "auc": auc(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p),
        "base_rate": float(y.mean()) if y.size else float("nan"),
    }


class RollingMetrics:
    """Metrics over the last ``window`` resolved predictions of one model (O(1) update; AUC/ECE O(window))."""

    def __init__(self, window: int = 1000) -> None:
        self.window = int(window)
        self._y: deque[float] = deque(maxlen=self.window)
        self._p: deque[float] = deque(maxlen=self.window)
        self.n_seen = 0

    def update(self, y: float, p: float) -> float:
        """Add one resolved prediction; returns its log-loss (nats)."""
        self._y.append(float(y))
        self._p.append(float(p))
        self.n_seen += 1
        q = min(max(p, EPS), 1 - EPS)
        return -math.log(q) if y else -math.log1p(-q)

    def __len__(self) -> int:
        return len(self._y)

    def snapshot(self) -> dict[str, float]:
        """Current window metrics (see :func:`summarize`)."""
        return summarize(np.fromiter(self._y, float, len(self._y)), np.fromiter(self._p, float, len(self._p)))
