"""Wire contracts: every event carried on a Kafka topic, as frozen ``msgspec.Struct`` types.

One module per domain (``base``: field patterns, types and the base classes; ``market``, ``telegram``,
``signals``, ``trading``, ``ops``, ``control``); import the events from here, ``from schemas.events import Tick``.

Conventions (see ``docs/schemas.md``):

* ``ts`` is an ``int`` of nanoseconds since the Unix epoch, UTC, in [2000-01-01, 2100-01-01).
* Prices are in quote currency per base unit, finite and > 0; quantities in base units, finite and >= 0.
* Symbols match :data:`SYMBOL_PATTERN` (``BTCUSD``, ``BTC-USD``, ``ETH/USDT``).
* Every event has ``schema_version`` (missing means 1) and an ``event`` tag naming its type
  (``"tick"``, ``"bar"``, ...); decoding tolerates a missing tag but rejects a different one.
* Unknown fields are ignored on decode, so producers may add fields without breaking consumers.

Two layers of validation:

* Declarative constraints (``msgspec.Meta``: ranges, patterns, lengths, list sizes) are enforced when decoding
  (``schemas.codec.decode``) and appear in the exported JSON Schema.
* ``__post_init__`` checks what ``Meta`` cannot express — finiteness (``Meta(gt=0)`` lets ``inf`` through),
  cross-field invariants (OHLC order, limit price present for limit orders, ...) — and the numeric ranges.
  It runs on decode *and* on direct construction, so an operator cannot build a NaN-priced order.
  String patterns and length bounds are not re-checked on construction; use ``schemas.codec.validate`` for that.

>>> t = Tick(symbol="BTCUSD", ts=1_700_000_000_000_000_000, price=37000.5, qty=0.25, side="buy",
...          trade_id="binance:1", venue="binance")
>>> t.price, t.schema_version
(37000.5, 1)
>>> Tick(symbol="BTCUSD", ts=1_700_000_000_000_000_000, price=float("nan"), qty=1.0, side="buy",
...      trade_id="x", venue="v")
Traceback (most recent call last):
...
ValueError: price must be finite and > 0, got nan
"""

from __future__ import annotations

from .base import (
    DEAD_LETTER_RAW_MAX_BYTES,
    ID_PATTERN,
    NAME_PATTERN,
    REASON_CODE_PATTERN,
    SCOPE_PATTERN,
    SYMBOL_PATTERN,
    TOPIC_NAME_PATTERN,
    Event,
)
from .control import CONTROL_ACTIONS, AuditEvent, ControlCommand
from .market import Bar, Tick
from .ops import Alert, DeadLetter
from .signals import FeatureVector, Score, Signal
from .telegram import TelegramChat, TelegramMessage, TelegramUpdate
from .trading import CancelRequest, ExecutionReport, Fill, Intent, Order, PortfolioSnapshot, RiskDecision

__all__ = [
    "SYMBOL_PATTERN",
    "ID_PATTERN",
    "NAME_PATTERN",
    "TOPIC_NAME_PATTERN",
    "REASON_CODE_PATTERN",
    "DEAD_LETTER_RAW_MAX_BYTES",
    "Event",
    "Tick",
    "Bar",
    "TelegramChat",
    "TelegramMessage",
    "TelegramUpdate",
    "Signal",
    "FeatureVector",
    "Score",
    "PortfolioSnapshot",
    "RiskDecision",
    "Order",
    "Fill",
    "Alert",
    "DeadLetter",
    "Intent",
    "ExecutionReport",
    "CancelRequest",
    "ControlCommand",
    "AuditEvent",
    "CONTROL_ACTIONS",
    "SCOPE_PATTERN",
    "EVENT_TYPES",
    "EVENTS_BY_TAG",
]

#: Every top-level event type, in the order of the topics table (docs/topics.md).
EVENT_TYPES: tuple[type[Event], ...] = (
    Tick,
    Bar,
    TelegramUpdate,
    Signal,
    FeatureVector,
    Score,
    RiskDecision,
    Order,
    Fill,
    Alert,
    DeadLetter,
    Intent,
    ExecutionReport,
    CancelRequest,
    ControlCommand,
    AuditEvent,
)

#: ``event`` tag -> type, e.g. ``"tick" -> Tick``.
EVENTS_BY_TAG: dict[str, type[Event]] = {t.__struct_config__.tag: t for t in EVENT_TYPES}  # type: ignore[misc]
