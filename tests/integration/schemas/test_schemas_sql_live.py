"""The DDL migrations in ``schemas/sql`` applied twice against the real PostgreSQL (with and without TimescaleDB)
and the embedded ClickHouse (their static checks: tests/unit/schemas/test_schemas_sql.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.migrations import (
    SCHEMA_MIGRATIONS_DDL,
    TIMESCALE_PROBE_SQL,
    migrations,
)
from tests.support import REPO

PG_TABLES = {"ticks", "bars", "orders", "fills", "risk_decisions", "signals", "dead_letters", "audit", "api_keys"}
CH_TABLES = {
    "ticks",
    "bars",
    "features",
    "scores",
    "orders",
    "fills",
    "risk_decisions",
    "signals",
    "alerts",
    "dead_letters",
}


def _apply_pg(conn, backend: str, *, with_timescale: bool) -> None:  # type: ignore[no-untyped-def]
    conn.execute(SCHEMA_MIGRATIONS_DDL[backend])
    for m in migrations(backend):
        with conn.transaction():
            for stmt in m.statements:
                if not with_timescale and ("timescaledb" in stmt or "create_hypertable" in stmt):
                    continue  # extension not installed on this server: check the rest of the DDL
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, backend, checksum) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (version) DO NOTHING",
                (m.version, m.name, backend, m.checksum),
            )


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres", "timescale"])
def test_pg_migrations_apply_twice(pg_dsn: str, backend: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        has_ts = bool(conn.execute(TIMESCALE_PROBE_SQL).fetchall())
        for _ in range(2):  # idempotent
            _apply_pg(conn, backend, with_timescale=has_ts)
        rels = {
            r[0]
            for r in conn.execute(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE nspname = 'public' AND relkind IN ('r', 'p') AND NOT relispartition"
            ).fetchall()
        }
        assert PG_TABLES | {"schema_migrations"} <= rels
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [
            m.version for m in migrations(backend)
        ]
        # Idempotent sink: the same tick twice stores one row.
        row = ("BTCUSD", "2021-03-05T00:00:00Z", 1614902400000000000, "v", "t1", 1.5, 2.0, "buy")
        for _ in range(2):
            conn.execute(
                "INSERT INTO ticks (symbol, ts, ts_ns, venue, trade_id, price, qty, side) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                row,
            )
        assert conn.execute("SELECT count(*) FROM ticks").fetchone() == (1,)
        # The DDL's CHECKs reject what the schemas reject.
        for bad in ([float("nan"), 1.0], [float("inf"), 1.0], [-1.0, 1.0], [1.0, -2.0]):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    "INSERT INTO ticks (symbol, ts, ts_ns, venue, trade_id, price, qty, side) "
                    "VALUES ('X', now(), 1, 'v', 'bad', %s, %s, 'buy')",
                    bad,
                )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO orders (order_id, strategy, symbol, side, qty, order_type, limit_price, tif, ts, ts_ns) "
                "VALUES ('o', 's', 'X', 'buy', 1, 'limit', NULL, 'GTC', now(), 1)"
            )
        created = conn.execute("SELECT levibot_ensure_monthly_partitions('ticks', '2021-02-28T23:00:00-05:00', 2)")
        n = created.fetchone()[0]
        where = conn.execute("SELECT tableoid::regclass::text FROM ticks").fetchone()[0]
        if backend == "postgres":
            assert n == 2  # March and April 2021 (UTC), from a time that is still February in New York
            assert where == "ticks_p202103"  # the row moved out of the default partition
            assert conn.execute("SELECT levibot_ensure_monthly_partitions('ticks', '2021-03-01Z', 2)").fetchone() == (
                0,
            )
        else:
            assert n == 0


CH_SCRIPT = """
import json, sys
import clickhouse_connect
from schemas.migrations import migrations, SCHEMA_MIGRATIONS_DDL
c = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
c.command(SCHEMA_MIGRATIONS_DDL["clickhouse"])
for _ in range(2):
    for m in migrations("clickhouse"):
        for stmt in m.statements:
            c.command(stmt)
rows = c.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows
# A 2017 tick: event-time TTL would drop it at once; the TTL runs on the storage time instead.
ins = ("INSERT INTO ticks (symbol, ts, venue, trade_id, price, qty, side) VALUES "
       "('BTCUSD', fromUnixTimestamp64Nano(toInt64(1500000000123456789)), 'v', 't1', 1.5, 2, 'buy')")
c.command(ins); c.command(ins)
c.command("OPTIMIZE TABLE ticks FINAL")  # merges, applying TTL and deduplication
n, ts = c.query("SELECT count(), toUnixTimestamp64Nano(any(ts)) FROM ticks FINAL").result_rows[0]
print(json.dumps({"tables": dict(rows), "final_count": n, "ts": ts}))
"""


@pytest.mark.clickhouse
def test_clickhouse_migrations_apply_twice_in_chdb(tmp_path: Path) -> None:
    # A subprocess: chDB allows one data path per process, and the test session has its own.
    out = subprocess.run(
        [sys.executable, "-c", CH_SCRIPT, str(tmp_path / "ch")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert CH_TABLES | {"schema_migrations"} <= set(res["tables"])
    assert all(res["tables"][t] == "ReplacingMergeTree" for t in CH_TABLES)
    assert res["final_count"] == 1  # the duplicate collapsed
    assert res["ts"] == 1500000000123456789  # nanoseconds kept exactly
