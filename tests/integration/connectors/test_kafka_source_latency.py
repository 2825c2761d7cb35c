"""A Kafka poll returns as soon as a message is there (real broker). ``Consumer.consume(n, timeout)`` waits for ``n``
messages or the whole timeout, so a flow polling for 5,000 ticks with a 50 ms timeout decided up to 50 ms late on a
quiet feed; the sources (ticks, signals, control, execution reports) and the paper venue now take what has arrived.
The margins are wide on purpose (a 20 s timeout against a message sent after 0.3 s): this checks the behaviour,
not a speed."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.kafka.admin import delete_topics, ensure_topics
from connectors.kafka.config import consumer_config
from connectors.kafka.source import KafkaEventSource, consume_ready
from schemas.codec import encode
from schemas.events import Tick

pytestmark = pytest.mark.kafka

T0 = 1_700_000_000_000_000_000


def _topic(bootstrap: str) -> str:
    prefix = f"tlat{uuid.uuid4().hex[:8]}."
    ensure_topics(bootstrap, prefix=prefix, names=["ticks"])
    return f"{prefix}ticks"


def _send_later(bootstrap: str, topic: str, delay_s: float, n: int = 1) -> None:
    def go() -> None:
        time.sleep(delay_s)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        for i in range(n):
            tick = Tick(symbol="BTC-USD", ts=T0 + i, price=100.0, qty=1.0, side="buy", trade_id=f"x{i}", venue="t")
            p.produce(topic, partition=0, value=encode(tick))
        p.flush(10)

    threading.Thread(target=go, daemon=True).start()


@pytest.mark.parametrize("columnar", [False, True])
def test_a_poll_returns_when_the_first_message_arrives_not_at_its_timeout(kafka_bootstrap, columnar):
    topic = _topic(kafka_bootstrap)
    try:
        part = KafkaEventSource(
            kafka_bootstrap, topic, Tick, batch_size=5000, poll_timeout_s=20.0, columnar=columnar
        ).build_part("ticks", "0", None)
        _send_later(kafka_bootstrap, topic, 0.3)
        t = time.monotonic()
        got = part.next_batch()  # one poll: it may wait up to its 20 s timeout
        took = time.monotonic() - t
        assert got and got[0].size == 1
        assert took < 10.0, f"the poll waited {took:.1f} s for a message that came after 0.3 s"
        part.close()
    finally:
        delete_topics(kafka_bootstrap, [topic])


def test_consume_ready_takes_everything_already_there(kafka_bootstrap):
    topic = _topic(kafka_bootstrap)
    try:
        _send_later(kafka_bootstrap, topic, 0.0, n=50)
        c = Consumer(consumer_config(kafka_bootstrap, eof=False))
        c.assign([TopicPartition(topic, 0, 0)])
        got: list = []
        deadline = time.monotonic() + 30
        while len(got) < 50 and time.monotonic() < deadline:
            got.extend(m for m in consume_ready(c, 5000, 1.0) if m.error() is None)
        assert [m.offset() for m in got] == list(range(50))
        t = time.monotonic()
        assert consume_ready(c, 5000, 0.5) == []  # nothing more: the timeout, once
        assert time.monotonic() - t >= 0.4
        c.close()
    finally:
        delete_topics(kafka_bootstrap, [topic])
