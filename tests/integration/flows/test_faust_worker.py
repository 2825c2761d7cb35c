"""A Faust app's producer and topics created after it started (flows/faust_worker.py), on the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from connectors.kafka.admin import delete_topics
from flows.faust_worker import producer_knows

pytestmark = pytest.mark.kafka


def test_producer_knows_a_topic_created_after_it_started(kafka_bootstrap):
    """The alert dispatcher's throttle table sets keys with the producer's partitioner, which reads the producer's
    metadata synchronously: for a topic created after the producer fetched it, Faust fails with a TypeError (what
    made a live run's alert go undelivered once). After ``producer_knows`` the partition is found."""
    import faust
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"tfw{uuid.uuid4().hex[:8]}.later"
    app = faust.App(f"tfw-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}", autodiscover=False)

    async def scenario() -> int:
        await app.producer.start()
        try:
            aiokp = app.producer._ensure_producer()
            await aiokp.client.force_metadata_update()  # the producer's view of the cluster, before the topic exists
            admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
            admin.create_topics([NewTopic(name, 3, 1)])[name].result(15)
            with pytest.raises(TypeError):
                app.producer.key_partition(name, b"k")
            await producer_knows(app, name)
            return app.producer.key_partition(name, b"k").partition
        finally:
            await app.producer.stop()

    try:
        assert asyncio.run(scenario()) in (0, 1, 2)
    finally:
        delete_topics(kafka_bootstrap, [name])
