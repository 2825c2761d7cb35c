"""The operator API without services: the pure parts (scopes, tiers, tokens, cursors, filters, audit entries,
commands), the settings, the exported OpenAPI schema, and that ``operators.api`` stays pure."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.api.settings import ApiSettings
from operators.api.access import DEFAULT_TIERS, SCOPES, Principal, check_accounts, denial, grants, parse_tiers
from operators.api.audit import api_audit_event, request_digest
from operators.api.commands import Rejected, build_command
from operators.api.keys import KeyHasher, VerifiedCache, make_token, parse_token, token_hint
from operators.api.query import ListFilter, decode_cursor, encode_cursor, time_ns
from tests.support import REPO

T0 = 1_800_000_000_000_000_000


def test_operators_api_is_pure():
    code = (
        "import sys, operators.api.access, operators.api.keys, operators.api.query, operators.api.audit, "
        "operators.api.commands, operators.api.analytics, operators.api.models, operators.api.sessions, operators.api.telegram; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn', 'psycopg', "
        "'psycopg_pool', 'limits', 'redis', 'confluent_kafka', 'bytewax', 'httpx', 'connectors', 'flows')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_scope_order_is_total():
    for i, have in enumerate(SCOPES):
        for j, need in enumerate(SCOPES):
            assert grants((have,), need) is (i >= j)
    assert not grants((), "read") and not grants(("root",), "read")


def test_tiers_gate_groups_scopes_and_accounts():
    free, pro, ent = (DEFAULT_TIERS[n] for n in ("free", "pro", "enterprise"))
    assert not free.allows_group("control") and not free.allows_group("audit") and free.scopes == ("read",)
    assert pro.allows_group("control") and ent.allows_group("audit")
    # a free key holding "trade" (a tier changed under it) still cannot trade: the tier caps the scopes too
    p = Principal("00112233aabb", ("admin",), "free")
    assert denial(p, "read", "book", DEFAULT_TIERS) is None
    assert denial(p, "trade", "control", DEFAULT_TIERS).reason == "tier"
    tiers = parse_tiers('{"free": {"groups": ["status", "book", "control"]}}')
    assert denial(p, "trade", "control", tiers).reason == "scope"
    assert denial(Principal("k", ("read",), "gold"), "read", "book", DEFAULT_TIERS).reason == "tier"
    assert check_accounts(["a", "b", "a"], pro) == ("a", "b")
    with pytest.raises(ValueError):
        check_accounts(["*"], pro)
    assert check_accounts(["*"], ent) == ("*",)
    for bad in (
        "[1]",
        '{"x": {"rate": "1/second"}}',
        '{"free": {"rate": "lots"}}',
        '{"free": {"groups": ["x"]}}',
        '{"free": {"scopes": ["root"]}}',
        "{",
    ):
        with pytest.raises(ValueError):
            parse_tiers(bad)


def test_tokens_and_hash():
    tok = make_token(bytes(6), b"\xff" * 32)
    kid, secret = parse_token(tok)
    assert kid == "000000000000" and token_hint(tok) == kid
    for bad in ("", tok + "x", tok.replace("lvb_", "lvx_"), tok.upper(), "lvb_" + "0" * 12 + "_" + "*" * 43):
        assert parse_token(bad) is None and token_hint(bad) == ""
    h = KeyHasher(time_cost=1, memory_cost=8, parallelism=1)
    stored = h.hash(secret)
    assert secret not in stored and stored.startswith("$argon2id$")
    assert h.verify(stored, secret) and not h.verify(stored, secret[:-1] + "A") and not h.verify("garbage", secret)
    cache = VerifiedCache(b"p" * 16, max_entries=2)
    cache.add(kid, stored, secret)
    assert cache.seen(kid, stored, secret) and not cache.seen(kid, stored + "x", secret)
    cache.forget(kid)
    assert not cache.seen(kid, stored, secret)
    for i in range(3):
        cache.add(f"k{i}", stored, secret)
    assert not cache.seen("k0", stored, secret) and cache.seen("k2", stored, secret)


@given(
    ts=st.integers(946_684_800 * 10**9, 4_102_444_800 * 10**9 - 1),
    row_id=st.from_regex(r"[!-~]{1,128}", fullmatch=True),
)
@settings(max_examples=200, deadline=None)
def test_cursor_round_trip(ts, row_id):
    assert decode_cursor(encode_cursor(ts, row_id)) == (ts, row_id)


@given(st.text(max_size=600))
@settings(max_examples=300, deadline=None)
def test_cursor_garbage_is_a_value_error(text):
    try:
        ts, row_id = decode_cursor(text)
    except ValueError:
        return
    assert isinstance(ts, int) and isinstance(row_id, str)


def test_filters_refuse_what_cannot_match():
    from datetime import datetime, timedelta, timezone

    with pytest.raises(ValueError):
        ListFilter.build(limit=0)
    with pytest.raises(ValueError):
        ListFilter.build(limit=1001)
    with pytest.raises(ValueError):
        ListFilter.build(since_ns=T0, until_ns=T0)
    with pytest.raises(ValueError):
        time_ns(datetime(1970, 1, 1, tzinfo=UTC), "since")
    with pytest.raises(ValueError):
        time_ns(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))), "since")
    assert time_ns(datetime(2024, 1, 1), "since") == time_ns(datetime(2024, 1, 1, tzinfo=UTC), "since")
    f = ListFilter.build(symbol="ETH/USDT", equals={"strategy": "trend", "side": None})
    assert f.equals == {"strategy": "trend"}


def test_audit_entry_never_holds_parameters():
    secret = "hunter2-super-secret-value"
    ev = api_audit_event(
        request_id="req-1",
        actor="api:00112233aabb/unverified",
        route="control.halt",
        result="denied",
        reason="bad_secret",
        parameters={"password": secret},
        ts=T0,
        client="2001:db8::1",
    )
    assert secret not in json.dumps([getattr(ev, f) for f in ev.__struct_fields__])
    assert ev.parameters_digest == request_digest({"password": secret}) and ev.actor == "api:00112233aabb/unverified"
    assert api_audit_event(request_id="r", actor="bad actor!", route="x y", result="error", ts=T0).actor == "bad_actor_"


def test_commands_from_requests():
    p = Principal("00112233aabb", ("admin",), "enterprise", ("desk",))
    c = build_command(
        p,
        "set_limit",
        "account:desk",
        "",
        {"name": "min_history", "value": 200.0},
        ts=T0,
        command_id="cmd-x",
        key_id="k1",
    )
    assert c.parameters == {"name": "min_history", "value": 200} and type(c.parameters["value"]) is int
    assert c.issuer == "api:00112233aabb" and c.key_id == "k1" and not c.signature
    cases = [
        ("halt", "account:desk", "", {}, "missing_reason"),
        ("halt", "account:default", "x", {}, "account_not_allowed"),
        ("halt", "venue:x", "x", {}, "invalid_scope"),
        ("set_limit", "account:desk", "", {"name": "lot_sizes", "value": 1.0}, "unknown_limit"),
        ("set_limit", "account:desk", "", {"name": "max_leverage", "value": float("nan")}, "invalid_value"),
        ("set_limit", "symbol:BTC-USD", "", {"name": "max_leverage", "value": 1.0}, "wrong_scope"),
        ("disable_strategy", "account:desk", "", {}, "wrong_scope"),
    ]
    for action, scope, reason, params, want in cases:
        with pytest.raises(Rejected) as exc:
            build_command(p, action, scope, reason, params, ts=T0, command_id="cmd-y", key_id="k1")
        assert exc.value.reason == want, (action, scope)


def test_api_settings():
    s = ApiSettings.from_env({})
    assert s.host == "127.0.0.1" and s.rate_storage == "memory://"
    assert "redis" not in repr(ApiSettings.from_env({"LEVIBOT_API_RATE_STORAGE": "redis://:pw@h:6379/0"}))
    for env in (
        {"LEVIBOT_API_PORT": "x"},
        {"LEVIBOT_API_TIERS": "{"},
        {"LEVIBOT_API_DEFAULT_TIER": "gold"},
        {"LEVIBOT_API_RATE_STORAGE": "mongodb://x"},
        {"LEVIBOT_API_AUTH_RATE": "often"},
        {"LEVIBOT_API_MAX_BODY_BYTES": "10"},
    ):
        with pytest.raises(ValueError):
            ApiSettings.from_env(env)


def test_docs_name_every_api_setting():
    from dataclasses import fields

    text = (REPO / "docs" / "api.md").read_text()
    for f in fields(ApiSettings):
        assert f"`{f.metadata['env']}`" in text, f.metadata["env"]


def test_openapi_export_is_current(tmp_path):
    from flows.cli_api import export_openapi

    out = tmp_path / "openapi.json"
    export_openapi(out)
    committed = (REPO / "docs" / "openapi.json").read_text()
    assert out.read_text() == committed, (
        "docs/openapi.json is stale: run `.venv/bin/levibot api --openapi-out docs/openapi.json`"
    )
    schema = json.loads(committed)
    secured = [
        (path, m)
        for path, ops in schema["paths"].items()
        for m, op in ops.items()
        if path.startswith("/v1/") and op.get("security")
    ]
    assert len(secured) == sum(len(ops) for path, ops in schema["paths"].items() if path.startswith("/v1/"))
    for path, ops in schema["paths"].items():
        for op in ops.values():
            if path.startswith("/v1/"):
                assert {"401", "403", "429"} <= set(op["responses"]), path


def test_k8s_api_manifest_matches_the_app():
    """k8s/api/levibot-api.yaml (kubeconform-validated with the rest of k8s/ by tests/repo/test_deploy.py): the probes
    name routes the app serves, the API reaches the Redis Service it ships, and the ports agree."""
    import yaml

    from flows.api.app import create_app

    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all((REPO / "k8s" / "api" / "levibot-api.yaml").read_text())
        if d
    }
    paths = {r.path for r in create_app(api_settings=ApiSettings()).routes}
    c = docs[("Deployment", "levibot-api")]["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["api"] and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {c["readinessProbe"]["httpGet"]["path"], c["livenessProbe"]["httpGet"]["path"]} <= paths
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["LEVIBOT_API_HOST"] == "0.0.0.0" and c["ports"][0]["containerPort"] == int(env["LEVIBOT_API_PORT"])
    ApiSettings.from_env(env)  # valid settings
    redis_svc = docs[("Service", "levibot-redis")]
    assert env["LEVIBOT_API_RATE_STORAGE"] == (
        f"redis://{redis_svc['metadata']['name']}.levibot.svc.cluster.local:{redis_svc['spec']['ports'][0]['port']}/0"
    )
    assert docs[("Service", "levibot-api")]["spec"]["selector"] == {"app.kubernetes.io/name": "levibot-api"}
    assert docs[("Deployment", "levibot-api")]["spec"]["replicas"] >= 2  # why the limits live in Redis


def test_key_row_cache_serves_only_while_enabled_and_refuses_rows_read_before_a_change():
    from operators.api.keys import KeyRowCache

    now = [0.0]
    c = KeyRowCache(ttl_s=30, clock=lambda: now[0])
    g = c.generation()
    assert not c.enabled and c.put("k", "row", g) is False and c.get("k") is None  # not listening: nothing cached
    c.set_enabled(True)
    g = c.generation()
    assert c.put("k", "row", g) and c.get("k") == "row"
    # a revocation notified while a request was reading the old row: that row must not be stored
    g = c.generation()
    c.drop("other")  # any change notified meanwhile
    assert c.put("k", "old row", g) is False and c.get("k") == "row"
    c.drop("k")
    assert c.get("k") is None
    g = c.generation()
    assert c.put("k", "row 2", g)
    now[0] = 30.0  # the TTL bounds everything else
    assert c.get("k") is None
    assert c.put("k", "row 3", c.generation())
    c.set_enabled(False)  # the listening connection is lost: everything goes, nothing served
    assert c.get("k") is None and c.put("k", "row", c.generation()) is False
    assert KeyRowCache(ttl_s=0).enabled is False


def test_several_workers_need_shared_rate_limits():
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_API_")}
    out = subprocess.run(
        [sys.executable, "-c", "from flows.cli import app; app()", "api", "--workers", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and "LEVIBOT_API_RATE_STORAGE=redis://" in out.stderr
    with pytest.raises(ValueError, match="LEVIBOT_API_WORKERS"):
        ApiSettings.from_env({"LEVIBOT_API_WORKERS": "0"})
    assert ApiSettings.from_env({"LEVIBOT_API_WORKERS": "3"}).workers == 3
