"""Price-geometry checks of a signal draft: the stop and the targets must lie on the right side of the entries.

* long: ``stop < min(entries)``; every target ``> max(entries)``;
* short: ``stop > max(entries)``; every target ``< min(entries)``;
* a market entry without a written price has no entries to compare with: the stop must then lie on the far side of
  every target (long: ``stop < min(targets)``).

>>> check_geometry("long", [100.0, 110.0], [120.0, 130.0], 95.0) is None
True
>>> check_geometry("long", [100.0], [120.0], 101.0)[0], check_geometry("short", [100.0], [90.0, 101.0], 105.0)[0]
('stop_wrong_side', 'targets_wrong_side')
"""

from __future__ import annotations

__all__ = ["check_geometry", "MAX_ENTRIES", "MAX_TARGETS"]

#: Schema limits (``schemas.events.Signal``).
MAX_ENTRIES = 10
MAX_TARGETS = 20


def check_geometry(side: str, entries: list[float], targets: list[float], stop: float | None) -> tuple[str, str] | None:
    """``(reason_code, human_message)`` if the geometry is wrong, else None (``stop`` None is not checked)."""
    long = side == "long"
    if entries:
        lo, hi = min(entries), max(entries)
        if stop is not None and (stop >= lo if long else stop <= hi):
            where = "below the lowest" if long else "above the highest"
            return "stop_wrong_side", f"{side} stop {stop:g} must be {where} entry ({lo if long else hi:g})"
        bad = [t for t in targets if (t <= hi if long else t >= lo)]
        if bad:
            where = "above the highest" if long else "below the lowest"
            return "targets_wrong_side", f"{side} targets {bad} must be {where} entry ({hi if long else lo:g})"
    elif stop is not None and targets and ((long and stop >= min(targets)) or (not long and stop <= max(targets))):
        return "stop_wrong_side", f"{side} stop {stop:g} is on the targets' side"
    return None
