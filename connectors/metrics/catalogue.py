"""The catalogue of LeviBot Stream's Prometheus metrics: every ``levibot_*`` metric declared once in
:data:`METRIC_SPECS` (name, type, labels, unit in the help text), and :class:`LevibotMetrics`, the metric objects
of that table built on one registry (the process-wide one by :func:`default_metrics`).

Cardinality: labels only take values from bounded sets (stages, registry topics, reason codes,
symbols, strategies, models, sink names). Free text never becomes a label.

>>> "levibot_sink_rows_total" in METRIC_NAMES
True
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import REGISTRY

__all__ = [
    "LATENCY_BUCKETS",
    "PROBABILITY_BUCKETS",
    "BATCH_BUCKETS",
    "SLIPPAGE_BUCKETS",
    "LATENCY_STAGES",
    "BREAKER_STATES",
    "PORTFOLIO",
    "MetricSpec",
    "METRIC_SPECS",
    "METRIC_NAMES",
    "exposed_series_names",
    "LevibotMetrics",
    "default_metrics",
]

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


_by_registry: dict[int, LevibotMetrics] = {}


def _metrics_for(registry: CollectorRegistry) -> LevibotMetrics:
    if registry is REGISTRY:
        return default_metrics()
    with _default_lock:
        m = _by_registry.get(id(registry))
        if m is None or m.registry is not registry:
            m = _by_registry[id(registry)] = LevibotMetrics(registry)
        return m
