"""The trading flow (docs/flow.md): tick batches in; bars, features, scores, decisions, orders and fills out.

Wiring only. The logic lives in the stages (``operators.signal_stage``: one state per symbol;
``operators.account.stage``: one state per account) and the sources and sinks in ``connectors``. The same wiring
runs live on Kafka, on history in-process (the embedded default and ``levibot backtest``), in one process or in a
Bytewax cluster of several.

Steps:
  ticks_in (EventBatch per poll of a partition)
    -> split (stateful per partition): input policy (symbol allow-list, future skew, duplicate trade ids: dead
       letters with their reasons), tick batches per symbol + the partition's watermark, also sent to the
       partition's idle symbols so their windows close
    -> signals (stateful per symbol: ``SignalStage.on_batch``): bars, features, scores, intents
    -> account (stateful per account: ``AccountStage``): the book from execution reports, the risk gate across
       symbols, orders to the venue (in process, or reports from ``execution.reports`` for a remote venue)
    -> one output branch per kind: bars, features, scores, risk decisions, orders, fills, reports, equity marks
  dead letters of decoding, of the input policy and late ticks -> the dlq sinks.
"""

from __future__ import annotations

import gc
import pickle
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from bytewax import operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import StatefulLogic

from flows.cluster import Routing
from operators.account.stage import AccountStage
from operators.control import audit_event, refusal_alert, verify
from operators.messages import Emitted, TickBatch, TickRecord
from operators.pipeline import PipelineConfig, bar_event
from operators.signal_stage import SignalStage
from schemas.codec import encode
from schemas.events import DeadLetter
from schemas.time import NS_PER_S as NS
from schemas.time import TS_MAX_NS, TS_MIN_NS


@dataclass
class Outputs:
    """Sinks per kind of output; each entry is a list of Bytewax sinks that receive lists of events.

    ``marks`` receive ``(account, ts ns, equity)`` tuples; ``accounts`` each account's figures (a dict, see
    ``AccountStage.summary``) at the end of a finite run. ``bar_rows`` are bar sinks that take
    ``operators.bars.BarRecord`` rows (the ``Bar`` fields by name, plus ``revision``) instead of validated ``Bar``
    events: a column-oriented store reads the fields and needs no event (the bars come from the flow's own fold)."""

    ticks: list = field(default_factory=list)
    tick_rows: list = field(default_factory=list)
    bars: list = field(default_factory=list)
    bar_rows: list = field(default_factory=list)
    features: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    orders: list = field(default_factory=list)
    cancels: list = field(default_factory=list)  # CancelRequests to a remote venue (``order.cancels``)
    fills: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    # execution-report lists as read from ``execution.reports``, before the account holds them in event time
    # (the report-silence watchdog: a report the venue has sent answers its order, applied or not yet)
    reports_read: list = field(default_factory=list)
    audit: list = field(default_factory=list)
    accounts: list = field(default_factory=list)
    dead: list = field(default_factory=list)
    marks: list = field(default_factory=list)
    signals: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    alerts: list = field(default_factory=list)


def tick_dead_letter(
    tick: Any, error: str, detail: str, stage: str, topic: str = "ticks", partition: int = -1, offset: int = -1
) -> DeadLetter:
    """A tick refused by a stage of the flow, deterministic from the tick and its input coordinates (so each dead
    letter has its own natural key ``(topic, partition, offset, stage)``)."""
    raw = encode(tick)
    return DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=tick.symbol.encode(),
        error=error,
        detail=detail[:4096],
        raw=raw,
        raw_size=len(raw),
        ts=min(max(tick.ts, TS_MIN_NS), TS_MAX_NS - 1),
        stage=stage,
    )


def late_dead_letter(tick: Any, topic: str = "ticks", partition: int = -1, offset: int = -1) -> DeadLetter:
    """A late tick as a dead letter (reason ``late_tick``)."""
    return tick_dead_letter(
        tick,
        "late_tick",
        f"tick {tick.trade_id} at {tick.ts} arrived after its bar closed",
        "bars",
        topic,
        partition,
        offset,
    )


