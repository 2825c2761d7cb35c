"""The live path: the trading flow from Kafka to Kafka and the stores, with Bytewax recovery.

Ticks (and signals) come from Kafka; orders, fills, risk decisions and features go to their topics;
ticks, bars, orders, fills, decisions and dead letters go to PostgreSQL/TimescaleDB and ClickHouse.
Every output carries a deterministic id, so what a recovered run re-emits is deduplicated by the
stores (primary keys, ReplacingMergeTree) and by order consumers (by ``order_id``).

Scale-out: N processes of ``levibot run --live --processes N --process-id i`` form one Bytewax
cluster (addresses ``127.0.0.1:<base_port + i>`` by default); each process reads the ticks partitions whose state
it holds, so a symbol's per-tick work stays on one process (``flows.cluster``, docs/flow.md). Embedded ClickHouse
(chDB) is one process's; a cluster writes to a ClickHouse server, or each process to its own chDB path
(``{process}`` in the DSN is replaced by the process id).

Outages: every sink goes through ``connectors.resilience`` (retries with backoff and jitter, a circuit breaker per
sink with the ``levibot_circuit_breaker_state`` gauge and ``sink_circuit_open``/``sink_circuit_closed`` alerts on
``alerts``). A store that is down buffers its rows in a bounded spool under ``<var>/spool`` while the flow keeps
deciding, and catches up when it is back; a Kafka sink waits for the broker (the flow pauses) and never drops or
duplicates a message; orders unpublishable for ``LEVIBOT_ORDERS_OUTAGE_REDUCE_ONLY_S`` send a signed ``reduce_only``,
and so do orders a remote venue leaves without an execution report for ``LEVIBOT_REPORTS_SILENCE_REDUCE_ONLY_S``
(``docs/reliability.md``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Set
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax._bytewax import cli_main
from bytewax.recovery import RecoveryConfig, init_db_dir

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrate import migrate as ch_migrate
from connectors.clickhouse.sink import ClickHouseSink
from connectors.kafka.admin import ensure_topics, wait_ready
from connectors.kafka.sink import EventProducer, KafkaEventSink, key_by_source_topic
from connectors.kafka.source import KafkaEventSource
from connectors.metrics import FlowMetrics, KafkaLagPoller, RecoveryWatcher, metered_sink, start_metrics_server
from connectors.model_registry import ChampionWatcher
from connectors.postgres.migrate import migrate as pg_migrate
from connectors.postgres.sink import PostgresSink
from connectors.resilience import (
    BreakerReporter,
    ReduceOnlyOnOutage,
    ReportSilenceWatchdog,
    RetryPolicy,
    SinkResilience,
)
from connectors.shutdown import stop_on_signals
from flows.cluster import PLAIN, LocalPartitions, Routing, check_layout
from flows.settings import MissingSecrets, Settings, require_secrets
from flows.trading import Outputs, build_trading_flow
from operators.control import keyring
from operators.control.signing import parse_key, sign
from operators.features import CORE_V1
from operators.pipeline import PipelineConfig
from schemas.events import (
    Alert,
    AuditEvent,
    Bar,
    ControlCommand,
    DeadLetter,
    Event,
    ExecutionReport,
    FeatureVector,
    Fill,
    Order,
    RiskDecision,
    Score,
    Signal,
    Tick,
)

log = logging.getLogger(__name__)

#: (Outputs field, table, event type) written to each store
StoreTable = tuple[str, str, type[Event]]
STORE_TABLES: tuple[StoreTable, ...] = (
    ("ticks", "ticks", Tick),
    ("bars", "bars", Bar),
    ("decisions", "risk_decisions", RiskDecision),
    ("orders", "orders", Order),
    ("fills", "fills", Fill),
    ("dead", "dead_letters", DeadLetter),
)
CLICKHOUSE_ONLY: tuple[StoreTable, ...] = (
    ("features", "features", FeatureVector),
    ("signals", "signals", Signal),
    ("scores", "scores", Score),
    ("alerts", "alerts", Alert),
)
#: (Outputs field, registry topic) published to Kafka
TOPIC_OUTPUTS = (
    ("orders", "orders"),
    ("cancels", "order.cancels"),
    ("fills", "fills"),
    ("decisions", "risk.decisions"),
    ("features", "features"),
    ("scores", "scores"),
)
#: (Outputs field, table, event type) written to PostgreSQL only (the append-only audit trail)
POSTGRES_ONLY: tuple[StoreTable, ...] = (("audit", "audit", AuditEvent),)


#: secrets the live flow refuses to start without: variable -> what it is for
LIVE_SECRETS = {
    "LEVIBOT_CONTROL_KEY": "the HMAC key that verifies operator commands on `control` and signs the flow's "
    "own reduce-only command, at least 16 bytes"
}


def check_live_secrets(s: Settings) -> None:
    """Raise :class:`flows.settings.MissingSecrets` (a ``ValueError``) unless the live flow has its secrets, and
    ``ValueError`` when the control key is unusable (too short)."""
    require_secrets("levibot run --live", {"LEVIBOT_CONTROL_KEY": s.control_key}, LIVE_SECRETS)
    try:
        parse_key(s.control_key)
    except ValueError as exc:
        raise MissingSecrets("levibot run --live", {"LEVIBOT_CONTROL_KEY": f"unusable: {exc}"}) from None


def init_recovery(directory: Path, partitions: int) -> None:
    """Create Bytewax's recovery partitions (SQLite files) once; existing ones are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.glob("part-*.sqlite3")):
        return
    init_db_dir(directory, partitions)


