"""Probability calibration fitted on out-of-fold predictions: isotonic (PAV) and Platt (logistic on the logit).

Both map a raw probability (fraction) to a calibrated probability (fraction), clipped to ``[clip, 1 - clip]`` so
log-loss stays finite. Both are small, picklable and have a scalar ``predict_one`` for the hot path.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["IsotonicCalibrator", "PlattCalibrator", "IdentityCalibrator", "fit_calibrator"]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    z: np.ndarray = np.log(p) - np.log1p(-p)
    return z


class IdentityCalibrator:
    """No calibration (the raw probability, clipped)."""

    kind = "identity"

    def __init__(self, clip: float = 1e-4) -> None:
        self.clip = clip

    def predict(self, p: ArrayLike) -> np.ndarray:
        return np.clip(np.asarray(p, dtype=np.float64), self.clip, 1 - self.clip)

    def predict_one(self, p: float) -> float:
        return min(max(p, self.clip), 1 - self.clip)


class IsotonicCalibrator:
    """Monotone non-decreasing step fit by pool-adjacent-violators, linearly interpolated between block centres.

    ``fit(p, y)``: raw probabilities and 0/1 labels. Prediction outside the fitted range takes the end values.
    """

    kind = "isotonic"

    def __init__(self, clip: float = 1e-3) -> None:
        self.clip = clip
        self.x_: list[float] = []
        self.y_: list[float] = []

    def fit(self, p: ArrayLike, y: ArrayLike) -> IsotonicCalibrator:
        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if p.size == 0:
            raise ValueError("cannot fit a calibrator on no data")
        order = np.argsort(p, kind="mergesort")
        ps, ys = p[order], y[order]
        # merge equal x first (mean label, weight = count)
        ux, start, cnt = np.unique(ps, return_index=True, return_counts=True)
        sy = np.add.reduceat(ys, start)
        # PAV over blocks: (sum_y, weight, sum_x)
        bs_y: list[float] = []
        bs_w: list[float] = []
        bs_x: list[float] = []
        for xv, s, w in zip(ux.tolist(), sy.tolist(), cnt.tolist(), strict=True):
            bs_y.append(s)
            bs_w.append(w)
            bs_x.append(xv * w)
            while len(bs_y) > 1 and bs_y[-2] / bs_w[-2] >= bs_y[-1] / bs_w[-1]:
                s2, w2, x2 = bs_y.pop(), bs_w.pop(), bs_x.pop()
                bs_y[-1] += s2
                bs_w[-1] += w2
                bs_x[-1] += x2
        self.x_ = [x / w for x, w in zip(bs_x, bs_w, strict=True)]
        self.y_ = [min(max(s / w, self.clip), 1 - self.clip) for s, w in zip(bs_y, bs_w, strict=True)]
        return self

    def predict(self, p: ArrayLike) -> np.ndarray:
        return np.interp(np.asarray(p, dtype=np.float64), self.x_, self.y_)

    def predict_one(self, p: float) -> float:
        xs, ys = self.x_, self.y_
        i = bisect.bisect_right(xs, p)
        if i == 0:
            return ys[0]
        if i >= len(xs):
            return ys[-1]
        x0, x1 = xs[i - 1], xs[i]
        return ys[i - 1] + (ys[i] - ys[i - 1]) * (p - x0) / (x1 - x0)


class PlattCalibrator:
    """``sigmoid(a * logit(p) + b)`` fitted by Newton's method on the log-loss, with Platt's target smoothing."""

    kind = "platt"

    def __init__(self, clip: float = 1e-4) -> None:
        self.clip = clip
        self.a = 1.0
        self.b = 0.0

    def fit(self, p: ArrayLike, y: ArrayLike, iters: int = 50) -> PlattCalibrator:
        z = _logit(np.asarray(p, dtype=np.float64))
        y = np.asarray(y, dtype=np.float64)
        n1, n0 = y.sum(), y.size - y.sum()
        t = np.where(y > 0.5, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))  # Platt (1999) smoothed targets
        a, b = 1.0, 0.0
        for _ in range(iters):
            q = 1 / (1 + np.exp(-(a * z + b)))
            g = q - t
            w = np.maximum(q * (1 - q), 1e-12)
            ga, gb = float(g @ z), float(g.sum())
            haa, hab, hbb = float(w @ (z * z)) + 1e-9, float(w @ z), float(w.sum()) + 1e-9
            det = haa * hbb - hab * hab
            if det <= 0:
                break
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            a, b = a - da, b - db
            if abs(da) < 1e-10 and abs(db) < 1e-10:
                break
        self.a, self.b = float(a), float(b)
        return self

    def predict(self, p: ArrayLike) -> np.ndarray:
        q = 1 / (1 + np.exp(-(self.a * _logit(np.asarray(p, dtype=np.float64)) + self.b)))
        return np.clip(q, self.clip, 1 - self.clip)

    def predict_one(self, p: float) -> float:
        p = min(max(p, 1e-9), 1 - 1e-9)
        q = 1 / (1 + math.exp(-(self.a * math.log(p / (1 - p)) + self.b)))
        return min(max(q, self.clip), 1 - self.clip)


#: any of the three calibrators (the same ``predict`` and ``predict_one``)
Calibrator = IsotonicCalibrator | PlattCalibrator | IdentityCalibrator


def fit_calibrator(kind: str, p: ArrayLike, y: ArrayLike) -> Calibrator:
    """Fit ``"isotonic"``, ``"platt"`` or ``"identity"`` on (raw probability, label) pairs."""
    if kind == "isotonic":
        return IsotonicCalibrator().fit(p, y)
    if kind == "platt":
        return PlattCalibrator().fit(p, y)
    if kind == "identity":
        return IdentityCalibrator()
    raise ValueError(f"unknown calibration {kind!r}: isotonic, platt or identity")
