"""Portfolio views built from per-symbol outputs (pure)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def combine_marks(marks: Iterable[tuple[str, int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Portfolio equity curve from per-symbol equity marks ``(symbol, ts ns, equity)``.

    At every time any symbol is marked, the portfolio equity is the sum over symbols of each one's
    latest mark at or before that time; a symbol counts from its first mark on. Returns
    ``(ts int64 ns, equity float64)`` sorted by time, one point per distinct time.

    >>> ts, eq = combine_marks([("A", 1, 100.0), ("B", 2, 50.0), ("A", 3, 110.0)])
    >>> ts.tolist(), eq.tolist()
    ([1, 2, 3], [100.0, 150.0, 160.0])
    """
    rows = sorted(marks, key=lambda m: (m[1], m[0]))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0)
    latest: dict[str, float] = {}
    total = 0.0
    ts_out: list[int] = []
    eq_out: list[float] = []
    for sym, ts, eq in rows:
        total += eq - latest.get(sym, 0.0)
        latest[sym] = eq
        if ts_out and ts_out[-1] == ts:
            eq_out[-1] = total
        else:
            ts_out.append(ts)
            eq_out.append(total)
    return np.asarray(ts_out, np.int64), np.asarray(eq_out, np.float64)
