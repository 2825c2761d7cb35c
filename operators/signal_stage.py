"""The signal stage (keyed by symbol): ticks -> bars -> features -> scores -> strategies -> :class:`Intent` events.

One :class:`SignalStage` holds all per-symbol state of the decision path up to the intent, so the flow keeps it in
one Bytewax stateful step keyed by symbol: per-symbol processing is strictly sequential in stream order. It knows
nothing of capital, positions, risk or execution: those belong to the account stage
(:mod:`operators.account.stage`), which receives one :class:`~operators.messages.SymbolUpdate` per call.

Per call of :meth:`SignalStage.on_batch` (ticks of one symbol, stream order, and the partition's watermark):

1. the ticks are folded into base bars; the watermark closes idle windows;
2. base bars feed the coarser bars; bars of ``decision_resolution_s`` drive features, the scorer and the
   strategies (full mode: five strategies under the orchestrator; baseline: the EMA trend alone);
3. every decision bar becomes a :class:`~operators.messages.DecisionPoint` at its close time, with the netted
   :class:`schemas.events.Intent` when the wanted position changed.

Signals (``on_signals``) are held until the first decision at or after their event time, so the result does not
depend on how the signal and tick streams interleave on arrival.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from operators.bars import BarAggregator, BarColumns, BarRecord, Resampler
from operators.features import CORE_V1, CoreFeatures
from operators.ids import stable_id
from operators.messages import SIDE_CODES, DecisionPoint, Emitted, SymbolUpdate, TickBatch, TickColumns
from operators.models.scorer import ModelSource, Scorer
from operators.orchestrator import default_portfolio
from operators.strategies import EmaSpreadTrend
from operators.strategies.base import StrategyTarget
from schemas.events import FeatureVector, Intent, Signal

__all__ = ["SignalStage", "intent_event", "SMALL_BATCH"]

#: batches of at most this many ticks are folded in Python, tick by tick and bar by bar (the same bars bit for bit;
#: numpy's ~1 us per call, some hundred calls per batch over the resolutions, costs more up to ~500 ticks of one
#: symbol at 2 ticks/s, ~1,000 at 20 ticks/s)
SMALL_BATCH = 400


def intent_event(
    si: StrategyTarget, price: float, account: str = "default", contributions: dict[str, float] | None = None
) -> Intent:
    """The wire :class:`~schemas.events.Intent` of a strategy's target, decided at ``price`` (quote/base)."""
    return Intent(
        id=stable_id("int", si.strategy, si.symbol, si.ts, round(si.target, 12)),
        account=account,
        symbol=si.symbol,
        strategy=si.strategy,
        target=si.target,
        confidence=si.confidence,
        contributions=contributions or {},
        reasons=[si.reason] if si.reason else [],
        price=price,
        ts=si.ts,
    )


