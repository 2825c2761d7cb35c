"""Webhook signing, verification, backoff, circuit breaker and the sender against a real HTTP receiver on
127.0.0.1 (:class:`tests.support.http.Receiver`)."""

from __future__ import annotations

import asyncio
import random

import pytest

from connectors.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BreakerPolicy,
    CircuitBreaker,
    RetryPolicy,
    SignatureError,
    WebhookSender,
    sign,
    signature_headers,
    verify_signature,
)
from tests.support.http import Receiver

KEY = b"whsec_test_key_1"


# ---------------------------------------------------------------------------------------------------------------


def test_sign_and_verify_roundtrip_and_failures():
    body = b'{"id":"a1","text":"hello"}'
    h = signature_headers(body, KEY, timestamp=1_700_000_000, alert_id="a1")
    assert h[SIGNATURE_HEADER] == sign(body, KEY, 1_700_000_000)
    assert h[SIGNATURE_HEADER].startswith("v1=") and len(h[SIGNATURE_HEADER]) == 3 + 64
    verify_signature(body, h, KEY, now=1_700_000_299)
    # lower-case header names (as some frameworks give them) work too
    verify_signature(body, {k.lower(): v for k, v in h.items()}, KEY, now=1_700_000_000)
    cases = [
        (body + b"x", h, KEY, 1_700_000_000, "bad_signature"),
        (body, h, b"other-key", 1_700_000_000, "bad_signature"),
        (body, {**h, TIMESTAMP_HEADER: "1700000001"}, KEY, 1_700_000_000, "bad_signature"),  # ts is signed
        (body, h, KEY, 1_700_000_301, "stale"),
        (body, h, KEY, 1_699_999_699, "stale"),  # from the future beyond the window
        (body, {SIGNATURE_HEADER: h[SIGNATURE_HEADER]}, KEY, 1_700_000_000, "missing"),
        (body, {**h, TIMESTAMP_HEADER: "soon"}, KEY, 1_700_000_000, "malformed"),
        (body, {**h, SIGNATURE_HEADER: "v0=abc"}, KEY, 1_700_000_000, "malformed"),
    ]
    for b, hh, k, now, reason in cases:
        with pytest.raises(SignatureError) as ei:
            verify_signature(b, hh, k, now=now)
        assert ei.value.reason == reason
    # key rotation: two signatures, either key verifies
    rotated = {**h, SIGNATURE_HEADER: sign(body, b"new", 1_700_000_000) + "," + h[SIGNATURE_HEADER]}
    verify_signature(body, rotated, KEY, now=1_700_000_000)
    verify_signature(body, rotated, [b"new"], now=1_700_000_000)


def test_backoff_is_exponential_capped_and_jittered():
    p = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        ds = [p.delay(attempt, rng) for _ in range(200)]
        assert all(cap * 0.5 <= d <= cap for d in ds)
        assert max(ds) - min(ds) > cap * 0.3  # really jittered
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_breaker_states():
    t = [100.0]
    changes: list[str] = []
    b = CircuitBreaker(
        BreakerPolicy(failure_threshold=3, reset_timeout_s=10), clock=lambda: t[0], on_change=changes.append
    )
    for _ in range(2):
        assert b.try_acquire()
        b.record_failure()
    assert b.state == "closed"
    b.record_success()  # success resets the count
    for _ in range(3):
        b.record_failure()
    assert b.state == "open" and not b.try_acquire() and b.wait_s() == 10
    t[0] += 9.9
    assert not b.try_acquire()
    t[0] += 0.1
    assert b.try_acquire() and b.state == "half_open"
    assert not b.try_acquire()  # one probe at a time
    b.record_failure()  # probe failed: open again for a full period
    assert b.state == "open" and b.wait_s() == 10
    t[0] += 10
    assert b.try_acquire()
    b.record_success()
    assert b.state == "closed" and b.try_acquire() and b.try_acquire()
    assert changes == ["open", "half_open", "open", "half_open", "closed"]


async def _deliver_many(url: str, n: int, **kw) -> tuple[list, WebhookSender]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        s = WebhookSender("t", url, KEY, session=session, **kw)
        res = await asyncio.gather(*(s.deliver(b'{"n":%d}' % i, f"id-{i}") for i in range(n)))
        return res, s


def test_sender_retries_then_delivers_signed():
    rx = Receiver(fail_first=2, fail_status=503)
    try:
        res, s = asyncio.run(_deliver_many(rx.url(), 1, retry=RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)))
    finally:
        rx.stop()
    assert res[0].ok and res[0].attempts == 3 and s.breaker.state == "closed"
    assert rx.ids() == ["id-0"] * 3
    for _, headers, body in rx.requests:
        verify_signature(body, headers, KEY)


def test_sender_4xx_is_final_and_budget_is_bounded():
    rx = Receiver(fail_first=10, fail_status=400)
    try:
        res, _ = asyncio.run(_deliver_many(rx.url(), 1, retry=RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)))
    finally:
        rx.stop()
    assert (res[0].ok, res[0].attempts, res[0].status) == (False, 1, 400)
    # nobody listening: exactly max_attempts attempts, then a failure result (how long that takes is measured in
    # benchmarks/edges.py, webhook_give_up)
    res, _s = asyncio.run(
        _deliver_many(
            rx.url(),
            1,
            retry=RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02),
            breaker=BreakerPolicy(failure_threshold=10),
        )
    )
    assert (res[0].ok, res[0].attempts) == (False, 3) and "connection_error" in res[0].error


def test_sender_waits_through_outage_with_open_breaker():
    """Receiver down: the breaker opens, alerts wait without spending their budget, and all arrive once it is up."""
    rx = Receiver()
    port = rx.port
    rx.stop()

    async def scenario():
        import aiohttp

        async with aiohttp.ClientSession() as session:
            s = WebhookSender(
                "t",
                f"http://127.0.0.1:{port}/hook",
                KEY,
                session=session,
                max_in_flight=4,
                retry=RetryPolicy(max_attempts=6, base_delay_s=0.05, max_delay_s=0.2),
                breaker=BreakerPolicy(failure_threshold=3, reset_timeout_s=0.5),
            )
            task = asyncio.gather(*(s.deliver(b"{}", f"id-{i}") for i in range(20)))
            await asyncio.sleep(1.5)
            assert s.breaker.state in ("open", "half_open")
            rx.start()
            return await asyncio.wait_for(task, 20), s

    try:
        res, s = asyncio.run(scenario())
    finally:
        rx.stop()
    assert all(r.ok for r in res)
    assert sorted(set(rx.ids())) == sorted(f"id-{i}" for i in range(20)) and len(rx.ids()) == 20
    assert s.breaker.state == "closed"
