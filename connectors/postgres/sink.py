"""Batched, idempotent writes of typed events into PostgreSQL/TimescaleDB.

A batch is COPYed into a temporary staging table, then moved with ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING``: COPY speed, and a re-emitted event (same deterministic id and time) is a
no-op. Columns are matched by name: a ``timestamptz`` column takes the event's int-ns field of the
same name, a ``<name>_ns`` column takes it raw; ``jsonb`` columns take dicts and lists. A lost
connection is reopened with exponential backoff and jitter (tenacity) and the batch retried (safe: the insert is
idempotent). In the live flow each sink also goes through ``connectors.resilience`` (circuit breaker, spool,
catch-up after an outage): ``PostgresSink(..., resilience=...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from psycopg import sql
from psycopg.types.json import Jsonb
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connectors.batching import flatten
from connectors.rows import field_for_column

log = logging.getLogger(__name__)
_UTC = UTC


def _ns_to_dt(ns: int) -> datetime:
    # timestamptz keeps microseconds; the exact ns lives in the *_ns column where the DDL has one.
    return datetime.fromtimestamp(ns // 1000 / 1e6, _UTC)


class PostgresWriter:
    """Writes events of one type into one table. ``write`` returns rows actually inserted (new)."""

    def __init__(
        self,
        dsn: str,
        table: str,
        event_type: type,
        *,
        max_attempts: int = 6,
        backoff_s: float = 0.25,
        connect_timeout_s: int = 10,
    ) -> None:
        self.dsn = dsn
        self.table = table
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection | None = None
        self._type = event_type
        self.columns: list[str] = []
        self._getters: list[Callable[[Any], Any]] = []
        self.rows_inserted = 0
        self.rows_duplicate = 0
        self._connect()

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, connect_timeout=self.connect_timeout_s)
            if not self.columns:
                self._plan(self._conn)
            stage = sql.Identifier(f"_stage_{self.table}")
            self._conn.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
                    stage, sql.Identifier(self.table)
                )
            )
            self._conn.commit()
        return self._conn

    def _plan(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (self.table,),
        ).fetchall()
        if not rows:
            raise RuntimeError(f"table {self.table!r} does not exist: run `levibot db migrate`")
        for name, dtype in rows:
            getter = self._getter(name, dtype)
            if getter is not None:
                self.columns.append(name)
                self._getters.append(getter)

    def _getter(self, col: str, dtype: str) -> Callable[[Any], Any] | None:
        field = field_for_column(self._type, col)
        if field is not None:
            f = field
            if dtype.startswith("timestamp"):
                return lambda ev: _ns_to_dt(getattr(ev, f))
            if dtype == "jsonb":
                return lambda ev: Jsonb(msgspec.to_builtins(getattr(ev, f)))
            return lambda ev: getattr(ev, f)
        base = field_for_column(self._type, col[:-3]) if col.endswith("_ns") else None
        if base is not None:
            return lambda ev: getattr(ev, base)
        return None

    def _write_once(self, events: Sequence[Any]) -> int:
        conn = self._connect()
        cols = sql.SQL(", ").join(map(sql.Identifier, self.columns))
        stage = sql.Identifier(f"_stage_{self.table}")
        getters = self._getters
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, cols)) as copy:
                for ev in events:
                    copy.write_row([g(ev) for g in getters])
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                    sql.Identifier(self.table), cols, cols, stage
                )
            )
            inserted = cur.rowcount
        return inserted

    def write(self, events: Sequence[Any]) -> int:
        """Insert ``events``; duplicates of stored rows are skipped. Retries on connection loss (``max_attempts``
        tries, exponential backoff with jitter from ``backoff_s``); then the last ``psycopg.OperationalError``."""
        if not events:
            return 0
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
            wait=wait_exponential_jitter(multiplier=self.backoff_s, max=5.0, jitter=self.backoff_s),
            retry=retry_if_exception_type(psycopg.OperationalError),
            before_sleep=self._before_retry,
        )
        inserted = retrying(self._write_or_drop_connection, events)
        self.rows_inserted += inserted
        self.rows_duplicate += len(events) - inserted
        return inserted

    def _write_or_drop_connection(self, events: Sequence[Any]) -> int:
        try:
            return self._write_once(events)
        except psycopg.OperationalError:
            if self._conn is not None:
                self._conn.close()
            raise

    def _before_retry(self, rs: Any) -> None:
        log.warning(
            "PostgreSQL write to %s failed (%s); attempt %d, reconnecting",
            self.table,
            rs.outcome.exception() if rs.outcome is not None else "?",
            rs.attempt_number,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class _Partition(StatelessSinkPartition[Any]):
    def __init__(self, writer: Any) -> None:
        self._w = writer

    def write_batch(self, items: list[Any]) -> None:
        self._w.write(flatten(items))

    def close(self) -> None:
        self._w.close()


#: errors that mean "PostgreSQL is unreachable or restarting": retried, buffered while the breaker is open
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError, OSError)


class PostgresSink(DynamicSink[Any]):
    """Bytewax sink of events (or lists of events) into one PostgreSQL table; one connection per worker.

    With ``resilience`` (``connectors.resilience.SinkResilience``) the writer is wrapped in a circuit breaker named
    ``name`` (default ``postgres.<table>``) with a spool; without it, a write that fails ``max_attempts`` times raises.
    """

    def __init__(
        self,
        dsn: str,
        table: str,
        event_type: type,
        *,
        resilience: Any = None,
        name: str | None = None,
        max_attempts: int = 6,
    ) -> None:
        self.dsn = dsn
        self.table = table
        self.event_type = event_type
        self.resilience = resilience
        self.name = name or f"postgres.{table}"
        self.max_attempts = max_attempts

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        if self.resilience is None:
            return _Partition(PostgresWriter(self.dsn, self.table, self.event_type, max_attempts=self.max_attempts))
        writer = PostgresWriter(
            self.dsn, self.table, self.event_type, max_attempts=self.resilience.policy.attempts, connect_timeout_s=5
        )
        # the resilience layer retries; the writer makes one attempt per call
        writer.max_attempts = 1
        return _Partition(self.resilience.wrap(self.name, worker_index, writer, self.event_type, TRANSIENT_ERRORS))
