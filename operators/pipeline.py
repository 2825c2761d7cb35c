"""The per-symbol decision pipeline: ticks -> bars -> features -> strategy -> risk -> orders -> fills.

One :class:`SymbolPipeline` holds ALL the state of one symbol, so the flow can keep it in one Bytewax
stateful step keyed by symbol: per-symbol processing is then strictly sequential in stream order,
which is what makes the orders identical across batch boundaries, process counts and recoveries.

Event-time discipline, per call of :meth:`SymbolPipeline.on_batch` (ticks of one symbol, stream order):

1. the ticks are folded into base bars; the watermark (from the partition) closes idle windows;
2. base bars feed the coarser bars; bars of ``decision_resolution_s`` drive features and the strategy;
3. before a decision at event time ``T`` (the close of its bar), the paper broker sees every tick
   of the batch with time ``< T`` (so fills and equity are those at ``T`` whatever the batching);
4. an intent becomes a risk decision (baseline: fixed-fraction sizing and a position cap) and, when
   approved, a market order with a deterministic id; the broker fills it against later ticks.

Two modes, chosen by :class:`PipelineConfig`:

* ``mode="full"`` (the default): five strategies (EMA trend, ML score, z-score reversion, volatility
  breakout, Telegram-signal follower) under an :class:`~operators.orchestrator.Orchestrator` (risk parity),
  the :class:`~operators.risk.RiskGate` (VaR budget, exposure, leverage, kill switch, stale data,
  confidence, rate limit) on every intent, TWAP slicing of approved parents, and the
  :class:`~operators.execution.broker.SimBroker` (spread, square-root impact, fees);
* ``mode="baseline"``: one EMA trend strategy, fixed-fraction sizing and market orders at the paper
  broker — the simple path the vectorised sweep reproduces exactly (``tests/test_sweep.py``).

Signals (``on_signals``) are held until the first decision at or after their event time, so the
result does not depend on how the signal and tick streams interleave on arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import bisect
from collections import deque

import numpy as np

from operators.bars import BarAggregator, BarRecord, Resampler
from operators.execution import PaperBroker, PaperConfig
from operators.execution.broker import BrokerConfig, SimBroker
from operators.execution.slicing import twap_children
from operators.orchestrator import Orchestrator
from operators.features import CORE_V1, CoreFeatures
from operators.ids import stable_id
from operators.models.scorer import ModelSource, Scorer, ScorerConfig
from operators.risk import MarketState, OrderIntent, PortfolioState, RiskGate, RiskLimits
from operators.strategies import (EmaSpreadTrend, Intent, MLScoreThreshold, SignalFollower, VolatilityBreakout,
                                  ZScoreReversion, call_on_bar)
from schemas.events import Alert, Bar, FeatureVector, Order, PortfolioSnapshot, RiskDecision, Score, Signal

NS = 1_000_000_000


@dataclass(frozen=True)
class PipelineConfig:
    """Knobs of one symbol's pipeline.

    ``base_resolution_s``: base bar length (s); ``bar_resolutions_s``: coarser bars derived (s);
    ``decision_resolution_s``: bars that drive features and the strategy (s; the base or a derived one);
    ``allowed_lateness_s``: s; ``late_policy``: "drop" or "correct" (see ``operators.bars``);
    ``capital``: quote currency allotted to the symbol; ``fraction``: position notional at full
    conviction, fraction of current equity; ``max_position_frac``: cap on position notional, fraction
    of equity; ``min_notional``: smallest order, quote currency; ``trend_entry``/``trend_exit``: EMA
    spread thresholds (fraction of price).
    """

    base_resolution_s: int = 1
    bar_resolutions_s: tuple[int, ...] = (60, 300)
    decision_resolution_s: int = 60
    allowed_lateness_s: float = 0.0
    late_policy: str = "drop"
    capital: float = 100_000.0
    fraction: float = 0.5
    max_position_frac: float = 1.0
    min_notional: float = 10.0
    trend_entry: float = 0.004
    trend_exit: float = 0.001
    allow_short: bool = True
    paper: PaperConfig = field(default_factory=PaperConfig)
    models: bool = True
    scorer: ScorerConfig = field(default_factory=lambda: ScorerConfig(pickle_model=False))
    mode: str = "full"
    allocation: str = "risk_parity"
    limits: RiskLimits = field(default_factory=RiskLimits)
    risk_window: int = 500
    execution: str = "twap"
    twap_horizon_s: float = 30.0
    twap_slice_s: float = 10.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)

    def __post_init__(self) -> None:
        if self.mode not in ("full", "baseline"):
            raise ValueError(f"mode must be 'full' or 'baseline', got {self.mode!r}")
        if self.execution not in ("twap", "market"):
            raise ValueError(f"execution must be 'twap' or 'market', got {self.execution!r}")
        if self.decision_resolution_s not in (self.base_resolution_s, *self.bar_resolutions_s):
            raise ValueError("decision_resolution_s must be the base resolution or one of bar_resolutions_s")
        for r in self.bar_resolutions_s:
            if r % self.base_resolution_s:
                raise ValueError(f"bar resolution {r}s is not a multiple of the base {self.base_resolution_s}s")


@dataclass(slots=True)
class Emitted:
    """What one call produced, by kind; ``marks`` are (ts ns, equity quote) at each decision bar.

    ``received_ns`` is copied from the input batch by the flow (a monotonic clock reading of when the
    batch entered the process), so latency can be measured downstream; the pipeline never reads it.
    """

    bars: list[BarRecord] = field(default_factory=list)
    features: list[FeatureVector] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list = field(default_factory=list)
    late: list = field(default_factory=list)
    marks: list[tuple[int, float]] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    received_ns: int = 0


def bar_event(b: BarRecord) -> Bar:
    """The wire/storage ``Bar`` of a bar record (built only where a sink needs it: it validates)."""
    return Bar(symbol=b.symbol, ts=b.ts, resolution_s=b.resolution_s, open=b.open, high=b.high, low=b.low,
               close=b.close, volume=b.volume, buy_volume=b.buy_volume, sell_volume=b.sell_volume, vwap=b.vwap,
               trade_count=b.trade_count, synthetic=b.synthetic)


class SymbolPipeline:
    """All state of one symbol; picklable (it is the Bytewax state of the ``pipeline`` step)."""

    def __init__(self, symbol: str, cfg: PipelineConfig = PipelineConfig()) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self.agg = BarAggregator(symbol, cfg.base_resolution_s, allowed_lateness_s=cfg.allowed_lateness_s,
                                 late_policy=cfg.late_policy)  # type: ignore[arg-type]
        # coarser bars are derived in a chain (1 s -> 60 s -> 300 s): each from the largest finer resolution
        # that divides it, so a base bar touches one resampler, not all of them
        self.resamplers: dict[int, Resampler] = {}
        self.children: dict[int, list[int]] = {cfg.base_resolution_s: []}
        for r in sorted(set(cfg.bar_resolutions_s) - {cfg.base_resolution_s}):
            parent = max(p for p in self.children if r % p == 0)
            self.resamplers[r] = Resampler(r, parent)
            self.children[parent].append(r)
            self.children[r] = []
        self.spec = CORE_V1.with_resolution(cfg.decision_resolution_s)
        self.features = CoreFeatures(self.spec)
        trend = EmaSpreadTrend(cfg.trend_entry, cfg.trend_exit, cfg.allow_short)
        self.full = cfg.mode == "full"
        if self.full:
            self.strategy = Orchestrator([trend, MLScoreThreshold(), ZScoreReversion(), VolatilityBreakout(),
                                          SignalFollower()], allocation=cfg.allocation)
            self.broker = SimBroker(cfg.capital, cfg.broker)
            self.gate = RiskGate(cfg.limits)
            self.returns: deque = deque(maxlen=cfg.risk_window)
            self.last_close: float | None = None
            self.open_parents: list[str] = []
        else:
            self.strategy = trend
            self.broker = PaperBroker(symbol, cfg.capital, cfg.paper)
        self.pending_signals: list[tuple[int, int, Signal]] = []  # (ts, arrival seq, signal), sorted
        self.signal_seq = 0
        self.signals_in = 0
        self.last_tick_ts: int | None = None
        # River online + (when a champion is registered) LightGBM, calibrated and blended: the Score stage
        self.scorer = Scorer(symbol, self.spec, cfg=cfg.scorer) if cfg.models else None
        self.pending_qty = 0.0  # signed quantity ordered but not yet filled
        self.peak_equity = cfg.capital
        self.ticks_in = 0

    # -- the one entry point ------------------------------------------------------------------------------------
    def swap_models(self, source: ModelSource) -> bool:
        """Adopt a newly promoted batch model (hot reload); ``source`` is provided by the flow's wiring."""
        return self.scorer.maybe_swap(source) if self.scorer is not None else False

    def on_signals(self, signals: Sequence[Signal]) -> None:
        """Hold trading signals of this symbol until the first decision at or after their event time."""
        for sig in signals:
            self.signal_seq += 1
            self.signals_in += 1
            bisect.insort(self.pending_signals, (sig.ts, self.signal_seq, sig), key=lambda x: (x[0], x[1]))

    def on_batch(self, ticks: Sequence[Any], watermark_ns: int | None = None) -> Emitted:
        """Fold a batch of this symbol's ticks (stream order) and an optional watermark (ns)."""
        out = Emitted()
        self.ticks_in += len(ticks)
        if ticks:
            top = max(t.ts for t in ticks)
            self.last_tick_ts = top if self.last_tick_ts is None else max(self.last_tick_ts, top)
        res = self.agg.add(ticks)
        base = list(res.bars)
        out.late.extend(res.late)
        if watermark_ns is not None:
            base.extend(self.agg.advance(watermark_ns).bars)
        decision_bars: list[BarRecord] = []
        self._push(base, self.cfg.base_resolution_s, out, decision_bars)
        boundary = self.agg.watermark
        if boundary is not None:
            for r, rs in self.resamplers.items():  # ascending: a parent's bars reach its children first
                self._push(rs.advance(boundary), r, out, decision_bars)
        cursor = 0
        for b in decision_bars:
            decide_at = b.ts + b.resolution_s * NS
            cursor = self._feed_broker(ticks, cursor, decide_at, out)
            self._decide(b, decide_at, out)
        self._feed_broker(ticks, cursor, None, out)
        return out

    # -- stages -------------------------------------------------------------------------------------------------
    def _push(self, bars: list[BarRecord], res: int, out: Emitted, decision: list[BarRecord]) -> None:
        """Record closed bars of resolution ``res`` and derive the coarser bars that they close."""
        dres = self.cfg.decision_resolution_s
        children = self.children[res]
        for b in bars:
            out.bars.append(b)
            if b.revision:  # a correction: stored, but never re-decided or re-derived
                continue
            if res == dres:
                decision.append(b)
            for child in children:
                self._push(self.resamplers[child].update(b), child, out, decision)

    def _feed_broker(self, ticks: Sequence[Any], start: int, before_ns: int | None, out: Emitted) -> int:
        """Let the broker see ticks[start:] up to (not including) the first tick at or after ``before_ns``."""
        end = len(ticks)
        if before_ns is not None:
            end = start
            while end < len(ticks) and ticks[end].ts < before_ns:
                end += 1
        if end > start:
            fills = self.broker.on_ticks(ticks[start:end])
            if not self.full:
                for f in fills:
                    self.pending_qty -= f.qty if f.side == "buy" else -f.qty
            out.fills.extend(fills)
        return end

    def _decide(self, bar: BarRecord, ts: int, out: Emitted) -> None:
        if self.scorer is not None:  # labels of earlier predictions mature with this close
            out.alerts.extend(self.scorer.learn(ts, bar.close))
        values = self.features.update(bar)
        if self.full:
            self._decide_full(bar, ts, values, out)
            return
        equity = self.broker.equity(bar.close)
        self.peak_equity = max(self.peak_equity, equity)
        out.marks.append((ts, equity))
        if values is None:
            return
        self._emit_features(ts, values, out)
        if self.scorer is not None:
            out.scores.append(self.scorer.score_event(ts, self.scorer.score(values, ts)))
        intent = self.strategy.on_bar(self.symbol, ts, bar.close, values)
        if intent is not None:
            self._gate_and_order(intent, bar.close, equity, out)

    def _emit_features(self, ts: int, values: Sequence[float], out: Emitted) -> None:
        out.features.append(FeatureVector(symbol=self.symbol, ts=ts, feature_set=self.spec.name,
                                          feature_set_version=self.spec.version, names=list(self.spec.features),
                                          values=list(values)))

    # -- full mode: orchestrated strategies, risk gate, TWAP, simulated broker ----------------------------------
    def _decide_full(self, bar: BarRecord, ts: int, values: Sequence[float] | None, out: Emitted) -> None:
        close = bar.close
        if self.last_close is not None:
            self.returns.append(close / self.last_close - 1.0)
        self.last_close = close
        marks = {self.symbol: close}
        equity = self.broker.equity(marks)
        self.peak_equity = max(self.peak_equity, equity)
        out.marks.append((ts, equity))
        self.gate.update_equity(equity, ts)
        intents: list[Intent] = []
        while self.pending_signals and self.pending_signals[0][0] <= ts:
            _, _, sig = self.pending_signals.pop(0)
            got = self.strategy.on_signal(sig)
            if got is not None:
                intents.append(got)
        score = None
        if values is not None:
            self._emit_features(ts, values, out)
            if self.scorer is not None:
                result = self.scorer.score(values, ts)
                out.scores.append(self.scorer.score_event(ts, result))
                score = result[2]
        got = call_on_bar(self.strategy, self.symbol, ts, close, values, score=score, bar=bar)
        if got is not None:
            intents.append(got)
        if intents:  # the orchestrator nets: its last intent holds the symbol's target
            self._gate_full(intents[-1], ts, close, equity, out)

    def _gate_full(self, intent: Intent, ts: int, price: float, equity: float, out: Emitted) -> None:
        """Size the netted target, cancel the unfinished slices of older parents, gate, slice and submit."""
        cfg = self.cfg
        sym = self.symbol
        for pid in self.open_parents:  # a new target supersedes what is still unexecuted
            self.broker.cancel_parent(pid)
        self.open_parents = []
        held = self.broker.position(sym) + sum(o.qty if o.side == "buy" else -o.qty
                                                for o in self.broker.open_orders(sym))
        target_qty = intent.target * cfg.fraction * max(equity, 0.0) / price
        delta = target_qty - held
        if abs(delta) * price < cfg.min_notional:
            return
        intent_id = stable_id("int", intent.strategy, sym, intent.ts, round(intent.target, 12))
        market = MarketState(prices={sym: price}, price_ts_ns={sym: self.last_tick_ts or ts}, symbols=(sym,),
                             returns=np.asarray(self.returns, dtype=np.float64).reshape(-1, 1))
        decision = self.gate.evaluate(
            OrderIntent(intent_id, sym, "buy" if delta > 0 else "sell", abs(delta), strategy=intent.strategy,
                        confidence=intent.confidence, ts=ts),
            PortfolioState(equity=equity, positions={sym: held}), market, ts)
        out.decisions.append(decision)
        if decision.approved_qty <= 0.0:
            return
        side = decision.side or ("buy" if delta > 0 else "sell")
        reduce_only = abs(target_qty) < abs(held)
        if cfg.execution == "twap":
            # the approved decision is the parent: every child's parent_id is the decision id
            parent = Order(order_id=decision.id, strategy=intent.strategy, symbol=sym, side=side,
                           qty=decision.approved_qty, type="market", tif="IOC", ts=ts, reduce_only=reduce_only)
            orders = twap_children(parent, cfg.twap_horizon_s, cfg.twap_slice_s)
        else:
            orders = [Order(order_id=stable_id("ord", intent.strategy, sym, intent.ts, round(intent.target, 12)),
                            parent_id=decision.id, strategy=intent.strategy, symbol=sym, side=side,
                            qty=decision.approved_qty, type="market", tif="IOC", ts=ts, reduce_only=reduce_only)]
        for o in orders:
            self.broker.submit(o)
        self.open_parents.append(decision.id)
        out.orders.extend(orders)

    def _gate_and_order(self, intent: Intent, price: float, equity: float, out: Emitted) -> None:
        """Baseline risk: fixed-fraction sizing, a position cap and a minimum order size."""
        cfg = self.cfg
        held = self.broker.position + self.pending_qty
        target_qty = intent.target * cfg.fraction * max(equity, 0.0) / price
        cap = cfg.max_position_frac * max(equity, 0.0) / price
        reasons = [f"fixed_fraction={cfg.fraction}", intent.reason]
        action = "approved"
        if abs(target_qty) > cap:
            target_qty = cap if target_qty > 0 else -cap
            reasons.append("position_cap")
            action = "resized"
        delta = target_qty - held
        requested = abs(intent.target * cfg.fraction * max(equity, 0.0) / price - held)
        if abs(delta) * price < cfg.min_notional:
            action, delta = "rejected", 0.0
            reasons.append("below_min_notional")
        side = "buy" if delta > 0 else "sell"
        decision_id = stable_id("rd", intent.strategy, self.symbol, intent.ts, intent.target)
        snapshot = PortfolioSnapshot(equity=equity, gross_exposure=abs(held) * price, net_exposure=held * price,
                                     drawdown=min(1.0, max(0.0, 1 - equity / self.peak_equity)) if self.peak_equity > 0 else 0.0,
                                     positions={self.symbol: held})
        out.decisions.append(RiskDecision(id=decision_id, intent_id=stable_id("int", intent.strategy, self.symbol, intent.ts),
                                          symbol=self.symbol, ts=intent.ts, action=action, requested_qty=requested,
                                          approved_qty=abs(delta), reasons=[r for r in reasons if r][:32],
                                          portfolio=snapshot, strategy=intent.strategy, side=side))
        if action == "rejected":
            return
        order = Order(order_id=stable_id("ord", intent.strategy, self.symbol, intent.ts, intent.target),
                      parent_id=decision_id, strategy=intent.strategy, symbol=self.symbol, side=side, qty=abs(delta),
                      type="market", tif="IOC", ts=intent.ts, reduce_only=abs(target_qty) < abs(held))
        self.pending_qty += delta
        self.broker.submit(order)
        out.orders.append(order)
