"""Contracts of the operator API (``levibot api``): request bodies and responses, as pydantic models (FastAPI
builds the OpenAPI schema, ``docs/openapi.json``, from them). Field units as in ``schemas.events``: quantities in
base units, prices and money in quote currency, ``ts_ns`` integer nanoseconds UTC with ``time`` its ISO-8601 text.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import NAME_PATTERN, SCOPE_PATTERN

__all__ = ["ErrorOut", "Page", "OrderOut", "FillOut", "RiskDecisionOut", "SignalOut", "AuditOut", "PositionOut",
           "StatusOut", "ControlStateOut", "WhoAmIOut", "ModeRequest", "SetLimitRequest", "StrategyRequest",
           "ControlAccepted", "HealthOut"]

T = TypeVar("T")

Reason = Field("", max_length=4096, description="Why (free text, kept with the command and in the audit trail).")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    """Every error answer: a machine ``error`` code and a human ``detail``."""

    error: str
    detail: Any = ""
    request_id: str = ""


class Page(_Out, Generic[T]):
    """One page of a list, newest first; pass ``next_cursor`` back as ``cursor`` for the next (older) page."""

    items: list[T]
    count: int
    next_cursor: Optional[str] = None


class OrderOut(_Out):
    order_id: str
    parent_id: Optional[str] = None
    strategy: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    order_type: Literal["market", "limit"]
    limit_price: Optional[float] = None
    tif: str
    reduce_only: bool
    ts_ns: int
    time: str


class FillOut(_Out):
    fill_id: str
    order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    price: float
    qty: float
    fee: float
    slippage_bps: float
    liquidity: str
    ts_ns: int
    time: str


class RiskDecisionOut(_Out):
    id: str
    intent_id: str
    symbol: str
    strategy: Optional[str] = None
    side: Optional[Literal["buy", "sell"]] = None
    action: Literal["approved", "resized", "rejected"]
    requested_qty: float
    approved_qty: float
    reasons: list[str]
    var: float = Field(description="Value at risk, fraction of equity.")
    cvar: float = Field(description="Conditional VaR (expected shortfall), fraction of equity.")
    portfolio: dict[str, Any]
    ts_ns: int
    time: str


class SignalOut(_Out):
    id: str
    version: int
    source_chat: str
    source_message_id: int
    symbol: str
    side: Literal["long", "short"]
    kind: str
    entries: list[float]
    targets: list[float]
    stop: Optional[float] = None
    leverage: Optional[float] = None
    ref_id: Optional[str] = None
    close_fraction: Optional[float] = None
    trust: float
    ts_ns: int
    time: str


class AuditOut(_Out):
    id: str
    actor: str
    action: str
    scope: str
    result: Literal["applied", "refused", "denied", "error"]
    command_id: Optional[str] = None
    detail: str
    parameters_digest: str
    source: str
    client_address: str
    ts_ns: int
    time: str
    recorded_at: str


class PositionOut(_Out):
    """Per symbol, from the stored fills: ``net_qty`` (base units, + long), ``cash_flow`` (quote currency: sells
    minus buys), ``pnl`` = cash flow − fees + net_qty × mark, marked at the latest stored bar close or the last
    fill price (``mark_source``)."""

    symbol: str
    net_qty: float
    bought_qty: float
    sold_qty: float
    cash_flow: float
    fees: float
    fill_count: int
    last_fill_ns: int
    last_fill_time: str
    last_fill_price: float
    mark_price: float
    mark_source: Literal["bar", "fill"]
    pnl: float


class ControlStateOut(_Out):
    """What the signed ``control`` topic holds (as ``levibot control status --json``); ``available`` false when
    the API has no verification key or the topic cannot be read (``error``)."""

    available: bool
    error: str = ""
    modes: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    strategies: dict[str, Any] = {}
    disabled_strategies: list[str] = []
    pinned_model: Optional[str] = None
    counts: dict[str, int] = {}
    read_at: str = ""


class StatusOut(_Out):
    service: str
    version: str
    time: str
    database: bool
    schema_version: int
    last_events: dict[str, Optional[str]] = Field(description="Latest event time stored per table (ISO-8601).")
    lag_s: Optional[float] = Field(None, description="Seconds between now and the latest stored order, fill or "
                                   "risk decision (event time; a replay of history shows its age).")
    control: ControlStateOut


class WhoAmIOut(_Out):
    key_id: str
    name: str
    scopes: list[str]
    tier: str
    accounts: list[str]
    rate: str
    groups: list[str]


class HealthOut(_Out):
    status: Literal["ok", "degraded"]
    database: bool


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModeRequest(_In):
    """Body of halt, reduce-only and resume."""

    scope: str = Field("account:default", pattern=SCOPE_PATTERN, max_length=128,
                       description="account:<name>, symbol:<SYMBOL> or strategy:<name>.")
    reason: str = Reason


class SetLimitRequest(_In):
    scope: str = Field("account:default", pattern=r"^account:[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}$", max_length=72)
    name: str = Field(..., pattern=NAME_PATTERN, max_length=64, description="A numeric RiskLimits field.")
    value: float = Field(..., ge=0, allow_inf_nan=False, description="New value (finite, >= 0).")
    reason: str = Reason


class StrategyRequest(_In):
    reason: str = Reason


class ControlAccepted(_Out):
    """A signed command on the ``control`` topic; the flow applies it at its next event and audits the outcome."""

    command_id: str
    action: str
    scope: str
    issuer: str
    key_id: str
    ts_ns: int
    time: str
    topic: str
    compaction_key: str
    audited: bool
