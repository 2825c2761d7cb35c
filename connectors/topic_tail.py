"""The last messages of a Kafka topic, for the operator API (``/v1/models/drift`` reads the ``alerts`` topic):
each partition is read from ``high watermark - last`` to its end, so the cost is bounded by ``last``, not by the
topic's length."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from connectors.kafka.config import consumer_config
from connectors.kafka.source import list_partitions

__all__ = ["tail"]


def tail(bootstrap: str, topic: str, last: int, *, timeout_s: float = 5.0) -> list[Any]:
    """Up to ``last`` newest raw messages of every partition of ``topic`` (oldest first by partition, offset).
    ``TimeoutError`` when the end is not reached within ``timeout_s``."""
    parts = list_partitions(bootstrap, topic)
    c = Consumer(consumer_config(bootstrap))
    out: list[Any] = []
    try:
        ends: dict[int, int] = {}
        assign = []
        for p in parts:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                ends[p] = high
                assign.append(TopicPartition(topic, p, max(low, high - last)))
        if not assign:
            return []
        c.assign(assign)
        deadline = time.monotonic() + timeout_s
        pos = {tp.partition: tp.offset for tp in assign}
        while any(pos[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"tail of {topic!r} not read within {timeout_s}s")
            for m in c.consume(1000, 0.2):
                if m.error() is not None:
                    raise RuntimeError(f"Kafka error reading {topic!r}: {m.error()}")
                part, off = m.partition(), m.offset()
                assert part is not None and off is not None  # a consumed message has both
                pos[part] = off + 1
                if off < ends[part]:
                    out.append(m)
    finally:
        c.close()
    out.sort(key=lambda m: (m.partition(), m.offset()))
    return out
