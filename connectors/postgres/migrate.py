"""Apply the PostgreSQL migrations from ``schemas.migrations``: TimescaleDB hypertables when the
extension is available, native range partitioning by time otherwise."""

from __future__ import annotations

import psycopg

from schemas.migrations import SCHEMA_MIGRATIONS_DDL, TIMESCALE_PROBE_SQL, migrations, pg_backend

LOCK_ID = 0x1E71B07  # advisory lock: two processes migrating at once take turns


def detect_backend(conn: psycopg.Connection) -> str:
    """``"timescale"`` when the timescaledb extension can be used on this server, else ``"postgres"``."""
    return pg_backend(conn.execute(TIMESCALE_PROBE_SQL).fetchone() is not None)


def migrate(dsn: str, *, force_backend: str | None = None) -> list[int]:
    """Apply pending migrations in order, each in its own transaction; returns the versions applied.

    A database keeps the variant it was first migrated with; an applied migration whose file has
    changed since is an error.
    """
    applied: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            conn.execute(SCHEMA_MIGRATIONS_DDL["postgres"])
            rows = conn.execute("SELECT version, checksum, backend FROM schema_migrations").fetchall()
            done = {v: c for v, c, _ in rows}
            kind = rows[0][2] if rows else (force_backend or detect_backend(conn))
            if kind == "timescale":
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for m in migrations(kind):
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise RuntimeError(
                            f"PostgreSQL migration {m.version} ({m.name}) changed after it was "
                            "applied; add a new migration instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    for stmt in m.statements:
                        conn.execute(stmt)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, backend, checksum) VALUES (%s, %s, %s, %s)",
                        (m.version, m.name, kind, m.checksum),
                    )
                applied.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return applied
