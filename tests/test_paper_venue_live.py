"""Live end to end on the real broker: `levibot paper-venue` and the flow as separate processes. The flow books only
the venue's execution reports; partial fills, rejects and cancels happen; a position the venue never reported is
caught by reconciliation, alerted, and the account goes reduce-only."""

from __future__ import annotations

import logging
import signal
import time

import pytest

from schemas.events import Alert, ExecutionReport, Fill, Order

from .flowproc import BAR_ARGS, FlowProc, TopicCounter, create_topics, drop_topics, flow_env, new_prefix, read_events, run_ok

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
log = logging.getLogger(__name__)


def _stop(p: FlowProc, timeout_s: float = 60.0) -> None:
    p.proc.send_signal(signal.SIGTERM)
    p.wait_ok(timeout_s)


def test_paper_venue_and_flow_as_separate_processes(kafka_bootstrap, tmp_path):
    prefix = new_prefix("pv")
    env = flow_env(prefix=prefix, var=tmp_path / "var")
    procs: list[FlowProc] = []
    try:
        create_topics(kafka_bootstrap, prefix)
        venue = FlowProc(["paper-venue", "--participation", "0.002", "--ttl", "900", "--snapshot-every", "100",
                          "--max-order-notional", "12000", "--phantom", "BTC-USD:0.5:20"], env, tmp_path / "venue.log")
        flow = FlowProc(["run", "--live", "--venue", "paper", "--stores", "none", *BAR_ARGS], env, tmp_path / "flow.log")
        procs += [venue, flow]
        # ticks arrive as they would live: ~1,500 bars of both symbols over ~30 s
        run_ok(["replay", "--max-bars", "1500", "--speed", "100000", "--no-progress"], env, tmp_path / "replay.log", 180)
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        last, still = -1, 0
        while still < 5:  # until the flow has caught up (no new order for 5 s)
            n = orders.count()
            still = still + 1 if n == last else 0
            last = n
            time.sleep(1.0)
        orders.close()
        time.sleep(2.0)
        _stop(flow)
        _stop(venue)

        reports = read_events(kafka_bootstrap, f"{prefix}execution.reports", ExecutionReport)
        fills = read_events(kafka_bootstrap, f"{prefix}fills", Fill)
        alerts = read_events(kafka_bootstrap, f"{prefix}alerts", Alert)
        sent = read_events(kafka_bootstrap, f"{prefix}orders", Order)
        kinds = {}
        for r in reports:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        log.info("orders %d, reports %s, fills on the flow's topic %d", len(sent), kinds, len(fills))
        assert len(sent) > 20
        for k in ("ack", "partial_fill", "fill", "reject", "cancel", "positions"):
            assert kinds.get(k, 0) > 0, f"no {k} report: {kinds}"
        assert [r.seq for r in reports] == list(range(len(reports))), "one venue, one gap-free sequence"
        # the flow invented nothing: each of its fills is a fill report of the venue, and every position of the
        # account is the sum of the venue's fill reports
        venue_fills = [r for r in reports if r.kind in ("fill", "partial_fill")]
        assert len(fills) == len(venue_fills)
        for sym in ("BTC-USD", "ETH-USD"):
            book = sum(f.qty if f.side == "buy" else -f.qty for f in fills if f.symbol == sym)
            told = sum(r.last_qty if r.side == "buy" else -r.last_qty for r in venue_fills if r.symbol == sym)
            assert book == pytest.approx(told, abs=1e-9)
        assert {(f.order_id, f.qty) for f in fills} == {(r.client_order_id, r.last_qty) for r in venue_fills}
        # no order was executed twice: one terminal report per client order id at most
        terminal = [r.client_order_id for r in reports if r.kind in ("fill", "cancel", "reject", "expire")]
        assert len(terminal) == len(set(terminal))
        # the phantom position was caught: an alert naming both sides, and from then on only reductions
        mism = [a for a in alerts if a.kind == "reconciliation.mismatch"]
        assert mism and "BTC-USD: book" in mism[0].message and "vs venue" in mism[0].message
        since = int(mism[0].labels["account_ts"])
        later = [o for o in sent if o.ts > since]
        assert all(o.reduce_only for o in later), [o for o in later if not o.reduce_only][:3]
    finally:
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])


