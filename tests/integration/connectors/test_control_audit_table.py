"""The control plane's append-only ``audit`` table against the real PostgreSQL: the audit events of applied and
refused commands written by the PostgreSQL sink, a re-emitted batch stored once (the pure side of the control plane:
tests/unit/operators/control/test_control.py)."""

from __future__ import annotations

import pytest

from operators.control import (
    ControlState,
    audit_event,
    sign,
    verify,
)
from schemas.events import AuditEvent, ControlCommand

T0 = 1_790_000_000_000_000_000
KEY = b"unit-test-key-0123456789abcdef"
KEYS = {"default": KEY}


def cmd(
    i: int, scope: str = "account:default", action: str = "halt", ts: int | None = None, **params: object
) -> ControlCommand:
    return ControlCommand(
        id=f"cmd-{i}",
        issuer="alice",
        scope=scope,
        action=action,  # type: ignore[arg-type]
        parameters=params,
        reason=f"because {i}",
        ts=T0 + i if ts is None else ts,
    )


def _audit_events() -> list[AuditEvent]:
    s = ControlState()
    cmds = [
        sign(cmd(1, "symbol:BTCUSD", "halt"), KEY),
        sign(cmd(2, "account:default", "set_limit", name="max_leverage", value=1.25), KEY),
        sign(cmd(3, "account:default", "set_limit", name="nope", value=1.0), KEY),
    ]
    out = [audit_event(c, s.apply(c)) for c in cmds]
    forged = sign(cmd(4, "account:default", "resume"), b"forged-key-0123456789")
    out.append(audit_event(forged, verify(forged, KEYS), source="flow"))
    return out


@pytest.mark.postgres
def test_audit_table_is_append_only_and_idempotent(pg_dsn):
    import psycopg
    from bytewax import operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSource, run_main

    from connectors.postgres.migrate import migrate
    from connectors.postgres.sink import PostgresSink

    migrate(pg_dsn)
    events = _audit_events()

    def write(batch):
        flow = Dataflow("audit_sink")
        op.output("pg", op.input("in", flow, TestingSource(batch)), PostgresSink(pg_dsn, "audit", AuditEvent))
        run_main(flow)

    write(events)
    write(events + events[:2])  # a recovery re-emits: nothing is stored twice
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT id, actor, action, scope, result, command_id, detail, parameters_digest, source, "
            "ts_ns, ts, recorded_at FROM audit ORDER BY ts_ns"
        ).fetchall()
        assert [r[0] for r in rows] == [e.id for e in sorted(events, key=lambda e: e.ts)]
        by_id = {r[0]: r for r in rows}
        for e in events:
            r = by_id[e.id]
            assert r[1:10] == (
                e.actor,
                e.action,
                e.scope,
                e.result,
                e.command_id,
                e.detail,
                e.parameters_digest,
                e.source,
                e.ts,
            )
            assert r[10].timestamp() == pytest.approx(e.ts / 1e9, abs=1e-6) and r[11] is not None
        assert [r[4] for r in rows] == ["applied", "applied", "refused", "refused"]

    statements = [
        ("UPDATE audit SET result = 'applied' WHERE result = 'refused'", "UPDATE"),
        ("UPDATE audit SET detail = '' WHERE false", "UPDATE"),  # even when it would touch no row
        ("DELETE FROM audit", "DELETE"),
        ("DELETE FROM audit WHERE id = %s", "DELETE"),
        ("TRUNCATE audit", "TRUNCATE"),
        (
            "INSERT INTO audit (id, actor, action, result, ts, ts_ns) SELECT id, actor, action, result, ts, ts_ns "
            "FROM audit ON CONFLICT (id) DO UPDATE SET detail = 'rewritten'",
            "UPDATE",
        ),
    ]
    for stmt, op_name in statements:
        with (
            psycopg.connect(pg_dsn) as conn,
            pytest.raises(
                psycopg.errors.RestrictViolation, match=f"audit is append-only: {op_name} on table audit is not allowed"
            ),
        ):
            conn.execute(stmt, (events[0].id,) if "%s" in stmt else None)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (len(events),)
        assert conn.execute("SELECT count(*) FROM audit WHERE detail = 'rewritten'").fetchone() == (0,)
        with pytest.raises(psycopg.errors.CheckViolation):  # the result values of the contract only
            conn.execute(
                "INSERT INTO audit (id, actor, action, result, ts, ts_ns) VALUES ('x', 'a', 'halt', 'maybe', now(), 1)"
            )
