"""Wire contracts: every event carried on a Kafka topic, as frozen ``msgspec.Struct`` types.

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

import math
import re
from typing import Annotated, ClassVar, Literal

from msgspec import Meta, Struct

from schemas.time import TS_MAX_NS, TS_MIN_NS

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



def _pattern(pattern: str, **kw: object) -> Meta:
    """``Meta`` enforcing ``pattern`` on decode. msgspec uses ``re.search``, where ``$`` also matches before a
    trailing newline, so the enforced regex gets ``(?!\\n)`` (``schemas.export`` removes it from the JSON Schema)."""
    return Meta(pattern=pattern + "(?!\n)", **kw)  # type: ignore[arg-type]


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


# ---------------------------------------------------------------------------------------------------------------
# Market data


class Tick(Event, tag="tick", kw_only=True):
    """One trade. ``ts`` ns UTC; ``price`` quote/base, finite > 0; ``qty`` base units, finite >= 0.

    ``trade_id`` is unique per (venue, symbol) and deterministic (replays re-emit the same id);
    ``side`` is the aggressor side; ``synthetic`` marks ticks generated from bars.
    """

    symbol: Symbol
    ts: Timestamp
    price: Price
    qty: Quantity
    side: Literal["buy", "sell", "unknown"]
    trade_id: Annotated[str, Meta(min_length=1, max_length=128, extra_json_schema={"pattern": ID_PATTERN})]
    venue: Annotated[str, Meta(min_length=1, max_length=64, extra_json_schema={"pattern": NAME_PATTERN})]
    synthetic: bool = False
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        # Inlined (hot path): one chained comparison per number, NaN fails all of them.
        if not 0.0 < self.price < _INF:
            raise ValueError(f"price must be finite and > 0, got {self.price!r}")
        if not 0.0 <= self.qty < _INF:
            raise ValueError(f"qty must be finite and >= 0, got {self.qty!r}")
        if not TS_MIN_NS <= self.ts < TS_MAX_NS:
            _ts(self.ts)
        if self.schema_version != 1:
            _version(1, self.schema_version)
        if self.symbol not in _SEEN_SYMBOLS:
            _symbol(self.symbol)
        if self.venue not in _SEEN_NAMES:
            _name(self.venue, "venue")
        tid = self.trade_id
        if not (0 < len(tid) <= 128 and tid.isascii() and tid.isprintable() and " " not in tid):
            _id(tid, "trade_id")


class Bar(Event, tag="bar", kw_only=True):
    """OHLCV bar. ``ts`` is the bar *open* time (ns UTC); the bar covers ``[ts, ts + resolution_s * 1e9)``.

    Prices in quote/base (finite > 0, ``low <= open, close <= high``, ``vwap`` within ``[low, high]`` up to float
    rounding); volumes in base units (finite >= 0; ``buy_volume + sell_volume <= volume``, the rest being
    unknown-side volume); ``trade_count`` >= 0. An empty bar (``trade_count == 0``, ``synthetic=True``) carries the
    previous close as all prices and as ``vwap``.
    """

    symbol: Symbol
    ts: Timestamp
    resolution_s: Annotated[int, Meta(gt=0, le=31 * 86_400, description="Bar length, seconds (max 31 days).")]
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity
    buy_volume: Quantity = 0.0
    sell_volume: Quantity = 0.0
    vwap: Price
    trade_count: Annotated[int, Meta(ge=0, description="Number of trades in the bar.")] = 0
    synthetic: bool = False
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        lo, hi, vol, bv, sv = self.low, self.high, self.volume, self.buy_volume, self.sell_volume
        # fast path (bars are built by the million in the flow): every numeric rule in one chained test
        if (0.0 < lo <= self.open <= hi < _INF and lo <= self.close <= hi and lo - 1e-9 * hi <= self.vwap <= hi * (1 + 1e-9)
                and 0.0 <= bv < _INF and 0.0 <= sv < _INF and vol < _INF and bv + sv <= vol * (1 + 1e-9) + 1e-12
                and 0 < self.resolution_s <= 2_678_400 and self.trade_count >= 0 and self.schema_version == 1):
            _ts(self.ts)
            _symbol(self.symbol)
            return
        self._explain()

    def _explain(self) -> None:
        """Slow path: find the first broken rule and raise it with a precise message."""
        for name in ("open", "high", "low", "close", "vwap"):
            _pos(name, getattr(self, name))
        for name in ("volume", "buy_volume", "sell_volume"):
            _nonneg(name, getattr(self, name))
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if not 0 < self.resolution_s <= 31 * 86_400:
            raise ValueError(f"resolution_s must be in (0, 2678400] seconds, got {self.resolution_s!r}")
        if self.trade_count < 0:
            raise ValueError(f"trade_count must be >= 0, got {self.trade_count!r}")
        lo, hi = self.low, self.high
        if not (lo <= self.open <= hi and lo <= self.close <= hi):
            raise ValueError(f"OHLC inconsistent: need low <= open, close <= high; got {self.open}, {hi}, {lo}, {self.close}")
        tol = 1e-9 * hi
        if not lo - tol <= self.vwap <= hi + tol:
            raise ValueError(f"vwap {self.vwap} outside [low, high] = [{lo}, {hi}]")
        if self.buy_volume + self.sell_volume > self.volume * (1 + 1e-9) + 1e-12:
            raise ValueError(
                f"buy_volume + sell_volume ({self.buy_volume} + {self.sell_volume}) exceeds volume {self.volume}"
            )


# ---------------------------------------------------------------------------------------------------------------
# Telegram (raw Bot API updates, decoded leniently: only the fields the signal ingest needs are typed)

TgText = Annotated[str, Meta(max_length=8192)]


class TelegramChat(_Record, kw_only=True):
    """Telegram ``Chat``: ``id`` is the numeric chat id (channels are negative, e.g. -1001234567890)."""

    id: int
    type: Annotated[str, Meta(max_length=32)] = "private"
    title: Annotated[str, Meta(max_length=256)] | None = None
    username: Annotated[str, Meta(max_length=64)] | None = None


class TelegramMessage(_Record, kw_only=True):
    """Telegram ``Message``: ``date`` and ``edit_date`` are Unix time in *seconds* (Telegram's unit)."""

    message_id: int
    date: int
    chat: TelegramChat
    text: TgText | None = None
    caption: TgText | None = None
    edit_date: int | None = None
    reply_to_message: TelegramMessage | None = None


class TelegramUpdate(Event, tag="telegram_update", kw_only=True):
    """A raw Telegram Bot API ``Update`` as received by the webhook (forwarded verbatim; Telegram sends no
    ``event`` tag or ``schema_version``, both optional on decode). Fields not listed here are ignored."""

    update_id: Annotated[int, Meta(ge=0)]
    message: TelegramMessage | None = None
    edited_message: TelegramMessage | None = None
    channel_post: TelegramMessage | None = None
    edited_channel_post: TelegramMessage | None = None
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _version(1, self.schema_version)

    @property
    def any_message(self) -> TelegramMessage | None:
        """The message this update carries, whichever of the four slots it is in."""
        return self.message or self.edited_message or self.channel_post or self.edited_channel_post


# ---------------------------------------------------------------------------------------------------------------
# Signals, features, scores


class Signal(Event, tag="signal", kw_only=True):
    """A trading signal parsed from a Telegram message.

    ``id`` is deterministic from the source (chat, message); an *edit* of the message keeps ``id`` and bumps
    ``version`` (>= 1). ``kind``: ``open`` (a new idea; needs >= 1 entry), ``update`` (new stop/targets/entries),
    ``cancel`` (withdraw an unfilled idea), ``close`` (exit, ``close_fraction`` of the position, None = all).
    Follow-up messages carry their own ``id`` and point at the original with ``ref_id`` (None when the ingest could
    not resolve it; consumers then match by source chat and symbol). Prices in quote/base, finite > 0;
    ``leverage`` a multiple (0, 1000]; ``trust`` a fraction in [0, 1] (source reliability); ``ts`` ns UTC of the
    message (or of the edit); ``raw_text`` the message text (max 4096 chars).
    """

    id: Id
    source_chat: Annotated[str, Meta(min_length=1, max_length=128, description="Telegram chat id or @username.")]
    source_message_id: Annotated[int, Meta(ge=0)]
    version: Annotated[int, Meta(ge=1, description="Message revision; edits bump it.")] = 1
    symbol: Symbol
    side: Literal["long", "short"]
    kind: Literal["open", "update", "cancel", "close"] = "open"
    entries: Annotated[list[Price], Meta(max_length=10, description="Entry prices (1..10 for kind=open).")] = []
    targets: Annotated[list[Price], Meta(max_length=20, description="Take-profit prices (0..20).")] = []
    stop: Price | None = None
    leverage: Annotated[float, Meta(gt=0, le=1000, description="Leverage multiple.")] | None = None
    ref_id: Id | None = None
    close_fraction: Annotated[float, Meta(gt=0, le=1, description="Fraction of position to close.")] | None = None
    trust: Probability = 0.5
    ts: Timestamp
    raw_text: Text = ""
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if self.version < 1:
            raise ValueError(f"version must be >= 1, got {self.version!r}")
        if self.kind == "open" and not self.entries:
            raise ValueError("a signal of kind 'open' needs at least one entry price")
        if len(self.entries) > 10 or len(self.targets) > 20:
            raise ValueError("at most 10 entries and 20 targets")
        for p in self.entries:
            _pos("entries[]", p)
        for p in self.targets:
            _pos("targets[]", p)
        if self.stop is not None:
            _pos("stop", self.stop)
        if self.leverage is not None and not 0.0 < self.leverage <= 1000.0:
            raise ValueError(f"leverage must be in (0, 1000], got {self.leverage!r}")
        if self.close_fraction is not None and not 0.0 < self.close_fraction <= 1.0:
            raise ValueError(f"close_fraction must be in (0, 1], got {self.close_fraction!r}")
        _unit("trust", self.trust)


FEATURES_MAX = 512


class FeatureVector(Event, tag="feature_vector", kw_only=True):
    """Features of one symbol at the end of a window. ``ts`` is the window *end* (ns UTC).

    ``names[i]`` labels ``values[i]`` (same length, 1..512, unique names); values are finite — a feature that
    cannot be computed yet (warm-up) means no vector is emitted. ``feature_set_version`` bumps whenever the
    feature code changes meaning. Units are per feature (documented in the feature set).
    """

    symbol: Symbol
    ts: Timestamp
    feature_set: Name
    feature_set_version: Annotated[int, Meta(ge=1)]
    names: Annotated[list[Name], Meta(min_length=1, max_length=FEATURES_MAX)]
    values: Annotated[list[float], Meta(min_length=1, max_length=FEATURES_MAX)]
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if self.feature_set_version < 1:
            raise ValueError(f"feature_set_version must be >= 1, got {self.feature_set_version!r}")
        n = len(self.names)
        if n != len(self.values):
            raise ValueError(f"names ({n}) and values ({len(self.values)}) differ in length")
        if not 1 <= n <= FEATURES_MAX:
            raise ValueError(f"a feature vector holds 1..{FEATURES_MAX} features, got {n}")
        if len(set(self.names)) != n:
            raise ValueError("feature names must be unique")
        if not -_INF < sum(self.values) < _INF:  # fast path; a finite sum can still overflow, so then check each
            for name, v in zip(self.names, self.values):
                _finite(f"values[{name}]", v)

    def as_dict(self) -> dict[str, float]:
        """``{name: value}``."""
        return dict(zip(self.names, self.values))


class Score(Event, tag="score", kw_only=True):
    """Model output for one symbol at ``ts`` (ns UTC, the window end of the features scored).

    All probabilities are P(up-move over the model's label horizon), fractions in [0, 1]: ``raw`` per model,
    ``calibrated`` after calibration, ``ensemble`` the blend. ``uncertainty`` in [0, 1] (spread of the members'
    probabilities). ``model_versions`` maps model name to version string (max 32 models).
    """

    symbol: Symbol
    ts: Timestamp
    model_versions: Annotated[dict[Name, Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=32)]
    raw: Annotated[dict[Name, Probability], Meta(max_length=32)]
    calibrated: Probability
    ensemble: Probability
    uncertainty: Probability = 0.0
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        for name, p in self.raw.items():
            _unit(f"raw[{name}]", p)
        _unit("calibrated", self.calibrated)
        _unit("ensemble", self.ensemble)
        _unit("uncertainty", self.uncertainty)


# ---------------------------------------------------------------------------------------------------------------
# Risk, orders, fills


class PortfolioSnapshot(_Record, kw_only=True):
    """Portfolio state seen by the risk gate. Money in quote currency; ``drawdown`` a fraction of peak equity
    in [0, 1]; ``var``/``cvar`` the portfolio's one-period loss at the gate's confidence, fraction of equity
    (positive = loss); ``positions`` signed base units per symbol (max 256)."""

    equity: float
    gross_exposure: float = 0.0
    net_exposure: float = 0.0
    drawdown: Probability = 0.0
    var: float = 0.0
    cvar: float = 0.0
    positions: Annotated[dict[SymbolKey, float], Meta(max_length=256)] = {}

    def __post_init__(self) -> None:
        _finite("equity", self.equity)
        _nonneg("gross_exposure", self.gross_exposure)
        _finite("net_exposure", self.net_exposure)
        _unit("drawdown", self.drawdown)
        _finite("var", self.var)
        _finite("cvar", self.cvar)
        for sym, q in self.positions.items():
            _finite(f"positions[{sym}]", q)


class RiskDecision(Event, tag="risk_decision", kw_only=True):
    """The risk gate's verdict on one order intent.

    ``approved``: ``approved_qty == requested_qty``; ``resized``: ``0 < approved_qty != requested_qty``;
    ``rejected``: ``approved_qty == 0`` and at least one reason. Quantities in base units (finite >= 0).
    ``var``/``cvar``: one-period loss of the symbol's position after the decision, at the gate's confidence, as a
    fraction of equity (positive = loss). ``reasons`` are short codes (max 32, 128 chars each).
    """

    id: Id
    intent_id: Id
    symbol: Symbol
    ts: Timestamp
    action: Literal["approved", "resized", "rejected"]
    requested_qty: Quantity
    approved_qty: Quantity
    reasons: Annotated[list[Annotated[str, Meta(min_length=1, max_length=128)]], Meta(max_length=32)] = []
    var: float = 0.0
    cvar: float = 0.0
    portfolio: PortfolioSnapshot
    strategy: Name | None = None
    side: Side | None = None
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        _nonneg("requested_qty", self.requested_qty)
        _nonneg("approved_qty", self.approved_qty)
        _finite("var", self.var)
        _finite("cvar", self.cvar)
        a, req, app = self.action, self.requested_qty, self.approved_qty
        if a == "approved" and app != req:
            raise ValueError(f"approved decision must approve the requested qty ({req}), got {app}")
        if a == "resized" and not (app > 0 and app != req):
            raise ValueError(f"resized decision needs 0 < approved_qty != requested_qty, got {app} of {req}")
        if a == "rejected" and (app != 0 or not self.reasons):
            raise ValueError("rejected decision needs approved_qty == 0 and at least one reason")


class Order(Event, tag="order", kw_only=True):
    """An order to the execution venue. ``order_id`` is deterministic (re-emission after recovery repeats it;
    consumers dedupe by it); ``parent_id`` the parent order/intent a child slice belongs to. ``qty`` base units,
    finite > 0; ``limit_price`` quote/base, required for ``limit`` and absent for ``market``; ``ts`` ns UTC
    (decision event time)."""

    order_id: Id
    parent_id: Id | None = None
    strategy: Name
    symbol: Symbol
    side: Side
    qty: PositiveQuantity
    type: Literal["market", "limit"]
    limit_price: Price | None = None
    tif: Literal["GTC", "IOC", "FOK", "DAY"] = "GTC"
    ts: Timestamp
    reduce_only: bool = False
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _pos("qty", self.qty)
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if self.type == "limit":
            if self.limit_price is None:
                raise ValueError("a limit order needs limit_price")
            _pos("limit_price", self.limit_price)
        elif self.limit_price is not None:
            raise ValueError("a market order must not carry limit_price")


class Fill(Event, tag="fill", kw_only=True):
    """An execution of (part of) an order. ``price`` quote/base (finite > 0); ``qty`` base units (finite > 0);
    ``fee`` quote currency (finite; negative = rebate); ``slippage_bps`` basis points versus the reference price
    (finite; positive = worse for us); ``ts`` ns UTC of the execution."""

    fill_id: Id
    order_id: Id
    symbol: Symbol
    side: Side
    price: Price
    qty: PositiveQuantity
    fee: float = 0.0
    slippage_bps: float = 0.0
    ts: Timestamp
    liquidity: Literal["maker", "taker"] = "taker"
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _pos("price", self.price)
        _pos("qty", self.qty)
        _finite("fee", self.fee)
        _finite("slippage_bps", self.slippage_bps)
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)