class _Splitter:
    """Per-partition state of the ``split`` step: the symbols seen, the partition's watermark (ns), the recent trade
    ids (for duplicates) and the counts of what the input policy refused.

    The recent trade ids are kept per symbol, one set of ``trade_id`` strings each (``seen``): a string caches its
    hash, so a set operation over a batch's ids costs a table probe per id, where ``(symbol, trade_id)`` tuples were
    built and hashed anew for every operation (the duplicate check was half the split's time at 20 ticks/s)."""

    __slots__ = ("symbols", "watermark", "recent", "n_recent", "seen", "refused")

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.watermark: int | None = None
        # the accepted ticks' trade ids in arrival order, one block per batch:
        # [ts int64 array, ids, start, names, codes]: ``ids[i]`` is a trade id of ``names[codes[i]]`` (of
        # ``names[0]`` when ``codes`` is None; ``ids`` is then a list, else an object array)
        self.recent: deque = deque()
        self.n_recent = 0
        self.seen: dict[str, set[str]] = {}
        self.refused: dict[str, int] = {}

    def __deepcopy__(self, memo: dict) -> _Splitter:
        # Bytewax snapshots a stateful step's state with copy.deepcopy at every epoch: copy only what is mutated
        # (the containers, each block's start); the arrays, id lists and names of a block are never changed once
        # remembered, so the copy shares them (a deep copy of 100,000 keys took ~1 s)
        c = _Splitter()
        c.symbols = list(self.symbols)
        c.watermark = self.watermark
        c.recent = deque([list(b) for b in self.recent])
        c.n_recent = self.n_recent
        c.seen = {s: set(ids) for s, ids in self.seen.items()}
        c.refused = dict(self.refused)
        return c

    def __setstate__(self, state: Any) -> None:
        # a pickled state: (None, slots); one of a flow before the per-symbol sets (``recent_set`` of
        # (symbol, trade_id) tuples, blocks [ts, keys, start]) is converted, so a snapshot of it resumes
        slots = state[1] if isinstance(state, tuple) else state
        old = "recent_set" in slots
        for k in self.__slots__:
            if k in slots:
                setattr(self, k, slots[k])
        if old:
            self.seen = {}
            for sym, tid in slots["recent_set"]:
                self.seen.setdefault(sym, set()).add(tid)
            blocks: deque = deque()
            for ts, keys, start in slots["recent"]:
                pos: dict[str, int] = {}
                codes = np.fromiter((pos.setdefault(s, len(pos)) for s, _ in keys), np.int32, len(keys))
                ids = np.array([*(t for _, t in keys), None], dtype=object)[:-1]
                blocks.append([ts, ids, start, tuple(pos), codes])
            self.recent = blocks

    def remembered(self) -> set[tuple[str, str]]:
        """The remembered ``(symbol, trade_id)`` pairs (for checks; the step reads ``seen``)."""
        return {(s, t) for s, ids in self.seen.items() for t in ids}

    def remember(self, ts: Any, ids: Any, names: tuple[str, ...], codes: Any = None) -> None:
        """Add a batch's accepted ticks (``ts`` ns, trade ids, arrival order; the id ``i`` of symbol
        ``names[codes[i]]``, of ``names[0]`` without ``codes``) to the blocks; ``seen`` holds them already."""
        if len(ids):
            self.recent.append([np.asarray(ts, np.int64), ids, 0, names, codes])
            self.n_recent += len(ids)

    def _drop(self, blk: list, a: int, b: int) -> None:
        """Take the ids ``a:b`` of a block out of ``seen``."""
        _, ids, _, names, codes = blk
        seen = self.seen
        if codes is None:
            seen[names[0]].difference_update(ids[a:b])
            return
        sub, part = codes[a:b], ids[a:b]
        if len(names) <= 4:
            for c, nm in enumerate(names):
                m = np.flatnonzero(sub == c)
                if m.size:
                    seen[nm].difference_update(part[m].tolist())
            return
        order = np.argsort(sub, kind="stable")
        sc = sub[order]
        cuts = np.flatnonzero(sc[1:] != sc[:-1]) + 1
        for lo, hi in zip(
            np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [len(sc)])).tolist(), strict=True
        ):
            seen[names[int(sc[lo])]].difference_update(part[order[lo:hi]].tolist())

    def forget(self, edge: int, cap: int) -> None:
        """Forget trade ids from the oldest on, one by one, while the oldest is dated before ``edge`` (ns) or more
        than ``cap`` are kept (what a queue of single ids popped in a loop does, a block at a time)."""
        recent = self.recent
        while recent:
            blk = recent[0]
            ts, ids, start = blk[0], blk[1], blk[2]
            n = len(ids)
            i0 = start + min(max(0, self.n_recent - cap), n - start)
            keep = np.flatnonzero(ts[i0:] >= edge)
            j = i0 + int(keep[0]) if keep.size else n
            if j > start:
                self._drop(blk, start, j)
                self.n_recent -= j - start
            if j < n:
                blk[2] = j
                return
            recent.popleft()


