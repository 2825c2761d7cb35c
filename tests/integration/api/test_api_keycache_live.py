"""The API's key cache against the real PostgreSQL: rows are served from memory only while the process listens to
the key-change notifications of migration 0005, and a revocation (by the CLI or by plain SQL) is refused at once;
with the listener down, every request reads the row again; concurrent first requests of a key share one Argon2
verification."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from connectors.ratelimit import RateLimiter
from flows.api.app import create_app
from flows.api.context import ApiContext
from flows.api.settings import ApiSettings
from flows.settings import Settings
from operators.api.keys import KeyHasher, make_token, parse_token
from tests.support import REPO, wait_for
from tests.support.api import FAST, wait_revocation_heard

pytestmark = [pytest.mark.postgres]


class CountingHasher(KeyHasher):
    """The real Argon2id hasher, counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.verifications = 0
        self._n = threading.Lock()

    def verify(self, stored: str, secret: str) -> bool:
        with self._n:
            self.verifications += 1
        time.sleep(0.05)  # a verification that takes a while, so the concurrent requests really overlap
        return super().verify(stored, secret)


def _key(db: ApiDatabase, hasher: KeyHasher = FAST) -> tuple[str, str]:
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, secret = parse_token(tok)
    db.create_key(
        key_id=kid,
        name="cache",
        secret_hash=hasher.hash(secret),
        scopes=["read"],
        tier="pro",
        accounts=["default"],
        rate="",
        created_by="pytest",
        expires_at=None,
    )
    return tok, kid


def _app(pg_dsn: str, **api):
    migrate(pg_dsn)
    s = Settings.from_env({"LEVIBOT_PG_DSN": pg_dsn})
    hasher = api.pop("hasher", FAST)
    a = ApiSettings(**{"auth_rate": "1000/minute", **api})
    ctx = ApiContext(settings=s, api=a, db=ApiDatabase(pg_dsn, max_size=4), limiter=RateLimiter(), hasher=hasher)
    return ctx, create_app(ctx)


def _new_key_heard(ctx: ApiContext, timeout_s: float = 2.0) -> tuple[str, str]:
    """A new key, once this process has heard the notification of its INSERT: a change notification that arrives
    while a request reads the row keeps that row out of the cache (the generation check), so a test that expects
    the next read to stay cached waits for it first."""
    heard = ctx.key_listener.notifications
    tok, kid = _key(ctx.db)
    wait_for(
        lambda: ctx.key_listener.notifications != heard,
        timeout_s,
        "the notification of the key's creation",
        interval_s=0.002,
    )
    return tok, kid


def _revoke_sql(dsn: str, kid: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now(), revoked_by = 'pytest' WHERE key_id = %s", (kid,))


def test_cached_row_dropped_by_the_notification_of_a_revocation(pg_dsn):
    ctx, app = _app(pg_dsn)
    with TestClient(app) as client:
        assert ctx.key_listener is not None and ctx.key_listener.listening.is_set() and ctx.keys.enabled
        tok, kid = _new_key_heard(ctx)
        assert client.get("/v1/positions", headers={"X-API-Key": tok}).status_code == 200
        assert ctx.keys.get(kid) is not None  # served from memory from now on
        before = ctx.key_listener.notifications
        _revoke_sql(pg_dsn, kid)
        # the drop is asynchronous (PostgreSQL notifies at commit); it must come, and quickly
        wait_revocation_heard(ctx, kid)
        assert ctx.key_listener.notifications > before
        r = client.get("/v1/positions", headers={"X-API-Key": tok})
        assert r.status_code == 401 and r.json()["error"] == "revoked_key"
        assert ctx.keys.get(kid) is None or ctx.keys.get(kid).revoked_at is not None


def test_revoked_by_the_cli_is_refused_on_the_next_request(pg_dsn):
    ctx, app = _app(pg_dsn)
    with TestClient(app) as client:
        tok, kid = _new_key_heard(ctx)
        for _ in range(3):
            assert client.get("/v1/status", headers={"X-API-Key": tok}).status_code == 200
        assert ctx.keys.get(kid) is not None
        env = {**os.environ, "LEVIBOT_PG_DSN": pg_dsn}
        out = subprocess.run(
            [sys.executable, "-c", "from flows.cli_api import main; main()", "revoke", kid],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        r = client.get("/v1/status", headers={"X-API-Key": tok})  # no waiting: the CLI has returned, that is all
        assert r.status_code == 401 and r.json()["error"] == "revoked_key"


def test_without_the_listener_every_request_reads_the_row(pg_dsn):
    ctx, app = _app(pg_dsn)
    with TestClient(app) as client:
        ctx.key_listener.stop()  # as if the listening connection were lost
        assert not ctx.keys.enabled
        tok, kid = _key(ctx.db)
        assert client.get("/v1/positions", headers={"X-API-Key": tok}).status_code == 200
        assert ctx.keys.get(kid) is None  # nothing cached
        _revoke_sql(pg_dsn, kid)
        r = client.get("/v1/positions", headers={"X-API-Key": tok})  # immediately, no notification to wait for
        assert r.status_code == 401 and r.json()["error"] == "revoked_key"


def test_cache_off_with_zero_ttl(pg_dsn):
    ctx, app = _app(pg_dsn, key_cache_s=0.0)
    with TestClient(app) as client:
        assert ctx.key_listener is None and not ctx.keys.enabled
        tok, kid = _key(ctx.db)
        assert client.get("/v1/positions", headers={"X-API-Key": tok}).status_code == 200
        _revoke_sql(pg_dsn, kid)
        assert client.get("/v1/positions", headers={"X-API-Key": tok}).status_code == 401


def test_concurrent_first_requests_share_one_verification(pg_dsn):
    hasher = CountingHasher()
    # the address quota allows 2 unauthenticated requests an hour: the 24 concurrent first requests of a good key
    # must not spend it (only the one that verifies counts)
    ctx, app = _app(pg_dsn, hasher=hasher, auth_rate="2/hour")
    with TestClient(app) as client:
        tok, _kid = _key(ctx.db, hasher)
        codes: list[int] = []
        lock = threading.Lock()
        go = threading.Barrier(24)

        def one() -> None:
            go.wait()
            c = client.get("/v1/positions", headers={"X-API-Key": tok}).status_code
            with lock:
                codes.append(c)

        ts = [threading.Thread(target=one) for _ in range(24)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert codes == [200] * 24
        assert hasher.verifications == 1
        # a wrong secret for the same key is still verified (and refused), and counted against the address
        bad = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
        assert client.get("/v1/positions", headers={"X-API-Key": bad}).status_code == 401
        assert hasher.verifications == 2
