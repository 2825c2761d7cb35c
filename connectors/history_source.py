"""Bytewax source over an in-memory tick history: the embedded default's stand-in for Kafka.

Ticks are spread over ``partitions`` by a stable hash of the symbol (as a keyed Kafka topic would
spread them) and each partition yields :class:`~connectors.kafka.source.EventBatch` items of up to
``batch_size`` ticks in event-time order, exactly the shape the Kafka source produces, so the flow
cannot tell the two apart. The resume state is the next row of the partition.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.kafka.source import EventBatch
from connectors.history import iter_tick_events


def partition_of(symbol: str, partitions: int) -> int:
    """Stable partition of a symbol (crc32, independent of Python's hash seed)."""
    return zlib.crc32(symbol.encode()) % partitions


class _Part(StatefulSourcePartition[EventBatch, int]):
    def __init__(self, topic: str, part: int, ticks: pd.DataFrame, start: int, batch_size: int) -> None:
        self._topic, self._part, self._ticks, self._pos, self._n = topic, part, ticks, start, batch_size

    def next_batch(self) -> list[EventBatch]:
        if self._pos >= len(self._ticks):
            raise StopIteration()
        start = self._pos
        chunk = self._ticks.iloc[start:start + self._n]
        self._pos += len(chunk)
        return [EventBatch(self._topic, self._part, self._pos, list(iter_tick_events(chunk)),
                           offsets=list(range(start, self._pos)))]

    def snapshot(self) -> int:
        return self._pos


class HistorySource(FixedPartitionedSource[EventBatch, int]):
    """Replay a tick table (``connectors.history.History.ticks``) into a flow, ``batch_size`` ticks per item."""

    def __init__(self, ticks: pd.DataFrame, *, partitions: int = 1, batch_size: int = 5000, topic: str = "ticks") -> None:
        self.topic = topic
        self.batch_size = batch_size
        parts = np.array([partition_of(s, partitions) for s in ticks["symbol"].tolist()], dtype=np.int64)
        self._parts = {p: ticks[parts == p].reset_index(drop=True) for p in range(partitions)}

    def list_parts(self) -> list[str]:
        return [str(p) for p in self._parts]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Part:
        p = int(for_part)
        return _Part(self.topic, p, self._parts[p], resume_state or 0, self.batch_size)