def _split(
    cfg: PipelineConfig, emit_accepted: bool = False, key_of: Callable[[str], str] | None = None
) -> Callable[[_Splitter | None, Any], tuple[_Splitter, list]]:
    """The ``split`` step. With ``emit_accepted`` it also emits ``(None, ("accepted", ticks))``: the batch's ticks the
    input policy accepted, in arrival order (the whole columnar batch when none was refused), for the tick stores.
    ``key_of`` gives a symbol's key in the signal step (the symbol itself without it; see ``flows.cluster``)."""
    lateness_ns = int(cfg.allowed_lateness_s * NS)
    skew_ns = int(cfg.max_future_skew_s * NS)
    window_ns = int(cfg.dedupe_window_s * NS)
    cap = cfg.dedupe_max_ids
    allowed = frozenset(cfg.symbols)

    def refuse(st: _Splitter, out: list, batch: Any, offs: Any, i: int, t: Any, error: str, detail: str) -> None:
        st.refused[error] = st.refused.get(error, 0) + 1
        out.append(
            (
                None,
                tick_dead_letter(
                    t, error, detail, "split", batch.topic, batch.partition, offs[i] if offs is not None else -1
                ),
            )
        )

    def step_objects(
        st: _Splitter, batch: Any, events: Any, offs: Any, accepted: list | None = None
    ) -> tuple[dict, list]:
        """The input policy tick by tick: (symbol -> (ticks, offsets)) and the dead letters; the accepted ticks are
        appended to ``accepted`` (arrival order) when it is given."""
        groups: dict[str, tuple[list, list]] = {}
        top = st.watermark
        seen = st.seen
        kept_ts: list[int] = []
        kept: list = []  # trade ids
        kept_codes: list[int] = []  # their symbols, as positions in ``pos``
        pos: dict[str, int] = {}
        refused: list = []
        for i, t in enumerate(events):
            sym = t.symbol
            if sym not in allowed:
                refuse(
                    st,
                    refused,
                    batch,
                    offs,
                    i,
                    t,
                    "unknown_symbol",
                    f"symbol {sym!r} is not in the configured universe",
                )
                continue
            if top is not None and t.ts - lateness_ns > top + skew_ns:
                refuse(
                    st,
                    refused,
                    batch,
                    offs,
                    i,
                    t,
                    "future_skew",
                    f"tick at {t.ts} is {(t.ts - top) / NS:,.0f} s ahead of the watermark (bound {cfg.max_future_skew_s:,.0f} s)",
                )
                continue
            tid = t.trade_id
            ids = seen.get(sym)
            if ids is None:
                ids = seen[sym] = set()
            elif tid in ids:
                refuse(st, refused, batch, offs, i, t, "duplicate_tick", f"trade id {tid} of {sym} seen before")
                continue
            ids.add(tid)
            kept_ts.append(t.ts)
            kept.append(tid)
            kept_codes.append(pos.setdefault(sym, len(pos)))
            if accepted is not None:
                accepted.append(t)
            g = groups.get(sym)
            if g is None:
                groups[sym] = ([t], [offs[i] if offs is not None else -1])
            else:
                g[0].append(t)
                g[1].append(offs[i] if offs is not None else -1)
            if top is None or t.ts - lateness_ns > top:
                top = t.ts - lateness_ns
        st.watermark = top
        if len(pos) == 1:
            st.remember(kept_ts, kept, tuple(pos))
        elif kept:
            st.remember(
                kept_ts, np.array([*kept, None], dtype=object)[:-1], tuple(pos), np.asarray(kept_codes, np.int32)
            )
        return groups, refused

    def step_columns(st: _Splitter, tb: TickBatch) -> dict | None:
        """The input policy over a columnar batch: symbol -> its ticks (a one-symbol ``TickBatch``), or None when
        some tick is refused (the batch then goes tick by tick, so the refusals are exactly the per-tick ones).

        A few numpy calls per batch in the usual case (every name allowed, no tick far ahead, no duplicate): each
        costs ~1 us whatever the batch size, which is most of a small batch's cost."""
        names = tb.symbols
        if not all(nm in allowed for nm in names):  # a name of the batch is not traded: is one of its ticks here?
            known = np.fromiter((nm in allowed for nm in names), bool, len(names))
            if not known[tb.codes].all():
                return None
        n = len(tb)
        cand = tb.ts - lateness_ns  # every tick accepted: the watermark before tick i is the running max before it
        top = st.watermark
        m = 0
        if n:
            m = int(cand.max())
            ref = top if top is not None else int(cand[0])
            # no tick is more than the skew above the reference (the watermark before any tick is at least it): no
            # tick can be refused, else the exact check tick by tick
            if m > ref + skew_ns:
                before = np.maximum.accumulate(cand)
                before = np.concatenate(([top if top is not None else cand[0]], before[:-1]))
                if top is not None:
                    before = np.maximum(before, top)
                if (cand[1:] > before[1:] + skew_ns).any() or (top is not None and cand[0] > top + skew_ns):
                    return None
        codes = tb.codes
        # each symbol's ticks: (first row, name, rows; None: the whole batch), in the order of their first tick (as
        # the per-tick split groups them)
        groups: list[tuple[int, str, Any]]
        if len(names) == 1:
            groups = [(0, names[0], None)] if n else []
        elif len(names) <= 4:  # few symbols: a mask each (no sort)
            groups = []
            for c in range(len(names)):
                idx = np.flatnonzero(codes == c)
                if len(idx):
                    groups.append((int(idx[0]), names[c], idx))
            groups.sort(key=lambda g: g[0])
        else:
            order = np.argsort(codes, kind="stable")
            sorted_codes = codes[order]
            cuts = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
            firsts = np.concatenate(([0], cuts)).tolist() if n else []
            groups = sorted(
                (
                    (int(order[f]), names[int(sorted_codes[f])], idx)
                    for f, idx in zip(firsts, np.split(order, cuts) if n else [], strict=True)
                ),
                key=lambda g: g[0],
            )
        ids_all = tb.trade_id
        seen = st.seen
        lists: list[tuple[str, list]] = []
        for _, nm, idx in groups:  # a trade id seen before: the batch goes tick by tick
            lst = (ids_all if idx is None else ids_all[idx]).tolist()
            have = seen.get(nm)
            if have is not None and not have.isdisjoint(lst):
                return None
            lists.append((nm, lst))
        done: list[tuple[set, list]] = []
        for nm, lst in lists:
            have = seen.get(nm)
            if have is None:
                have = seen[nm] = set()
            before_n = len(have)
            have.update(lst)
            done.append((have, lst))
            if len(have) != before_n + len(lst):  # a trade id twice in the batch: none was seen before, so undo
                for h, added in done:
                    h.difference_update(added)
                return None
        if len(names) == 1:
            if n:
                st.remember(tb.ts, lists[0][1], names)
        else:
            st.remember(tb.ts, np.asarray(ids_all, dtype=object), names, codes)
        if n:
            st.watermark = m if top is None or m > top else top
        return {nm: tb if idx is None else tb.take(idx).only(nm) for _, nm, idx in groups}

    def step(state: _Splitter | None, batch: Any) -> tuple[_Splitter, list]:
        st = state if state is not None else _Splitter()
        events = batch.events
        groups: dict | None = step_columns(st, events) if isinstance(events, TickBatch) else None
        refused: list = []
        accepted: Any = events if groups is not None else None  # a columnar batch the policy took whole
        if groups is None:  # a list of ticks, or a columnar batch with a refused tick: the policy tick by tick
            accepted = [] if emit_accepted else None
            if isinstance(events, TickBatch):
                groups, refused = step_objects(st, batch, events.events(), events.offsets.tolist(), accepted)
            else:
                groups, refused = step_objects(st, batch, events, batch.offsets, accepted)
        top = st.watermark
        if top is not None:  # forget trade ids that left the window (or beyond the cap)
            st.forget(top - window_ns, cap)
        known = set(st.symbols)  # one set per batch, not a scan of the list per symbol of the batch
        st.symbols.extend(sym for sym in groups if sym not in known)
        rx = batch.received_ns
        k = key_of if key_of is not None else str
        out: list = [
            (k(sym), ("ticks", g, top, rx, (batch.topic, batch.partition, None)))
            if isinstance(g, TickBatch)
            else (k(sym), ("ticks", g[0], top, rx, (batch.topic, batch.partition, g[1])))
            for sym, g in groups.items()
        ]
        if top is not None:
            out.extend((k(sym), ("ticks", (), top, rx, None)) for sym in st.symbols if sym not in groups)
        if refused:
            out.append((None, ("dead", [d for _, d in refused])))
        if emit_accepted and accepted is not None and len(accepted):
            out.append((None, ("accepted", accepted)))
        return st, out

    return step


