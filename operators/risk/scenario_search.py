"""The largest order a historical (or FHS) VaR / CVaR limit allows, found on the exact piecewise-linear loss.

Scenario ``i`` gives the book a P&L of ``v_i(q) = a_i + q s_i`` after ``q`` more of the order
(:class:`~operators.risk.scenarios.ScenarioLines`), so the historical VaR (the ``1 - alpha`` quantile, NumPy's
linear interpolation between the order statistics ``k`` and ``k1``) and the CVaR (the mean of the scenarios strictly
below it) are piecewise linear in ``q``. Let ``n`` be the number of scenarios in the CVaR tail (``k + 1`` when the
quantile interpolates between two order statistics with a weight ``g > 0``, else ``k``). On any interval where

* the set ``T`` of the ``n`` lowest lines is the same at both ends and strictly below every other line there, and
* (VaR only) the same line ``L`` is the highest of ``T`` and the same line ``U`` the lowest of the others at both
  ends,

``T`` is the tail everywhere inside (a line above every member of ``T`` at both ends is above it in between: both
are linear), ``L`` and ``U`` are the order statistics ``k`` and ``k1`` everywhere inside (the maximum of lines that
is reached by one line at both ends is that line throughout; the same for the minimum), so the VaR
``(1 - g) v_L + g v_U`` and the CVaR ``mean_T v`` are one linear function of ``q`` there, and the boundary of the
limit is its root in closed form. This certificate needs only the two ends of the interval.

:class:`ScenarioSearch` answers the question of :meth:`ScenarioLines.largest` (the bisection of
:func:`~operators.risk.checks.max_feasible_qty`): it makes the bisection's own decisions, so it follows the same
path and ends at the same boundary when the loss crosses the bound more than once, but

* it stops halving as soon as the bracket is certified linear as above (the bracket has to fit inside one segment
  of the loss, not shrink to the float resolution) and solves the segment: the root stepped down to the last float
  that fits, accepted when ``1e-9`` of the range above it (the bisection's resolution) does not fit; the float
  expressions are those of the pruned bisection it replaces, so both give the same number on the same segment;
* a decision is taken without evaluating when the VaR's slope bound settles it from an evaluated end of the
  bracket (no order statistic of the lines moves faster than the fastest candidate line; a margin far above the
  rounding); the CVaR, which jumps where tied lines change the count below the VaR, is always evaluated;
* each evaluation is exact (the same floats as a full ``historical_var_cvar`` of the window) but touches only the
  candidates, pruned once for the whole bracket (a handful of NumPy calls): one partition, one mask and a sort of
  the ``k1 + 1`` lowest; the evaluations are shared by the searches of one book (several limits on the same lines).

Ties (identical lines) only delay the certificate; a window too short to have a scenario in the CVaR tail falls
back to :meth:`ScenarioLines.largest`. :meth:`ScenarioSearch.serve` also hands the gate book's own VaR/CVaR
evaluations to the search (the same floats, from its evaluations or its candidates).

>>> import numpy as np
>>> from operators.risk.scenarios import ScenarioLines
>>> from operators.risk.checks import max_feasible_qty
>>> rng = np.random.default_rng(0)
>>> lines = ScenarioLines(rng.normal(0, 100.0, 1000), rng.normal(0, 30.0, 1000), 0.99)
>>> loss = lambda q: -lines.var_cvar(q)[0]
>>> q = ScenarioSearch(lines).largest("var", 0.0, 1.0, 600.0, 0.0, 50.0)
>>> abs(q - max_feasible_qty(loss, 0.0, 50.0, 600.0)) <= 1e-9 * 50.0
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .scenarios import ScenarioLines, _lerp, settle_root

__all__ = ["ScenarioSearch"]


class _Point:
    """The exact evaluation at one ``q``: positive losses (VaR, CVaR) and the certificate data (the tail set,
    the lines ``L`` and ``U``, whether the tail is strictly below the rest)."""

    __slots__ = ("var", "cvar", "tail", "low", "up", "strict")

    def __init__(self, var: float, cvar: float, tail: frozenset[Any], low: int, up: int, strict: bool) -> None:
        self.var, self.cvar, self.tail, self.low, self.up, self.strict = var, cvar, tail, low, up, strict


class ScenarioSearch:
    """The limit searches of one book's scenario lines (see the module doc)."""

    __slots__ = ("lines", "n", "_brackets", "_points", "_cur", "_smax")

    def __init__(self, lines: ScenarioLines) -> None:
        self.lines = lines
        k, k1, g = lines.k, lines.k1, lines.g
        self.n = k + 1 if (g > 0.0 and k1 != k) else k  # scenarios in the CVaR tail (tie-free)
        self._brackets: list[tuple[Any, ...]] = []  # see _bracket: (lo, hi, idx, a, s, below, kb, kb1, nc, g, ...)
        self._points: dict[float, _Point] = {}
        self._cur: tuple[Any, ...] | None = None
        self._smax: tuple[tuple[Any, ...], float] | None = None  # (bracket, the largest |s| of its candidates)

    @classmethod
    def serve(cls, book: Any) -> ScenarioSearch:
        """The search of a gate book (``operators.risk.gate._Book``), which then also answers the book's own
        VaR/CVaR evaluations (:meth:`var_cvar`): the gate's checks of a limit at the quantities a search already
        evaluated, or inside its bracket, cost no full pass over the window."""
        s = cls(book.lines)
        book.lines = s
        return s

    def var_cvar(self, q: float) -> tuple[float, float]:
        """:meth:`ScenarioLines.var_cvar`, the same floats: from an evaluation already made, or over the candidates
        when ``q`` is inside a pruned bracket, else over the whole window."""
        p = self._points.get(q)
        if p is None:
            b = None
            for c in self._brackets:
                if c[0] <= q <= c[1]:
                    b = c
                    break
            if b is None:  # over the whole window (a search starting or ending here evaluates it with its data)
                return self.lines.var_cvar(q)
            cur, self._cur = self._cur, b
            try:
                p = self._point(q)
            finally:
                self._cur = cur
        return -p.var, -p.cvar

    # -- candidates ---------------------------------------------------------------------------------------------
    def _bracket(self, lo: float, hi: float) -> tuple[Any, ...] | None:
        """Candidates valid on ``[lo, hi]``: a pruning made for an interval containing it, else a new one:
        ``(lo, hi, idx, a, s, below, kb, kb1, nc, g, a_below, s_below)`` (``below``, scenarios known to lie under
        the tail's highest line everywhere, is kept empty: finding them costs more than it saves)."""
        for b in self._brackets:
            if b[0] <= lo and hi <= b[1]:
                return b
        L = self.lines
        if self.n < 1:  # no scenario in the CVaR tail (a tiny window): not handled here
            return None
        a, s = L.a, L.s
        v0, v1 = a + lo * s, a + hi * s
        large = np.maximum(v0, v1)
        w = large.copy()
        w.partition(L.k1)  # w[k1] >= the k1-th value anywhere in the bracket: a line above it there never matters
        idx = (np.minimum(v0, v1) <= w[L.k1]).nonzero()[0]
        b = (lo, hi, idx, a[idx], s[idx], [], L.k, L.k1, self.n, L.g, [], [])
        self._brackets.append(b)
        return b

    # -- one exact evaluation -----------------------------------------------------------------------------------
    def _point(self, q: float) -> _Point:
        p = self._points.get(q)
        if p is not None:
            return p
        _, _, idx, ac, sc, below, kb, kb1, nc, g, ab, sb = self._cur  # type: ignore[misc]
        vc = ac + q * sc  # the same floats as a + q * s of the whole window
        if vc.size > kb1 + 1:  # the kb1 + 1 lowest (and any tied with the highest of them): cheaper than argpartition
            w = vc.copy()
            w.partition(kb1)
            pos = (vc <= w[kb1]).nonzero()[0]
            srt = sorted(zip(vc[pos].tolist(), idx[pos].tolist(), strict=True))
        else:
            srt = sorted(zip(vc.tolist(), idx.tolist(), strict=True))
        var = _lerp(srt[kb][0], srt[kb1][0], g)
        tail = [v for v, _ in srt[:kb1] if v < var]
        members = [i for _, i in srt[:nc]]
        if below:  # (Python floats: the same products and sums as NumPy's)
            tail += [x + q * y for x, y in zip(ab, sb, strict=True)]
            members += below
        cvar = math.fsum(tail) / len(tail) if tail else var
        if nc < len(srt):
            up = srt[nc]
            p = _Point(-var, -cvar, frozenset(members), srt[nc - 1][1], up[1], srt[nc - 1][0] < up[0])
        else:
            p = _Point(-var, -cvar, frozenset(members), srt[nc - 1][1], -1, False)
        self._points[q] = p
        return p

    # -- the segment --------------------------------------------------------------------------------------------
    def _linear(self, p: _Point, r: _Point, cvar: bool) -> tuple[float, float, int] | None:
        """The segment between the points ``p`` and ``r`` when certified linear there (module doc), None
        otherwise: ``(sum of a, sum of s, n)`` over the tail for the CVaR, ``(alpha, beta, 0)`` of the VaR
        ``alpha + beta q``."""
        if not (p.strict and r.strict and p.tail == r.tail):
            return None
        L = self.lines
        if cvar:
            ids = list(p.tail)
            return math.fsum(L.a[ids].tolist()), math.fsum(L.s[ids].tolist()), len(ids)
        if p.up != r.up:
            return None
        g = L.g
        au, su = float(L.a[p.up]), float(L.s[p.up])
        if self.n == L.k + 1:  # VaR = (1 - g) v_L + g v_U
            if p.low != r.low:
                return None
            a_lo, s_lo = float(L.a[p.low]), float(L.s[p.low])
            return (1.0 - g) * a_lo + g * au, (1.0 - g) * s_lo + g * su, 0
        # VaR = v_U (g = 0, or the top order statistic): the same expression, the weight on the same line
        return (1.0 - g) * au + g * au, (1.0 - g) * su + g * su, 0

    # -- the search ---------------------------------------------------------------------------------------------
    def largest(
        self, kind: str, off: float, scale: float, bound: float, lo: float, hi: float, iterations: int = 60
    ) -> float:
        """:meth:`ScenarioLines.largest`: the boundary of ``(X(q) - off) / scale <= bound`` on ``[lo, hi]``
        (``X`` the VaR for ``kind="var"``, the CVaR for ``"cvar"``, positive losses), ``lo`` fitting and ``hi``
        not; the bisection's answer to its resolution (``lo`` when nothing larger fits)."""
        if kind not in ("var", "cvar"):
            raise ValueError(f"kind must be 'var' or 'cvar', got {kind!r}")
        cvar = kind == "cvar"
        b = self._bracket(lo, hi)
        if b is None:
            return self.lines.largest(kind, off, scale, bound, lo, hi, iterations)
        self._cur = b
        tol = 1e-9 * (hi - lo)
        target = bound * scale + off  # X <= target at the boundary (positive loss, quote currency)

        def x_of(p: _Point) -> float:
            return p.cvar if cvar else p.var

        def fits(q: float) -> bool:
            return (x_of(self._point(q)) - off) / scale <= bound

        p_lo, p_hi = self._point(lo), self._point(hi)  # evaluated points at or around the bracket's ends
        e_lo, e_hi = lo, hi
        # |dX/dq| <= slope anywhere for the VaR (every order statistic of the lines moves no faster than the
        # fastest line); the CVaR jumps where tied lines change the count strictly below the VaR, so no bound
        slope = math.inf if cvar else self._slope(b)
        tried: set[tuple[float, float]] = set()
        fresh = True
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if fresh and (e_lo, e_hi) not in tried:
                tried.add((e_lo, e_hi))
                lin = self._linear(p_lo, p_hi, cvar)
                if lin is not None:
                    q = self._solve(lin, target, lo, hi, tol, fits)
                    if q is not None:
                        return q
            # the bisection's decision at mid, without evaluating when the slope bound from an evaluated end
            # settles it (with a margin far above the evaluation's rounding): the same path, fewer evaluations
            if slope < math.inf:
                x_lo, x_hi = x_of(p_lo), x_of(p_hi)
                up = x_lo + slope * (mid - e_lo)  # >= X(mid)
                down = x_hi - slope * (e_hi - mid)  # <= X(mid)
                margin = 1e-9 * (abs(x_lo) + abs(x_hi) + slope * (e_hi - e_lo) + abs(target))
                if (up + margin - off) / scale <= bound:
                    lo, fresh = mid, False
                    continue
                if (down - margin - off) / scale > bound:
                    hi, fresh = mid, False
                    continue
            p = self._point(mid)
            fresh = True
            if (x_of(p) - off) / scale <= bound:
                lo, p_lo, e_lo = mid, p, mid
            else:
                hi, p_hi, e_hi = mid, p, mid
        return lo

    def _slope(self, b: tuple[Any, ...]) -> float:
        """The largest ``|s|`` of the candidates of bracket ``b`` (the VaR there is made of their lines only)."""
        if self._smax is None or self._smax[0] is not b:
            self._smax = (b, float(np.abs(b[4]).max()) if b[4].size else 0.0)
        return self._smax[1]

    @staticmethod
    def _solve(
        lin: tuple[float, float, int], target: float, lo: float, hi: float, tol: float, fits: Callable[[float], bool]
    ) -> float | None:
        """The root of the segment's loss at ``target`` in ``[lo, hi]``, stepped down to a fitting float and
        checked to be the boundary; None when the floats disagree with the segment (then halving goes on). The
        float expressions are those of :meth:`ScenarioLines.largest` on the same segment, so both give the same
        number when both solve it."""
        x, y, n = lin
        if not y < 0.0:
            return None  # the loss does not grow on the segment, yet hi breaks the bound: float noise
        t = -target  # the return-sign value of the VaR / CVaR at the boundary
        q = (t * n - x) / y if n else (t - x) / y  # CVaR: the tail mean (x + q y) / n; VaR: x + q y
        q = min(max(q, lo), hi)
        root = settle_root(q, lo, tol, fits)
        if root is None:
            return None
        q = root
        z = min(hi, q + tol)
        if q < hi and not ScenarioSearch._surely_out(lin, t, z) and fits(z):
            return None  # not the boundary (rounding made the piece look linear): keep halving
        return q

    @staticmethod
    def _surely_out(lin: tuple[float, float, int], t: float, z: float) -> bool:
        """The segment puts the return-sign VaR/CVaR at ``z`` below ``t`` by far more than the evaluation's
        rounding (1e-10 of the magnitudes against float errors of 1e-15): ``z`` does not fit, no need to evaluate
        it (the decision an evaluation would take; ``z`` lies on the certified segment)."""
        x, y, n = lin
        if n:
            val, mag = (x + z * y) / n, (abs(x) + abs(z * y)) / n
        else:
            val, mag = x + z * y, abs(x) + abs(z * y)
        return val < t - 1e-10 * (mag + abs(t))
