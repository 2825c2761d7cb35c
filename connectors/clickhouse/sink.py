"""Batched, duplicate-free writes of typed events into ClickHouse tables.

Columns are matched by name between the table and the event's fields; times stay int ns (the
driver writes them straight into ``DateTime64(9)``). Duplicates are removed twice over: each
insert carries a deterministic ``insert_deduplication_token`` (a retried batch is dropped by the
server), and tables are ``ReplacingMergeTree`` keyed by the event id (a re-emitted event after a
recovery collapses at merge time; read with ``FINAL`` for exact counts). Retries: exponential backoff with jitter
(tenacity); in the live flow also ``connectors.resilience`` (breaker, spool, catch-up): ``ClickHouseSink(...,
resilience=...)``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from clickhouse_connect.driver.client import Client
from tenacity import Retrying, stop_after_attempt, wait_exponential_jitter

from connectors.batching import flatten
from connectors.rows import field_for_column

log = logging.getLogger(__name__)


def _is_struct_field(event_type: type, name: str) -> bool:
    hint = msgspec.inspect.type_info(event_type)
    assert isinstance(hint, msgspec.inspect.StructType), event_type  # an event type is a Struct
    for f in hint.fields:
        if f.name == name:
            t = f.type
            if isinstance(t, msgspec.inspect.UnionType):
                return any(isinstance(x, msgspec.inspect.StructType) for x in t.types)
            return isinstance(t, msgspec.inspect.StructType)
    return False


def _json_text(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


class ClickHouseWriter:
    """Writes events of one type into one table; ``write`` is safe to retry with the same batch."""

    def __init__(
        self,
        client: Client,
        table: str,
        event_type: type,
        *,
        database: str = "levibot",
        max_attempts: int = 5,
        backoff_s: float = 0.2,
    ) -> None:
        self.client = client
        self.table = table
        self.database = database
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        described = client.query(f"DESCRIBE TABLE {database}.{table}").result_rows
        pairs = [(r[0], r[1], field_for_column(event_type, r[0])) for r in described]
        self.columns = [c for c, _, f in pairs if f is not None]
        self._fields = [f for _, _, f in pairs if f is not None]
        # nested structs stored in a String column travel as JSON text
        self._json = {
            f for _, t, f in pairs if f is not None and t.endswith("String") and _is_struct_field(event_type, f)
        }
        if not self.columns:
            raise ValueError(f"{database}.{table} shares no column with {event_type.__name__}")
        self.rows_written = 0

    def _token(self, events: Sequence[Any]) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{self.table}|{len(events)}|".encode())
        for ev in (events[0], events[-1]):
            h.update(repr(tuple(getattr(ev, f) for f in self._fields)).encode())
        return h.hexdigest()

    def write(self, events: Sequence[Any]) -> int:
        """Insert ``events`` (column-oriented, one round trip); returns the number of rows sent."""
        if not events:
            return 0
        data = [
            [getattr(ev, f) for ev in events] if f not in self._json else [_json_text(getattr(ev, f)) for ev in events]
            for f in self._fields
        ]
        token = self._token(events)

        def insert() -> None:
            self.client.insert(
                self.table,
                data,
                column_names=self.columns,
                database=self.database,
                column_oriented=True,
                settings={"insert_deduplication_token": token},
            )

        def before_sleep(rs: Any) -> None:
            log.warning(
                "ClickHouse insert into %s failed (%s); retry %d",
                self.table,
                rs.outcome.exception() if rs.outcome is not None else "?",
                rs.attempt_number,
            )

        try:
            # driver errors vary by backend (HTTP, chDB): every error is retried, then surfaced
            Retrying(
                stop=stop_after_attempt(self.max_attempts),
                reraise=True,
                before_sleep=before_sleep,
                wait=wait_exponential_jitter(multiplier=self.backoff_s, max=5.0, jitter=self.backoff_s),
            )(insert)
        except Exception as exc:
            if self.max_attempts == 1:
                raise
            raise RuntimeError(
                f"ClickHouse insert into {self.database}.{self.table} failed {self.max_attempts} times: {exc}"
            ) from exc
        self.rows_written += len(events)
        return len(events)


class _Partition(StatelessSinkPartition[Any]):
    def __init__(self, writer: Any) -> None:
        self._w = writer

    def write_batch(self, items: list[Any]) -> None:
        self._w.write(flatten(items))

    def close(self) -> None:
        close = getattr(self._w, "close", None)
        if close is not None:
            close()


class ClickHouseSink(DynamicSink[Any]):
    """Bytewax sink of events (or lists of events) into one ClickHouse table; one writer per worker.

    With ``resilience`` (``connectors.resilience.SinkResilience``) the writer goes through a circuit breaker named
    ``name`` (default ``clickhouse.<table>``) with a spool: analytics rows buffer during an outage and catch up."""

    def __init__(
        self,
        dsn: str,
        table: str,
        event_type: type,
        *,
        database: str = "levibot",
        resilience: Any = None,
        name: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.table = table
        self.event_type = event_type
        self.database = database
        self.resilience = resilience
        self.name = name or f"clickhouse.{table}"

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        from connectors.clickhouse.client import connect

        if self.resilience is None:
            return _Partition(ClickHouseWriter(connect(self.dsn), self.table, self.event_type, database=self.database))
        writer = ClickHouseWriter(
            connect(self.dsn), self.table, self.event_type, database=self.database, max_attempts=1
        )
        writer.close = lambda: None  # type: ignore[attr-defined]  # the client is shared per DSN
        return _Partition(self.resilience.wrap(self.name, worker_index, writer, self.event_type, (Exception,)))
