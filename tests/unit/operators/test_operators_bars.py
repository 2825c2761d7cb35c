"""Tests for operators.bars: event-time bar aggregation, late data, resampling."""

from __future__ import annotations

import gzip
import itertools
import math
import pickle
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators import synthetic as syn
from operators.bars import BarAggregator, BarRecord, MultiBarAggregator, Resampler, aggregate_ticks, resample_bars
from tests.support import DATA

NS = 1_000_000_000
MS = 1_000_000
T = namedtuple("T", "symbol ts price qty side synthetic", defaults=(False,))


def tk(ts_ms: int, price: float, qty: float = 1.0, side: str = "buy", symbol: str = "BTC") -> T:
    return T(symbol, ts_ms * MS, price, qty, side)


def run(agg: BarAggregator, batches) -> tuple[list[BarRecord], list]:
    bars, late = [], []
    for b in batches:
        r = agg.add(b)
        bars += r.bars
        late += r.late
    return bars, late


# ---------------------------------------------------------------- hand-computed cases
def test_hand_computed_bar():
    agg = BarAggregator("BTC", resolution_s=1)
    r = agg.add(
        [tk(100, 10.0, 1.0, "buy"), tk(400, 13.0, 2.0, "sell"), tk(700, 9.0, 1.0, "unknown"), tk(900, 11.0, 4.0, "buy")]
    )
    assert r.bars == [] and r.late == []
    r = agg.add([tk(1000, 12.0)])  # watermark reaches 1 s: window [0, 1 s) closes
    (b,) = r.bars
    assert (b.ts, b.open, b.high, b.low, b.close) == (0, 10.0, 13.0, 9.0, 11.0)
    assert (b.volume, b.buy_volume, b.sell_volume, b.trade_count) == (8.0, 5.0, 2.0, 4)
    assert b.vwap == pytest.approx((10 + 26 + 9 + 44) / 8, rel=1e-15)
    assert b.revision == 0 and b.synthetic is False and b.resolution_s == 1
    assert agg.open_windows() == [1 * NS]


def test_late_drop_policy():
    agg = BarAggregator("BTC", resolution_s=1)
    bars, late = run(agg, [[tk(200, 10.0), tk(1500, 11.0)], [tk(700, 99.0, 5.0)]])
    assert [b.close for b in bars] == [10.0]
    assert late == [tk(700, 99.0, 5.0)]
    assert agg.late_count == 1 and agg.late_dropped == 1 and agg.late_applied == 0
    assert agg.flush()[0].volume == 1.0


def test_late_correct_policy_emits_revision():
    agg = BarAggregator("BTC", resolution_s=1, late_policy="correct")
    bars, late = run(agg, [[tk(200, 10.0), tk(1500, 11.0)], [tk(700, 12.0, 2.0), tk(800, 8.0, 1.0)]])
    assert len(late) == 2 and agg.late_count == 2 and agg.late_applied == 2
    first, corr = bars
    assert first.revision == 0 and first.volume == 1.0
    assert corr.revision == 1 and corr.ts == 0
    assert (corr.open, corr.high, corr.low, corr.close, corr.volume, corr.trade_count) == (10.0, 12.0, 8.0, 8.0, 4.0, 3)
    bars, _ = run(agg, [[tk(300, 7.0)]])
    assert bars[0].revision == 2 and bars[0].low == 7.0


def test_correction_horizon_bounds_state():
    agg = BarAggregator("BTC", resolution_s=1, late_policy="correct", correction_horizon_s=5)
    for k in range(100):
        agg.add([tk(k * 1000 + 10, 10.0 + k)])
    assert len(agg.closed) <= 6 and len(agg.open) == 1
    r = agg.add([tk(10, 1.0)])  # 99 s late, beyond the horizon
    assert r.bars == [] and len(r.late) == 1 and agg.late_dropped == 1


def test_allowed_lateness_folds_out_of_order_ticks():
    agg = BarAggregator("BTC", resolution_s=1, allowed_lateness_s=2)
    bars, late = run(agg, [[tk(200, 10.0), tk(2500, 11.0), tk(700, 12.0)], [tk(3100, 13.0)]])
    assert late == []
    assert len(bars) == 1 and bars[0].close == 12.0 and bars[0].trade_count == 2
    assert agg.watermark == 1 * NS


