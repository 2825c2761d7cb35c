"""A halt sent through `levibot api` stops a running live flow (real broker, real PostgreSQL): the signed command
reaches the flow over `control`, the flow applies it and audits it, no order follows it, and the audit table holds
both the API's row and the flow's for the same command."""

from __future__ import annotations

import secrets
import signal

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
from operators.api.keys import make_token, parse_token
from schemas.events import AuditEvent, Order
from tests.support import metric_total, wait_for
from tests.support.api import FAST
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    TopicCounter,
    create_topics,
    drop_topics,
    flow_env,
    free_ports,
    new_prefix,
    read_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
KEY = "api-flow-live-control-key-0123456789"


def test_halt_through_the_api_stops_a_running_flow(kafka_bootstrap, pg_dsn, tmp_path):
    prefix = new_prefix("api")
    migrate(pg_dsn)
    env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_CONTROL_KEY=KEY, LEVIBOT_PG_DSN=pg_dsn)
    procs: list[FlowProc] = []
    s = Settings.from_env(
        {
            "LEVIBOT_PG_DSN": pg_dsn,
            "LEVIBOT_CONTROL_KEY": KEY,
            "LEVIBOT_TOPIC_PREFIX": prefix,
            "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        }
    )
    ctx = ApiContext(
        settings=s, api=ApiSettings(), db=ApiDatabase(pg_dsn, max_size=2), limiter=RateLimiter(), hasher=FAST
    )
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid = parse_token(tok)[0]
    try:
        create_topics(kafka_bootstrap, prefix)
        procs.append(
            FlowProc(
                ["replay", "--max-bars", "6000", "--speed", "60000", "--no-progress"], env, tmp_path / "replay.log"
            )
        )
        m_port = free_ports(1)[0]
        flow = FlowProc(
            ["run", "--live", "--venue", "sim", "--stores", "postgres", *BAR_ARGS],
            dict(env, LEVIBOT_METRICS_PORT=str(m_port)),
            tmp_path / "flow.log",
        )
        procs.append(flow)
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        wait_for(lambda: orders.count() > 20 or not flow.running, 120.0, "the first orders", interval_s=0.5)
        assert flow.running, flow.tail()
        with TestClient(create_app(ctx)) as client:
            ctx.db.create_key(
                key_id=kid,
                name="desk",
                secret_hash=FAST.hash(parse_token(tok)[1]),
                scopes=["trade"],
                tier="pro",
                accounts=["default"],
                rate="",
                created_by="pytest",
                expires_at=None,
            )
            r = client.post(
                "/v1/control/halt",
                json={"scope": "account:default", "reason": "api live test"},
                headers={"X-API-Key": tok},
            )
            assert r.status_code == 202, r.text
            cmd_id = r.json()["command_id"]

            def applied() -> list[AuditEvent]:
                return [
                    a
                    for a in read_events(kafka_bootstrap, f"{prefix}audit", AuditEvent)
                    if a.command_id == cmd_id and a.result == "applied"
                ]

            halt = wait_for(applied, 120.0, "the flow to apply the API's halt", interval_s=0.5)[0]
            assert halt.actor == f"api:{kid}" and halt.action == "halt" and halt.source == "flow"
            n = orders.count()
            # the flow goes on reading ticks while halted: 1,600 more (100 decision bars of each symbol), or the
            # whole replay (2 files x 6,000 bars x 8 ticks)
            read = wait_for(
                lambda: metric_total(m_port, "levibot_events_in_total", stage="ingest", topic=f"{prefix}ticks"),
                30,
                "the flow's ingest count",
                procs=[flow],
                retry_on=(OSError,),
            )
            wait_for(
                lambda: (
                    metric_total(m_port, "levibot_events_in_total", stage="ingest", topic=f"{prefix}ticks")
                    >= min(read + 1_600, 2 * 6_000 * 8)
                ),
                60,
                "ticks read while halted",
                procs=[flow],
                retry_on=(OSError,),
            )
            status = client.get("/v1/status", headers={"X-API-Key": tok}).json()
            assert status["control"]["modes"]["account:default"]["mode"] == "halted"
        sent = read_events(kafka_bootstrap, f"{prefix}orders", Order)
        after = [o for o in sent if o.ts > halt.ts]
        assert not after, f"{len(after)} orders after the halt (of {len(sent)}; {orders.count() - n} since)"
        orders.close()
        flow.proc.send_signal(signal.SIGTERM)
        flow.wait_ok(60)
        with psycopg.connect(pg_dsn) as conn:
            rows = conn.execute(
                "SELECT source, actor, action, result FROM audit WHERE command_id = %s ORDER BY source", (cmd_id,)
            ).fetchall()
        assert rows == [("api", f"api:{kid}", "api.control.halt", "applied"), ("flow", f"api:{kid}", "halt", "applied")]
    finally:
        ctx.close()
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])
