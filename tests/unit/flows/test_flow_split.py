"""The split step's columnar path (a few numpy calls per batch) refuses and groups exactly what its per-tick path
does, for random batches with unknown symbols, far-future ticks and repeated trade ids: the same per-symbol ticks
in the same order, the same dead letters, the same watermark and remembered trade ids after every batch."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.kafka.source import EventBatch
from flows.trading import _split
from operators.messages import TickBatch
from operators.pipeline import PipelineConfig
from schemas.events import Tick

NS = 1_000_000_000
SYMS = ("A", "B", "C", "D", "E", "F")  # A-E traded (five: the sorting path), F not
CFG = replace(PipelineConfig(), symbols=SYMS[:5], max_future_skew_s=100.0, allowed_lateness_s=0.5)

_tick = st.tuples(st.integers(0, 5), st.integers(0, 400), st.integers(0, 60), st.booleans())
_batch = st.lists(_tick, min_size=0, max_size=40)


def _norm(out: list) -> list:
    rows = []
    for key, item in out:
        if key is None:
            kind, payload = item
            rows.append((None, kind, [(d.error, d.offset, d.raw) for d in payload] if kind == "dead" else len(payload)))
            continue
        _, ticks, top, rx, coords = item
        if isinstance(ticks, TickBatch):
            got = [(t.symbol, t.ts, t.price, t.trade_id) for t in ticks.events()]
            offs = ticks.offsets.tolist()
        else:
            got = [(t.symbol, t.ts, t.price, t.trade_id) for t in ticks]
            offs = coords[2] if coords is not None else []
        rows.append((key, got, offs, top, rx))
    return rows


@settings(max_examples=200, deadline=None)
@given(st.lists(_batch, min_size=1, max_size=8), st.sampled_from([1, 2, 5, 6]))
def test_columnar_split_equals_the_per_tick_split(batches, n_syms):
    cols, objs = _split(CFG), _split(CFG)
    s_cols = s_objs = None
    off = 0
    for k, rows in enumerate(batches):
        ticks = []
        for sym, ts_s, tid, far in rows:
            ts = (1_600_000_000 + ts_s) * NS + (10**6 * NS if far else 0)  # far: beyond the skew bound
            ticks.append(
                Tick(
                    symbol=SYMS[sym % n_syms],
                    ts=ts,
                    price=1.0 + ts_s / 1000,
                    qty=1.0,
                    side="buy",
                    trade_id=f"t{tid}",
                    venue="v",
                )
            )
        offsets = list(range(off, off + len(ticks)))
        off += len(ticks)
        tb = TickBatch.from_ticks(ticks, offsets)
        if k % 2:  # the names in another order than their first ticks (as a history source may list them)
            m = len(tb.symbols)
            tb = TickBatch(
                tb.symbols[::-1],
                (m - 1 - tb.codes).astype(tb.codes.dtype),
                tb.ts,
                tb.price,
                tb.qty,
                tb.side,
                tb.synthetic,
                tb.trade_id,
                tb.venue,
                tb.offsets,
            )
        s_cols, out_c = cols(s_cols, EventBatch("ticks", 0, off, tb, [], k))
        s_objs, out_o = objs(s_objs, EventBatch("ticks", 0, off, ticks, [], k, offsets))
        assert _norm(out_c) == _norm(out_o)
        assert (s_cols.watermark, s_cols.remembered(), s_cols.n_recent, s_cols.refused, s_cols.symbols) == (
            s_objs.watermark,
            s_objs.remembered(),
            s_objs.n_recent,
            s_objs.refused,
            s_objs.symbols,
        )
