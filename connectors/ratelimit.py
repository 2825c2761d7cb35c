"""Per-key request quotas on the ``limits`` library: in process memory, or in Redis so that every API replica
shares (and a restarted replica keeps) the counts.

``storage`` is a ``limits`` storage URI: ``memory://`` (one process), ``redis://host:port/db`` (shared). The
strategy is the sliding-window counter: smooth at window edges, two counters per key and window.

Process memory is used only when no Redis URI is configured. With Redis configured, a Redis that does not answer
is :class:`LimiterUnavailable` (the API answers 503): counting in memory instead would multiply every quota by the
number of replicas and forget it at each restart, without anyone noticing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

__all__ = ["Verdict", "RateLimiter", "LimiterUnavailable"]


class LimiterUnavailable(RuntimeError):
    """The shared counter store (Redis) did not answer."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """``allowed``; ``remaining`` requests in the window; ``retry_after_s`` (whole seconds, >= 1) when refused;
    ``limit`` the quota's request count."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int = 0


@lru_cache(maxsize=256)
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


class RateLimiter:
    """``hit(identity, rate)`` counts one request of ``identity`` against ``rate`` (``"600/minute"``)."""

    def __init__(self, storage: str = "memory://", *, namespace: str = "levibot-api", timeout_s: float = 2.0) -> None:
        self.storage_uri = storage
        self.shared = storage.startswith("redis")
        if self.shared:
            self._storage = storage_from_string(
                storage,
                key_prefix=namespace,
                wrap_exceptions=True,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
            )
        else:
            self._storage = storage_from_string(storage)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    def hit(self, identity: str, rate: str) -> Verdict:
        """Count one request; :class:`LimiterUnavailable` when the shared store does not answer."""
        from limits.errors import StorageError

        try:
            return self._hit(identity, rate)
        except StorageError as exc:
            raise LimiterUnavailable(f"rate-limit storage unavailable: {type(exc.storage_error).__name__}") from None

    def _hit(self, identity: str, rate: str) -> Verdict:
        item = _item(rate)
        ok = self._limiter.hit(item, identity)
        stats = self._limiter.get_window_stats(item, identity)
        if ok:
            return Verdict(True, item.amount, max(0, stats.remaining))
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(False, item.amount, 0, min(wait, item.get_expiry()))

    def check(self) -> bool:
        """True when the storage answers."""
        try:
            return bool(self._storage.check())
        except Exception:  # a wrapped or raw connection error
            return False

    def reset(self) -> None:
        self._storage.reset()