def test_flow_killed_with_orders_in_flight_applies_late_reports_once(kafka_bootstrap, tmp_path):
    """`kill -9` of the flow while the paper venue works its orders; the flow restarts from its snapshot. The orders it
    re-sends carry the same client ids (the venue executes none twice), the reports that arrived while it was down
    are applied exactly once (every later positions snapshot of the venue matches the book: no reconciliation
    mismatch), and the fills it publishes are exactly the venue's."""
    prefix = new_prefix("pvk")
    env = flow_env(prefix=prefix, var=tmp_path / "var")
    args = ["run", "--live", "--venue", "paper", "--stores", "none", *BAR_ARGS,
            "--recovery-dir", str(tmp_path / "recovery"), "--snapshot-interval", "1"]
    procs: list[FlowProc] = []
    try:
        create_topics(kafka_bootstrap, prefix)
        # slow fills (0.2 % of each tick), so that orders are always working when the flow dies
        venue = FlowProc(["paper-venue", "--participation", "0.002", "--ttl", "900", "--snapshot-every", "50"], env,
                         tmp_path / "venue.log")
        flow = FlowProc(args, env, tmp_path / "flow-1.log")
        replay = FlowProc(["replay", "--max-bars", "4000", "--speed", "40000", "--no-progress"], env,
                          tmp_path / "replay.log")
        procs += [venue, flow, replay]
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        reports_at = TopicCounter(kafka_bootstrap, f"{prefix}execution.reports")
        deadline = time.monotonic() + 180
        while orders.count() < 40:
            assert time.monotonic() < deadline and flow.running, "no orders from the flow: " + flow.tail()
            time.sleep(0.2)
        assert flow.kill9() == -9
        killed_at = reports_at.count()  # reports from here on were produced while the flow was down or later
        time.sleep(3.0)  # the venue goes on filling what it holds
        flow = FlowProc(args, env, tmp_path / "flow-2.log")
        procs.append(flow)
        replay.wait_ok(240)
        last, still = -1, 0
        while still < 6:  # until the flow has caught up (no new order or report for 6 s)
            n = orders.count() + reports_at.count()
            still = still + 1 if n == last else 0
            last = n
            time.sleep(1.0)
        orders.close()
        reports_at.close()
        _stop(flow)
        _stop(venue)

        reports = read_events(kafka_bootstrap, f"{prefix}execution.reports", ExecutionReport)
        fills = read_events(kafka_bootstrap, f"{prefix}fills", Fill)
        alerts = read_events(kafka_bootstrap, f"{prefix}alerts", Alert)
        sent = read_events(kafka_bootstrap, f"{prefix}orders", Order)
        assert [r.seq for r in reports] == list(range(len(reports))), "one venue, one gap-free sequence"
        # orders in flight across the crash: acknowledged before the kill, executed after it
        acked_before = {r.client_order_id for r in reports[:killed_at] if r.kind == "ack"}
        done_after = {r.client_order_id for r in reports[killed_at:] if r.kind in ("partial_fill", "fill")}
        across = acked_before & done_after
        log.info("orders %d (%d distinct), reports %d (%d after the kill), in flight across it %d, fills published %d",
                 len(sent), len({o.order_id for o in sent}), len(reports), len(reports) - killed_at, len(across),
                 len(fills))
        assert across, "no order was working across the kill: the test did not exercise the crash"
        # a re-sent order is the same order; the venue executed none twice
        by_id: dict[str, Order] = {}
        for o in sent:
            assert by_id.setdefault(o.order_id, o) == o, f"order id {o.order_id} reused for a different order"
        terminal = [r.client_order_id for r in reports if r.kind in ("fill", "cancel", "reject", "expire")]
        assert len(terminal) == len(set(terminal))
        acks = [r.client_order_id for r in reports if r.kind == "ack"]
        assert len(acks) == len(set(acks)), "the venue accepted a re-sent order a second time"
        # the book agreed with every snapshot the venue sent: late reports were applied once, none twice
        assert [r for r in reports if r.kind == "positions"][-1].seq > reports[killed_at - 1].seq
        mism = [a for a in alerts if a.kind == "reconciliation.mismatch"]
        assert not mism, mism[0].message
        # what the flow published as fills is what the venue reported (re-published copies share their id)
        venue_fills = [r for r in reports if r.kind in ("fill", "partial_fill")]
        uniq = {f.fill_id: f for f in fills}
        assert len(uniq) == len(venue_fills)
        assert sorted((f.order_id, f.qty) for f in uniq.values()) == sorted((r.client_order_id, r.last_qty)
                                                                           for r in venue_fills)
    finally:
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])
