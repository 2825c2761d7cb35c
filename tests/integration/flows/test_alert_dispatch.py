"""Alert dispatch end to end: real broker, the Faust dispatcher as a subprocess, real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka.admin import ensure_topics
from connectors.kafka.sink import EventProducer
from connectors.webhooks import ALERT_ID_HEADER, SignatureError, verify_signature
from schemas.codec import decode
from schemas.events import Alert, DeadLetter
from tests.support import read_all, wait_for
from tests.support.flowproc import free_port
from tests.support.http import Receiver
from tests.support.ingest import start_app, stop_app

pytestmark = pytest.mark.kafka

KEY_OPS, KEY_CHAT = "ops-signing-key-123", "chat-signing-key-456"
TS = 1_700_000_000_000_000_000  # ns


def alert(
    i: int | str, *, severity: str = "warning", kind: str = "risk.limit", key: str | None = None, ts_s: int = 0
) -> Alert:
    return Alert(
        id=f"al-{i}",
        severity=severity,
        kind=kind,
        message=f"alert {i}",
        labels={"symbol": "BTC-USDT"},
        dedupe_key=key or f"k-{i}",
        ts=TS + ts_s * 10**9,
    )


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """The dispatcher's /metrics as ``{(sample name, labels): value}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def sample(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_alerts_signed_routed_throttled_and_survive_receiver_outage(kafka_bootstrap, topic_prefix, tmp_path):
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["alerts", "dlq"])
    ops, chat = Receiver(), Receiver()
    dead_port = free_port()  # nobody listens there
    routes = {
        "destinations": [
            {
                "name": "ops",
                "url": ops.url("/ops"),
                "format": "json",
                "min_severity": "warning",
                "exclude_kinds": ["doomed"],
                "key_env": "T_KEY_OPS",
            },
            {
                "name": "slack",
                "url": chat.url("/slack"),
                "format": "slack",
                "min_severity": "critical",
                "key_env": "T_KEY_CHAT",
            },
            {
                "name": "tg",
                "url": chat.url("/tg"),
                "format": "telegram",
                "chat_id": -100777,
                "kinds": ["drift.*"],
                "min_severity": "info",
                "key_env": "T_KEY_CHAT",
            },
            {"name": "dead", "url": f"http://127.0.0.1:{dead_port}/x", "kinds": ["doomed"], "key_env": "T_KEY_OPS"},
        ],
        "throttle": {"window_s": 300, "max_per_window": 1},
        "retry": {"max_attempts": 12, "base_delay_s": 0.1, "max_delay_s": 0.5},
        "breaker": {"failure_threshold": 3, "reset_timeout_s": 0.5},
    }
    port = free_port()
    env = {
        "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEVIBOT_TOPIC_PREFIX": topic_prefix,
        "LEVIBOT_ALERT_ROUTES": json.dumps(routes),
        "LEVIBOT_ALERT_WEB_PORT": str(port),
        "LEVIBOT_VAR": str(tmp_path / "var"),
        "T_KEY_OPS": KEY_OPS,
        "T_KEY_CHAT": KEY_CHAT,
    }
    prod = EventProducer(kafka_bootstrap, topic_prefix + "alerts", key_fn=lambda a: a.kind.encode())
    proc = start_app("flows.alert_dispatch", env, port, tmp_path / "dispatch.log")
    try:
        # phase 1: routing, signing, throttling, duplicates, a bad payload, a dead destination
        prod.send(
            [
                alert(1),  # ops
                alert(2, severity="critical"),  # ops + slack
                alert(3, severity="info"),  # below every min_severity except tg's kinds: none
                alert(4, severity="info", kind="drift.model"),  # tg only
                alert(5, key="same", ts_s=0),
                alert(6, key="same", ts_s=10),  # 6 rate-limited (same key, 10 s later)
                alert(7, key="same", ts_s=20, severity="critical"),  # escalation passes: ops + slack
                alert(1),  # exact duplicate id: dropped
                alert(8, kind="doomed"),  # only the dead destination -> dlq delivery_failed
            ]
        )
        prod.produce_raw(b"risk.limit", b'{"event":"alert","id":"broken"')
        prod.flush()
        wait_for(lambda: len(set(ops.ids())) >= 4 and len(set(chat.ids())) >= 3, 30, "phase-1 deliveries")

        # phase 2: the ops receiver goes down; alerts wait (retried, the breaker opens, nothing is dead-lettered)
        # and all arrive once it is back
        before = scrape(port)
        ops.stop()
        prod.send([alert(f"o{i}") for i in range(20)])
        prod.flush()
        down = wait_for(
            lambda: (m := scrape(port)) and sample(m, "levibot_alerts_breaker_state", destination="ops") == 2 and m,
            30,
            "the ops breaker to open on the outage",
        )
        failed = sample(
            down, "levibot_alerts_delivery_attempts_total", destination="ops", outcome="connection_error"
        ) - sample(before, "levibot_alerts_delivery_attempts_total", destination="ops", outcome="connection_error")
        assert failed >= 3  # the breaker's failure threshold: the dispatcher tried the dead receiver
        assert sample(down, "levibot_alerts_in_flight", destination="ops") >= 1  # the alerts wait, not dropped
        assert (
            sample(down, "levibot_alerts_delivered_total", destination="ops")
            == sample(before, "levibot_alerts_delivered_total", destination="ops")
            == 4
        )
        assert sample(down, "levibot_alerts_dead_lettered_total", destination="ops") == 0
        ops.start()
        wait_for(lambda: {f"al-o{i}" for i in range(20)} <= set(ops.ids()), 30, "deliveries after the outage")
        wait_for(
            lambda: any(
                decode(m.value(), DeadLetter).error == "delivery_failed"
                for m in read_all(kafka_bootstrap, topic_prefix + "dlq")
            ),
            30,
            "delivery_failed dead letter",
        )
        # nothing left in flight anywhere: no retry (hence no duplicate) can still arrive
        wait_for(
            lambda: all(v == 0 for (n, _), v in scrape(port).items() if n == "levibot_alerts_in_flight"),
            30,
            "every delivery to finish",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
    finally:
        stop_app(proc)
        ops.stop()
        chat.stop()

    # routing and throttling
    assert sorted(set(ops.ids())) == sorted(["al-1", "al-2", "al-5", "al-7"] + [f"al-o{i}" for i in range(20)])
    assert sorted(chat.ids("/slack")) == ["al-2", "al-7"]
    assert chat.ids("/tg") == ["al-4"]
    # none lost, none duplicated: every id arrived exactly once at each destination (no timeouts happened here)
    assert len(ops.ids()) == len(set(ops.ids()))
    # payload formats
    by_id = {(p, h[ALERT_ID_HEADER]): json.loads(b) for p, h, b in chat.requests}
    assert by_id[("/tg", "al-4")]["chat_id"] == "-100777" and "drift.model" in by_id[("/tg", "al-4")]["text"]
    assert set(by_id[("/slack", "al-2")]) == {"text"} and "CRITICAL" in by_id[("/slack", "al-2")]["text"]
    ops_json = next(json.loads(b) for _, h, b in ops.requests if h[ALERT_ID_HEADER] == "al-1")
    assert (ops_json["id"], ops_json["severity"], ops_json["labels"]) == ("al-1", "warning", {"symbol": "BTC-USDT"})
    # every request is signed with its destination's key; a tampered or replayed one fails
    for rx, key in ((ops, KEY_OPS), (chat, KEY_CHAT)):
        for _, headers, body in rx.requests:
            verify_signature(body, headers, key.encode())
    _, h0, b0 = ops.requests[0]
    with pytest.raises(SignatureError):
        verify_signature(b0.replace(b"alert", b"alarm"), h0, KEY_OPS.encode())
    with pytest.raises(SignatureError):
        verify_signature(b0, h0, KEY_OPS.encode(), now=int(h0["X-Levibot-Timestamp"]) + 301)
    with pytest.raises(SignatureError):
        verify_signature(b0, h0, KEY_CHAT.encode())
    # dead letters: the broken payload and the undeliverable alert
    dls = {
        (d.error, d.stage)
        for d in (decode(m.value(), DeadLetter) for m in read_all(kafka_bootstrap, topic_prefix + "dlq"))
    }
    assert dls == {("invalid_json", "alert_dispatch"), ("delivery_failed", "alert_dispatch.dead")}
    # metrics
    assert 'levibot_alerts_delivered_total{destination="ops"} 24.0' in metrics
    assert 'levibot_alerts_suppressed_total{reason="rate_limited"} 1.0' in metrics
    assert 'levibot_alerts_suppressed_total{reason="duplicate"} 1.0' in metrics
    assert 'levibot_alerts_dead_lettered_total{destination="dead"} 1.0' in metrics
