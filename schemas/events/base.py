"""Field patterns and types, the checks ``__post_init__`` runs, and the base classes of every event."""

from __future__ import annotations

import math
import re
from typing import Annotated, ClassVar, Literal

from msgspec import Meta, Struct

from schemas.time import TS_MAX_NS, TS_MIN_NS

_INF = math.inf

#: Instrument symbol: uppercase base (1-20 chars) with an optional ``-`` or ``/`` and quote (1-12 chars).
SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}([-/][A-Z0-9]{1,12})?$"
#: Deterministic ids: 1-128 printable ASCII characters without spaces (e.g. ``binance:BTCUSD:123``).
ID_PATTERN = r"^[!-~]{1,128}$"
#: Short machine names (strategies, venues, feature sets, models, alert kinds, stages, label keys).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}$"
#: Kafka topic names (legal Kafka characters, max 249).
TOPIC_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"
#: Reason codes in dead letters: lowercase snake case (``invalid_json``, ``validation``, ...).
REASON_CODE_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
#: Control and audit scopes: ``account:<name>``, ``symbol:<symbol>`` or ``strategy:<name>``.
SCOPE_PATTERN = r"^(account:[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}|symbol:[A-Z0-9]{1,20}([-/][A-Z0-9]{1,12})?|strategy:[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63})$"
#: Largest ``DeadLetter.raw`` payload, bytes; producers truncate longer payloads (and keep ``raw_size``).
DEAD_LETTER_RAW_MAX_BYTES = 256 * 1024

# ---------------------------------------------------------------------------------------------------------------
# Field types (constraints are enforced on decode and exported to JSON Schema)


def _pattern(pattern: str, *, description: str | None = None, max_length: int | None = None) -> Meta:
    """``Meta`` enforcing ``pattern`` on decode. msgspec uses ``re.search``, where ``$`` also matches before a
    trailing newline, so the enforced regex gets ``(?!\\n)`` (``schemas.export`` removes it from the JSON Schema)."""
    return Meta(pattern=pattern + "(?!\n)", description=description, max_length=max_length)


# Symbols and Tick's trade_id/venue are checked in __post_init__ (cached, ~20x cheaper than msgspec's per-value
# regex on the hot path, and also on construction); the pattern still goes into the JSON Schema.
Symbol = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=33,
        extra_json_schema={"pattern": SYMBOL_PATTERN},
        description="Instrument symbol, e.g. BTCUSD, BTC-USD, ETH/USDT.",
    ),
]
SymbolKey = Annotated[str, _pattern(SYMBOL_PATTERN, description="Instrument symbol.")]
Timestamp = Annotated[
    int,
    Meta(ge=TS_MIN_NS, lt=TS_MAX_NS, description="Event time, integer nanoseconds since the Unix epoch, UTC."),
]
Price = Annotated[float, Meta(gt=0, description="Price, quote currency per base unit; finite, > 0.")]
Quantity = Annotated[float, Meta(ge=0, description="Quantity, base units; finite, >= 0.")]
PositiveQuantity = Annotated[float, Meta(gt=0, description="Quantity, base units; finite, > 0.")]
Probability = Annotated[float, Meta(ge=0, le=1, description="Probability, fraction in [0, 1].")]
Id = Annotated[str, _pattern(ID_PATTERN, description="Deterministic id: 1-128 printable ASCII, no spaces.")]
Name = Annotated[str, _pattern(NAME_PATTERN, description="Machine name: 1-64 chars [A-Za-z0-9_.:@/+-].")]
SchemaVersion1 = Annotated[int, Meta(ge=1, le=1, description="Schema version of this event type (supported: 1).")]
ShortText = Annotated[str, Meta(max_length=256)]
Text = Annotated[str, Meta(max_length=4096)]

Side = Literal["buy", "sell"]


# ---------------------------------------------------------------------------------------------------------------
# Check helpers for __post_init__ (cheap: one chained comparison each; NaN fails every comparison)


def _pos(name: str, v: float) -> None:
    if not 0.0 < v < _INF:
        raise ValueError(f"{name} must be finite and > 0, got {v!r}")


def _nonneg(name: str, v: float) -> None:
    if not 0.0 <= v < _INF:
        raise ValueError(f"{name} must be finite and >= 0, got {v!r}")


def _finite(name: str, v: float) -> None:
    if not -_INF < v < _INF:
        raise ValueError(f"{name} must be finite, got {v!r}")


def _unit(name: str, v: float) -> None:
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {v!r}")


def _ts(v: int, name: str = "ts") -> None:
    if not TS_MIN_NS <= v < TS_MAX_NS:
        raise ValueError(f"{name} must be int ns since the epoch in [2000-01-01, 2100-01-01) UTC, got {v!r}")


_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
_NAME_RE = re.compile(NAME_PATTERN)
_SEEN_SYMBOLS: set[str] = set()
_SEEN_NAMES: set[str] = set()
_SEEN_MAX = 100_000  # bound on each cache of already-validated strings


def _symbol(v: str, name: str = "symbol") -> None:
    if v in _SEEN_SYMBOLS:
        return
    if type(v) is not str or _SYMBOL_RE.fullmatch(v) is None:
        raise ValueError(f"{name} {v!r} does not match {SYMBOL_PATTERN}")
    if len(_SEEN_SYMBOLS) < _SEEN_MAX:
        _SEEN_SYMBOLS.add(v)


def _name(v: str, name: str) -> None:
    if v in _SEEN_NAMES:
        return
    if type(v) is not str or _NAME_RE.fullmatch(v) is None:
        raise ValueError(f"{name} {v!r} does not match {NAME_PATTERN}")
    if len(_SEEN_NAMES) < _SEEN_MAX:
        _SEEN_NAMES.add(v)


def _id(v: str, name: str) -> None:
    # Same as ID_PATTERN: 1-128 printable ASCII characters, no space.
    if not (type(v) is str and 0 < len(v) <= 128 and v.isascii() and v.isprintable() and " " not in v):
        raise ValueError(f"{name} {v!r} does not match {ID_PATTERN}")


def _version(cls_version: int, v: int) -> None:
    if not 1 <= v <= cls_version:
        raise ValueError(f"schema_version {v!r} is not supported (1..{cls_version})")


# ---------------------------------------------------------------------------------------------------------------
# Base classes


class _Record(Struct, frozen=True, kw_only=True, forbid_unknown_fields=False, gc=False):
    """Nested value type (no tag, no version of its own)."""


class Event(Struct, frozen=True, kw_only=True, forbid_unknown_fields=False, gc=False, tag_field="event"):
    """Base of all top-level events. ``SCHEMA_VERSION`` is the highest ``schema_version`` this code understands."""

    SCHEMA_VERSION: ClassVar[int] = 1
