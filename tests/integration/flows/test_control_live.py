"""`levibot control` on a running live flow (real broker, real PostgreSQL): a signed halt stops every order from the
event time at which the account applied it, survives a `kill -9` and a recovery, a forged resume is refused, and the
signed resume restores trading; the audit trail has all of it (topic and append-only table)."""

from __future__ import annotations

import logging
import signal

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from connectors.metrics import FlowMetrics, RecoveryWatcher
from schemas.events import AuditEvent, DeadLetter, Fill, Order, RiskDecision
from tests.support import wait_for
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    TopicCounter,
    create_topics,
    drop_topics,
    flow_env,
    new_prefix,
    read_events,
    run_ok,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
log = logging.getLogger(__name__)
KEY = "control-key-for-the-live-test-0123456789"


def test_halt_survives_kill9_forged_refused_resume_restores(kafka_bootstrap, pg_dsn, tmp_path):
    prefix = new_prefix("ctl")
    env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_CONTROL_KEY=KEY, LEVIBOT_PG_DSN=pg_dsn)
    forged_env = dict(env, LEVIBOT_CONTROL_KEY="not-the-flow-key-at-all-0123456789")
    args = [
        "run",
        "--live",
        "--venue",
        "sim",
        "--stores",
        "postgres",
        *BAR_ARGS,
        "--recovery-dir",
        str(tmp_path / "recovery"),
        "--snapshot-interval",
        "1",
    ]
    procs: list[FlowProc] = []
    audit_topic = f"{prefix}audit"

    recovery = RecoveryWatcher(tmp_path / "recovery", FlowMetrics(registry=CollectorRegistry()))

    def snapshots() -> tuple[int, int]:
        """(the latest snapshot epoch that every recovery partition has committed, executions of the dataflow)"""
        parts = recovery._read().values()
        epochs = [e for e, _ in parts]
        return (min(epochs) if epochs and None not in epochs else -1), max((x for _, x in parts), default=0)

    def applied(action: str) -> list[AuditEvent]:
        return [
            a
            for a in read_events(kafka_bootstrap, audit_topic, AuditEvent)
            if a.action == action and a.result == "applied"
        ]

    try:
        create_topics(kafka_bootstrap, prefix)
        replay = FlowProc(
            ["replay", "--max-bars", "6000", "--speed", "60000", "--no-progress"], env, tmp_path / "replay.log"
        )
        procs.append(replay)
        flow = FlowProc(args, env, tmp_path / "flow-1.log")
        procs.append(flow)
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        wait_for(lambda: orders.count() > 20, 120.0, "the first orders", interval_s=0.5)
        run_ok(["control", "halt", "--reason", "live test"], env, tmp_path / "halt.log", 60)
        wait_for(lambda: applied("halt"), 120.0, "the halt to be applied", interval_s=0.5)
        at_halt, _ = snapshots()
        # three snapshots (1 s apart) after the one committed when the halt was seen: the halt is in the state
        wait_for(lambda: snapshots()[0] >= at_halt + 3, 60, "snapshots after the halt", procs=[flow])
        assert flow.kill9() == -9
        at_kill = snapshots()[0]
        flow = FlowProc(args, env, tmp_path / "flow-2.log")  # resumes from its snapshot
        procs.append(flow)
        # the restarted flow runs from its snapshot: a second execution, which has committed snapshots of its own
        wait_for(
            lambda: (lambda e, x: x >= 2 and e >= at_kill + 2)(*snapshots()),
            90,
            "the restarted flow to resume and snapshot",
            procs=[flow],
        )
        run_ok(["control", "resume", "--reason", "forged"], forged_env, tmp_path / "forged.log", 60)
        wait_for(
            lambda: [d for d in read_events(kafka_bootstrap, f"{prefix}dlq", DeadLetter) if d.stage == "control"],
            120.0,
            "the forged command in the dead-letter topic",
            interval_s=0.5,
        )
        # the flow goes on for three more snapshots after the refusal, still halted (checked below: no order
        # between the halt and the real resume)
        at_refusal, _ = snapshots()
        wait_for(lambda: snapshots()[0] >= at_refusal + 3, 60, "snapshots after the refusal", procs=[flow])
        run_ok(["control", "resume", "--reason", "live test over"], env, tmp_path / "resume.log", 60)
        resume = wait_for(lambda: applied("resume"), 120.0, "the resume to be applied", interval_s=0.5)[0]
        n = orders.count()
        wait_for(lambda: orders.count() > n + 5, 180, "orders after the resume", interval_s=0.5)
        orders.close()
        flow.proc.send_signal(signal.SIGTERM)
        flow.wait_ok(60)

        sent = read_events(kafka_bootstrap, f"{prefix}orders", Order)
        halts = applied("halt")
        t_halt = min(a.ts for a in halts)
        t_resume = resume.ts
        log.info("halt at %d, resume at %d (event time); %d orders", t_halt, t_resume, len(sent))
        assert t_resume > t_halt
        # nothing decided and nothing executed while halted. The in-process venue is handed a parent's TWAP
        # children at once, each stamped with its release time, so a parent approved just before the halt has
        # children on `orders` with a later event time: the halt cancels those at the venue (none fills)
        decided = [
            d
            for d in read_events(kafka_bootstrap, f"{prefix}risk.decisions", RiskDecision)
            if t_halt < d.ts <= t_resume and d.approved_qty > 0
        ]
        assert not decided, f"{len(decided)} orders approved while halted, first {decided[0]}"
        parents_before = {
            d.id for d in read_events(kafka_bootstrap, f"{prefix}risk.decisions", RiskDecision) if d.ts <= t_halt
        }
        during = [o for o in sent if t_halt < o.ts <= t_resume]
        assert all(o.parent_id in parents_before for o in during), (
            f"an order while halted that no decision before the halt sent: {during}"
        )
        filled = [f for f in read_events(kafka_bootstrap, f"{prefix}fills", Fill) if t_halt < f.ts <= t_resume]
        assert not filled, f"{len(filled)} fills while halted, first {filled[0]}"
        assert [o for o in sent if o.ts > t_resume and not o.reduce_only], "trading resumed"
        audit = read_events(kafka_bootstrap, audit_topic, AuditEvent)
        refused = [a for a in audit if a.result == "refused"]
        assert refused and all(a.action == "resume" and "bad_signature" in a.detail for a in refused)
        with psycopg.connect(pg_dsn) as conn:
            rows = conn.execute(
                "SELECT action, result, command_id FROM audit WHERE command_id = ANY(%s)",
                ([a.command_id for a in audit],),
            ).fetchall()
        got = {(r[0], r[1]) for r in rows}
        assert {("halt", "applied"), ("resume", "applied"), ("resume", "refused")} <= got
        assert len({r[2] for r in rows if r[0] == "halt"}) == 1, "the halt is one command, audited once per result"
    finally:
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])
