"""PostgreSQL access of the operator API: the ``api_keys`` table, the read queries of the list endpoints, the
audit writer. Parameterised queries only: identifiers come from the fixed tables below (``psycopg.sql``), every
value is a bind parameter.

One :class:`ApiDatabase` holds a ``psycopg_pool`` connection pool shared by the API's worker threads.
:class:`KeyChangeListener` keeps one more connection that LISTENs on :data:`KEY_CHANNEL` (migration 0005 notifies
every change of an ``api_keys`` row there) and drops the changed key from the process's key cache.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from operators.api.query import ListFilter, encode_cursor
from schemas.events import AuditEvent
from schemas.time import from_ns, iso

__all__ = ["KeyRow", "Resource", "RESOURCES", "ApiDatabase", "KeyChangeListener", "KEY_CHANNEL"]

log = logging.getLogger(__name__)
_UTC: Final = UTC


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One row of ``api_keys`` (the hash included: never send it to a client)."""

    key_id: str
    name: str
    secret_hash: str
    scopes: tuple[str, ...]
    tier: str
    accounts: tuple[str, ...]
    rate: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str

    def state(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def public(self, now: datetime) -> dict[str, Any]:
        """Everything but the hash, for listings."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "tier": self.tier,
            "accounts": list(self.accounts),
            "rate": self.rate,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "state": self.state(now),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by,
        }


_KEY_COLS: Final = (
    "key_id",
    "name",
    "secret_hash",
    "scopes",
    "tier",
    "accounts",
    "rate",
    "created_by",
    "created_at",
    "expires_at",
    "revoked_at",
    "revoked_by",
)


def _key_row(r: Sequence[Any]) -> KeyRow:
    d = dict(zip(_KEY_COLS, r, strict=True))
    d["scopes"] = tuple(d["scopes"])
    d["accounts"] = tuple(d["accounts"])
    return KeyRow(**d)


@dataclass(frozen=True, slots=True)
class Resource:
    """A list endpoint's table: ``key`` the SQL expression of the row id used by the cursor (with ``ts_ns``),
    ``columns`` returned, ``filters`` the columns an equality filter may name, ``symbol`` whether the table has a
    ``symbol`` column."""

    table: str
    key: str
    columns: tuple[str, ...]
    filters: tuple[str, ...]
    symbol: bool = True


RESOURCES: Final[dict[str, Resource]] = {
    "orders": Resource(
        "orders",
        "order_id",
        (
            "order_id",
            "parent_id",
            "strategy",
            "symbol",
            "side",
            "qty",
            "order_type",
            "limit_price",
            "tif",
            "reduce_only",
            "ts_ns",
        ),
        ("strategy", "side", "parent_id"),
    ),
    "fills": Resource(
        "fills",
        "fill_id",
        ("fill_id", "order_id", "symbol", "side", "price", "qty", "fee", "slippage_bps", "liquidity", "ts_ns"),
        ("order_id", "side"),
    ),
    "risk_decisions": Resource(
        "risk_decisions",
        "id",
        (
            "id",
            "intent_id",
            "symbol",
            "strategy",
            "side",
            "action",
            "requested_qty",
            "approved_qty",
            "reasons",
            "var",
            "cvar",
            "portfolio",
            "ts_ns",
        ),
        ("strategy", "action"),
    ),
    "signals": Resource(
        "signals",
        "id || '#' || version::text",
        (
            "id",
            "version",
            "source_chat",
            "source_message_id",
            "symbol",
            "side",
            "kind",
            "entries",
            "targets",
            "stop",
            "leverage",
            "ref_id",
            "close_fraction",
            "trust",
            "ts_ns",
        ),
        ("kind", "source_chat"),
    ),
    "audit": Resource(
        "audit",
        "id",
        (
            "id",
            "actor",
            "action",
            "scope",
            "result",
            "command_id",
            "detail",
            "parameters_digest",
            "source",
            "client_address",
            "ts_ns",
            "recorded_at",
        ),
        ("actor", "action", "scope", "result", "command_id", "source"),
        symbol=False,
    ),
}


#: The channel migration 0005's trigger notifies with the key id of every inserted or updated ``api_keys`` row.
KEY_CHANNEL: Final = "levibot_api_keys"


class KeyChangeListener:
    """A daemon thread on its own connection: ``LISTEN levibot_api_keys``; each notification drops that key from
    ``cache`` (an :class:`operators.api.keys.KeyRowCache`). The cache is enabled only while the LISTEN is in place:
    it is switched on (emptied) once the LISTEN is acknowledged and off (emptied) when the connection fails, then
    the thread reconnects every ``retry_s``. ``listening`` is set while the LISTEN is in place."""

    def __init__(self, dsn: str, cache: Any, *, retry_s: float = 1.0, poll_s: float = 0.5) -> None:
        self.dsn = dsn
        self.cache = cache
        self.retry_s = retry_s
        self.poll_s = poll_s
        self.listening = threading.Event()
        self.notifications = 0
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> KeyChangeListener:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="api-key-listener", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.cache.set_enabled(False)
        self.listening.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(KEY_CHANNEL)))
                    self._fd = conn.fileno()
                    self.cache.set_enabled(True)
                    self.listening.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=self.poll_s):
                            self.notifications += 1
                            self.cache.drop(n.payload)
            except Exception as exc:  # connection refused or lost: no cached key row may be trusted now
                if self.listening.is_set():
                    log.warning("api key change listener lost its connection: %s", type(exc).__name__)
            finally:
                self._fd = None
                self.cache.set_enabled(False)
                self.listening.clear()
            self._stop.wait(self.retry_s)

    def pending(self) -> bool:
        """True when a notification may be waiting to be processed: bytes unread on the listening connection (or no
        connection). A request that finds this true reads the key's row from the table instead of the cache, so
        the window between PostgreSQL sending a revocation and this thread dropping the row is not served."""
        fd = self._fd
        if fd is None:
            return True
        try:
            return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True


def _dt(ns: int) -> datetime:
    return from_ns(ns)


class ApiDatabase:
    """Pooled access to PostgreSQL for the API (``min_size``..``max_size`` connections, ``timeout_s`` to get
    one). ``open()`` waits until the first connection works."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout_s: float = 10.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        self.dsn = dsn
        self.pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            kwargs={
                "autocommit": True,
                "connect_timeout": int(timeout_s),
                "options": f"-c statement_timeout={int(statement_timeout_ms)}",
            },
        )

    def open(self, wait_s: float = 30.0) -> ApiDatabase:
        self.pool.open(wait=True, timeout=wait_s)
        return self

    def close(self) -> None:
        self.pool.close()

    # -- api_keys ------------------------------------------------------------------------------------------

    def create_key(
        self,
        *,
        key_id: str,
        name: str,
        secret_hash: str,
        scopes: Sequence[str],
        tier: str,
        accounts: Sequence[str],
        rate: str,
        created_by: str,
        expires_at: datetime | None,
    ) -> KeyRow:
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO api_keys (key_id, name, secret_hash, scopes, tier, accounts, rate, created_by, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + ", ".join(_KEY_COLS),
                (key_id, name, secret_hash, list(scopes), tier, list(accounts), rate, created_by, expires_at),
            ).fetchone()
        assert row is not None
        return _key_row(row)

    def get_key(self, key_id: str) -> KeyRow | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT " + ", ".join(_KEY_COLS) + " FROM api_keys WHERE key_id = %s", (key_id,)
            ).fetchone()
        return None if row is None else _key_row(row)

    def list_keys(self, *, include_revoked: bool = True) -> list[KeyRow]:
        q = "SELECT " + ", ".join(_KEY_COLS) + " FROM api_keys"
        if not include_revoked:
            q += " WHERE revoked_at IS NULL"
        with self.pool.connection() as conn:
            rows = conn.execute(q + " ORDER BY created_at, key_id").fetchall()
        return [_key_row(r) for r in rows]

    def revoke_key(self, key_id: str, revoked_by: str) -> str:
        """``revoked`` (now), ``already`` (was revoked before) or ``unknown``."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = now(), revoked_by = %s WHERE key_id = %s AND revoked_at IS NULL",
                (revoked_by, key_id),
            )
            if cur.rowcount == 1:
                return "revoked"
            found = conn.execute("SELECT 1 FROM api_keys WHERE key_id = %s", (key_id,)).fetchone()
        return "already" if found else "unknown"

    # -- audit -----------------------------------------------------------------------------------------------

    def write_audit(self, ev: AuditEvent) -> bool:
        """Insert one audit row (``ON CONFLICT DO NOTHING``); True when it was new."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                "INSERT INTO audit (id, actor, action, scope, result, command_id, detail, parameters_digest, "
                "source, client_address, ts, ts_ns, schema_version) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    ev.id,
                    ev.actor,
                    ev.action,
                    ev.scope,
                    ev.result,
                    ev.command_id,
                    ev.detail,
                    ev.parameters_digest,
                    ev.source,
                    ev.client_address,
                    _dt(ev.ts),
                    ev.ts,
                    ev.schema_version,
                ),
            )
            return cur.rowcount == 1

    # -- read endpoints --------------------------------------------------------------------------------------

    def list_rows(self, resource: str, f: ListFilter) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``resource`` newest first, and the cursor of the next page (None at the end)."""
        res = RESOURCES[resource]
        where: list[sql.Composable] = []
        params: list[Any] = []
        if f.symbol is not None:
            if not res.symbol:
                raise ValueError(f"{resource} has no symbol filter")
            where.append(sql.SQL("symbol = %s"))
            params.append(f.symbol)
        if f.since_ns is not None:
            where.append(sql.SQL("ts >= %s AND ts_ns >= %s"))
            params += [_dt(f.since_ns), f.since_ns]
        if f.until_ns is not None:
            where.append(sql.SQL("ts <= %s AND ts_ns < %s"))
            params += [_dt(f.until_ns), f.until_ns]
        for col, value in f.equals.items():
            if col not in res.filters:
                raise ValueError(f"{resource} cannot be filtered by {col!r}")
            where.append(sql.SQL("{} = %s").format(sql.Identifier(col)))
            params.append(value)
        key = sql.SQL(res.key)  # a constant of RESOURCES, never user input
        if f.after is not None:
            where.append(sql.SQL("ts <= %s AND (ts_ns, {}) < (%s, %s)").format(key))
            params += [_dt(f.after[0]), f.after[0], f.after[1]]
        q = sql.SQL("SELECT {cols}, {key} AS _key FROM {table}{where} ORDER BY ts_ns DESC, _key DESC LIMIT %s").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, res.columns)),
            key=key,
            table=sql.Identifier(res.table),
            where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        )
        params.append(f.limit + 1)
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(q, params).fetchall()
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        out = []
        for r in rows:
            r["time"] = iso(r["ts_ns"])
            key_value = r.pop("_key")
            if "recorded_at" in r:
                r["recorded_at"] = r["recorded_at"].isoformat()
            out.append((r, key_value))
        cursor = encode_cursor(out[-1][0]["ts_ns"], out[-1][1]) if more and out else None
        return [r for r, _ in out], cursor

    def positions(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Net position, cash flow and P&L per symbol from the stored fills (the venue's reports), marked at the
        latest stored bar close (or the last fill price when there is no bar)."""
        q = """
            SELECT f.symbol,
                   sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) AS net_qty,
                   sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE 0 END) AS bought_qty,
                   sum(CASE WHEN f.side = 'sell' THEN f.qty ELSE 0 END) AS sold_qty,
                   sum(CASE WHEN f.side = 'buy' THEN -f.price * f.qty ELSE f.price * f.qty END) AS cash_flow,
                   sum(f.fee) AS fees,
                   count(*) AS fill_count,
                   max(f.ts_ns) AS last_fill_ns,
                   (SELECT g.price FROM fills g WHERE g.symbol = f.symbol ORDER BY g.ts_ns DESC, g.fill_id DESC
                    LIMIT 1) AS last_fill_price,
                   (SELECT b.close FROM bars b WHERE b.symbol = f.symbol ORDER BY b.ts DESC LIMIT 1) AS bar_close
            FROM fills f
            WHERE (%s::text IS NULL OR f.symbol = %s::text)
            GROUP BY f.symbol
            ORDER BY f.symbol
        """
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(q, (symbol, symbol)).fetchall()
        out = []
        for r in rows:
            mark, source = (r.pop("bar_close"), "bar")
            if mark is None:
                mark, source = r["last_fill_price"], "fill"
            r["mark_price"], r["mark_source"] = mark, source
            r["pnl"] = r["cash_flow"] - r["fees"] + r["net_qty"] * mark
            r["last_fill_time"] = iso(r["last_fill_ns"])
            out.append(r)
        return out

    # -- series and risk inputs (operators/api/analytics.py computes from these) -------------------------------

    def bar_resolution(self, symbols: Sequence[str] | None = None) -> int | None:
        """The finest bar resolution stored (of ``symbols`` when given), seconds; None without bars."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT min(resolution_s) FROM bars WHERE (%s::text[] IS NULL OR symbol = ANY(%s))",
                (list(symbols) if symbols else None, list(symbols) if symbols else None),
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def fills_until(self, until_ns: int | None, symbol: str | None, max_rows: int) -> tuple[list[tuple], bool]:
        """Every fill before ``until_ns`` (of ``symbol``), oldest first, as ``(ts_ns, symbol, side, qty, price,
        fee, strategy)`` with the strategy of its order (``unattributed`` when the order is not stored); the second
        value is True when more than ``max_rows`` exist (the list is then the first ``max_rows``)."""
        q = """
            SELECT f.ts_ns, f.symbol, f.side, f.qty, f.price, f.fee,
                   coalesce((SELECT o.strategy FROM orders o WHERE o.order_id = f.order_id LIMIT 1), 'unattributed')
            FROM fills f
            WHERE (%s::bigint IS NULL OR f.ts_ns < %s::bigint) AND (%s::text IS NULL OR f.symbol = %s::text)
            ORDER BY f.ts_ns, f.fill_id LIMIT %s
        """
        with self.pool.connection() as conn:
            rows = conn.execute(q, (until_ns, until_ns, symbol, symbol, max_rows + 1)).fetchall()
        return [tuple(r) for r in rows[:max_rows]], len(rows) > max_rows

    def closes(
        self,
        symbols: Sequence[str],
        resolution_s: int,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        last: int = 1000,
    ) -> list[tuple[int, str, float]]:
        """Bar closes ``(ts_ns, symbol, close)`` of ``symbols`` at ``resolution_s`` in [since, until), the newest
        ``last`` per symbol, oldest first."""
        q = """
            SELECT b.ts_ns, b.symbol, b.close FROM unnest(%s::text[]) AS s(symbol)
            CROSS JOIN LATERAL (
                SELECT ts_ns, symbol, close FROM bars
                WHERE bars.symbol = s.symbol AND resolution_s = %s
                  AND (%s::timestamptz IS NULL OR ts >= %s::timestamptz)
                  AND (%s::timestamptz IS NULL OR ts < %s::timestamptz)
                ORDER BY ts DESC LIMIT %s) b
            ORDER BY b.ts_ns, b.symbol
        """
        since = _dt(since_ns) if since_ns is not None else None
        until = _dt(until_ns) if until_ns is not None else None
        with self.pool.connection() as conn:
            rows = conn.execute(q, (list(symbols), resolution_s, since, since, until, until, last)).fetchall()
        return [(int(t), str(s), float(c)) for t, s, c in rows]

    def holdings(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Net position per symbol, and per strategy and symbol (by the strategy of each fill's order), base
        units."""
        q = """
            SELECT f.symbol,
                   coalesce((SELECT o.strategy FROM orders o WHERE o.order_id = f.order_id LIMIT 1), 'unattributed'),
                   sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END)
            FROM fills f GROUP BY 1, 2 ORDER BY 1, 2
        """
        total: dict[str, float] = {}
        by: dict[str, dict[str, float]] = {}
        with self.pool.connection() as conn:
            for sym, strat, q_ in conn.execute(q).fetchall():
                total[sym] = total.get(sym, 0.0) + float(q_)
                by.setdefault(strat, {})[sym] = float(q_)
        return total, by

    def latest_decisions(self, n: int = 1) -> list[dict[str, Any]]:
        """The newest ``n`` risk decisions: ``ts_ns``, ``reasons``, ``var``, ``cvar``, ``portfolio``."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "SELECT ts_ns, reasons, var, cvar, portfolio, action FROM risk_decisions "
                "ORDER BY ts DESC, ts_ns DESC, id DESC LIMIT %s",
                (n,),
            ).fetchall()

    def signal_lifecycle(self, signal_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Every version of the signal ``signal_id`` and of the follow-ups that point at it (``ref_id``), oldest
        first."""
        cols = RESOURCES["signals"].columns
        q = sql.SQL(
            "SELECT {cols} FROM signals WHERE id = %s OR ref_id = %s ORDER BY ts_ns, id, version LIMIT %s"
        ).format(cols=sql.SQL(", ").join(map(sql.Identifier, cols)))
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(q, (signal_id, signal_id, limit)).fetchall()
        for r in rows:
            r["time"] = iso(r["ts_ns"])
        return rows

    def last_event_times(self) -> dict[str, int | None]:
        """Latest ``ts_ns`` of each table the flow writes (None when empty)."""
        out: dict[str, int | None] = {}
        with self.pool.connection() as conn:
            for table in ("orders", "fills", "risk_decisions", "signals", "audit"):
                row = conn.execute(sql.SQL("SELECT max(ts_ns) FROM {}").format(sql.Identifier(table))).fetchone()
                out[table] = None if row is None else row[0]
        return out

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def ping(self) -> bool:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
            return True
        except (psycopg.Error, Exception):  # pool timeout, connection refused
            return False
