"""Event-time helpers: every ``ts`` on the wire is an ``int`` of nanoseconds since the Unix epoch, UTC.

>>> from datetime import datetime, timezone
>>> ns = to_ns(datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc))
>>> ns
1704164645678901000
>>> iso(ns)
'2024-01-02T03:04:05.678901000Z'
>>> from_ns(ns) == datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
True
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["NS_PER_S", "NS_PER_US", "NS_PER_MS", "TS_MIN_NS", "TS_MAX_NS", "to_ns", "from_ns", "iso", "check_ts"]

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Smallest valid event time: 2000-01-01T00:00:00Z, ns (inclusive).
TS_MIN_NS = 946_684_800 * NS_PER_S
#: Upper bound of valid event times: 2100-01-01T00:00:00Z, ns (exclusive).
TS_MAX_NS = 4_102_444_800 * NS_PER_S


def to_ns(dt: datetime) -> int:
    """Nanoseconds since the epoch (UTC) of a timezone-aware datetime; naive datetimes raise ``ValueError``.

    Exact integer arithmetic (no float rounding); datetimes carry microseconds, so the result is a multiple of 1000.
    """
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"to_ns needs a timezone-aware datetime, got naive {dt!r}")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US


def from_ns(ns: int) -> datetime:
    """UTC datetime of ``ns`` nanoseconds since the epoch; sub-microsecond digits are truncated (toward -inf)."""
    us, _ = divmod(int(ns), NS_PER_US)
    return _EPOCH + timedelta(microseconds=us)


def iso(ns: int) -> str:
    """ISO-8601 UTC text of ``ns`` with all nine fractional digits, e.g. ``2024-01-02T03:04:05.678901234Z``."""
    s, frac = divmod(int(ns), NS_PER_S)
    base = (_EPOCH + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def check_ts(ns: int, name: str = "ts") -> int:
    """Return ``ns`` if it is an ``int`` in ``[TS_MIN_NS, TS_MAX_NS)`` (2000-01-01 to 2100-01-01 UTC), else raise ``ValueError``."""
    if type(ns) is not int or not TS_MIN_NS <= ns < TS_MAX_NS:
        raise ValueError(f"{name} must be int nanoseconds since the epoch in [2000-01-01, 2100-01-01) UTC, got {ns!r}")
    return ns
