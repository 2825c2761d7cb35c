"""Versioned, idempotent DDL migrations per backend, read from ``schemas/sql/<backend>/NNNN_name.sql``.

No database access here: the runner (in ``connectors/``) executes each migration's :attr:`Migration.statements` in
order inside one transaction and records ``(version, name, checksum)`` in ``schema_migrations``
(:data:`SCHEMA_MIGRATIONS_DDL`).

Backends:

``timescale``
    PostgreSQL with the timescaledb extension: hypertables.
``postgres``
    plain PostgreSQL: native ``PARTITION BY RANGE (ts)`` with default and monthly partitions.
``clickhouse``
    ClickHouse server or embedded chDB: ReplacingMergeTree tables.

The two PostgreSQL variants define the same tables, columns and keys and share version numbers; a database
keeps the variant it was first migrated with (:func:`pg_backend` picks it from :data:`TIMESCALE_PROBE_SQL`).

>>> [m.version for m in migrations("postgres")] == sorted({m.version for m in migrations("postgres")})
True
>>> split_statements("SELECT 1; SELECT ';' -- x;\\n;")
['SELECT 1', "SELECT ';' -- x;"]
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

__all__ = [
    "Backend",
    "BACKENDS",
    "PG_BACKENDS",
    "Migration",
    "migrations",
    "latest_version",
    "pg_backend",
    "split_statements",
    "TIMESCALE_PROBE_SQL",
    "SCHEMA_MIGRATIONS_DDL",
]

Backend = Literal["timescale", "postgres", "clickhouse"]
BACKENDS: tuple[Backend, ...] = ("timescale", "postgres", "clickhouse")
PG_BACKENDS: tuple[Backend, ...] = ("timescale", "postgres")

#: Returns one row when the timescaledb extension can be used (installed or available to CREATE EXTENSION).
TIMESCALE_PROBE_SQL = "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"

#: Bookkeeping table the runner creates before applying migrations (one row per applied version).
SCHEMA_MIGRATIONS_DDL: dict[str, str] = {
    "postgres": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version integer PRIMARY KEY, name text NOT NULL, backend text NOT NULL, checksum text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    ),
    "clickhouse": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version UInt32, name String, backend String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    ),
}
SCHEMA_MIGRATIONS_DDL["timescale"] = SCHEMA_MIGRATIONS_DDL["postgres"]

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file: ``version`` (from the ``NNNN`` prefix), ``name``, full ``sql`` text."""

    version: int
    name: str
    sql: str
    backend: str
    statements: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stmts = split_statements(self.sql, backslash_escapes=self.backend == "clickhouse")
        object.__setattr__(self, "statements", tuple(stmts))

    @property
    def checksum(self) -> str:
        """SHA-256 hex of the SQL text (detects edits of an already applied migration)."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@cache
def _load(backend: str) -> tuple[Migration, ...]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    folder = resources.files("schemas").joinpath("sql", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _FILE_RE.match(entry.name)
        if m is None:
            if entry.name.endswith(".sql"):
                raise ValueError(f"migration file {backend}/{entry.name} is not named NNNN_name.sql")
            continue
        found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8"), backend))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions for {backend}: {versions}")
    return tuple(found)


def migrations(backend: str) -> list[Migration]:
    """All migrations of ``backend`` (``timescale``, ``postgres`` or ``clickhouse``), by ascending version."""
    return list(_load(backend))


def latest_version(backend: str) -> int:
    """Highest migration version of ``backend`` (0 if none)."""
    migs = _load(backend)
    return migs[-1].version if migs else 0


def pg_backend(has_timescaledb: bool) -> Backend:
    """The PostgreSQL variant to use: ``timescale`` when the extension is available, else ``postgres``."""
    return "timescale" if has_timescaledb else "postgres"


def split_statements(sql: str, *, backslash_escapes: bool = False) -> list[str]:
    """Split SQL text into statements at top-level ``;``.

    Semicolons inside ``'strings'``, ``"identifiers"``, ```backticks```, ``$tag$ dollar quotes $tag$``,
    ``-- line`` and ``/* block */`` comments do not split. Fragments that hold only whitespace and comments are
    dropped; statements are returned stripped, without the trailing ``;``. ``backslash_escapes``: ``\\'`` escapes a
    quote inside strings (ClickHouse; PostgreSQL's standard strings do not).
    """
    out: list[str] = []
    n = len(sql)
    i = start = 0
    has_code = False
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated /* comment")
            i = j + 2
            continue
        if c in "'\"`":
            has_code = True
            i += 1
            while True:
                if i >= n:
                    raise ValueError(f"unterminated {c} quote")
                ch = sql[i]
                if backslash_escapes and ch == "\\":
                    i += 2
                    continue
                if ch == c:
                    if i + 1 < n and sql[i + 1] == c:  # doubled quote is an escaped quote
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                if j < 0:
                    raise ValueError(f"unterminated dollar quote {tag}")
                has_code = True
                i = j + len(tag)
                continue
        if c == ";":
            if has_code:
                out.append(sql[start:i].strip())
            start = i + 1
            has_code = False
            i += 1
            continue
        if not c.isspace():
            has_code = True
        i += 1
    if has_code:
        out.append(sql[start:].strip())
    return [_strip_leading_comments(s) for s in out]


def _strip_leading_comments(stmt: str) -> str:
    """Drop ``--`` and ``/* */`` comments and blank space before the statement's first code."""
    while True:
        stmt = stmt.lstrip()
        if stmt.startswith("--"):
            nl = stmt.find("\n")
            stmt = "" if nl < 0 else stmt[nl + 1 :]
        elif stmt.startswith("/*"):
            stmt = stmt[stmt.index("*/") + 2 :]
        else:
            return stmt.strip()
