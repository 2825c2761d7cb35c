"""Cancel requests to a remote venue, live: `levibot paper-venue` and the flow as separate processes on the real
broker, a halt cancels what is still working at the venue (the execution stage's and the venue's rules:
tests/unit/operators/execution/test_remote_cancels.py)."""

from __future__ import annotations

import pytest

from schemas.events import CancelRequest, ExecutionReport, Order
from tests.support import wait_for


@pytest.mark.kafka
@pytest.mark.slow
def test_a_halt_cancels_what_is_working_at_the_paper_venue(kafka_bootstrap, tmp_path):
    """The venue fills slowly (0.001 % of each trade's quantity, no expiry), so orders are still working when the
    operator halts: the flow sends one cancel request per working order on `order.cancels`, the venue cancels each
    remainder, nothing is left working, no order follows the halt, and the book is still exactly the venue's fills."""
    from schemas.events import AuditEvent, Fill
    from tests.support import metric_total
    from tests.support.flowproc import (
        BAR_ARGS,
        FlowProc,
        create_topics,
        drop_topics,
        flow_env,
        free_ports,
        new_prefix,
        read_events,
        run_ok,
        topic_count,
    )

    prefix = new_prefix("cxl")
    env = flow_env(prefix=prefix, var=tmp_path / "var")
    procs: list[FlowProc] = []

    def working() -> set[str]:
        reps = read_events(kafka_bootstrap, f"{prefix}execution.reports", ExecutionReport)
        acked = {r.client_order_id for r in reps if r.kind == "ack"}
        return acked - {r.client_order_id for r in reps if r.kind in ("fill", "cancel", "reject", "expire")}

    try:
        create_topics(kafka_bootstrap, prefix)
        venue = FlowProc(
            ["paper-venue", "--participation", "0.00001", "--ttl", "1000000", "--snapshot-every", "100"],
            env,
            tmp_path / "venue.log",
        )
        m_port = free_ports(1)[0]
        flow = FlowProc(
            ["run", "--live", "--venue", "paper", "--stores", "none", *BAR_ARGS],
            dict(env, LEVIBOT_METRICS_PORT=str(m_port)),
            tmp_path / "flow.log",
        )
        replay = FlowProc(
            ["replay", "--max-bars", "6000", "--speed", "60000", "--no-progress"], env, tmp_path / "replay.log"
        )
        procs += [venue, flow, replay]
        wait_for(lambda: len(working()) >= 2, 150.0, "orders working at the venue", interval_s=0.5)
        run_ok(["control", "halt", "--reason", "cancel test"], env, tmp_path / "halt.log", 60)
        halt = wait_for(
            lambda: [
                a
                for a in read_events(kafka_bootstrap, f"{prefix}audit", AuditEvent)
                if a.action == "halt" and a.result == "applied"
            ],
            150.0,
            "the halt to be applied",
            interval_s=0.5,
        )[0]
        cancels = wait_for(
            lambda: read_events(kafka_bootstrap, f"{prefix}order.cancels", CancelRequest),
            150.0,
            "cancel requests",
            interval_s=0.5,
        )
        wait_for(lambda: not working(), 60, "every working order to end", interval_s=0.5)

        def ticks_read() -> float:
            return metric_total(m_port, "levibot_events_in_total", stage="ingest", topic=f"{prefix}ticks")

        # the flow goes on deciding (halted) on the ticks that keep coming: 1,600 more (100 decision bars of each
        # symbol), or the whole replay (2 files x 6,000 bars x 8 ticks)
        read = wait_for(ticks_read, 30, "the flow's ingest count", procs=[flow], retry_on=(OSError,))
        wait_for(
            lambda: ticks_read() >= min(read + 1_600, 2 * 6_000 * 8),
            60,
            "ticks read while halted",
            procs=[flow],
            retry_on=(OSError,),
        )
        replay.kill()
        # then everything the replay sent is read before the stop
        wait_for(
            lambda: ticks_read() == topic_count(kafka_bootstrap, f"{prefix}ticks"),
            60,
            "every tick read",
            procs=[flow],
            retry_on=(OSError,),
        )
        for p in (flow, venue):
            p.proc.send_signal(__import__("signal").SIGTERM)
            p.wait_ok(60)

        reps = read_events(kafka_bootstrap, f"{prefix}execution.reports", ExecutionReport)
        sent = read_events(kafka_bootstrap, f"{prefix}orders", Order)
        cancels = read_events(kafka_bootstrap, f"{prefix}order.cancels", CancelRequest)
        fills = read_events(kafka_bootstrap, f"{prefix}fills", Fill)
        assert len({c.id for c in cancels}) == len(cancels) == len({c.client_order_id for c in cancels})
        assert all(c.reason == "operator_halt" and c.ts >= halt.ts for c in cancels)
        by_order: dict[str, list[ExecutionReport]] = {}
        for r in reps:
            if r.client_order_id:
                by_order.setdefault(r.client_order_id, []).append(r)
        halted = [by_order[c.client_order_id][-1] for c in cancels]
        # each ended: cancelled by the request, or already ended at the venue (filled, refused) before it came
        bad = [(r.kind, r.reason, r.client_order_id) for r in halted if r.kind not in ("cancel", "fill", "reject")]
        assert not bad, (bad, len(halted))
        assert sum(r.kind == "cancel" and r.reason == "operator_halt" for r in halted) >= 2
        terminal = [r.client_order_id for r in reps if r.kind in ("fill", "cancel", "reject", "expire")]
        assert len(terminal) == len(set(terminal)), "no order ends twice"
        assert not [o for o in sent if o.ts > halt.ts], "no order after the halt"
        last = [r for r in reps if r.kind == "positions"][-1]
        assert last.open_orders == [], "nothing is left working at the venue"
        venue_fills = [r for r in reps if r.kind in ("fill", "partial_fill")]
        assert {(f.order_id, f.qty) for f in fills} == {(r.client_order_id, r.last_qty) for r in venue_fills}
        for sym in ("BTC-USD", "ETH-USD"):
            book = sum(f.qty if f.side == "buy" else -f.qty for f in fills if f.symbol == sym)
            assert book == pytest.approx(last.positions.get(sym, 0.0), abs=1e-9)
    finally:
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])
