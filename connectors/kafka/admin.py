"""Topic administration from the registry in ``schemas.topics``."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from schemas.topics import TOPICS


def wait_ready(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Block until the cluster answers a metadata request; raise with a hint otherwise."""
    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise RuntimeError(
            f"Kafka at {bootstrap} did not answer within {timeout_s}s ({exc}); "
            "start the local broker with `make services-up` or set LEVIBOT_KAFKA_BOOTSTRAP"
        ) from exc


def ensure_topics(
    bootstrap: str,
    *,
    prefix: str = "",
    names: list[str] | None = None,
    partitions: dict[str, int] | None = None,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create the registry's topics that are missing; grow partitions that are too few.

    Returns ``{topic: "created" | "exists" | "grown"}``. Idempotent: running it twice changes nothing.
    ``partitions`` overrides the registry's partition count per registry name.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = {n: TOPICS[n] for n in (names or list(TOPICS))}
    existing = admin.list_topics(timeout=timeout_s).topics
    result: dict[str, str] = {}
    new: list[NewTopic] = []
    grow: list[NewPartitions] = []
    for name, spec in wanted.items():
        full = f"{prefix}{name}"
        n_parts = (partitions or {}).get(name, spec.partitions)
        if full in existing:
            have = len(existing[full].partitions)
            if have < n_parts:
                grow.append(NewPartitions(full, n_parts))
                result[full] = "grown"
            else:
                result[full] = "exists"
        else:
            new.append(
                NewTopic(
                    full, num_partitions=n_parts, replication_factor=replication_factor, config=spec.kafka_config()
                )
            )
            result[full] = "created"
    for fut_map in ([admin.create_topics(new)] if new else []) + ([admin.create_partitions(grow)] if grow else []):
        for topic, fut in fut_map.items():
            try:
                fut.result(timeout_s)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):  # created concurrently by another process
                    result[topic] = "exists"
                else:
                    raise RuntimeError(f"could not create or grow topic {topic!r}: {exc}") from exc
    return result


def delete_topics(bootstrap: str, topics: list[str], timeout_s: float = 30.0) -> None:
    """Delete topics (tests and tooling); missing topics are ignored."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=timeout_s).topics
    doomed = [t for t in topics if t in existing]
    if not doomed:
        return
    for _topic, fut in admin.delete_topics(doomed, operation_timeout=timeout_s).items():
        try:
            fut.result(timeout_s)
        except KafkaException as exc:
            if "UNKNOWN_TOPIC" not in str(exc):
                raise
