"""Execution: TWAP/VWAP slicing (exact sums, horizon, ids), the paper brokers (hand-computed fills, fees, P&L,
impact, limits, rebuild from fills after a restart)."""

from __future__ import annotations

import math
import pickle
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.execution import (
    BrokerConfig,
    ChildQueue,
    SimBroker,
    VolumeProfile,
    split_quantity,
    twap_children,
    vwap_children,
)
from schemas.events import Order

NS = 10**9
T0 = 1_700_006_400 * NS  # 2023-11-15 00:00 UTC
Tk = namedtuple("Tk", "symbol ts price qty")


def _parent(qty=1.0, side="buy", ts=T0, oid="ord-p"):
    return Order(order_id=oid, strategy="trend", symbol="BTC-USD", side=side, qty=qty, type="market", ts=ts)


@settings(max_examples=200, deadline=None)
@given(
    qty=st.floats(1e-6, 1e6),
    horizon=st.integers(1, 86_400 * 2),
    slice_s=st.integers(1, 7200),
    lot=st.sampled_from([0.0, 1e-3, 0.01]),
    start=st.integers(0, 86_400 * 30),
)
def test_twap_children_sum_exactly_and_respect_the_horizon(qty, horizon, slice_s, lot, start):
    p = _parent(qty, ts=T0 + start * NS)
    kids = twap_children(p, horizon, slice_s, lot=lot)
    assert kids and math.fsum(k.qty for k in kids) == qty
    assert all(p.ts <= k.ts < p.ts + horizon * NS for k in kids)
    assert all(k.parent_id == p.order_id and k.side == "buy" and k.qty > 0 for k in kids)
    assert len({k.order_id for k in kids}) == len(kids)
    assert [k.ts for k in kids] == sorted(k.ts for k in kids)


@settings(max_examples=100, deadline=None)
@given(
    qty=st.floats(1e-4, 1e4), horizon=st.integers(600, 86_400), start=st.integers(0, 86_400), seed=st.integers(0, 1000)
)
def test_vwap_children_sum_exactly_and_respect_the_horizon(qty, horizon, start, seed):
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(480, dtype=np.int64) * 1800 * NS
    prof = VolumeProfile.learn(ts, rng.gamma(2.0, 10.0, 480))
    p = _parent(qty, side="sell", ts=T0 + start * NS)
    kids = vwap_children(p, prof, horizon, 300)
    assert math.fsum(k.qty for k in kids) == qty
    assert all(p.ts <= k.ts < p.ts + horizon * NS for k in kids)