# ---------------------------------------------------------------------------------------------------------------
# Operations


class Alert(Event, tag="alert", kw_only=True):
    """Something a human should know. ``dedupe_key`` groups repeats (the dispatcher sends one per key per
    window); ``labels`` max 32 pairs (keys machine names, values max 256 chars); ``message`` max 4096 chars;
    ``ts`` ns UTC."""

    id: Id
    severity: Literal["info", "warning", "critical"]
    kind: Name
    message: Text
    labels: Annotated[dict[Name, ShortText], Meta(max_length=32)] = {}
    dedupe_key: Annotated[str, Meta(min_length=1, max_length=256)]
    ts: Timestamp
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)


class DeadLetter(Event, tag="dead_letter", kw_only=True):
    """An input a stage rejected, kept for inspection and replay.

    ``partition``/``offset``: Kafka coordinates of the input (-1 when unknown; non-Kafka sources put the record
    index in ``offset``). ``error``: reason code (``invalid_json``, ``validation``, ``unknown_schema_version``,
    ``oversized``, ``wrong_type`` from the codec, or a stage's own code); ``detail``: human text (max 4096 chars);
    ``raw``: the payload, truncated to 256 KiB (``raw_size`` is the original size in bytes, -1 unknown); ``key`` the
    Kafka key (bytes are base64 in JSON). ``ts``: ns UTC, the input's Kafka timestamp (never the wall clock) so
    replays reproduce it. Natural key: ``(source_topic, partition, offset, stage)``.
    """

    source_topic: Annotated[str, Meta(pattern=TOPIC_NAME_PATTERN)]
    partition: Annotated[int, Meta(ge=-1)] = -1
    offset: Annotated[int, Meta(ge=-1)] = -1
    key: Annotated[bytes, Meta(max_length=65_536)] | None = None
    error: Annotated[str, Meta(pattern=REASON_CODE_PATTERN)]
    detail: Text = ""
    raw: Annotated[bytes, Meta(max_length=DEAD_LETTER_RAW_MAX_BYTES)] = b""
    raw_size: Annotated[int, Meta(ge=-1)] = -1
    ts: Timestamp
    stage: Name = "decode"
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)
        if self.partition < -1 or self.offset < -1:
            raise ValueError(f"partition/offset must be >= -1, got {self.partition}/{self.offset}")

    @property
    def dedupe_id(self) -> str:
        """Deterministic id ``topic/partition/offset/stage`` (unique for Kafka inputs)."""
        return f"{self.source_topic}/{self.partition}/{self.offset}/{self.stage}"


