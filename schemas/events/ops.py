"""Operations: alerts and dead letters."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .base import (
    DEAD_LETTER_RAW_MAX_BYTES,
    REASON_CODE_PATTERN,
    TOPIC_NAME_PATTERN,
    Event,
    Id,
    Name,
    SchemaVersion1,
    ShortText,
    Text,
    Timestamp,
    _ts,
    _version,
)


class Alert(Event, tag="alert", frozen=True, kw_only=True):
    """Something a human should know. ``dedupe_key`` groups repeats (the dispatcher sends one per key per
    window); ``labels`` max 32 pairs (keys machine names, values max 256 chars); ``message`` max 4096 chars;
    ``ts`` ns UTC."""

    id: Id
    severity: Literal["info", "warning", "critical"]
    kind: Name
    message: Text
    labels: Annotated[dict[Name, ShortText], Meta(max_length=32)] = {}
    dedupe_key: Annotated[str, Meta(min_length=1, max_length=256)]
    ts: Timestamp
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)


class DeadLetter(Event, tag="dead_letter", frozen=True, kw_only=True):
    """An input a stage rejected, kept for inspection and replay.

    ``partition``/``offset``: Kafka coordinates of the input (-1 when unknown; non-Kafka sources put the record
    index in ``offset``). ``error``: reason code (``invalid_json``, ``validation``, ``unknown_schema_version``,
    ``oversized``, ``wrong_type`` from the codec, or a stage's own code); ``detail``: human text (max 4096 chars);
    ``raw``: the payload, truncated to 256 KiB (``raw_size`` is the original size in bytes, -1 unknown); ``key`` the
    Kafka key (bytes are base64 in JSON). ``ts``: ns UTC, the input's Kafka timestamp (never the wall clock) so
    replays reproduce it. Natural key: ``(source_topic, partition, offset, stage)``.
    """

    source_topic: Annotated[str, Meta(pattern=TOPIC_NAME_PATTERN)]
    partition: Annotated[int, Meta(ge=-1)] = -1
    offset: Annotated[int, Meta(ge=-1)] = -1
    key: Annotated[bytes, Meta(max_length=65_536)] | None = None
    error: Annotated[str, Meta(pattern=REASON_CODE_PATTERN)]
    detail: Text = ""
    raw: Annotated[bytes, Meta(max_length=DEAD_LETTER_RAW_MAX_BYTES)] = b""
    raw_size: Annotated[int, Meta(ge=-1)] = -1
    ts: Timestamp
    stage: Name = "decode"
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)
        if self.partition < -1 or self.offset < -1:
            raise ValueError(f"partition/offset must be >= -1, got {self.partition}/{self.offset}")

    @property
    def dedupe_id(self) -> str:
        """Deterministic id ``topic/partition/offset/stage`` (unique for Kafka inputs)."""
        return f"{self.source_topic}/{self.partition}/{self.offset}/{self.stage}"
