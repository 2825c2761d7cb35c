"""``ReturnWindow``: the last ``size`` rows of per-symbol one-period returns (fractions), a fixed ring buffer, with
the sample covariance of the rows kept up to date as rows come and go.

The covariance comes from running sums of the rows and of their outer products (one row added, the evicted one
taken away: O(n²) per push instead of O(size · n²) per recomputation). Both sums are recomputed exactly from the
buffer every ``size`` pushes, so rounding cannot accumulate beyond one window's worth of updates; the result
matches the two-pass formula to about 1e-13 relative (``tests/unit/operators/account/test_account.py`` checks 1e-12 on every push).

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
    """Rows of ``n`` returns, at most ``size`` of them; picklable, O(n²) per push. With ``lam`` it also keeps each
    column's EWMA variance over every row pushed (seeded with the first row's squares) and the rows standardised by
    the volatility forecast made before them, for filtered historical simulation (:meth:`scenarios`)."""

    lam: float | None = None  # class defaults: a window pickled before FHS existed unpickles without it
    _zbuf: np.ndarray | None = None
    _ew: np.ndarray | None = None

    def __init__(self, size: int, n: int, lam: float | None = None) -> None:
        if size < 1 or n < 1:
            raise ValueError("need size >= 1 and n >= 1")
        if lam is not None and not 0.0 < lam < 1.0:
            raise ValueError(f"lam must be in (0, 1), got {lam!r}")
        self.lam = lam
        self._zbuf = np.zeros((size, n)) if lam is not None else None  # standardised rows, same ring as buf
        self._ew: np.ndarray | None = None  # EWMA variance per column after the last row
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
        if self._zbuf is not None:
            if self._ew is None:
                self._zbuf[self.head] = 0.0  # nothing forecast the first row
                self._ew = r * r
            else:
                sig = np.sqrt(self._ew)
                self._zbuf[self.head] = np.divide(r, sig, out=np.zeros_like(r), where=sig > 0.0)
                lam = self.lam
                self._ew = lam * self._ew + (1.0 - lam) * (r * r)  # type: ignore[operator]
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
        return np.concatenate((self.buf[self.head :], self.buf[: self.head]))

    def scenarios(self) -> np.ndarray:
        """Filtered historical scenarios: the window's standardised rows (oldest first; the very first row pushed,
        which nothing forecast, left out) times each column's volatility forecast for the next period."""
        if self._zbuf is None or self._ew is None:
            raise ValueError("scenarios need a window made with lam and at least one row")
        size = self.buf.shape[0]
        z = (
            self._zbuf[: self.count]
            if self.count < size
            else np.concatenate((self._zbuf[self.head :], self._zbuf[: self.head]))
        )
        if self.count <= size:
            z = z[1:]
        return z * np.sqrt(self._ew)

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