# ---------------------------------------------------------------------------------------------------------------
# Decision path between stages, execution boundary, control plane


class Intent(Event, tag="intent", kw_only=True):
    """What the signal stage wants the account to hold in one symbol (no topic: it travels inside the flow, from
    the per-symbol signal stage to the account stage).

    ``target``: wanted position as a signed fraction of the account's allocation to the symbol (finite,
    |target| <= 10; 1.0 = full allocation long); ``contributions``: each strategy's share of ``target`` (same unit;
    they sum to ``target`` up to the orchestrator's caps); ``confidence`` in [0, 1]; ``price``: the close it was
    decided at (quote/base); ``ts``: event time of the decision (ns UTC, the close of the decision bar).
    ``id`` is deterministic (strategy, symbol, ts, target), so a recovery re-emits the same intent."""

    id: Id
    account: Name = "default"
    symbol: Symbol
    strategy: Name
    target: float
    confidence: Probability = 1.0
    contributions: Annotated[dict[Name, float], Meta(max_length=64)] = {}
    reasons: Annotated[list[Annotated[str, Meta(min_length=1, max_length=256)]], Meta(max_length=32)] = []
    price: Price
    ts: Timestamp
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        _pos("price", self.price)
        if not -10.0 <= self.target <= 10.0:
            raise ValueError(f"target must be finite with |target| <= 10, got {self.target!r}")
        _unit("confidence", self.confidence)
        for k, v in self.contributions.items():
            _finite(f"contributions[{k}]", v)


