"""Contracts of the operator API (``levibot api``): request bodies and responses, as pydantic models (FastAPI
builds the OpenAPI schema, ``docs/openapi.json``, from them). Field units as in ``schemas.events``: quantities in
base units, prices and money in quote currency, ``ts_ns`` integer nanoseconds UTC with ``time`` its ISO-8601 text.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import NAME_PATTERN, SCOPE_PATTERN

__all__ = [
    "ErrorOut",
    "Page",
    "OrderOut",
    "FillOut",
    "RiskDecisionOut",
    "SignalOut",
    "AuditOut",
    "PositionOut",
    "StatusOut",
    "ControlStateOut",
    "WhoAmIOut",
    "ModeRequest",
    "SetLimitRequest",
    "StrategyRequest",
    "ControlAccepted",
    "HealthOut",
    "LiveOut",
    "ModelPinRequest",
    "SignalLifecycleOut",
    "KillSwitchOut",
    "EquityPointOut",
    "EquityOut",
    "LimitOut",
    "RiskLimitsOut",
    "RiskOut",
    "ModelOut",
    "ModelsOut",
    "CalibrationPointOut",
    "CalibrationOut",
    "DriftAlertOut",
    "DriftOut",
]

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
    next_cursor: str | None = None


class OrderOut(_Out):
    order_id: str
    parent_id: str | None = None
    strategy: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    order_type: Literal["market", "limit"]
    limit_price: float | None = None
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
    strategy: str | None = None
    side: Literal["buy", "sell"] | None = None
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
    stop: float | None = None
    leverage: float | None = None
    ref_id: str | None = None
    close_fraction: float | None = None
    trust: float
    ts_ns: int
    time: str


class SignalLifecycleOut(_Out):
    """One signal from its first message on: every version of it (edits) and of the follow-ups that point at it
    (``ref_id``: update, cancel, close), oldest first; ``state`` the kind of the newest."""

    id: str
    state: str
    count: int
    events: list[SignalOut]


class AuditOut(_Out):
    id: str
    actor: str
    action: str
    scope: str
    result: Literal["applied", "refused", "denied", "error"]
    command_id: str | None = None
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
    pinned_model: str | None = None
    counts: dict[str, int] = {}
    read_at: str = ""


class KillSwitchOut(_Out):
    """Whether the account may trade: ``state`` is the stricter of the operators' mode of the account (the signed
    control topic) and the risk gate's drawdown kill switch as the newest stored risk decision shows it (``gate``;
    ``unknown`` without decisions)."""

    account: str
    state: Literal["normal", "reduce_only", "halted", "unknown"]
    operator_mode: Literal["normal", "reduce_only", "halted", "unknown"]
    gate: Literal["normal", "reduce_only", "halted", "unknown"]
    gate_as_of: str | None = None
    drawdown: float | None = Field(None, description="Drawdown of the newest decision, fraction of peak equity.")
    max_drawdown: float | None = Field(None, description="The gate's max_drawdown limit, fraction.")


class StatusOut(_Out):
    service: str
    version: str
    time: str
    database: bool
    schema_version: int
    last_events: dict[str, str | None] = Field(description="Latest event time stored per table (ISO-8601).")
    lag_s: float | None = Field(
        None,
        description="Seconds between now and the latest stored order, fill or "
        "risk decision (event time; a replay of history shows its age).",
    )
    control: ControlStateOut
    kill_switch: KillSwitchOut


class WhoAmIOut(_Out):
    key_id: str
    name: str
    scopes: list[str]
    tier: str
    accounts: list[str]
    rate: str
    groups: list[str]


class LiveOut(_Out):
    status: Literal["ok"]
    version: str


class HealthOut(_Out):
    """``ok`` when PostgreSQL answers and, with shared rate limits, Redis does too."""

    status: Literal["ok", "degraded"]
    database: bool
    rate_limit_storage: Literal["memory", "redis"] = "memory"
    rate_limits: bool = True


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModeRequest(_In):
    """Body of halt, reduce-only and resume."""

    scope: str = Field(
        "account:default",
        pattern=SCOPE_PATTERN,
        max_length=128,
        description="account:<name>, symbol:<SYMBOL> or strategy:<name>.",
    )
    reason: str = Reason


class SetLimitRequest(_In):
    scope: str = Field("account:default", pattern=r"^account:[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}$", max_length=72)
    name: str = Field(..., pattern=NAME_PATTERN, max_length=64, description="A numeric RiskLimits field.")
    value: float = Field(..., ge=0, allow_inf_nan=False, description="New value (finite, >= 0).")
    reason: str = Reason


class ModelPinRequest(_In):
    """Body of the model writes: the account whose flow follows the pin, and why."""

    scope: str = Field("account:default", pattern=r"^account:[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}$", max_length=72)
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


class EquityPointOut(_Out):
    ts_ns: int
    time: str
    pnl: float = Field(description="Cash flow − fees + Σ position × close since the first stored fill, quote.")
    exposure: float = Field(description="Σ |position × close|, quote currency.")
    drawdown: float = Field(description="Peak P&L so far − P&L, quote currency.")
    equity: float = Field(description="capital + pnl, quote currency.")
    drawdown_frac: float = Field(description="Drawdown, fraction of the peak equity.")
    buy_and_hold: float = Field(
        description="The capital spread equally over the symbols marked at the first point and held, quote currency."
    )


class EquityOut(_Out):
    """P&L and equity per stored bar close (the finest resolution unless ``resolution_s``), from every stored fill
    up to each point; thinned to ``max_points`` evenly spaced points (summary figures use every point)."""

    capital: float
    resolution_s: int | None = None
    count: int = Field(description="Points before thinning.")
    pnl: float
    max_drawdown: float
    max_drawdown_frac: float
    fees: float
    symbols: list[str]
    truncated: bool = Field(
        description="True when more fills exist than the API reads (LEVIBOT_API_MAX_FILLS): the series stops short."
    )
    points: list[EquityPointOut]


class LimitOut(_Out):
    value: float
    limit: float | None = None
    utilisation: float | None = Field(None, description="value / limit.")
    breached: bool


class RiskLimitsOut(_Out):
    portfolio_var: LimitOut
    portfolio_cvar: LimitOut
    strategies: dict[str, LimitOut]


class RiskOut(_Out):
    """The book's one-period risk, recomputed from the stored fills (positions, per strategy by each fill's order)
    and bar closes (the return window): losses positive in quote currency, ``*_frac`` of equity (the newest stored
    decision's, else the capital), against the gate's limits (defaults with the control topic's overrides)."""

    account: str
    alpha: float
    equity: float
    window: int = Field(description="Return rows used (bar closes of every held symbol).")
    resolution_s: int | None = None
    exposure: dict[str, float]
    portfolio_var: float
    portfolio_cvar: float
    historical_var: float
    portfolio_var_frac: float
    portfolio_cvar_frac: float
    historical_var_frac: float
    component_var: dict[str, float] = Field(description="Euler components per symbol; they sum to portfolio_var.")
    component_var_by_strategy: dict[str, float] = Field(description="Euler components per strategy.")
    limits: RiskLimitsOut
    breaches: list[str]
    limit_overrides: dict[str, float] = Field(description="Limits an operator set on the control topic.")
    last_decision: dict[str, Any] | None = Field(
        None, description="The gate's own VaR/CVaR and portfolio at the newest stored decision."
    )


class ModelOut(BaseModel):
    """One registry version's metadata (``connectors/model_registry.py``); other keys of the metadata pass through."""

    model_config = ConfigDict(extra="allow")

    version: str
    status: str
    feature_set: str = ""
    created_at: str = ""
    metrics: dict[str, Any] = {}


class ModelsOut(_Out):
    champion: str | None = None
    pinned: str | None = Field(None, description="The model an operator pinned on the control topic.")
    count: int
    versions: list[ModelOut]


class CalibrationPointOut(_Out):
    raw: float
    calibrated: float


class CalibrationOut(_Out):
    """The model's calibrator (raw P(up) -> calibrated) on a grid of raw probabilities, with its cross-validated
    metrics before and after calibration (log loss, Brier, AUC, ECE)."""

    version: str
    method: str
    curve: list[CalibrationPointOut]
    cv_raw: dict[str, Any] = {}
    cv_calibrated: dict[str, Any] = {}
    holdout: dict[str, Any] = {}


class DriftAlertOut(_Out):
    id: str
    severity: str
    kind: str
    message: str
    labels: dict[str, str]
    dedupe_key: str
    ts_ns: int
    time: str


class DriftOut(_Out):
    """Drift alerts (ADWIN on the models' errors, PSI of the features) from the tail of the alerts topic, newest
    first; ``available`` false when the topic cannot be read."""

    available: bool
    error: str = ""
    count: int
    items: list[DriftAlertOut]
