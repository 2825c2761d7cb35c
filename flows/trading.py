"""The trading flow (DESIGN §3): tick batches in; bars, features, decisions, orders and fills out.

Wiring only. The logic lives in ``operators.pipeline`` (one state per symbol) and the sources and
sinks in ``connectors``. The same wiring runs live on Kafka, on history in-process (the embedded
default and ``levibot backtest``), in one process or in a Bytewax cluster of several.

Steps:
  ticks_in (EventBatch per poll of a partition)
    -> split (stateful per partition: tick batches per symbol + the partition's watermark, also sent
       to the partition's idle symbols so their windows close)
    -> pipeline (stateful per symbol: ``SymbolPipeline.on_batch``)
    -> one output branch per kind: bars, features, risk decisions, orders, fills, equity marks
  dead letters of decoding and late ticks -> the dlq sinks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from bytewax import operators as op
from bytewax.dataflow import Dataflow

from operators.pipeline import Emitted, PipelineConfig, SymbolPipeline, bar_event
from schemas.codec import encode
from schemas.events import DeadLetter

NS = 1_000_000_000


@dataclass
class Outputs:
    """Sinks per kind of output; each entry is a list of Bytewax sinks that receive lists of events.

    ``marks`` receive ``(symbol, ts ns, equity)`` tuples; ``counters`` receive ``(kind, n)`` tuples.
    """

    ticks: list = field(default_factory=list)
    bars: list = field(default_factory=list)
    features: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    orders: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    dead: list = field(default_factory=list)
    marks: list = field(default_factory=list)
    signals: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    alerts: list = field(default_factory=list)


def late_dead_letter(tick: Any) -> DeadLetter:
    """A late tick as a dead letter (reason ``late_tick``), deterministic from the tick itself."""
    raw = encode(tick)
    return DeadLetter(source_topic="ticks", partition=-1, offset=-1, key=tick.symbol.encode(), error="late_tick",
                      detail=f"tick {tick.trade_id} at {tick.ts} arrived after its bar closed", raw=raw,
                      raw_size=len(raw), ts=tick.ts, stage="bars")


class _Splitter:
    """Per-partition state of the ``split`` step: the symbols seen and the partition's watermark (ns)."""

    __slots__ = ("symbols", "watermark")

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.watermark: int | None = None


def _split(lateness_ns: int) -> Callable[[_Splitter | None, Any], tuple[_Splitter, list]]:
    def step(state: _Splitter | None, batch: Any) -> tuple[_Splitter, list]:
        st = state if state is not None else _Splitter()
        groups: dict[str, list] = {}
        top = st.watermark
        for t in batch.events:
            g = groups.get(t.symbol)
            if g is None:
                groups[t.symbol] = [t]
            else:
                g.append(t)
            if top is None or t.ts - lateness_ns > top:
                top = t.ts - lateness_ns
        st.watermark = top
        for sym in groups:
            if sym not in st.symbols:
                st.symbols.append(sym)
        rx = batch.received_ns
        out = [(sym, ("ticks", ticks, top, rx)) for sym, ticks in groups.items()]
        if top is not None:
            out.extend((sym, ("ticks", (), top, rx)) for sym in st.symbols if sym not in groups)
        return st, out

    return step


def _pipeline(cfg: PipelineConfig, models: Any | None) -> Callable[[SymbolPipeline | None, Any], tuple[SymbolPipeline, Emitted]]:
    def step(state: SymbolPipeline | None, item: Any) -> tuple[SymbolPipeline, Emitted]:
        if item[0] == "signals":  # ("signals", [Signal, ...]): held by the pipeline until their event time
            sigs = item[1]
            p = state if state is not None else SymbolPipeline(sigs[0].symbol, cfg)
            p.on_signals(sigs)
            return p, Emitted()
        _, ticks, watermark, received_ns = item
        p = state if state is not None else SymbolPipeline(ticks[0].symbol, cfg)
        if models is not None:  # hot reload: a newly promoted champion is picked up between batches
            p.swap_models(models)
        out = p.on_batch(ticks, watermark)
        out.received_ns = received_ns
        return p, out

    return step


def _signals_by_symbol(batch: Any) -> list[tuple[str, list]]:
    """A batch of decoded signals as (symbol, signals of that symbol) items, arrival order kept."""
    groups: dict[str, list] = {}
    for sgl in batch.events:
        groups.setdefault(sgl.symbol, []).append(sgl)
    return list(groups.items())


def _out(name: str, stream: Any, sinks: list) -> None:
    for i, sink in enumerate(sinks):
        op.output(f"{name}_{i}", stream, sink)