ReportKind = Literal["ack", "partial_fill", "fill", "cancel", "reject", "expire", "positions"]


class ExecutionReport(Event, tag="execution_report", kw_only=True):
    """What a venue says happened to an order, or (``kind="positions"``) what it holds: the account's only source
    of positions, cash and fills.

    Order reports (``ack``, ``partial_fill``, ``fill``, ``cancel``, ``reject``, ``expire``) name the order by
    ``client_order_id`` (the flow's deterministic ``Order.order_id``) and ``venue_order_id``. ``last_qty`` /
    ``last_price`` are this execution's quantity (base units) and price (quote/base), ``cum_qty`` the order's
    filled total and ``leaves_qty`` what is still open (base units); ``fee`` quote currency (negative = rebate);
    ``slippage_bps`` versus the venue's reference price. A ``positions`` snapshot carries ``positions`` (signed
    base units per symbol), ``open_orders`` (client ids still working) and ``cash`` (quote). ``seq`` increases by
    one per report of the venue for the account; ``id`` is ``<venue>:<account>:<seq>``, unique and deterministic.
    ``ts`` ns UTC: the venue's event time (the tick that filled, the order's arrival, the snapshot time)."""

    id: Id
    account: Name = "default"
    venue: Name
    kind: ReportKind
    seq: Annotated[int, Meta(ge=0)]
    client_order_id: Id | None = None
    venue_order_id: Id | None = None
    parent_id: Id | None = None
    strategy: Name | None = None
    symbol: Symbol | None = None
    side: Side | None = None
    order_qty: Quantity = 0.0
    last_qty: Quantity = 0.0
    last_price: Price | None = None
    cum_qty: Quantity = 0.0
    leaves_qty: Quantity = 0.0
    fee: float = 0.0
    slippage_bps: float = 0.0
    liquidity: Literal["maker", "taker"] | None = None
    reason: ShortText = ""
    positions: Annotated[dict[SymbolKey, float], Meta(max_length=1024)] = {}
    open_orders: Annotated[list[Id], Meta(max_length=100_000)] = []
    cash: float | None = None
    ts: Timestamp
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)
        if not (0.0 <= self.order_qty < _INF and 0.0 <= self.last_qty < _INF and 0.0 <= self.cum_qty < _INF
                and 0.0 <= self.leaves_qty < _INF):
            for name in ("order_qty", "last_qty", "cum_qty", "leaves_qty"):
                _nonneg(name, getattr(self, name))
        if not (-_INF < self.fee < _INF and -_INF < self.slippage_bps < _INF):
            _finite("fee", self.fee)
            _finite("slippage_bps", self.slippage_bps)
        if self.cash is not None:
            _finite("cash", self.cash)
        for sym, q in self.positions.items():
            _finite(f"positions[{sym}]", q)
        if self.kind == "positions":
            return
        if self.client_order_id is None or self.symbol is None or self.side is None:
            raise ValueError(f"a {self.kind!r} report needs client_order_id, symbol and side")
        _symbol(self.symbol)
        if self.kind in ("fill", "partial_fill"):
            if self.last_price is None or not self.last_qty > 0.0:
                raise ValueError(f"a {self.kind!r} report needs last_price and last_qty > 0")
            _pos("last_price", self.last_price)

    @property
    def signed_qty(self) -> float:
        """This execution's quantity with the side's sign (base units; + buy, - sell)."""
        return self.last_qty if self.side == "buy" else -self.last_qty


