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
                          "--max-order-notional", "12000", "--phantom", "BTC-USD:0.5:60"], env, tmp_path / "venue.log")
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