class SignalStage:
    """All per-symbol state up to the intent; picklable (the Bytewax state of the ``signals`` step).

    ``cfg`` is an :class:`operators.pipeline.PipelineConfig` (bars, features, models, strategies)."""

    def __init__(self, symbol: str, cfg: Any) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self.account = cfg.account_of(symbol)
        self.agg = BarAggregator(
            symbol, cfg.base_resolution_s, allowed_lateness_s=cfg.allowed_lateness_s, late_policy=cfg.late_policy
        )
        # coarser bars are derived in a chain (1 s -> 60 s -> 300 s): each from the largest finer resolution
        # that divides it, so a base bar touches one resampler, not all of them
        self.resamplers: dict[int, Resampler] = {}
        self.children: dict[int, list[int]] = {cfg.base_resolution_s: []}
        self.parent: dict[int, int] = {}
        for r in sorted(set(cfg.bar_resolutions_s) - {cfg.base_resolution_s}):
            parent = max(p for p in self.children if r % p == 0)
            self.resamplers[r] = Resampler(r, parent)
            self.children[parent].append(r)
            self.children[r] = []
            self.parent[r] = parent
        self.spec = CORE_V1.with_resolution(cfg.decision_resolution_s)
        self.features = CoreFeatures(self.spec)
        self.full = cfg.mode == "full"
        self.strategy: Any
        if self.full:
            self.strategy = default_portfolio(cfg)
        else:
            self.strategy = EmaSpreadTrend(cfg.trend_entry, cfg.trend_exit, cfg.allow_short)
        self.pending_signals: list[tuple[int, int, Signal]] = []  # (ts, arrival seq, signal), sorted
        self.signal_seq = 0
        self.signals_in = 0
        # River online + (when a champion is registered) LightGBM, calibrated and blended: the Score stage
        self.scorer = Scorer(symbol, self.spec, cfg=cfg.scorer) if cfg.models else None
        self.ticks_in = 0
        self.progress: int | None = None  # bar watermark after the last batch (ns)

    #: the operator's pinned model version (``pin_model``), None to follow the champion; a class default so that a
    #: stage pickled before pins existed unpickles without it
    model_pin: str | None = None

    def swap_models(self, source: ModelSource) -> bool:
        """Adopt a newly promoted batch model (hot reload), or the pinned version while one is pinned; ``source``
        is provided by the flow's wiring."""
        return self.scorer.maybe_swap(source, self.model_pin) if self.scorer is not None else False

    def pin_model(self, version: str | None) -> None:
        """An operator's ``pin_model`` (a registry version) or ``unpin_model`` (None); applied at the next batch."""
        self.model_pin = version

    def on_signals(self, signals: Sequence[Signal]) -> None:
        """Hold trading signals of this symbol until the first decision at or after their event time."""
        for sig in signals:
            self.signal_seq += 1
            self.signals_in += 1
            bisect.insort(self.pending_signals, (sig.ts, self.signal_seq, sig), key=lambda x: (x[0], x[1]))

    def on_batch(self, ticks: Sequence[Any] | TickBatch, watermark_ns: int | None = None) -> Emitted:
        """Fold a batch of this symbol's ticks (stream order: a one-symbol :class:`TickBatch`, or Tick-like
        objects) and an optional watermark (ns); the result's ``update`` is the message for the account stage.

        The ticks stay columns through the bar folds (base bars and every coarser resolution as
        :class:`~operators.bars.BarColumns`). ``out.bars`` holds them as blocks (resolution order, each in window
        order; rows built only when read); ``out.late`` the late ticks (Tick objects for a batch, the given objects
        otherwise) and ``out.late_rows`` their row numbers in the batch. Batches of at most :data:`SMALL_BATCH`
        ticks are folded tick by tick into the same state (the same bars; ``out.bars`` then in derivation order)."""
        out = Emitted()
        columnar = isinstance(ticks, TickBatch)
        self.ticks_in += len(ticks)
        if len(ticks) > SMALL_BATCH:
            batch = ticks if isinstance(ticks, TickBatch) else TickBatch.from_ticks(ticks)
            decision_bars = self._fold_columns(batch, ticks, watermark_ns, out)
            cols: Sequence[Any] | TickBatch = batch
        else:  # a few ticks (many symbols, sparse trading): array calls would cost more than the ticks
            cols = ticks
            decision_bars = self._fold_rows(ticks, columnar, watermark_ns, out)
        boundary = self.agg.watermark
        points = [self._decide(b, b.ts + b.resolution_s * 1_000_000_000, out) for b in decision_bars]
        floor = self.progress
        if boundary is not None and (floor is None or boundary > floor):
            self.progress = boundary
        out.update = SymbolUpdate(self.symbol, floor, TickColumns(self.symbol, cols, floor), points, self.progress)
        return out

    def _fold_columns(self, cols: TickBatch, ticks: Any, watermark_ns: int | None, out: Emitted) -> list[BarRecord]:
        """Bars of every resolution as columns; returns the decision bars (rows)."""
        base, late = self.agg.fold_columns(cols.ts, cols.price, cols.qty, cols.side, cols.synthetic)
        if len(late):
            rows = late.tolist()
            out.late_rows = rows
            out.late.extend(cols.event(i) if ticks is cols else ticks[i] for i in rows)
        sym, bres = self.symbol, self.cfg.base_resolution_s
        if watermark_ns is not None:
            more = self.agg.advance(watermark_ns).bars
            if more:
                base = BarColumns.concat([base, BarColumns.from_records(sym, bres, more)])
        dres = self.cfg.decision_resolution_s
        boundary = self.agg.watermark
        by_res: dict[int, BarColumns] = {bres: base}
        fresh = {bres: base.take(base.revision == 0) if base.revision.any() else base}  # corrections: stored only
        for (
            r,
            rs,
        ) in self.resamplers.items():  # ascending: a parent's bars (folded and advanced) reach its children first
            got = rs.update_columns(fresh[self.parent[r]])
            if boundary is not None:
                adv = rs.advance(boundary)
                if adv:
                    got = BarColumns.concat([got, BarColumns.from_records(sym, r, adv)])
            by_res[r] = fresh[r] = got
        for r in sorted(by_res):
            out.bars.add_block(by_res[r])
        return fresh[dres].records() if dres in fresh else []

    def _fold_rows(self, ticks: Any, columnar: bool, watermark_ns: int | None, out: Emitted) -> list[BarRecord]:
        """The same bars tick by tick and bar by bar (small batches); returns the decision bars.

        A batch in event-time order with nothing late (the usual case) takes one loop per resolution
        (:meth:`BarAggregator.fold_in_order`, :meth:`Resampler.update_rows`: ``out.bars`` in resolution order, as
        the array fold gives them); any other, the per-tick fold with its late ticks (``out.bars`` then in
        derivation order)."""
        agg = self.agg
        if columnar:
            lists = (
                ticks.ts.tolist(),
                ticks.price.tolist(),
                ticks.qty.tolist(),
                ticks.side.tolist(),
                ticks.synthetic.tolist(),
            )
        else:
            sc = SIDE_CODES
            lists = (
                [t.ts for t in ticks],
                [t.price for t in ticks],
                [t.qty for t in ticks],
                [sc.get(t.side, 0) for t in ticks],
                [bool(getattr(t, "synthetic", False)) for t in ticks],
            )
        base_rows = agg.fold_in_order(*lists)
        if base_rows is not None:
            if watermark_ns is not None:
                base_rows.extend(agg.advance(watermark_ns).bars)
            bres = self.cfg.base_resolution_s
            fresh: dict[int, list[BarRecord]] = {bres: base_rows}  # drop policy: no corrections
            boundary = agg.watermark
            for r, rs in self.resamplers.items():  # ascending: a parent's bars (folded and advanced) first
                got = rs.update_rows(fresh[self.parent[r]], checked=True)  # the aggregator's or a resampler's bars
                if boundary is not None:
                    got.extend(rs.advance(boundary))
                fresh[r] = got
            bars = out.bars
            for r in sorted(fresh):
                if fresh[r]:
                    bars.extend(fresh[r])
            return fresh.get(self.cfg.decision_resolution_s, [])
        base, late = agg.fold_rows(*lists)
        if late:
            out.late_rows = late
            out.late.extend(ticks.event(i) if columnar else ticks[i] for i in late)
        if watermark_ns is not None:
            base.extend(agg.advance(watermark_ns).bars)
        decision: list[BarRecord] = []
        self._push(base, self.cfg.base_resolution_s, out, decision)
        boundary = agg.watermark
        if boundary is not None:
            for r, rs in self.resamplers.items():  # ascending: a parent's bars reach its children first
                self._push(rs.advance(boundary), r, out, decision)
        return decision

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

    def _decide(self, bar: BarRecord, ts: int, out: Emitted) -> DecisionPoint:
        if self.scorer is not None:  # labels of earlier predictions mature with this close
            out.alerts.extend(self.scorer.learn(ts, bar.close))
        values = self.features.update(bar)
        close = bar.close
        got: list[StrategyTarget] = []
        if self.full:
            while self.pending_signals and self.pending_signals[0][0] <= ts:
                _, _, sig = self.pending_signals.pop(0)
                si = self.strategy.on_signal(sig)
                if si is not None:
                    got.append(si)
        score = None
        if values is not None:
            out.features.append(
                FeatureVector(
                    symbol=self.symbol,
                    ts=ts,
                    feature_set=self.spec.name,
                    feature_set_version=self.spec.version,
                    names=list(self.spec.features),
                    values=list(values),
                )
            )
            if self.scorer is not None:
                result = self.scorer.score(values, ts)
                out.scores.append(self.scorer.score_event(ts, result))
                score = result[2]
        if self.full or values is not None:
            si = self.strategy.on_bar(self.symbol, ts, close, values, score=score, bar=bar)
        else:
            si = None
        if si is not None:
            got.append(si)
        intent = None
        if got:  # the orchestrator nets: its last intent holds the symbol's target
            last = got[-1]
            contrib = (
                dict(getattr(self.strategy, "last_contributions", {}) or {})
                if self.full
                else {last.strategy: last.target}
            )
            intent = intent_event(last, close, self.account, {k: v for k, v in contrib.items() if v != 0.0})
            out.intents.append(intent)
        return DecisionPoint(self.symbol, ts, close, intent)
