"""Historical VaR/CVaR of a book whose P&L in every historical scenario is linear in the order size, and the largest
order a limit on them allows, without re-sorting the window at every step.

Scenario ``i`` of the window (one row of returns) gives the book a P&L of ``v_i(q) = a_i + q s_i`` (quote currency)
after ``q`` more of the order: ``a = R x0`` (the book now) and ``s = R[:, j] d`` (the order's column times sign x
price). The historical VaR is the ``1 - alpha`` quantile of ``v(q)`` (linear interpolation between the order
statistics ``k = floor(h)`` and ``k + 1``, ``h = (T - 1)(1 - alpha)``, NumPy's default) and the CVaR the mean of the
scenarios strictly below it, return sign (a loss is negative) — the definitions of
:func:`operators.risk.historical.historical_var_cvar`, which :func:`var_cvar` reproduces bit for bit from one
partial sort instead of ``np.quantile``.

:meth:`ScenarioLines.largest` answers "the largest ``q`` whose loss fits the bound" with the same bisection as
:func:`operators.risk.checks.max_feasible_qty` (the same midpoints and the same decisions, so the same answer), but each
step evaluates only the scenarios that can still matter. For ``q`` in the current bracket ``[lo, hi]`` each
``v_i(q)`` lies between its values at the ends (float evaluation is monotone in ``q``); a scenario whose largest
value is below the ``k``-th smallest of all smallest values is below the quantile for every ``q`` in the bracket
(it counts, and it is in the CVaR tail), and one whose smallest value is above the ``(k+1)``-th largest bound never
reaches it. As the bracket halves, the candidates left fall from ``T`` to a handful. Once the candidates keep one
order over the whole bracket the quantile and the tail mean are linear in ``q`` there and the boundary is solved in
closed form, accepted only when an evaluation confirms it fits and one ``1e-9`` of the range above it does not (the
bisection's own resolution); otherwise halving goes on. Pure; numbers in quote currency.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, s = rng.normal(0, 100.0, 500), rng.normal(0, 30.0, 500)
>>> lines = ScenarioLines(a, s, 0.99)
>>> from operators.risk.historical import historical_var_cvar
>>> lines.var_cvar(2.5) == historical_var_cvar(a + 2.5 * s, 0.99)
True
>>> loss = lambda q: -lines.var_cvar(q)[0]
>>> q = lines.largest("var", 0.0, 1.0, 600.0, 0.0, 50.0)
>>> loss(q) <= 600.0 < loss(q + 1e-6)
True
"""

from __future__ import annotations

import math

import numpy as np

from operators.risk.historical import check_alpha

__all__ = ["ScenarioLines", "quantile_ranks", "var_cvar"]

#: candidates at or below this count are evaluated with Python floats (cheaper than NumPy calls on tiny arrays)
_SMALL = 24
#: candidates at or below this count are checked for one fixed order over the bracket (closed-form boundary)
_PIECE = 12


def quantile_ranks(n: int, alpha: float) -> tuple[int, int, float]:
    """``(k, k1, gamma)`` of NumPy's linear quantile at ``1 - alpha`` of ``n`` values: the order statistics
    interpolated (0-based) and the weight of the upper one."""
    if n < 1:
        raise ValueError("need at least one scenario")
    h = (n - 1) * (1.0 - check_alpha(alpha))
    if h >= n - 1:
        return n - 1, n - 1, h - math.floor(h)
    k = math.floor(h)
    return k, k + 1, h - k


def _lerp(lo: float, hi: float, g: float) -> float:
    d = hi - lo
    return hi - d * (1 - g) if g >= 0.5 else lo + d * g


def var_cvar(v: np.ndarray, alpha: float) -> tuple[float, float]:
    """Historical ``(VaR, CVaR)``, return sign, of the finite float64 vector ``v``; the same numbers as
    :func:`~operators.risk.historical.historical_var_cvar` from one partial sort."""
    k, k1, g = quantile_ranks(v.size, alpha)
    part = np.partition(v, (k, k1) if k1 != k else k)
    q = _lerp(float(part[k]), float(part[k1]), g)
    tail = v[v < q]
    if tail.size == 0:
        return q, q
    return q, math.fsum(tail.tolist()) / tail.size


