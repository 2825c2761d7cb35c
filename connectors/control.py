"""The ``control`` topic: publish signed commands, and read the compacted topic back into a ``ControlState``.

Publishing keys each command by its ``compaction_key`` (``<scope>/<slot>``), so Kafka compaction keeps the latest
command per slot and never lets a limit change erase a halt of the same scope. Every delivery is awaited and a
failure raises (``connectors.kafka.sink.DeliveryError``).

Reading (:func:`read_control`) takes the topic from its beginning to its current end (``iter_topic``) and folds it
(:func:`fold`) in topic order: decode (``schemas.codec``), check that the Kafka key is the command's compaction key,
verify the signature (``operators.control.signing.verify``), apply (``ControlState.apply``). Nothing is skipped
silently: every message becomes a :class:`ControlRecord` with its outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.kafka.sink import EventProducer
from connectors.kafka.source import iter_topic, list_partitions
from operators.control.signing import verify
from operators.control.state import ControlState
from schemas.codec import DecodeError, decode, validate
from schemas.events import ControlCommand

__all__ = [
    "key_by_compaction_key",
    "key_by_scope",
    "ControlPublisher",
    "ControlRecord",
    "ControlView",
    "fold",
    "read_control",
]

Outcome = Literal["applied", "refused", "duplicate", "undecodable", "tombstone"]


def key_by_compaction_key(cmd: ControlCommand) -> bytes:
    """Kafka key of a command on ``control``: its compaction key, UTF-8."""
    return cmd.compaction_key.encode()


def key_by_scope(event: Any) -> bytes:
    """Kafka key on ``audit``: the scope (empty scope: ``-``)."""
    return (event.scope or "-").encode()


class ControlPublisher:
    """Sends signed commands to one ``control`` topic; each :meth:`publish` waits for the broker's ack.

    ``timeout_s`` bounds how long a delivery may take before it fails (librdkafka ``message.timeout.ms``). The topic
    must exist (``levibot topics create``); a missing topic is a clear ``RuntimeError`` at once, not a timeout."""

    def __init__(self, bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> None:
        list_partitions(bootstrap, topic)
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = EventProducer(
            bootstrap,
            topic,
            key_fn=key_by_compaction_key,
            extra_config={"message.timeout.ms": str(int(timeout_s * 1000))},
        )

    def publish(self, cmd: ControlCommand) -> ControlCommand:
        """Validate (patterns and bounds too), send and wait for the ack; returns the command as sent."""
        if not cmd.signature:
            raise ValueError("refusing to publish an unsigned control command")
        cmd = validate(cmd)
        self._producer.send([cmd])
        self._producer.flush(self.timeout_s + 5.0)
        return cmd

    def close(self) -> None:
        self._producer.close()


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """One message of the topic and what became of it. ``command`` is None when it did not decode (or is a
    tombstone); ``reason`` is the codec's, the signature's or the state's reason code."""

    partition: int
    offset: int
    key: bytes | None
    outcome: Outcome
    command: ControlCommand | None = None
    reason: str = ""
    detail: str = ""


@dataclass
class ControlView:
    """The folded topic: the resulting ``state`` and every message's record, in fold order."""

    topic: str
    state: ControlState
    records: list[ControlRecord] = field(default_factory=list)

    def by_outcome(self, outcome: Outcome) -> list[ControlRecord]:
        return [r for r in self.records if r.outcome == outcome]


def fold(
    messages: Iterable[tuple[int, int, bytes | None, bytes | None]],
    keys: Mapping[str, bytes],
    *,
    state: ControlState | None = None,
    topic: str = "control",
) -> ControlView:
    """Fold ``(partition, offset, key, value)`` messages, in the order given, into a state.

    A tombstone (``value`` None, a compaction delete marker; nothing in LeviBot writes one) is ignored. A value that
    does not decode is ``undecodable`` with the codec's reason. A command under another Kafka key than its
    compaction key is refused as ``wrong_key`` (compaction would otherwise drop the wrong commands). A failed
    signature is refused with the signature's reason and noted in the state (``record_refusal``); the rest goes
    through ``ControlState.apply``."""
    st = ControlState() if state is None else state
    view = ControlView(topic, st)
    for partition, offset, key, value in messages:
        if value is None:
            view.records.append(ControlRecord(partition, offset, key, "tombstone"))
            continue
        try:
            cmd = decode(value, ControlCommand)
        except DecodeError as exc:
            view.records.append(ControlRecord(partition, offset, key, "undecodable", None, exc.reason, exc.detail))
            continue
        if key != key_by_compaction_key(cmd):
            detail = f"Kafka key {key!r} is not the compaction key {cmd.compaction_key!r}"
            st.record_refusal(cmd, "wrong_key", detail)
            view.records.append(ControlRecord(partition, offset, key, "refused", cmd, "wrong_key", detail))
            continue
        verdict = verify(cmd, keys)
        if not verdict.ok:
            st.record_refusal(cmd, verdict.reason, verdict.detail)
            view.records.append(ControlRecord(partition, offset, key, "refused", cmd, verdict.reason, verdict.detail))
            continue
        res = st.apply(cmd)
        view.records.append(ControlRecord(partition, offset, key, res.status, cmd, res.reason, res.detail))
    return view


def read_control(
    bootstrap: str, topic: str, keys: Mapping[str, bytes], *, timeout_s: float = 10.0, state: ControlState | None = None
) -> ControlView:
    """Read ``topic`` from the beginning to its current end and :func:`fold` it.

    Topic order is offset order (``control`` has one partition). Should the topic have several partitions, the
    messages are merged by Kafka timestamp (the produce time), then partition and offset."""
    msgs = [m for batch in iter_topic(bootstrap, topic, timeout_s=timeout_s) for m in batch]
    if len(list_partitions(bootstrap, topic)) > 1:
        msgs.sort(key=lambda m: (m.timestamp()[1], m.partition(), m.offset()))
    else:
        msgs.sort(key=lambda m: m.offset())
    return fold(((m.partition(), m.offset(), m.key(), m.value()) for m in msgs), keys, state=state, topic=topic)