def test_twap_hand_computed_and_ids_deterministic():
    kids = twap_children(_parent(3.0), horizon_s=900, slice_s=300)
    assert [k.qty for k in kids] == [1.0, 1.0, 1.0]
    assert [(k.ts - T0) // NS for k in kids] == [0, 300, 600]
    again = twap_children(_parent(3.0), horizon_s=900, slice_s=300)
    assert [k.order_id for k in kids] == [k.order_id for k in again]
    other = twap_children(_parent(3.0, oid="ord-q"), horizon_s=900, slice_s=300)
    assert not {k.order_id for k in kids} & {k.order_id for k in other}
    assert [k.qty for k in twap_children(_parent(1.0), 600, 300, lot=0.3)] == [0.6, 0.4]
    assert [k.qty for k in twap_children(_parent(1.0), 1000, 250, min_child_qty=0.4)] == [0.5, 0.5]


def test_vwap_follows_the_learned_profile():
    # history: every day 3 units in 00:00-00:30, 1 unit in 00:30-01:00, nothing else
    ts, vol = [], []
    for d in range(10):
        ts += [T0 + d * 86_400 * NS, T0 + (d * 86_400 + 1800) * NS]
        vol += [3.0, 1.0]
    prof = VolumeProfile.learn(ts, vol, bucket_s=1800)
    assert prof.shares[0] == 0.75 and prof.shares[1] == 0.25 and sum(prof.shares[2:]) == 0
    kids = vwap_children(_parent(2.0), prof, horizon_s=3600, slice_s=900)
    assert [k.qty for k in kids] == [0.75, 0.75, 0.25, 0.25]
    # a horizon where the profile has no volume falls back to TWAP
    late = vwap_children(_parent(2.0, ts=T0 + 7200 * NS), prof, horizon_s=3600, slice_s=1800)
    assert [k.qty for k in late] == [1.0, 1.0]
    smooth = VolumeProfile.learn(ts, vol, smoothing=1.0)
    assert min(smooth.shares) > 0


def test_split_quantity_is_exact_on_awkward_numbers():
    for q in (0.1, 0.7, 1 / 3, 123456.789, 1e-9, 2.0**-30):
        for n in (1, 2, 3, 7, 10, 48):
            assert math.fsum(split_quantity(q, [1 / n] * n)) == q


def test_child_queue_releases_in_event_time_and_cancels():
    q = ChildQueue()
    kids = twap_children(_parent(4.0), 1200, 300)
    q.push(kids)
    q.push(kids)  # duplicates ignored
    assert len(q) == 4
    assert [c.ts for c in q.pop_due(T0 + 299 * NS)] == [T0]
    assert q.cancel_parent("ord-p") == 3 and len(q) == 0


# --------------------------------------------------------------------------------------------------- brokers


def test_baseline_costs_hand_computed_round_trip():
    """The baseline's venue costs (``paper_broker_config``: fixed slippage, no impact, one fee rate)."""
    from operators.pipeline import paper_broker_config

    b = SimBroker(10_000.0, paper_broker_config(latency_s=1.0, slippage_bps=10.0, fee_bps=20.0))
    b.submit(_parent(2.0))
    assert b.on_ticks([Tk("BTC-USD", T0 + NS // 2, 99.0, 1.0)]) == []  # before the latency
    f1 = b.on_ticks([Tk("BTC-USD", T0 + NS, 100.0, 1.0)])[0]
    assert f1.price == pytest.approx(100.1) and f1.fee == pytest.approx(100.1 * 2 * 0.002)
    assert b.cash == pytest.approx(10_000 - 200.2 - 0.4004)
    b.submit(_parent(2.0, side="sell", ts=T0 + 10 * NS, oid="ord-s"))
    f2 = b.on_ticks([Tk("BTC-USD", T0 + 11 * NS, 110.0, 1.0)])[0]
    assert f2.price == pytest.approx(109.89)
    assert b.position("BTC-USD") == 0.0
    realised = 2 * (109.89 - 100.1)
    fees = 0.4004 + 109.89 * 2 * 0.002
    assert b.realised() == pytest.approx(realised) and b.fees() == pytest.approx(fees)
    assert b.equity() == pytest.approx(10_000 + realised - fees)


def test_sim_broker_impact_fees_pnl_hand_computed():
    cfg = BrokerConfig(
        latency_s=0.5,
        half_spread_bps=2.0,
        impact_k_bps=20.0,
        max_impact_bps=50.0,
        volume_window_s=60.0,
        taker_fee_bps=10.0,
        maker_fee_bps=-1.0,
    )
    b = SimBroker(100_000.0, cfg)
    b.on_ticks([Tk("ETH-USD", T0 - 100 * NS, 199.0, 100.0), Tk("ETH-USD", T0 - 30 * NS, 200.0, 7.0)])
    b.submit(Order(order_id="m1", strategy="s", symbol="ETH-USD", side="buy", qty=4.0, type="market", ts=T0))
    assert b.on_ticks([Tk("ETH-USD", T0, 200.0, 1.0)]) == []  # not due before 0.5 s
    f = b.on_ticks([Tk("ETH-USD", T0 + NS, 200.0, 8.0)])[0]
    # V over (t - 60 s, t] = 7 + 1 + 8 = 16 (the tick 100 s back has left the window)
    impact = 20.0 * math.sqrt(4.0 / 16.0)  # 10 bps
    assert f.slippage_bps == pytest.approx(2.0 + impact)
    assert f.price == pytest.approx(200.0 * 1.0012)
    assert f.fee == pytest.approx(200.24 * 4 * 0.001) and f.liquidity == "taker"
    # resting sell limit above the market: fills at its price when a tick trades through it, maker rebate
    b.submit(
        Order(
            order_id="l1",
            strategy="s",
            symbol="ETH-USD",
            side="sell",
            qty=1.0,
            type="limit",
            limit_price=210.0,
            tif="GTC",
            ts=T0 + 2 * NS,
        )
    )
    assert b.on_ticks([Tk("ETH-USD", T0 + 3 * NS, 205.0, 1.0)]) == []
    g = b.on_ticks([Tk("ETH-USD", T0 + 4 * NS, 211.0, 1.0)])[0]
    assert g.price == 210.0 and g.fee == pytest.approx(-0.021) and g.liquidity == "maker"
    pos = b.positions["ETH-USD"]
    assert pos.qty == 3.0 and pos.avg_price == pytest.approx(200.24)
    assert pos.realised == pytest.approx(210.0 - 200.24)
    assert b.unrealised() == pytest.approx(3 * (211.0 - 200.24))
    eq = 100_000 - 4 * 200.24 - f.fee + 210.0 - g.fee + 3 * 211.0
    assert b.equity() == pytest.approx(eq)
    assert b.equity() == pytest.approx(100_000 + b.realised() - b.fees() + b.unrealised())
    snap = b.snapshot(peak_equity=eq * 2)
    assert snap.positions == {"ETH-USD": 3.0} and snap.gross_exposure == pytest.approx(633.0)
    assert snap.drawdown == pytest.approx(0.5)


def test_sim_broker_ioc_limit_cancel_zero_volume_cap_and_children():
    b = SimBroker(1_000.0, BrokerConfig(latency_s=0, max_impact_bps=40.0, half_spread_bps=0.0, volume_window_s=1.0))
    b.submit(
        Order(
            order_id="i1",
            strategy="s",
            symbol="BTC-USD",
            side="buy",
            qty=1.0,
            type="limit",
            limit_price=90.0,
            tif="IOC",
            ts=T0,
        )
    )
    assert b.on_ticks([Tk("BTC-USD", T0, 100.0, 0.0)]) == [] and b.open_orders() == []
    assert b.cancelled == ["i1"]
    b.submit(_parent(0.5, ts=T0 + NS))
    f = b.on_ticks([Tk("BTC-USD", T0 + NS, 100.0, 0.0)])[0]  # V = 0: capped impact
    assert f.slippage_bps == 40.0
    kids = twap_children(_parent(1.0, ts=T0 + 10 * NS, oid="par"), 60, 20)
    for k in kids:
        b.submit(k)
    assert b.cancel_parent("par") == 3


def test_rebuild_after_restart_from_fills():
    cfg = BrokerConfig(latency_s=0)
    live = SimBroker(50_000.0, cfg)
    fills = []
    px = [100.0, 101.0, 99.0, 103.0, 98.0, 97.0]
    for i, p in enumerate(px):
        sym = "BTC-USD" if i % 2 else "ETH-USD"
        live.submit(
            Order(
                order_id=f"o{i}",
                strategy="s",
                symbol=sym,
                side="buy" if i < 4 else "sell",
                qty=1.0 + i,
                type="market",
                ts=T0 + i * NS,
            )
        )
        fills += live.on_ticks([Tk(sym, T0 + i * NS, p, 10.0)])
    back = SimBroker.from_fills(50_000.0, fills + fills[:2], cfg)  # duplicates delivered twice
    assert back.cash == pytest.approx(live.cash, rel=1e-15)
    for s, p in live.positions.items():
        q = back.positions[s]
        assert (q.qty, q.avg_price, q.realised, q.fees) == pytest.approx((p.qty, p.avg_price, p.realised, p.fees))
    marks = {"BTC-USD": 100.0, "ETH-USD": 100.0}
    assert back.equity(marks) == pytest.approx(live.equity(marks))
    assert pickle.loads(pickle.dumps(back)).equity(marks) == back.equity(marks)


def test_split_quantity_exact_when_the_last_child_alone_cannot_be():
    """Found by hypothesis: 7766.864937291423 split 0.366/0.634 — the first child makes every value of the last one
    land exactly halfway between two doubles next to the total, so another child has to move by one ulp."""
    w = [0.3661420864934227, 0.6338579135065773]
    q = split_quantity(7766.864937291423, w)
    assert math.fsum(q) == 7766.864937291423 and all(x > 0 for x in q)


def test_the_in_process_venue_fills_are_the_ones_a_report_gives_and_none_is_kept():
    """The execution stage publishes the in-process venue's own Fill of each fill report (saving a rebuild); it is
    equal to what ``fill_of_report`` builds from the report, and the venue keeps none of them afterwards."""
    from collections import namedtuple

    from operators.execution.stage import ExecutionStage
    from operators.execution.venue import SimVenue, fill_of_report
    from operators.messages import Emitted
    from schemas.events import PortfolioSnapshot, RiskDecision

    T = namedtuple("T", "symbol ts price qty")
    t0 = 1_700_000_000_000_000_000
    ex = ExecutionStage(
        SimVenue(1e6, BrokerConfig(latency_s=0.0)), execution="twap", twap_horizon_s=30.0, twap_slice_s=10.0
    )
    d = RiskDecision(
        id="rd:1",
        intent_id="1",
        symbol="BTC-USD",
        ts=t0,
        action="approved",
        requested_qty=3.0,
        approved_qty=3.0,
        portfolio=PortfolioSnapshot(equity=1e6),
        strategy="s",
        side="buy",
    )
    out = Emitted()
    ex.apply(ex.submit(d, "s", t0, 1.0, False, t0, out), out)
    for i in range(4):
        ex.apply(ex.on_ticks([T("BTC-USD", t0 + i * 10**10, 100.0 + i, 50.0)]), out)
    fills = [r for r in out.reports if r.kind == "fill"]
    assert len(fills) == 3 and out.fills == [fill_of_report(r) for r in fills]
    assert ex.venue.fills == {} and not ex.oms.open