def test_out_of_order_open_close_by_event_time():
    agg = BarAggregator("BTC", resolution_s=1, allowed_lateness_s=1)
    agg.add([tk(500, 5.0), tk(100, 1.0), tk(900, 9.0), tk(600, 6.0)])
    (b,) = agg.flush()
    assert (b.open, b.close, b.high, b.low) == (1.0, 9.0, 9.0, 1.0)


def test_advance_closes_idle_window_and_late_after():
    agg = BarAggregator("ETH", resolution_s=60)
    assert agg.add([T("ETH", 10 * NS, 100.0, 1.0, "sell")]).bars == []
    assert agg.advance(59 * NS).bars == []
    (b,) = agg.advance(60 * NS).bars
    assert b.ts == 0 and b.sell_volume == 1.0
    r = agg.add([T("ETH", 30 * NS, 100.0, 1.0, "sell")])
    assert len(r.late) == 1


def test_fill_empty():
    agg = BarAggregator("BTC", resolution_s=1, fill_empty=True)
    bars, _ = run(agg, [[tk(100, 10.0), tk(3200, 12.0)]])
    assert [(b.ts // NS, b.close, b.trade_count) for b in bars] == [(0, 10.0, 1), (1, 10.0, 0), (2, 10.0, 0)]
    assert bars[1].vwap == 10.0 and bars[1].volume == 0.0
    assert bars[1].synthetic is True and bars[0].synthetic is False
    bars = agg.advance(6 * NS).bars
    assert [(b.ts // NS, b.close, b.trade_count) for b in bars] == [(3, 12.0, 1), (4, 12.0, 0), (5, 12.0, 0)]


def test_no_bar_for_empty_intervals_by_default():
    agg = BarAggregator("BTC", resolution_s=1)
    bars, _ = run(agg, [[tk(100, 10.0), tk(3200, 12.0)]])
    assert [b.ts for b in bars] == [0]


def test_rejects_other_symbol_and_bad_settings():
    with pytest.raises(ValueError):
        BarAggregator("BTC").add([tk(1, 1.0, symbol="ETH")])
    with pytest.raises(ValueError):
        BarAggregator("BTC", resolution_s=0)
    with pytest.raises(ValueError):
        BarAggregator("BTC", late_policy="keep")  # type: ignore[arg-type]


def test_multi_symbol():
    m = MultiBarAggregator(resolution_s=1)
    r = m.add([tk(100, 1.0), tk(200, 2.0, symbol="ETH"), tk(1100, 3.0)])
    assert [(b.symbol, b.close) for b in r.bars] == [("BTC", 1.0)]
    r = m.advance(2 * NS)  # ETH idle: closed by the watermark
    assert [(b.symbol, b.ts) for b in r.bars] == [("BTC", NS), ("ETH", 0)]
    r = m.add([tk(300, 1.0, symbol="ETH")])
    assert len(r.late) == 1 and m.late_count == 1
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.aggs["BTC"].boundary == 2 * NS


# ---------------------------------------------------------------- properties
@st.composite
def tick_streams(draw):
    n = draw(st.integers(0, 80))
    base = draw(st.integers(0, 10**6)) * NS
    t = base
    ticks = []
    for _ in range(n):
        t += draw(st.integers(0, 1500)) * MS
        jitter = draw(st.sampled_from([0, 0, 0, -300, -1200, -5000])) * MS  # some out-of-order / late ticks
        price = draw(st.floats(0.01, 1e5, allow_nan=False))
        qty = draw(st.floats(0, 100, allow_nan=False))
        side = draw(st.sampled_from(["buy", "sell", "unknown"]))
        ticks.append(T("X", t + jitter, price, qty, side, draw(st.booleans())))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return ticks, cuts


def split(ticks, cuts):
    edges = [0] + cuts + [len(ticks)]
    return [ticks[a:b] for a, b in itertools.pairwise(edges)]


SETTINGS = st.fixed_dictionaries(
    {
        "resolution_s": st.sampled_from([1, 2, 5]),
        "allowed_lateness_s": st.sampled_from([0, 0.5, 2]),
        "fill_empty": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(tick_streams(), SETTINGS)
def test_batch_split_invariance_and_conservation(stream, kw):
    ticks, cuts = stream
    a = BarAggregator("X", **kw)
    bars_a, late_a = run(a, [ticks])
    bars_a += a.flush()
    b = BarAggregator("X", **kw)
    bars_b, late_b = [], []
    for chunk in split(ticks, cuts):
        b = pickle.loads(pickle.dumps(b))  # a snapshot between batches changes nothing
        r = b.add(chunk)
        bars_b += r.bars
        late_b += r.late
    bars_b += b.flush()
    assert bars_a == bars_b and late_a == late_b
    # late ticks are counted, not lost: bars + late = everything
    assert a.late_count == len(late_a) == a.late_dropped
    assert sum(x.trade_count for x in bars_a) + len(late_a) == len(ticks)
    total = sum(t.qty for t in ticks)
    assert math.isclose(sum(x.volume for x in bars_a) + sum(t.qty for t in late_a), total, rel_tol=1e-9, abs_tol=1e-9)
    for x in bars_a:
        assert x.low <= min(x.open, x.close) and max(x.open, x.close) <= x.high
        assert x.low * (1 - 1e-12) <= x.vwap <= x.high * (1 + 1e-12)
        assert x.buy_volume + x.sell_volume <= x.volume * (1 + 1e-12) + 1e-12
        assert x.ts % (kw["resolution_s"] * NS) == 0
    ts = [x.ts for x in bars_a]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    if kw["fill_empty"] and ts:
        assert np.all(np.diff(ts) == kw["resolution_s"] * NS)
    # bounded state: only open windows
    assert len(a.open) == 0 and len(a.closed) == 0


@settings(max_examples=150, deadline=None)
@given(tick_streams(), st.sampled_from([0, 1]))
def test_correct_policy_final_state_split_invariant(stream, lateness):
    ticks, cuts = stream

    def final(batches):
        agg = BarAggregator(
            "X", resolution_s=1, allowed_lateness_s=lateness, late_policy="correct", correction_horizon_s=3600
        )
        bars, late = run(agg, batches)
        bars += agg.flush()
        latest = {}
        for x in bars:
            if x.ts not in latest or x.revision > latest[x.ts].revision:
                latest[x.ts] = x
        return latest, late, agg

    fa, la, agg = final([ticks])
    fb, lb, _ = final(split(ticks, cuts))
    assert la == lb
    assert {k: v._replace(revision=0) for k, v in fa.items()} == {k: v._replace(revision=0) for k, v in fb.items()}
    # with a long horizon every tick ends up in some bar
    assert sum(x.trade_count for x in fa.values()) == len(ticks)
    assert agg.late_applied == agg.late_count == len(la)


@settings(max_examples=150, deadline=None)
@given(tick_streams(), st.sampled_from([1, 3]))
def test_streaming_equals_vectorised_for_sorted_ticks(stream, res):
    ticks, _ = stream
    ticks = sorted(ticks, key=lambda t: t.ts)
    agg = BarAggregator("X", resolution_s=res)
    bars, late = run(agg, [ticks])
    bars += agg.flush()
    assert late == []
    cols = aggregate_ticks(
        np.array([t.ts for t in ticks], np.int64),
        np.array([t.price for t in ticks]),
        np.array([t.qty for t in ticks]),
        np.array([{"buy": 1, "sell": -1}.get(t.side, 0) for t in ticks]),
        synthetic=np.array([t.synthetic for t in ticks], bool),
        resolution_s=res,
        symbol="X",
    )
    assert cols["ts"].tolist() == [b.ts for b in bars]
    for f in ("open", "high", "low", "close", "trade_count", "synthetic"):
        assert cols[f].tolist() == [getattr(b, f) for b in bars], f
    for f in ("volume", "buy_volume", "sell_volume", "vwap"):
        np.testing.assert_allclose(cols[f], [getattr(b, f) for b in bars], rtol=1e-9, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(tick_streams(), st.sampled_from([(1, 5), (1, 60), (2, 10), (5, 5)]), st.booleans())
def test_resampled_equals_direct(stream, resolutions, fill):
    ticks, cuts = stream
    ticks = sorted(ticks, key=lambda t: t.ts)  # in order: no tick is late at either resolution
    base_s, coarse_s = resolutions
    base = BarAggregator("X", resolution_s=base_s, fill_empty=fill)
    direct = BarAggregator("X", resolution_s=coarse_s, fill_empty=fill)
    rs = Resampler(coarse_s, base_s)
    derived, want = [], []
    for chunk in split(ticks, cuts):
        for b in base.add(chunk).bars:
            derived += rs.update(b)
        want += direct.add(chunk).bars
    for b in base.flush():
        derived += rs.update(b)
    derived += rs.flush()
    want += direct.flush()
    assert [b.ts for b in derived] == [b.ts for b in want]
    for d, w in zip(derived, want, strict=True):
        assert (d.open, d.high, d.low, d.close, d.trade_count, d.synthetic, d.resolution_s) == (
            w.open,
            w.high,
            w.low,
            w.close,
            w.trade_count,
            w.synthetic,
            w.resolution_s,
        )
        for f in ("volume", "buy_volume", "sell_volume", "vwap"):
            assert math.isclose(getattr(d, f), getattr(w, f), rel_tol=1e-9, abs_tol=1e-9), f
    assert rs.ignored == 0


def test_resampler_eager_close_and_ignores_corrections():
    rs = Resampler(3, 1)

    def mk(s, c, rev=0):
        return BarRecord("X", s * NS, 1, c, c, c, c, 1.0, 0.0, 0.0, c, 1, False, rev)

    assert rs.update(mk(0, 1.0)) == [] and rs.update(mk(1, 2.0)) == []
    (b,) = rs.update(mk(2, 3.0))  # last base bar of [0, 3 s): emitted at once
    assert (b.open, b.close, b.volume, b.trade_count) == (1.0, 3.0, 3.0, 3)
    assert rs.update(mk(1, 5.0, rev=1)) == [] and rs.update(mk(1, 5.0)) == [] and rs.ignored == 2
    assert rs.update(mk(4, 4.0)) == [] and rs.advance(5 * NS) == [] and len(rs.advance(6 * NS)) == 1
    assert resample_bars([mk(0, 1.0), mk(4, 2.0)], 3) == [
        BarRecord("X", 0, 3, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1, False, 0),
        BarRecord("X", 3 * NS, 3, 2.0, 2.0, 2.0, 2.0, 1.0, 0.0, 0.0, 2.0, 1, False, 0),
    ]
    with pytest.raises(ValueError):
        Resampler(5, 2)


def test_columnar_add_matches_objects():
    ticks = [tk(100, 10.0, 1.0, "buy"), tk(1500, 11.0, 2.0, "sell"), tk(600, 12.0, 1.0), tk(2600, 9.0)]
    a = BarAggregator("BTC")
    ra = a.add(ticks)
    b = BarAggregator("BTC")
    rb = b.add_columns(
        np.array([t.ts for t in ticks]),
        np.array([t.price for t in ticks]),
        np.array([t.qty for t in ticks]),
        np.array([1, -1, 1, 1]),
    )
    assert ra.bars == rb.bars and rb.late.tolist() == [2] and ra.late == [ticks[2]]


# ---------------------------------------------------------------- real data round trip
def _btc(n: int | None = None):
    with gzip.open(DATA / "BTC-30m.csv.gz", "rt") as f:
        df = pd.read_csv(f, nrows=n)
    ts = pd.to_datetime(df["Date"]).to_numpy().astype("datetime64[ns]").astype(np.int64)  # naive = UTC
    return ts, [df[f"BTC.{k}"].to_numpy(float) for k in ("open", "high", "low", "close", "volume")]


def test_synthetic_ticks_rebuild_real_bars():
    ts, (o, h, lo, c, v) = _btc(3000)
    t = syn.synthesize_ticks(ts, o, h, lo, c, v, resolution_s=1800, n=8, symbol="BTC")
    agg = BarAggregator("BTC", resolution_s=1800)
    bars = agg.add_columns(t.ts, t.price, t.qty, t.side, True).bars + agg.flush()
    assert [b.ts for b in bars] == ts.tolist()
    assert [b.open for b in bars] == o.tolist() and [b.close for b in bars] == c.tolist()
    assert [b.high for b in bars] == h.tolist() and [b.low for b in bars] == lo.tolist()
    np.testing.assert_allclose([b.volume for b in bars], v, rtol=1e-12)
    assert all(b.synthetic and b.trade_count == 8 for b in bars)
    # 60 s base bars resampled to 30 min give the same bars
    base = BarAggregator("BTC", resolution_s=60)
    b60 = base.add_columns(t.ts, t.price, t.qty, t.side, True).bars + base.flush()
    r = resample_bars(b60, 1800)
    assert [(b.ts, b.open, b.high, b.low, b.close) for b in r] == [(b.ts, b.open, b.high, b.low, b.close) for b in bars]


def test_outputs_convert_to_schema_types():
    """Synthetic ticks and aggregated bars build valid schemas.events.Tick / Bar (the edge conversion)."""
    from schemas.events import Bar, Tick

    t = syn.synthesize_ticks(
        np.array([1_500_000_000 * NS]),
        np.array([100.0]),
        np.array([110.0]),
        np.array([95.0]),
        np.array([105.0]),
        np.array([8.0]),
        resolution_s=1800,
        symbol="BTC",
    )
    ticks = list(t.iter_ticks(Tick))
    assert all(isinstance(x, Tick) and x.synthetic for x in ticks)
    agg = BarAggregator("BTC", resolution_s=60, fill_empty=True)
    bars = agg.add(ticks).bars + agg.flush()
    out = [Bar(**b.as_kwargs()) for b in bars]
    assert len(out) == 27 and out[1].trade_count == 0 and out[1].synthetic
    assert sum(b.volume for b in out) == pytest.approx(8.0, rel=1e-12)


# ---------------------------------------------------------------- columnar fast paths == per-item fold, bit for bit
_stream = st.lists(
    st.tuples(
        st.integers(0, 4000), st.floats(1.0, 2.0), st.floats(0.0, 3.0), st.sampled_from([1, -1, 0]), st.booleans()
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(_stream, st.lists(st.integers(1, 9), min_size=1, max_size=12), st.sampled_from([0.0, 0.3]), st.booleans())
def test_fold_columns_equals_the_per_tick_fold(rows, cuts, lateness, in_order):
    """Any batching, in order (array path) or not (per-tick path), lateness or not: the same bars bit for bit, the
    same late rows, the same counters and state as the per-tick fold of the whole stream."""
    if in_order:
        rows = sorted(rows, key=lambda r: r[0])
    ts = np.array([r[0] * MS for r in rows], np.int64)
    cols = [
        ts,
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows]),
        np.array([r[4] for r in rows]),
    ]
    ref = BarAggregator("X", 1, allowed_lateness_s=lateness)
    want, want_late = ref._run(*(c.tolist() for c in cols))
    agg = BarAggregator("X", 1, allowed_lateness_s=lateness)
    got, late, i, k = [], [], 0, 0
    while i < len(rows):
        j = min(len(rows), i + cuts[k % len(cuts)])
        k += 1
        b, lt = agg.fold_columns(*(c[i:j] for c in cols))
        got += b.records()
        late += (lt + i).tolist()
        i = j
    ref_more, _ = ref._run([], [], [], [], [])
    assert got == want + ref_more and late == want_late
    assert [[repr(x) for x in a] for a in agg.open.values()] == [[repr(x) for x in a] for a in ref.open.values()]
    assert (agg.boundary, agg.max_ts, agg.bars_emitted, agg.ticks_in, agg.last_start, agg.last_close) == (
        ref.boundary,
        ref.max_ts,
        ref.bars_emitted,
        ref.ticks_in,
        ref.last_start,
        ref.last_close,
    )
    assert agg.flush() == ref.flush()


@settings(max_examples=80, deadline=None)
@given(_stream, st.lists(st.integers(1, 9), min_size=1, max_size=12), st.sampled_from([3, 5, 60]))
def test_resampler_columns_equal_bar_by_bar(rows, cuts, res):
    """Base bars in blocks of any size through ``update_columns`` (with ``advance`` between blocks) give exactly
    the coarse bars and state of ``update`` bar by bar."""
    from operators.bars import BarColumns

    base = BarAggregator("X", 1)
    rows = sorted(rows, key=lambda r: r[0])
    bars = (
        base.add(
            [T("X", r[0] * 7 * MS, r[1], r[2], {1: "buy", -1: "sell", 0: "unknown"}[r[3]], r[4]) for r in rows]
        ).bars
        + base.flush()
    )
    ref, rs = Resampler(res, 1), Resampler(res, 1)
    want, got, i, k = [], [], 0, 0
    while i < len(bars):
        j = min(len(bars), i + cuts[k % len(cuts)])
        k += 1
        for b in bars[i:j]:
            want += ref.update(b)
        got += rs.update_columns(BarColumns.from_records("X", 1, bars[i:j])).records()
        wm = bars[j - 1].ts + NS
        want += ref.advance(wm)
        got += rs.advance(wm)
        i = j
    assert got == want and [repr(x) for x in (rs.acc or [])] == [repr(x) for x in (ref.acc or [])]
    assert (rs.start, rs.last_start, rs.ignored) == (ref.start, ref.last_start, ref.ignored)