class ScenarioLines:
    """The scenario P&L lines ``a_i + q s_i`` of one order (see the module doc) at confidence ``alpha``."""

    __slots__ = ("a", "s", "alpha", "k", "k1", "g", "_al", "_sl", "_brackets", "_evals")

    def __init__(self, a: np.ndarray, s: np.ndarray, alpha: float) -> None:
        self.a = np.ascontiguousarray(a, dtype=np.float64)
        self.s = np.ascontiguousarray(s, dtype=np.float64)
        if self.a.shape != self.s.shape or self.a.ndim != 1:
            raise ValueError("a and s must be 1-d and of one length")
        self.alpha = alpha
        self.k, self.k1, self.g = quantile_ranks(self.a.size, alpha)
        self._al: list[float] | None = None  # Python copies, made on first use
        self._sl: list[float] | None = None
        # searches of several limits on the same lines share their first brackets and evaluations
        self._brackets: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
        self._evals: dict[float, tuple[float, float]] = {}

    def var_cvar(self, q: float) -> tuple[float, float]:
        """``(VaR, CVaR)`` of the book after ``q`` more, return sign (quote currency)."""
        return var_cvar(self.a + q * self.s, self.alpha)

    # -- the search ----------------------------------------------------------------------------------------------
    def largest(
        self, kind: str, off: float, scale: float, bound: float, lo: float, hi: float, iterations: int = 60
    ) -> float:
        """The bisection of :func:`~operators.risk.checks.max_feasible_qty` for the loss ``(X(q) - off) / scale``
        with ``X`` the VaR (``kind="var"``) or CVaR (``"cvar"``) as a positive loss, on ``[lo, hi]`` where ``lo``
        fits ``bound`` and ``hi`` does not; returns the last fitting point (``lo`` when nothing larger fits)."""
        if kind not in ("var", "cvar"):
            raise ValueError(f"kind must be 'var' or 'cvar', got {kind!r}")
        cvar = kind == "cvar"
        q_lo0, q_hi0 = lo, hi
        cand = np.arange(self.a.size)
        below = np.zeros(0, dtype=np.intp)
        tried = _PIECE + 1
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            key = (lo, hi)
            pruned = self._brackets.get(key)
            if pruned is None:
                pruned = self._brackets[key] = self._prune(cand, below, lo, hi)
            cand, below = pruned
            if cand.size <= _PIECE and cand.size < tried:
                q = self._piece(cand, below, lo, hi, cvar, off, scale, bound, 1e-9 * (q_hi0 - q_lo0))
                if q is not None:
                    return q
                tried = cand.size + 1 if cand.size <= 4 else cand.size  # retry once fewer candidates are left
            ev = self._evals.get(mid)
            if ev is None:
                ev = self._evals[mid] = self._eval(cand, below, mid)
            x = ev[1 if cvar else 0]
            if (x - off) / scale <= bound:
                lo = mid
            else:
                hi = mid
        return lo

    def _prune(self, cand: np.ndarray, below: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Candidates that can be the quantile's order statistics somewhere in ``[lo, hi]``; scenarios that are
        below them everywhere there join ``below``."""
        nb = below.size
        kb, kb1 = self.k - nb, self.k1 - nb
        a, s = self.a[cand], self.s[cand]
        v0, v1 = a + lo * s, a + hi * s
        small, large = np.minimum(v0, v1), np.maximum(v0, v1)
        lower = np.partition(small, kb)[kb]  # <= the kb-th value anywhere in the bracket
        upper = np.partition(large, kb1)[kb1]  # >= the kb1-th value anywhere in the bracket
        under = large < lower
        keep = ~under & ~(small > upper)
        if under.any():
            below = np.concatenate((below, cand[under]))
        return cand[keep], below

    def _eval(self, cand: np.ndarray, below: np.ndarray, q: float) -> tuple[float, float]:
        """(VaR, CVaR) as positive losses at ``q`` from the candidates and the scenarios below them; the same
        floats as a full evaluation (each ``a_i + q s_i`` is computed the same way; the order statistics and the
        tail are the same sets)."""
        nb = below.size
        kb, kb1 = self.k - nb, self.k1 - nb
        if cand.size <= _SMALL:
            if self._al is None:
                self._al, self._sl = self.a.tolist(), self.s.tolist()
            al, sl = self._al, self._sl
            vals = [al[i] + q * sl[i] for i in cand.tolist()]  # type: ignore[index]
            srt = sorted(vals)
            qv = _lerp(srt[kb], srt[kb1], self.g)
            tail = [v for v in vals if v < qv]
            if nb:
                tail += [al[i] + q * sl[i] for i in below.tolist()]  # type: ignore[index]
        else:
            vc = self.a[cand] + q * self.s[cand]
            part = np.partition(vc, (kb, kb1) if kb1 != kb else kb)
            qv = _lerp(float(part[kb]), float(part[kb1]), self.g)
            tail = vc[vc < qv].tolist()
            if nb:
                tail += (self.a[below] + q * self.s[below]).tolist()
        cv = math.fsum(tail) / len(tail) if tail else qv
        return -qv, -cv

    def _piece(
        self,
        cand: np.ndarray,
        below: np.ndarray,
        lo: float,
        hi: float,
        cvar: bool,
        off: float,
        scale: float,
        bound: float,
        tol: float,
    ) -> float | None:
        """The boundary in closed form when the candidates keep one strict order over ``[lo, hi]`` (then the
        quantile and the tail mean are linear there), confirmed by evaluation; None otherwise."""
        if self._al is None:
            self._al, self._sl = self.a.tolist(), self.s.tolist()
        al, sl = self._al, self._sl
        lines = sorted((al[i] + lo * sl[i], al[i] + hi * sl[i], al[i], sl[i]) for i in cand.tolist())  # type: ignore[index]
        for p, n in zip(lines, lines[1:]):
            if not (p[0] < n[0] and p[1] < n[1]):
                return None  # two candidates meet or cross inside the bracket
        nb = below.size
        kb, kb1, g = self.k - nb, self.k1 - nb, self.g
        target = -(bound * scale + off)  # the return-sign value of X at the boundary
        if cvar:
            n_tail = kb + 1 if (g > 0.0 and kb1 != kb) else kb
            ta = [ln[2] for ln in lines[:n_tail]]
            ts = [ln[3] for ln in lines[:n_tail]]
            if nb:
                bl = below.tolist()
                ta += [al[i] for i in bl]  # type: ignore[index]
                ts += [sl[i] for i in bl]  # type: ignore[index]
            sa, ss, n = math.fsum(ta), math.fsum(ts), len(ta)
            if n == 0 or not ss < 0.0:
                return None
            q = (target * n - sa) / ss
        else:
            la, lb = lines[kb], lines[kb1]
            alpha0 = (1.0 - g) * la[2] + g * lb[2]
            beta = (1.0 - g) * la[3] + g * lb[3]
            if not beta < 0.0:
                return None
            q = (target - alpha0) / beta
        q = min(max(q, lo), hi)
        i = 1 if cvar else 0

        def fits(x: float) -> bool:
            return (self._eval(cand, below, x)[i] - off) / scale <= bound

        for _ in range(8):  # settle float rounding at the root: step down until it fits
            if fits(q):
                break
            q = max(lo, q - max(abs(q), 1.0) * 4e-16 - tol * 1e-3)
        else:
            return None
        if q < hi and fits(min(hi, q + tol)):
            return None  # not the boundary (rounding made the piece look linear): keep halving
        return q