class _StageState:
    """The ``signals`` step's state: one symbol's :class:`SignalStage`, or its pickled bytes (a snapshot).

    Bytewax snapshots a ``stateful_map`` state with ``copy.deepcopy`` at every epoch, for every symbol that had an
    item in it (with many symbols, every one of them: the idle ones get the watermark). A deep copy of a stage
    took ~10 ms, its pickled bytes ~2 ms and a few KiB instead of a copy of the whole object graph; so the copy is
    the bytes, and a state resumed from them is unpickled at its first item. Pickling and unpickling go through the
    same ``__getstate__``/``__setstate__`` as a deep copy, so a resumed stage is the same."""

    __slots__ = ("stage", "frozen")

    def __init__(self, stage: SignalStage | None = None, frozen: bytes | None = None) -> None:
        self.stage, self.frozen = stage, frozen

    def get(self) -> SignalStage:
        if self.stage is None:
            self.stage = pickle.loads(cast(bytes, self.frozen))
            self.frozen = None
            _new_stages[0] += 1  # (a stage resumed from a snapshot is as new to the collector)
        return self.stage

    def _bytes(self) -> bytes:
        if self.stage is None:
            return cast(bytes, self.frozen)
        return pickle.dumps(self.stage, protocol=pickle.HIGHEST_PROTOCOL)

    def __deepcopy__(self, memo: dict) -> _StageState:
        return _StageState(frozen=self._bytes())

    def __reduce__(self) -> tuple:
        return (_StageState, (None, self._bytes()))


#: the signal stages built (or resumed) in this process since the collector last froze its heap, and how many of
#: them make a wave worth freezing (see _signals)
_new_stages = [0]
FREEZE_AFTER = 64


