"""The Kafka job of the peers benchmark (benchmarks/peers/quix) at a tiny size on the real broker: the project's side
always, the peer where `make bench BENCH_ARGS='--suite peers'` has built its venv (the rest of the peers benchmark:
tests/unit/benchmarks/test_bench_peers.py). Speed is never asserted here."""

from __future__ import annotations

import uuid

import pytest

from benchmarks.peers import venv


@pytest.mark.kafka
def test_kafka_job_project_side(kafka_bootstrap, topic_prefix):
    from dataclasses import replace

    from benchmarks.flow import LIVE_CFG, _produce, dense_ticks, universe
    from benchmarks.peers import quix
    from connectors.kafka.admin import ensure_topics

    ticks = dense_ticks(3600, 4)
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["ticks", "orders"])
    _produce(kafka_bootstrap, f"{topic_prefix}ticks", ticks)
    # a strategy that trades often enough to put orders on the output topic within two hours of ticks
    busy = replace(
        LIVE_CFG,
        trend_entry=0.0005,
        trend_exit=0.0001,
        orchestrator_args=(("turnover_per_year", None), ("min_hold_bars", 1), ("min_change", 0.05)),
    )
    secs, orders = quix.project_job(
        kafka_bootstrap, f"{topic_prefix}ticks", f"{topic_prefix}orders", universe(busy, ticks)
    )
    assert secs > 0 and orders > 0
    assert _messages(kafka_bootstrap, f"{topic_prefix}orders") == orders
    if venv.is_ready("quix"):  # the peer too, where `make bench` has built its venv
        got = quix.run(kafka_bootstrap, n_ticks=14_400, rounds=1)
        assert got["quix_ticks"] == 14_400 and got["quix_peer_bars"] > 0


def _messages(bootstrap: str, topic: str) -> int:
    """Messages on ``topic`` (sum of its partitions' high watermarks; the topic is fresh)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex[:6]}"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        c.close()
