"""connectors/metrics/, connectors/logging.py and connectors/tracing.py against real objects, a real HTTP scrape,
a real Bytewax recovery store and a real OTLP/HTTP receiver (the lag poller on the real Kafka:
tests/integration/connectors/test_metrics_live.py)."""

from __future__ import annotations

import http.server
import io
import json
import logging
import subprocess
import sys
import textwrap
import threading
import urllib.request

import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import connectors.logging as jlog
import connectors.metrics as cm
from connectors.history import load_history
from connectors.kafka.source import EventBatch
from connectors.memory import CollectSink
from connectors.metrics import METRIC_SPECS, FlowMetrics, metered_sink
from operators.pipeline import LocalPipeline
from schemas.events import DeadLetter, Fill, PortfolioSnapshot, RiskDecision, Score
from tests.support import REPO

TS = 1_700_000_000_000_000_000  # 2023-11-14, ns


def fm() -> FlowMetrics:
    return FlowMetrics(registry=CollectorRegistry())


def val(m: FlowMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_metric_catalogue_covers_the_issue():
    names = [s.name for s in METRIC_SPECS]
    assert len(names) == len(set(names))
    assert all(n.startswith("levibot_") for n in names)
    # exactly the declared metrics are registered, each with its declared kind (the client drops a counter's _total)
    registered = {f.name: f.type for f in fm().registry.collect()}
    assert registered == {
        (s.name.removesuffix("_total") if s.kind == "counter" else s.name): s.kind for s in METRIC_SPECS
    }
    required = {
        "levibot_events_in_total",
        "levibot_events_out_total",
        "levibot_stage_latency_seconds",
        "levibot_kafka_consumer_lag_messages",
        "levibot_late_ticks_total",
        "levibot_dead_letters_total",
        "levibot_score_probability",
        "levibot_drift_events_total",
        "levibot_risk_var_ratio",
        "levibot_risk_cvar_ratio",
        "levibot_risk_rejections_total",
        "levibot_orders_total",
        "levibot_fills_total",
        "levibot_equity_quote",
        "levibot_pnl_quote",
        "levibot_drawdown_ratio",
        "levibot_sink_write_seconds",
        "levibot_sink_failures_total",
        "levibot_circuit_breaker_state",
        "levibot_recovery_snapshots_total",
        "levibot_process_restarts_total",
        "levibot_kill_switch_engaged",
    }
    assert required <= set(names)
    for s in METRIC_SPECS:  # documented, with a unit or meaning
        assert len(s.help) > 20, s.name


def _history(max_bars: int = 1500):
    return load_history([REPO / "data/market/BTC-30m.csv.gz"], ticks_per_bar=8, max_bars=max_bars)


def test_batch_and_pipeline_outputs_are_counted_exactly():
    h = _history()
    from flows.embedded import EMBEDDED_PIPELINE

    df = h.ticks
    from schemas.events import Tick

    ticks = [
        Tick(
            symbol=r.symbol,
            ts=int(r.ts),
            price=float(r.price),
            qty=float(r.qty),
            side=r.side,
            trade_id=str(r.trade_id),
            venue=str(r.venue),
            synthetic=True,
        )
        for r in df.itertuples()
    ]
    dead = [
        DeadLetter(source_topic="ticks", partition=0, offset=7, error="decode_error", ts=ticks[0].ts),
        DeadLetter(source_topic="ticks", partition=0, offset=8, error="schema:price", ts=ticks[0].ts),
    ]
    m = fm()
    from dataclasses import replace

    sym = ticks[0].symbol
    p = LocalPipeline(replace(EMBEDDED_PIPELINE, symbols=(sym,)))
    totals = {"bars": 0, "orders": 0, "fills": 0, "decisions": 0, "late": 0}
    last_equity = first_equity = None
    with_bars = 0
    for i in range(0, len(ticks), 1000):
        chunk = ticks[i : i + 1000]
        batch = EventBatch(
            topic="ticks",
            partition=0,
            next_offset=i + len(chunk),
            events=chunk,
            dead=dead if i == 0 else [],
            received_ns=1,
        )
        m.observe_batch(batch)
        out = p.on_batch(sym, chunk, chunk[-1].ts)
        out.received_ns = 1
        m.observe_emitted(sym, out)
        for k in totals:
            totals[k] += len(getattr(out, k))
        with_bars += bool(out.bars)
        if out.marks:
            last_equity = out.marks[-1][1]
            first_equity = out.marks[-1][1] if first_equity is None else first_equity
    assert totals["orders"] > 0 and totals["fills"] > 0
    assert val(m, "levibot_events_in_total", stage="ingest", topic="ticks") == len(ticks) + 2
    assert val(m, "levibot_events_out_total", stage="bars", topic="bars") == totals["bars"]
    assert val(m, "levibot_events_out_total", stage="orders", topic="orders") == totals["orders"]
    orders = sum(
        val(m, "levibot_orders_total", symbol=sym, side=s, strategy=strategy, type="market") or 0
        for s in ("buy", "sell")
        for strategy in ("trend", "portfolio")
    )
    assert orders == totals["orders"]
    fills = sum(val(m, "levibot_fills_total", symbol=sym, side=s, liquidity="taker") or 0 for s in ("buy", "sell"))
    assert fills == totals["fills"]
    assert val(m, "levibot_dead_letters_total", reason="decode_error", source_topic="ticks", stage="decode") == 1
    assert val(m, "levibot_dead_letters_total", reason="schema", source_topic="ticks", stage="decode") == 1
    assert val(m, "levibot_equity_quote", symbol=sym) == pytest.approx(last_equity)
    assert val(m, "levibot_pnl_quote", symbol=sym) == pytest.approx(last_equity - first_equity)
    assert val(m, "levibot_last_event_timestamp_seconds", topic="ticks") == pytest.approx(ticks[-1].ts / 1e9)
    # latency: the monotonic clock is far past received_ns=1, so every observation is counted
    assert with_bars > 0
    assert val(m, "levibot_stage_latency_seconds_count", stage="tick_to_bar") == with_bars
    assert val(m, "levibot_batch_size_messages_count", topic="ticks") == len(range(0, len(ticks), 1000))


def test_decisions_risk_and_models():
    m = fm()
    snap = PortfolioSnapshot(equity=1e5, var=0.031, cvar=0.045, drawdown=0.1, positions={"BTC-USD": 0.5})
    ok = RiskDecision(
        id="rd1",
        intent_id="i1",
        symbol="BTC-USD",
        ts=TS,
        action="approved",
        requested_qty=1,
        approved_qty=1,
        var=0.01,
        cvar=0.015,
        portfolio=snap,
        strategy="trend",
        side="buy",
    )
    rej = RiskDecision(
        id="rd2",
        intent_id="i2",
        symbol="BTC-USD",
        ts=TS + 1,
        action="rejected",
        requested_qty=1,
        approved_qty=0,
        reasons=["fixed_fraction=0.5", "var_limit: 0.06 > 0.05", "kill_switch"],
        portfolio=snap,
        strategy="trend",
        side="buy",
    )
    from operators.pipeline import Emitted

    m.observe_emitted("BTC-USD", Emitted(decisions=[ok, rej]))
    assert val(m, "levibot_risk_decisions_total", action="approved", strategy="trend") == 1
    assert val(m, "levibot_risk_rejections_total", reason="var_limit") == 1
    assert val(m, "levibot_risk_rejections_total", reason="kill_switch") == 1
    assert val(m, "levibot_risk_rejections_total", reason="fixed_fraction") is None
    assert val(m, "levibot_risk_var_ratio", scope="portfolio") == pytest.approx(0.031)
    assert val(m, "levibot_risk_cvar_ratio", scope="BTC-USD") == pytest.approx(0.015)
    assert val(m, "levibot_position_qty", symbol="BTC-USD") == 0.5
    m.observe_scores(
        [
            Score(
                symbol="BTC-USD",
                ts=TS,
                model_versions={"river": "1"},
                raw={"river": 0.72},
                calibrated=0.66,
                ensemble=0.61,
            )
        ]
    )
    assert val(m, "levibot_score_probability_bucket", model="river", le="0.75") == 1
    assert val(m, "levibot_score_probability_bucket", model="river", le="0.7") == 0
    m.observe_drift("river", "adwin")
    assert val(m, "levibot_retrain_requests_total", model="river") == 1
    m.set_kill_switch(True)
    m.set_circuit_breaker("postgres", "open")
    m.set_risk_limit("var", 0.05)
    assert val(m, "levibot_kill_switch_engaged", scope="portfolio") == 1
    assert val(m, "levibot_circuit_breaker_state", breaker="postgres") == 2
    with pytest.raises(ValueError):
        m.observe_stage("tick_to_moon", 1.0)
    m.observe_equity("X", 100.0)
    m.observe_equity("X", 120.0)
    m.observe_equity("X", 90.0)
    assert val(m, "levibot_drawdown_ratio", symbol="X") == pytest.approx(0.25)
    assert val(m, "levibot_pnl_quote", symbol="X") == pytest.approx(-10.0)
    f = Fill(fill_id="f", order_id="o", symbol="X", side="buy", price=10.0, qty=2.0, fee=0.5, slippage_bps=3.0, ts=TS)
    m.observe_fills([f])
    assert val(m, "levibot_fill_notional_quote_total", symbol="X") == 20.0
    assert val(m, "levibot_fees_quote_total", symbol="X") == 0.5


def test_metrics_never_raise_into_the_flow(caplog):
    m = fm()
    m.observe_batch(object())
    m.observe_emitted("X", object())
    m.observe_dead([object()])
    assert "observe_batch failed" in caplog.text and "observe_emitted failed" in caplog.text


def test_metered_sink_times_and_counts_in_a_real_flow():
    m = fm()
    collected: list = []

    class Boom(CollectSink):
        def build(self, step_id, worker_index, worker_count):
            part = super().build(step_id, worker_index, worker_count)
            part.write_batch = lambda items: (_ for _ in ()).throw(RuntimeError("store down"))
            return part

    flow = Dataflow("metered")
    s = op.input("in", flow, TestingSource([[1, 2], [3], [4, 5, 6]]))
    op.output("ok", s, metered_sink(CollectSink(collected), "memory.ok", m))
    run_main(flow)
    assert collected == [1, 2, 3, 4, 5, 6]
    assert val(m, "levibot_sink_rows_total", sink="memory.ok") == 6
    assert val(m, "levibot_sink_write_seconds_count", sink="memory.ok") == 3  # one timed write per input batch
    flow2 = Dataflow("metered_fail")
    op.output("bad", op.input("in", flow2, TestingSource([[1]])), metered_sink(Boom([]), "memory.bad", m))
    with pytest.raises(Exception, match="error writing output batch"):
        run_main(flow2)
    assert val(m, "levibot_sink_failures_total", sink="memory.bad") == 1


def test_recovery_watcher_counts_snapshots_and_resumes(tmp_path):
    m = fm()
    init_db_dir(tmp_path, 1)

    def run(items):
        flow = Dataflow("rec")
        s = op.input("in", flow, TestingSource(items))
        s = op.stateful_map("sum", op.key_on("k", s, lambda _x: "k"), lambda st, x: ((st or 0) + x, (st or 0) + x))
        op.output("out", s, CollectSink([]))
        run_main(
            flow, epoch_interval=__import__("datetime").timedelta(0), recovery_config=RecoveryConfig(str(tmp_path))
        )

    run([1, 2, 3, 4, 5, TestingSource.ABORT(), 6])
    w = cm.RecoveryWatcher(tmp_path, m)
    w.poll_once()
    # epochs count from 1 and close after every item (epoch_interval 0): five items before the abort leave the
    # resume epoch at 6
    first = val(m, "levibot_recovery_committed_epoch")
    assert first == 6
    assert (val(m, "levibot_recovery_resumes_total") or 0) == 0
    run([1, 2, 3, 4, 5, TestingSource.ABORT(), 6, 7, 8])
    w.poll_once()
    assert val(m, "levibot_recovery_resumes_total") == 1
    assert val(m, "levibot_recovery_committed_epoch") == 7  # the resumed run stops at its abort one epoch later
    assert val(m, "levibot_recovery_snapshots_total") == 1


def test_metrics_server_serves_parsable_exposition():
    from tests.support.flowproc import free_ports

    base = free_ports(1)[0]
    reg = CollectorRegistry()
    port = cm.start_metrics_server(base - 2, process_id=2, processes=3, addr="127.0.0.1", registry=reg)
    assert port == base
    FlowMetrics(registry=reg).observe_input(5)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["levibot_process_info"].samples[0].labels == {"process": "2", "processes": "3"}
    assert fams["levibot_events_in"].samples[0].value == 5
    assert cm.metrics_port_for(0, 3) == 0


def _free_port() -> int:
    from tests.support.flowproc import free_ports

    return free_ports(1)[0]


def _non_loopback_address() -> str | None:
    """This host's address on its default route (a UDP "connect" sends nothing), None if it only has loopback."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1, never routed anywhere
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as r:
            return r.status == 200 and b"levibot_process_info" in r.read()
    except OSError:
        return False


def test_metrics_server_binds_loopback_by_default(monkeypatch):
    from tests.support.flowproc import listening_addresses

    monkeypatch.delenv("LEVIBOT_METRICS_HOST", raising=False)
    port = cm.start_metrics_server(_free_port(), registry=CollectorRegistry())
    assert listening_addresses(port) == {"127.0.0.1"}  # the socket's own bound address, from the kernel
    assert _answers("127.0.0.1", port)
    other = _non_loopback_address()
    if other is not None:  # not reachable from the network
        assert not _answers(other, port)
    # configured: LEVIBOT_METRICS_HOST, or an explicit address, opens it up
    monkeypatch.setenv("LEVIBOT_METRICS_HOST", "0.0.0.0")
    wide = cm.start_metrics_server(_free_port(), registry=CollectorRegistry())
    assert listening_addresses(wide) == {"0.0.0.0"} and _answers("127.0.0.1", wide)
    if other is not None:
        assert _answers(other, wide)
    explicit = cm.start_metrics_server(_free_port(), addr="127.0.0.1", registry=CollectorRegistry())
    assert listening_addresses(explicit) == {"127.0.0.1"}
    assert cm.metrics_host() == "0.0.0.0" and cm.metrics_host("::1") == "::1"
    monkeypatch.delenv("LEVIBOT_METRICS_HOST")
    assert cm.metrics_host() == "127.0.0.1" == cm.DEFAULT_METRICS_HOST


# -- logging -----------------------------------------------------------------------------------------------------
def test_json_logs_with_nested_correlation_and_exceptions():
    buf = io.StringIO()
    jlog.configure_logging(json=True, stream=buf, level="DEBUG")
    log = logging.getLogger("levibot.t")
    try:
        with jlog.correlation(batch_id=jlog.batch_id("ticks", 3, 1200)):
            log.info("batch")
            with jlog.correlation(signal_id="sig-1", order_id="ord-1"):
                try:
                    raise ValueError("bad")
                except ValueError:
                    log.exception("failed", extra={"n": 2, "obj": object()})
            log.info("after")
        log.info("outside")
    finally:
        jlog.configure_logging(json=False)
    recs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["msg"] for r in recs] == ["batch", "failed", "after", "outside"]
    assert recs[0]["batch_id"] == "ticks/3@1200" and "order_id" not in recs[0]
    assert recs[1]["signal_id"] == "sig-1" and recs[1]["order_id"] == "ord-1" and recs[1]["batch_id"] == "ticks/3@1200"
    assert "ValueError: bad" in recs[1]["exc"] and recs[1]["n"] == 2 and recs[1]["level"] == "error"
    assert "order_id" not in recs[2] and "batch_id" not in recs[3]
    with pytest.raises(ValueError), jlog.correlation(trade_id="x"):
        pass


# -- tracing -----------------------------------------------------------------------------------------------------
_TRACE_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from connectors import tracing
    on = tracing.configure_tracing("levibot-test")
    with tracing.span("produce", kind="producer") as s:
        headers = tracing.inject_headers([("k", b"v")])
    ctx = tracing.extract_context(headers)
    with tracing.span("consume", parent=ctx, kind="consumer") as c:
        child_trace = format(c.get_span_context().trace_id, "032x") if c is not None else None
    if on:
        from opentelemetry import trace
        trace.get_tracer_provider().force_flush()
    print(json.dumps({"on": on, "headers": [[k, v.decode()] for k, v in headers], "child_trace": child_trace}))
""")


def _run_trace_script(env: dict) -> dict:
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    e.update(env)
    res = subprocess.run(
        [sys.executable, "-c", _TRACE_SCRIPT, str(REPO)], capture_output=True, text=True, timeout=60, env=e, check=False
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_tracing_is_a_noop_without_an_endpoint():
    out = _run_trace_script({})
    assert out == {"on": False, "headers": [["k", "v"]], "child_trace": None}


def test_tracing_exports_spans_over_otlp_and_carries_context_in_headers():
    received: list[tuple[str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = _run_trace_script({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{srv.server_address[1]}"})
    finally:
        srv.shutdown()
    assert out["on"] is True
    hdr = dict(out["headers"])
    assert hdr["k"] == "v"
    version, trace_id, _span, _flags = hdr["traceparent"].split("-")
    assert version == "00" and out["child_trace"] == trace_id  # the consumer span continues the producer's trace
    assert received and all(path == "/v1/traces" for path, _ in received)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    names, traces = set(), set()
    for _, body in received:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            svc = {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"]
            assert svc == "levibot-test"
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    names.add(sp.name)
                    traces.add(sp.trace_id.hex())
    assert names == {"produce", "consume"} and traces == {trace_id}
