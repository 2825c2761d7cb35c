"""The read endpoints over computed state, against the real PostgreSQL (and Kafka for drift): ``/v1/equity`` (P&L,
equity, drawdown, buy-and-hold), ``/v1/risk`` (VaR/CVaR with components per symbol and strategy vs limits), the
kill switch in ``/v1/status``, and the model registry (``/v1/models``, champion, calibration, drift). Expected
figures are recomputed here from the rows the test stored, by a different route than the API's code."""

from __future__ import annotations

import math

import numpy as np
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
from tests.support.api import CAPITAL, FAST, FILLS, T0, S, key_headers, store_trading_rows, train_model

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def api(pg_dsn, tmp_path):
    migrate(pg_dsn)
    s = Settings.from_env({"LEVIBOT_PG_DSN": pg_dsn, "LEVIBOT_VAR": str(tmp_path / "var")})
    a = ApiSettings(auth_rate="1000/minute", capital=CAPITAL, read_cache_s=0)
    ctx = ApiContext(settings=s, api=a, db=ApiDatabase(pg_dsn, max_size=4), limiter=RateLimiter(), hasher=FAST)
    with TestClient(create_app(ctx)) as client:
        yield client, ctx, pg_dsn


def test_equity_series_matches_the_fills_and_closes(api):
    client, ctx, dsn = api
    px = store_trading_rows(dsn)
    h = key_headers(ctx.db)
    r = client.get("/v1/equity", params={"max_points": 5000}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    n = len(px["BTC-USD"])
    assert body["count"] == n and len(body["points"]) == n and body["resolution_s"] == 60
    assert body["capital"] == CAPITAL and body["symbols"] == ["BTC-USD", "ETH-USD"] and not body["truncated"]
    # recompute every point from scratch: P&L = Σ over fills up to t of (−signed qty × price − fee) + position × close
    peak = -math.inf
    for i, p in enumerate(body["points"]):
        t = T0 + i * S
        assert p["ts_ns"] == t
        done = [f for f in FILLS if T0 + f[0] * S <= t]
        pos = {s: sum((q if sd == "buy" else -q) for _, sy, sd, q, _, _, _ in done if sy == s) for s in px}
        cash = sum((-q * pr if sd == "buy" else q * pr) - fee for _, _, sd, q, pr, fee, _ in done)
        want = cash + sum(pos[s] * px[s][i] for s in px)
        assert p["pnl"] == pytest.approx(want, abs=1e-6), i
        assert p["equity"] == pytest.approx(CAPITAL + want, abs=1e-6)
        peak = max(peak, want)
        assert p["drawdown"] == pytest.approx(peak - want, abs=1e-6)
        bh = CAPITAL * (px["BTC-USD"][i] / px["BTC-USD"][0] + px["ETH-USD"][i] / px["ETH-USD"][0]) / 2
        assert p["buy_and_hold"] == pytest.approx(bh, rel=1e-9)
    assert body["fees"] == pytest.approx(sum(f[5] for f in FILLS))
    # thinning keeps the first and the last point; since trims points but not the fills before it
    thin = client.get("/v1/equity", params={"max_points": 7}, headers=h).json()
    assert len(thin["points"]) == 7 and thin["points"][-1] == body["points"][-1]
    late = client.get("/v1/equity", params={"since": "2027-01-15T08:00:30Z"}, headers=h).json()
    assert late["points"][0]["ts_ns"] == T0 + 30 * S and late["points"][0]["pnl"] == body["points"][30]["pnl"]
    only_eth = client.get("/v1/equity", params={"symbol": "ETH-USD", "max_points": 5000}, headers=h).json()
    assert only_eth["symbols"] == ["ETH-USD"]
    assert only_eth["points"][-1]["pnl"] == pytest.approx(2.0 * (px["ETH-USD"][-1] - 2_010.0) - 2.0)
    assert (
        client.get(
            "/v1/equity", params={"since": "2027-01-15T08:00:30Z", "until": "2027-01-15T08:00:10Z"}, headers=h
        ).status_code
        == 422
    )


def test_risk_components_and_limits(api):
    client, ctx, dsn = api
    px = store_trading_rows(dsn)
    h = key_headers(ctx.db)
    r = client.get("/v1/risk", params={"window": 30}, headers=h)
    assert r.status_code == 200, r.text
    v = r.json()
    pos = {"BTC-USD": 0.2 + 0.1 - 0.05, "ETH-USD": 2.0}
    syms = ["BTC-USD", "ETH-USD"]
    x = np.array([pos[s] * px[s][-1] for s in syms])
    closes = np.array([px[s] for s in syms]).T
    rets = (closes[1:] / closes[:-1] - 1)[-30:]
    cov = np.cov(rets, rowvar=False)
    z = 2.3263478740408408  # the 0.99 normal quantile
    var = z * math.sqrt(x @ cov @ x)
    assert v["window"] == 30 and v["alpha"] == 0.99 and v["equity"] == CAPITAL
    assert v["portfolio_var"] == pytest.approx(var, rel=1e-6)
    assert v["portfolio_var_frac"] == pytest.approx(var / CAPITAL, rel=1e-6)
    assert v["portfolio_cvar"] > v["portfolio_var"] > 0
    comp = {s: x[i] * z * (cov @ x)[i] / math.sqrt(x @ cov @ x) for i, s in enumerate(syms)}
    assert v["component_var"] == pytest.approx(comp, rel=1e-6)
    # by strategy: trend holds 0.15 BTC, breakout 0.1 BTC and 2 ETH; together they are the whole book
    m = {s: comp[s] / x[i] for i, s in enumerate(syms)}
    assert v["component_var_by_strategy"] == pytest.approx(
        {
            "trend": 0.15 * px["BTC-USD"][-1] * m["BTC-USD"],
            "breakout": 0.1 * px["BTC-USD"][-1] * m["BTC-USD"] + 2.0 * px["ETH-USD"][-1] * m["ETH-USD"],
        },
        rel=1e-6,
    )
    assert sum(v["component_var_by_strategy"].values()) == pytest.approx(var, rel=1e-9)
    lim = v["limits"]["portfolio_var"]
    assert lim["limit"] == 0.05 and lim["breached"] == (var / CAPITAL > 0.05)
    assert ("portfolio_var" in v["breaches"]) == lim["breached"]
    assert v["last_decision"]["reasons"] == ["kill_switch_halted"]
    assert client.get("/v1/risk", params={"alpha": 1.5}, headers=h).status_code == 422
    assert client.get("/v1/risk", headers=key_headers(ctx.db, tier="free")).status_code == 403


def test_status_shows_the_gate_kill_switch(api):
    client, ctx, dsn = api
    h = key_headers(ctx.db)
    ks = client.get("/v1/status", headers=h).json()["kill_switch"]
    assert ks["gate"] == "unknown" and ks["state"] == "unknown" and ks["account"] == "default"
    store_trading_rows(dsn)
    ks = client.get("/v1/status", headers=h).json()["kill_switch"]
    assert ks["gate"] == "halted" and ks["state"] == "halted" and ks["drawdown"] == 0.31
    assert ks["operator_mode"] == "unknown"  # no control key in this test: the topic is not read
    assert ks["gate_as_of"].startswith("2027-01-15T08:00:41")


def test_models_registry_champion_and_calibration(api, tmp_path):
    from connectors.model_registry import ModelRegistry

    client, ctx, _ = api
    h = key_headers(ctx.db)
    assert client.get("/v1/models", headers=h).json() == {"champion": None, "pinned": None, "count": 0, "versions": []}
    assert client.get("/v1/models/champion", headers=h).status_code == 404
    reg = ModelRegistry(tmp_path / "var" / "models")
    model = train_model()
    metrics = {"cv_calibrated": model.info["cv_calibrated"], "holdout": {"log_loss": 0.6}}
    old = reg.register(model, feature_set="core-v1", feature_set_version=1, horizon_ns=60 * S, metrics=metrics)
    new = reg.register(model, feature_set="core-v1", feature_set_version=1, horizon_ns=60 * S, metrics=metrics)
    reg.promote(new, "better holdout log loss")
    body = client.get("/v1/models", headers=h).json()
    assert body["champion"] == new and [m["version"] for m in body["versions"]] == [new, old]
    assert [m["status"] for m in body["versions"]] == ["champion", "challenger"]
    assert client.get("/v1/models", params={"status": "challenger"}, headers=h).json()["count"] == 1
    champ = client.get("/v1/models/champion", headers=h).json()
    assert champ["version"] == new and champ["promotion"] == "better holdout log loss"
    cal = client.get(f"/v1/models/{new}/calibration", headers=h).json()
    grid = [p["raw"] for p in cal["curve"]]
    assert grid[0] == 0.0 and grid[-1] == 1.0 and len(grid) == 21
    assert [p["calibrated"] for p in cal["curve"]] == pytest.approx(model.calibrator.predict(grid).tolist())
    assert cal["method"] == model.calibrator.kind
    assert cal["cv_calibrated"] == pytest.approx(model.info["cv_calibrated"])
    assert client.get("/v1/models/20990101T000000000000Z-00000000/calibration", headers=h).status_code == 404
    assert client.get("/v1/models/..%2F..%2Fetc/calibration", headers=h).status_code in (404, 422)
    assert client.get("/v1/models", headers=key_headers(ctx.db, tier="free")).status_code == 403


@pytest.mark.kafka
def test_drift_alerts_from_the_alerts_topic(kafka_bootstrap, pg_dsn, topic_prefix, tmp_path):
    from confluent_kafka import Producer

    from connectors.kafka.admin import ensure_topics
    from schemas.codec import encode
    from schemas.events import Alert

    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    s = Settings.from_env(
        {
            "LEVIBOT_PG_DSN": pg_dsn,
            "LEVIBOT_TOPIC_PREFIX": topic_prefix,
            "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEVIBOT_VAR": str(tmp_path),
        }
    )
    ctx = ApiContext(
        settings=s,
        api=ApiSettings(drift_tail=3),
        db=ApiDatabase(pg_dsn, max_size=2),
        limiter=RateLimiter(),
        hasher=FAST,
    )
    prod = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(5):
        kind = "model_drift" if i != 3 else "sink_circuit_open"
        a = Alert(
            id=f"al{i}",
            severity="warning",
            kind=kind,
            message=f"drift {i}",
            labels={"symbol": "BTC-USD"},
            dedupe_key=f"{kind}:BTC-USD:adwin:m{i}",
            ts=T0 + i * S,
        )
        prod.produce(f"{topic_prefix}alerts", encode(a))
    prod.produce(f"{topic_prefix}alerts", b"not json")
    prod.flush(10)
    with TestClient(create_app(ctx)) as client:
        h = key_headers(ctx.db)
        d = client.get("/v1/models/drift", headers=h).json()
        assert d["available"] is True
        # the last 3 messages per partition (one partition): al3 (not drift), al4, and the junk: al4 only
        assert [a["id"] for a in d["items"]] == ["al4"]
        assert d["items"][0]["time"].startswith("2027-01-15T08:00:04")
        assert client.get("/v1/models/drift", params={"symbol": "ETH-USD"}, headers=h).json()["count"] == 0


@pytest.mark.kafka
def test_model_pin_rollback_unpin_through_the_control_topic(kafka_bootstrap, pg_dsn, topic_prefix, tmp_path):
    from connectors.control import read_control
    from connectors.kafka.admin import ensure_topics
    from connectors.model_registry import ModelRegistry
    from operators.control.signing import keyring

    key = "models-test-control-key-0123456789"
    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    s = Settings.from_env(
        {
            "LEVIBOT_PG_DSN": pg_dsn,
            "LEVIBOT_TOPIC_PREFIX": topic_prefix,
            "LEVIBOT_CONTROL_KEY": key,
            "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEVIBOT_VAR": str(tmp_path),
        }
    )
    ctx = ApiContext(
        settings=s,
        api=ApiSettings(control_cache_s=0),
        db=ApiDatabase(pg_dsn, max_size=2),
        limiter=RateLimiter(),
        hasher=FAST,
    )
    reg = ModelRegistry(tmp_path / "models")
    model = train_model()
    first = reg.register(model, feature_set="core-v1", feature_set_version=1, horizon_ns=60 * S, metrics={})
    reg.promote(first, "first")
    second = reg.register(model, feature_set="core-v1", feature_set_version=1, horizon_ns=60 * S, metrics={})
    reg.promote(second, "second")
    with TestClient(create_app(ctx)) as client:
        admin, trader = key_headers(ctx.db, ("admin",)), key_headers(ctx.db, ("trade",))
        assert client.post(f"/v1/models/{first}/pin", json={"reason": "x"}, headers=trader).status_code == 403
        assert client.post("/v1/models/20990101T000000000000Z-00000000/pin", json={}, headers=admin).status_code == 404
        r = client.post("/v1/models/rollback", json={"reason": "second misbehaves"}, headers=admin)
        assert r.status_code == 202, r.text
        assert client.get("/v1/models", headers=admin).json()["pinned"] == first
        # pinned to the first: there is no champion before it to roll back to
        assert client.post("/v1/models/rollback", json={}, headers=admin).status_code == 404
        assert client.post(f"/v1/models/{second}/pin", json={"reason": "fixed"}, headers=admin).status_code == 202
        assert client.post("/v1/models/unpin", json={"reason": "follow the champion"}, headers=admin).status_code == 202
    view = read_control(kafka_bootstrap, f"{topic_prefix}control", keyring(key))
    assert [(r.command.action, r.command.parameters.get("version"), r.outcome) for r in view.records] == [
        ("pin_model", first, "applied"),
        ("pin_model", second, "applied"),
        ("unpin_model", None, "applied"),
    ]
    assert view.state.pinned_model() is None


def test_signal_lifecycle(api):
    client, ctx, dsn = api
    h = key_headers(ctx.db)
    rows = [
        ("tg:-100:1", 1, "open", None, "{30000}", 0),
        ("tg:-100:1", 2, "open", None, "{30100}", 5),
        ("tg:-100:2", 1, "update", "tg:-100:1", "{}", 10),
        ("tg:-100:3", 1, "close", "tg:-100:1", "{}", 20),
        ("tg:-100:9", 1, "open", None, "{2000}", 15),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sid, ver, kind, ref, entries, sec in rows:
            ts = T0 + sec * S
            conn.execute(
                "INSERT INTO signals (id, version, source_chat, source_message_id, symbol, side, kind, "
                "entries, ref_id, trust, ts, ts_ns) VALUES (%s, %s, '-100', 1, 'BTC-USD', 'long', %s, %s, "
                "%s, 0.5, to_timestamp(%s / 1e9), %s)",
                (sid, ver, kind, entries, ref, ts, ts),
            )
    r = client.get("/v1/signals/tg:-100:1", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "close" and body["count"] == 4
    assert [(e["id"], e["version"], e["kind"]) for e in body["events"]] == [
        ("tg:-100:1", 1, "open"),
        ("tg:-100:1", 2, "open"),
        ("tg:-100:2", 1, "update"),
        ("tg:-100:3", 1, "close"),
    ]
    assert body["events"][1]["entries"] == [30100.0]
    assert client.get("/v1/signals/tg:-100:404", headers=h).status_code == 404
    assert client.get("/v1/signals/' OR '1'='1", headers=h).status_code == 422  # spaces: not an id
    assert client.get("/v1/signals/x'OR'1'='1", headers=h).status_code == 404  # a bind parameter: no match
