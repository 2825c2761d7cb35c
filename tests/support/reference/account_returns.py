"""[Reference: operators/.../account_returns.py as of commit ae8e5c8, kept verbatim but for absolute imports; see __init__.py.] ``ReturnWindow``: the last ``size`` rows of per-symbol one-period returns (fractions), a fixed ring buffer, with
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

import math
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
    # up to SMALL_N columns the running sums are Python floats (lists; the numpy calls on two or three numbers
    # cost more than the arithmetic); the same operations in the same order, so the same numbers. None: numpy
    # arrays in _s1/_s2 (more columns, or a window pickled before)
    _l1: list[float] | None = None
    _l2: list[list[float]] | None = None
    SMALL_N = 4

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
        if n <= self.SMALL_N:
            self._l1, self._l2 = self._s1.tolist(), self._s2.tolist()
            self._s1 = self._s2 = None  # type: ignore[assignment]
        self._cov: np.ndarray | None = None  # cache, cleared on push

    def __len__(self) -> int:
        return min(self.count, self.buf.shape[0])

    def push(self, row: Sequence[float] | np.ndarray) -> None:
        """Append one row (the oldest leaves once the window is full)."""
        size = self.buf.shape[0]
        head = self.head
        small = self._l1 is not None
        if small:
            rl: list[float] | None = [float(v) for v in row]
            r = None
        else:
            r = np.asarray(row, dtype=np.float64)
            rl = None
        old = None
        if self.count >= size:
            if small:
                old = self.buf[head].tolist()
            else:
                o = self.buf[head]
                self._s1 -= o
                self._s2 -= np.multiply.outer(o, o)  # np.outer of two vectors, without its Python wrapping
        self.buf[head] = rl if r is None else r
        if self._zbuf is not None and small:
            ew = self._ew
            if ew is None:
                self._zbuf[head] = 0.0  # nothing forecast the first row
                self._ew = np.array([x * x for x in rl])  # type: ignore[union-attr]
            else:
                # np.divide(r, sqrt(ew), where=sqrt(ew) > 0) and lam * ew + (1 - lam) * r², element by element
                ewl = ew.tolist()
                z = []
                for x, e in zip(rl, ewl):  # type: ignore[arg-type]
                    sg = math.sqrt(e)
                    z.append(x / sg if sg > 0.0 else 0.0)
                self._zbuf[head] = z
                lam = self.lam
                self._ew = np.array([lam * e + (1.0 - lam) * (x * x) for x, e in zip(rl, ewl)])  # type: ignore[operator, arg-type]
        elif self._zbuf is not None:
            assert r is not None
            if self._ew is None:
                self._zbuf[head] = 0.0  # nothing forecast the first row
                self._ew = r * r
            else:
                sig = np.sqrt(self._ew)
                self._zbuf[head] = np.divide(r, sig, out=np.zeros_like(r), where=sig > 0.0)
                lam = self.lam
                self._ew = lam * self._ew + (1.0 - lam) * (r * r)  # type: ignore[operator]
        if small:
            self._add_small(rl, old)  # type: ignore[arg-type]
        else:
            self._s1 += r
            self._s2 += np.multiply.outer(r, r)
        self.head = (head + 1) % size
        self.count += 1
        self._cov = None
        if self.count % size == 0:  # exact again, once per window
            self._resync()

    def _resync(self) -> None:
        live = self.buf[: len(self)]
        s1, s2 = live.sum(axis=0), live.T @ live
        if self._l1 is not None:
            self._l1, self._l2 = s1.tolist(), s2.tolist()
        else:
            self._s1, self._s2 = s1, s2

    def _add_small(self, r: list[float], old: list[float] | None) -> None:
        """The running sums as lists: minus the row ``old`` leaving (if any), plus ``r``, element by element as
        the numpy path does (``s1 -= old; s2 -= outer(old, old); s1 += r; s2 += outer(r, r)``)."""
        s1, s2 = self._l1, self._l2
        n = len(r)
        if n == 2:  # the loops below, unrolled (outer(x, x)[i][k] = x[i] * x[k])
            a, b = s2  # type: ignore[misc]
            if old is not None:
                o0, o1 = old
                s1[0] -= o0  # type: ignore[index]
                a[0] -= o0 * o0
                a[1] -= o0 * o1
                s1[1] -= o1  # type: ignore[index]
                b[0] -= o1 * o0
                b[1] -= o1 * o1
            r0, r1 = r
            s1[0] += r0  # type: ignore[index]
            a[0] += r0 * r0
            a[1] += r0 * r1
            s1[1] += r1  # type: ignore[index]
            b[0] += r1 * r0
            b[1] += r1 * r1
            return
        if old is not None:
            for i in range(n):
                s1[i] -= old[i]  # type: ignore[index]
                oi, row = old[i], s2[i]  # type: ignore[index]
                for k in range(n):
                    row[k] -= oi * old[k]
        for i in range(n):
            s1[i] += r[i]  # type: ignore[index]
            ri, row = r[i], s2[i]  # type: ignore[index]
            for k in range(n):
                row[k] += ri * r[k]

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
            if self._l1 is not None and len(self._l1) == 2:  # the lines below for two columns, unrolled
                (u, v), ((a, b), (e, f)) = self._l1, self._l2  # type: ignore[misc]
                m = t - 1
                d00, d01 = (a - u * u / t) / m, (b - u * v / t) / m
                d10, d11 = (e - v * u / t) / m, (f - v * v / t) / m
                c = np.array(((0.5 * (d00 + d00), 0.5 * (d01 + d10)), (0.5 * (d10 + d01), 0.5 * (d11 + d11))))
            elif self._l1 is not None:  # the same element-wise operations on the lists
                s1, s2, n = self._l1, self._l2, len(self._l1)
                d = [[(s2[i][k] - s1[i] * s1[k] / t) / (t - 1) for k in range(n)] for i in range(n)]  # type: ignore[index]
                c = np.array([0.5 * (d[i][k] + d[k][i]) for i in range(n) for k in range(n)]).reshape(n, n)
            else:
                c = (self._s2 - np.multiply.outer(self._s1, self._s1) / t) / (t - 1)
                c = 0.5 * (c + c.T)
            c.flags.writeable = False
            self._cov = c
        return self._cov
