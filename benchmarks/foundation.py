"""Foundation benchmarks (issue 2): replay producer, Kafka source decode vs a bare loop, store sinks.

Every comparison runs side by side in one process on the same topic, and is reported as a ratio:
the machine is shared and noisy, absolute numbers move, ratios much less.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.history import iter_tick_events, load_history
from connectors.kafka.admin import delete_topics, ensure_topics
from connectors.kafka.config import consumer_config
from connectors.kafka.sink import EventProducer
from connectors.kafka.source import KafkaEventSource, list_partitions
from flows.replay import replay
from flows.settings import REPO_ROOT
from schemas.events import Tick

BUNDLED = [REPO_ROOT / "data" / "market" / "BTC-30m.csv.gz", REPO_ROOT / "data" / "market" / "ETH-30m.csv.gz"]


def _best(fn, repeats: int) -> float:
    """Best (shortest) wall time of ``repeats`` runs, seconds: the least disturbed by other load."""
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bare_consume_decode(bootstrap: str, topic: str, expected: int) -> int:
    """The reference loop: confluent-kafka consume in batches + msgspec typed decode, nothing else."""
    dec = msgspec.json.Decoder(Tick)
    c = Consumer(consumer_config(bootstrap, eof=False))
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in list_partitions(bootstrap, topic)])
    n = 0
    try:
        while n < expected:
            for m in c.consume(5000, 0.05):
                if m.error() is None:
                    dec.decode(m.value())
                    n += 1
    finally:
        c.close()
    return n


def source_consume_decode(bootstrap: str, topic: str, expected: int) -> int:
    """The project's path: KafkaEventSource in a Bytewax flow (decode + dead-letter split), counted in a sink."""
    count = [0]

    def tally(_step: str, batch: Any) -> None:
        count[0] += len(batch.events) + len(batch.dead)

    flow = Dataflow("bench-source")
    batches = op.input("in", flow, KafkaEventSource(bootstrap, topic, Tick, batch_size=5000, stop_at_end=True))
    op.inspect("count", batches, tally)
    run_main(flow)
    if count[0] != expected:
        raise RuntimeError(f"source read {count[0]} messages, expected {expected}")
    return count[0]


def run(
    bootstrap: str, pg_dsn: str, chdb_dir: str, *, n_ticks: int = 1_000_000, sink_rows: int = 200_000, repeats: int = 3
) -> dict[str, float]:
    """Run the foundation suite; returns the measured figures (rates per second and ratios)."""
    out: dict[str, float] = {}
    per_bar = max(4, -(-n_ticks // 70_030))  # the bundled files hold 70,030 bars
    history = load_history(BUNDLED, ticks_per_bar=per_bar)
    history.ticks = history.ticks.head(n_ticks)
    n = len(history)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}ticks"
    ensure_topics(bootstrap, prefix=prefix, names=["ticks"])
    try:
        prod = EventProducer(bootstrap, topic)
        res = replay(history, prod, speed=0.0, progress=False)
        out["replay_msgs_per_s"] = res.produced / res.seconds
        out["foundation_ticks"] = float(n)
        t_bare = _best(lambda: bare_consume_decode(bootstrap, topic, n), repeats)
        t_src = _best(lambda: source_consume_decode(bootstrap, topic, n), repeats)
        out["bare_consume_decode_per_s"] = n / t_bare
        out["source_consume_decode_per_s"] = n / t_src
        out["source_vs_bare_ratio"] = t_bare / t_src
    finally:
        delete_topics(bootstrap, [topic])

    ticks = list(iter_tick_events(history.ticks.head(sink_rows)))
    out.update(_sink_rates(ticks, pg_dsn, chdb_dir))
    return out


def _sink_rates(ticks: list[Tick], pg_dsn: str, chdb_dir: str, batch: int = 10_000) -> dict[str, float]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from connectors.clickhouse.client import connect
    from connectors.clickhouse.migrate import migrate as ch_migrate
    from connectors.clickhouse.sink import ClickHouseWriter
    from connectors.postgres.migrate import migrate as pg_migrate
    from connectors.postgres.sink import PostgresWriter

    out: dict[str, float] = {}
    db = f"levibot_bench_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        params = conninfo_to_dict(pg_dsn)
        params["dbname"] = db
        dsn = make_conninfo(**params)
        pg_migrate(dsn)
        w = PostgresWriter(dsn, "ticks", Tick)
        out["postgres_rows_per_s"] = len(ticks) / _timed(
            lambda: [w.write(ticks[i : i + batch]) for i in range(0, len(ticks), batch)]
        )
        out["postgres_duplicate_rows_per_s"] = len(ticks) / _timed(
            lambda: [w.write(ticks[i : i + batch]) for i in range(0, len(ticks), batch)]
        )
        if w.rows_inserted != len(ticks):
            raise RuntimeError(f"postgres stored {w.rows_inserted} of {len(ticks)}")
        w.close()
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    client = connect(f"chdb://{chdb_dir}")
    chdb_name = f"bench_{uuid.uuid4().hex[:6]}"
    ch_migrate(client, chdb_name)
    cw = ClickHouseWriter(client, "ticks", Tick, database=chdb_name)
    out["clickhouse_rows_per_s"] = len(ticks) / _timed(
        lambda: [cw.write(ticks[i : i + batch]) for i in range(0, len(ticks), batch)]
    )
    stored = client.query(f"SELECT count() FROM {chdb_name}.ticks FINAL").result_rows[0][0]
    if stored != len(ticks):
        raise RuntimeError(f"clickhouse stored {stored} of {len(ticks)}")
    client.command(f"DROP DATABASE {chdb_name}")
    return out
