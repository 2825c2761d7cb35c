"""Bytewax source over an in-memory tick history: the embedded default's stand-in for Kafka.

Ticks are spread over ``partitions`` by a stable hash of the symbol (as a keyed Kafka topic would
spread them) and each partition yields :class:`~connectors.kafka.source.EventBatch` items of up to
``batch_size`` ticks in event-time order, exactly the shape the Kafka source produces, so the flow
cannot tell the two apart. The events of a batch are columns (:class:`~operators.messages.TickBatch`, slices of
arrays built once per partition): no ``Tick`` object is made unless something leaves the flow. The resume state
is the next row of the partition.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.kafka.source import EventBatch
from operators.messages import SIDE_CODES, TickBatch
from schemas.time import TS_MAX_NS, TS_MIN_NS


def partition_of(symbol: str, partitions: int) -> int:
    """Stable partition of a symbol (crc32, independent of Python's hash seed)."""
    return zlib.crc32(symbol.encode()) % partitions


def tick_columns(ticks: pd.DataFrame) -> TickBatch:
    """A tick table (``connectors.history`` columns) as one :class:`TickBatch`, checked as ``schemas.events.Tick``
    checks one tick (price finite > 0, qty finite >= 0, ts in range, a known side): a bad row raises ``ValueError``
    naming it."""
    codes, names = pd.factorize(ticks["symbol"], sort=False)
    ts = ticks["ts"].to_numpy(np.int64)
    price = ticks["price"].to_numpy(np.float64)
    qty = ticks["qty"].to_numpy(np.float64)
    side_s = ticks["side"].to_numpy(object)
    side = np.zeros(len(ticks), np.int8)
    known = np.zeros(len(ticks), bool)
    for name, code in SIDE_CODES.items():
        m = side_s == name
        side[m] = code
        known |= m
    bad = ~((price > 0) & (price < np.inf) & (qty >= 0) & (qty < np.inf) & (ts >= TS_MIN_NS) & (ts < TS_MAX_NS) & known)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"tick row {i} is not a valid Tick: {ticks.iloc[i].to_dict()}")
    return TickBatch(
        [str(x) for x in names],
        codes.astype(np.int32),
        ts,
        price,
        qty,
        side,
        ticks["synthetic"].to_numpy(bool),
        ticks["trade_id"].to_numpy(object),
        ticks["venue"].to_numpy(object),
        np.arange(len(ticks), dtype=np.int64),
    )


class _Part(StatefulSourcePartition[EventBatch, int]):
    def __init__(self, topic: str, part: int, ticks: TickBatch, start: int, batch_size: int) -> None:
        self._topic, self._part, self._ticks, self._pos, self._n = topic, part, ticks, start, batch_size

    def next_batch(self) -> list[EventBatch]:
        if self._pos >= len(self._ticks):
            raise StopIteration()
        start = self._pos
        self._pos = min(len(self._ticks), start + self._n)
        return [EventBatch(self._topic, self._part, self._pos, self._ticks.take(slice(start, self._pos)))]

    def snapshot(self) -> int:
        return self._pos


class HistorySource(FixedPartitionedSource[EventBatch, int]):
    """Replay a tick table (``connectors.history.History.ticks``) into a flow, ``batch_size`` ticks per item."""

    def __init__(
        self, ticks: pd.DataFrame, *, partitions: int = 1, batch_size: int = 5000, topic: str = "ticks"
    ) -> None:
        self.topic = topic
        self.batch_size = batch_size
        parts = np.array([partition_of(s, partitions) for s in ticks["symbol"].unique().tolist()], dtype=np.int64)
        part_of = dict(zip(ticks["symbol"].unique().tolist(), parts.tolist(), strict=True))
        where = ticks["symbol"].map(part_of).to_numpy(np.int64) if len(ticks) else np.zeros(0, np.int64)
        self._parts = {p: tick_columns(ticks[where == p].reset_index(drop=True)) for p in range(partitions)}

    def list_parts(self) -> list[str]:
        return [str(p) for p in self._parts]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Part:
        p = int(for_part)
        return _Part(self.topic, p, self._parts[p], resume_state or 0, self.batch_size)
