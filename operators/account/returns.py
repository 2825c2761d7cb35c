"""``ReturnWindow``: the last ``size`` rows of per-symbol one-period returns (fractions), a fixed ring buffer.

>>> w = ReturnWindow(3, 2)
>>> for r in ([0.01, 0.02], [0.0, -0.01], [0.03, 0.0], [-0.02, 0.01]):
...     w.push(r)
>>> w.matrix().tolist()        # oldest first; the first row left the window
[[0.0, -0.01], [0.03, 0.0], [-0.02, 0.01]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ReturnWindow"]


class ReturnWindow:
    """Rows of ``n`` returns, at most ``size`` of them; picklable, O(n) per push."""

    def __init__(self, size: int, n: int) -> None:
        if size < 1 or n < 1:
            raise ValueError("need size >= 1 and n >= 1")
        self.buf = np.zeros((size, n), dtype=np.float64)
        self.count = 0  # rows pushed so far
        self.head = 0  # next row to overwrite

    def __len__(self) -> int:
        return min(self.count, self.buf.shape[0])

    def push(self, row: Sequence[float] | np.ndarray) -> None:
        """Append one row (the oldest leaves once the window is full)."""
        self.buf[self.head] = row
        self.head = (self.head + 1) % self.buf.shape[0]
        self.count += 1

    def matrix(self) -> np.ndarray:
        """The rows, oldest first: a (len, n) array (a copy once the window has wrapped)."""
        size = self.buf.shape[0]
        if self.count < size:
            return self.buf[: self.count]
        if self.head == 0:
            return self.buf
        return np.concatenate((self.buf[self.head:], self.buf[: self.head]))
