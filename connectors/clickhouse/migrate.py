"""Apply the ClickHouse migrations from ``schemas.migrations`` in order, recording each one."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from schemas.migrations import SCHEMA_MIGRATIONS_DDL, migrations


def migrate(client: Client, database: str = "levibot") -> list[int]:
    """Create ``database`` and apply its pending migrations; returns the versions applied (idempotent).

    A migration whose file changed after it was applied is an error, never silently skipped.
    The client is left pointing at ``database``.
    """
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.database = database
    client.command(SCHEMA_MIGRATIONS_DDL["clickhouse"])
    done = {r[0]: r[1] for r in client.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows}
    applied = []
    for m in migrations("clickhouse"):
        if m.version in done:
            if done[m.version] != m.checksum:
                raise RuntimeError(
                    f"ClickHouse migration {m.version} ({m.name}) changed after it was applied to "
                    f"{database}; add a new migration instead of editing an applied one"
                )
            continue
        for stmt in m.statements:
            client.command(stmt)
        client.insert(
            "schema_migrations",
            [[m.version, m.name, "clickhouse", m.checksum]],
            column_names=["version", "name", "backend", "checksum"],
        )
        applied.append(m.version)
    return applied
