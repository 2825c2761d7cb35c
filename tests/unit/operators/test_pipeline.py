"""The decision path in process (signal stage + account stage): deterministic whatever the batching and the
interleaving of symbols, recoverable by pickling, fills only from the venue's reports."""

from __future__ import annotations

import itertools
import pickle
import random

import pytest

from connectors.history import iter_tick_events, load_history
from operators.pipeline import LocalPipeline, PipelineConfig
from operators.risk import RiskLimits
from schemas.events import Tick
from tests.support import DATA

# the full mode (orchestrated strategies, risk gate, TWAP, simulated venue) on 30-minute decisions; synthetic
# ticks come every 225 s, so prices up to an hour old count as fresh
CFG = PipelineConfig(
    base_resolution_s=300,
    bar_resolutions_s=(1800,),
    decision_resolution_s=1800,
    trend_entry=0.004,
    trend_exit=0.001,
    limits=RiskLimits(max_price_age_s=3600.0),
    twap_horizon_s=900.0,
    twap_slice_s=300.0,
    symbols=("BTC-USD",),
)
BASELINE = PipelineConfig(
    base_resolution_s=300,
    bar_resolutions_s=(1800,),
    decision_resolution_s=1800,
    trend_entry=0.004,
    trend_exit=0.001,
    mode="baseline",
    symbols=("BTC-USD",),
)
TWO = PipelineConfig(
    base_resolution_s=300,
    bar_resolutions_s=(1800,),
    decision_resolution_s=1800,
    limits=RiskLimits(max_price_age_s=3600.0),
    twap_horizon_s=900.0,
    twap_slice_s=300.0,
)


@pytest.fixture(scope="module")
def btc_ticks() -> list[Tick]:
    h = load_history([DATA / "BTC-30m.csv.gz"], ticks_per_bar=8, max_bars=3000)
    return list(iter_tick_events(h.ticks))


@pytest.fixture(scope="module")
def two_ticks() -> dict[str, list[Tick]]:
    h = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=2000)
    ticks = list(iter_tick_events(h.ticks))
    return {s: [t for t in ticks if t.symbol == s] for s in ("BTC-USD", "ETH-USD")}


def run(
    ticks: list[Tick],
    cuts: list[int],
    *,
    pickle_between: bool = False,
    heartbeats: bool = False,
    cfg: PipelineConfig = CFG,
):
    p = LocalPipeline(cfg)
    orders, fills, feats, bars = [], [], [], []
    bounds = [0, *sorted(set(cuts)), len(ticks)]

    def take(e):
        orders.extend(e.orders)
        fills.extend(e.fills)
        feats.extend(e.features)
        bars.extend(e.bars)

    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        take(p.on_batch("BTC-USD", ticks[lo:hi], ticks[hi - 1].ts))
        if heartbeats:  # an idle heartbeat with the same watermark changes nothing
            take(p.on_batch("BTC-USD", (), ticks[hi - 1].ts))
        if pickle_between:
            p = pickle.loads(pickle.dumps(p))
    take(p.flush())
    return orders, fills, feats, bars, p


@pytest.mark.parametrize("cfg", [CFG, BASELINE], ids=["full", "baseline"])
def test_orders_do_not_depend_on_batching_or_restarts(btc_ticks, cfg):
    ref = run(btc_ticks, [], cfg=cfg)
    assert len(ref[0]) > 20  # both modes trade on this slice
    rng = random.Random(7)
    for trial in range(4):
        cuts = [rng.randrange(1, len(btc_ticks)) for _ in range(rng.randrange(1, 200))]
        got = run(btc_ticks, cuts, pickle_between=trial % 2 == 0, heartbeats=trial == 3, cfg=cfg)
        assert got[0] == ref[0] and got[1] == ref[1] and got[2] == ref[2]
        assert sorted(got[3], key=lambda b: (b.resolution_s, b.ts)) == sorted(
            ref[3], key=lambda b: (b.resolution_s, b.ts)
        )


def _interleaved(two: dict[str, list[Tick]], seed: int) -> list[tuple[str, list[Tick]]]:
    """The two symbols' streams cut into random batches and interleaved at random (each stream's order kept)."""
    rng = random.Random(seed)
    parts = {}
    for s, ticks in two.items():
        cuts = sorted({rng.randrange(1, len(ticks)) for _ in range(rng.randrange(5, 300))})
        b = [0, *cuts, len(ticks)]
        parts[s] = [ticks[lo:hi] for lo, hi in itertools.pairwise(b)]
    out = []
    while any(parts.values()):
        s = rng.choice([k for k, v in parts.items() if v])
        out.append((s, parts[s].pop(0)))
    return out


def test_one_account_is_independent_of_how_symbols_interleave(two_ticks):
    """BTC and ETH share one account: the same orders, fills and marks whatever the batches and their arrival order
    (the account's clock waits for both symbols)."""
    results = []
    for seed in (1, 2, 3):
        p = LocalPipeline(TWO)
        orders, fills, marks = [], [], []
        for sym, batch in _interleaved(two_ticks, seed):
            e = p.on_batch(sym, batch, batch[-1].ts)
            orders += e.orders
            fills += e.fills
            marks += e.marks
        e = p.flush()
        orders += e.orders
        fills += e.fills
        marks += e.marks
        results.append((orders, fills, marks))
    assert len(results[0][0]) > 20 and {o.symbol for o in results[0][0]} == {"BTC-USD", "ETH-USD"}
    for r in results[1:]:
        assert r == results[0]


