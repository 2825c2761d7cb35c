"""librdkafka configuration shared by every Kafka client of the project."""

from __future__ import annotations


def producer_config(bootstrap: str, *, client_id: str = "levibot", extra: dict[str, str] | None = None) -> dict:
    """Idempotent, batching producer: no duplicates on retry, ordered per partition, lz4 batches."""
    conf: dict = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,  # implies acks=all and max.in.flight <= 5 with ordering kept
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1 << 20,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1 << 20,
        "message.max.bytes": 8 << 20,
    }
    conf.update(extra or {})
    return conf


def consumer_config(
    bootstrap: str, *, group_id: str = "levibot-unused", eof: bool = False, extra: dict[str, str] | None = None
) -> dict:
    """Consumer that never commits offsets itself: positions live in Bytewax snapshots."""
    conf: dict = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": eof,
        # a position the broker no longer has (retention) is an error, never a silent jump to another offset
        "auto.offset.reset": "error",
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 10,
        "queued.max.messages.kbytes": 256 * 1024,
        "max.partition.fetch.bytes": 16 << 20,
    }
    conf.update(extra or {})
    return conf
