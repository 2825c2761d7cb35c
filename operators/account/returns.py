"""``ReturnWindow``: the last ``size`` rows of per-symbol one-period returns (fractions), a fixed ring buffer, with
the sample covariance of the rows kept up to date as rows come and go.

The covariance comes from running sums of the rows and of their outer products (one row added, the evicted one
taken away: O(n²) per push instead of O(size · n²) per recomputation). Both sums are recomputed exactly from the
buffer every ``size`` pushes, so rounding cannot accumulate beyond one window's worth of updates; the result
matches the two-pass formula to about 1e-13 relative (``tests/unit/operators/account/test_account.py`` checks 1e-12 on every push).
A window of more than ``WIDE_N`` columns (an account of thousands of symbols) keeps no running sums: their n x n
outer products would be 800 MB at 10,000 symbols, updated at every push and pickled into every snapshot; its
:meth:`ReturnWindow.cov` computes the sums of a resync from the rows when it is read (the default FHS gate never
reads it).

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
from collections.abc import Sequence
from typing import Any

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
    #: above this many columns no running sums are kept (``cov`` sums the rows when it is read)
    WIDE_N = 1024
    _scn: np.ndarray | None = None  # the filtered scenarios after the last push (cache, not pickled)
    _ewl: list[float] | None = None  # small windows: _ew as Python floats (the same values), None = use _ew

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
        wide = n > self.WIDE_N  # no n x n sums (see cov)
        self._s1: np.ndarray | None = None if wide else np.zeros(n)  # sum of the rows in the window
        self._s2: np.ndarray | None = None if wide else np.zeros((n, n))  # sum of their outer products
        if n <= self.SMALL_N:
            self._l1, self._l2 = np.zeros(n).tolist(), np.zeros((n, n)).tolist()
            self._s1 = self._s2 = None
        self._cov: np.ndarray | None = None  # cache, cleared on push

    def __len__(self) -> int:
        return min(self.count, self.buf.shape[0])

    def push(self, row: Sequence[float] | np.ndarray) -> None:
        """Append one row (the oldest leaves once the window is full)."""
        size = self.buf.shape[0]
        head = self.head
        small = self._l1 is not None
        s1, s2 = self._s1, self._s2  # (numpy sums: None when small)
        rl: list[float] = []
        r: np.ndarray | None = None
        if small:
            rl = [float(v) for v in row]
        else:
            r = np.asarray(row, dtype=np.float64)
        old: list[float] | None = None
        if self.count >= size:
            if small:
                old = self.buf[head].tolist()
            elif s1 is not None and s2 is not None:
                o = self.buf[head]
                s1 -= o
                s2 -= np.multiply.outer(o, o)  # np.outer of two vectors, without its Python wrapping
        self.buf[head] = rl if r is None else r
        if self._zbuf is not None and small:
            ew = self._ew
            if ew is None:
                self._zbuf[head] = 0.0  # nothing forecast the first row
                ewn = [x * x for x in rl]
                self._ew, self._ewl = np.array(ewn), ewn
            else:
                # np.divide(r, sqrt(ew), where=sqrt(ew) > 0) and lam * ew + (1 - lam) * r², element by element
                ewl = self._ewl if self._ewl is not None else ew.tolist()
                lam = self.lam
                assert lam is not None  # (a window with _zbuf has its decay)
                if len(rl) == 2:  # the loops below, unrolled
                    x0, x1 = rl
                    e0, e1 = ewl
                    g0, g1 = math.sqrt(e0), math.sqrt(e1)
                    self._zbuf[head] = (x0 / g0 if g0 > 0.0 else 0.0, x1 / g1 if g1 > 0.0 else 0.0)
                    ewn = [lam * e0 + (1.0 - lam) * (x0 * x0), lam * e1 + (1.0 - lam) * (x1 * x1)]
                else:
                    z = []
                    for x, e in zip(rl, ewl):  # noqa: B905 - one value per symbol each; a keyword costs ~160 ns a call
                        sg = math.sqrt(e)
                        z.append(x / sg if sg > 0.0 else 0.0)
                    self._zbuf[head] = z
                    ewn = [lam * e + (1.0 - lam) * (x * x) for x, e in zip(rl, ewl)]  # noqa: B905 - as above
                self._ew, self._ewl = np.array(ewn), ewn
        elif self._zbuf is not None:
            assert r is not None and self.lam is not None
            if self._ew is None:
                self._zbuf[head] = 0.0  # nothing forecast the first row
                self._ew = r * r
            else:
                sig = np.sqrt(self._ew)
                self._zbuf[head] = np.divide(r, sig, out=np.zeros_like(r), where=sig > 0.0)
                lam = self.lam
                self._ew = lam * self._ew + (1.0 - lam) * (r * r)
        if small:
            self._add_small(rl, old)
        elif s1 is not None and s2 is not None and r is not None:
            s1 += r
            s2 += np.multiply.outer(r, r)
        self.head = (head + 1) % size
        self.count += 1
        self._cov = None
        self._scn = None
        if self.count % size == 0:  # exact again, once per window
            self._resync()

    def _resync(self) -> None:
        live = self.buf[: len(self)]
        s1, s2 = live.sum(axis=0), live.T @ live
        if self._l1 is not None:
            self._l1, self._l2 = s1.tolist(), s2.tolist()
        elif self._s2 is not None:  # (a wide window keeps no sums)
            self._s1, self._s2 = s1, s2

    def _add_small(self, r: list[float], old: list[float] | None) -> None:
        """The running sums as lists: minus the row ``old`` leaving (if any), plus ``r``, element by element as
        the numpy path does (``s1 -= old; s2 -= outer(old, old); s1 += r; s2 += outer(r, r)``)."""
        s1, s2 = self._l1, self._l2
        assert s1 is not None and s2 is not None
        n = len(r)
        if n == 2:  # the loops below, unrolled (outer(x, x)[i][k] = x[i] * x[k])
            a, b = s2
            if old is not None:
                o0, o1 = old
                s1[0] -= o0
                a[0] -= o0 * o0
                a[1] -= o0 * o1
                s1[1] -= o1
                b[0] -= o1 * o0
                b[1] -= o1 * o1
            r0, r1 = r
            s1[0] += r0
            a[0] += r0 * r0
            a[1] += r0 * r1
            s1[1] += r1
            b[0] += r1 * r0
            b[1] += r1 * r1
            return
        if old is not None:
            for i in range(n):
                s1[i] -= old[i]
                oi, row = old[i], s2[i]
                for k in range(n):
                    row[k] -= oi * old[k]
        for i in range(n):
            s1[i] += r[i]
            ri, row = r[i], s2[i]
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
        which nothing forecast, left out) times each column's volatility forecast for the next period. Computed
        once per push (read-only)."""
        if self._scn is not None:
            return self._scn
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
        s: np.ndarray = z * np.sqrt(self._ew)
        s.flags.writeable = False  # (shared by every reader until the next push: read-only)
        self._scn = s
        return s

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_scn", None)  # a cache: rebuilt on the first read after a restore
        return state

    def cov(self) -> np.ndarray:
        """(n, n) sample covariance of the rows in the window (divide by len - 1; needs len >= 2). Read-only."""
        if self._cov is None:
            t = len(self)
            if t < 2:
                raise ValueError("sample covariance needs at least 2 observations")
            l1, l2 = self._l1, self._l2
            if l1 is not None and l2 is not None and len(l1) == 2:  # the lines below for two columns, unrolled
                (u, v), ((a, b), (e, f)) = l1, l2
                m = t - 1
                d00, d01 = (a - u * u / t) / m, (b - u * v / t) / m
                d10, d11 = (e - v * u / t) / m, (f - v * v / t) / m
                c = np.array(((0.5 * (d00 + d00), 0.5 * (d01 + d10)), (0.5 * (d10 + d01), 0.5 * (d11 + d11))))
            elif l1 is not None and l2 is not None:  # the same element-wise operations on the lists
                n = len(l1)
                d = [[(l2[i][k] - l1[i] * l1[k] / t) / (t - 1) for k in range(n)] for i in range(n)]
                c = np.array([0.5 * (d[i][k] + d[k][i]) for i in range(n) for k in range(n)]).reshape(n, n)
            else:
                u1, u2 = self._s1, self._s2
                if u1 is None or u2 is None:  # a wide window: the sums a resync would make, from the rows
                    live = self.buf[:t]
                    u1, u2 = live.sum(axis=0), live.T @ live
                c = (u2 - np.multiply.outer(u1, u1) / t) / (t - 1)
                c = 0.5 * (c + c.T)
            c.flags.writeable = False
            self._cov = c
        return self._cov