def _signals(cfg: PipelineConfig, models: Any | None) -> Callable[[Any, Any], tuple[_StageState, Emitted]]:
    """The ``signals`` step. After a wave of new stages (at least :data:`FREEZE_AFTER`, and the first item for a
    stage that exists already, so the wave is over) the garbage collector's heap is frozen (``gc.freeze``): the
    stages live as long as the process, and every full collection traversed each of their objects again (half the
    CPU time of a 1,000-symbol run, more with more symbols); frozen objects are still freed when nothing refers to
    them, only never scanned for cycles. A run of a few symbols never freezes."""

    def step(state: Any, item: Any) -> tuple[_StageState, Emitted]:
        # the state is a _StageState, or a SignalStage resumed from a snapshot taken before _StageState existed
        if state is None or isinstance(state, _StageState):
            held = state
        else:
            held = _StageState(state)
        if held is None:
            _new_stages[0] += 1
        elif _new_stages[0] >= FREEZE_AFTER and held.stage is not None:
            _new_stages[0] = 0
            gc.freeze()
        p, out = stage_step(held.get() if held is not None else None, item)
        return (held if held is not None else _StageState(p)), out

    def stage_step(state: SignalStage | None, item: Any) -> tuple[SignalStage, Emitted]:
        if item[0] == "pin":  # ("pin", symbol, version or None): a verified pin_model / unpin_model
            p = state if state is not None else SignalStage(item[1], cfg)
            p.pin_model(item[2])
            return p, Emitted()
        if item[0] == "signals":  # ("signals", [Signal, ...]): held by the stage until their event time
            sigs = item[1]
            p = state if state is not None else SignalStage(sigs[0].symbol, cfg)
            p.on_signals(sigs)
            return p, Emitted()
        _, ticks, watermark, received_ns, coords = item
        columnar = isinstance(ticks, TickBatch)
        p = state if state is not None else SignalStage(ticks.symbol if columnar else ticks[0].symbol, cfg)
        if models is not None:  # hot reload: a newly promoted champion is picked up between batches
            p.swap_models(models)
        out = p.on_batch(ticks, watermark)
        if out.late:
            topic, part, offs = coords if coords is not None else ("ticks", -1, None)
            if columnar:
                offs = ticks.offsets.tolist()
            out.dead.extend(
                late_dead_letter(t, topic, part, offs[i] if offs is not None else -1)
                for t, i in zip(out.late, out.late_rows, strict=True)
            )
        out.received_ns = received_ns
        return p, out

    return step


class _AccountLogic(StatefulLogic):
    """Bytewax logic of the ``account`` step: one :class:`AccountStage`; flushes it at the end of a finite input."""

    def __init__(self, stage: AccountStage, flush_at_eof: bool) -> None:
        self.stage = stage
        self.flush_at_eof = flush_at_eof

    def on_item(self, value: Any) -> tuple[list, bool]:
        kind, payload, received_ns, _account = value
        if kind == "update":
            out = self.stage.on_update(payload)
        elif kind == "control":  # verified operator commands, topic order
            out = self.stage.on_control(payload)
        else:  # "reports": a batch of execution reports from a remote venue
            out = self.stage.on_reports(payload)
        out.received_ns = received_ns
        return [out], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list, bool]:
        if not self.flush_at_eof:
            return [], StatefulLogic.RETAIN
        out = self.stage.flush()
        out.summary = self.stage.summary()
        return [out], StatefulLogic.RETAIN

    def snapshot(self) -> bytes:
        # pickled bytes: an immutable copy, and several times cheaper than a deep copy of the account's queues
        return pickle.dumps(self.stage, protocol=pickle.HIGHEST_PROTOCOL)


def _tick_events(ev: Any) -> list:
    """Accepted ticks (a columnar batch or a list of ticks) as ``Tick`` events (built here, for the ticks sinks,
    when the batch is columnar)."""
    return ev.events() if isinstance(ev, TickBatch) else ev


def _tick_records(ev: Any) -> list:
    """Accepted ticks as ``TickRecord`` rows (for column-oriented tick stores)."""
    if isinstance(ev, TickBatch):
        return ev.records()
    return [TickRecord(t.symbol, t.ts, t.price, t.qty, t.side, t.trade_id, t.venue, t.synthetic) for t in ev]


class _Newest:
    """``len`` of a columnar batch and its newest tick as the one item (what ``FlowMetrics.observe_batch`` reads of
    the events: their count and the largest ``ts``), without building a ``Tick`` per row."""

    __slots__ = ("n", "ts")

    def __init__(self, tb: TickBatch) -> None:
        self.n = len(tb)
        self.ts = int(tb.ts.max()) if self.n else 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        return iter((self,) if self.n else ())


