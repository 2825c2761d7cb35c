"""Order-rate limit: a token bucket in event time.

The bucket holds at most ``burst`` tokens (orders) and refills at ``rate_per_s`` tokens per second of event time
(``now_ns`` given by the caller; time going backwards refills nothing). It starts full. Every emitted order
takes one token; with less than one token left the order is refused.

>>> b = TokenBucket(rate_per_s=1.0, burst=2)
>>> [b.try_take(0), b.try_take(0), b.try_take(0), b.try_take(500_000_000), b.try_take(1_000_000_000)]
[True, True, False, False, True]
"""

from __future__ import annotations

from typing import Any

__all__ = ["TokenBucket"]


class TokenBucket:
    """Token bucket; ``rate_per_s`` tokens/s (>= 0), ``burst`` tokens (>= 1); picklable."""

    __slots__ = ("rate_per_s", "burst", "tokens", "last_ns")

    def __init__(self, rate_per_s: float = 1.0, burst: float = 10.0) -> None:
        if not rate_per_s >= 0.0 or not burst >= 1.0:
            raise ValueError(f"need rate_per_s >= 0 and burst >= 1, got {rate_per_s!r}, {burst!r}")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last_ns: int | None = None

    def _refill(self, now_ns: int) -> None:
        last = self.last_ns
        if last is None:
            self.last_ns = int(now_ns)
        elif now_ns > last:
            self.tokens = min(self.burst, self.tokens + (now_ns - last) * 1e-9 * self.rate_per_s)
            self.last_ns = int(now_ns)

    def available(self, now_ns: int) -> float:
        """Tokens available at ``now_ns`` (refills first)."""
        self._refill(now_ns)
        return self.tokens

    def try_take(self, now_ns: int, n: float = 1.0) -> bool:
        """Take ``n`` tokens if available at ``now_ns``; True if taken."""
        last = self.last_ns  # _refill, inline
        if last is None:
            self.last_ns = int(now_ns)
        elif now_ns > last:
            self.tokens = min(self.burst, self.tokens + (now_ns - last) * 1e-9 * self.rate_per_s)
            self.last_ns = int(now_ns)
        if self.tokens + 1e-12 >= n:
            self.tokens = max(0.0, self.tokens - n)
            return True
        return False

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.rate_per_s, self.burst, self.tokens, self.last_ns)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.rate_per_s, self.burst, self.tokens, self.last_ns = s
