"""The trading flow in-process: same orders whatever the partitioning and batching; late ticks and
bad input reach the dead-letter sink (the embedded default writing its summary, report and stores:
tests/integration/flows/test_trading_flow_live.py)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from bytewax.testing import run_main

from connectors.history import load_history
from connectors.history_source import HistorySource
from connectors.kafka.source import EventBatch
from connectors.memory import CollectSink
from flows.embedded import run_history
from flows.trading import Outputs, build_trading_flow
from operators.pipeline import PipelineConfig
from operators.risk import RiskLimits
from schemas.events import DeadLetter, Tick
from tests.support import DATA
from tests.support.sources import ListSource

FILES = [DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"]
# synthetic ticks every 225 s: prices up to an hour old count as fresh
CFG = PipelineConfig(
    base_resolution_s=300,
    bar_resolutions_s=(1800,),
    decision_resolution_s=1800,
    limits=RiskLimits(max_price_age_s=3600.0),
)


@pytest.fixture(scope="module")
def history():
    return load_history(FILES, ticks_per_bar=8, max_bars=2500)


def test_orders_independent_of_partitions_and_batch_size(history):
    runs = [
        run_history(history, None, CFG, partitions=p, batch_size=b, progress=False)
        for p, b in ((1, 5000), (3, 777), (2, 20_000))
    ]
    ref = sorted(runs[0].orders, key=lambda o: o.order_id)
    assert len(ref) > 50 and {o.symbol for o in ref} == {"BTC-USD", "ETH-USD"}
    for r in runs[1:]:
        assert sorted(r.orders, key=lambda o: o.order_id) == ref
        assert sorted(r.fills, key=lambda f: f.fill_id) == sorted(runs[0].fills, key=lambda f: f.fill_id)


def test_late_ticks_and_decode_failures_reach_the_dead_letter_sink():
    t0 = 1_700_000_000_000_000_000

    def tk(i: int, sec: float, sym: str = "BTC-USD") -> Tick:
        return Tick(symbol=sym, ts=t0 + int(sec * 1e9), price=100.0, qty=1.0, side="buy", trade_id=f"x:{i}", venue="x")

    bad = DeadLetter(source_topic="ticks", partition=0, offset=5, error="invalid_json", detail="x", raw=b"{", ts=t0)
    batches = [
        EventBatch("ticks", 0, 3, [tk(0, 0.1), tk(1, 5.2), tk(2, 9.9, "ETH-USD")]),
        EventBatch("ticks", 0, 6, [tk(3, 2.0), tk(4, 12.0)], [bad]),
    ]  # tick 3 is late for 1 s bars
    dead: list = []
    bars: list = []
    cfg = PipelineConfig(base_resolution_s=1, bar_resolutions_s=(60,), decision_resolution_s=60)
    run_main(build_trading_flow(ListSource(batches), Outputs(dead=[CollectSink(dead)], bars=[CollectSink(bars)]), cfg))
    reasons = sorted(d.error for d in dead)
    assert reasons == ["invalid_json", "late_tick"]
    late = next(d for d in dead if d.error == "late_tick")
    assert b'"x:3"' in late.raw and late.stage == "bars"
    # ETH's window closed through the partition watermark although ETH had no further tick
    assert any(b.symbol == "ETH-USD" and b.resolution_s == 1 for b in bars)


def test_a_wave_of_new_symbol_stages_freezes_the_collectors_heap_once_it_is_over():
    """With FREEZE_AFTER symbols or more the signals step freezes the collector's heap (gc.freeze) at the first
    item for a stage that already exists, not while the wave of new stages is still coming; the bars are those of
    the same run without the freeze."""
    import gc

    from flows import trading

    t0 = 1_700_000_000_000_000_000
    syms = [f"S{j:03d}-USD" for j in range(trading.FREEZE_AFTER + 6)]

    def batches(n: int) -> list:
        return [
            EventBatch(
                "ticks",
                0,
                i,
                [
                    Tick(
                        symbol=s,
                        ts=t0 + i * 700_000_000 + j,
                        price=100.0 + i,
                        qty=1.0,
                        side="buy",
                        trade_id=f"x:{j}:{i}",
                        venue="x",
                    )
                    for j, s in enumerate(syms)
                ],
            )
            for i in range(n)
        ]

    cfg = PipelineConfig(symbols=tuple(syms), base_resolution_s=1, bar_resolutions_s=(60,), decision_resolution_s=60)

    def run(n: int, freeze_after: int) -> tuple[list, int]:
        bars: list = []
        gc.unfreeze()
        trading._new_stages[0] = 0
        old, trading.FREEZE_AFTER = trading.FREEZE_AFTER, freeze_after
        try:
            run_main(build_trading_flow(ListSource(batches(n)), Outputs(bar_rows=[CollectSink(bars)]), cfg))
            return [tuple(b) for b in bars], gc.get_freeze_count()
        finally:
            trading.FREEZE_AFTER = old
            gc.unfreeze()

    assert run(1, len(syms))[1] == 0  # one batch: every item builds a stage, the wave is not over
    frozen_bars, frozen = run(4, len(syms))
    assert frozen > 0
    plain_bars, never = run(4, len(syms) + 1)  # one symbol short of a wave: never frozen
    assert never == 0
    assert frozen_bars == plain_bars and frozen_bars


def test_input_policy_dead_letters_unknown_far_future_and_duplicate_ticks(history):
    """Unknown symbols, a tick dated 2096 and exact duplicates each become a counted dead letter with its reason
    and its own key, and the valid ticks give the same orders as a run without the bad ones."""
    from dataclasses import replace as dc_replace

    import pandas as pd

    clean = run_history(history, None, CFG, partitions=2, batch_size=3000, progress=False)
    ticks = history.ticks
    dup = ticks.iloc[1000:1600]  # exact copies (same trade ids) of 600 ticks, delivered again right after
    doge = ticks.iloc[2000:2300].assign(symbol="DOGE-USD")
    future = ticks.iloc[[5000]].assign(ts=ticks.ts.iloc[5000] + 73 * 365 * 86_400 * 10**9)  # ~2096
    # duplicates right after their originals (stable sort), the far-future tick in the middle of the stream
    mixed = pd.concat([ticks, dup, doge]).sort_values("ts", kind="stable").reset_index(drop=True)
    mid = len(mixed) // 2
    mixed = pd.concat([mixed.iloc[:mid], future, mixed.iloc[mid:]]).reset_index(drop=True)
    noisy = dc_replace(history, ticks=mixed)
    dead: list = []
    from connectors.history_source import HistorySource

    orders: list = []
    cfg = dc_replace(CFG, symbols=("BTC-USD", "ETH-USD"))
    run_main(
        build_trading_flow(
            HistorySource(noisy.ticks, partitions=2, batch_size=3000),
            Outputs(orders=[CollectSink(orders)], dead=[CollectSink(dead)]),
            cfg,
        )
    )
    reasons = {}
    for d in dead:
        reasons[d.error] = reasons.get(d.error, 0) + 1
    assert reasons == {"duplicate_tick": 600, "unknown_symbol": 300, "future_skew": 1}
    assert len({d.dedupe_id for d in dead}) == len(dead), "every dead letter has its own key"
    assert all(d.partition >= 0 and d.offset >= 0 and d.stage == "split" for d in dead)
    assert sorted(orders, key=lambda o: o.order_id) == sorted(clean.orders, key=lambda o: o.order_id)


def test_signed_halt_stops_trading_and_a_forged_command_is_refused(history):
    """Through the flow's wiring: the control input is verified (HMAC), a forged command becomes a dead letter, an
    alert and a refused audit event; the signed halt reaches the account, which from then on refuses every order."""
    from connectors.history_source import HistorySource
    from operators.control import sign
    from schemas.events import ControlCommand

    key = b"k" * 32
    t = int(history.ticks.ts.iloc[0])
    halt = sign(
        ControlCommand(id="cmd-halt", issuer="ops", scope="account:default", action="halt", reason="test", ts=t), key
    )
    forged = sign(
        ControlCommand(id="cmd-resume", issuer="mallory", scope="account:default", action="resume", ts=t), b"x" * 32
    )
    out = {k: [] for k in ("orders", "decisions", "dead", "alerts", "audit")}
    outputs = Outputs(**{k: [CollectSink(v)] for k, v in out.items()})
    run_main(
        build_trading_flow(
            HistorySource(history.ticks, partitions=2, batch_size=5000),
            outputs,
            CFG,
            control_source=ListSource([EventBatch("control", 0, 2, [halt, forged], offsets=[0, 1])]),
            control_keys={"default": key},
        )
    )
    (applied,) = [a for a in out["audit"] if a.result == "applied"]
    # the halt took effect at the account's event time applied.ts (the two inputs interleave as they come):
    # from then on every decision is refused and no order is sent
    after = [d for d in out["decisions"] if d.ts > applied.ts]
    assert after and all(d.reasons == ["operator_halt"] for d in after)
    assert not [o for o in out["orders"] if o.ts > applied.ts]
    assert [(d.error, d.stage, d.offset) for d in out["dead"]] == [("bad_signature", "control", 1)]
    assert [a.labels["reason"] for a in out["alerts"] if a.kind == "control.refused"] == ["bad_signature"]
    assert sorted((a.command_id, a.result) for a in out["audit"]) == [
        ("cmd-halt", "applied"),
        ("cmd-resume", "refused"),
    ]


def test_columnar_batches_give_what_tick_objects_give(history):
    """The same ticks as columnar batches (``HistorySource``: the array folds) and as lists of ``Tick`` objects
    (the per-tick path): the same bars, features, orders, fills and dead letters, late ticks (some ticks moved
    back by 20 min) and a refused duplicate included."""
    from dataclasses import replace as dc_replace

    import pandas as pd

    from connectors.history import iter_tick_events

    t = history.ticks.iloc[:12_000].copy()
    late = t.index[3000:12_000:997]
    t.loc[late, "ts"] -= 1200 * 10**9  # late for the 300 s bars: dead letters, a batch on the per-tick path
    t = pd.concat([t, t.iloc[[5000]]]).sort_index(kind="stable").reset_index(drop=True)  # one duplicate trade id
    cfg = dc_replace(CFG, symbols=("BTC-USD", "ETH-USD"), allowed_lateness_s=60.0)

    def run(source):
        got = {k: [] for k in ("orders", "fills", "dead", "bars", "features")}
        run_main(build_trading_flow(source, Outputs(**{k: [CollectSink(v)] for k, v in got.items()}), cfg))
        return {
            "orders": sorted(got["orders"], key=lambda o: o.order_id),
            "fills": sorted(got["fills"], key=lambda f: f.fill_id),
            "dead": sorted((d.error, d.offset, d.raw) for d in got["dead"]),
            "bars": sorted((b.symbol, b.resolution_s, b.ts, b.close, b.volume, b.vwap) for b in got["bars"]),
            "features": sorted((f.symbol, f.ts, tuple(f.values)) for f in got["features"]),
        }

    ticks = list(iter_tick_events(t))
    objects = ListSource(
        [
            EventBatch("ticks", 0, i + 1234, ticks[i : i + 1234], offsets=list(range(i, min(len(ticks), i + 1234))))
            for i in range(0, len(ticks), 1234)
        ]
    )
    a, b = run(HistorySource(t, partitions=1, batch_size=2000)), run(objects)
    assert len(a["orders"]) > 10 and {d[0] for d in a["dead"]} == {"late_tick", "duplicate_tick"}
    assert a == b


def test_split_forgets_trade_ids_like_a_queue_of_single_ids():
    """The split's block-wise memory of recent trade ids forgets exactly what a queue of single ids, popped while
    the oldest is older than the edge or more than the cap are kept, forgets."""
    from collections import deque

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from flows.trading import _Splitter

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(
            st.tuples(st.lists(st.integers(0, 50), max_size=8), st.integers(0, 60), st.integers(0, 12)),
            min_size=1,
            max_size=12,
        ),
        st.booleans(),
    )
    def check(rounds, two):
        sp, ref, ref_set, k = _Splitter(), deque(), set(), 0
        for ts, edge, cap in rounds:
            keys = [("XY"[(k + i) % 3 == 0] if two else "X", str(k + i)) for i in range(len(ts))]
            k += len(ts)
            for sym, tid in keys:
                sp.seen.setdefault(sym, set()).add(tid)
            names = tuple(dict.fromkeys(sym for sym, _ in keys))
            if len(names) == 1:
                sp.remember(ts, [tid for _, tid in keys], names)
            else:
                codes = np.array([names.index(sym) for sym, _ in keys], np.int32)
                sp.remember(ts, np.array([tid for _, tid in keys], dtype=object), names, codes)
            ref.extend(zip(ts, keys, strict=True))
            ref_set.update(keys)
            sp.forget(edge, cap)
            while ref and (ref[0][0] < edge or len(ref) > cap):
                ref_set.discard(ref.popleft()[1])
            assert sp.remembered() == ref_set and sp.n_recent == len(ref)

    check()


def test_split_state_copy_is_independent():
    """The split's state as Bytewax snapshots it (``copy.deepcopy``): later batches do not change the copy."""
    import copy

    from flows.trading import _Splitter

    sp = _Splitter()
    sp.symbols.append("X")
    sp.seen["X"] = {"1", "2"}
    sp.remember([5, 9], ["1", "2"], ("X",))
    snap = copy.deepcopy(sp)
    sp.forget(6, 10)
    sp.seen["X"].add("3")
    sp.remember([12], ["3"], ("X",))
    sp.symbols.append("Y")
    sp.refused["x"] = 1
    assert snap.remembered() == {("X", "1"), ("X", "2")} and snap.n_recent == 2 and snap.symbols == ["X"]
    assert [b[2] for b in snap.recent] == [0] and len(snap.recent) == 1 and snap.refused == {}
    snap.forget(100, 10)
    assert snap.remembered() == set() and sp.remembered() == {("X", "2"), ("X", "3")}


def test_split_state_of_the_tuple_layout_resumes():
    """A split state pickled before the per-symbol id sets (one set of (symbol, trade_id) tuples, blocks of
    [ts, keys, start]) unpickles into the same memory: the same ids remembered and forgotten in the same order."""
    import pickle

    from flows.trading import _Splitter

    keys = [("X", "1"), ("Y", "1"), ("X", "2")]
    old = _Splitter.__new__(_Splitter)
    old.__setstate__(
        (
            None,
            {
                "symbols": ["X", "Y"],
                "watermark": 7,
                "recent": deque([[np.array([5, 6, 9], np.int64), keys, 1]]),
                "n_recent": 2,
                "recent_set": set(keys[1:]),
                "refused": {"duplicate_tick": 1},
            },
        )
    )
    sp = pickle.loads(pickle.dumps(old))
    assert sp.remembered() == {("Y", "1"), ("X", "2")} and sp.n_recent == 2 and sp.watermark == 7
    assert sp.symbols == ["X", "Y"] and sp.refused == {"duplicate_tick": 1}
    sp.forget(7, 10)  # the oldest kept, ("Y", "1") at 6, leaves; ("X", "2") at 9 stays
    assert sp.remembered() == {("X", "2")} and sp.n_recent == 1
