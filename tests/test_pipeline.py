"""The per-symbol pipeline: deterministic whatever the batching, recoverable by pickling, event-time fills."""

from __future__ import annotations

import pickle
import random

import pytest

from connectors.history import iter_tick_events, load_history
from operators.execution import PaperBroker, PaperConfig
from operators.pipeline import PipelineConfig, SymbolPipeline
from schemas.events import Order, Tick

from .conftest import DATA

from operators.risk import RiskLimits

# the full mode (orchestrated strategies, risk gate, TWAP, simulated broker) on 30-minute decisions; synthetic
# ticks come every 225 s, so prices up to an hour old count as fresh
CFG = PipelineConfig(base_resolution_s=300, bar_resolutions_s=(1800,), decision_resolution_s=1800,
                     trend_entry=0.004, trend_exit=0.001, limits=RiskLimits(max_price_age_s=3600.0),
                     twap_horizon_s=900.0, twap_slice_s=300.0)
BASELINE = PipelineConfig(base_resolution_s=300, bar_resolutions_s=(1800,), decision_resolution_s=1800,
                          trend_entry=0.004, trend_exit=0.001, mode="baseline")


@pytest.fixture(scope="module")
def btc_ticks() -> list[Tick]:
    h = load_history([DATA / "BTC-30m.csv.gz"], ticks_per_bar=8, max_bars=3000)
    return list(iter_tick_events(h.ticks))


def run(ticks: list[Tick], cuts: list[int], *, pickle_between: bool = False, heartbeats: bool = False,
        cfg: PipelineConfig = CFG):
    p = SymbolPipeline("BTC-USD", cfg)
    orders, fills, feats, bars = [], [], [], []
    bounds = [0, *sorted(set(cuts)), len(ticks)]
    for lo, hi in zip(bounds, bounds[1:]):
        if hi <= lo:
            continue
        e = p.on_batch(ticks[lo:hi], ticks[hi - 1].ts)
        if heartbeats:  # an idle heartbeat with the same watermark changes nothing
            e2 = p.on_batch((), ticks[hi - 1].ts)
            for k in ("orders", "fills", "features", "bars"):
                getattr(e, k).extend(getattr(e2, k))
        orders += e.orders
        fills += e.fills
        feats += e.features
        bars += e.bars
        if pickle_between:
            p = pickle.loads(pickle.dumps(p))
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
        assert sorted(got[3], key=lambda b: (b.resolution_s, b.ts)) == sorted(ref[3], key=lambda b: (b.resolution_s, b.ts))


def test_ids_are_unique_and_fills_follow_orders(btc_ticks):
    orders, fills, _, _, p = run(btc_ticks, [1000, 5000])
    assert len({o.order_id for o in orders}) == len(orders)
    assert len({f.fill_id for f in fills}) == len(fills) <= len(orders)
    by_id = {o.order_id: o for o in orders}
    latency = int(CFG.broker.latency_s * 1e9)
    for f in fills:
        o = by_id[f.order_id]  # every fill belongs to an emitted (child) order, after its release + latency
        assert f.ts >= o.ts + latency and f.qty == o.qty and f.side == o.side and o.parent_id
    # the position is the signed sum of the fills
    pos = sum(f.qty if f.side == "buy" else -f.qty for f in fills)
    assert p.broker.position("BTC-USD") == pytest.approx(pos, abs=1e-9)


def test_risk_decisions_cover_every_parent(btc_ticks):
    p = SymbolPipeline("BTC-USD", CFG)
    decisions, orders = [], []
    for i in range(0, len(btc_ticks), 4000):
        e = p.on_batch(btc_ticks[i:i + 4000], btc_ticks[min(i + 3999, len(btc_ticks) - 1)].ts)
        decisions += e.decisions
        orders += e.orders
    by_parent: dict[str, float] = {}
    for o in orders:
        by_parent[o.parent_id] = by_parent.get(o.parent_id, 0.0) + o.qty
    approved = {d.id: d.approved_qty for d in decisions if d.approved_qty > 0}
    assert set(by_parent) == set(approved)
    for pid, qty in by_parent.items():
        assert qty == pytest.approx(approved[pid], rel=1e-12)
    assert {d.action for d in decisions} <= {"approved", "resized", "rejected"}
    assert any(d.action == "rejected" for d in decisions) and any(d.action != "rejected" for d in decisions)


def test_decisions_use_only_the_past(btc_ticks):
    """Orders decided from a prefix of the stream are exactly the prefix of the full run's orders."""
    full = run(btc_ticks, [])[0]
    half = run(btc_ticks[: len(btc_ticks) // 2], [])[0]
    assert half == full[: len(half)]


def test_late_ticks_are_returned_not_lost():
    p = SymbolPipeline("BTC-USD", PipelineConfig(base_resolution_s=1, bar_resolutions_s=(60,), decision_resolution_s=60))
    t0 = 1_700_000_000_000_000_000

    def tk(i: int, sec: float) -> Tick:
        return Tick(symbol="BTC-USD", ts=t0 + int(sec * 1e9), price=100.0 + i, qty=1.0, side="buy",
                    trade_id=f"x:{i}", venue="x")

    e1 = p.on_batch([tk(0, 0.1), tk(1, 1.2), tk(2, 2.5)])
    e2 = p.on_batch([tk(3, 0.5), tk(4, 3.1)])  # tick 3 belongs to a closed 1 s window
    assert [t.trade_id for t in e2.late] == ["x:3"] and not e1.late
    assert sum(b.volume for b in e1.bars + e2.bars if b.resolution_s == 1) == 3.0  # bars 0 s, 1 s, 2 s


def test_paper_broker_hand_computed():
    b = PaperBroker("BTC-USD", cash=10_000.0, cfg=PaperConfig(latency_s=1.0, slippage_bps=10.0, fee_bps=10.0))
    t0 = 1_700_000_000_000_000_000

    def tick(sec: int, px: float) -> Tick:
        return Tick(symbol="BTC-USD", ts=t0 + sec * 1_000_000_000, price=px, qty=1.0, side="buy", trade_id=f"t{sec}", venue="x")

    def order(i: int, side: str, qty: float, sec: int) -> Order:
        return Order(order_id=f"o{i}", strategy="s", symbol="BTC-USD", side=side, qty=qty, type="market",
                     ts=t0 + sec * 1_000_000_000)

    b.submit(order(1, "buy", 2.0, 0))
    assert b.on_ticks([tick(0, 100.0)]) == []  # too early: latency 1 s
    (f1,) = b.on_ticks([tick(1, 100.0), tick(2, 105.0)])
    assert f1.price == pytest.approx(100.1) and f1.fee == pytest.approx(2 * 100.1 * 0.001)
    assert b.position == 2.0 and b.cash == pytest.approx(10_000 - 200.2 - 0.2002)
    b.submit(order(2, "sell", 3.0, 2))  # close 2 and go short 1
    (f2,) = b.on_ticks([tick(3, 110.0)])
    assert f2.price == pytest.approx(109.89)
    assert b.position == pytest.approx(-1.0) and b.avg_price == pytest.approx(109.89)
    fees = 0.2002 + 3 * 109.89 * 0.001
    assert b.realised == pytest.approx(2 * (109.89 - 100.1) - fees)
    assert b.equity(109.89) == pytest.approx(10_000 + 2 * (109.89 - 100.1) - fees)
