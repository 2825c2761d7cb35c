"""`levibot ingest`: Kafka `ticks` into PostgreSQL/TimescaleDB and ClickHouse, bad input into `dlq`.

The storage edge for raw ticks, as its own small Bytewax flow: typed batches from the Kafka source,
every batch written to both stores (idempotent: re-reading the topic after
a restart or a second replay changes no count), dead letters to the `dlq` topic.
"""

from __future__ import annotations

from pathlib import Path

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig
from bytewax.testing import run_main

from connectors.clickhouse.sink import ClickHouseSink
from connectors.kafka.sink import KafkaEventSink, key_by_source_topic
from connectors.kafka.source import KafkaEventSource
from connectors.postgres.sink import PostgresSink
from schemas.events import Tick


def build_ingest_flow(
    bootstrap: str,
    ticks_topic: str,
    dlq_topic: str,
    *,
    pg_dsn: str | None,
    ch_dsn: str | None,
    ch_database: str = "levibot",
    stop_at_end: bool = False,
    batch_size: int = 5000,
    max_message_bytes: int = 1 << 20,
) -> Dataflow:
    """Wire the ingest flow; either store may be left out (None)."""
    flow = Dataflow("levibot-ingest")
    src = KafkaEventSource(
        bootstrap,
        ticks_topic,
        Tick,
        batch_size=batch_size,
        stop_at_end=stop_at_end,
        max_message_bytes=max_message_bytes,
    )
    batches = op.input("ticks_in", flow, src)
    events = op.filter("nonempty", op.map("events", batches, lambda b: b.events), bool)
    if pg_dsn:
        op.output("ticks_pg", events, PostgresSink(pg_dsn, "ticks", Tick))
    if ch_dsn:
        op.output("ticks_ch", events, ClickHouseSink(ch_dsn, "ticks", Tick, database=ch_database))
    dead = op.filter("has_dead", op.map("dead", batches, lambda b: b.dead), bool)
    op.output("dlq_out", dead, KafkaEventSink(bootstrap, dlq_topic, key_fn=key_by_source_topic))
    return flow


def run_ingest(flow: Dataflow, recovery_dir: Path | None = None) -> None:
    """Run in this process (one worker); with ``recovery_dir`` the run resumes from its snapshots."""
    recovery = RecoveryConfig(str(recovery_dir)) if recovery_dir else None
    run_main(flow, epoch_interval=None, recovery_config=recovery)
