"""Historical tick streams from files: real ticks as they are, bars expanded into synthetic ticks.

The output is one columnar table (pandas) in event-time order across all inputs, so replay,
backtest and the embedded default all see exactly the same sequence for the same input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.files import read_bars, read_ticks
from operators.synthetic import SIDE_NAMES, merge_order, synthesize_ticks
from schemas.events import Tick

TICK_TABLE_COLUMNS = ["symbol", "ts", "price", "qty", "side", "trade_id", "venue", "synthetic"]


@dataclass
class History:
    """Ticks in event-time order plus every input row that was rejected (``source``, ``row``, ``reason``)."""

    ticks: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["source", "row", "reason"]))

    def __len__(self) -> int:
        return len(self.ticks)


def _is_bar_file(path: Path) -> bool:
    head = pd.read_parquet(path).head(0) if path.suffix in (".parquet", ".pq") else pd.read_csv(path, nrows=0)
    cols = {str(c).lower().split(".")[-1] for c in head.columns}
    return {"open", "high", "low", "close"} <= cols


def bar_resolution_s(ts_ns: np.ndarray) -> int:
    """Bar length (s) inferred as the most common spacing of consecutive bar open times."""
    if len(ts_ns) < 2:
        raise ValueError("need at least two bars to infer their resolution; pass resolution_s")
    diffs = np.diff(ts_ns)
    diffs = diffs[diffs > 0]
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)] // 1_000_000_000)


def load_history(
    paths: Sequence[str | Path],
    *,
    ticks_per_bar: int = 8,
    symbol: str | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    max_bars: int | None = None,
    venue: str = "synthetic",
) -> History:
    """Load bar and tick files into one event-time-ordered tick table.

    Bars become ``ticks_per_bar`` synthetic ticks each (see ``operators.synthetic``). ``start_ns``
    and ``end_ns`` bound event time (ns, end exclusive); ``max_bars`` keeps the first bars of each
    file (handy for quick runs).
    """
    frames: list[pd.DataFrame] = []
    rejects: list[pd.DataFrame] = []
    for p in map(Path, paths):
        if _is_bar_file(p):
            loaded = read_bars(p, symbol)
            bars = loaded.frame
            if start_ns is not None:
                bars = bars[bars["ts"] >= start_ns]
            if end_ns is not None:
                bars = bars[bars["ts"] < end_ns]
            if max_bars is not None:
                bars = bars.head(max_bars)
            for sym, g in bars.groupby("symbol", sort=True):
                res = bar_resolution_s(g["ts"].to_numpy())
                t = synthesize_ticks(
                    g["ts"].to_numpy(np.int64),
                    g["open"].to_numpy(),
                    g["high"].to_numpy(),
                    g["low"].to_numpy(),
                    g["close"].to_numpy(),
                    g["volume"].to_numpy(),
                    resolution_s=res,
                    n=ticks_per_bar,
                    symbol=str(sym),
                    venue=venue,
                )
                side_names = np.array([SIDE_NAMES[-1], SIDE_NAMES[0], SIDE_NAMES[1]], dtype=object)
                frames.append(
                    pd.DataFrame(
                        {
                            "symbol": str(sym),
                            "ts": t.ts,
                            "price": t.price,
                            "qty": t.qty,
                            "side": side_names[t.side.astype(np.int64) + 1],
                            "trade_id": t.trade_ids(),
                            "venue": venue,
                            "synthetic": True,
                        }
                    )
                )
        else:
            loaded = read_ticks(p)
            ticks = loaded.frame
            if start_ns is not None:
                ticks = ticks[ticks["ts"] >= start_ns]
            if end_ns is not None:
                ticks = ticks[ticks["ts"] < end_ns]
            ticks = ticks.assign(synthetic=False)
            frames.append(ticks)
        if len(loaded.rejects):
            rejects.append(loaded.rejects.assign(source=str(p)))
    if not frames:
        table = pd.DataFrame({c: [] for c in TICK_TABLE_COLUMNS})
    else:
        src, row = merge_order(*[f["ts"].to_numpy(np.int64) for f in frames])
        both = pd.concat([f[TICK_TABLE_COLUMNS] for f in frames], ignore_index=True)
        offsets = np.cumsum([0] + [len(f) for f in frames[:-1]])
        table = both.iloc[offsets[src] + row].reset_index(drop=True)
    rej = pd.concat(rejects, ignore_index=True) if rejects else History(table).rejects
    return History(table, rej[["source", "row", "reason"]])


def iter_tick_events(ticks: pd.DataFrame) -> Iterator[Tick]:
    """Yield ``Tick`` events row by row from a tick table (validated by the schema on construction)."""
    cols = [ticks[c].tolist() for c in ("symbol", "ts", "price", "qty", "side", "trade_id", "venue", "synthetic")]
    for sym, ts, px, q, side, tid, venue, syn in zip(*cols, strict=True):
        yield Tick(symbol=sym, ts=ts, price=px, qty=q, side=side, trade_id=tid, venue=venue, synthetic=bool(syn))
