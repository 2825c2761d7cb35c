"""``ReturnWindow``: the last ``size`` rows of per-symbol one-period returns (fractions), a fixed ring buffer, with
the sample covariance of the rows kept up to date as rows come and go.

The covariance comes from running sums of the rows and of their outer products (one row added, the evicted one
taken away: O(n²) per push instead of O(size · n²) per recomputation). Both sums are recomputed exactly from the
buffer every ``size`` pushes, so rounding cannot accumulate beyond one window's worth of updates; the result
matches the two-pass formula to about 1e-13 relative (``tests/test_account.py`` checks 1e-12 on every push).

>>> w = ReturnWindow(3, 2)
>>> for r in ([0.01, 0.02], [0.0, -0.01], [0.03, 0.0], [-0.02, 0.01]):
...     w.push(r)
>>> w.matrix().tolist()        # oldest first; the first row left the window
[[0.0, -0.01], [0.03, 0.0], [-0.02, 0.01]]
>>> w.cov().round(6).tolist()  # sample covariance (divide by 3 - 1) of those rows
[[0.000633, -0.0001], [-0.0001, 0.0001]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ReturnWindow"]


class ReturnWindow:
    """Rows of ``n`` returns, at most ``size`` of them; picklable, O(n²) per push."""

    def __init__(self, size: int, n: int) -> None:
        if size < 1 or n < 1:
            raise ValueError("need size >= 1 and n >= 1")
        self.buf = np.zeros((size, n), dtype=np.float64)
        self.count = 0  # rows pushed so far
        self.head = 0  # next row to overwrite
        self._s1 = np.zeros(n)  # sum of the rows in the window
        self._s2 = np.zeros((n, n))  # sum of their outer products
        self._cov: np.ndarray | None = None  # cache, cleared on push

    def __len__(self) -> int:
        return min(self.count, self.buf.shape[0])

    def push(self, row: Sequence[float] | np.ndarray) -> None:
        """Append one row (the oldest leaves once the window is full)."""
        size = self.buf.shape[0]
        r = np.asarray(row, dtype=np.float64)
        if self.count >= size:
            old = self.buf[self.head]
            self._s1 -= old
            self._s2 -= np.outer(old, old)
        self.buf[self.head] = r
        self._s1 += r
        self._s2 += np.outer(r, r)
        self.head = (self.head + 1) % size
        self.count += 1
        self._cov = None
        if self.count % size == 0:  # exact again, once per window
            live = self.buf[: len(self)]
            self._s1 = live.sum(axis=0)
            self._s2 = live.T @ live

    def matrix(self) -> np.ndarray:
        """The rows, oldest first: a (len, n) array (a copy once the window has wrapped)."""
        size = self.buf.shape[0]
        if self.count < size:
            return self.buf[: self.count]
        if self.head == 0:
            return self.buf
        return np.concatenate((self.buf[self.head:], self.buf[: self.head]))

    def cov(self) -> np.ndarray:
        """(n, n) sample covariance of the rows in the window (divide by len - 1; needs len >= 2). Read-only."""
        if self._cov is None:
            t = len(self)
            if t < 2:
                raise ValueError("sample covariance needs at least 2 observations")
            c = (self._s2 - np.outer(self._s1, self._s1) / t) / (t - 1)
            c = 0.5 * (c + c.T)
            c.flags.writeable = False
            self._cov = c
        return self._cov
