"""The individual pre-trade checks, each a small pure function returning a :class:`Verdict`.

A verdict says whether a check passes and, for quantity-dependent checks, the largest quantity that does
(``max_qty``, base units). Reason codes are short snake-case strings that go into ``RiskDecision.reasons``.

Quantity-dependent limits are handled by :func:`max_feasible_qty`: given a loss-like function ``L(q)`` of the
order quantity that is **convex** in ``q`` (exposures, |position|, Gaussian VaR and historical CVaR of the
portfolio all are) and a bound, it returns the largest ``q`` in ``[q0, q_hi]`` with
``L(q) <= max(bound, L(q0))`` — an order may always leave a limit no worse than it found it ("do not worsen a
breach"), so risk-reducing orders pass even when the book is already over a limit.

>>> check_stale(price_ts_ns=0, now_ns=61_000_000_000, max_age_s=60.0)
Verdict(ok=False, reasons=('stale_price',), max_qty=None)
>>> max_feasible_qty(lambda q: 2.0 * q, q0=0.0, q_hi=10.0, bound=5.0)    # 2 q <= 5
2.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schemas.time import NS_PER_S as _NS

from .kill_switch import KillState

__all__ = [
    "Verdict",
    "PASS",
    "check_kill_switch",
    "check_stale",
    "check_confidence",
    "max_feasible_qty",
    "check_limit",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of one check: ``ok``, ``reasons`` (codes, empty when ok) and ``max_qty`` (base units; ``None`` =
    the check does not bound the quantity)."""

    ok: bool
    reasons: tuple[str, ...] = ()
    max_qty: float | None = None


PASS = Verdict(True)


def check_kill_switch(state: KillState, increases_risk: bool) -> Verdict:
    """``halted`` rejects everything; ``reduce_only`` rejects orders that increase |position|.

    >>> check_kill_switch("reduce_only", increases_risk=False).ok, check_kill_switch("halted", False).reasons
    (True, ('kill_switch_halted',))
    """
    if state == "halted":
        return Verdict(False, ("kill_switch_halted",))
    if state == "reduce_only" and increases_risk:
        return Verdict(False, ("kill_switch_reduce_only",))
    return PASS


def check_stale(price_ts_ns: int | None, now_ns: int, max_age_s: float) -> Verdict:
    """Fails when the last price is older than ``max_age_s`` seconds of event time at ``now_ns`` (or missing)."""
    if price_ts_ns is None or now_ns - price_ts_ns > max_age_s * _NS:
        return Verdict(False, ("stale_price",))
    return PASS


def check_confidence(confidence: float | None, min_confidence: float) -> Verdict:
    """Fails when ``confidence`` (fraction) is below ``min_confidence``; ``None`` (no confidence) passes.

    >>> check_confidence(0.5, 0.55).reasons, check_confidence(None, 0.55).ok
    (('low_confidence',), True)
    """
    if confidence is not None and not confidence >= min_confidence:
        return Verdict(False, ("low_confidence",))
    return PASS


def max_feasible_qty(
    loss: Callable[[float], float], q0: float, q_hi: float, bound: float, iterations: int = 60
) -> float:
    """Largest ``q`` in ``[q0, q_hi]`` with ``loss(q) <= max(bound, loss(q0))`` by bisection (``loss`` convex in
    ``q``); ``q0`` when no larger ``q`` fits (increments below 1e-9 of ``q_hi - q0`` count as none). Quantities in
    base units."""
    b = max(bound, loss(q0))
    if loss(q_hi) <= b:
        return q_hi
    lo, hi = q0, q_hi  # loss(lo) <= b < loss(hi)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if loss(mid) <= b:
            lo = mid
        else:
            hi = mid
    # an increment below 1e-9 of the range is float noise of loss(q) == b at q0 (e.g. an order that would worsen
    # a breach): no increase
    return q0 if lo - q0 <= 1e-9 * (q_hi - q0) else lo


def check_limit(reason: str, loss: Callable[[float], float], q0: float, q_hi: float, bound: float) -> Verdict:
    """A quantity-dependent limit as a verdict: ok when ``q_hi`` fits, else ``max_qty`` from
    :func:`max_feasible_qty` and ``reason``.

    >>> check_limit("leverage_limit", lambda q: q / 100.0, 0.0, 300.0, 2.0)
    Verdict(ok=False, reasons=('leverage_limit',), max_qty=200.0)
    """
    q = max_feasible_qty(loss, q0, q_hi, bound)
    if q >= q_hi:
        return PASS
    return Verdict(False, (reason,), q)