class CancelRequest(Event, tag="cancel_request", kw_only=True):
    """The account asks its venue to cancel a working order (``order.cancels`` topic, keyed by symbol): what a FIX
    session's OrderCancelRequest is. ``client_order_id`` names the order (its ``Order.order_id``); ``id`` is
    deterministic and one per order (``cxl:<client_order_id>``), so a re-sent request after recovery is the same
    request. ``reason`` says why (``operator_halt``, ``operator_reduce_only``, ``reconciliation_reduce_only``...).
    The venue answers with a ``cancel`` report for what was still working, or nothing when the order had already
    ended; a request that arrives before its order is remembered and cancels the order when it comes. ``ts`` ns UTC:
    the account's event time of the request."""

    id: Id
    account: Name = "default"
    client_order_id: Id
    symbol: Symbol
    strategy: Name
    reason: ShortText = ""
    ts: Timestamp
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)


#: Operator actions on the ``control`` topic and what each needs in ``parameters``.
CONTROL_ACTIONS: dict[str, str] = {
    "halt": "stop every order in the scope (reducing ones too) until resume",
    "reduce_only": "only orders that shrink a position, until resume",
    "resume": "lift a halt or reduce-only of the scope",
    "set_limit": "parameters: name (a RiskLimits field), value (number)",
    "enable_strategy": "scope strategy:<name>; the strategy's intents count again",
    "disable_strategy": "scope strategy:<name>; its contribution is dropped, its positions unwound",
    "pin_model": "parameters: version (a registry model version) — hot reload stops at it",
    "unpin_model": "follow the registry's champion again",
}

