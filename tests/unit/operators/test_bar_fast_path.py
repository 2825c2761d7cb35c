"""The pure-Python fold of small batches (``BarAggregator.fold_in_order``, ``Resampler.update_rows``, the signal
stage's small-batch path) gives bit for bit the bars and the state of the per-tick fold and of the array fold,
for random batches, cut points, lateness and watermarks (an ``advance`` past a symbol's latest tick, as the flow's
partition watermark does, makes its next ticks late whatever the path)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.bars import BarAggregator, BarColumns, BarRecord, Resampler

MS = 1_000_000
NS = 1_000_000_000


def bits(bars) -> list:
    """Bars with every float as its exact bit pattern (``==`` would take -0.0 for 0.0)."""
    return [tuple(x.hex() if isinstance(x, float) else x for x in b) for b in bars]


def state(agg: BarAggregator) -> tuple:
    return (
        sorted((w, [x.hex() if isinstance(x, float) else x for x in a]) for w, a in agg.open.items()),
        agg.boundary,
        agg.max_ts,
        agg.bars_emitted,
        agg.ticks_in,
        agg.late_count,
        agg.last_start,
        agg.last_close,
    )


_row = st.tuples(
    st.integers(0, 6000), st.floats(1.0, 2.0), st.floats(0.0, 3.0), st.sampled_from([1, -1, 0]), st.booleans()
)
_stream = st.lists(_row, min_size=1, max_size=120)


def _cols(rows):
    return [
        np.array([r[0] * MS for r in rows], np.int64),
        np.array([r[1] for r in rows], np.float64),
        np.array([r[2] for r in rows], np.float64),
        np.array([r[3] for r in rows], np.int64),
        np.array([r[4] for r in rows], bool),
    ]


@settings(max_examples=300, deadline=None)
@given(
    _stream,
    st.lists(st.integers(1, 30), min_size=1, max_size=12),
    st.sampled_from([0.0, 0.3, 2.0]),
    st.sampled_from([1, 2]),
    st.integers(0, 3),
    st.lists(st.integers(-500, 3000), min_size=1, max_size=12),
    st.booleans(),
)
def test_three_folds_agree_bit_for_bit(rows, cuts, lateness, res, disorder, jumps, watermarks):
    """The same stream cut the same way, each batch followed by the same ``advance`` (or none): the per-tick fold,
    the array fold and the Python fold (falling back to the per-tick fold when it refuses the batch) emit the
    same bars and late rows and keep the same state."""
    rows = sorted(rows, key=lambda r: r[0])
    if disorder:  # swap a few neighbours: out-of-order ticks (late, or within the lateness)
        rows = list(rows)
        for k in range(0, len(rows) - 1, max(1, len(rows) // disorder)):
            rows[k], rows[k + 1] = rows[k + 1], rows[k]
    cols = _cols(rows)
    folds = {name: BarAggregator("X", res, allowed_lateness_s=lateness) for name in ("rows", "columns", "python")}
    got: dict[str, list] = {name: [] for name in folds}
    late: dict[str, list] = {name: [] for name in folds}
    refused = taken = 0
    i = k = 0
    while i < len(rows):
        j = min(len(rows), i + cuts[k % len(cuts)])
        part = [c[i:j] for c in cols]
        lists = [c.tolist() for c in part]
        b, lt = folds["rows"].fold_rows(*lists)
        got["rows"] += b
        late["rows"] += [x + i for x in lt]
        bc, ltc = folds["columns"].fold_columns(*part)
        got["columns"] += bc.records()
        late["columns"] += (ltc + i).tolist()
        bp = folds["python"].fold_in_order(*lists)
        if bp is None:
            refused += 1
            bp, ltp = folds["python"].fold_rows(*lists)
            late["python"] += [x + i for x in ltp]
        else:
            taken += 1
        got["python"] += bp
        if watermarks:  # a watermark around the batch's last tick, sometimes past it (another symbol's ticks)
            wm = int(cols[0][j - 1]) + jumps[k % len(jumps)] * MS
            for name, agg in folds.items():
                got[name] += agg.advance(wm).bars
        assert state(folds["python"]) == state(folds["rows"]) == state(folds["columns"])
        i, k = j, k + 1
    assert bits(got["python"]) == bits(got["rows"]) == bits(got["columns"])
    assert late["python"] == late["rows"] == late["columns"]
    assert bits(folds["python"].flush()) == bits(folds["rows"].flush()) == bits(folds["columns"].flush())
    if not disorder and not watermarks:
        assert refused == 0 and taken == k  # sorted input with no advance: every batch takes the Python loop


def test_a_tick_in_a_window_an_advance_closed_is_late_in_every_path():
    """``advance`` moved the boundary past the latest tick (another symbol's watermark): the next tick of an
    already-closed window is late for the array fold too (it used to become a new bar of that window)."""
    for fold in ("rows", "columns", "python"):
        agg = BarAggregator("X", 1)
        agg.fold_rows([NS // 2], [1.0], [1.0], [1], [False])
        assert [b.ts for b in agg.advance(3 * NS).bars] == [0]
        ts, px = [3 * NS // 2, 3 * NS + 1], [2.0, 3.0]
        if fold == "columns":
            bars, lt = agg.fold_columns(np.array(ts), np.array(px), np.ones(2), np.ones(2, np.int64))
            bars, lt = bars.records(), lt.tolist()
        elif fold == "python":
            assert agg.fold_in_order(ts, px, [1.0, 1.0], [1, 1], [False, False]) is None  # refused, state kept
            assert agg.ticks_in == 1 and agg.boundary == 3 * NS
            bars, lt = agg.fold_rows(ts, px, [1.0, 1.0], [1, 1], [False, False])
        else:
            bars, lt = agg.fold_rows(ts, px, [1.0, 1.0], [1, 1], [False, False])
        assert bars == [] and lt == [0] and agg.late_count == 1 and list(agg.open) == [3 * NS], fold


_bar_row = st.tuples(
    st.integers(0, 400), st.floats(1.0, 2.0), st.floats(0.0, 3.0), st.integers(0, 3), st.booleans(), st.integers(0, 8)
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_bar_row, min_size=1, max_size=80),
    st.lists(st.integers(1, 25), min_size=1, max_size=10),
    st.sampled_from([3, 5, 60]),
    st.booleans(),
    st.booleans(),
)
def test_resampler_rows_equal_bar_by_bar_and_columns(rows, cuts, res, odd, advance):
    """Base bars in lists of any size through ``update_rows`` (``advance`` between lists) give exactly the coarse
    bars and state of ``update`` bar by bar and, for in-order traded bars, of ``update_columns``. ``odd`` mixes in
    what takes ``update``: filled (zero-trade) bars, corrections, repeated and backward windows."""
    seen: set = set()
    bars = []
    for w, p, q, tc, syn, kind in sorted(rows, key=lambda r: r[0]):
        if not odd and w in seen:
            continue
        seen.add(w)
        n = (0 if kind == 1 else tc + 1) if odd else tc + 1
        rev = 1 if odd and kind == 2 else 0
        ts = (w - 3 if odd and kind == 3 else w) * NS
        lo, hi = p * 0.99, p * 1.01
        bars.append(BarRecord("X", ts, 1, p, hi, lo, p * 1.001, q * n, q * n / 3, q * n / 2, p, n, syn, rev))
    ref, rows_rs, col_rs = Resampler(res, 1), Resampler(res, 1), Resampler(res, 1)
    want, got, got_cols = [], [], []
    i = k = 0
    while i < len(bars):
        j = min(len(bars), i + cuts[k % len(cuts)])
        for b in bars[i:j]:
            want += ref.update(b)
        got += rows_rs.update_rows(bars[i:j])
        got_cols += col_rs.update_columns(BarColumns.from_records("X", 1, bars[i:j])).records()
        if advance:  # else the state between lists (an eager close, an open window) is compared too
            wm = bars[j - 1].ts + NS
            want += ref.advance(wm)
            got += rows_rs.advance(wm)
            got_cols += col_rs.advance(wm)
        i, k = j, k + 1
        assert (rows_rs.start, rows_rs.last_start) == (ref.start, ref.last_start)
    assert bits(got) == bits(want) == bits(got_cols)
    for rs in (rows_rs, col_rs):
        assert [x.hex() if isinstance(x, float) else x for x in (rs.acc or [])] == [
            x.hex() if isinstance(x, float) else x for x in (ref.acc or [])
        ]
        assert (rs.start, rs.last_start, rs.ignored) == (ref.start, ref.last_start, ref.ignored)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=8), st.integers(0, 2**31 - 1))
def test_signal_stage_small_and_array_paths_emit_the_same(cuts, seed):
    """A symbol's stream cut at random, each batch with the partition's watermark, through a stage whose every
    batch takes the Python fold and one whose every batch takes the array fold: the same bars in the same order,
    features, scores, decision points and state."""
    import pickle

    import operators.signal_stage as ss
    from operators.messages import TickBatch
    from operators.pipeline import PipelineConfig
    from schemas.events import Tick

    rng = np.random.default_rng(seed)
    n = 3000
    ts = np.cumsum(rng.integers(0, 900, n)) * MS + 1_600_000_000 * NS
    px = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    ticks = [
        Tick(
            symbol="BTC-USD",
            ts=int(t),
            price=float(p),
            qty=float(q),
            side=("buy", "sell", "unknown")[s],
            trade_id=f"t{i}",
            venue="v",
            synthetic=bool(y),
        )
        for i, (t, p, q, s, y) in enumerate(
            zip(ts, px, rng.exponential(1.0, n), rng.integers(0, 3, n), rng.random(n) < 0.1, strict=True)
        )
    ]
    cfg = replace(
        PipelineConfig(), base_resolution_s=1, bar_resolutions_s=(5, 60), decision_resolution_s=5, symbols=("BTC-USD",)
    )

    def run(small: int) -> tuple:
        old = ss.SMALL_BATCH
        ss.SMALL_BATCH = small
        try:
            stage = ss.SignalStage("BTC-USD", cfg)
            bars, feats, points = [], [], []
            i = k = 0
            while i < n:
                j = min(n, i + cuts[k % len(cuts)])
                # the partition's watermark: at or past the batch's last tick, never past the next tick (so no
                # tick is late: a late one takes the per-tick fold, whose bars come in derivation order)
                wm = int(ts[j - 1]) + int(rng_wm[k % len(rng_wm)]) * MS
                wm = min(wm, int(ts[j])) if j < n else wm
                out = stage.on_batch(TickBatch.from_ticks(ticks[i:j]), wm)
                bars += bits(out.bars)
                feats += [(f.ts, [v.hex() for v in f.values]) for f in out.features]
                points += [(p.ts, p.close.hex(), p.intent) for p in out.update.points]
                i, k = j, k + 1
            return (
                bars,
                feats,
                points,
                state(stage.agg),
                [(r.start, r.last_start, r.acc) for r in stage.resamplers.values()],
            )
        finally:
            ss.SMALL_BATCH = old

    rng_wm = rng.integers(0, 2000, 7)
    python, array = run(10**9), run(0)
    assert len(python[2]) > 50
    assert python[:4] == array[:4]
    assert pickle.dumps(python[4]) == pickle.dumps(array[4])


@settings(max_examples=200, deadline=None)
@given(
    _stream,
    st.lists(st.integers(1, 25), min_size=1, max_size=10),
    st.sampled_from([(3, 6), (5, 60), (2, 10)]),
    st.booleans(),
)
def test_checked_resampler_rows_equal_bar_by_bar(rows, cuts, chain, advance):
    """What ``checked`` vouches for (a drop-policy aggregator's bars, then a resampler's) through a chain of two
    resamplers in lists of any size: the coarse bars and state of ``update`` bar by bar."""
    agg = BarAggregator("X", 1)
    rows = sorted(rows, key=lambda r: r[0])
    ts, px, q, sd, sy = (c.tolist() for c in _cols(rows))
    bars = agg.fold_rows([t * 3 for t in ts], px, q, sd, sy)[0] + agg.flush()
    r1, r2 = chain
    ref = [Resampler(r1, 1), Resampler(r2, r1)]
    fast = [Resampler(r1, 1), Resampler(r2, r1)]
    want: list = [[], []]
    got: list = [[], []]
    i = k = 0
    while i < len(bars):
        j = min(len(bars), i + cuts[k % len(cuts)])
        mid = [c for b in bars[i:j] for c in ref[0].update(b)]
        mid_f = fast[0].update_rows(bars[i:j], checked=True)
        if advance:
            wm = bars[j - 1].ts + NS
            mid += ref[0].advance(wm)
            mid_f += fast[0].advance(wm)
        want[0] += mid
        got[0] += mid_f
        want[1] += [c for b in mid for c in ref[1].update(b)]
        got[1] += fast[1].update_rows(mid_f, checked=True)
        for a, b in zip(fast, ref, strict=True):
            assert (a.start, a.last_start, a.ignored) == (b.start, b.last_start, b.ignored)
            assert [x.hex() if isinstance(x, float) else x for x in (a.acc or [])] == [
                x.hex() if isinstance(x, float) else x for x in (b.acc or [])
            ]
        i, k = j, k + 1
    assert bits(got[0]) == bits(want[0]) and bits(got[1]) == bits(want[1])
