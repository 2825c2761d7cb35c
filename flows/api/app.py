"""The operator API as a FastAPI app: ``create_app()``; ``levibot api`` serves it on uvicorn (``flows/cli_api.py``).

Routes (each ``/v1`` route needs a key; scope and tier group in brackets):

- ``GET /livez`` (none): the process answers; ``GET /readyz`` = ``GET /healthz`` (none): PostgreSQL and, with shared
  rate limits, Redis answer (readiness probes);
- ``GET /v1/status`` [read, status], ``GET /v1/whoami`` [read, status];
- ``GET /v1/positions`` [read, book], ``GET /v1/orders`` [read, book], ``GET /v1/fills`` [read, book];
- ``GET /v1/equity`` [read, book]: P&L, equity, drawdown and buy-and-hold per bar close;
- ``GET /v1/risk-decisions`` [read, risk], ``GET /v1/risk`` [read, risk]: VaR/CVaR and their components vs limits;
- ``GET /v1/signals`` [read, signals], ``GET /v1/audit`` [read, audit];
- ``GET /v1/models``, ``/v1/models/champion``, ``/v1/models/{version}/calibration``, ``/v1/models/drift``
  [read, models];
- ``POST /v1/control/halt|reduce-only|resume`` [trade, control], ``POST /v1/control/strategies/{name}/enable|disable``
  [trade, control], ``POST /v1/control/limits`` [admin, control]: signed commands on the ``control`` topic.

Guide: ``docs/api.md``; schema: ``docs/openapi.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from connectors.kafka.sink import DeliveryError
from flows.api.context import ApiContext
from flows.api.middleware import GuardMiddleware
from flows.api.security import ApiError, client_address, context, request_parameters, require
from flows.cli_control import new_command_id
from operators.api.access import Principal
from operators.api.analytics import gate_kill_switch, pnl_series, return_matrix, risk_view
from operators.api.commands import Rejected, build_command
from operators.api.query import DEFAULT_LIMIT, MAX_LIMIT, ListFilter, check_name, time_ns
from operators.control.signing import parse_key, sign
from operators.risk import RiskLimits
from schemas.api import (
    AuditOut,
    CalibrationOut,
    ControlAccepted,
    ControlStateOut,
    DriftOut,
    EquityOut,
    ErrorOut,
    FillOut,
    HealthOut,
    KillSwitchOut,
    LiveOut,
    ModelOut,
    ModelPinRequest,
    ModelsOut,
    ModeRequest,
    OrderOut,
    Page,
    PositionOut,
    RiskDecisionOut,
    RiskOut,
    SetLimitRequest,
    SignalLifecycleOut,
    SignalOut,
    StatusOut,
    StrategyRequest,
    WhoAmIOut,
)
from schemas.events import NAME_PATTERN, SCOPE_PATTERN, SYMBOL_PATTERN
from schemas.time import iso

__all__ = ["create_app", "API_VERSION"]

log = logging.getLogger("levibot.api")
API_VERSION = "1.0.0"

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "No, a malformed, unknown, revoked or expired API key"),
        (403, "The key's scope or tier does not include this endpoint"),
        (413, "Request body too large"),
        (414, "Query string too long"),
        (422, "Invalid parameters"),
        (429, "Over the quota: retry after Retry-After seconds"),
        (503, "PostgreSQL, Kafka or the shared rate-limit store (Redis) unavailable"),
    )
}

_Symbol = Query(None, pattern=SYMBOL_PATTERN, max_length=33, description="Instrument symbol, e.g. BTC-USD.")
_Since = Query(None, description="Only rows at or after this time (RFC 3339; UTC when no offset).")
_Until = Query(None, description="Only rows before this time (RFC 3339; UTC when no offset).")
_Cursor = Query(None, max_length=512, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of the previous page.")
_Limit = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page.")


def _name_query(what: str) -> Any:
    return Query(None, pattern=NAME_PATTERN, max_length=64, description=what)


def _invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid_request", detail)


def _page(
    ctx: ApiContext,
    resource: str,
    *,
    symbol: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
    equals: dict[str, str | None],
) -> dict[str, Any]:
    try:
        f = ListFilter.build(
            symbol=symbol,
            since_ns=time_ns(since, "since"),
            until_ns=time_ns(until, "until"),
            cursor=cursor,
            limit=limit,
            equals=equals,
        )
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    items, nxt = _db(lambda: ctx.db.list_rows(resource, f))
    return {"items": items, "count": len(items), "next_cursor": nxt}


def _db(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (psycopg.OperationalError, PoolTimeout) as exc:
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ApiError(503, "database_unavailable", "PostgreSQL is not reachable") from None


def _command(
    ctx: ApiContext,
    request: Request,
    p: Principal,
    action: str,
    scope: str,
    reason: str,
    params: dict[str, Any],
    body: dict[str, Any],
) -> ControlAccepted:
    route = getattr(request.state, "route_name", "control")
    rid = request.state.request_id
    audit_params = {"body": body, **request_parameters(request)}
    base = dict(
        request_id=rid, actor=p.actor, route=route, parameters=audit_params, client=client_address(request), scope=scope
    )
    s = ctx.settings
    try:
        key = parse_key(s.control_key) if s.control_key.strip() else None
    except ValueError:
        key = None
    if key is None:
        ctx.audit(result="error", reason="control_unavailable", detail="the API holds no usable signing key", **base)
        raise ApiError(
            503, "control_unavailable", "control commands are not configured on this API (LEVIBOT_CONTROL_KEY)"
        )
    try:
        cmd = build_command(
            p, action, scope, reason, params, ts=ctx.clock_ns(), command_id=new_command_id(), key_id=s.control_key_id
        )
    except Rejected as r:
        ctx.audit(result="refused", reason=r.reason, detail=r.detail, **base)
        raise ApiError(422, r.reason, r.detail) from None
    signed = sign(cmd, key)
    try:
        sent = ctx.publisher().publish(signed)
    except (RuntimeError, DeliveryError, OSError) as exc:
        ctx.audit(
            result="error",
            reason="control_unavailable",
            detail=f"not published: {type(exc).__name__}",
            command_id=signed.id,
            **base,
        )
        raise ApiError(503, "control_unavailable", "the control topic did not take the command") from None
    ctx.invalidate_control()
    topic = s.topic("control")
    audited = ctx.audit(
        result="applied", reason="published", detail=f"signed command on {topic}", command_id=sent.id, **base
    )
    return ControlAccepted(
        command_id=sent.id,
        action=sent.action,
        scope=sent.scope,
        issuer=sent.issuer,
        key_id=sent.key_id,
        ts_ns=sent.ts,
        time=iso(sent.ts),
        topic=topic,
        compaction_key=sent.compaction_key,
        audited=audited,
    )


KillState = Literal["normal", "reduce_only", "halted", "unknown"]  # KillSwitchOut's states
_MODES: tuple[KillState, ...] = ("normal", "reduce_only", "halted")


def _limits(ctx: ApiContext, control: dict[str, Any]) -> tuple[RiskLimits, dict[str, float]]:
    """The gate's limits as the API knows them: ``RiskLimits`` defaults with the control topic's overrides of the
    account."""
    raw = (control.get("limits") or {}).get(f"account:{ctx.api.account}") or {}
    over = {k: float(v["value"]) for k, v in raw.items() if isinstance(v, dict) and "value" in v}
    names = {f.name for f in dataclasses.fields(RiskLimits)}
    # keyword arguments of several field types; a value that does not fit is refused by RiskLimits (defaults then)
    known: dict[str, Any] = {k: v for k, v in over.items() if k in names}
    try:
        lim = RiskLimits(**known)
    except (TypeError, ValueError):
        lim = RiskLimits()
    return lim, over


def _kill_switch(ctx: ApiContext, control: dict[str, Any], decisions: list[dict[str, Any]]) -> KillSwitchOut:
    lim, _ = _limits(ctx, control)
    gate = gate_kill_switch(
        ((d["ts_ns"], d["reasons"], (d["portfolio"] or {}).get("drawdown")) for d in decisions), lim.max_drawdown
    )
    if control.get("available"):
        op = (control.get("modes") or {}).get(f"account:{ctx.api.account}", {}).get("mode", "normal")
        op = op if op in _MODES else "unknown"
    else:
        op = "unknown"
    known = [m for m in (op, gate["state"]) if m in _MODES]
    state: KillState = max(known, key=_MODES.index) if known else "unknown"  # one of _MODES, or unknown
    if "unknown" in (op, gate["state"]) and state == "normal":
        state = "unknown"
    return KillSwitchOut(
        account=ctx.api.account,
        state=state,
        operator_mode=op,
        gate=gate["state"],
        gate_as_of=iso(gate["as_of_ns"]) if gate["as_of_ns"] is not None else None,
        drawdown=gate["drawdown"],
        max_drawdown=gate["max_drawdown"],
    )


def compute_equity(
    ctx: ApiContext,
    symbol: str | None = None,
    s_ns: int | None = None,
    u_ns: int | None = None,
    resolution_s: int | None = None,
    max_points: int = 1000,
) -> dict[str, Any]:
    """The /v1/equity answer (EquityOut fields)."""
    fills, truncated = _db(lambda: ctx.db.fills_until(u_ns, symbol, ctx.api.max_fills))
    syms = sorted({f[1] for f in fills} | ({symbol} if symbol else set()))
    res = resolution_s or (_db(lambda: ctx.db.bar_resolution(syms)) if syms else None)
    marks = _db(lambda: ctx.db.closes(syms, res, since_ns=s_ns, until_ns=u_ns, last=50_000)) if res else []
    if truncated and fills:
        marks = [m for m in marks if m[0] <= fills[-1][0]]
    out = pnl_series(fills, marks, capital=ctx.api.capital, max_points=max_points)
    for pt in out["points"]:
        pt["time"] = iso(pt["ts_ns"])
    return dict(resolution_s=res, truncated=truncated, **out)


def compute_risk(
    ctx: ApiContext, window: int = 500, resolution_s: int | None = None, alpha: float | None = None
) -> dict[str, Any]:
    """The /v1/risk answer (RiskOut fields): the book's risk recomputed from the stored fills and closes."""
    control = ctx.control_state()
    lim, over = _limits(ctx, control)
    qty, by_qty = _db(ctx.db.holdings)
    syms = sorted(s for s, q in qty.items() if abs(q) > 1e-12)
    res = resolution_s or (_db(lambda: ctx.db.bar_resolution(syms)) if syms else None)
    marks = _db(lambda: ctx.db.closes(syms, res, last=window + 1)) if res and syms else []
    last = {s: c for _, s, c in marks}
    missing = [s for s in syms if s not in last]
    if missing:  # no bar: mark at the last fill price
        for r in _db(lambda: ctx.db.positions(None)):
            if r["symbol"] in missing:
                last[r["symbol"]] = r["last_fill_price"]
    expo = {s: qty[s] * last[s] for s in syms}
    by = {k: {s: q * last[s] for s, q in v.items() if s in last} for k, v in by_qty.items()}
    decisions = _db(lambda: ctx.db.latest_decisions(1))
    eq = (decisions[0]["portfolio"] or {}).get("equity") if decisions else None
    equity_value = float(eq) if isinstance(eq, (int, float)) and eq > 0 else ctx.api.capital
    view = risk_view(
        expo,
        by,
        return_matrix(marks, syms, window),
        syms,
        equity=equity_value,
        alpha=alpha or lim.alpha,
        max_var=lim.max_portfolio_var,
        max_cvar=lim.max_portfolio_cvar,
        strategy_budgets=dict(lim.strategy_var_budgets),
        default_strategy_budget=lim.strategy_var_budget,
    )
    last_d = None
    if decisions:
        d = decisions[0]
        last_d = {
            "time": iso(d["ts_ns"]),
            "action": d["action"],
            "var": d["var"],
            "cvar": d["cvar"],
            "reasons": list(d["reasons"]),
            "portfolio": d["portfolio"],
        }
    return dict(account=ctx.api.account, resolution_s=res, limit_overrides=over, last_decision=last_d, **view)


