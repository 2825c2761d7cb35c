"""Walk-forward (time-ordered, expanding-window) splits with a gap between training and validation.

The gap (ns) must be at least the label horizon: a training row at ``t`` has a label that looks at prices up
to ``t + horizon``, so rows with ``t > val_start - gap`` are purged from training (no label overlap).
Several symbols may share times: splits are made on time, never on row position.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["walk_forward_splits"]


def walk_forward_splits(
    ts: ArrayLike, n_splits: int, gap_ns: int, *, min_train_frac: float = 0.4, end_frac: float = 1.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train_idx, val_idx) pairs over rows with times ``ts`` (int ns), in time order.

    The time range ``[t0, t0 + end_frac * span]`` is cut at ``min_train_frac`` of it; the rest is divided into
    ``n_splits`` equal validation windows. Fold k trains on every row with ``ts < val_start_k - gap_ns``
    (expanding window) and validates on ``val_start_k <= ts < val_end_k``. Raises on an empty fold.
    """
    ts = np.asarray(ts, dtype=np.int64)
    if n_splits < 1:
        raise ValueError("n_splits must be >= 1")
    if gap_ns < 0:
        raise ValueError("gap_ns must be >= 0")
    t0, t1 = int(ts.min()), int(ts.max())
    span = (t1 - t0) * end_frac
    first = t0 + span * min_train_frac
    edges = [first + (t0 + span - first) * k / n_splits for k in range(n_splits + 1)]
    out = []
    for k in range(n_splits):
        lo, hi = edges[k], edges[k + 1]
        val = np.flatnonzero((ts >= lo) & ((ts < hi) if k < n_splits - 1 or end_frac < 1.0 else (ts <= hi)))
        train = np.flatnonzero(ts < lo - gap_ns)
        if train.size == 0 or val.size == 0:
            raise ValueError(f"walk-forward fold {k} is empty (train {train.size}, val {val.size} rows)")
        out.append((train, val))
    return out
