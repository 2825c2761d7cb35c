"""Idempotent Kafka producers: a plain one for tools, and a Bytewax sink built on it.

Keys come from a key function (the symbol for market topics); values are the JSON of the event.
Delivery failures are never ignored: they are collected from the delivery callback and raised at
the next flush, so a Bytewax flow stops and resumes from its last snapshot instead of losing data.

The live flow's sinks ride out a broker outage (``KafkaEventSink(..., resilience=...)``): librdkafka keeps the
batch in its bounded queue and retries it (idempotent producer: ``enable.idempotence=true``, no duplicate on retry,
per-partition order kept; ``message.timeout.ms=0`` so a message is never given up locally), ``write_batch`` waits
for the acknowledgement, polling with exponential backoff and jitter (tenacity), and the sink's circuit breaker
opens after ``open_after_s`` without one (an alert) and closes when the batch is acknowledged. A delivery report
with an error, or a fatal producer error, raises ``DeliveryError``: it is never silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, KafkaException, Producer
from tenacity import Retrying, retry_if_result, stop_never, wait_exponential_jitter

from connectors.batching import flatten
from connectors.kafka.config import producer_config
from schemas.codec import encode

log = logging.getLogger(__name__)


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
        conf = producer_config(bootstrap, extra=extra_config)
        conf.setdefault("error_cb", self._on_error)
        self._producer = Producer(conf)
        self._errors: list[str] = []
        self._fatal: str | None = None
        self.sent = 0
        self.delivery_failures = 0

    def _on_error(self, err: Any) -> None:
        # client-level errors (all brokers down, transport): librdkafka retries them itself; only fatal ones (the
        # idempotent producer's state is lost) end the producer
        if getattr(err, "fatal", lambda: False)():
            self._fatal = str(err)
            log.error("fatal Kafka producer error on %s: %s", self.topic, err)
        elif err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            log.warning("Kafka producer for %s: %s (librdkafka reconnects and retries)", self.topic, err)

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.delivery_failures += 1
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
        self.check_delivery()

    def pending(self, timeout_s: float) -> int:
        """Serve delivery reports for up to ``timeout_s``; the number of messages not yet acknowledged."""
        return self._producer.flush(timeout_s)

    def check_delivery(self) -> None:
        """Raise ``DeliveryError`` for every failed delivery report (or fatal error) seen so far."""
        if self._fatal is not None:
            raise DeliveryError(f"fatal producer error on {self.topic!r}: {self._fatal}")
        if self._errors:
            errs, self._errors = self._errors, []
            raise DeliveryError(f"{len(errs)} messages failed delivery to {self.topic!r}; first: {errs[0]}")

    def close(self) -> None:
        """Flush; the librdkafka handle is released when the object is collected."""
        self.flush()


class _SinkPartition(StatelessSinkPartition[Any]):
    def __init__(self, producer: EventProducer, breaker: Any = None, open_after_s: float = 5.0) -> None:
        self._p = producer
        self._breaker = breaker
        self._open_after_s = open_after_s

    def write_batch(self, items: list[Any]) -> None:
        self._p.send(flatten(items))
        try:
            if self._breaker is None:
                self._p.flush()
            else:
                self._await_ack()
        except KafkaException as exc:  # pragma: no cover - librdkafka raises its own type on fatal errors
            raise DeliveryError(str(exc)) from exc

    def _await_ack(self) -> None:
        """Wait (without a bound: ``message.timeout.ms`` is 0) until the broker has the batch; the breaker opens
        after ``open_after_s`` without an acknowledgement and closes once the batch is in."""
        t0 = time.monotonic()
        breaker = self._breaker

        def still_waiting(remaining: int) -> bool:
            if remaining and breaker.state == "closed" and time.monotonic() - t0 >= self._open_after_s:
                breaker.open(
                    f"{remaining} messages unacknowledged for {time.monotonic() - t0:.1f}s "
                    f"(broker unreachable?); the flow waits, nothing is dropped"
                )
            if self._p._fatal is not None or self._p._errors:
                return False
            return remaining > 0

        Retrying(
            retry=retry_if_result(still_waiting),
            stop=stop_never,
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        )(self._p.pending, 0.5)
        try:
            self._p.check_delivery()
        except DeliveryError as exc:
            breaker.open(f"delivery failed: {exc}")
            raise
        if breaker.state != "closed":
            breaker.close(f"broker acknowledged the batch after {time.monotonic() - t0:.1f}s")

    def close(self) -> None:
        self._p.close()


class KafkaEventSink(DynamicSink[Any]):
    """Bytewax sink writing typed events (or lists of events) to one topic, one producer per worker.

    Every write batch is flushed before Bytewax may take the next snapshot, so a snapshot never
    covers output that was not acknowledged (at-least-once; consumers dedupe by event id).

    With ``resilience`` (a ``connectors.resilience.SinkResilience``, or anything with ``breaker(name)``) the sink
    rides out broker outages behind a circuit breaker named ``name`` (default ``kafka.<topic>``; see the module
    docstring); ``breaker_listeners`` are attached too (e.g. ``ReduceOnlyOnOutage`` on orders).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        key_fn: Callable[[Any], bytes | None] = key_by_symbol,
        extra_config: dict[str, str] | None = None,
        resilience: Any = None,
        name: str | None = None,
        open_after_s: float = 5.0,
        breaker_registrars: tuple[Any, ...] = (),
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.key_fn = key_fn
        self.extra_config = extra_config
        self.resilience = resilience
        self.name = name or f"kafka.{topic}"
        self.open_after_s = open_after_s
        self.breaker_registrars = breaker_registrars

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SinkPartition:
        if self.resilience is None:
            return _SinkPartition(
                EventProducer(self.bootstrap, self.topic, key_fn=self.key_fn, extra_config=self.extra_config)
            )
        extra = {"message.timeout.ms": "0", **(self.extra_config or {})}
        breaker = self.resilience.breaker(self.name)
        for reg in self.breaker_registrars:
            reg.register(breaker)
        return _SinkPartition(
            EventProducer(self.bootstrap, self.topic, key_fn=self.key_fn, extra_config=extra),
            breaker,
            self.open_after_s,
        )


def key_by_source_topic(event: Any) -> bytes:
    """Partition key of dead letters: the topic the bad input came from."""
    return event.source_topic.encode()