def test_positions_come_from_fill_reports_and_every_parent_has_a_decision(btc_ticks):
    orders, fills, _, _, p = run(btc_ticks, [1000, 5000])
    acc = p.account()
    assert len({o.order_id for o in orders}) == len(orders)
    assert len({f.fill_id for f in fills}) == len(fills) <= len(orders)
    by_id = {o.order_id: o for o in orders}
    latency = int(CFG.broker.latency_s * 1e9)
    for f in fills:
        o = by_id[f.order_id]  # every fill belongs to an emitted (child) order, after its release + latency
        assert f.ts >= o.ts + latency and f.qty == o.qty and f.side == o.side and o.parent_id
    pos = sum(f.qty if f.side == "buy" else -f.qty for f in fills)
    assert acc.ledger.position("BTC-USD") == pytest.approx(pos, abs=1e-9)
    # the account's books and the venue's agree after a clean run (the venue is the truth)
    assert acc.ledger.position("BTC-USD") == pytest.approx(acc.venue.broker.position("BTC-USD"), abs=1e-12)
    assert acc.ledger.cash == pytest.approx(acc.venue.broker.cash, rel=1e-12)
    assert acc.oms.counts["fill"] == len(fills) and acc.oms.duplicates == 0 and not acc.oms.gaps


def test_risk_decisions_cover_every_parent(btc_ticks):
    p = LocalPipeline(CFG)
    decisions, orders, intents = [], [], []
    for i in range(0, len(btc_ticks), 4000):
        e = p.on_batch("BTC-USD", btc_ticks[i : i + 4000], btc_ticks[min(i + 3999, len(btc_ticks) - 1)].ts)
        decisions += e.decisions
        orders += e.orders
        intents += e.intents
    by_parent: dict[str, float] = {}
    for o in orders:
        by_parent[o.parent_id] = by_parent.get(o.parent_id, 0.0) + o.qty
    approved = {d.id: d.approved_qty for d in decisions if d.approved_qty > 0}
    assert set(by_parent) == set(approved)
    for pid, qty in by_parent.items():
        assert qty == pytest.approx(approved[pid], rel=1e-12)
    assert {d.action for d in decisions} <= {"approved", "resized", "rejected"}
    assert any(d.action == "rejected" for d in decisions) and any(d.action != "rejected" for d in decisions)
    # every intent the account has reached has its decision, named after it
    assert {d.intent_id for d in decisions} <= {i.id for i in intents}
    assert len(decisions) >= len(intents) - 2


def test_decisions_use_only_the_past(btc_ticks):
    """Orders decided from a prefix of the stream are exactly the prefix of the full run's orders."""
    full = run(btc_ticks, [])[0]
    half = run(btc_ticks[: len(btc_ticks) // 2], [])[0]
    assert half == full[: len(half)]


def test_late_ticks_are_returned_not_lost():
    p = LocalPipeline(
        PipelineConfig(base_resolution_s=1, bar_resolutions_s=(60,), decision_resolution_s=60, symbols=("BTC-USD",))
    )
    t0 = 1_700_000_000_000_000_000

    def tk(i: int, sec: float) -> Tick:
        return Tick(
            symbol="BTC-USD", ts=t0 + int(sec * 1e9), price=100.0 + i, qty=1.0, side="buy", trade_id=f"x:{i}", venue="x"
        )

    e1 = p.on_batch("BTC-USD", [tk(0, 0.1), tk(1, 1.2), tk(2, 2.5)])
    e2 = p.on_batch("BTC-USD", [tk(3, 0.5), tk(4, 3.1)])  # tick 3 belongs to a closed 1 s window
    assert [t.trade_id for t in e2.late] == ["x:3"] and not e1.late
    assert sum(b.volume for b in e1.bars + e2.bars if b.resolution_s == 1) == 3.0  # bars 0 s, 1 s, 2 s


def test_small_and_columnar_batches_fold_alike(btc_ticks):
    """Batches below and above ``SMALL_BATCH`` (tick by tick, or array folds), as Tick objects or as columns,
    mixed in one stream: the same bars, features and decision points as one batch of everything; 1 s base bars
    with 60 s and 300 s bars derived, so every path of both folds runs."""
    from dataclasses import replace

    from operators.messages import TickBatch
    from operators.signal_stage import SMALL_BATCH, SignalStage

    cfg = replace(CFG, base_resolution_s=1, bar_resolutions_s=(60, 300), decision_resolution_s=300)
    ticks = btc_ticks[:6000]

    def fold(cuts: list[int], columnar: bool):
        st, bars, feats, points, i, k = SignalStage("BTC-USD", cfg), [], [], [], 0, 0
        while i < len(ticks):
            j = min(len(ticks), i + cuts[k % len(cuts)])
            chunk = ticks[i:j]
            out = st.on_batch(TickBatch.from_ticks(chunk) if columnar and k % 2 else chunk, ticks[j - 1].ts)
            bars += out.bars
            feats += [(f.ts, f.values) for f in out.features]
            points += [(p.ts, p.close, p.intent) for p in out.update.points]
            i, k = j, k + 1
        return sorted(bars), feats, points

    ref = fold([len(ticks)], False)
    assert len(ref[2]) > 100
    assert fold([1, 3, SMALL_BATCH, SMALL_BATCH + 1, 250, 7], True) == ref
    assert fold([2, 400, 5], False) == ref
