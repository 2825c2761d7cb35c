"""Rate limits shared by API replicas through Redis (Debian's redis-server from ``scripts/services.sh up redis``):
two real ``levibot api`` processes count one key's quota together, a restarted replica still refuses a key that is
over it, and a Redis that does not answer is a 503, never a quota counted per process."""

from __future__ import annotations

import os
import secrets
import time

import psycopg
import pytest
import redis

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from connectors.ratelimit import LimiterUnavailable, RateLimiter
from operators.api.keys import make_token, parse_token
from tests.support.api import FAST, QUOTA_WINDOW_S, Replica, clear_of_window_edge
from tests.support.flowproc import free_port

pytestmark = [pytest.mark.postgres]


@pytest.mark.slow  # three API processes start (~10 s each on a loaded machine)
def test_two_replicas_share_one_quota_across_a_restart(pg_dsn, redis_url, tmp_path):
    migrate(pg_dsn)
    db = ApiDatabase(pg_dsn, max_size=1).open()
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, sec = parse_token(tok)
    db.create_key(
        key_id=kid,
        name="shared",
        secret_hash=FAST.hash(sec),
        scopes=["read"],
        tier="pro",
        accounts=["default"],
        rate="6/hour",
        created_by="pytest",
        expires_at=None,
    )
    db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_API_")}
    env.update(
        LEVIBOT_PG_DSN=pg_dsn,
        LEVIBOT_API_RATE_STORAGE=redis_url,
        LEVIBOT_VAR=str(tmp_path / "var"),
        LEVIBOT_KAFKA_BOOTSTRAP="127.0.0.1:1",
        LEVIBOT_API_AUTH_RATE="1000/minute",
    )
    a = Replica(env, tmp_path / "a.log")
    b = Replica(env, tmp_path / "b.log")
    try:
        clear_of_window_edge()
        codes = [(a if i % 2 == 0 else b).get("/v1/whoami", tok) for i in range(6)]
        assert [c.status_code for c in codes] == [200] * 6, [c.text for c in codes]
        # what one replica counted, the other saw: remaining goes 5, 4, 3, ... across both
        assert [int(c.headers["X-RateLimit-Remaining"]) for c in codes] == [5, 4, 3, 2, 1, 0]
        ra, rb = a.get("/v1/whoami", tok), b.get("/v1/whoami", tok)
        assert (ra.status_code, rb.status_code) == (429, 429)
        assert 1 <= int(ra.headers["Retry-After"]) <= QUOTA_WINDOW_S
        a.stop()
        a = Replica(env, tmp_path / "a2.log")  # a new process, no memory of the old one's counts
        again = a.get("/v1/whoami", tok)
        assert again.status_code == 429 and again.json()["error"] == "rate_limited"
        assert a.get("/healthz", tok).json() == {
            "status": "ok",
            "database": True,
            "rate_limit_storage": "redis",
            "rate_limits": True,
        }
    finally:
        a.stop()
        b.stop()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT actor, detail FROM audit WHERE result = 'denied' ORDER BY ts_ns").fetchall()
    assert [(r[0], r[1].split(":")[0]) for r in rows] == [(f"api:{kid}", "rate_limited")] * 3
    # the counters are in Redis under the API's namespace
    keys = redis.Redis.from_url(redis_url).keys(f"levibot-api*{kid}*")
    assert keys


def test_unreachable_redis_is_unavailable_not_per_process(pg_dsn):
    from fastapi.testclient import TestClient

    from flows.api.app import create_app
    from flows.api.context import ApiContext
    from flows.api.settings import ApiSettings
    from flows.settings import Settings

    dead = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(LimiterUnavailable):
        RateLimiter(dead, timeout_s=0.5).hit("k", "1/second")
    migrate(pg_dsn)
    ctx = ApiContext(
        settings=Settings.from_env({"LEVIBOT_PG_DSN": pg_dsn}),
        api=ApiSettings(rate_storage=dead),
        db=ApiDatabase(pg_dsn, max_size=2),
        limiter=RateLimiter(dead, timeout_s=0.5),
        hasher=FAST,
    )
    with TestClient(create_app(ctx)) as client:
        h = client.get("/healthz")
        assert h.status_code == 503 and h.json()["rate_limits"] is False and h.json()["database"] is True
        r = client.get("/v1/status", headers={"X-API-Key": "lvb_000000000000_x"})
        assert r.status_code == 503 and r.json()["error"] == "rate_limit_unavailable"
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT result, detail FROM audit").fetchall()
    assert [(r[0], r[1].split(":")[0]) for r in rows] == [("error", "rate_limit_unavailable")]


def test_telegram_confirmation_staged_on_one_replica_confirmed_on_another(redis_url):
    from connectors.confirmations import RedisConfirmations

    a, b = RedisConfirmations(redis_url, ttl_s=60), RedisConfirmations(redis_url, ttl_s=60)
    chat = -secrets.randbelow(10**9)
    code = a.stage("halt", "account:default", "outage", chat_id=chat, user_id=7, now_s=time.time())
    assert b.take("000000" if code != "000000" else "111111", chat_id=chat, user_id=7, now_s=time.time()) is None
    code = a.stage("halt", "account:default", "outage", chat_id=chat, user_id=7, now_s=time.time())
    got = b.take(code, chat_id=chat, user_id=7, now_s=time.time())
    assert got is not None and (got.action, got.scope, got.reason) == ("halt", "account:default", "outage")
    assert a.take(code, chat_id=chat, user_id=7, now_s=time.time()) is None  # once only, on any replica
    short = RedisConfirmations(redis_url, ttl_s=0.2)
    code = short.stage("resume", "account:default", "", chat_id=chat, user_id=7, now_s=time.time())
    time.sleep(0.4)
    assert b.take(code, chat_id=chat, user_id=7, now_s=time.time()) is None  # expired in Redis
