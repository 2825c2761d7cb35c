"""The Kafka consumer-lag poller of connectors/metrics/ against the real broker (the rest of connectors/metrics/:
tests/unit/connectors/test_metrics.py)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

import connectors.metrics as cm
from connectors.kafka.source import EventBatch
from connectors.metrics import FlowMetrics


def fm() -> FlowMetrics:
    return FlowMetrics(registry=CollectorRegistry())


def val(m: FlowMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


@pytest.mark.kafka
def test_lag_poller_against_real_kafka(kafka_bootstrap, topic_prefix):
    from confluent_kafka import Producer

    from connectors.kafka.admin import ensure_topics

    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["ticks"])
    topic = f"{topic_prefix}ticks"
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(10):
        p.produce(topic, value=b"x", partition=0)
    p.flush(10)
    m = fm()
    m.observe_batch(EventBatch(topic=topic, partition=0, next_offset=4, events=[], dead=[]))
    poller = cm.KafkaLagPoller(kafka_bootstrap, m)
    try:
        assert poller.poll_once() == {(topic, 0): 6}
    finally:
        poller.stop()
    assert val(m, "levibot_kafka_consumer_lag_messages", topic=topic, partition="0") == 6