ControlParam = Annotated[str, Meta(max_length=256)] | float | int | bool


class ControlCommand(Event, tag="control_command", kw_only=True):
    """An operator command (``control`` topic, compacted by :attr:`compaction_key`).

    ``scope``: ``account:<name>``, ``symbol:<symbol>`` or ``strategy:<name>``; ``action`` one of
    :data:`CONTROL_ACTIONS`; ``issuer`` who sent it (an operator name or API key id); ``reason`` free text;
    ``ts`` ns UTC — the command takes effect at the first event at or after it. ``signature`` is the lowercase hex
    HMAC-SHA256 of the command's canonical bytes under the key named ``key_id`` (``operators.control.signing``);
    an unsigned or badly signed command is dead-lettered and alerted, never applied."""

    id: Id
    issuer: Name
    scope: Annotated[str, _pattern(SCOPE_PATTERN, max_length=128)]
    action: Literal["halt", "reduce_only", "resume", "set_limit", "enable_strategy", "disable_strategy",
                    "pin_model", "unpin_model"]
    parameters: Annotated[dict[Name, ControlParam], Meta(max_length=16)] = {}
    reason: Text = ""
    ts: Timestamp
    key_id: Name = "default"
    signature: Annotated[str, Meta(max_length=64)] = ""
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)
        for k, v in self.parameters.items():
            if isinstance(v, float):
                _finite(f"parameters[{k}]", v)

    @property
    def compaction_key(self) -> str:
        """Kafka key on ``control``: the scope plus the state the action sets, so compaction keeps the latest
        command per (scope, slot) — a later limit change never erases a halt of the same scope."""
        a = self.action
        if a in ("halt", "reduce_only", "resume"):
            slot = "mode"
        elif a == "set_limit":
            slot = f"limit:{self.parameters.get('name', '')}"
        elif a in ("enable_strategy", "disable_strategy"):
            slot = "enabled"
        else:
            slot = "model"
        return f"{self.scope}/{slot}"


class AuditEvent(Event, tag="audit_event", kw_only=True):
    """One entry of the append-only audit trail (``audit`` topic, PostgreSQL ``audit`` table): who did what, when,
    with which result. ``actor`` an operator, API key id or ``flow``; ``action`` the command's action or the API
    route; ``result``: ``applied`` (took effect), ``refused`` (invalid or badly signed), ``denied`` (not allowed),
    ``error``; ``command_id`` the control command it concerns; ``parameters_digest`` the hex SHA-256 of the
    request's parameters (never the parameters themselves: they may hold secrets); ``ts`` ns UTC (event time of the
    command, or of the request)."""

    id: Id
    actor: Name
    action: Name
    scope: Annotated[str, Meta(max_length=128)] = ""
    result: Literal["applied", "refused", "denied", "error"]
    command_id: Id | None = None
    detail: Text = ""
    parameters_digest: Annotated[str, Meta(max_length=64)] = ""
    source: Name = "flow"
    client_address: Annotated[str, Meta(max_length=64)] = ""
    ts: Timestamp
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _version(1, self.schema_version)


#: Every top-level event type, in DESIGN §2 order.
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