def _metrics_view(batch: Any) -> Any:
    if not isinstance(batch.events, TickBatch):
        return batch
    from dataclasses import replace as _replace

    return _replace(batch, events=_Newest(batch.events))


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
    reports_source: Any | None = None,
    control_source: Any | None = None,
    control_keys: Mapping[str, bytes] | None = None,
    progress: Callable[[int], object] | None = None,
    on_orders: Callable[[Emitted], None] | None = None,
    models: Any | None = None,
    metrics: Any | None = None,
    flush_at_eof: bool = True,
    name: str = "levibot-trading",
    routing: Routing | None = None,
) -> Dataflow:
    """Wire the trading flow from a source of :class:`~connectors.kafka.source.EventBatch` items.

    ``reports_source``: execution reports of a remote venue (``execution.reports``); without it the accounts run
    the in-process simulated venue. ``control_source``: operator commands (``control``), verified against
    ``control_keys`` (key id -> HMAC key); a refused one becomes a dead letter, an alert and an audit event, a
    verified one reaches the accounts of its scope. ``flush_at_eof``: at the end of a finite input the accounts process every
    queued decision (a bounded run); off for a live run that may be stopped and resumed. ``progress`` is called
    with the size of every input batch; ``on_orders`` with every account output that holds orders, right as it
    leaves the account step (decision-latency measurement). ``models`` is a model source
    (``connectors.model_registry.ChampionWatcher``) for hot reload; ``metrics`` a ``connectors.metrics.FlowMetrics``.
    ``routing`` (a cluster's, ``flows.cluster.Routing``) chooses the partitions' and symbols' state keys so that a
    partition's ticks stay on the process that reads it; without it the keys are the names themselves.
    """
    flow = Dataflow(name)
    batches = op.input("ticks_in", flow, ticks_source)
    if progress is not None:

        def count(_step: str, batch: Any) -> None:
            progress(batch.size)

        batches = op.inspect("progress", batches, count)
    if metrics is not None:  # events in, batch sizes, dead letters by reason, read positions for the lag
        batches = op.inspect("metrics_in", batches, lambda _s, b: metrics.observe_batch(_metrics_view(b)))
    # every step below costs Bytewax ~1 us per batch: what a poll goes through is one step where a filter, a map
    # and a re-keying would be three (decision latency, docs/performance.md)
    dead = op.flat_map_batch("decode_dead", batches, lambda bs: [b.dead for b in bs if b.dead])

    if routing is None:
        sym_key: Callable[[str], str] = str
        sym_name: Callable[[str], str] = str
        keyed = op.key_on("by_partition", batches, lambda b: f"{b.topic}/{b.partition}")
    else:  # routed keys: a partition's split and its symbols' signal stages on the worker that reads it
        sym_key, sym_name = routing.symbol_key, routing.name
        keyed = op.key_on("by_partition", batches, lambda b: routing.partition_key(b.topic, b.partition))
    tick_stores = bool(outputs.ticks or outputs.tick_rows)
    # (partition, (symbol, item)) for the signal stages, (partition, (None, ("dead" | "accepted", ...))) else
    split = op.stateful_flat_map(
        "split", keyed, _split(cfg, emit_accepted=tick_stores, key_of=sym_key if routing is not None else None)
    )
    # the tick stores get exactly the ticks the input policy accepted (not the unknown symbols, the far-future
    # ticks, the duplicates it dead-letters)
    if tick_stores:
        accepted = op.flat_map_batch(
            "accepted", split, lambda kvs: [v[1][1] for _, v in kvs if v[0] is None and v[1][0] == "accepted"]
        )
        if outputs.ticks:
            _out("ticks_out", op.map("tick_events", accepted, _tick_events), outputs.ticks)
        if outputs.tick_rows:
            _out("tick_rows_out", op.map("tick_records", accepted, _tick_records), outputs.tick_rows)
    # the split's (symbol, item) pairs are already keyed by symbol
    by_symbol = cast(Any, op.flat_map_batch("to_symbols", split, lambda kvs: [v for _, v in kvs if v[0] is not None]))
    sig = None
    if signals_source is not None:
        sig = op.input("signals_in", flow, signals_source)
        if metrics is not None:
            sig = op.inspect("metrics_signals", sig, lambda _s, b: metrics.observe_batch(b))
        sig_items = op.flat_map("signals_by_symbol", sig, _signals_by_symbol)
        by_symbol = op.merge(
            "ticks_and_signals",
            by_symbol,
            op.map_value(
                "signal_items",
                op.key_on("sig_key", sig_items, lambda kv: sym_key(kv[0])),
                lambda kv: ("signals", kv[1]),
            ),
        )
    checked = None
    if control_source is not None:  # verified first: model pins go to the signal stages, the rest to the accounts
        ctl = op.input("control_in", flow, control_source)
        if metrics is not None:
            ctl = op.inspect("metrics_control", ctl, lambda _s, b: metrics.observe_batch(b))
        checked = op.map("verify_control", ctl, _verify_control(cfg, control_keys or {}, models))
        pins = op.flat_map("model_pins", checked, lambda r: _model_pins(cfg, r[0]))
        by_symbol = op.merge("ticks_and_pins", by_symbol, op.key_on("pin_key", pins, lambda item: sym_key(item[1])))
    # heartbeats go only to symbols the partition has seen, so the stage state always exists for them
    sig_out = op.stateful_map("signals", by_symbol, _signals(cfg, models))
    if metrics is not None:  # bars, features, scores, late ticks, latencies
        sig_out = op.inspect(
            "metrics_signals_out", sig_out, lambda _s, kv: metrics.observe_emitted(sym_name(kv[0]), kv[1])
        )
    # the signal stages' outputs without their keys, for the sinks that take them (built only for those)
    sem: Any = (
        op.key_rm("signals_emitted", sig_out)
        if (outputs.bars or outputs.bar_rows or outputs.features or outputs.scores or outputs.alerts)
        else None
    )

    def account_items(kvs: list) -> list:  # (account, item): keyed by account as they are
        out = []
        for _, e in kvs:
            u = e.update
            if u is not None:
                a = cfg.account_of(u.symbol)
                out.append((a, ("update", u, e.received_ns, a)))
        return out

    updates = op.flat_map_batch("account_items", sig_out, account_items)
    if reports_source is not None:
        reps = op.input("reports_in", flow, reports_source)
        if metrics is not None:
            reps = op.inspect("metrics_reports", reps, lambda _s, b: metrics.observe_batch(b))
        dead = op.merge(
            "dead_and_reports", dead, op.filter("rep_dead", op.map("rep_dead_letters", reps, lambda b: b.dead), bool)
        )
        if outputs.reports_read:
            _out(
                "reports_read_out",
                op.filter("reports_read", op.map("reports_read_events", reps, lambda b: b.events), bool),
                outputs.reports_read,
            )
        rep_items = op.flat_map("reports_by_account", reps, _reports_by_account)
        updates = op.merge("updates_and_reports", updates, rep_items)
    remote = reports_source is not None
    ctl_alerts: Stream[list[Any]] | None = None  # the refused control commands' alerts and audit events
    ctl_audit: Stream[list[Any]] | None = None
    if control_source is not None and checked is not None:
        refused_ctl = op.filter("control_refused_any", op.map("control_refused", checked, lambda r: r[1]), bool)
        if metrics is not None:  # every refusal reason starts at 0, so the first one is an increase
            metrics.init_control(getattr(control_source, "topic", "control"))
            refused_ctl = op.inspect(
                "metrics_control_refused", refused_ctl, lambda _s, xs: metrics.observe_dead([x[0] for x in xs])
            )
        dead = op.merge(
            "dead_and_control",
            dead,
            op.filter("ctl_dead", op.map("ctl_dead_letters", ctl, lambda b: b.dead), bool),
            op.map("ctl_refused_dead", refused_ctl, lambda xs: [x[0] for x in xs]),
        )
        ctl_alerts = op.map("ctl_refused_alerts", refused_ctl, lambda xs: [x[1] for x in xs])
        ctl_audit = op.map("ctl_refused_audit", refused_ctl, lambda xs: [x[2] for x in xs])
        updates = op.merge("updates_and_control", updates, op.flat_map("control_items", checked, lambda r: r[0]))
    # every item of ``updates`` is (account, payload): keyed by account as it is
    acc_out = op.stateful("account", cast(Any, updates), _account_builder(cfg, remote, flush_at_eof))
    if metrics is not None:  # decisions, orders, fills, equity, decision latency
        acc_out = op.inspect("metrics_account_out", acc_out, lambda _s, kv: metrics.observe_emitted(kv[0], kv[1]))
    if on_orders is not None:  # as the outputs leave the account step
        acc_out = op.inspect("decision_latency", acc_out, lambda _s, kv: on_orders(kv[1]) if kv[1].orders else None)
    em = op.key_rm("account_emitted", acc_out)

    def branch(kind: str, src: Any, sinks: list, get: Callable[[Emitted], list]) -> None:
        if sinks:  # one step: the non-empty lists of ``get``
            _out(f"{kind}_out", op.flat_map_batch(kind, src, lambda es: [xs for xs in map(get, es) if xs]), sinks)

    branch("bars", sem, outputs.bars, lambda e: [bar_event(b) for b in e.bars])
    branch("bar_rows", sem, outputs.bar_rows, lambda e: list(e.bars))
    branch("features", sem, outputs.features, lambda e: e.features)
    branch("scores", sem, outputs.scores, lambda e: e.scores)
    branch("decisions", em, outputs.decisions, lambda e: e.decisions)
    branch("orders", em, outputs.orders, lambda e: e.orders)
    branch("cancels", em, outputs.cancels, lambda e: e.cancels)
    branch("fills", em, outputs.fills, lambda e: e.fills)
    branch("reports", em, outputs.reports, lambda e: e.reports)
    if outputs.audit:
        audit = op.filter("audit_any", op.map("audit", em, lambda e: e.audit), bool)
        if ctl_audit is not None:
            audit = op.merge("audit_all", audit, ctl_audit)
        _out("audit_out", audit, outputs.audit)
    if outputs.alerts:  # drift alerts of the signal stages, the accounts' and the control plane's alerts
        alerts = op.merge(
            "alerts_all",
            op.filter("sig_alerts_any", op.map("sig_alerts", sem, lambda e: e.alerts), bool),
            op.filter("acc_alerts_any", op.map("acc_alerts", em, lambda e: e.alerts), bool),
        )
        if ctl_alerts is not None:
            alerts = op.merge("alerts_and_control", alerts, ctl_alerts)
        _out("alerts_out", alerts, outputs.alerts)
    if outputs.marks:
        marks = op.map("marks", acc_out, lambda kv: [(kv[0], ts, eq) for ts, eq in kv[1].marks])
        _out("marks_out", op.filter("marks_any", marks, bool), outputs.marks)
    if outputs.accounts:
        _out(
            "accounts_out",
            op.filter("summary_any", op.map("summaries", em, lambda e: [e.summary] if e.summary else []), bool),
            outputs.accounts,
        )
    if outputs.dead or metrics is not None:  # the split's refusals and the late ticks (no step without a taker)
        late = op.flat_map_batch("late", sig_out, lambda kvs: [e.dead for _, e in kvs if e.dead])
        refused = op.flat_map_batch(
            "refused", split, lambda kvs: [v[1][1] for _, v in kvs if v[0] is None and v[1][0] == "dead"]
        )
        if metrics is not None:  # decoding failures are counted with their batch (metrics_in); these are the flow's own
            late = op.inspect("metrics_late_dead", late, lambda _s, ds: metrics.observe_dead(ds))
            refused = op.inspect("metrics_refused_dead", refused, lambda _s, ds: metrics.observe_dead(ds))
        if outputs.dead:
            all_dead = op.merge("all_dead", dead, late, refused)
            if sig is not None:
                all_dead = op.merge(
                    "all_dead_sig",
                    all_dead,
                    op.flat_map_batch("sig_dead", sig, lambda bs: [b.dead for b in bs if b.dead]),
                )
            _out("dlq_out", all_dead, outputs.dead)
    if sig is not None and outputs.signals:
        _out(
            "signals_out",
            op.flat_map_batch("sig_any", sig, lambda bs: [b.events for b in bs if b.events]),
            outputs.signals,
        )
    return flow


