"""Turn raw Kafka messages into typed events and dead letters (never an exception, never a loss)."""

from __future__ import annotations

from typing import Any, Sequence

from schemas.codec import DecodeError, decode_many
from schemas.events import DEAD_LETTER_RAW_MAX_BYTES, DeadLetter


def dead_letter(msg: Any, error: DecodeError, stage: str = "decode") -> DeadLetter:
    """Dead letter for one confluent-kafka message rejected with ``error``.

    The dead letter's ``ts`` is the Kafka message timestamp (ns), never the wall clock, so that a
    replay produces identical dead letters.
    """
    raw = msg.value() or b""
    _, ts_ms = msg.timestamp()
    return DeadLetter(
        source_topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        error=error.reason,
        detail=error.detail[:4096],
        raw=raw[:DEAD_LETTER_RAW_MAX_BYTES],
        raw_size=len(raw),
        ts=max(ts_ms, 946_684_800_000) * 1_000_000,
        stage=stage,
    )


def decode_messages(msgs: Sequence[Any], event_type: type, *, max_bytes: int) -> tuple[list, list[DeadLetter]]:
    """Decode the values of ``msgs`` as ``event_type``; failures become dead letters with reasons."""
    values = [m.value() for m in msgs]
    events, failures = decode_many(values, event_type, max_bytes=max_bytes)
    dead = [dead_letter(msgs[i], err) for i, err in failures]
    return events, dead
