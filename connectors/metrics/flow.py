"""The flow's metrics: :class:`FlowMetrics` turns what the trading flow already produces (input batches, pipeline
outputs, dead letters, sink writes, account states) into observations of the catalogue's metrics, and
:func:`metered_sink` times and counts every write of a Bytewax sink.

>>> from prometheus_client import CollectorRegistry
>>> m = FlowMetrics(registry=CollectorRegistry())
>>> m.observe_sink("postgres.orders", 0.012, ok=True, rows=3)
>>> m.registry.get_sample_value("levibot_sink_rows_total", {"sink": "postgres.orders"})
3.0
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from connectors.metrics.catalogue import BREAKER_STATES, LATENCY_STAGES, PORTFOLIO, _metrics_for, default_metrics

log = logging.getLogger("connectors.metrics")  # one logger for the whole package, as before the split

__all__ = ["FlowMetrics", "metered_sink"]


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
        except Exception:  # metrics must never stop the flow
            log.exception("metrics: observe_batch failed")

    def observe_input(self, n: int, topic: str = "ticks", stage: str = "ingest") -> None:
        """``n`` input messages arrived (the ``progress`` hook of ``build_trading_flow`` passes batch sizes)."""
        try:
            self.m.events_in_total.labels(stage=stage, topic=topic).inc(n)
            self.m.batch_size_messages.labels(topic=topic).observe(n)
            self.m.last_batch_timestamp_seconds.labels(topic=topic).set(self._wall())
        except Exception:
            log.exception("metrics: observe_input failed")

    def observe_dead(self, dead_letters: Iterable[Any]) -> None:
        """Dead letters (``DeadLetter``: error, source_topic, stage) counted by reason."""
        try:
            for d in dead_letters:
                self.m.dead_letters_total.labels(
                    reason=_reason_code(d.error), source_topic=d.source_topic, stage=getattr(d, "stage", "decode")
                ).inc()
        except Exception:
            log.exception("metrics: observe_dead failed")

    # -- pipeline outputs ---------------------------------------------------------------------------------------
    def observe_emitted(self, symbol: str, emitted: Any) -> None:
        """One output of the per-symbol pipeline (``operators.pipeline.Emitted``)."""
        try:
            self._observe_emitted(symbol, emitted)
        except Exception:
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
            from schemas.codec import REASONS  # schemas is below connectors

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

    def observe_account_state(self, st: dict[str, Any]) -> None:
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
        except Exception:
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

    def time_sink(self, kind: str) -> _SinkTimer:
        """Context manager timing one sink write: ``with metrics.time_sink("kafka.orders") as t: ...; t.rows = n``."""
        return _SinkTimer(self, kind)


class _SinkTimer:
    def __init__(self, metrics: FlowMetrics, kind: str) -> None:
        self.metrics, self.kind, self.rows, self._t0 = metrics, kind, 0, 0.0

    def __enter__(self) -> _SinkTimer:
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