def live_outputs(
    s: Settings,
    stores: set[str],
    process_id: int = 0,
    metrics: FlowMetrics | None = None,
    resilience: SinkResilience | None = None,
    orders_registrars: tuple[Any, ...] = (),
) -> Outputs:
    """Kafka topics plus the chosen stores (``postgres``, ``clickhouse``), migrated before use; every sink
    is metered (write latency and failures) when ``metrics`` is given, and rides out outages behind a circuit
    breaker when ``resilience`` is given (``orders_registrars`` are attached to the ``kafka.orders`` breaker)."""
    out = Outputs()
    open_after = float(s.kafka_breaker_open_after_s)

    def add(field_name: str, sink: Any, kind: str) -> None:
        getattr(out, field_name).append(metered_sink(sink, kind, metrics) if metrics is not None else sink)

    def kafka(topic: str, kind: str, **kw: Any) -> KafkaEventSink:
        return KafkaEventSink(
            s.kafka_bootstrap, s.topic(topic), resilience=resilience, name=kind, open_after_s=open_after, **kw
        )

    for field_name, name in TOPIC_OUTPUTS:
        add(
            field_name,
            kafka(name, f"kafka.{name}", breaker_registrars=orders_registrars if name == "orders" else ()),
            f"kafka.{name}",
        )
    add("dead", kafka("dlq", "kafka.dlq", key_fn=key_by_source_topic), "kafka.dlq")
    add("alerts", kafka("alerts", "kafka.alerts", key_fn=lambda a: a.kind.encode()), "kafka.alerts")
    add("audit", kafka("audit", "kafka.audit", key_fn=lambda a: (a.scope or "none").encode()), "kafka.audit")
    if "postgres" in stores:
        pg_migrate(s.pg_dsn)
        for field_name, table, typ in STORE_TABLES + POSTGRES_ONLY:
            add(field_name, PostgresSink(s.pg_dsn, table, typ, resilience=resilience), f"postgres.{table}")
    if "clickhouse" in stores:
        dsn = s.clickhouse_dsn_resolved.replace("{process}", str(process_id))
        ch_migrate(connect(dsn))
        for field_name, table, typ in STORE_TABLES + CLICKHOUSE_ONLY:
            add(field_name, ClickHouseSink(dsn, table, typ, resilience=resilience), f"clickhouse.{table}")
    return out


def outage_handling(
    s: Settings, fm: FlowMetrics, process_id: int = 0
) -> tuple[SinkResilience, ReduceOnlyOnOutage, list[EventProducer]]:
    """The resilience of this process's sinks: spools under ``<var>/spool/p<process>``, a reporter that sets the
    breaker gauge and publishes alerts, and the reduce-only hook of the orders breaker. Returns the side producers
    (alerts, control) too, to be flushed at the end."""
    side = {"message.timeout.ms": "0"}  # queued while the broker is away, delivered when it is back
    alerts = EventProducer(s.kafka_bootstrap, s.topic("alerts"), key_fn=lambda a: a.kind.encode(), extra_config=side)
    control = EventProducer(
        s.kafka_bootstrap, s.topic("control"), key_fn=lambda c: c.compaction_key.encode(), extra_config=side
    )
    reporter = BreakerReporter(fm, alerts)
    resilience = SinkResilience(
        s.var_dir / "spool" / f"p{process_id}",
        reporter,
        RetryPolicy(),
        max_buffered_events=s.sink_buffer_events,
        close_timeout_s=float(s.sink_close_timeout_s),
    )
    sign_fn = None
    if s.control_key.strip():
        key, key_id = parse_key(s.control_key), s.control_key_id
        sign_fn = lambda cmd: sign(cmd, key, key_id=key_id)  # noqa: E731
    reduce_only = ReduceOnlyOnOutage(control, sign_fn, after_s=float(s.orders_outage_reduce_only_s), metrics=fm)
    return resilience, reduce_only, [alerts, control]


