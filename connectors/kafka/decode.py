"""Turn raw Kafka messages into typed events and dead letters (never an exception, never a loss).

A message is only bytes and a few numbers the producer chose: whatever they hold (bytes that are not UTF-8, a
timestamp outside the events' range, a huge key), the message becomes an event or a valid :class:`DeadLetter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeVar

import numpy as np

from operators.messages import SIDE_CODES, TickBatch
from schemas.codec import DecodeError, decode_many, decode_tick_columns
from schemas.events import DEAD_LETTER_RAW_MAX_BYTES, DeadLetter, Event
from schemas.time import TS_MAX_NS, TS_MIN_NS

#: Longest Kafka key kept in a dead letter, bytes (``DeadLetter.key``'s limit).
DEAD_LETTER_KEY_MAX_BYTES: Final = 65_536

E = TypeVar("E", bound=Event)


def dead_letter_ts(ts_ms: int | float | None) -> int:
    """A dead letter's ``ts`` (ns UTC) from a Kafka message timestamp in ms: clamped into the event time range
    [2000-01-01, 2100-01-01), so that a producer's odd timestamp (none, 0, negative, far future) can never make the
    dead letter itself invalid.

    >>> dead_letter_ts(1_700_000_000_000), dead_letter_ts(-1) == TS_MIN_NS, dead_letter_ts(2**62) == TS_MAX_NS - 1
    (1700000000000000000, True, True)
    """
    ns = int(ts_ms or 0) * 1_000_000
    return min(max(ns, TS_MIN_NS), TS_MAX_NS - 1)


def dead_letter(msg: Any, error: DecodeError, stage: str = "decode") -> DeadLetter:
    """Dead letter for one confluent-kafka message rejected with ``error``.

    The dead letter's ``ts`` is the Kafka message timestamp (ns, clamped by :func:`dead_letter_ts`), never the
    wall clock, so that a replay produces identical dead letters. The key is cut to
    :data:`DEAD_LETTER_KEY_MAX_BYTES`, the payload to ``DEAD_LETTER_RAW_MAX_BYTES`` (``raw_size`` keeps its size).
    """
    raw = msg.value() or b""
    key = msg.key()
    _, ts_ms = msg.timestamp()
    return DeadLetter(
        source_topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=key[:DEAD_LETTER_KEY_MAX_BYTES] if key is not None else None,
        error=error.reason,
        detail=error.detail[:4096],
        raw=raw[:DEAD_LETTER_RAW_MAX_BYTES],
        raw_size=len(raw),
        ts=dead_letter_ts(ts_ms),
        stage=stage,
    )


def decode_messages(msgs: Sequence[Any], event_type: type[E], *, max_bytes: int) -> tuple[list[E], list[DeadLetter]]:
    """Decode the values of ``msgs`` as ``event_type``; failures become dead letters with reasons."""
    values = [m.value() for m in msgs]
    events, failures = decode_many(values, event_type, max_bytes=max_bytes)
    dead = [dead_letter(msgs[i], err) for i, err in failures]
    return events, dead


def decode_tick_batch(msgs: Sequence[Any], *, max_bytes: int) -> tuple[TickBatch, list[DeadLetter]]:
    """Decode the values of ``msgs`` as ``Tick`` payloads straight into one columnar batch (the Kafka offsets
    with them) and the dead letters of the rest: the same ticks, values and dead letters as :func:`decode_messages`
    followed by ``TickBatch.from_ticks``, without a ``Tick`` object per message."""
    values = [m.value() for m in msgs]
    cols, kept, failures = decode_tick_columns(values, max_bytes=max_bytes)
    dead = [dead_letter(msgs[i], err) for i, err in failures]
    n = len(kept)
    sym = cols["symbol"]
    names = {s: c for c, s in enumerate(dict.fromkeys(sym))}  # codes in order of first appearance
    if len(names) == 1:
        codes = np.zeros(n, np.int32)
    else:
        codes = np.fromiter(map(names.__getitem__, sym), np.int32, n)
    if failures:
        offsets = [msgs[i].offset() for i in kept]
    else:
        offsets = [m.offset() for m in msgs]
    return (
        TickBatch(
            list(names),
            codes,
            np.array(cols["ts"], np.int64).reshape(n),
            np.array(cols["price"], np.float64).reshape(n),
            np.array(cols["qty"], np.float64).reshape(n),
            np.fromiter(map(SIDE_CODES.__getitem__, cols["side"]), np.int8, n),
            np.array(cols["synthetic"], bool).reshape(n),
            _objects(cols["trade_id"]),
            _objects(cols["venue"]),
            np.array(offsets, np.int64).reshape(n),
        ),
        dead,
    )


def _objects(values: list[str]) -> np.ndarray:
    """A 1-d object array of ``values`` (str)."""
    out = np.empty(len(values), object)
    out[:] = values
    return out
