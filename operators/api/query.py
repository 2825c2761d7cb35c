"""Filters and pagination of the read endpoints, checked before any query runs.

Every list endpoint answers newest first, ordered by ``(ts_ns, id)`` descending, in pages of ``limit`` rows
(1-1000, default 100). The page's ``next_cursor`` is an opaque token of the last row's ``(ts_ns, id)``; passing it
back as ``cursor`` continues strictly after that row (keyset pagination: stable while new rows arrive). Times
``since`` (inclusive) and ``until`` (exclusive) bound ``ts``.

Every value that reaches SQL is a bind parameter (``connectors/postgres/api.py``); these checks only refuse what
can never match (a malformed symbol, a time outside 2000-2100, a cursor that was not ours), with a 422.

>>> c = encode_cursor(1_700_000_000_000_000_123, "ord-1")
>>> decode_cursor(c)
(1700000000000000123, 'ord-1')
>>> decode_cursor("not a cursor")
Traceback (most recent call last):
...
ValueError: cursor is malformed
>>> f = ListFilter.build(symbol="BTC-USD", since_ns=None, until_ns=None, cursor=c, limit=50)
>>> f.symbol, f.after, f.limit
('BTC-USD', (1700000000000000123, 'ord-1'), 50)
>>> ListFilter.build(symbol="BTC'; DROP TABLE orders;--")
Traceback (most recent call last):
...
ValueError: symbol must match ^[A-Z0-9]{1,20}([-/][A-Z0-9]{1,12})?$
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from schemas.events import ID_PATTERN, NAME_PATTERN, SCOPE_PATTERN, SYMBOL_PATTERN
from schemas.time import TS_MAX_NS, TS_MIN_NS, to_ns

__all__ = [
    "MAX_LIMIT",
    "DEFAULT_LIMIT",
    "ListFilter",
    "encode_cursor",
    "decode_cursor",
    "time_ns",
    "check_name",
    "check_symbol",
    "check_scope",
]

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
_SYMBOL_RE: Final = re.compile(SYMBOL_PATTERN)
_NAME_RE: Final = re.compile(NAME_PATTERN)
_ID_RE: Final = re.compile(ID_PATTERN)
_SCOPE_RE: Final = re.compile(SCOPE_PATTERN)
_CURSOR_MAX: Final = 512


def encode_cursor(ts_ns: int, row_id: str) -> str:
    """Opaque, URL-safe cursor of one row's ``(ts_ns, id)``."""
    raw = json.dumps([ts_ns, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    """``(ts_ns, id)`` of a cursor from :func:`encode_cursor`; ``ValueError`` for anything else."""
    if not isinstance(text, str) or not 0 < len(text) <= _CURSOR_MAX:
        raise ValueError("cursor is malformed")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        ts, row_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("cursor is malformed") from None
    if (
        type(ts) is not int
        or not TS_MIN_NS <= ts < TS_MAX_NS
        or not isinstance(row_id, str)
        or _ID_RE.fullmatch(row_id) is None
    ):
        raise ValueError("cursor is malformed")
    return ts, row_id


def time_ns(value: datetime | None, name: str) -> int | None:
    """Nanoseconds of a query time (a naive datetime is taken as UTC); ``ValueError`` outside 2000-2100."""
    if value is None:
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=UTC)
    try:
        ns = to_ns(value)
    except (OverflowError, ValueError):
        raise ValueError(f"{name} is out of range") from None
    if not TS_MIN_NS <= ns <= TS_MAX_NS:
        raise ValueError(f"{name} must lie in [2000-01-01, 2100-01-01] UTC")
    return ns


def check_symbol(value: str | None) -> str | None:
    if value is not None and (len(value) > 33 or _SYMBOL_RE.fullmatch(value) is None):
        raise ValueError(f"symbol must match {SYMBOL_PATTERN}")
    return value


def check_name(value: str | None, name: str) -> str | None:
    if value is not None and (len(value) > 64 or _NAME_RE.fullmatch(value) is None):
        raise ValueError(f"{name} must match {NAME_PATTERN}")
    return value


def check_scope(value: str | None) -> str | None:
    if value is not None and (len(value) > 128 or _SCOPE_RE.fullmatch(value) is None):
        raise ValueError("scope must be account:<name>, symbol:<SYMBOL> or strategy:<name>")
    return value


@dataclass(frozen=True, slots=True)
class ListFilter:
    """A checked list request: ``symbol``; ``since_ns`` (inclusive) / ``until_ns`` (exclusive); ``after`` the
    decoded cursor; ``limit``; ``equals`` further column filters (``{column: value}``, columns chosen by the
    route, values checked by it)."""

    symbol: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    after: tuple[int, str] | None = None
    limit: int = DEFAULT_LIMIT
    equals: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        symbol: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        equals: dict[str, str | None] | None = None,
    ) -> ListFilter:
        if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer in [1, {MAX_LIMIT}]")
        if since_ns is not None and until_ns is not None and since_ns >= until_ns:
            raise ValueError("since must be before until")
        return cls(
            symbol=check_symbol(symbol),
            since_ns=since_ns,
            until_ns=until_ns,
            after=None if cursor is None else decode_cursor(cursor),
            limit=limit,
            equals={k: v for k, v in (equals or {}).items() if v is not None},
        )
