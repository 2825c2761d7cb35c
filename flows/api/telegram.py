"""Telegram on the operator API: bot commands at ``POST /telegram/bot`` and the console as a Telegram Mini App.

**Bot commands.** Telegram (or the signal ingest, forwarding the messages that start with ``/``) posts Bot API
updates here with the ``X-Telegram-Bot-Api-Secret-Token`` header (``LEVIBOT_API_TELEGRAM_SECRET_TOKEN``; without
it configured the route is 404). ``/status``, ``/positions``, ``/pnl`` answer; ``/halt [reason]`` and ``/resume``
stage a command and answer with a code that ``/confirm <code>`` (same chat, same user, within 60 s) sends through
the same signed control path as ``POST /v1/control/*`` (staged commands live in Redis when the rate limits do, so
any replica can confirm them; in process memory otherwise). Only chats in ``LEVIBOT_API_TELEGRAM_CHATS`` and users in
``LEVIBOT_API_TELEGRAM_USERS`` are served, each user acting as its mapped API key (scopes, tier and quota apply);
every refusal and every command sent is in the audit table. Answers go out by the Bot API's ``sendMessage``.

**Mini App.** ``GET /console/telegram`` is the page Telegram opens; its script posts the ``initData`` Telegram puts
in the URL fragment to ``POST /console/telegram/login``, which checks the signature (HMAC-SHA256 keyed from the bot
token) and the age, admits only allow-listed users, and opens a console session of the user's key: read only
unless that key's scopes allow more.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from flows.api.context import ApiContext
from flows.api.security import ApiError, client_address, request_parameters
from operators.api.access import Principal, denial
from operators.api.telegram import (
    ACTING,
    BotCommand,
    Confirmations,
    InitDataError,
    TelegramAccess,
    parse_command,
    validate_init_data,
)

__all__ = ["mount_telegram"]

log = logging.getLogger("levibot.api")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_NEEDS = {
    "status": ("read", "status"),
    "positions": ("read", "book"),
    "pnl": ("read", "book"),
    "halt": ("trade", "control"),
    "resume": ("trade", "control"),
    "confirm": ("trade", "control"),
    "help": ("read", "status"),
    "start": ("read", "status"),
}
HELP = "LeviBot: /status, /positions, /pnl, /halt [reason], /resume — /halt and /resume ask for /confirm <code>."


class _Telegram:
    def __init__(self, ctx: ApiContext) -> None:
        a = ctx.api
        self.access = TelegramAccess.parse(a.telegram_chats, a.telegram_users)
        if a.rate_storage.startswith(("redis://", "rediss://")):  # replicas share their staged commands
            from connectors.confirmations import RedisConfirmations

            self.confirmations: Any = RedisConfirmations(a.rate_storage, ttl_s=60.0)
        else:
            self.confirmations = Confirmations(ttl_s=60.0)
        self._bot: Any = None
        self.ctx = ctx

    def bot(self) -> Any:
        if self._bot is None:
            from connectors.telegram_bot import BotApi

            self._bot = BotApi(self.ctx.api.telegram_api_url, self.ctx.api.telegram_bot_token)
        return self._bot


def _state(request: Request) -> _Telegram:
    app = request.app
    t = getattr(app.state, "telegram", None)
    if t is None:
        t = app.state.telegram = _Telegram(app.state.ctx)
    return t


def _audit(ctx: ApiContext, request: Request, route: str, result: str, reason: str, detail: str, actor: str) -> None:
    ctx.audit(
        request_id=request.state.request_id,
        actor=actor,
        route=route,
        result=result,
        reason=reason,
        detail=detail,
        parameters=request_parameters(request),
        client=client_address(request),
    )


def _allowed(ctx: ApiContext, identity: str, rate: str) -> bool:
    """One hit on the quota; a shared store that does not answer counts as over the quota (refused)."""
    from connectors.ratelimit import LimiterUnavailable

    try:
        return ctx.limiter.hit(identity, rate).allowed
    except LimiterUnavailable:
        return False


def _fmt(v: float) -> str:
    return f"{v:,.2f}"


def _answer(request: Request, cmd: BotCommand, p: Principal, tg: _Telegram) -> str:
    from flows.api.app import _command, _kill_switch, compute_equity

    ctx = tg.ctx
    name = cmd.name
    if name in ("help", "start"):
        return HELP
    if name == "status":
        control = ctx.control_state()
        ks = _kill_switch(ctx, control, ctx.db.latest_decisions(1))
        last = ctx.db.last_event_times()
        recent = [v for k, v in last.items() if k in ("orders", "fills", "risk_decisions") and v]
        lag = f"{(time.time_ns() - max(recent)) / 1e9:,.0f} s" if recent else "n/a"
        return (
            f"account {ks.account}: {ks.state.upper()} (operators: {ks.operator_mode}, risk gate: {ks.gate})\n"
            f"last order/fill/decision: {lag} ago"
        )
    if name == "positions":
        rows = ctx.db.positions(None)
        if not rows:
            return "no positions"
        return "\n".join(
            f"{r['symbol']}: {r['net_qty']:+.6g} @ {_fmt(r['mark_price'])}  P&L {_fmt(r['pnl'])}" for r in rows[:30]
        )
    if name == "pnl":
        eq = compute_equity(ctx, max_points=2)
        return f"P&L {_fmt(eq['pnl'])}, max drawdown {100 * eq.get('max_drawdown_frac', 0.0):.2f}%"
    if name in ACTING:
        scope = f"account:{ctx.api.account}"
        reason = cmd.args or f"telegram /{name} by user {cmd.user_id} in chat {cmd.chat_id}"
        code = tg.confirmations.stage(
            ACTING[name], scope, reason, chat_id=cmd.chat_id, user_id=int(cmd.user_id or 0), now_s=time.time()
        )
        return f"{name.upper()} {scope}? Send /confirm {code} within 60 s (reason: {reason[:200]})"
    if name == "confirm":
        pending = tg.confirmations.take(cmd.args, chat_id=cmd.chat_id, user_id=int(cmd.user_id or 0), now_s=time.time())
        if pending is None:
            return "nothing to confirm (wrong or expired code): send /halt or /resume again"
        request.state.route_name = f"telegram.{pending.action}"
        try:
            sent = _command(
                ctx,
                request,
                p,
                pending.action,
                pending.scope,
                pending.reason,
                {},
                {"scope": pending.scope, "reason": pending.reason, "via": "telegram", "chat": cmd.chat_id},
            )
        except ApiError as exc:
            return f"not sent: {exc.reason}: {exc.detail}"
        return f"{sent.action} sent for {sent.scope}: command {sent.command_id} (the flow applies it at its next event)"
    return HELP


def mount_telegram(app: FastAPI) -> None:
    """Add ``POST /telegram/bot`` and the Mini App entry (outside the OpenAPI schema)."""

    @app.post("/telegram/bot", include_in_schema=False)
    async def bot_update(request: Request) -> Response:
        from anyio import to_thread

        raw = await request.body()
        return await to_thread.run_sync(_bot_update, request, raw)

    def _bot_update(request: Request, raw: bytes) -> Response:
        import hmac

        ctx: ApiContext = request.app.state.ctx
        a = ctx.api
        if not a.telegram_secret_token or not a.telegram_bot_token:
            return JSONResponse({"error": "not_found", "detail": "Telegram is not configured"}, status_code=404)
        got = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(got.encode(), a.telegram_secret_token.encode()):
            _audit(
                ctx,
                request,
                "telegram.webhook",
                "denied",
                "bad_secret_token",
                "webhook without the secret",
                "anonymous",
            )
            return JSONResponse({"error": "unauthenticated", "detail": "secret token"}, status_code=401)
        try:
            update = json.loads(raw)
        except ValueError:
            return JSONResponse({"ok": True, "ignored": "not json"})  # Telegram would retry a non-200 forever
        cmd = parse_command(update) if isinstance(update, dict) else None
        if cmd is None:
            return JSONResponse({"ok": True, "ignored": "no command"})
        tg = _state(request)
        name = cmd.name if cmd.name in _NEEDS else "help"
        route = f"telegram.{name}"
        request.state.route_name = route
        actor = f"telegram:{cmd.user_id}" if cmd.user_id is not None else f"telegram-chat:{cmd.chat_id}"
        key_id = tg.access.key_for(cmd.chat_id, cmd.user_id)
        text: str
        if key_id is None:
            why = "chat" if cmd.chat_id not in tg.access.chats else "user"
            _audit(ctx, request, route, "denied", "not_allowed", f"{why} not allow-listed (chat {cmd.chat_id})", actor)
            text = "Not allowed here."
        else:
            row = ctx.get_key(key_id)
            state = row.state(datetime.now(UTC)) if row else "unknown"
            if row is None or state != "active":
                _audit(
                    ctx,
                    request,
                    route,
                    "denied",
                    f"{state}_key",
                    f"telegram user {cmd.user_id}'s key is {state}",
                    f"api:{key_id}/unverified",
                )
                text = "Not allowed: this user's key is not active."
            else:
                p = Principal(
                    key_id=row.key_id,
                    scopes=row.scopes,
                    tier=row.tier,
                    accounts=row.accounts,
                    rate=row.rate,
                    name=row.name,
                )
                d = denial(p, *_NEEDS[name], ctx.tiers)
                tier = ctx.tier(p.tier)
                rate = p.rate or (tier.rate if tier else "1/minute")
                if d is not None:
                    _audit(ctx, request, route, "denied", d.reason, d.detail, p.actor)
                    text = f"Not allowed: {d.detail}"
                elif not _allowed(ctx, f"key:{p.key_id}", rate):
                    _audit(ctx, request, route, "denied", "rate_limited", f"quota of {rate} exceeded", p.actor)
                    text = "Too many requests; wait a little."
                else:
                    try:
                        text = _answer(request, cmd, p, tg)
                    except Exception as exc:  # the database or the topic: answer, never leak details
                        log.warning("telegram /%s failed: %s", name, type(exc).__name__)
                        text = "Sorry, that failed; try again later."
        try:
            tg.bot().send_message(cmd.chat_id, text, reply_to=cmd.message_id)
        except Exception as exc:
            log.warning("telegram answer not sent: %s", exc)
        return JSONResponse({"ok": True})

    @app.get("/console/telegram", include_in_schema=False)
    def mini_app(request: Request) -> Response:
        from flows.api.console import _page

        ctx: ApiContext = request.app.state.ctx
        body = (
            '<form method="post" action="/console/telegram/login" data-form="telegram-login" id="tg-login">'
            '<input type="hidden" name="init_data" id="tg-init-data"></form>'
            '<p class="muted" id="tg-status">Opening LeviBot from Telegram…</p>'
        )
        return _page(ctx, "LeviBot", body, active="telegram")

    @app.post("/console/telegram/login", include_in_schema=False)
    async def mini_app_login(request: Request) -> Response:
        from anyio import to_thread

        from flows.api.console import _form

        form = await _form(request)
        return await to_thread.run_sync(_mini_login, request, form)

    def _mini_login(request: Request, form: dict[str, str]) -> Response:
        from flows.api.console import SESSION_COOKIE, _cookie, _notice, _page
        from operators.api.sessions import issue_session

        ctx: ApiContext = request.app.state.ctx
        route = "console.telegram_login"
        request.state.route_name = route
        tg = _state(request)
        if not ctx.api.telegram_bot_token:
            return _page(ctx, "Not available", _notice("Telegram is not configured", "error"), active="", status=404)
        if not _allowed(ctx, f"auth:{client_address(request)}", ctx.api.auth_rate):
            _audit(ctx, request, route, "denied", "rate_limited", "too many unauthenticated requests", "anonymous")
            return _page(ctx, "Too many requests", _notice("wait a minute", "error"), active="", status=429)
        try:
            data = validate_init_data(
                form.get("init_data", ""),
                ctx.api.telegram_bot_token,
                now_s=int(time.time()),
                max_age_s=ctx.api.telegram_max_age_s,
            )
        except InitDataError as exc:
            _audit(ctx, request, route, "denied", exc.reason, exc.detail, "anonymous")
            return _page(
                ctx, "Not allowed", _notice(f"Telegram data refused: {exc.reason}", "error"), active="", status=401
            )
        key_id = tg.access.user_key(data.user_id)
        row = ctx.get_key(key_id) if key_id else None
        if row is None or row.state(datetime.now(UTC)) != "active":
            _audit(
                ctx,
                request,
                route,
                "denied",
                "not_allowed",
                f"telegram user {data.user_id} is not allow-listed or its key is not active",
                f"telegram:{data.user_id}",
            )
            return _page(
                ctx, "Not allowed", _notice("This Telegram user is not allowed.", "error"), active="", status=403
            )
        token = issue_session(ctx.session_secret, row.key_id, now_s=int(time.time()), ttl_s=ctx.api.session_ttl_s)
        ctx.audit(
            request_id=request.state.request_id,
            actor=f"api:{row.key_id}",
            route=route,
            result="applied",
            reason="login",
            detail=f"Mini App session for telegram user {data.user_id}",
            parameters={},
            client=client_address(request),
        )
        resp = RedirectResponse("/console", status_code=303)
        _cookie(resp, ctx, SESSION_COOKIE, token, ctx.api.session_ttl_s)
        return resp