def run_live(
    s: Settings,
    cfg: PipelineConfig = PipelineConfig(),
    *,
    stores: Set[str] = frozenset({"postgres", "clickhouse"}),
    processes: int = 1,
    process_id: int = 0,
    addresses: list[str] | None = None,
    base_port: int = 2101,
    recovery_dir: Path | None = None,
    snapshot_interval_s: float = 10.0,
    until_end: bool = False,
    signals: bool = True,
    venue: str = "paper",
) -> None:
    """Run this process's share of the live flow; returns when the input ends (``until_end``) or, after flushing
    the sinks, on SIGINT/SIGTERM (``connectors.shutdown``).

    ``venue``: ``"paper"`` (default) — orders go to ``orders`` and the account learns what happened only from
    ``execution.reports``, answered by ``levibot paper-venue`` or an exchange adapter; ``"sim"`` — a simulation: the
    simulated venue runs inside the account stage, deterministic in event time (replays of history, the recovery
    and parity tests)."""
    if venue not in ("paper", "sim"):
        raise ValueError(f"venue must be 'paper' or 'sim', got {venue!r}")
    try:  # before anything connects or binds: a flow without its keys never starts
        check_live_secrets(s)
    except MissingSecrets as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    stop = stop_on_signals()
    wait_ready(s.kafka_bootstrap)
    ensure_topics(s.kafka_bootstrap, prefix=s.topic_prefix)
    # one /metrics endpoint per process: base port + process id on a shared host, the same port when each
    # process has its own address (containers, pods)
    local = not addresses or all(a.split(":")[0] in ("127.0.0.1", "localhost", "::1") for a in addresses)
    try:
        start_metrics_server(
            s.metrics_port,
            process_id=process_id if processes > 1 and local else 0,
            processes=processes,
            addr=s.metrics_host,
        )
    except OSError as exc:  # a busy port costs the endpoint, never the flow
        log.warning("metrics endpoint not started (port %s: %s); the flow runs on", s.metrics_port, exc)
    fm = FlowMetrics()
    fm.init_drift()
    fm.init_self_reduce_only()
    KafkaLagPoller(s.kafka_bootstrap, fm).start()
    ticks = KafkaEventSource(
        s.kafka_bootstrap,
        s.topic("ticks"),
        Tick,
        batch_size=s.consume_batch,
        max_message_bytes=s.max_message_bytes,
        stop_at_end=until_end,
        columnar=True,  # each poll's ticks decoded straight into columns (the flow folds them as such)
    )
    sig = (
        KafkaEventSource(
            s.kafka_bootstrap,
            s.topic("signals"),
            Signal,
            batch_size=1000,
            max_message_bytes=s.max_message_bytes,
            stop_at_end=until_end,
        )
        if signals
        else None
    )
    control = KafkaEventSource(
        s.kafka_bootstrap,
        s.topic("control"),
        ControlCommand,
        batch_size=100,
        max_message_bytes=s.max_message_bytes,
        stop_at_end=until_end,
    )
    keys = keyring(s.control_key, s.control_key_id, s.control_verify_keys)
    models = ChampionWatcher(s.var_dir / "models", feature_set=CORE_V1.with_resolution(cfg.decision_resolution_s).id)
    cfg = replace(cfg, symbols=s.symbol_list)
    reports = (
        KafkaEventSource(
            s.kafka_bootstrap,
            s.topic("execution.reports"),
            ExecutionReport,
            batch_size=1000,
            max_message_bytes=s.max_message_bytes,
            stop_at_end=until_end,
        )
        if venue == "paper"
        else None
    )
    for src in (ticks, sig, control, reports):
        if src is not None:
            fm.init_dead_letters(src.topic)
    fm.init_dead_letters(ticks.topic, "split", ("unknown_symbol", "future_skew", "duplicate_tick"))
    resilience, reduce_only, side_producers = outage_handling(s, fm, process_id)
    outputs = live_outputs(s, set(stores), process_id, fm, resilience, (reduce_only,))
    watchdog = None
    if reports is not None and s.reports_silence_reduce_only_s > 0:  # orders the venue never answers: reduce-only
        watchdog = ReportSilenceWatchdog(
            reduce_only.producer,
            reduce_only.sign_fn,
            metrics=fm,
            timeout_s=float(s.reports_silence_reduce_only_s),
            account_of=cfg.account_of,
        )
        outputs.orders.append(watchdog.orders_sink())
        outputs.reports_read.append(watchdog.reports_sink())  # as read: the account holds reports in event time
        watchdog.start()
    collector = None
    if live_report_enabled():  # the run's tear sheet at its end (LEVIBOT_LIVE_REPORT=1)
        from connectors.report_live import LiveRunCollector

        collector = LiveRunCollector(cfg.decision_resolution_s, s.topic("signals"))
        collector.attach(outputs)
    # a cluster's state keys put each ticks partition's split and symbols on the process that reads it
    # (flows.cluster; one process keeps the plain keys)
    routing = Routing(len(ticks.list_parts())) if processes > 1 else None
    flow = build_trading_flow(
        LocalPartitions(ticks, routing, process_id, processes) if routing is not None else ticks,
        outputs,
        cfg,
        signals_source=sig,
        reports_source=reports,
        control_source=control,
        control_keys=keys,
        flush_at_eof=until_end,
        models=models,
        metrics=fm,
        routing=routing,
    )
    recovery = None
    if recovery_dir is not None:
        try:  # snapshots of the other key layout would resume into keys this run never uses
            check_layout(recovery_dir, routing.layout if routing is not None else PLAIN)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        fm.mark_start(any(recovery_dir.glob("part-*.sqlite3")))
        init_recovery(recovery_dir, max(1, processes))
        recovery = RecoveryConfig(str(recovery_dir))
        RecoveryWatcher(recovery_dir, fm).start()
    if processes > 1:
        addresses = addresses or [f"127.0.0.1:{base_port + i}" for i in range(processes)]
        cli_main(
            flow,
            workers_per_process=1,
            process_id=process_id,
            addresses=addresses,
            epoch_interval=timedelta(seconds=snapshot_interval_s),
            recovery_config=recovery,
        )
    else:
        cli_main(
            flow, workers_per_process=1, epoch_interval=timedelta(seconds=snapshot_interval_s), recovery_config=recovery
        )
    if watchdog is not None:
        watchdog.stop()
    for p in side_producers:  # alerts and commands queued during an outage
        try:
            p.flush(10.0)
        except Exception as exc:  # the log line and the gauge already told
            log.error("side producer %s: %s", p.topic, exc)
    if collector is not None:
        try:
            publish_live_report(
                s,
                cfg,
                collector,
                ticks_read(fm, ticks.topic),
                signals=sig is not None,
                stem="live-run" if processes == 1 else f"live-run-p{process_id}",
            )
        except Exception as exc:  # the run's outputs are all out already; only its summary is lost
            log.error("live tear sheet not written: %s", exc)
    if stop.requested:
        log.info("live flow stopped on %s: sources ended at their last poll, sinks flushed; exiting 0", stop.reason)


