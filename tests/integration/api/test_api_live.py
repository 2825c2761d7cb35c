"""`levibot api` against the real services (PostgreSQL, Kafka): keys and their CLI, 401/403/429 and revoked keys
each in the audit table, size limits, injection strings in every filter, pagination, and a halt that reaches the
signed control topic. The halt applied by a running flow is in ``test_api_flow_live.py``; the fuzz in
``test_api_fuzz.py``."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys

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
from tests.support import REPO
from tests.support.api import FAST, QUOTA_WINDOW_S, clear_of_window_edge, wait_revocation_heard

pytestmark = [pytest.mark.postgres]
CONTROL_KEY = "api-live-test-control-key-0123456789"
T0 = 1_800_000_000_000_000_000


class Keys:
    def __init__(self, db: ApiDatabase) -> None:
        self.db = db

    def make(self, scopes=("read",), tier="pro", accounts=("default",), rate="", name="test") -> str:
        tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
        kid, secret = parse_token(tok)
        self.db.create_key(
            key_id=kid,
            name=name,
            secret_hash=FAST.hash(secret),
            scopes=list(scopes),
            tier=tier,
            accounts=list(accounts),
            rate=rate,
            created_by="pytest",
            expires_at=None,
        )
        return tok


def _audit(dsn: str, **where) -> list[dict]:
    q = "SELECT actor, action, result, detail, client_address, source, command_id, scope FROM audit"
    if where:
        q += " WHERE " + " AND ".join(f"{k} = %s" for k in where)
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(q + " ORDER BY ts_ns", tuple(where.values()))
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


@pytest.fixture
def api(pg_dsn):
    """(client, keys, dsn, ctx) on a fresh, migrated database (no Kafka: control writes are tested below)."""
    migrate(pg_dsn)
    s = Settings.from_env({"LEVIBOT_PG_DSN": pg_dsn, "LEVIBOT_CONTROL_KEY": CONTROL_KEY})
    a = ApiSettings(auth_rate="1000/minute", max_body_bytes=4096, max_query_bytes=1024)
    ctx = ApiContext(settings=s, api=a, db=ApiDatabase(pg_dsn, max_size=4), limiter=RateLimiter(), hasher=FAST)
    with TestClient(create_app(ctx), client=("10.1.2.3", 50000)) as client:
        yield client, Keys(ctx.db), pg_dsn, ctx


def _levibot(args, env, timeout=60):
    return subprocess.run(
        [sys.executable, "-c", "from flows.cli_api import main; main()", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_api_keys_cli_create_list_revoke(pg_dsn):
    migrate(pg_dsn)
    env = dict(os.environ, LEVIBOT_PG_DSN=pg_dsn)
    out = _levibot(["create", "--name", "ci bot", "--scopes", "read,trade", "--tier", "pro", "--json"], env)
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    token, kid = made["token"], made["key_id"]
    assert parse_token(token)[0] == kid and made["scopes"] == ["read", "trade"] and made["state"] == "active"
    secret = parse_token(token)[1]
    with psycopg.connect(pg_dsn) as conn:
        dump = json.dumps(conn.execute("SELECT row_to_json(k) FROM api_keys k").fetchall())
        stored = conn.execute("SELECT secret_hash FROM api_keys WHERE key_id = %s", (kid,)).fetchone()[0]
    assert secret not in dump and token not in dump
    assert stored.startswith("$argon2id$") and KeyHasher().verify(stored, secret)
    listed = _levibot(["list", "--json"], env)
    assert listed.returncode == 0 and secret not in listed.stdout and "argon2" not in listed.stdout
    assert [k["key_id"] for k in json.loads(listed.stdout)] == [kid]
    # refused by its tier and by bad input: exit 2, nothing stored
    assert _levibot(["create", "--name", "x", "--scopes", "admin", "--tier", "free"], env).returncode == 2
    assert _levibot(["create", "--name", "x", "--scopes", "root"], env).returncode == 2
    assert _levibot(["create", "--name", "x", "--tier", "free", "--accounts", "a,b"], env).returncode == 2
    assert _levibot(["revoke", kid], env).returncode == 0
    again = _levibot(["revoke", kid], env)
    assert again.returncode == 0 and "already" in again.stdout
    assert _levibot(["revoke", "0" * 12], env).returncode == 1
    assert json.loads(_levibot(["list", "--json"], env).stdout)[0]["state"] == "revoked"
    assert _levibot(["list", "--json", "--active"], env).stdout.strip() == "[]"
    # a revoked key cannot come back, and no key can be deleted or re-hashed
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for stmt in (
            "UPDATE api_keys SET revoked_at = NULL",
            "DELETE FROM api_keys",
            "UPDATE api_keys SET secret_hash = '$argon2id$x'",
            "TRUNCATE api_keys",
        ):
            with pytest.raises(psycopg.errors.RestrictViolation):
                conn.execute(stmt)
    rows = _audit(pg_dsn, source="cli")
    assert [(r["action"], r["result"]) for r in rows] == [
        ("api_keys.create", "applied"),
        ("api_keys.revoke", "applied"),
    ]


def test_denials_are_answered_and_audited(api, caplog):
    client, keys, dsn, ctx = api
    caplog.set_level(logging.DEBUG)
    reader = keys.make(("read",), "pro")
    free = keys.make(("read",), "free")
    limited = keys.make(("read",), "pro", rate="3/hour")
    wrong = reader[:-4] + ("AAAA" if not reader.endswith("AAAA") else "BBBB")

    r = client.get("/v1/orders")
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated" and r.headers["WWW-Authenticate"]
    assert client.get("/v1/orders", headers={"X-API-Key": "not-a-token"}).json()["error"] == "malformed_key"
    assert client.get("/v1/orders", headers={"X-API-Key": wrong}).json()["error"] == "bad_secret"
    assert client.get("/v1/orders", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    r = client.post("/v1/control/halt", json={"reason": "x"}, headers={"X-API-Key": reader})
    assert r.status_code == 403 and r.json()["error"] == "scope"
    r = client.get("/v1/risk-decisions", headers={"X-API-Key": free})
    assert r.status_code == 403 and r.json()["error"] == "tier"
    assert client.get("/v1/positions", headers={"X-API-Key": free}).status_code == 200
    clear_of_window_edge()
    codes = [client.get("/v1/status", headers={"X-API-Key": limited}) for _ in range(4)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    assert codes[0].headers["X-RateLimit-Limit"] == "3"
    assert 1 <= int(codes[3].headers["Retry-After"]) <= QUOTA_WINDOW_S and codes[3].json()["error"] == "rate_limited"

    kid = parse_token(reader)[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now(), revoked_by = 'pytest' WHERE key_id = %s", (kid,))
    wait_revocation_heard(ctx, kid)
    r = client.get("/v1/orders", headers={"X-API-Key": reader})  # verified before: the cache must not let it in
    assert r.status_code == 401 and r.json()["error"] == "revoked_key"

    denied = _audit(dsn, result="denied")
    got = [(d["actor"], d["action"], d["detail"].split(":")[0]) for d in denied]
    fid, lid = parse_token(free)[0], parse_token(limited)[0]
    assert got == [
        ("anonymous", "api.orders", "unauthenticated"),
        ("anonymous", "api.orders", "malformed_key"),
        (f"api:{kid}/unverified", "api.orders", "bad_secret"),
        (f"api:{kid}", "api.control.halt", "scope"),
        (f"api:{fid}", "api.risk_decisions", "tier"),
        (f"api:{lid}", "api.status", "rate_limited"),
        (f"api:{kid}/unverified", "api.orders", "revoked_key"),
    ]
    assert {d["client_address"] for d in denied} == {"10.1.2.3"} and {d["source"] for d in denied} == {"api"}
    # no secret anywhere: not in the audit table, not in any log line
    with psycopg.connect(dsn) as conn:
        table = json.dumps(conn.execute("SELECT row_to_json(a) FROM audit a").fetchall())
    for tok in (reader, free, limited, wrong):
        sec = parse_token(tok)[1]
        assert sec not in table and sec not in caplog.text


def test_auth_quota_per_address(pg_dsn):
    migrate(pg_dsn)
    s = Settings.from_env({"LEVIBOT_PG_DSN": pg_dsn})
    ctx = ApiContext(
        settings=s,
        api=ApiSettings(auth_rate="2/hour"),
        db=ApiDatabase(pg_dsn, max_size=2),
        limiter=RateLimiter(),
        hasher=FAST,
    )
    clear_of_window_edge()
    with TestClient(create_app(ctx), client=("10.9.9.9", 1)) as client:
        codes = [client.get("/v1/orders", headers={"X-API-Key": "guess"}).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
    assert [r["detail"].split(":")[0] for r in _audit(pg_dsn)] == ["malformed_key", "malformed_key", "rate_limited"]


def test_size_limits(api):
    client, keys, dsn, _ = api
    tok = keys.make(("trade",), "pro")
    r = client.get("/v1/orders?strategy=" + "a" * 2000, headers={"X-API-Key": tok})
    assert r.status_code == 414 and r.json()["error"] == "query_too_long"
    r = client.post(
        "/v1/control/halt",
        content=b'{"reason": "' + b"x" * 5000 + b'"}',
        headers={"X-API-Key": tok, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"

    def chunks():
        yield b'{"reason": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = client.post(
        "/v1/control/halt", content=chunks(), headers={"X-API-Key": tok, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert [(a["action"], a["detail"].split(":")[0]) for a in _audit(dsn, result="denied")] == [
        ("api.guard", "query_too_long"),
        ("api.guard", "body_too_large"),
        ("api.guard", "body_too_large"),
    ]


INJECTIONS = [
    "' OR '1'='1",
    "BTC-USD'; DROP TABLE orders; --",
    "1) OR (1=1",
    "%",
    "_",
    "*",
    "\\",
    "\x00",
    "ü" * 40,
    "$$; SELECT pg_sleep(5); $$",
    "trend' UNION SELECT secret_hash FROM api_keys --",
    "a" * 300,
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "null",
    "[]",
    "{}",
]


def _store_orders(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            ts = T0 + i * 1_000_000_000
            conn.execute(
                "INSERT INTO orders (order_id, strategy, symbol, side, qty, order_type, tif, ts, ts_ns) "
                "VALUES (%s, %s, %s, %s, 1.0, 'market', 'IOC', to_timestamp(%s / 1e9), %s)",
                (
                    f"ord-{i:03d}",
                    "trend" if i % 2 else "breakout",
                    "BTC-USD" if i % 3 else "ETH-USD",
                    "buy" if i % 2 else "sell",
                    ts,
                    ts,
                ),
            )


def test_injection_strings_in_filters_are_harmless(api):
    client, keys, dsn, _ = api
    _store_orders(dsn, 12)
    tok = keys.make(("read",), "enterprise")
    h = {"X-API-Key": tok}
    params = {
        "/v1/orders": ["symbol", "strategy", "side", "parent_id", "since", "until", "cursor", "limit"],
        "/v1/fills": ["symbol", "order_id", "side", "since", "until", "cursor", "limit"],
        "/v1/risk-decisions": ["symbol", "strategy", "action", "since", "until", "cursor", "limit"],
        "/v1/signals": ["symbol", "kind", "source_chat", "since", "until", "cursor", "limit"],
        "/v1/audit": [
            "actor",
            "action",
            "scope",
            "result",
            "command_id",
            "source",
            "since",
            "until",
            "cursor",
            "limit",
        ],
        "/v1/positions": ["symbol"],
    }
    n = 0
    for path, names in params.items():
        for name in names:
            for bad in INJECTIONS:
                r = client.get(path, params={name: bad}, headers=h)
                n += 1
                assert r.status_code in (200, 414, 422), (path, name, bad, r.status_code, r.text[:200])
                if r.status_code == 200:
                    body = r.json()
                    items = body if isinstance(body, list) else body["items"]
                    assert items == [], (path, name, bad)  # matched literally: nothing
                assert "argon2" not in r.text
    assert n > 500
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (12,)
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)


def test_pagination_and_filters(api):
    client, keys, dsn, _ = api
    _store_orders(dsn, 25)
    h = {"X-API-Key": keys.make(("read",), "pro")}
    seen, cursor = [], None
    while True:
        r = client.get("/v1/orders", params={"limit": 10, **({"cursor": cursor} if cursor else {})}, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [o["order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"ord-{i:03d}" for i in reversed(range(25))]
    eth = client.get("/v1/orders", params={"symbol": "ETH-USD", "limit": 1000}, headers=h).json()["items"]
    assert {o["order_id"] for o in eth} == {f"ord-{i:03d}" for i in range(25) if i % 3 == 0}
    window = client.get(
        "/v1/orders",
        params={"since": "2027-01-15T08:00:05Z", "until": "2027-01-15T08:00:10Z", "strategy": "trend"},
        headers=h,
    ).json()["items"]
    assert [o["order_id"] for o in window] == ["ord-009", "ord-007", "ord-005"]
    assert window[0]["time"].startswith("2027-01-15T08:00:09")
    r = client.get("/v1/orders", params={"since": "2027-01-15T08:00:10Z", "until": "2027-01-15T08:00:05Z"}, headers=h)
    assert r.status_code == 422
    assert client.get("/v1/orders", params={"cursor": "AAAA"}, headers=h).status_code == 422


@pytest.mark.kafka
def test_halt_via_api_is_signed_on_the_control_topic(kafka_bootstrap, pg_dsn, topic_prefix):
    from connectors.control import read_control
    from connectors.kafka.admin import ensure_topics
    from operators.control.signing import keyring

    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    s = Settings.from_env(
        {
            "LEVIBOT_PG_DSN": pg_dsn,
            "LEVIBOT_CONTROL_KEY": CONTROL_KEY,
            "LEVIBOT_TOPIC_PREFIX": topic_prefix,
            "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        }
    )
    ctx = ApiContext(
        settings=s, api=ApiSettings(), db=ApiDatabase(pg_dsn, max_size=2), limiter=RateLimiter(), hasher=FAST
    )
    with TestClient(create_app(ctx)) as client:
        keys = Keys(ctx.db)
        trader, admin = keys.make(("trade",), "pro"), keys.make(("admin",), "enterprise", accounts=("*",))
        r = client.post(
            "/v1/control/halt", json={"scope": "symbol:BTC-USD", "reason": "api test"}, headers={"X-API-Key": trader}
        )
        assert r.status_code == 202, r.text
        sent = r.json()
        assert sent["issuer"] == f"api:{parse_token(trader)[0]}" and sent["audited"] is True
        assert client.post("/v1/control/halt", json={"reason": ""}, headers={"X-API-Key": trader}).status_code == 422
        assert (
            client.post(
                "/v1/control/halt", json={"scope": "account:other", "reason": "x"}, headers={"X-API-Key": trader}
            ).json()["error"]
            == "account_not_allowed"
        )
        r = client.post(
            "/v1/control/limits", json={"name": "max_leverage", "value": 1.5}, headers={"X-API-Key": trader}
        )
        assert r.status_code == 403
        r = client.post(
            "/v1/control/limits",
            json={"scope": "account:desk", "name": "max_leverage", "value": 1.5},
            headers={"X-API-Key": admin},
        )
        assert r.status_code == 202, r.text
        assert (
            client.post(
                "/v1/control/strategies/telegram/disable", json={"reason": "compromised"}, headers={"X-API-Key": trader}
            ).status_code
            == 202
        )
        status = client.get("/v1/status", headers={"X-API-Key": trader}).json()
    view = read_control(kafka_bootstrap, f"{topic_prefix}control", keyring(CONTROL_KEY))
    assert [r.outcome for r in view.records] == ["applied"] * 3  # verified with the flow's key: signed
    assert view.state.scope_mode("symbol:BTC-USD") == "halted"
    assert view.state.limit_overrides("desk") == {"max_leverage": 1.5}
    assert view.state.disabled_strategies() == ["telegram"]
    assert view.records[0].command.id == sent["command_id"] and view.records[0].command.signature
    assert status["control"]["available"] and status["control"]["modes"]["symbol:BTC-USD"]["mode"] == "halted"
    rows = _audit(pg_dsn, source="api")
    applied = [(r["action"], r["scope"]) for r in rows if r["result"] == "applied"]
    assert applied == [
        ("api.control.halt", "symbol:BTC-USD"),
        ("api.control.set_limit", "account:desk"),
        ("api.control.disable_strategy", "strategy:telegram"),
    ]
    assert rows[0]["command_id"] == sent["command_id"]
    refused = [(r["action"], r["detail"].split(":")[0]) for r in rows if r["result"] == "refused"]
    assert refused == [("api.control.halt", "missing_reason"), ("api.control.halt", "account_not_allowed")]
    assert [r["detail"].split(":")[0] for r in rows if r["result"] == "denied"] == ["scope"]
