"""DDL migrations in ``schemas/sql``: static sanity (applied to the real PostgreSQL and the embedded ClickHouse:
tests/integration/schemas/test_schemas_sql_live.py)."""

from __future__ import annotations

import re
import textwrap

import pytest

from schemas import events
from schemas.migrations import (
    BACKENDS,
    Migration,
    latest_version,
    migrations,
    pg_backend,
    split_statements,
)

PG_TABLES = {"ticks", "bars", "orders", "fills", "risk_decisions", "signals", "dead_letters", "audit", "api_keys"}
PG_PARTITIONED = {"ticks", "bars", "orders", "fills", "risk_decisions"}
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
# event field -> column where the name differs (SQL keywords / clarity)
RENAMED = {"type": "order_type", "partition": "source_partition", "offset": "source_offset", "key": "msg_key"}
TABLE_EVENT = {
    "ticks": events.Tick,
    "bars": events.Bar,
    "orders": events.Order,
    "fills": events.Fill,
    "risk_decisions": events.RiskDecision,
    "signals": events.Signal,
    "dead_letters": events.DeadLetter,
    "features": events.FeatureVector,
    "scores": events.Score,
    "alerts": events.Alert,
    "audit": events.AuditEvent,
}

_CREATE_RE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\(")


def _paren_body(stmt: str, open_at: int) -> str:
    """Text between the ``(`` at ``open_at`` and its matching ``)``."""
    depth = 0
    for i in range(open_at, len(stmt)):
        depth += {"(": 1, ")": -1}.get(stmt[i], 0)
        if depth == 0:
            return stmt[open_at + 1 : i]
    raise AssertionError("unbalanced parentheses")


def tables(backend: str) -> dict[str, dict[str, str]]:
    """``{table: {column: type text}}`` of every CREATE TABLE (not partitions) in ``backend``'s migrations."""
    out: dict[str, dict[str, str]] = {}
    for m in migrations(backend):
        for stmt in m.statements:
            if " PARTITION OF " in stmt:
                continue
            match = _CREATE_RE.match(stmt)
            if not match:
                continue
            body = _paren_body(stmt, match.end() - 1)
            cols = {}
            for line in body.split("\n"):
                line = line.strip().rstrip(",")
                if not line or line.startswith(("--", "CHECK", "PRIMARY KEY")):
                    continue
                name, _, rest = line.partition(" ")
                cols[name] = rest.strip()
            out[match.group(1)] = cols
    return out


def create_statement(backend: str, table: str) -> str:
    for m in migrations(backend):
        for stmt in m.statements:
            if stmt.startswith(f"CREATE TABLE IF NOT EXISTS {table} ") or stmt.startswith(
                f"CREATE TABLE IF NOT EXISTS {table}\n"
            ):
                return stmt
    raise AssertionError(f"no CREATE TABLE {table} in {backend}")


# ---------------------------------------------------------------------------------------------------------------
# Static checks


@pytest.mark.parametrize("backend", BACKENDS)
def test_versions_strictly_increase_from_one(backend: str) -> None:
    migs = migrations(backend)
    assert migs, backend
    versions = [m.version for m in migs]
    assert versions == list(range(1, len(versions) + 1))
    assert latest_version(backend) == versions[-1]
    for m in migs:
        assert isinstance(m, Migration) and m.name and m.statements and len(m.checksum) == 64


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_statement_is_idempotent(backend: str) -> None:
    allowed = (
        "CREATE TABLE IF NOT EXISTS",
        "CREATE INDEX IF NOT EXISTS",
        "CREATE EXTENSION IF NOT EXISTS",
        "CREATE OR REPLACE FUNCTION",
        "CREATE OR REPLACE TRIGGER",
        "SELECT ",
    )
    for m in migrations(backend):
        for stmt in m.statements:
            assert stmt.startswith(allowed), f"{backend}/{m.version}: not idempotent: {stmt[:80]!r}"
            assert not re.search(r"\b(DROP|TRUNCATE|DELETE FROM)\b", stmt) or "FUNCTION" in stmt, stmt[:80]


def test_pg_variants_define_the_same_tables() -> None:
    ts, pg = tables("timescale"), tables("postgres")
    assert set(ts) == set(pg) == PG_TABLES
    assert ts == pg  # same columns, same types, same order
    for t in PG_TABLES:
        pk = lambda b: re.search(r"PRIMARY KEY \(([^)]*)\)", create_statement(b, t)).group(1)  # noqa: E731, B023 - called within this iteration
        assert pk("timescale") == pk("postgres")


def test_pg_partitioning_variants() -> None:
    pg_sql = "\n".join(m.sql for m in migrations("postgres"))
    ts_sql = "\n".join(m.sql for m in migrations("timescale"))
    for t in PG_PARTITIONED:
        stmt = create_statement("postgres", t)
        assert stmt.endswith("PARTITION BY RANGE (ts)"), t
        pk = re.search(r"PRIMARY KEY \(([^)]*)\)", stmt).group(1).replace(" ", "").split(",")
        assert "ts" in pk, f"{t}: a partitioned table's key must hold the partition column"
        assert f"CREATE TABLE IF NOT EXISTS {t}_default PARTITION OF {t} DEFAULT" in pg_sql
        assert f"'{t}'" in pg_sql  # monthly partitions created for it
        assert re.search(rf"create_hypertable\('{t}', 'ts', .*if_not_exists => TRUE\)", ts_sql), t
    assert "levibot_ensure_monthly_partitions" in ts_sql  # same maintenance API in both variants
    assert pg_backend(True) == "timescale" and pg_backend(False) == "postgres"


@pytest.mark.parametrize("backend", ["postgres", "clickhouse"])
def test_every_event_field_has_a_column(backend: str) -> None:
    have = tables(backend)
    for table, event_type in TABLE_EVENT.items():
        if table not in have:
            assert table in (CH_TABLES - PG_TABLES if backend == "postgres" else PG_TABLES - CH_TABLES)
            continue
        cols = set(have[table])
        missing = [f for f in event_type.__struct_fields__ if RENAMED.get(f, f) not in cols]
        assert not missing, f"{backend}.{table} lacks columns for {event_type.__name__} fields {missing}"
        assert "ts" in cols and ("ts_ns" in cols) == (backend == "postgres")


def test_clickhouse_tables() -> None:
    ch = tables("clickhouse")
    assert set(ch) == CH_TABLES
    for t in CH_TABLES:
        stmt = create_statement("clickhouse", t)
        assert "ENGINE = ReplacingMergeTree" in stmt and "PARTITION BY toYYYYMM(ts)" in stmt, t
        assert ch[t]["ts"] == "DateTime64(9, 'UTC')", t
        order_by = re.search(r"ORDER BY \(([^)]*)\)", stmt).group(1)
        assert "ts" in order_by.split(", "), t
        assert ("TTL" in stmt) == (t == "ticks"), t
    assert "TTL inserted_at + INTERVAL 180 DAY" in create_statement("clickhouse", "ticks")
    for t, id_col in {
        "ticks": "trade_id",
        "orders": "order_id",
        "fills": "fill_id",
        "risk_decisions": "id",
        "signals": "id",
        "alerts": "id",
    }.items():
        assert id_col in re.search(r"ORDER BY \(([^)]*)\)", create_statement("clickhouse", t)).group(1), t


def test_split_statements() -> None:
    sql = textwrap.dedent(
        """
        -- leading comment; with a semicolon
        CREATE TABLE a (x text DEFAULT 'a;b''c');
        /* block; comment */
        CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;
        SELECT "we;ird", $$x;y$$;;
        SELECT 'tail'
        """
    )
    assert split_statements(sql) == [
        "CREATE TABLE a (x text DEFAULT 'a;b''c')",
        "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql",
        'SELECT "we;ird", $$x;y$$',
        "SELECT 'tail'",
    ]
    assert split_statements("SELECT 'a\\';b'", backslash_escapes=True) == ["SELECT 'a\\';b'"]
    with pytest.raises(ValueError):  # standard strings: the backslash is literal, so "b'" is left unterminated
        split_statements("SELECT 'a\\';b'")
    assert split_statements("-- only a comment\n;\n") == []
    with pytest.raises(ValueError):
        split_statements("SELECT 'unterminated")
    with pytest.raises(ValueError):
        split_statements("SELECT $x$ never closed")