# ------------------------------------------------------------------------------------------------- the summary


def live_report_enabled() -> bool:
    """``LEVIBOT_LIVE_REPORT=1``: the live run keeps what its tear sheet needs and writes it at the end (off by
    default: it holds every order, fill and decision in memory, and a benchmark of the flow measures none of it)."""
    import os

    return os.environ.get("LEVIBOT_LIVE_REPORT", "0").strip().lower() in ("1", "true", "yes")


def ticks_read(fm: FlowMetrics, topic: str) -> int:
    """Messages read from ``topic`` by this process (the flow metrics' input counter)."""
    n = 0.0
    for metric in fm.m.events_in_total.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("topic") == topic:
                n += sample.value
    return int(n)


def publish_live_report(
    s: Settings, cfg: PipelineConfig, collector: Any, ticks: int, *, signals: bool, stem: str = "live-run"
) -> None:
    """The live run's tear sheet (``<var>/reports/<stem>.html`` and ``.json``) and its terminal summary (stderr),
    from what ``collector`` kept; the signals section has the Telegram signals read from ``signals``."""
    from flows.reporting import live_inputs, publish
    from operators.report import build_report

    inp = live_inputs(
        collector,
        cfg.decision_resolution_s,
        ticks=ticks,
        signals=signals,
        mode=cfg.mode,
        var_window=cfg.risk_window,
        var_alpha=cfg.limits.alpha,
        info={"Run": "live (Kafka)", "Topics": s.topic_prefix or "(no prefix)"},
    )
    rep = build_report(inp, title="Live run", kind="run")
    publish(rep, s.var_dir / "reports", stem, echo=lambda text: print(text, file=sys.stderr, flush=True))
