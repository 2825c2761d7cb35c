"""Console sessions against the real PostgreSQL, without a browser (that is ``test_api_console_browser.py``): the
login's double-submit CSRF, the cookie's flags, a forged or tampered session, a revoked key ending its session at
once, the tier's groups on pages, CSRF on every form, and each refusal in the audit table."""

from __future__ import annotations

import re

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
from operators.api.keys import parse_token
from operators.api.sessions import issue_session
from tests.support.api import FAST, key_headers, wait_revocation_heard

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def console(pg_dsn, tmp_path):
    migrate(pg_dsn)
    s = Settings.from_env({"LEVIBOT_PG_DSN": pg_dsn, "LEVIBOT_VAR": str(tmp_path)})
    a = ApiSettings(auth_rate="1000/minute", session_secret="x" * 40)
    ctx = ApiContext(settings=s, api=a, db=ApiDatabase(pg_dsn, max_size=2), limiter=RateLimiter(), hasher=FAST)
    with TestClient(create_app(ctx), base_url="https://testserver", follow_redirects=False) as client:
        yield client, ctx, pg_dsn


def _login(client, token: str):
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post("/console/login", data={"csrf": csrf, "token": token})


def _audit(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT action, result, split_part(detail, ':', 1) FROM audit ORDER BY ts_ns").fetchall()


def test_login_session_cookie_and_csrf(console):
    client, ctx, dsn = console
    tok = key_headers(ctx.db, ("trade",), "pro")["X-API-Key"]
    assert client.get("/console").headers["location"] == "/console/login"
    form = client.get("/console/login")
    assert form.headers["content-security-policy"].startswith("default-src 'self'")
    set_cookie = form.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Secure" in set_cookie
    # the login form needs its double-submit token
    r = client.post("/console/login", data={"csrf": "wrong", "token": tok})
    assert r.headers["location"] == "/console/login?error=csrf"
    r = _login(client, tok)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("levibot_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie and "Path=/console" in cookie
    assert parse_token(tok)[1] not in cookie
    page = client.get("/console/control")
    assert page.status_code == 200 and 'data-form="halt"' in page.text
    # every form of the session carries its CSRF token; a POST without it or with another session's is refused
    assert client.post("/console/control", data={"action": "halt", "scope": "account:default"}).status_code == 403
    other = issue_session(ctx.session_secret, parse_token(tok)[0], now_s=10**10 - 100, ttl_s=50)  # expired anyway
    assert client.post("/console/control", data={"action": "halt", "csrf": other}).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    confirm = client.post("/console/control", data={"action": "halt", "scope": "account:default", "csrf": csrf})
    assert confirm.status_code == 200 and 'data-form="confirm"' in confirm.text  # nothing sent before confirming
    # no signing key configured: the confirmed command is refused by the API's control path, audited as error
    sent = client.post(
        "/console/control",
        data={"action": "halt", "scope": "account:default", "csrf": csrf, "confirm": "yes", "reason": "test"},
    )
    assert sent.status_code == 503 and "control_unavailable" in sent.text
    assert [a for a in _audit(dsn) if a[0] != "api.console.login"] == [
        ("api.console.control.halt", "denied", "csrf"),
        ("api.console.control.halt", "denied", "csrf"),
        ("api.console.control.halt", "error", "control_unavailable"),
    ]


def test_tampered_revoked_and_out_of_tier_sessions(console):
    client, ctx, dsn = console
    free = key_headers(ctx.db, ("read",), "free")["X-API-Key"]
    assert _login(client, free).status_code == 303
    assert client.get("/console/positions").status_code == 200
    r = client.get("/console/risk")
    assert r.status_code == 403 and "does not include the &#x27;risk&#x27; endpoints" in r.text
    # read scope: the control page shows no buttons, and a POST is refused (the free tier has no control group)
    page = client.get("/console/control")
    assert page.status_code == 200 and 'data-form="halt"' not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/console/control", data={"action": "halt", "csrf": csrf}).status_code == 403
    # a session signed with another secret, or edited, is no session
    good = client.cookies.get("levibot_session")
    client.cookies.clear()
    client.cookies.set("levibot_session", good[:-3] + "abc")
    assert client.get("/console/positions").headers["location"] == "/console/login"
    client.cookies.clear()
    client.cookies.set("levibot_session", good)
    assert client.get("/console/positions").status_code == 200
    kid = parse_token(free)[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now(), revoked_by = 'pytest' WHERE key_id = %s", (kid,))
    wait_revocation_heard(ctx, kid)
    assert client.get("/console/positions").headers["location"] == "/console/login"
    assert _audit(dsn) == [
        ("api.console.login", "applied", "login"),
        ("api.console.risk", "denied", "tier"),
        ("api.console.control.halt", "denied", "tier"),  # free: no control group
        ("api.console.positions", "denied", "revoked_key"),
    ]


def test_signals_page_links_each_signal_to_its_lifecycle(console):
    client, ctx, dsn = console
    tok = key_headers(ctx.db, ("read",), "pro")["X-API-Key"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sid, kind, ref, sec in (("tg:-1:1", "open", None, 1), ("tg:-1:2", "close", "tg:-1:1", 2)):
            conn.execute(
                "INSERT INTO signals (id, version, source_chat, source_message_id, symbol, side, kind, "
                "entries, ref_id, trust, ts, ts_ns) VALUES (%s, 1, '-1', 1, 'BTC-USD', 'long', %s, "
                "'{30000}', %s, 0.5, to_timestamp(%s), %s)",
                (sid, kind, ref, 1_800_000_000 + sec, (1_800_000_000 + sec) * 10**9),
            )
    assert _login(client, tok).status_code == 303
    page = client.get("/console/signals")
    assert 'href="/console/signals?id=tg%3A-1%3A1"' in page.text and 'data-table="lifecycle"' not in page.text
    life = client.get("/console/signals", params={"id": "tg:-1:1"})
    assert life.status_code == 200 and "Lifecycle of tg:-1:1: close" in life.text
    table = life.text.split('data-table="lifecycle"')[1].split("</table>")[0]
    assert table.count("<tr>") == 3  # the header and the two messages
    assert (
        "<script>"
        not in client.get("/console/signals", params={"id": "<script>"}).text.split("<main>")[1].split("</main>")[0]
    )
