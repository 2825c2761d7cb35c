"""The decision path and the execution boundary: intents, risk decisions with their portfolio snapshot, orders,
cancel requests, execution reports and fills."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from schemas.time import TS_MAX_NS, TS_MIN_NS

from .base import (
    _INF,
    _SEEN_SYMBOLS,
    Event,
    Id,
    Name,
    PositiveQuantity,
    Price,
    Probability,
    Quantity,
    SchemaVersion1,
    ShortText,
    Side,
    Symbol,
    SymbolKey,
    Timestamp,
    _finite,
    _nonneg,
    _pos,
    _Record,
    _symbol,
    _ts,
    _unit,
    _version,
)


class PortfolioSnapshot(_Record, frozen=True, kw_only=True):
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
        # every check below in one test (the common case: all pass); on a failure, the checks one by one for the
        # first failing one's message
        if (
            -_INF < self.equity < _INF
            and 0.0 <= self.gross_exposure < _INF
            and -_INF < self.net_exposure < _INF
            and 0.0 <= self.drawdown <= 1.0
            and -_INF < self.var < _INF
            and -_INF < self.cvar < _INF
        ):
            for q in self.positions.values():
                if not -_INF < q < _INF:
                    break
            else:
                return
        _finite("equity", self.equity)
        _nonneg("gross_exposure", self.gross_exposure)
        _finite("net_exposure", self.net_exposure)
        _unit("drawdown", self.drawdown)
        _finite("var", self.var)
        _finite("cvar", self.cvar)
        for sym, q in self.positions.items():
            _finite(f"positions[{sym}]", q)


class RiskDecision(Event, tag="risk_decision", frozen=True, kw_only=True):
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
        if not (  # the checks below in one test (the common case), one by one only for a failure's message
            TS_MIN_NS <= self.ts < TS_MAX_NS
            and self.symbol in _SEEN_SYMBOLS
            and 1 <= self.schema_version <= 1
            and 0.0 <= self.requested_qty < _INF
            and 0.0 <= self.approved_qty < _INF
            and -_INF < self.var < _INF
            and -_INF < self.cvar < _INF
        ):
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


class Order(Event, tag="order", frozen=True, kw_only=True):
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
        if not (  # the checks below in one test (the common case), one by one only for a failure's message
            0.0 < self.qty < _INF
            and TS_MIN_NS <= self.ts < TS_MAX_NS
            and self.symbol in _SEEN_SYMBOLS
            and 1 <= self.schema_version <= 1
        ):
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


class Fill(Event, tag="fill", frozen=True, kw_only=True):
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
        if not (  # the checks below in one test (the common case), one by one only for a failure's message
            0.0 < self.price < _INF
            and 0.0 < self.qty < _INF
            and -_INF < self.fee < _INF
            and -_INF < self.slippage_bps < _INF
            and TS_MIN_NS <= self.ts < TS_MAX_NS
            and self.symbol in _SEEN_SYMBOLS
            and 1 <= self.schema_version <= 1
        ):
            _pos("price", self.price)
            _pos("qty", self.qty)
            _finite("fee", self.fee)
            _finite("slippage_bps", self.slippage_bps)
            _ts(self.ts)
            _symbol(self.symbol)
            _version(1, self.schema_version)


# ---------------------------------------------------------------------------------------------------------------
# Decision path between stages, execution boundary, control plane


class Intent(Event, tag="intent", frozen=True, kw_only=True):
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


class ExecutionReport(Event, tag="execution_report", frozen=True, kw_only=True):
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
        if not (TS_MIN_NS <= self.ts < TS_MAX_NS and 1 <= self.schema_version <= 1):
            _ts(self.ts)
            _version(1, self.schema_version)
        if not (
            0.0 <= self.order_qty < _INF
            and 0.0 <= self.last_qty < _INF
            and 0.0 <= self.cum_qty < _INF
            and 0.0 <= self.leaves_qty < _INF
        ):
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
        if self.symbol not in _SEEN_SYMBOLS:
            _symbol(self.symbol)
        if self.kind in ("fill", "partial_fill"):
            if self.last_price is None or not self.last_qty > 0.0:
                raise ValueError(f"a {self.kind!r} report needs last_price and last_qty > 0")
            if not 0.0 < self.last_price < _INF:
                _pos("last_price", self.last_price)

    @property
    def signed_qty(self) -> float:
        """This execution's quantity with the side's sign (base units; + buy, - sell)."""
        return self.last_qty if self.side == "buy" else -self.last_qty


class CancelRequest(Event, tag="cancel_request", frozen=True, kw_only=True):
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
