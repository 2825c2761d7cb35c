"""The paper venue's rules (operators/execution/paper_venue.py) and the account's reconciliation against it."""

from __future__ import annotations

import pickle

import pytest

from operators.account.stage import AccountConfig, AccountStage
from operators.execution.paper_venue import PaperVenue
from schemas.events import Order, Tick

T = 1_700_000_000_000_000_000
NS = 1_000_000_000


def tick(i: int, px: float = 100.0, qty: float = 4.0, sym: str = "BTC-USD") -> Tick:
    return Tick(symbol=sym, ts=T + i * NS, price=px, qty=qty, side="buy", trade_id=f"{sym}:{i}", venue="x")


def order(oid: str, side: str = "buy", qty: float = 3.0, ts: int = T, **kw) -> Order:
    return Order(
        order_id=oid, strategy="s", symbol=kw.pop("symbol", "BTC-USD"), side=side, qty=qty, type="market", ts=ts, **kw
    )


def venue(**kw) -> PaperVenue:
    base = dict(
        cash=10_000.0,
        latency_s=0.0,
        max_participation=0.5,
        half_spread_bps=0.0,
        impact_k_bps=0.0,
        taker_fee_bps=10.0,
        ttl_s=5.0,
        snapshot_every=0,
    )
    base.update(kw)
    return PaperVenue(("BTC-USD", "ETH-USD"), **base)


def test_partial_fills_fees_and_positions_hand_computed():
    v = venue()
    assert [r.kind for r in v.submit(order("o1"))] == ["ack"]
    rs = v.on_ticks([tick(0), tick(1, px=110.0)])
    assert [(r.kind, r.last_qty, r.last_price, r.cum_qty, r.leaves_qty) for r in rs] == [
        ("partial_fill", 2.0, 100.0, 2.0, 1.0),
        ("fill", 1.0, 110.0, 3.0, 0.0),
    ]
    assert [r.fee for r in rs] == pytest.approx([0.2, 0.11])
    assert v.position("BTC-USD") == 3.0 and v.cash == pytest.approx(10_000 - 200 - 110 - 0.31)
    assert [r.seq for r in rs] == [1, 2] and rs[0].id == "paper:default:1"


def test_rejects_ttl_cancel_and_no_second_execution():
    v = venue(max_order_notional=1_000.0)
    v.on_ticks([tick(0)])
    assert v.submit(order("big", qty=20.0))[0].reason == "max_order_notional"
    assert v.submit(order("x", symbol="DOGE-USD"))[0].reason == "unknown_symbol"
    assert v.submit(order("ro", side="sell", reduce_only=True))[0].reason == "reduce_only_would_increase"
    v.submit(order("slow", qty=9.0, ts=T + NS))
    got = v.on_ticks([tick(1, qty=2.0), tick(7, qty=2.0)])  # takes 1.0, then 6 s later the ttl (5 s) ends it
    assert [(r.kind, r.reason, r.cum_qty, r.leaves_qty) for r in got] == [
        ("partial_fill", "", 1.0, 8.0),
        ("cancel", "ttl", 1.0, 8.0),
    ]
    assert v.submit(order("slow", qty=9.0)) == []  # the same client id again: ignored


def test_restart_restores_seq_positions_and_reports_working_orders_cancelled():
    v = venue()
    reports = v.submit(order("a")) + v.on_ticks([tick(0)]) + v.submit(order("b", ts=T + 10 * NS))
    w = venue()
    assert w.restore(reports) == len(reports)
    assert w.seq == v.seq and w.position("BTC-USD") == v.position("BTC-USD") and w.cash == pytest.approx(v.cash)
    cancels = w.orphan_cancels()  # "a" was still working (2 of 3 filled), "b" only acknowledged
    assert [(c.client_order_id, c.kind, c.reason, c.cum_qty, c.leaves_qty) for c in cancels] == [
        ("a", "cancel", "venue_restart", 2.0, 1.0),
        ("b", "cancel", "venue_restart", 0.0, 3.0),
    ]
    assert [c.seq for c in cancels] == [v.seq, v.seq + 1] and w.submit(order("a")) == []


def test_account_reconciles_and_goes_reduce_only_on_a_mismatch():
    from operators.messages import SymbolUpdate

    acc = AccountStage(AccountConfig(symbols=("BTC-USD",)), remote_venue=True)
    acc.on_update(
        SymbolUpdate("BTC-USD", None, [], [], T + 10 * NS)
    )  # the account's event time: reports before it apply
    v = venue(snapshot_every=0)
    o = order("c1", qty=2.0)
    acc.oms.new(o)
    reps = v.submit(o) + v.on_ticks([tick(0)])
    out = acc.on_reports(reps + [v.snapshot(T)])
    assert acc.ledger.position("BTC-USD") == 2.0 and acc.reconcile_mode == "normal" and not out.alerts
    v.phantom["BTC-USD"] = 0.5  # the venue holds what it never reported
    out = acc.on_reports([v.snapshot(T + NS)])
    (a,) = out.alerts
    assert a.kind == "reconciliation.mismatch" and "book +2 vs venue +2.5" in a.message
    assert acc.reconcile_mode == "reduce_only" and acc.mismatches == 1
    v.phantom.clear()
    out = acc.on_reports([v.snapshot(T + 2 * NS)])
    assert acc.reconcile_mode == "normal" and out.alerts[0].kind == "reconciliation.resolved"
    assert pickle.loads(pickle.dumps(acc)).ledger.position("BTC-USD") == 2.0
