"""Prometheus metrics of LeviBot Stream: every ``levibot_*`` metric, and the hooks the flows call.

All metrics are declared once in :data:`METRIC_SPECS` (name, type, labels, unit in the help text);
:class:`LevibotMetrics` builds them on a registry, :class:`FlowMetrics` turns what the flow already
produces (input batches, pipeline outputs, dead letters, sink writes) into observations, and
:func:`start_metrics_server` serves ``/metrics``.

Multi-process clusters
----------------------
A Bytewax cluster is N independent OS processes (``levibot run --live --processes N --process-id i``).
Each process keeps its own registry and serves its own HTTP endpoint; Prometheus scrapes every process
as a separate target and aggregates with ``sum()``. prometheus-client's *multiprocess mode* is **not**
used: it exists for pre-forked web servers sharing one port, while our processes are peers that may
run on different hosts.

- Several processes on one host: process ``i`` listens on ``base_port + i``
  (:func:`metrics_port_for`), so ports never collide; list each port as a scrape target.
- One process per pod or container (k8s StatefulSet, docker-compose): every process uses the same
  base port on its own address; the scrape target (``instance``, ``pod``) tells them apart.

The endpoint binds 127.0.0.1 unless configured (``LEVIBOT_METRICS_HOST``): a process on a shared host is not
reachable from the network by accident. Containers set ``LEVIBOT_METRICS_HOST=0.0.0.0`` (docker-compose.yml, k8s/).

Every process also exports ``levibot_process_info{process="<id>",processes="<n>"} 1`` so that a series
can be joined to its cluster index (``* on(instance) group_left(process) levibot_process_info``);
the process id is deliberately *not* a label on every metric.

Cardinality: labels only take values from bounded sets (stages, registry topics, reason codes,
symbols, strategies, models, sink names). Free text never becomes a label.

>>> from prometheus_client import CollectorRegistry
>>> m = FlowMetrics(registry=CollectorRegistry())
>>> m.observe_sink("postgres.orders", 0.012, ok=True, rows=3)
>>> m.registry.get_sample_value("levibot_sink_rows_total", {"sink": "postgres.orders"})
3.0
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.registry import REGISTRY

log = logging.getLogger(__name__)

#: Latency buckets, seconds: 0.5 ms .. 60 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Probability buckets for score distributions: 0.05 steps.
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
#: Batch size buckets, messages.
BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000)
#: Slippage buckets, basis points.
SLIPPAGE_BUCKETS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)

#: Stage names of ``levibot_stage_latency_seconds`` (documented in docs/observability.md).
LATENCY_STAGES = ("tick_to_bar", "bar_to_score", "score_to_order", "decision")
#: Circuit breaker states as gauge values.
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
PORTFOLIO = "portfolio"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``kind`` is counter, gauge or histogram; ``help`` states the unit."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


METRIC_SPECS: tuple[MetricSpec, ...] = (
    # -- flow throughput ----------------------------------------------------------------------------------------
    MetricSpec(
        "levibot_events_in_total",
        "counter",
        "Events entering a stage, by stage and topic (count; dead letters included at ingest).",
        ("stage", "topic"),
    ),
    MetricSpec(
        "levibot_events_out_total",
        "counter",
        "Events leaving a stage, by stage and output topic or table (count).",
        ("stage", "topic"),
    ),
    MetricSpec(
        "levibot_batch_size_messages",
        "histogram",
        "Messages per consumed input batch (count).",
        ("topic",),
        BATCH_BUCKETS,
    ),
    MetricSpec(
        "levibot_last_batch_timestamp_seconds",
        "gauge",
        "Wall-clock time the last input batch was processed, Unix seconds (stall detection).",
        ("topic",),
    ),
    MetricSpec(
        "levibot_last_event_timestamp_seconds",
        "gauge",
        "Event time of the newest event seen, Unix seconds.",
        ("topic",),
    ),
    MetricSpec(
        "levibot_stage_latency_seconds",
        "histogram",
        "Processing latency per stage, seconds: tick_to_bar (batch received -> bars emitted), bar_to_score, "
        "score_to_order, decision (batch received -> orders emitted).",
        ("stage",),
        LATENCY_BUCKETS,
    ),
    MetricSpec(
        "levibot_kafka_consumer_lag_messages",
        "gauge",
        "Messages between the partition's high watermark and the flow's read position (count).",
        ("topic", "partition"),
    ),
    MetricSpec(
        "levibot_late_ticks_total", "counter", "Ticks that arrived after their bar closed (count).", ("symbol",)
    ),
    MetricSpec(
        "levibot_dead_letters_total",
        "counter",
        "Inputs rejected to the dlq topic, by reason code, source topic and stage (count).",
        ("reason", "source_topic", "stage"),
    ),
    # -- models -------------------------------------------------------------------------------------------------
    MetricSpec(
        "levibot_score_probability",
        "histogram",
        "Distribution of model scores, probability in [0, 1], by model (ensemble and calibrated included).",
        ("model",),
        PROBABILITY_BUCKETS,
    ),
    MetricSpec(
        "levibot_model_calibration_error",
        "gauge",
        "Expected calibration error of a model's probabilities on matured labels (fraction).",
        ("model",),
    ),
    MetricSpec(
        "levibot_drift_events_total",
        "counter",
        "Drift detections, by model and detector (count).",
        ("model", "detector"),
    ),
    MetricSpec("levibot_retrain_requests_total", "counter", "Retrain requests raised, by model (count).", ("model",)),
    # -- risk ---------------------------------------------------------------------------------------------------
    MetricSpec(
        "levibot_risk_var_ratio",
        "gauge",
        "Value at risk, one period, positive loss as a fraction of equity; scope is a symbol or 'portfolio'.",
        ("scope",),
    ),
    MetricSpec(
        "levibot_risk_cvar_ratio",
        "gauge",
        "Conditional VaR (expected shortfall), positive loss as a fraction of equity; scope is a symbol or "
        "'portfolio'.",
        ("scope",),
    ),
    MetricSpec(
        "levibot_risk_limit_ratio",
        "gauge",
        "Configured risk limit, fraction of equity, by limit name (var, cvar, drawdown, ...) and scope.",
        ("limit", "scope"),
    ),
    MetricSpec(
        "levibot_risk_decisions_total",
        "counter",
        "Risk-gate verdicts, by action (approved, resized, rejected) and strategy (count).",
        ("action", "strategy"),
    ),
    MetricSpec("levibot_risk_rejections_total", "counter", "Rejected intents by reason code (count).", ("reason",)),
    MetricSpec(
        "levibot_kill_switch_engaged", "gauge", "1 while the drawdown kill switch halts trading, else 0.", ("scope",)
    ),
    MetricSpec(
        "levibot_trading_halted",
        "gauge",
        "1 while an account may not add risk, by cause: operator (halt or reduce-only command), kill_switch "
        "(drawdown), reconciliation (book and venue disagree); else 0.",
        ("account", "cause"),
    ),
    MetricSpec(
        "levibot_reconciliation_mismatches_total",
        "counter",
        "Venue position snapshots that disagreed with the account's book (count).",
        ("account",),
    ),
    MetricSpec(
        "levibot_control_commands_total",
        "counter",
        "Operator commands handled by the flow, by result (applied, refused, duplicate) (count).",
        ("result",),
    ),
    # -- trading ------------------------------------------------------------------------------------------------
    MetricSpec("levibot_orders_total", "counter", "Orders emitted (count).", ("symbol", "side", "strategy", "type")),
    MetricSpec("levibot_fills_total", "counter", "Fills received (count).", ("symbol", "side", "liquidity")),
    MetricSpec("levibot_fill_notional_quote_total", "counter", "Filled notional, quote currency.", ("symbol",)),
    MetricSpec("levibot_fees_quote_total", "counter", "Fees paid, quote currency.", ("symbol",)),
    MetricSpec(
        "levibot_fill_slippage_bps",
        "histogram",
        "Slippage of fills against the reference price, bps.",
        ("symbol",),
        SLIPPAGE_BUCKETS,
    ),
    MetricSpec("levibot_position_qty", "gauge", "Signed position after the last decision, base units.", ("symbol",)),
    MetricSpec("levibot_equity_quote", "gauge", "Equity marked at the last decision bar, quote currency.", ("symbol",)),
    MetricSpec(
        "levibot_pnl_quote",
        "gauge",
        "Profit and loss since the process first saw the symbol, quote currency.",
        ("symbol",),
    ),
    MetricSpec("levibot_drawdown_ratio", "gauge", "Drawdown from the equity peak, fraction of the peak.", ("symbol",)),
    # -- sinks and resilience -----------------------------------------------------------------------------------
    MetricSpec(
        "levibot_sink_write_seconds",
        "histogram",
        "Duration of one sink batch write, seconds.",
        ("sink",),
        LATENCY_BUCKETS,
    ),
    MetricSpec("levibot_sink_rows_total", "counter", "Rows or messages written by a sink (count).", ("sink",)),
    MetricSpec("levibot_sink_failures_total", "counter", "Failed sink batch writes (count).", ("sink",)),
    MetricSpec(
        "levibot_circuit_breaker_state", "gauge", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ("breaker",)
    ),
    MetricSpec(
        "levibot_orders_unanswered",
        "gauge",
        "Orders sent to a remote venue with no execution report yet (count; the execution-report watchdog).",
        (),
    ),
    MetricSpec(
        "levibot_oldest_unanswered_order_seconds",
        "gauge",
        "Wall-clock age of the oldest order without an execution report, seconds (0 when none).",
        (),
    ),
    MetricSpec(
        "levibot_self_reduce_only_total",
        "counter",
        "Signed reduce_only commands the flow sent itself, by cause: orders_unpublishable (the kafka.orders "
        "breaker stayed open), reports_silent (no execution report within the watchdog's bound) (count).",
        ("cause",),
    ),
    MetricSpec(
        "levibot_recovery_snapshots_total",
        "counter",
        "Recovery snapshots (epochs) committed by this process's recovery partitions (count).",
        (),
    ),
    MetricSpec("levibot_recovery_committed_epoch", "gauge", "Latest committed recovery epoch (epoch number).", ()),
    MetricSpec(
        "levibot_recovery_resumes_total",
        "counter",
        "Executions resumed from a recovery snapshot after the first, as recorded by the recovery store.",
        (),
    ),
    MetricSpec(
        "levibot_process_restarts_total",
        "counter",
        "Starts of this process that found earlier recovery state (count; 0 on a fresh start).",
        (),
    ),
    MetricSpec(
        "levibot_process_info",
        "gauge",
        "Constant 1; labels give the cluster index and size of the process.",
        ("process", "processes"),
    ),
)

#: Every exported metric family name (counters without ``_total``, as Prometheus clients register them).
METRIC_NAMES: frozenset[str] = frozenset(s.name for s in METRIC_SPECS)


def exposed_series_names() -> frozenset[str]:
    """Every series name a scrape can show: counters' ``_total``/``_created``, histograms' ``_bucket``/``_sum``/``_count``."""
    out: set[str] = set()
    for s in METRIC_SPECS:
        if s.kind == "counter":
            base = s.name.removesuffix("_total")
            out |= {base + "_total", base + "_created"}
        elif s.kind == "histogram":
            out |= {s.name + "_bucket", s.name + "_sum", s.name + "_count", s.name + "_created"}
        else:
            out.add(s.name)
    return frozenset(out)


class LevibotMetrics:
    """The metric objects of :data:`METRIC_SPECS`, built on one registry; attribute = name without ``levibot_``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.by_name: dict[str, Any] = {}
        for s in METRIC_SPECS:
            if s.kind == "counter":
                m: Any = Counter(s.name, s.help, s.labels, registry=registry)
            elif s.kind == "gauge":
                m = Gauge(s.name, s.help, s.labels, registry=registry)
            elif s.kind == "histogram":
                m = Histogram(s.name, s.help, s.labels, registry=registry, buckets=s.buckets or LATENCY_BUCKETS)
            else:  # pragma: no cover - guarded by the spec table
                raise ValueError(s.kind)
            self.by_name[s.name] = m
            setattr(self, s.name.removeprefix("levibot_"), m)

    def __getattr__(self, item: str) -> Any:  # for type checkers: attributes are set dynamically
        raise AttributeError(item)


