"""Tests for operators.synthetic: bars -> deterministic intra-bar ticks."""

from __future__ import annotations

import gzip
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators import synthetic as syn
from tests.support import DATA

NS = 1_000_000_000
BarT = namedtuple("BarT", "symbol ts resolution_s open high low close volume")


@st.composite
def bar_arrays(draw, max_bars: int = 12):
    m = draw(st.integers(1, max_bars))
    price = st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False)
    rows = []
    for _ in range(m):
        ps = sorted(draw(st.lists(price, min_size=4, max_size=4)))
        lo, hi = ps[0], ps[3]
        o, c = draw(st.permutations([ps[1], ps[2]]))
        if draw(st.booleans()):
            o = draw(st.sampled_from([lo, hi, o]))
        if draw(st.booleans()):
            c = draw(st.sampled_from([lo, hi, c]))
        if draw(st.integers(0, 9)) == 0:
            lo = hi = o = c = ps[1]  # flat bar
        v = draw(st.one_of(st.just(0.0), st.floats(0, 1e7, allow_nan=False)))
        rows.append((o, hi, lo, c, v))
    res = draw(st.sampled_from([1, 60, 1800]))
    gaps = draw(st.lists(st.integers(1, 3), min_size=m, max_size=m))
    t0 = draw(st.integers(0, 2 * 10**18 // NS)) * NS
    ts = t0 + np.cumsum(np.array(gaps, dtype=np.int64)) * res * NS
    o, h, lo, c, v = (np.array(x, dtype=float) for x in zip(*rows, strict=True))
    return ts, o, h, lo, c, v, res


@settings(max_examples=200, deadline=None)
@given(bar_arrays(), st.integers(4, 40))
def test_path_properties(bars, n):
    ts, o, h, lo, c, v, res = bars
    t = syn.synthesize_ticks(ts, o, h, lo, c, v, resolution_s=res, n=n, symbol="X")
    m = len(ts)
    assert len(t) == m * n
    P = t.price.reshape(m, n)
    Q = t.qty.reshape(m, n)
    T = t.ts.reshape(m, n)
    # every price within [low, high]
    assert np.all(lo[:, None] <= P) and np.all(h[:, None] >= P)
    # open first, close last, high and low visited exactly
    assert np.array_equal(P[:, 0], o) and np.array_equal(P[:, -1], c)
    assert np.all((h[:, None] == P).any(axis=1)) and np.all((lo[:, None] == P).any(axis=1))
    # volume conserved, quantities non-negative
    assert np.all(Q >= 0)
    np.testing.assert_allclose(Q.sum(axis=1), v, rtol=1e-12, atol=1e-9)
    # timestamps: first at bar open, strictly increasing, inside [ts, ts + res)
    assert np.array_equal(T[:, 0], ts)
    assert np.all(np.diff(t.ts) > 0)
    assert np.all(T[:, -1] < ts + res * NS)
    # sides from the tick rule
    d = np.sign(np.diff(t.price))
    for k in range(1, len(t)):
        expect = d[k - 1] if d[k - 1] != 0 else t.side[k - 1]
        assert t.side[k] == expect
    assert t.side[0] == syn.SIDE_UNKNOWN
    # bar order: an up bar (close >= open) visits low at the first waypoint, then high; a down bar the reverse
    k1, k2 = round((n - 1) / 3 + 1e-9), round(2 * (n - 1) / 3 + 1e-9)
    up = c >= o
    np.testing.assert_array_equal(P[:, k1], np.where(up, lo, h))
    np.testing.assert_array_equal(P[:, k2], np.where(up, h, lo))


@settings(max_examples=100, deadline=None)
@given(bar_arrays(max_bars=20), st.integers(4, 12), st.integers(1, 19))
def test_deterministic_and_chunk_invariant(bars, n, cut):
    ts, o, h, lo, c, v, res = bars
    kw = dict(resolution_s=res, n=n, symbol="ETH", venue="replay")
    a = syn.synthesize_ticks(ts, o, h, lo, c, v, **kw)
    b = syn.synthesize_ticks(ts.copy(), o.copy(), h.copy(), lo.copy(), c.copy(), v.copy(), **kw)
    for f in ("ts", "price", "qty", "side", "bar_ts", "index"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert a.trade_ids() == b.trade_ids()
    assert len(set(a.trade_ids())) == len(a)
    cut = min(cut, len(ts))
    first = syn.synthesize_ticks(ts[:cut], o[:cut], h[:cut], lo[:cut], c[:cut], v[:cut], **kw)
    rest = syn.synthesize_ticks(
        ts[cut:],
        o[cut:],
        h[cut:],
        lo[cut:],
        c[cut:],
        v[cut:],
        **kw,
        prev_close=float(first.price[-1]) if len(first) else None,
        prev_side=int(first.side[-1]) if len(first) else 0,
    )
    assert np.array_equal(np.concatenate([first.side, rest.side]), a.side)
    assert first.trade_ids() + rest.trade_ids() == a.trade_ids()


def test_hand_computed_up_and_down_bar():
    ts = np.array([0, 1800 * NS], dtype=np.int64)
    t = syn.synthesize_ticks(
        ts,
        np.array([100.0, 105.0]),
        np.array([110.0, 106.0]),
        np.array([95.0, 90.0]),
        np.array([105.0, 91.0]),
        np.array([8.0, 1.0]),
        resolution_s=1800,
        n=4,
        symbol="BTC",
    )
    assert t.price.tolist() == [100.0, 95.0, 110.0, 105.0, 105.0, 106.0, 90.0, 91.0]
    assert t.side.tolist() == [0, -1, 1, -1, -1, 1, -1, 1]
    assert t.qty.tolist() == [2.0] * 4 + [0.25] * 4
    assert t.ts.tolist() == [0, 450 * NS, 900 * NS, 1350 * NS] + [(1800 + k * 450) * NS for k in range(4)]
    assert t.trade_ids()[5] == "synthetic:BTC:1800000000000:1"


def test_default_eight_ticks_layout():
    seg, w = syn.path_layout(8)
    # waypoints at 0, 2, 5, 7
    assert seg.tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    assert w.tolist() == [0.0, 0.5, 0.0, 1 / 3, 2 / 3, 0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "bad",
    [
        dict(h=99.0),  # high below open
        dict(lo=101.0),  # low above open
        dict(v=-1.0),
        dict(o=float("nan")),
    ],
)
def test_rejects_inconsistent_bars(bad):
    a = dict(o=100.0, h=110.0, lo=90.0, c=105.0, v=1.0) | bad
    with pytest.raises(ValueError):
        syn.synthesize_ticks(
            np.array([0]), *(np.array([a[k]]) for k in ("o", "h", "lo", "c", "v")), resolution_s=60, symbol="X"
        )


def test_rejects_bad_arguments():
    one = np.array([1.0])
    with pytest.raises(ValueError):
        syn.synthesize_ticks(np.array([0]), one, one, one, one, one, resolution_s=60, n=3, symbol="X")
    with pytest.raises(ValueError):  # overlapping bars
        syn.synthesize_ticks(np.array([0, 30 * NS]), *([np.ones(2)] * 5), resolution_s=60, symbol="X")


def test_iter_ticks_objects_and_chunking():
    bars = [BarT("BTC", k * 60 * NS, 60, 10.0 + k, 12.0 + k, 9.0 + k, 11.0 + k, 3.0) for k in range(10)]
    ticks = list(syn.iter_synthetic_ticks(iter(bars), resolution_s=60, n=5, chunk_bars=3))
    whole = list(syn.synthesize_from_bars(bars, resolution_s=60, n=5).iter_ticks())
    assert ticks == whole
    assert len(ticks) == 50
    t = ticks[7]
    assert t.symbol == "BTC" and t.synthetic is True and t.venue == "synthetic"
    assert t.side in ("buy", "sell", "unknown") and t.trade_id == "synthetic:BTC:60000000000:2"
    # a custom factory (e.g. schemas.events.Tick) receives keyword arguments
    got = list(syn.synthesize_from_bars(bars[:1], resolution_s=60, n=4).iter_ticks(dict))
    assert got[0] == dict(
        symbol="BTC",
        ts=0,
        price=10.0,
        qty=0.75,
        side="unknown",
        trade_id="synthetic:BTC:0:0",
        venue="synthetic",
        synthetic=True,
    )


def test_merge_order_stable():
    src, row = syn.merge_order(np.array([0, 5, 10]), np.array([5, 6]))
    assert list(zip(src.tolist(), row.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2)]


def test_real_btc_bars():
    with gzip.open(DATA / "BTC-30m.csv.gz", "rt") as f:
        df = pd.read_csv(f)
    ts = pd.to_datetime(df["Date"]).to_numpy().astype("datetime64[ns]").astype(np.int64)  # naive = UTC
    cols = [df[f"BTC.{k}"].to_numpy(float) for k in ("open", "high", "low", "close", "volume")]
    t = syn.synthesize_ticks(ts, *cols, resolution_s=1800, n=8, symbol="BTC")
    m = len(df)
    assert len(t) == 8 * m
    P = t.price.reshape(m, 8)
    assert np.all(P.max(axis=1) == cols[1]) and np.all(P.min(axis=1) == cols[2])
    np.testing.assert_allclose(t.qty.reshape(m, 8).sum(axis=1), cols[4], rtol=1e-12)
    assert np.all(np.diff(t.ts) > 0)
    assert set(np.unique(t.side).tolist()) <= {-1, 0, 1}
