"""[Reference: operators/risk/kill_switch.py as of commit 8a01a14, verbatim; see __init__.py.] Drawdown kill switch: a small state machine driven by equity in event time.

States and transitions (``update`` applies every transition that holds, in order, so one call can go
``halted -> reduce_only -> normal``):

* ``normal`` → ``halted`` when drawdown ``1 - equity/peak`` > ``max_drawdown``, i.e. ``equity < (1 -
  max_drawdown) · peak`` (``halted_at_ns`` = now); with a non-positive peak, when equity <= 0.
* ``halted`` → ``reduce_only`` once ``now_ns - halted_at_ns >= cooldown_s · 1e9`` (event time).
* ``reduce_only`` → ``normal`` when drawdown <= ``resume_drawdown`` (**resume rule**: equity recovered to at least
  ``(1 - resume_drawdown) · peak``), or on :meth:`KillSwitch.reset` (manual; re-bases the peak to the current
  equity so the switch does not trip again at once).

``peak`` is the running maximum of equity (quote currency) over all updates; it is never lowered except by a
manual reset. In ``halted`` nothing may trade; in ``reduce_only`` only orders that shrink |position|.

>>> ks = KillSwitch(max_drawdown=0.2, cooldown_s=60, resume_drawdown=0.05)
>>> [ks.update(e, t * 1_000_000_000) for e, t in [(100, 0), (79, 10), (79, 69), (80, 70), (96, 80)]]
['normal', 'halted', 'halted', 'reduce_only', 'normal']
"""

from __future__ import annotations

from typing import Literal

from schemas.time import NS_PER_S as _NS

__all__ = ["KillState", "KillSwitch"]

KillState = Literal["normal", "halted", "reduce_only"]


class KillSwitch:
    """Drawdown kill switch; picklable. ``max_drawdown``, ``resume_drawdown`` fractions of peak equity;
    ``cooldown_s`` seconds of event time."""

    __slots__ = (
        "max_drawdown",
        "cooldown_s",
        "resume_drawdown",
        "state",
        "peak",
        "halted_at_ns",
        "drawdown",
        "transitions",
    )

    def __init__(self, max_drawdown: float = 0.2, cooldown_s: float = 3600.0, resume_drawdown: float = 0.1) -> None:
        if not 0.0 < max_drawdown <= 1.0 or not 0.0 <= resume_drawdown < max_drawdown or not cooldown_s >= 0.0:
            raise ValueError("need 0 < max_drawdown <= 1, 0 <= resume_drawdown < max_drawdown, cooldown_s >= 0")
        self.max_drawdown = float(max_drawdown)
        self.cooldown_s = float(cooldown_s)
        self.resume_drawdown = float(resume_drawdown)
        self.state: KillState = "normal"
        self.peak: float | None = None  # quote currency
        self.halted_at_ns: int | None = None
        self.drawdown = 0.0  # fraction of peak, last update
        self.transitions = 0  # count of state changes (for metrics)

    def _dd(self, equity: float) -> float:
        peak = self.peak
        if peak is None or peak <= 0.0:
            return 0.0 if equity > 0.0 else 1.0
        return min(max(0.0, 1.0 - equity / peak), 1.0)

    def _below(self, equity: float, dd: float) -> bool:
        """``equity < (1 - dd) · peak``, compared in money so that 98 000 against a 100 000 peak is exactly a 2 %
        drawdown (``1 - 98000/100000`` is 0.020000000000000018 in floats); ``equity <= 0`` if the peak is not > 0."""
        peak = self.peak if self.peak is not None and self.peak > 0.0 else 0.0
        if peak == 0.0:
            return equity <= 0.0
        return equity < (1.0 - dd) * peak

    def update(self, equity: float, now_ns: int) -> KillState:
        """Fold the current equity (quote currency) at event time ``now_ns``; the state after it."""
        if self.peak is None or equity > self.peak:
            self.peak = float(equity)
        dd = self.drawdown = self._dd(equity)
        while True:
            s = self.state
            if s == "normal" and self._below(equity, self.max_drawdown):
                self.state, self.halted_at_ns = "halted", int(now_ns)
            elif s == "halted" and now_ns - self.halted_at_ns >= self.cooldown_s * _NS:  # type: ignore[operator]
                self.state = "reduce_only"
            elif s == "reduce_only" and not self._below(equity, self.resume_drawdown):
                self.state, self.halted_at_ns = "normal", None
            else:
                return s
            self.transitions += 1

    def reset(self, equity: float, now_ns: int) -> None:
        """Manual resume: state ``normal``, peak re-based to ``equity`` (quote currency)."""
        if self.state != "normal":
            self.transitions += 1
        self.state, self.halted_at_ns, self.peak, self.drawdown = "normal", None, float(equity), 0.0

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, s: tuple) -> None:
        for k, v in zip(self.__slots__, s):
            setattr(self, k, v)
