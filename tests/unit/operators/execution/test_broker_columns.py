"""``SimBroker.on_tick_columns`` (one symbol's trades as columns) against the tick-by-tick ``on_ticks``: random
streams cut in random chunks, random orders between the chunks; the same volume buckets (bit for bit), last
prices, fills, cancellations, pending orders and cash."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.execution.broker import BrokerConfig, SimBroker
from operators.execution.venue import SimVenue
from schemas.events import Order

T = namedtuple("T", "symbol ts price qty")
NS = 1_000_000_000
SYMS = ("BTC-USD", "ETH-USD")
T0 = 1_700_000_000 * NS

# a trade: symbol, time step (ns; negative = a late trade), price, quantity (awkward magnitudes so the order of the
# float additions shows in the bucket sums)
trade = st.tuples(
    st.sampled_from(SYMS),
    st.one_of(st.integers(0, 3 * NS), st.integers(0, NS // 50), st.integers(-2 * NS, 0), st.just(0)),
    st.floats(90.0, 110.0),
    st.one_of(st.floats(1e-6, 1e3), st.sampled_from([0.1, 0.2, 0.3, 1e-16, 1.0, 1e16])),
)
order = st.tuples(
    st.sampled_from(SYMS),
    st.sampled_from(["buy", "sell"]),
    st.floats(0.01, 5.0),
    st.sampled_from(["market", "limit"]),
    st.sampled_from(["GTC", "IOC", "FOK", "DAY"]),
    st.floats(95.0, 105.0),
    st.integers(-NS, 5 * NS),  # order time relative to the last trade fed
)
step = st.tuples(st.lists(trade, min_size=1, max_size=120), st.lists(order, max_size=3))
window = st.sampled_from([0.0, 1e-8, 0.5, 2.0, 7.0, 1800.0])
latency = st.sampled_from([0.0, 0.05, 1.0])


def _state(b: SimBroker) -> tuple:
    return (
        {s: [list(x) for x in dq] for s, dq in b.vol_ticks.items()},
        dict(b.last_price),
        {s: [o.order_id for o in q] for s, q in b.pending.items() if q},
        list(b.cancelled),
        b.cash,
        {s: (p.qty, p.avg_price, p.realised, p.fees, p.traded) for s, p in b.positions.items()},
        b.n_fills,
    )


def _chunks(trades: list[T], cuts: list[int]) -> list[list[T]]:
    """Runs of one symbol, each cut again where ``cuts`` says."""
    out: list[list[T]] = []
    for k, t in enumerate(trades):
        if out and out[-1][0].symbol == t.symbol and cuts[k % len(cuts)]:
            out[-1].append(t)
        else:
            out.append([t])
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=8), window, latency, st.lists(st.booleans(), min_size=1, max_size=7))
def test_columns_match_the_tick_by_tick_path(steps, window_s, latency_s, cuts):
    cfg = BrokerConfig(latency_s=latency_s, volume_window_s=window_s)
    ref, col = SimBroker(1e6, cfg), SimBroker(1e6, cfg)
    ts = T0
    n_orders = 0
    for trades, orders in steps:
        for sym, side, qty, kind, tif, lim, dt in orders:
            o = Order(
                order_id=f"o{n_orders}",
                strategy="s",
                symbol=sym,
                side=side,
                qty=qty,
                type=kind,
                limit_price=lim if kind == "limit" else None,
                tif=tif,
                ts=ts + dt,
            )
            n_orders += 1
            ref.submit(o)
            col.submit(o)
        rows = []
        for sym, dt, price, qty in trades:
            ts += dt
            rows.append(T(sym, ts, price, qty))
        for chunk in _chunks(rows, cuts):
            want = ref.on_ticks(chunk)
            got = col.on_tick_columns(
                chunk[0].symbol,
                np.array([t.ts for t in chunk], np.int64),
                np.array([t.price for t in chunk], np.float64),
                np.array([t.qty for t in chunk], np.float64),
            )
            assert got == want
            assert _state(col) == _state(ref)
            for s in SYMS:
                assert col.volume(s) == ref.volume(s)


def test_bucket_sums_are_the_sequential_sums():
    """1 + 15 x 1e-16 added one by one is 1.0 (each addition rounds back); numpy's pairwise sum gives
    1.0000000000000016: the bucket must hold the former, whatever the chunking."""
    qty = np.array([1.0] + [1e-16] * 15)
    ts = T0 + np.arange(16, dtype=np.int64)
    a, b, c = SimBroker(1.0), SimBroker(1.0), SimBroker(1.0)
    a.on_ticks([T("X", int(t), 1.0, float(q)) for t, q in zip(ts, qty, strict=True)])
    b.on_tick_columns("X", ts, np.ones(16), qty)  # one chunk: a new bucket
    c.on_tick_columns("X", ts[:1], np.ones(1), qty[:1])  # then the rest added to that bucket
    c.on_tick_columns("X", ts[1:], np.ones(15), qty[1:])
    want = [[T0 // b.bucket_ns, 1.0]]
    assert [list(x) for x in a.vol_ticks["X"]] == want
    assert [list(x) for x in b.vol_ticks["X"]] == want
    assert [list(x) for x in c.vol_ticks["X"]] == want
    assert float(np.sum(qty)) != 1.0
    assert type(b.vol_ticks["X"][0][1]) is float and type(b.vol_ticks["X"][0][0]) is int
    assert type(b.last_price["X"]) is float


def test_venue_columns_give_the_reports_of_the_rows():
    """SimVenue: a market order due in the middle of a chunk fills at the same trade, with the same report."""
    cfg = BrokerConfig(latency_s=0.05)
    a, b = SimVenue(1e4, cfg), SimVenue(1e4, cfg)
    o = Order(order_id="o1", strategy="s", symbol="BTC-USD", side="buy", qty=1.0, type="market", ts=T0)
    a.submit(o)
    b.submit(o)
    ts = np.arange(T0, T0 + NS, NS // 100, dtype=np.int64)
    px = 100.0 + np.arange(len(ts)) * 0.01
    qty = np.full(len(ts), 0.5)
    want = a.on_ticks([T("BTC-USD", int(t), float(p), float(q)) for t, p, q in zip(ts, px, qty, strict=True)])
    got = b.on_tick_columns("BTC-USD", ts, px, qty)
    assert got == want and len(got) == 1 and got[0].ts == T0 + 5 * NS // 100
    assert b.fills == a.fills and b.broker.last_price == a.broker.last_price


def test_a_late_last_trade_does_not_bring_dropped_buckets_back():
    """The window edge is the latest trade's, also when the chunk ends with a late trade."""
    cfg = BrokerConfig(volume_window_s=60.0)  # 1 s buckets
    ts = T0 + np.array([0, 10, 30, 61, 65, 20], np.int64) * NS
    qty = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    a, b = SimBroker(1.0, cfg), SimBroker(1.0, cfg)
    a.on_ticks([T("X", int(t), 1.0, float(q)) for t, q in zip(ts, qty, strict=True)])
    b.on_tick_columns("X", ts, np.ones(6), qty)
    assert [list(x) for x in b.vol_ticks["X"]] == [list(x) for x in a.vol_ticks["X"]]
    assert b.volume("X") == a.volume("X") == 20.0  # the trade at 0 s has left the window of the one at 65 s
