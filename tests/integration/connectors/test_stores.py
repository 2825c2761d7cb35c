"""Migrations and sinks against the real PostgreSQL server and the real ClickHouse engine (chDB)."""

from __future__ import annotations

import psycopg
import pytest

from connectors.clickhouse.migrate import migrate as ch_migrate
from connectors.clickhouse.sink import ClickHouseWriter
from connectors.postgres.migrate import migrate as pg_migrate
from connectors.postgres.sink import PostgresWriter
from schemas.events import DeadLetter, Order, Tick
from schemas.migrations import migrations

T0 = 1_600_000_000_000_000_000


def ticks(n: int, start: int = 0) -> list[Tick]:
    return [
        Tick(
            symbol="ETH-USD",
            ts=T0 + i * 3_600_000_000_000 * 24 * 5,
            price=100.0 + i,
            qty=1.0 + i / 7,
            side="sell" if i % 3 else "buy",
            trade_id=f"v:ETH-USD:{i}",
            venue="v",
        )
        for i in range(start, start + n)
    ]


def order(i: int) -> Order:
    return Order(
        order_id=f"o-{i}",
        parent_id=f"p-{i}",
        strategy="baseline",
        symbol="BTC-USD",
        side="buy",
        qty=0.1,
        type="limit",
        limit_price=100.5,
        tif="GTC",
        ts=T0 + i,
        reduce_only=False,
    )


def dead(i: int) -> DeadLetter:
    return DeadLetter(
        source_topic="ticks",
        partition=1,
        offset=i,
        key=b"BTC-USD",
        error="invalid_json",
        detail="not json",
        raw=b"\x00garbage",
        raw_size=8,
        ts=T0 + i,
        stage="decode",
    )


@pytest.mark.postgres
def test_postgres_migrations_idempotent_and_native_partitioning(pg_dsn):
    first = pg_migrate(pg_dsn)
    assert first == [m.version for m in migrations("postgres")]
    assert pg_migrate(pg_dsn) == []
    with psycopg.connect(pg_dsn) as conn:
        kind = conn.execute("SELECT DISTINCT backend FROM schema_migrations").fetchall()
        assert kind == [("postgres",)]  # no timescaledb extension on this machine: native partitioning
        parted = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
            ).fetchall()
        }
        assert {"ticks", "bars", "orders", "fills", "risk_decisions"} <= parted


@pytest.mark.postgres
def test_postgres_writer_is_idempotent_and_exact(pg_dsn):
    pg_migrate(pg_dsn)
    w = PostgresWriter(pg_dsn, "ticks", Tick)
    batch = ticks(500)
    assert w.write(batch) == 500
    assert w.write(batch[100:300] + ticks(50, start=500)) == 50  # 200 duplicates skipped, 50 new
    with psycopg.connect(pg_dsn) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT trade_id) FROM ticks").fetchone()
        ts_ns, ts = conn.execute("SELECT ts_ns, ts FROM ticks WHERE trade_id = 'v:ETH-USD:7'").fetchone()
        # monthly partitions can be created and rows move out of the default partition
        conn.execute(
            "SELECT levibot_ensure_monthly_partitions('ticks', %s::timestamptz, 12)", ("2020-09-01T00:00:00Z",)
        )
        conn.commit()
        in_default = conn.execute("SELECT count(*) FROM ticks_default").fetchone()[0]
    assert n == distinct == 550
    assert ts_ns == batch[7].ts and int(ts.timestamp() * 1_000_000) == batch[7].ts // 1000
    assert in_default < 550
    w.close()


@pytest.mark.postgres
def test_postgres_renamed_columns_and_reconnect(pg_dsn):
    pg_migrate(pg_dsn)
    ow = PostgresWriter(pg_dsn, "orders", Order)
    dw = PostgresWriter(pg_dsn, "dead_letters", DeadLetter)
    assert ow.write([order(i) for i in range(5)]) == 5
    assert dw.write([dead(i) for i in range(3)]) == 3
    # kill the writer's session: the next write reconnects with backoff and still lands exactly once
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert ow.write([order(i) for i in range(8)]) == 3
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT order_type, limit_price FROM orders WHERE order_id = 'o-1'").fetchone() == (
            "limit",
            100.5,
        )
        row = conn.execute(
            "SELECT source_partition, source_offset, msg_key, raw FROM dead_letters WHERE source_offset = 2"
        ).fetchone()
        assert row == (1, 2, b"BTC-USD", b"\x00garbage")
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 8


@pytest.mark.postgres
def test_postgres_missing_table_is_a_clear_error(pg_dsn):
    with pytest.raises(RuntimeError, match="levibot db migrate"):
        PostgresWriter(pg_dsn, "ticks", Tick)


@pytest.mark.clickhouse
def test_clickhouse_migrations_and_dedup(ch_database):
    client, db = ch_database
    assert ch_migrate(client, db) == [m.version for m in migrations("clickhouse")]
    assert ch_migrate(client, db) == []
    w = ClickHouseWriter(client, "ticks", Tick, database=db)
    batch = ticks(400)
    w.write(batch)
    w.write(batch)  # same batch again: dropped by the insert deduplication token
    w.write(batch[:150] + ticks(10, start=400))  # overlapping batch: collapsed by ReplacingMergeTree
    raw = client.query(f"SELECT count() FROM {db}.ticks").result_rows[0][0]
    final = client.query(f"SELECT count() FROM {db}.ticks FINAL").result_rows[0][0]
    assert raw == 400 + 160  # the identical retry never landed
    assert final == 410
    got = client.query(f"SELECT toUnixTimestamp64Nano(ts), price FROM {db}.ticks FINAL WHERE trade_id = 'v:ETH-USD:9'")
    assert got.result_rows == [(batch[9].ts, batch[9].price)]


@pytest.mark.clickhouse
def test_clickhouse_renamed_columns(ch_database):
    client, db = ch_database
    ch_migrate(client, db)
    ClickHouseWriter(client, "orders", Order, database=db).write([order(i) for i in range(4)])
    ClickHouseWriter(client, "dead_letters", DeadLetter, database=db).write([dead(i) for i in range(4)])
    assert client.query(f"SELECT order_type, count() FROM {db}.orders FINAL GROUP BY order_type").result_rows == [
        ("limit", 4)
    ]
    rows = client.query(
        f"SELECT source_partition, source_offset FROM {db}.dead_letters FINAL ORDER BY source_offset"
    ).result_rows
    assert rows == [(1, i) for i in range(4)]


@pytest.mark.clickhouse
def test_clickhouse_history_reads_back_in_event_time_order(ch_database):
    from connectors.clickhouse.history import load_ticks
    from connectors.history import iter_tick_events

    client, db = ch_database
    ch_migrate(client, db)
    batch = ticks(50)
    ClickHouseWriter(client, "ticks", Tick, database=db).write(list(reversed(batch)))
    h = load_ticks(client, database=db)
    assert list(iter_tick_events(h.ticks)) == batch  # exact round trip, sorted by event time
    part = load_ticks(client, database=db, start_ns=batch[10].ts, end_ns=batch[20].ts)
    assert part.ticks["trade_id"].tolist() == [t.trade_id for t in batch[10:20]]
    assert len(load_ticks(client, database=db, symbols=["BTC-USD"])) == 0
