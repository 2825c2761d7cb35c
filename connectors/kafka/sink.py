"""Idempotent Kafka producers: a plain one for tools, and a Bytewax sink built on it.

Keys come from a key function (the symbol for market topics); values are the JSON of the event.
Delivery failures are never ignored: they are collected from the delivery callback and raised at
the next flush, so a Bytewax flow stops and resumes from its last snapshot instead of losing data.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaException, Producer

from connectors.batching import flatten
from connectors.kafka.config import producer_config
from schemas.codec import encode


def key_by_symbol(event: Any) -> bytes:
    """Partition key of market events: the symbol."""
    return event.symbol.encode()


class DeliveryError(RuntimeError):
    """One or more messages could not be delivered after librdkafka's retries."""


class EventProducer:
    """A small wrapper over an idempotent confluent-kafka ``Producer`` for typed events."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        key_fn: Callable[[Any], bytes | None] = key_by_symbol,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.topic = topic
        self._key_fn = key_fn
        self._producer = Producer(producer_config(bootstrap, extra=extra_config))
        self._errors: list[str] = []
        self.sent = 0

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def produce_raw(self, key: bytes | None, value: bytes, timestamp_ms: int = 0, topic: str | None = None) -> None:
        """Queue one already-encoded message; blocks briefly when the local queue is full."""
        while True:
            try:
                self._producer.produce(
                    topic or self.topic, value, key, on_delivery=self._on_delivery, timestamp=timestamp_ms
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self.sent += 1

    def send(self, events: Iterable[Any]) -> int:
        """Queue events (JSON-encoded, keyed by ``key_fn``).

        The Kafka timestamp is the produce time (not the event time): topics retain by Kafka time, so a
        replay of years-old history stamped with its event time would be deleted by the broker at once.
        The event time travels in the payload (``ts``).
        """
        n = 0
        key_fn = self._key_fn
        for ev in events:
            self.produce_raw(key_fn(ev), encode(ev))
            n += 1
        self._producer.poll(0)
        return n

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every queued message is acknowledged; raise on any delivery failure."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise DeliveryError(f"{remaining} messages still undelivered to {self.topic!r} after {timeout_s}s")
        if self._errors:
            errs, self._errors = self._errors, []
            raise DeliveryError(f"{len(errs)} messages failed delivery to {self.topic!r}; first: {errs[0]}")

    def close(self) -> None:
        """Flush; the librdkafka handle is released when the object is collected."""
        self.flush()


class _SinkPartition(StatelessSinkPartition[Any]):
    def __init__(self, producer: EventProducer) -> None:
        self._p = producer

    def write_batch(self, items: list[Any]) -> None:
        self._p.send(flatten(items))
        try:
            self._p.flush()
        except KafkaException as exc:  # pragma: no cover - librdkafka raises its own type on fatal errors
            raise DeliveryError(str(exc)) from exc

    def close(self) -> None:
        self._p.close()


class KafkaEventSink(DynamicSink[Any]):
    """Bytewax sink writing typed events (or lists of events) to one topic, one producer per worker.

    Every write batch is flushed before Bytewax may take the next snapshot, so a snapshot never
    covers output that was not acknowledged (at-least-once; consumers dedupe by event id).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        key_fn: Callable[[Any], bytes | None] = key_by_symbol,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.key_fn = key_fn
        self.extra_config = extra_config

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SinkPartition:
        return _SinkPartition(EventProducer(self.bootstrap, self.topic, key_fn=self.key_fn, extra_config=self.extra_config))


def key_by_source_topic(event: Any) -> bytes:
    """Partition key of dead letters: the topic the bad input came from."""
    return event.source_topic.encode()