def _account_builder(cfg: PipelineConfig, remote: bool, flush_at_eof: bool) -> Callable[[bytes | None], _AccountLogic]:
    def build(resume: bytes | None) -> _AccountLogic:
        # the account's name is not passed to the builder: the first item tells it (see _AccountLogic.on_item)
        return _LazyAccount(cfg, remote, flush_at_eof, resume)

    return build


class _LazyAccount(_AccountLogic):
    """Creates the :class:`AccountStage` on its first item (the builder does not know the key)."""

    def __init__(self, cfg: PipelineConfig, remote: bool, flush_at_eof: bool, resume: bytes | None) -> None:
        self.cfg = cfg
        self.remote = remote
        super().__init__(pickle.loads(resume) if resume is not None else None, flush_at_eof)  # type: ignore[arg-type]

    def on_item(self, value: Any) -> tuple[list, bool]:
        if self.stage is None:  # every item names its account (the builder is not told the key)
            self.stage = AccountStage(self.cfg.account_config(value[3]), remote_venue=self.remote)
        return super().on_item(value)

    def on_eof(self) -> tuple[list, bool]:
        if self.stage is None:
            return [], StatefulLogic.RETAIN
        return super().on_eof()


def _reports_by_account(batch: Any) -> list[tuple[str, tuple]]:
    """A batch of execution reports as (account, ("reports", reports of that account, received)) items."""
    groups: dict[str, list] = {}
    for r in batch.events:
        groups.setdefault(r.account, []).append(r)
    return [(acc, ("reports", reps, batch.received_ns, acc)) for acc, reps in groups.items()]