def create_app(
    ctx: ApiContext | None = None, *, context_factory: Callable[[], ApiContext] | None = None, api_settings: Any = None
) -> FastAPI:
    """The app. ``ctx`` (or ``context_factory``, called at start-up) supplies the services; without either the
    app builds its context from the environment when it starts. ``api_settings`` (default: ``ctx.api`` or the
    environment) sets the request size limits. Building the app opens nothing (the OpenAPI export needs no
    service)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = ctx or (context_factory() if context_factory else _context_from_env())
        c.start()
        app.state.ctx = c
        try:
            yield
        finally:
            c.close()

    app = FastAPI(
        title="LeviBot operator API",
        version=API_VERSION,
        lifespan=lifespan,
        description="State and control of a LeviBot deployment. Every /v1 route needs an API key "
        "(X-API-Key or Authorization: Bearer); writes go through the signed control topic. "
        "Guide: docs/api.md.",
        responses={},
    )
    if ctx is not None:
        app.state.ctx = ctx

    def _audit_refused(request: Request, reason: str, detail: str) -> None:
        c: ApiContext | None = getattr(request.app.state, "ctx", None)
        p = getattr(request.state, "principal", None)
        if c is None or request.method == "GET" or p is None:
            return
        c.audit(
            request_id=request.state.request_id,
            actor=p.actor,
            route=getattr(request.state, "route_name", "unknown"),
            result="refused",
            reason=reason,
            detail=detail,
            parameters=request_parameters(request),
            client=client_address(request),
        )

    def on_guard_refusal(scope: dict[str, Any], reason: str, status: int, detail: str) -> None:
        c: ApiContext | None = getattr(app.state, "ctx", None)
        if c is None:
            return
        client = scope.get("client") or ("", 0)
        c.audit(
            request_id=scope["state"]["request_id"],
            actor="anonymous",
            route="guard",
            result="denied",
            reason=reason,
            detail=detail,
            parameters={"path": scope.get("path", "")[:256]},
            client=client[0],
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.reason, "detail": exc.detail, "request_id": request.state.request_id},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": reason, "detail": str(exc.detail), "request_id": request.state.request_id},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # never echo the input: it may hold what a client should not have sent
        errors = [
            {
                "loc": [str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", ""))[:200],
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()[:20]
        ]
        from anyio import to_thread

        await to_thread.run_sync(
            _audit_refused,
            request,
            "invalid_request",
            "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)[:1000],
        )
        return JSONResponse(
            {"error": "invalid_request", "detail": errors, "request_id": request.state.request_id}, status_code=422
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled %s on %s %s (%s)",
            type(exc).__name__,
            request.method,
            request.url.path,
            getattr(request.state, "request_id", ""),
        )
        return JSONResponse(
            {"error": "internal", "detail": "internal error", "request_id": getattr(request.state, "request_id", "")},
            status_code=500,
        )

    read_status = require("read", "status")
    read_book = require("read", "book")

    @app.get("/livez", response_model=LiveOut, tags=["service"])
    def livez() -> Any:
        """Liveness: the process answers (nothing else is checked, so a database outage does not restart it)."""
        return LiveOut(status="ok", version=API_VERSION)

    @app.get("/readyz", response_model=HealthOut, tags=["service"], responses={503: {"model": HealthOut}})
    def readyz(request: Request) -> Any:
        """Readiness (the same checks as /healthz): route traffic here only when PostgreSQL and, with shared
        rate limits, Redis answer."""
        return healthz(request)

    @app.get("/healthz", response_model=HealthOut, tags=["service"], responses={503: {"model": HealthOut}})
    def healthz(request: Request) -> Any:
        """Readiness: whether PostgreSQL and, with shared rate limits, Redis answer (no key needed; nothing else
        is revealed). 503 when either does not."""
        c: ApiContext = request.app.state.ctx
        db = c.db.ping()
        shared = getattr(c.limiter, "shared", False)
        rl = c.limiter.check() if shared else True
        ok = db and rl
        return JSONResponse(
            {
                "status": "ok" if ok else "degraded",
                "database": db,
                "rate_limit_storage": "redis" if shared else "memory",
                "rate_limits": rl,
            },
            status_code=200 if ok else 503,
        )

    @app.get("/v1/status", response_model=StatusOut, responses=_ERRORS, tags=["read"], name="status")
    async def status(ctx: ApiContext = Depends(context), p: Principal = Depends(read_status)) -> Any:
        """Service version, database and schema version, the latest stored event per table, the lag between the
        latest order/fill/decision and now, the signed control state (modes per scope, limit overrides, disabled
        strategies, the model pin) and the account's kill switch (the operators' mode and the risk gate's
        drawdown switch as the newest decision shows it)."""

        def read() -> tuple[bool, dict[str, int | None], int, list[dict[str, Any]]]:
            ok = ctx.db.ping()
            if not ok:
                return False, {}, 0, []
            return (
                True,
                _db(ctx.db.last_event_times),
                _db(ctx.db.schema_version),
                _db(lambda: ctx.db.latest_decisions(1)),
            )

        # async: answered from the process's cached reads without a worker thread (refreshes run in one)
        db_ok, last, schema_version, decisions = await ctx.cached_read_async("status", read)
        recent = [v for k, v in last.items() if k in ("orders", "fills", "risk_decisions") and v is not None]
        now = ctx.clock_ns()
        control = await ctx.control_state_async()
        return StatusOut(
            service="levibot-api",
            version=API_VERSION,
            time=iso(now),
            database=db_ok,
            schema_version=schema_version,
            last_events={k: (iso(v) if v is not None else None) for k, v in last.items()},
            lag_s=(now - max(recent)) / 1e9 if recent else None,
            control=ControlStateOut(**control),
            kill_switch=_kill_switch(ctx, control, decisions),
        )

    @app.get("/v1/whoami", response_model=WhoAmIOut, responses=_ERRORS, tags=["read"], name="whoami")
    def whoami(ctx: ApiContext = Depends(context), p: Principal = Depends(read_status)) -> Any:
        """The calling key: id, name, scopes, tier, accounts, quota and the route groups its tier includes."""
        tier = ctx.tier(p.tier)
        return WhoAmIOut(
            key_id=p.key_id,
            name=p.name,
            scopes=list(p.scopes),
            tier=p.tier,
            accounts=list(p.accounts),
            rate=p.rate or (tier.rate if tier else ""),
            groups=sorted(tier.groups) if tier else [],
        )

    @app.get("/v1/positions", response_model=list[PositionOut], responses=_ERRORS, tags=["read"], name="positions")
    async def positions(
        symbol: str | None = _Symbol, ctx: ApiContext = Depends(context), p: Principal = Depends(read_book)
    ) -> Any:
        """Net position and P&L per symbol from the stored fills (see PositionOut)."""
        return await ctx.cached_read_async(("positions", symbol), lambda: _db(lambda: ctx.db.positions(symbol)))

    @app.get("/v1/orders", response_model=Page[OrderOut], responses=_ERRORS, tags=["read"], name="orders")
    def orders(
        symbol: str | None = _Symbol,
        strategy: str | None = _name_query("Strategy name."),
        side: str | None = Query(None, pattern="^(buy|sell)$"),
        parent_id: str | None = Query(None, pattern=r"^[!-~]{1,128}$", max_length=128),
        since: datetime | None = _Since,
        until: datetime | None = _Until,
        cursor: str | None = _Cursor,
        limit: int = _Limit,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(read_book),
    ) -> Any:
        """Orders sent to the venue, newest first."""
        return _page(
            ctx,
            "orders",
            symbol=symbol,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            equals={"strategy": strategy, "side": side, "parent_id": parent_id},
        )

    @app.get("/v1/fills", response_model=Page[FillOut], responses=_ERRORS, tags=["read"], name="fills")
    def fills(
        symbol: str | None = _Symbol,
        order_id: str | None = Query(None, pattern=r"^[!-~]{1,128}$", max_length=128),
        side: str | None = Query(None, pattern="^(buy|sell)$"),
        since: datetime | None = _Since,
        until: datetime | None = _Until,
        cursor: str | None = _Cursor,
        limit: int = _Limit,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(read_book),
    ) -> Any:
        """Fills reported by the venue, newest first."""
        return _page(
            ctx,
            "fills",
            symbol=symbol,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            equals={"order_id": order_id, "side": side},
        )

    @app.get("/v1/equity", response_model=EquityOut, responses=_ERRORS, tags=["read"], name="equity")
    def equity(
        symbol: str | None = _Symbol,
        since: datetime | None = _Since,
        until: datetime | None = _Until,
        resolution_s: int | None = Query(
            None, ge=1, le=604_800, description="Bar resolution, seconds (default: the finest stored)."
        ),
        max_points: int = Query(1000, ge=2, le=5000, description="Most points answered (evenly thinned)."),
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(read_book),
    ) -> Any:
        """P&L and equity (capital + P&L) per bar close, with drawdown, exposure and buy-and-hold of the symbols,
        from every stored fill up to each point (so ``since`` only trims the points)."""
        try:
            s_ns, u_ns = time_ns(since, "since"), time_ns(until, "until")
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        if s_ns is not None and u_ns is not None and s_ns >= u_ns:
            raise _invalid("since must be before until")
        return EquityOut(**compute_equity(ctx, symbol, s_ns, u_ns, resolution_s, max_points))

    @app.get(
        "/v1/risk-decisions",
        response_model=Page[RiskDecisionOut],
        responses=_ERRORS,
        tags=["read"],
        name="risk_decisions",
    )
    def risk_decisions(
        symbol: str | None = _Symbol,
        strategy: str | None = _name_query("Strategy name."),
        action: str | None = Query(None, pattern="^(approved|resized|rejected)$"),
        since: datetime | None = _Since,
        until: datetime | None = _Until,
        cursor: str | None = _Cursor,
        limit: int = _Limit,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(require("read", "risk")),
    ) -> Any:
        """The risk gate's decision on every intent (approved / resized / rejected, reasons, VaR/CVaR), newest
        first."""
        return _page(
            ctx,
            "risk_decisions",
            symbol=symbol,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            equals={"strategy": strategy, "action": action},
        )

    @app.get("/v1/risk", response_model=RiskOut, responses=_ERRORS, tags=["read"], name="risk")
    def risk(
        window: int = Query(500, ge=2, le=5000, description="Return rows (bar closes) in the window."),
        resolution_s: int | None = Query(
            None, ge=1, le=604_800, description="Bar resolution, seconds (default: the finest stored)."
        ),
        alpha: float | None = Query(None, gt=0.5, lt=1.0, description="Confidence (default: the gate's)."),
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(require("read", "risk")),
    ) -> Any:
        """The book's VaR and CVaR (Gaussian and historical) with the Euler components per symbol and per
        strategy, against the gate's limits: recomputed from the stored fills and bar closes."""
        return RiskOut(**compute_risk(ctx, window, resolution_s, alpha))

    @app.get("/v1/signals", response_model=Page[SignalOut], responses=_ERRORS, tags=["read"], name="signals")
    def signals(
        symbol: str | None = _Symbol,
        kind: str | None = Query(None, pattern="^(open|update|cancel|close)$"),
        source_chat: str | None = Query(None, max_length=128, pattern=r"^[!-~]{1,128}$"),
        since: datetime | None = _Since,
        until: datetime | None = _Until,
        cursor: str | None = _Cursor,
        limit: int = _Limit,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(require("read", "signals")),
    ) -> Any:
        """Parsed trading signals (every version: open, update, cancel, close), newest first."""
        return _page(
            ctx,
            "signals",
            symbol=symbol,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            equals={"kind": kind, "source_chat": source_chat},
        )

    @app.get(
        "/v1/signals/{signal_id}",
        response_model=SignalLifecycleOut,
        responses={**_ERRORS, 404: {"model": ErrorOut}},
        tags=["read"],
        name="signal",
    )
    def signal(
        signal_id: str = Path(..., pattern=r"^[!-~]{1,128}$", max_length=128, description="Signal id."),
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(require("read", "signals")),
    ) -> Any:
        """The lifecycle of one signal: its versions and its follow-ups (update, cancel, close), oldest first."""
        rows = _db(lambda: ctx.db.signal_lifecycle(signal_id))
        if not rows:
            raise ApiError(404, "not_found", "no such signal")
        return SignalLifecycleOut(id=signal_id, state=rows[-1]["kind"], count=len(rows), events=rows)

    read_models = require("read", "models")
    _Version = Path(
        ...,
        pattern=r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$",
        max_length=40,
        description="A registry version (<UTC stamp>-<hash8>).",
    )

    def _meta_list(ctx: ApiContext) -> tuple[Any, list[dict[str, Any]]]:
        try:
            reg = ctx.registry()
            return reg, reg.versions()
        except (OSError, ValueError) as exc:
            log.warning("model registry unreadable: %s", type(exc).__name__)
            raise ApiError(503, "registry_unavailable", "the model registry cannot be read") from None

    @app.get("/v1/models", response_model=ModelsOut, responses=_ERRORS, tags=["read"], name="models")
    def models(
        status: str | None = Query(None, pattern="^(champion|challenger|retired)$"),
        limit: int = Query(100, ge=1, le=1000, description="Newest versions answered."),
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(read_models),
    ) -> Any:
        """The registry's versions, newest first: metadata, CV and holdout metrics, status (champion, challenger,
        retired) and promotion note; the champion and the model an operator pinned."""
        from operators.api.models import model_row

        reg, metas = _meta_list(ctx)
        rows = [model_row(m) for m in reversed(metas) if status is None or m.get("status") == status][:limit]
        return ModelsOut.model_validate(  # the rows are dicts (operators.api.models.model_row)
            {
                "champion": reg.latest_champion_version(),
                "pinned": ctx.control_state().get("pinned_model"),
                "count": len(rows),
                "versions": rows,
            }
        )

    @app.get(
        "/v1/models/champion",
        response_model=ModelOut,
        responses={**_ERRORS, 404: {"model": ErrorOut}},
        tags=["read"],
        name="models.champion",
    )
    def champion(ctx: ApiContext = Depends(context), p: Principal = Depends(read_models)) -> Any:
        """The champion's metadata (404 when there is none)."""
        from operators.api.models import model_row

        reg, _ = _meta_list(ctx)
        v = reg.latest_champion_version()
        if v is None:
            raise ApiError(404, "not_found", "no champion model")
        return model_row(reg.get(v))

    @app.get("/v1/models/drift", response_model=DriftOut, responses=_ERRORS, tags=["read"], name="models.drift")
    def drift(
        symbol: str | None = _Symbol,
        limit: int = Query(100, ge=1, le=1000),
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(read_models),
    ) -> Any:
        """Model and feature drift alerts (ADWIN on errors, PSI of features) from the end of the alerts topic,
        newest first."""
        d = ctx.drift()
        items = [
            a
            for a in d["items"]
            if symbol is None or a["labels"].get("symbol") == symbol or f":{symbol}:" in a["dedupe_key"]
        ][:limit]
        return DriftOut(available=d["available"], error=d["error"], count=len(items), items=items)

    @app.get(
        "/v1/models/{version}/calibration",
        response_model=CalibrationOut,
        responses={**_ERRORS, 404: {"model": ErrorOut}},
        tags=["read"],
        name="models.calibration",
    )
    def calibration(
        version: str = _Version, ctx: ApiContext = Depends(context), p: Principal = Depends(read_models)
    ) -> Any:
        """The version's calibrator (raw P(up) -> calibrated, 21 points) and its CV metrics before and after
        calibration."""
        try:
            return ctx.calibration(version)
        except KeyError:
            raise ApiError(404, "not_found", "no such model version") from None
        except (OSError, RuntimeError, TypeError) as exc:
            log.warning("model %s unreadable: %s", version, type(exc).__name__)
            raise ApiError(503, "registry_unavailable", "the model cannot be loaded") from None

    admin_control = require("admin", "control")

    @app.post(
        "/v1/models/{version}/pin",
        response_model=ControlAccepted,
        status_code=202,
        responses={**_ERRORS, 404: {"model": ErrorOut}},
        tags=["control"],
        name="models.pin",
    )
    def pin_model(
        request: Request,
        body: ModelPinRequest,
        version: str = _Version,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(admin_control),
    ) -> Any:
        """Promote for trading: the flow scores with this registered version instead of the registry's champion
        (a signed ``pin_model`` command; the version must be in the registry)."""
        _, metas = _meta_list(ctx)
        if version not in {m["version"] for m in metas}:
            raise ApiError(404, "not_found", "no such model version")
        return _command(
            ctx,
            request,
            p,
            "pin_model",
            body.scope,
            body.reason,
            {"version": version},
            {**body.model_dump(), "version": version},
        )

    @app.post(
        "/v1/models/unpin",
        response_model=ControlAccepted,
        status_code=202,
        responses=_ERRORS,
        tags=["control"],
        name="models.unpin",
    )
    def unpin_model(
        request: Request,
        body: ModelPinRequest,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(admin_control),
    ) -> Any:
        """Follow the registry's champion again (a signed ``unpin_model`` command)."""
        return _command(ctx, request, p, "unpin_model", body.scope, body.reason, {}, body.model_dump())

    @app.post(
        "/v1/models/rollback",
        response_model=ControlAccepted,
        status_code=202,
        responses={**_ERRORS, 404: {"model": ErrorOut}},
        tags=["control"],
        name="models.rollback",
    )
    def rollback_model(
        request: Request,
        body: ModelPinRequest,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(admin_control),
    ) -> Any:
        """Roll back: pin the champion before the current one (the newest retired version that was promoted;
        404 when there is none)."""
        reg, metas = _meta_list(ctx)
        current = ctx.control_state().get("pinned_model") or reg.latest_champion_version()
        before = sorted(
            (m for m in metas if m.get("promoted_at") and m["version"] != current and m.get("status") == "retired"),
            key=lambda m: m["promoted_at"],
        )
        if not before:
            raise ApiError(404, "not_found", "no earlier champion to roll back to")
        version = before[-1]["version"]
        return _command(
            ctx,
            request,
            p,
            "pin_model",
            body.scope,
            body.reason or f"roll back from {current}",
            {"version": version},
            {**body.model_dump(), "version": version},
        )

    @app.get("/v1/audit", response_model=Page[AuditOut], responses=_ERRORS, tags=["read"], name="audit")
    def audit(
        actor: str | None = _name_query("api:<key id>, an operator, flow, anonymous."),
        action: str | None = _name_query("Action or api.<route>."),
        scope: str | None = Query(None, pattern=SCOPE_PATTERN, max_length=128),
        result: str | None = Query(None, pattern="^(applied|refused|denied|error)$"),
        command_id: str | None = Query(None, pattern=r"^[!-~]{1,128}$", max_length=128),
        source: str | None = _name_query("flow, cli or api."),
        since: datetime | None = _Since,
        until: datetime | None = _Until,
        cursor: str | None = _Cursor,
        limit: int = _Limit,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(require("read", "audit")),
    ) -> Any:
        """The append-only audit trail (flow, CLI and API), newest first."""
        return _page(
            ctx,
            "audit",
            symbol=None,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            equals={
                "actor": actor,
                "action": action,
                "scope": scope,
                "result": result,
                "command_id": command_id,
                "source": source,
            },
        )

    trade = require("trade", "control")

    def _mode(action: str, doc: str, name: str) -> None:
        def endpoint(
            request: Request, body: ModeRequest, ctx: ApiContext = Depends(context), p: Principal = Depends(trade)
        ) -> Any:
            return _command(ctx, request, p, action, body.scope, body.reason, {}, body.model_dump())

        endpoint.__doc__ = doc
        app.post(
            f"/v1/control/{action.replace('_', '-')}",
            response_model=ControlAccepted,
            status_code=202,
            responses=_ERRORS,
            tags=["control"],
            name=name,
        )(endpoint)

    _mode(
        "halt",
        "Halt the scope: no order at all, reducing ones included, until resume (needs a reason).",
        "control.halt",
    )
    _mode(
        "reduce_only",
        "Only orders that shrink a position in the scope, until resume (needs a reason).",
        "control.reduce_only",
    )
    _mode("resume", "Lift the halt or reduce-only of exactly this scope.", "control.resume")

    @app.post(
        "/v1/control/limits",
        response_model=ControlAccepted,
        status_code=202,
        responses=_ERRORS,
        tags=["control"],
        name="control.set_limit",
    )
    def set_limit(
        request: Request,
        body: SetLimitRequest,
        ctx: ApiContext = Depends(context),
        p: Principal = Depends(require("admin", "control")),
    ) -> Any:
        """Override one numeric risk limit of an account (RiskLimits field, e.g. max_leverage)."""
        return _command(
            ctx,
            request,
            p,
            "set_limit",
            body.scope,
            body.reason,
            {"name": body.name, "value": body.value},
            body.model_dump(),
        )

    def _strategy(action: str, verb: str, doc: str) -> None:
        def endpoint(
            request: Request,
            body: StrategyRequest,
            name: str = Path(..., pattern=NAME_PATTERN, max_length=64, description="Strategy name."),
            ctx: ApiContext = Depends(context),
            p: Principal = Depends(trade),
        ) -> Any:
            check_name(name, "name")
            return _command(ctx, request, p, action, f"strategy:{name}", body.reason, {}, body.model_dump())

        endpoint.__doc__ = doc
        app.post(
            f"/v1/control/strategies/{{name}}/{verb}",
            response_model=ControlAccepted,
            status_code=202,
            responses=_ERRORS,
            tags=["control"],
            name=f"control.{action}",
        )(endpoint)

    _strategy("enable_strategy", "enable", "Count the strategy's intents again.")
    _strategy("disable_strategy", "disable", "Drop the strategy's contribution and unwind its positions.")

    from flows.api.console import mount_console
    from flows.api.telegram import mount_telegram

    mount_console(app)
    mount_telegram(app)
    sizes = api_settings or (ctx.api if ctx else _env_api())
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=sizes.max_body_bytes,
        max_query_bytes=sizes.max_query_bytes,
        on_refused=on_guard_refusal,
    )
    return app


def _env_api() -> Any:
    from flows.api.settings import ApiSettings

    return ApiSettings.from_env()


def _context_from_env() -> ApiContext:
    from connectors.postgres.api import ApiDatabase
    from connectors.ratelimit import RateLimiter
    from flows.api.settings import ApiSettings
    from flows.settings import Settings

    s, a = Settings.from_env(), ApiSettings.from_env()
    return ApiContext(
        settings=s, api=a, db=ApiDatabase(s.pg_dsn, max_size=a.db_pool_size), limiter=RateLimiter(a.rate_storage)
    )
