"""Outgoing webhooks: HMAC-SHA256 signing and its verification helper, retries with exponential backoff and jitter,
a circuit breaker per destination, delivery metrics (see ``docs/alerts.md``).

Signature (header names are :data:`TIMESTAMP_HEADER`, :data:`SIGNATURE_HEADER`, :data:`ALERT_ID_HEADER`)::

    X-Levibot-Timestamp: <unix seconds, integer>
    X-Levibot-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>
    X-Levibot-Alert-Id:  <Alert.id>      (at-least-once delivery: receivers dedupe by it)

A receiver checks it with :func:`verify_signature` (constant-time compare, replay window ``tolerance_s``, 300 s by
default). Several ``v1=`` values separated by commas are accepted, so a key can be rotated without downtime.

>>> body = b'{"text":"hi"}'
>>> h = signature_headers(body, b"k3y", timestamp=1_700_000_000)
>>> h["X-Levibot-Signature"][:3]
'v1='
>>> verify_signature(body, h, b"k3y", now=1_700_000_100)
>>> verify_signature(body + b" ", h, b"k3y", now=1_700_000_100)
Traceback (most recent call last):
...
connectors.webhooks.SignatureError: bad_signature: no v1 signature matches
>>> verify_signature(body, h, b"k3y", now=1_700_000_301)
Traceback (most recent call last):
...
connectors.webhooks.SignatureError: stale: timestamp 1700000000 is 301 s away from now (tolerance 300 s)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    "ALERT_ID_HEADER",
    "SignatureError",
    "sign",
    "signature_headers",
    "verify_signature",
    "RetryPolicy",
    "BreakerPolicy",
    "CircuitBreaker",
    "DeliveryResult",
    "WebhookSender",
    "METRICS",
]

TIMESTAMP_HEADER = "X-Levibot-Timestamp"
SIGNATURE_HEADER = "X-Levibot-Signature"
ALERT_ID_HEADER = "X-Levibot-Alert-Id"
#: Default replay window of :func:`verify_signature`, seconds.
DEFAULT_TOLERANCE_S = 300


# ---------------------------------------------------------------------------------------------------------------
# Signing and verification


class SignatureError(ValueError):
    """A request that fails verification; ``reason`` is ``missing``, ``malformed``, ``stale`` or ``bad_signature``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def sign(body: bytes, key: bytes, timestamp: int) -> str:
    """``v1=<hex>``: HMAC-SHA256 with ``key`` over ``b"<timestamp>." + body`` (``timestamp`` Unix seconds)."""
    mac = hmac.new(key, str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signature_headers(
    body: bytes, key: bytes, *, timestamp: int | None = None, alert_id: str | None = None
) -> dict[str, str]:
    """Headers for one signed request; ``timestamp`` Unix seconds (default: now, the one wall-clock read here)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(body, key, ts)}
    if alert_id is not None:
        headers[ALERT_ID_HEADER] = alert_id
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is None:  # plain dicts are case-sensitive; HTTP headers are not
        low = name.lower()
        for k, val in headers.items():
            if k.lower() == low:
                return val
    return v


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    key: bytes | list[bytes],
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a received request: the timestamp is within ``tolerance_s`` seconds of ``now`` (Unix seconds, default
    the wall clock) and one ``v1=`` signature matches one of the keys (constant-time). Returns None or raises
    :class:`SignatureError`. ``body`` must be the raw bytes received, before any JSON parsing."""
    ts_raw = _header(headers, TIMESTAMP_HEADER)
    sig_raw = _header(headers, SIGNATURE_HEADER)
    if not ts_raw or not sig_raw:
        raise SignatureError("missing", f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise SignatureError("malformed", f"{TIMESTAMP_HEADER} {ts_raw!r} is not an integer") from None
    now_s = time.time() if now is None else now
    if abs(now_s - ts) > tolerance_s:
        raise SignatureError(
            "stale", f"timestamp {ts} is {abs(now_s - ts):.0f} s away from now (tolerance {tolerance_s:.0f} s)"
        )
    keys = key if isinstance(key, list) else [key]
    given = [p.strip() for p in sig_raw.split(",") if p.strip().startswith("v1=")]
    if not given:
        raise SignatureError("malformed", "no v1= signature")
    ok = False
    for k in keys:
        want = sign(body, k, ts).encode()
        for g in given:
            ok |= hmac.compare_digest(want, g.encode())
    if not ok:
        raise SignatureError("bad_signature", "no v1 signature matches")


# ---------------------------------------------------------------------------------------------------------------
# Retry policy and circuit breaker


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` HTTP attempts per alert and destination (the retry budget); the wait after failed attempt
    ``n`` (1-based) is ``d = min(max_delay_s, base_delay_s * 2**(n-1))`` seconds scaled by a uniform random factor in
    ``[1 - jitter, 1]`` ("equal jitter" for jitter = 0.5). A 429 answer's ``Retry-After`` (seconds) is honoured up to
    ``max_delay_s``."""

    max_attempts: int = 10
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("retry: need max_attempts >= 1 and 0 <= base_delay_s <= max_delay_s (seconds)")
        if not 0 <= self.jitter <= 1:
            raise ValueError("retry: jitter must be a fraction in [0, 1]")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based).

        >>> p = RetryPolicy(base_delay_s=1, max_delay_s=8, jitter=0)
        >>> [p.delay(n) for n in (1, 2, 3, 4, 5)]
        [1.0, 2.0, 4.0, 8.0, 8.0]
        """
        d = min(self.max_delay_s, self.base_delay_s * 2.0 ** max(0, attempt - 1))
        r = (rng or random).random()
        return float(d * (1.0 - self.jitter * r))


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """The breaker opens after ``failure_threshold`` consecutive failures, stays open ``reset_timeout_s`` seconds,
    then lets one probe through (half-open): success closes it, failure opens it again for another period."""

    failure_threshold: int = 5
    reset_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.reset_timeout_s <= 0:
            raise ValueError("breaker: failure_threshold >= 1 and reset_timeout_s > 0 seconds")


BreakerState = Literal["closed", "open", "half_open"]
_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


@dataclass
class CircuitBreaker:
    """Closed / open / half-open breaker for one destination; ``clock`` monotonic seconds (injected for tests).

    >>> t = [0.0]
    >>> b = CircuitBreaker(BreakerPolicy(failure_threshold=2, reset_timeout_s=5), clock=lambda: t[0])
    >>> b.record_failure(); b.record_failure(); b.state, b.try_acquire()
    ('open', False)
    >>> t[0] = 5.0; b.try_acquire(), b.state, b.try_acquire()
    (True, 'half_open', False)
    >>> b.record_success(); b.state
    'closed'
    """

    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[str], None] | None = None
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    _probe_out: bool = False

    def _set(self, state: BreakerState) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(state)

    def wait_s(self) -> float:
        """Seconds until an attempt may be made (0 when closed or ready to probe)."""
        if self.state == "open":
            return max(0.0, self.opened_at + self.policy.reset_timeout_s - self.clock())
        return 0.0

    def try_acquire(self) -> bool:
        """Permission for one request now: always when closed; one probe at a time when (due to be) half-open."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.wait_s() > 0:
                return False
            self._set("half_open")
            self._probe_out = False
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def record_success(self) -> None:
        """A request succeeded: close the breaker."""
        self.failures = 0
        self._probe_out = False
        self._set("closed")

    def record_failure(self) -> None:
        """A request failed (timeout, connection error, 5xx, 429): count it, open when over the threshold."""
        self.failures += 1
        self._probe_out = False
        if self.state == "half_open" or self.failures >= self.policy.failure_threshold:
            self.opened_at = self.clock()
            self._set("open")


# ---------------------------------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class _Metrics:
    received: Counter
    suppressed: Counter
    delivered: Counter
    attempts: Counter
    dead_lettered: Counter
    request_seconds: Histogram
    delivery_seconds: Histogram
    breaker_state: Gauge
    in_flight: Gauge


METRICS = _Metrics(
    received=Counter("levibot_alerts_received_total", "Alerts read from the alerts topic.", ["severity"]),
    suppressed=Counter(
        "levibot_alerts_suppressed_total", "Alerts not sent: duplicate id, rate-limited, or no route.", ["reason"]
    ),
    delivered=Counter("levibot_alerts_delivered_total", "Alerts accepted (2xx) by a destination.", ["destination"]),
    attempts=Counter(
        "levibot_alerts_delivery_attempts_total",
        "HTTP attempts by outcome (ok, http_4xx, http_5xx, http_429, timeout, connection_error).",
        ["destination", "outcome"],
    ),
    dead_lettered=Counter(
        "levibot_alerts_dead_lettered_total", "Alerts sent to dlq after the retry budget (or a 4xx).", ["destination"]
    ),
    request_seconds=Histogram(
        "levibot_alerts_request_seconds",
        "Duration of one HTTP attempt, seconds.",
        ["destination"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ),
    delivery_seconds=Histogram(
        "levibot_alerts_delivery_seconds",
        "From the first attempt to acceptance, including retries and breaker waits, seconds.",
        ["destination"],
        buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
    ),
    breaker_state=Gauge(
        "levibot_alerts_breaker_state",
        "Circuit breaker per destination: 0 closed, 1 half-open, 2 open.",
        ["destination"],
    ),
    in_flight=Gauge("levibot_alerts_in_flight", "Alerts being delivered or waiting on a destination.", ["destination"]),
)


# ---------------------------------------------------------------------------------------------------------------
# Sender


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """``ok`` when a 2xx came back; ``attempts`` HTTP attempts made; ``status`` the last HTTP status (0 = none);
    ``error`` the last failure in words; ``seconds`` from the first attempt to the end."""

    ok: bool
    attempts: int
    status: int = 0
    error: str = ""
    seconds: float = 0.0


class WebhookSender:
    """Delivers signed JSON bodies to one destination with retries, backoff, a circuit breaker and a bound on
    concurrent requests (``max_in_flight``). Uses an ``aiohttp.ClientSession`` owned by the caller.

    Alerts wait while the breaker is open; waiting does not use the retry budget (only HTTP attempts do), so a
    receiver that is down for a while gets everything once it is back, as long as no alert's budget runs out.
    A 4xx answer other than 408/429 is final (the receiver understood and refused: retrying will not help).
    """

    def __init__(
        self,
        name: str,
        url: str,
        key: bytes,
        *,
        session: Any,
        timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        max_in_flight: int = 8,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._key = key
        self._session = session
        self._timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        gauge = METRICS.breaker_state.labels(name)
        gauge.set(0)
        self.breaker = CircuitBreaker(breaker or BreakerPolicy(), on_change=lambda s: gauge.set(_STATE_VALUE[s]))
        self._sem = asyncio.Semaphore(max_in_flight)
        self._rng = rng or random.Random()

    async def _attempt(self, body: bytes, alert_id: str) -> tuple[str, int, float | None]:
        """One HTTP POST: ``(outcome, status, retry_after_s)``."""
        import aiohttp

        headers = {"Content-Type": "application/json", **signature_headers(body, self._key, alert_id=alert_id)}
        t0 = time.perf_counter()
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout_s)
            ) as resp:
                await resp.read()
                status = resp.status
                retry_after = None
                if status == 429:
                    try:
                        retry_after = float(resp.headers.get("Retry-After", ""))
                    except ValueError:
                        retry_after = None
        except TimeoutError:
            return "timeout", 0, None
        except aiohttp.ClientError as exc:
            return f"connection_error:{type(exc).__name__}", 0, None
        finally:
            METRICS.request_seconds.labels(self.name).observe(time.perf_counter() - t0)
        if 200 <= status < 300:
            return "ok", status, None
        if status == 429:
            return "http_429", status, retry_after
        if status == 408 or status >= 500:
            return "http_5xx" if status >= 500 else "timeout", status, None
        return "http_4xx", status, None

    async def deliver(self, body: bytes, alert_id: str) -> DeliveryResult:
        """Deliver one body (signed afresh for every attempt) until accepted, refused (4xx) or out of budget."""
        METRICS.in_flight.labels(self.name).inc()
        try:
            async with self._sem:
                return await self._deliver(body, alert_id)
        finally:
            METRICS.in_flight.labels(self.name).dec()

    async def _deliver(self, body: bytes, alert_id: str) -> DeliveryResult:
        attempts, status, error = 0, 0, ""
        t0 = time.perf_counter()
        while True:
            wait = self.breaker.wait_s()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
                continue
            if not self.breaker.try_acquire():  # a half-open probe is out: wait for its verdict
                await asyncio.sleep(0.05)
                continue
            attempts += 1
            outcome, status, retry_after = await self._attempt(body, alert_id)
            METRICS.attempts.labels(self.name, outcome.split(":")[0]).inc()
            if outcome == "ok":
                self.breaker.record_success()
                seconds = time.perf_counter() - t0
                METRICS.delivered.labels(self.name).inc()
                METRICS.delivery_seconds.labels(self.name).observe(seconds)
                return DeliveryResult(True, attempts, status, "", seconds)
            if outcome == "http_4xx":
                self.breaker.record_success()  # the receiver is up; this request is the problem
                error = f"HTTP {status} (not retried)"
                break
            self.breaker.record_failure()
            error = f"{outcome}" + (f" HTTP {status}" if status else "")
            if attempts >= self.retry.max_attempts:
                break
            delay = self.retry.delay(attempts, self._rng)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.retry.max_delay_s))
            await asyncio.sleep(delay)
        METRICS.dead_lettered.labels(self.name).inc()
        return DeliveryResult(False, attempts, status, error, time.perf_counter() - t0)