def build_trading_flow(
    ticks_source: Any,
    outputs: Outputs,
    cfg: PipelineConfig = PipelineConfig(),
    *,
    signals_source: Any | None = None,
    progress: Callable[[int], None] | None = None,
    on_orders: Callable[[Emitted], None] | None = None,
    models: Any | None = None,
    metrics: Any | None = None,
    name: str = "levibot-trading",
) -> Dataflow:
    """Wire the trading flow from a source of :class:`~connectors.kafka.source.EventBatch` items.

    ``progress`` is called with the size of every input batch; ``on_orders`` with every pipeline
    output that holds orders, right as it leaves the pipeline step (decision-latency measurement).
    ``models`` is a model source (``connectors.model_registry.ChampionWatcher``) for hot reload;
    ``metrics`` a ``connectors.metrics.FlowMetrics`` fed from the input and the pipeline's outputs.
    """
    flow = Dataflow(name)
    batches = op.input("ticks_in", flow, ticks_source)
    if progress is not None:
        batches = op.inspect("progress", batches, lambda _s, b: progress(b.size))
    if metrics is not None:  # events in, batch sizes, dead letters by reason, read positions for the lag
        batches = op.inspect("metrics_in", batches, lambda _s, b: metrics.observe_batch(b))
    if outputs.ticks:
        _out("ticks_out", op.filter("tick_lists", op.map("tick_events", batches, lambda b: b.events), bool), outputs.ticks)
    dead = op.filter("decode_dead", op.map("dead_letters", batches, lambda b: b.dead), bool)

    keyed = op.key_on("by_partition", batches, lambda b: f"{b.topic}/{b.partition}")
    per_symbol = op.stateful_flat_map("split", keyed, _split(int(cfg.allowed_lateness_s * NS)))
    per_symbol = op.key_rm("split_unkeyed", per_symbol)
    by_symbol = op.map_value("drop_symbol", op.key_on("by_symbol", per_symbol, lambda kv: kv[0]), lambda kv: kv[1])
    sig = None
    if signals_source is not None:
        sig = op.input("signals_in", flow, signals_source)
        if metrics is not None:
            sig = op.inspect("metrics_signals", sig, lambda _s, b: metrics.observe_batch(b))
        sig_items = op.flat_map("signals_by_symbol", sig, _signals_by_symbol)
        by_symbol = op.merge("ticks_and_signals", by_symbol,
                             op.map_value("signal_items", op.key_on("sig_key", sig_items, lambda kv: kv[0]),
                                          lambda kv: ("signals", kv[1])))
    # heartbeats go only to symbols the partition has seen, so the pipeline state always exists for them
    emitted = op.stateful_map("pipeline", by_symbol, _pipeline(cfg, models))
    if metrics is not None:  # bars, features, decisions, orders, fills, late ticks, equity, latencies
        emitted = op.inspect("metrics_out", emitted, lambda _s, kv: metrics.observe_emitted(kv[0], kv[1]))
    em = op.key_rm("emitted", emitted)
    if on_orders is not None:
        em = op.inspect("decision_latency", em, lambda _s, e: on_orders(e) if e.orders else None)

    def branch(kind: str, sinks: list, get: Callable[[Emitted], list]) -> None:
        if sinks:
            _out(f"{kind}_out", op.filter(f"{kind}_any", op.map(kind, em, get), bool), sinks)

    branch("bars", outputs.bars, lambda e: [bar_event(b) for b in e.bars])
    branch("features", outputs.features, lambda e: e.features)
    branch("scores", outputs.scores, lambda e: e.scores)
    branch("alerts", outputs.alerts, lambda e: e.alerts)
    branch("decisions", outputs.decisions, lambda e: e.decisions)
    branch("orders", outputs.orders, lambda e: e.orders)
    branch("fills", outputs.fills, lambda e: e.fills)
    if outputs.marks:
        marks = op.map("marks", emitted, lambda kv: [(kv[0], ts, eq) for ts, eq in kv[1].marks])
        _out("marks_out", op.filter("marks_any", marks, bool), outputs.marks)
    late = op.filter("late_any", op.map("late", em, lambda e: [late_dead_letter(t) for t in e.late]), bool)
    all_dead = op.merge("all_dead", dead, late)

    if sig is not None:
        all_dead = op.merge("all_dead_sig", all_dead, op.filter("sig_dead", op.map("sig_dead_letters", sig, lambda b: b.dead), bool))
        if outputs.signals:
            _out("signals_out", op.filter("sig_any", op.map("signal_events", sig, lambda b: b.events), bool), outputs.signals)
    if outputs.dead:
        _out("dlq_out", all_dead, outputs.dead)
    return flow
