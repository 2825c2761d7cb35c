"""Reduce-only when execution reports stop (issue 15 item 1), live: `levibot run --live --venue paper` with NO paper
venue running, so the orders it sends to `orders` are never answered on `execution.reports`.

On the real broker and PostgreSQL, scraped by the real Prometheus server with the project's rules: after
``LEVIBOT_REPORTS_SILENCE_REDUCE_ONLY_S`` (5 s here; 30 s by default) the flow's execution-report watchdog sends a
signed ``reduce_only`` command for ``account:default`` on `control` (issuer ``levibot-flow``, the reason naming the
silence and the oldest unanswered order: the first order the flow sent); the flow verifies it like any command and
the account goes reduce-only (``levibot_trading_halted{cause="operator"}`` = 1, ``LevibotTradingHaltedByOperator``
fires); the command is in the audit table as applied; every order after it reduces what the account holds, and the
risk decisions after it carry the reduce-only reason. ``levibot_self_reduce_only_total{cause="reports_silent"}``
counts the command (1: once per silence, not once per check).
"""

from __future__ import annotations

import time

import psycopg
import pytest

from connectors.history import iter_tick_events, load_history
from connectors.kafka.sink import EventProducer
from schemas.events import ControlCommand, Order, RiskDecision
from tests.support import DATA, metrics, wait_for
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    create_topics,
    drop_topics,
    flow_env,
    free_ports,
    new_prefix,
    read_events,
)
from tests.support.prometheus import Prometheus, rules_with_short_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SILENCE_S = 5
MAX_BARS = 1500  # per file: 2 x 1500 bars x 8 ticks = 24,000 ticks


def test_silent_venue_puts_the_account_in_reduce_only_and_says_so(kafka_bootstrap, pg_dsn, tmp_path):
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=MAX_BARS)
    ticks = list(iter_tick_events(history.ticks))
    prefix = new_prefix("rsil")
    (port,) = free_ports(1)
    env = flow_env(
        prefix=prefix,
        var=tmp_path / "var",
        LEVIBOT_PG_DSN=pg_dsn,
        LEVIBOT_METRICS_PORT=str(port),
        LEVIBOT_REPORTS_SILENCE_REDUCE_ONLY_S=str(SILENCE_S),
    )
    prom = Prometheus(tmp_path, [f"127.0.0.1:{port}"], rules_with_short_for(tmp_path / "rules.yml"))
    proc = None
    try:
        create_topics(kafka_bootstrap, prefix)
        proc = FlowProc(
            ["run", "--live", "--venue", "paper", "--stores", "postgres", *BAR_ARGS], env, tmp_path / "flow.log"
        )
        out = EventProducer(kafka_bootstrap, f"{prefix}ticks")
        chunk, sent = 2 * 8 * 100, 0
        m = {}
        while True:  # the history in chunks of 100 bars until the flow has sent orders
            assert sent < len(ticks) // 2, "no order after half the history"
            out.send(ticks[sent : sent + chunk])
            out.flush(60)
            sent += chunk
            ingest = f'levibot_events_in_total{{stage="ingest",topic="{prefix}ticks"}}'
            m = wait_for(
                lambda: (lambda mm: mm if mm.get(ingest) == sent else None)(metrics(port)),  # noqa: B023 - called within this iteration
                120,
                f"{sent} ticks consumed",
                procs=[proc],
                retry_on=(OSError,),
            )
            if m.get("levibot_orders_unanswered", 0) > 0:
                break
        t_orders = time.monotonic()
        assert m.get('levibot_self_reduce_only_total{cause="reports_silent"}') == 0  # created at 0, not yet sent
        # the silence: no report comes; the watchdog sends its command, the account applies it
        cmds = wait_for(
            lambda: [
                c
                for c in read_events(kafka_bootstrap, f"{prefix}control", ControlCommand)
                if c.issuer == "levibot-flow"
            ],
            90,
            "the flow's reduce-only on control",
            procs=[proc],
            retry_on=(OSError,),
        )
        fired_after = time.monotonic() - t_orders
        wait_for(
            lambda: metrics(port).get('levibot_trading_halted{account="default",cause="operator"}') == 1,
            60,
            "the account reduce-only",
            procs=[proc],
            retry_on=(OSError,),
        )
        prom.wait_for({"LevibotTradingHaltedByOperator"}, 90, [proc], "the reduce-only alert")
        # more history: the account keeps deciding, reduce-only
        out.send(ticks[sent : sent + 8 * chunk])
        out.flush(60)
        sent += 8 * chunk
        wait_for(lambda: metrics(port).get(ingest) == sent, 120, "the rest consumed", procs=[proc], retry_on=(OSError,))
        time.sleep(2)
        m = metrics(port)
        orders = read_events(kafka_bootstrap, f"{prefix}orders", Order)
        decisions = read_events(kafka_bootstrap, f"{prefix}risk.decisions", RiskDecision)
        with psycopg.connect(pg_dsn) as conn:
            audit = conn.execute(
                "SELECT actor, action, scope, result, command_id, detail, ts_ns FROM audit WHERE action = 'reduce_only'"
            ).fetchall()
    finally:
        if proc is not None:
            proc.kill()
        prom.close()
        drop_topics(kafka_bootstrap, [prefix])

    [cmd] = cmds  # once per silence
    assert (cmd.action, cmd.scope, cmd.issuer) == ("reduce_only", "account:default", "levibot-flow")
    assert cmd.signature, "the command is signed"
    first = min(orders, key=lambda o: o.ts)
    assert "no execution report" in cmd.reason and f"within {SILENCE_S}s" in cmd.reason
    assert first.order_id in cmd.reason, (first.order_id, cmd.reason)  # the oldest unanswered order
    assert fired_after < SILENCE_S + 30
    assert m['levibot_self_reduce_only_total{cause="reports_silent"}'] == 1
    assert m['levibot_self_reduce_only_total{cause="orders_unpublishable"}'] == 0
    assert m["levibot_orders_unanswered"] >= 1 and m["levibot_oldest_unanswered_order_seconds"] >= SILENCE_S
    # in the audit trail, applied
    [(_actor, action, scope, result, command_id, _detail, effect_ts)] = audit
    assert (action, scope, result, command_id) == ("reduce_only", "account:default", "applied", cmd.id), audit[0]
    # no risk-increasing order after it took effect; the decisions after it say why
    after = [o for o in orders if o.ts > effect_ts]
    assert all(o.reduce_only for o in after), [o for o in after if not o.reduce_only][:3]
    later = [d for d in decisions if d.ts > effect_ts]
    assert later, "no decision after the command: the test did not exercise the reduce-only"
    for d in later:  # what the gate approved went out as orders that only reduce; what it rejected, not at all
        children = [o for o in orders if o.parent_id == d.id]
        if d.approved_qty > 0:
            assert children and all(o.reduce_only for o in children), (d.action, d.approved_qty, children)
        else:
            assert not children and d.reasons, (d.action, d.requested_qty, d.reasons, children)
    print(
        f"reduce-only sent {fired_after:.1f}s after the first orders were seen unanswered; {len(orders)} orders, "
        f"{len(after)} after it (all reducing), {len(later)} decisions after it "
        f"({sum(d.approved_qty > 0 for d in later)} approved as reducing orders); reason: {cmd.reason}"
    )