def _model_pins(cfg: PipelineConfig, items: list[Any]) -> list[tuple[str, str, str | None]]:
    """The verified ``pin_model`` / ``unpin_model`` commands of a batch (topic order) as ``("pin", symbol,
    version or None)`` items for every symbol of the account they name."""
    out: list[tuple[str, str, str | None]] = []
    for account, (_, cmds, _rx, _a) in items:
        for c in cmds:
            if c.action in ("pin_model", "unpin_model"):
                v = str(c.parameters["version"]) if c.action == "pin_model" else None
                out.extend(("pin", s, v) for s in cfg.symbols if cfg.account_of(s) == account)
    return out


def _verify_control(
    cfg: PipelineConfig, keys: Mapping[str, bytes], models: Any | None = None
) -> Callable[[Any], tuple[list, list]]:
    """A batch of control commands -> (account items of the verified ones, (dead letter, alert, audit) of the
    refused). ``symbol:`` scopes go to the symbol's account, ``account:`` scopes to that account, ``strategy:``
    scopes to every account; a scope naming nothing this flow trades is refused as ``unknown_scope``, a
    ``pin_model`` of a version the model source cannot serve (unknown, or trained on other features) as
    ``unknown_model``."""
    accounts = cfg.account_names()

    def refuse(b: Any, i: int, c: Any, reason: str, detail: str) -> tuple:
        offs = b.offsets
        raw = encode(c)
        d = DeadLetter(
            source_topic=b.topic,
            partition=b.partition,
            offset=offs[i] if offs is not None else -1,
            key=c.compaction_key.encode(),
            error=reason,
            detail=detail[:4096],
            raw=raw,
            raw_size=len(raw),
            ts=c.ts,
            stage="control",
        )
        return d, refusal_alert(c, reason, detail), audit_event(c, "refused", f"{reason}: {detail}")

    def step(b: Any) -> tuple[list, list]:
        groups: dict[str, list] = {}
        refused = []
        for i, c in enumerate(b.events):
            v = verify(c, keys)
            if not v.ok:
                refused.append(refuse(b, i, c, v.reason, v.detail))
                continue
            kind, name = c.scope.split(":", 1)
            if kind == "account":
                targets = [name] if name in accounts else []
            elif kind == "symbol":
                targets = [cfg.account_of(name)] if name in cfg.symbols else []
            else:
                targets = accounts
            if not targets:
                refused.append(refuse(b, i, c, "unknown_scope", f"{c.scope} names no account or symbol of this flow"))
                continue
            if (
                c.action == "pin_model"
                and models is not None
                and hasattr(models, "usable")
                and not models.usable(str(c.parameters["version"]))
            ):
                refused.append(
                    refuse(
                        b,
                        i,
                        c,
                        "unknown_model",
                        f"model {c.parameters['version']} is not in the registry for this flow's features",
                    )
                )
                continue
            for a in targets:
                groups.setdefault(a, []).append(c)
        return [(a, ("control", cs, b.received_ns, a)) for a, cs in groups.items()], refused

    return step