_default: LevibotMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> LevibotMetrics:
    """The process-wide metrics on prometheus-client's default registry (built on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LevibotMetrics(REGISTRY)
        return _default


def metrics_port_for(base_port: int, process_id: int = 0) -> int:
    """Port of process ``process_id`` on a shared host: ``base_port + process_id`` (0 keeps metrics off)."""
    return 0 if base_port <= 0 else base_port + process_id


#: Address the /metrics endpoint binds when none is given and ``LEVIBOT_METRICS_HOST`` is unset: loopback only.
DEFAULT_METRICS_HOST = "127.0.0.1"


def metrics_host(addr: str | None = None) -> str:
    """The bind address: ``addr`` if given, else ``LEVIBOT_METRICS_HOST``, else :data:`DEFAULT_METRICS_HOST`.

    >>> metrics_host("0.0.0.0")
    '0.0.0.0'
    """
    return addr or os.environ.get("LEVIBOT_METRICS_HOST") or DEFAULT_METRICS_HOST


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no access log on stderr per scrape
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _get_only(app: Callable) -> Callable:
    """Wrap the exposition app: only GET without a request body. Anything else is answered at once (405, or
    413 for a body) without reading a byte of it, so no client can make the endpoint buffer data."""

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET"), ("Content-Length", "0")])
            return [b""]
        length = environ.get("CONTENT_LENGTH") or "0"
        if length.strip() not in ("", "0") or environ.get("HTTP_TRANSFER_ENCODING"):
            start_response("413 Content Too Large", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return wrapped


def serve_metrics(port: int, addr: str, registry: CollectorRegistry) -> tuple[WSGIServer, threading.Thread]:
    """``/metrics`` of ``registry`` on ``addr:port`` in a daemon thread: GET only, no request body (see
    :func:`_get_only`); returns the server (``.server_port`` is the bound port) and its thread."""
    server_cls: type = _ThreadingWSGIServer
    if ":" in addr:  # an IPv6 address
        server_cls = type("_ThreadingWSGIServer6", (_ThreadingWSGIServer,), {"address_family": socket.AF_INET6})
    server = make_server(addr, port, _get_only(make_wsgi_app(registry)), server_cls, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="levibot-metrics", daemon=True)
    thread.start()
    return server, thread


def start_metrics_server(
    port: int,
    *,
    process_id: int = 0,
    processes: int = 1,
    addr: str | None = None,
    registry: CollectorRegistry | None = None,
) -> int:
    """Serve ``/metrics`` for this process on ``metrics_port_for(port, process_id)``; returns the port (0 = off).

    Binds ``addr``, by default :func:`metrics_host` (``LEVIBOT_METRICS_HOST``, else 127.0.0.1: never all
    interfaces unless configured). Also sets ``levibot_process_info``. Call once per process, before the flow starts.
    """
    addr = metrics_host(addr)
    actual = metrics_port_for(port, process_id)
    m = default_metrics() if registry is None else _metrics_for(registry)
    m.process_info.labels(process=str(process_id), processes=str(processes)).set(1)
    if actual:
        serve_metrics(actual, addr, m.registry)
        log.info("metrics on http://%s:%d/metrics (process %d of %d)", addr, actual, process_id, processes)
    return actual


_by_registry: dict[int, LevibotMetrics] = {}


def _metrics_for(registry: CollectorRegistry) -> LevibotMetrics:
    if registry is REGISTRY:
        return default_metrics()
    with _default_lock:
        m = _by_registry.get(id(registry))
        if m is None or m.registry is not registry:
            m = _by_registry[id(registry)] = LevibotMetrics(registry)
        return m


def _reason_code(reason: str) -> str:
    """A bounded label from a free-form reason: the part before ``=``/``:``/space, at most 64 chars."""
    for sep in ("=", ":", " "):
        reason = reason.split(sep, 1)[0]
    return reason[:64] or "unspecified"


class FlowMetrics:
    """Observations from the trading flow; every method is cheap and never raises into the flow.

    Parameters: ``registry`` (default: the process-wide one), ``clock_ns`` (monotonic clock for
    latencies, ns; the flow's ``received_ns`` comes from the same clock), ``wall`` (Unix seconds).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.m = default_metrics() if registry is None else _metrics_for(registry)
        self.registry = self.m.registry
        self._clock_ns = clock_ns
        self._wall = wall
        self._lock = threading.Lock()
        self._first_equity: dict[str, float] = {}
        self._account_totals: dict[str, dict[str, int]] = {}  # running totals already counted, per account
        self._peak_equity: dict[str, float] = {}
        self._read_pos: dict[tuple[str, int], int] = {}

    # -- input ------------------------------------------------------------------------------------------------------
    def observe_batch(self, batch: Any, stage: str = "ingest") -> None:
        """An input batch (``EventBatch``: topic, partition, next_offset, events, dead) entered the flow."""
        try:
            topic = str(batch.topic)
            events = batch.events
            m = self.m
            m.events_in_total.labels(stage=stage, topic=topic).inc(len(events) + len(batch.dead))
            m.batch_size_messages.labels(topic=topic).observe(len(events) + len(batch.dead))
            m.last_batch_timestamp_seconds.labels(topic=topic).set(self._wall())
            if events:
                newest = max(getattr(e, "ts", 0) for e in events)
                if newest:
                    m.last_event_timestamp_seconds.labels(topic=topic).set(newest / 1e9)
            if batch.dead:
                self.observe_dead(batch.dead)
            with self._lock:
                self._read_pos[(topic, int(batch.partition))] = int(batch.next_offset)
        except Exception:  # noqa: BLE001 - metrics must never stop the flow
            log.exception("metrics: observe_batch failed")

    def observe_input(self, n: int, topic: str = "ticks", stage: str = "ingest") -> None:
        """``n`` input messages arrived (the ``progress`` hook of ``build_trading_flow`` passes batch sizes)."""
        try:
            self.m.events_in_total.labels(stage=stage, topic=topic).inc(n)
            self.m.batch_size_messages.labels(topic=topic).observe(n)
            self.m.last_batch_timestamp_seconds.labels(topic=topic).set(self._wall())
        except Exception:  # noqa: BLE001
            log.exception("metrics: observe_input failed")

    def observe_dead(self, dead_letters: Iterable[Any]) -> None:
        """Dead letters (``DeadLetter``: error, source_topic, stage) counted by reason."""
        try:
            for d in dead_letters:
                self.m.dead_letters_total.labels(
                    reason=_reason_code(d.error), source_topic=d.source_topic, stage=getattr(d, "stage", "decode")
                ).inc()
        except Exception:  # noqa: BLE001
            log.exception("metrics: observe_dead failed")

    # -- pipeline outputs ---------------------------------------------------------------------------------------
    def observe_emitted(self, symbol: str, emitted: Any) -> None:
        """One output of the per-symbol pipeline (``operators.pipeline.Emitted``)."""
        try:
            self._observe_emitted(symbol, emitted)
        except Exception:  # noqa: BLE001
            log.exception("metrics: observe_emitted failed")

    def _observe_emitted(self, symbol: str, e: Any) -> None:
        m = self.m
        now = self._clock_ns()
        received = getattr(e, "received_ns", 0) or 0
        elapsed = (now - received) / 1e9 if received and now >= received else None
        if e.bars:
            m.events_out_total.labels(stage="bars", topic="bars").inc(len(e.bars))
            if elapsed is not None:
                m.stage_latency_seconds.labels(stage="tick_to_bar").observe(elapsed)
        if e.features:
            m.events_out_total.labels(stage="features", topic="features").inc(len(e.features))
        scores = getattr(e, "scores", None)
        if scores:
            self.observe_scores(scores)
        if e.decisions:
            m.events_out_total.labels(stage="risk", topic="risk.decisions").inc(len(e.decisions))
            for d in e.decisions:
                self._observe_decision(d)
        if e.orders:
            m.events_out_total.labels(stage="orders", topic="orders").inc(len(e.orders))
            for o in e.orders:
                m.orders_total.labels(symbol=o.symbol, side=o.side, strategy=o.strategy, type=o.type).inc()
            if elapsed is not None:
                m.stage_latency_seconds.labels(stage="decision").observe(elapsed)
        if e.fills:
            m.events_out_total.labels(stage="execution", topic="fills").inc(len(e.fills))
            self.observe_fills(e.fills)
        if e.late:
            m.late_ticks_total.labels(symbol=symbol).inc(len(e.late))
        for a in getattr(e, "alerts", None) or ():
            self._observe_alert(a)
        if e.marks:
            self.observe_equity(symbol, e.marks[-1][1])
        st = getattr(e, "state", None)
        if st:
            self.observe_account_state(st)

    def _observe_alert(self, a: Any) -> None:
        """Alerts of the signal stage: a ``model_drift`` alert that reports a degradation (``warning``; it also
        raised a retrain request, ``operators.models.drift``) is a drift event of its model (``features`` for a
        PSI shift of the inputs) and detector (``adwin``, ``psi``). An ``info`` one (errors got smaller) is not."""
        if a.kind != "model_drift" or a.severity == "info":
            return
        labels = a.labels or {}
        self.observe_drift(labels.get("model") or "features", labels.get("source") or "unknown")

    def init_drift(
        self,
        models: Sequence[str] = ("river", "lgbm", "ensemble"),
        detectors: Sequence[str] = ("adwin",),
    ) -> None:
        """Create the drift counters at 0 (each model's ADWIN, the features' PSI), so that the first detection is an
        increase Prometheus can see (``LevibotModelDrift`` uses ``increase``)."""
        for model in models:
            for det in detectors:
                self.m.drift_events_total.labels(model=model, detector=det).inc(0)
        self.m.drift_events_total.labels(model="features", detector="psi").inc(0)

    def init_dead_letters(self, topic: str, stage: str = "decode", reasons: Iterable[str] | None = None) -> None:
        """Create ``levibot_dead_letters_total`` of an input topic at 0 for every reason its stage can give (decode:
        the codec's reason codes; split: the input policy's), so that the first rejected batch of a fresh process is
        an increase Prometheus can see: a series born at its first value shows no ``rate``/``increase``, and a
        process whose first poll held 2,000 malformed ticks would otherwise never raise ``LevibotDeadLetterRateHigh``."""
        if reasons is None:
            from schemas.codec import REASONS  # noqa: PLC0415 - schemas is below connectors

            reasons = sorted(REASONS)
        for reason in reasons:
            self.m.dead_letters_total.labels(reason=reason, source_topic=topic, stage=stage).inc(0)

    def init_control(self, topic: str) -> None:
        """Create the control plane's counters at 0 (refusal reasons of ``topic``, command results), so that the
        first refused command is an increase Prometheus can see."""
        for reason in ("unsigned", "unknown_key", "bad_signature", "unknown_scope", "unknown_model"):
            self.m.dead_letters_total.labels(reason=reason, source_topic=topic, stage="control").inc(0)
        for result in ("applied", "refused", "duplicate"):
            self.m.control_commands_total.labels(result=result).inc(0)

    def observe_account_state(self, st: dict) -> None:
        """The account stage's state (``AccountStage.state``): kill switch, operator and reconciliation modes,
        portfolio VaR/CVaR against their limits, mismatches and commands (counters follow the running totals)."""
        m = self.m
        acc = st["account"]
        scope = f"account:{acc}"
        m.kill_switch_engaged.labels(scope=scope).set(1 if st["kill_switch"] == "halted" else 0)
        m.trading_halted.labels(account=acc, cause="kill_switch").set(0 if st["kill_switch"] == "normal" else 1)
        m.trading_halted.labels(account=acc, cause="operator").set(0 if st["operator_mode"] == "normal" else 1)
        m.trading_halted.labels(account=acc, cause="reconciliation").set(0 if st["reconcile_mode"] == "normal" else 1)
        m.risk_var_ratio.labels(scope=scope).set(st["var_frac"])
        m.risk_cvar_ratio.labels(scope=scope).set(st["cvar_frac"])
        if st.get("var_limit") is not None:
            m.risk_limit_ratio.labels(limit="var", scope=scope).set(st["var_limit"])
            m.risk_limit_ratio.labels(limit="cvar", scope=scope).set(st["cvar_limit"])
        with self._lock:  # counters from the stage's running totals (monotone within a process)
            seen = self._account_totals.setdefault(acc, {})
            for key, metric, labels in [("mismatches", m.reconciliation_mismatches_total, {"account": acc})] + [
                (f"control:{k}", m.control_commands_total, {"result": k}) for k in st.get("control", {})
            ]:
                total = st["mismatches"] if key == "mismatches" else st["control"][key.split(":", 1)[1]]
                step = total - seen.get(key, 0)
                if step > 0:
                    metric.labels(**labels).inc(step)
                    seen[key] = total

    def _observe_decision(self, d: Any) -> None:
        m = self.m
        m.risk_decisions_total.labels(action=d.action, strategy=d.strategy or "unknown").inc()
        if d.action == "rejected":
            # the baseline lists sizing context first ("fixed_fraction=0.5"); count the rest as reasons
            codes = {_reason_code(r) for r in d.reasons if "=" not in r} or {"unspecified"}
            for c in codes:
                m.risk_rejections_total.labels(reason=c).inc()
        if d.var or d.cvar:
            m.risk_var_ratio.labels(scope=d.symbol).set(d.var)
            m.risk_cvar_ratio.labels(scope=d.symbol).set(d.cvar)
        p = d.portfolio
        if p is not None:
            if p.var or p.cvar:
                m.risk_var_ratio.labels(scope=PORTFOLIO).set(p.var)
                m.risk_cvar_ratio.labels(scope=PORTFOLIO).set(p.cvar)
            pos = p.positions.get(d.symbol)
            if pos is not None:
                m.position_qty.labels(symbol=d.symbol).set(pos)

    def observe_fills(self, fills: Sequence[Any]) -> None:
        """Fills (``Fill``): counts, notional, fees and slippage."""
        m = self.m
        for f in fills:
            m.fills_total.labels(symbol=f.symbol, side=f.side, liquidity=f.liquidity).inc()
            m.fill_notional_quote_total.labels(symbol=f.symbol).inc(abs(f.price * f.qty))
            if f.fee:
                m.fees_quote_total.labels(symbol=f.symbol).inc(abs(f.fee))
            m.fill_slippage_bps.labels(symbol=f.symbol).observe(abs(f.slippage_bps))

    def observe_equity(self, symbol: str, equity: float) -> None:
        """Equity of ``symbol``'s book, quote currency; derives P&L and drawdown from this process's view."""
        m = self.m
        with self._lock:
            first = self._first_equity.setdefault(symbol, equity)
            peak = max(self._peak_equity.get(symbol, equity), equity)
            self._peak_equity[symbol] = peak
        m.equity_quote.labels(symbol=symbol).set(equity)
        m.pnl_quote.labels(symbol=symbol).set(equity - first)
        m.drawdown_ratio.labels(symbol=symbol).set(max(0.0, 1.0 - equity / peak) if peak > 0 else 0.0)

    def observe_orders(self, emitted: Any) -> None:
        """The ``on_orders`` hook of ``build_trading_flow``: decision latency of an output holding orders."""
        try:
            received = getattr(emitted, "received_ns", 0) or 0
            now = self._clock_ns()
            if received and now >= received:
                self.m.stage_latency_seconds.labels(stage="decision").observe((now - received) / 1e9)
        except Exception:  # noqa: BLE001
            log.exception("metrics: observe_orders failed")

    # -- models and risk ----------------------------------------------------------------------------------------
    def observe_scores(self, scores: Iterable[Any]) -> None:
        """``Score`` events: each model's raw probability, the calibrated and the ensemble probability."""
        h = self.m.score_probability
        for s in scores:
            for model, p in s.raw.items():
                h.labels(model=model).observe(p)
            h.labels(model="calibrated").observe(s.calibrated)
            h.labels(model="ensemble").observe(s.ensemble)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """A measured latency of ``stage`` (one of :data:`LATENCY_STAGES`), seconds."""
        if stage not in LATENCY_STAGES:
            raise ValueError(f"unknown stage {stage!r}; known: {', '.join(LATENCY_STAGES)}")
        self.m.stage_latency_seconds.labels(stage=stage).observe(seconds)

    def observe_drift(self, model: str, detector: str, *, retrain: bool = True) -> None:
        """A drift detection; ``retrain`` also counts the retrain request it raises."""
        self.m.drift_events_total.labels(model=model, detector=detector).inc()
        if retrain:
            self.m.retrain_requests_total.labels(model=model).inc()

    def set_calibration_error(self, model: str, ece: float) -> None:
        """Expected calibration error of ``model`` (fraction)."""
        self.m.model_calibration_error.labels(model=model).set(ece)

    def set_risk_limit(self, limit: str, value: float, scope: str = PORTFOLIO) -> None:
        """A configured limit (fraction of equity), e.g. ``set_risk_limit("var", 0.05)``."""
        self.m.risk_limit_ratio.labels(limit=limit, scope=scope).set(value)

    def set_kill_switch(self, engaged: bool, scope: str = PORTFOLIO) -> None:
        """The drawdown kill switch of ``scope`` engaged (1) or released (0)."""
        self.m.kill_switch_engaged.labels(scope=scope).set(1 if engaged else 0)

    # -- sinks, resilience, recovery ----------------------------------------------------------------------------
    def observe_sink(self, kind: str, seconds: float, ok: bool, rows: int = 0) -> None:
        """One batch write of sink ``kind`` (e.g. ``postgres.orders``) took ``seconds``; ``ok`` = it succeeded."""
        m = self.m
        m.sink_write_seconds.labels(sink=kind).observe(seconds)
        if ok:
            m.sink_rows_total.labels(sink=kind).inc(rows)
            m.events_out_total.labels(stage="sink", topic=kind).inc(rows)
        else:
            m.sink_failures_total.labels(sink=kind).inc()

    def count_sink_failure(self, kind: str) -> None:
        """One failed write of sink ``kind`` that the resilience layer absorbed (spooled, retried): the write did
        not raise, so :func:`metered_sink` did not see it."""
        self.m.sink_failures_total.labels(sink=kind).inc()

    def set_unanswered_orders(self, n: int, oldest_age_s: float) -> None:
        """The execution-report watchdog: orders without a report and the age of the oldest, seconds."""
        self.m.orders_unanswered.set(n)
        self.m.oldest_unanswered_order_seconds.set(oldest_age_s)

    def count_self_reduce_only(self, cause: str) -> None:
        """One signed reduce_only the flow sent itself (``orders_unpublishable``, ``reports_silent``)."""
        self.m.self_reduce_only_total.labels(cause=cause).inc()

    def init_self_reduce_only(self) -> None:
        """Create the self reduce-only counters at 0 (so the first one is an increase Prometheus can see)."""
        for cause in ("orders_unpublishable", "reports_silent"):
            self.m.self_reduce_only_total.labels(cause=cause).inc(0)

    def set_circuit_breaker(self, breaker: str, state: str) -> None:
        """State of a circuit breaker: ``closed``, ``half_open`` or ``open``."""
        self.m.circuit_breaker_state.labels(breaker=breaker).set(BREAKER_STATES[state])

    def set_consumer_lag(self, topic: str, partition: int, high_watermark: int) -> int | None:
        """Lag of ``topic``/``partition`` given its high watermark and the last read position seen; returns it."""
        with self._lock:
            pos = self._read_pos.get((topic, partition))
        if pos is None:
            return None
        lag = max(0, high_watermark - pos)
        self.m.kafka_consumer_lag_messages.labels(topic=topic, partition=str(partition)).set(lag)
        return lag

    def read_positions(self) -> dict[tuple[str, int], int]:
        """The last ``next_offset`` seen per (topic, partition)."""
        with self._lock:
            return dict(self._read_pos)

    def mark_start(self, recovered: bool) -> None:
        """Process start; ``recovered`` = recovery state existed (a restart, not a first start)."""
        if recovered:
            self.m.process_restarts_total.inc()

    def time_sink(self, kind: str) -> "_SinkTimer":
        """Context manager timing one sink write: ``with metrics.time_sink("kafka.orders") as t: ...; t.rows = n``."""
        return _SinkTimer(self, kind)


class _SinkTimer:
    def __init__(self, metrics: FlowMetrics, kind: str) -> None:
        self.metrics, self.kind, self.rows, self._t0 = metrics, kind, 0, 0.0

    def __enter__(self) -> "_SinkTimer":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.metrics.observe_sink(self.kind, time.perf_counter() - self._t0, ok=exc_type is None, rows=self.rows)


# -- Bytewax sink wrapper -----------------------------------------------------------------------------------------
def metered_sink(inner: Any, kind: str, metrics: FlowMetrics | None = None) -> Any:
    """Wrap a Bytewax ``DynamicSink`` so every ``write_batch`` is timed and counted as sink ``kind``.

    Failures are counted and re-raised (the flow's own error handling is unchanged).
    """
    from bytewax.outputs import DynamicSink, StatelessSinkPartition

    fm = metrics or FlowMetrics()

    class _Part(StatelessSinkPartition[Any]):
        def __init__(self, part: Any) -> None:
            self._part = part

        def write_batch(self, items: list[Any]) -> None:
            rows = sum(len(i) if isinstance(i, list) else 1 for i in items)
            with fm.time_sink(kind) as t:
                self._part.write_batch(items)
                t.rows = rows

        def close(self) -> None:
            self._part.close()

    class _Sink(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
            return _Part(inner.build(step_id, worker_index, worker_count))

    return _Sink()


# -- background pollers -------------------------------------------------------------------------------------------
class _Poller:
    def __init__(self, interval_s: float, name: str) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "_Poller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a broken poll must not kill the process
                log.warning("metrics poller %s failed", self._thread.name, exc_info=True)
            self._stop.wait(self.interval_s)

    def poll_once(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class KafkaLagPoller(_Poller):
    """Sets ``levibot_kafka_consumer_lag_messages`` every ``interval_s`` s for the partitions this process reads.

    Bytewax keeps offsets in its recovery store, not in a consumer group, so the lag is the partition's high
    watermark minus the last ``next_offset`` that :meth:`FlowMetrics.observe_batch` saw.
    """

    def __init__(self, bootstrap: str, metrics: FlowMetrics, interval_s: float = 10.0) -> None:
        super().__init__(interval_s, "levibot-lag")
        self.bootstrap = bootstrap
        self.metrics = metrics
        self._consumer: Any = None

    def poll_once(self) -> dict[tuple[str, int], int]:
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": "levibot-lag-probe", "enable.auto.commit": False}
            )
        out: dict[tuple[str, int], int] = {}
        for topic, partition in self.metrics.read_positions():
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5.0)
            lag = self.metrics.set_consumer_lag(topic, partition, high)
            if lag is not None:
                out[(topic, partition)] = lag
        return out

    def stop(self) -> None:
        super().stop()
        if self._consumer is not None:
            self._consumer.close()


_READ_RECOVERY = """
import json, sqlite3, sys
out = {}
for part in sys.argv[1:]:
    con = sqlite3.connect(f"file:{part}?mode=ro", uri=True, timeout=5.0)
    try:
        epoch = con.execute("SELECT MAX(commit_epoch) FROM commits").fetchone()[0]
        exs = con.execute("SELECT COUNT(*) FROM exs").fetchone()[0]
    finally:
        con.close()
    out[part] = [epoch, exs]
print(json.dumps(out))
"""


class RecoveryWatcher(_Poller):
    """Follows Bytewax's recovery partitions (SQLite, read-only) and exports snapshot and resume counts.

    ``commits.commit_epoch`` is the latest committed snapshot epoch of a partition; ``exs`` holds one row per
    execution of the dataflow (a resume after a crash adds one).
    """

    def __init__(self, directory: Path, metrics: FlowMetrics, interval_s: float = 5.0) -> None:
        super().__init__(interval_s, "levibot-recovery")
        self.directory = Path(directory)
        self.metrics = metrics
        self._epochs: dict[str, int] = {}
        self._executions: int | None = None

    def _read(self) -> dict[str, tuple[int | None, int]]:
        """``{partition file: (latest commit epoch, executions)}``, read in a **separate process**: Bytewax writes
        these files with its own bundled SQLite, and a second SQLite library in the same process releases the
        writer's POSIX locks when it closes the file, which can corrupt the database (sqlite.org/howtocorrupt.html,
        "multiple copies of SQLite linked into the same application")."""
        parts = [str(p) for p in sorted(self.directory.glob("part-*.sqlite3"))]
        if not parts:
            return {}
        res = subprocess.run([sys.executable, "-c", _READ_RECOVERY, *parts], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise RuntimeError(f"reading the recovery partitions failed: {res.stderr.strip()[-500:]}")
        return {Path(k).name: (v[0], v[1]) for k, v in json.loads(res.stdout).items()}

    def poll_once(self) -> None:
        m = self.metrics.m
        executions = 0
        for part, (epoch, exs) in sorted(self._read().items()):
            executions = max(executions, exs)
            if epoch is None:
                continue
            prev = self._epochs.get(part)
            if prev is not None and epoch > prev:
                m.recovery_snapshots_total.inc(epoch - prev)
            self._epochs[part] = epoch
            m.recovery_committed_epoch.set(max(self._epochs.values()))
        if self._executions is None:
            self._executions = executions
            if executions > 1:
                m.recovery_resumes_total.inc(executions - 1)
        elif executions > self._executions:
            m.recovery_resumes_total.inc(executions - self._executions)
            self._executions = executions
