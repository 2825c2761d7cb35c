"""The web console of ``levibot api``: server-rendered pages under ``/console`` over the same data and the same
signed control path as the ``/v1`` routes. No build step, nothing fetched from elsewhere at run time: the charts
are plotly.js served from the installed ``plotly`` package, the page script is ``flows/api/static/console.js``.

Sessions: the operator logs in with an API key; the ``levibot_session`` cookie (HttpOnly, SameSite=Strict, Secure
unless ``LEVIBOT_API_COOKIE_SECURE=0``) holds a signed session naming the key (``operators/api/sessions.py``). Every
request re-reads the key's row: scopes, tier groups, quota and revocation apply exactly as on ``/v1``. Every form
carries a CSRF token bound to the session (the login form: a double-submit cookie). Halt, reduce-only and resume
are two steps (the form, then a confirmation page) and end in ``_command``: a signed command on the ``control``
topic, audited. Denials are audited like the API's.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import time
from collections.abc import Callable, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from flows.api.context import ApiContext
from flows.api.security import ApiError, client_address, request_parameters
from operators.api.access import Principal, denial, grants
from operators.api.audit import actor_name
from operators.api.keys import parse_token
from operators.api.query import ListFilter
from operators.api.sessions import Session, check_csrf, csrf_token, issue_session, new_nonce, verify_session

__all__ = ["mount_console"]

log = logging.getLogger("levibot.api")
SESSION_COOKIE = "levibot_session"
LOGIN_CSRF_COOKIE = "levibot_login_csrf"
STATIC = Path(__file__).resolve().parent / "static"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
PAGES = [
    ("overview", "/console", "Overview"),
    ("positions", "/console/positions", "Positions"),
    ("orders", "/console/orders", "Orders & fills"),
    ("risk", "/console/risk", "Risk"),
    ("signals", "/console/signals", "Signals"),
    ("models", "/console/models", "Models"),
    ("audit", "/console/audit", "Audit"),
    ("control", "/console/control", "Control"),
]
_MODE_ACTIONS = {"halt": "Halt", "reduce_only": "Reduce only", "resume": "Resume"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
header a{color:#cfd6e4;text-decoration:none}header a.active{color:#fff;font-weight:600}
header .who{margin-left:auto;font-size:.85rem;color:#9aa4b8}
main{padding:1rem 1.2rem;max-width:1300px}
h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.2rem 0 .5rem}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}.card{background:#fff;border-radius:6px;padding:.7rem 1rem;
min-width:10rem;box-shadow:0 1px 2px #0001}.card .label{font-size:.78rem;color:#5a6478}
.card .value{font-size:1.25rem;font-weight:600}.bad{color:#b3261e}.good{color:#1b7f3b}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.85rem;box-shadow:0 1px 2px #0001}
th,td{padding:.35rem .55rem;border-bottom:1px solid #e6e8ee;text-align:left;white-space:nowrap}
th{background:#eef0f4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{background:#fff;height:320px;margin:.4rem 0 1rem;box-shadow:0 1px 2px #0001}
form.inline{display:inline}input,select,button{font:inherit;padding:.3rem .5rem}
button{cursor:pointer;border:1px solid #8892a6;border-radius:4px;background:#fff}
button.danger{background:#b3261e;color:#fff;border-color:#b3261e}.notice{background:#fff8e1;padding:.6rem;
border-left:4px solid #f0b400;margin:.6rem 0}.error{background:#fde8e7;border-left-color:#b3261e}
.ok{background:#e7f5ec;border-left-color:#1b7f3b}.muted{color:#6b7588;font-size:.85rem}
"""


# -- small HTML helpers -------------------------------------------------------------------------------------------


def e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return e(v)
    return f"{f:,.{digits}f}"


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * float(v):.2f}%"


def _table(
    cols: list[tuple[str, str]],
    rows: list[dict[str, Any]],
    *,
    num: Set[str] = frozenset(),
    fmt: dict[str, Callable[[Any], str]] | None = None,
    name: str = "",
) -> str:
    fmt = fmt or {}
    head = "".join(f"<th>{e(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k)
            text = fmt[k](v) if k in fmt else (_num(v, 4) if k in num else e(v))
            cells.append(f'<td class="num">{text}</td>' if k in num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(cols)}" class="muted">none</td></tr>')
    return f'<table data-table="{e(name)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _chart(key: str, traces: list[dict[str, Any]], layout: dict[str, Any] | None = None) -> str:
    """A plotly chart drawn by console.js from the JSON next to it (inline JSON is data, not script: the CSP holds)."""
    spec = json.dumps({"data": traces, "layout": layout or {}}, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<div class="chart" data-chart="{e(key)}" id="chart-{e(key)}"></div>'
        f'<script type="application/json" id="data-{e(key)}">{spec}</script>'
    )


def _card(label: str, value: str, cls: str = "", key: str = "") -> str:
    return (
        f'<div class="card" data-card="{e(key or label)}"><div class="label">{e(label)}</div>'
        f'<div class="value {cls}">{value}</div></div>'
    )


def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _page(
    ctx: ApiContext,
    title: str,
    body: str,
    *,
    active: str,
    p: Principal | None = None,
    session: Session | None = None,
    status: int = 200,
) -> HTMLResponse:
    nav = (
        "".join(
            f'<a href="{href}" class="{"active" if key == active else ""}" data-nav="{key}">{e(label)}</a>'
            for key, href, label in PAGES
        )
        if p
        else ""
    )
    if p and ctx.api.grafana_url:
        nav += f'<a href="{e(ctx.api.grafana_url)}" rel="noopener noreferrer" target="_blank" data-nav="grafana">Grafana ↗</a>'
    who = ""
    if p and session:
        who = (
            f'<span class="who">{e(p.name or p.key_id)} · {e(",".join(p.scopes))} · {e(p.tier)} '
            f'<form class="inline" method="post" action="/console/logout">{_csrf_field(ctx, session)}'
            f'<button type="submit" data-action="logout">Log out</button></form></span>'
        )
    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{e(title)} · LeviBot</title>'
        f'<link rel="icon" href="data:,"><style>{_CSS}</style></head><body data-page="{e(active)}">'
        f"<header><strong>LeviBot</strong>{nav}{who}</header><main><h1>{e(title)}</h1>{body}</main>"
        f'<script src="/console/static/plotly.min.js"></script><script src="/console/static/console.js"></script>'
        f"</body></html>"
    )
    return _headers(HTMLResponse(doc, status_code=status))  # type: ignore[return-value]


def _csrf_field(ctx: ApiContext, s: Session) -> str:
    return f'<input type="hidden" name="csrf" value="{e(csrf_token(ctx.session_secret, s))}">'


def _notice(text: str, kind: str = "") -> str:
    return f'<div class="notice {e(kind)}" data-notice="{e(kind or "info")}">{text}</div>'


# -- authentication -------------------------------------------------------------------------------------------------


class _Denied(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


def _audit_denied(ctx: ApiContext, request: Request, route: str, reason: str, detail: str, actor: str) -> None:
    ctx.audit(
        request_id=request.state.request_id,
        actor=actor,
        route=route,
        result="denied",
        reason=reason,
        detail=detail,
        parameters=request_parameters(request),
        client=client_address(request),
    )


def _to_login(clear: bool = False) -> Response:
    r = RedirectResponse("/console/login", status_code=303)
    if clear:
        r.delete_cookie(SESSION_COOKIE, path="/console")
    return r


def _authenticate(request: Request, route: str, scope: str, group: str) -> tuple[ApiContext, Principal, Session]:
    """The session's principal, or :class:`_Denied` with the answer (a redirect to the login, 403 or 429)."""
    ctx = _ctx(request)
    request.state.route_name = route
    s = verify_session(ctx.session_secret, request.cookies.get(SESSION_COOKIE), now_s=int(time.time()))
    if s is None:
        raise _Denied(_to_login(clear=SESSION_COOKIE in request.cookies))
    row = ctx.get_key(s.key_id)
    state = row.state(datetime.now(UTC)) if row else "unknown"
    if row is None or state != "active":
        _audit_denied(
            ctx,
            request,
            route,
            f"{state}_key",
            f"console session of a key that is {state}",
            actor_name(s.key_id, False),
        )
        raise _Denied(_to_login(clear=True))
    p = Principal(
        key_id=row.key_id, scopes=row.scopes, tier=row.tier, accounts=row.accounts, rate=row.rate, name=row.name
    )
    request.state.principal = p
    d = denial(p, scope, group, ctx.tiers)
    if d is not None:
        _audit_denied(ctx, request, route, d.reason, d.detail, p.actor)
        raise _Denied(_page(ctx, "Not allowed", _notice(e(d.detail), "error"), active="", p=p, session=s, status=403))
    tier = ctx.tier(p.tier)
    rate = p.rate or (tier.rate if tier else "1/minute")
    from connectors.ratelimit import LimiterUnavailable

    try:
        v = ctx.limiter.hit(f"key:{p.key_id}", rate)
    except LimiterUnavailable:
        raise _Denied(
            _page(
                ctx,
                "Unavailable",
                _notice("rate limits unavailable; try again", "error"),
                active="",
                p=p,
                session=s,
                status=503,
            )
        ) from None
    if not v.allowed:
        _audit_denied(ctx, request, route, "rate_limited", f"quota of {rate} exceeded", p.actor)
        resp = _page(
            ctx,
            "Too many requests",
            _notice(f"quota of {e(rate)} exceeded", "error"),
            active="",
            p=p,
            session=s,
            status=429,
        )
        resp.headers["Retry-After"] = str(v.retry_after_s)
        raise _Denied(resp)
    return ctx, p, s


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form body (size already bounded by the guard middleware), one value per field."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True, max_num_fields=32).items()}


def _cookie(resp: Response, ctx: ApiContext, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=bool(ctx.api.cookie_secure),
    )


def _safe(fn: Callable[..., Response]) -> Callable[..., Response]:
    """The page, or the answer of its :class:`_Denied` (same signature: FastAPI reads it)."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Response:
        try:
            return fn(*a, **kw)
        except _Denied as d:
            return d.response

    return wrapper


# -- data helpers ---------------------------------------------------------------------------------------------------


def _rows(ctx: ApiContext, resource: str, limit: int = 100, cursor: str | None = None) -> tuple[list[dict], str | None]:
    from flows.api.app import _db

    try:
        f = ListFilter.build(limit=limit, cursor=cursor)
    except ValueError:
        f = ListFilter.build(limit=limit)
    return _db(lambda: ctx.db.list_rows(resource, f))


def _older(path: str, cursor: str | None) -> str:
    return f'<p><a href="{e(path)}?cursor={quote(cursor)}" data-older="1">Older →</a></p>' if cursor else ""


def _prices(v: Any) -> str:
    return e(", ".join(f"{y:g}" for y in v or []))


def _time(v: Any) -> str:
    return e(str(v)[:19].replace("T", " ")) if v else ""


# -- pages ----------------------------------------------------------------------------------------------------------


def mount_console(app: FastAPI) -> None:
    """Add the console routes (outside the OpenAPI schema) to ``app``."""

    import plotly

    plotly_js = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

    @app.get("/console/static/plotly.min.js", include_in_schema=False)
    def plotly_file() -> Response:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/console/static/console.js", include_in_schema=False)
    def console_js() -> Response:
        return FileResponse(STATIC / "console.js", media_type="text/javascript")

    @app.get("/console/login", include_in_schema=False)
    def login_form(request: Request, error: str = "") -> Response:
        ctx = _ctx(request)
        token = new_nonce()
        msg = (
            _notice(
                e(
                    {
                        "bad": "That key was not accepted.",
                        "csrf": "The form expired; try again.",
                        "limited": "Too many attempts; wait a minute.",
                    }.get(error, "")
                ),
                "error",
            )
            if error
            else ""
        )
        body = (
            f'{msg}<form method="post" action="/console/login" data-form="login">'
            f'<input type="hidden" name="csrf" value="{e(token)}">'
            f'<p><label>API key <input type="password" name="token" autocomplete="off" size="60" required>'
            f'</label></p><p><button type="submit">Log in</button></p></form>'
            f'<p class="muted">Keys come from <code>levibot api-keys create</code>; the console can do what the '
            f"key's scopes and tier allow.</p>"
        )
        resp = _page(ctx, "Log in", body, active="login")
        _cookie(resp, ctx, LOGIN_CSRF_COOKIE, token, 900)
        return resp

    @app.post("/console/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        from anyio import to_thread

        form = await _form(request)
        return await to_thread.run_sync(_login, request, form)

    def _login(request: Request, form: dict[str, str]) -> Response:
        from connectors.ratelimit import LimiterUnavailable

        ctx = _ctx(request)
        route = "console.login"
        request.state.route_name = route
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not form.get("csrf") or not _eq(cookie, form["csrf"]):
            _audit_denied(ctx, request, route, "csrf", "login form without a matching CSRF token", "anonymous")
            return RedirectResponse("/console/login?error=csrf", status_code=303)
        try:
            v = ctx.limiter.hit(f"auth:{client_address(request)}", ctx.api.auth_rate)
        except LimiterUnavailable:
            return RedirectResponse("/console/login?error=limited", status_code=303)
        parsed = parse_token(form.get("token", "").strip())
        key_id = parsed[0] if parsed else None
        if not v.allowed:
            _audit_denied(
                ctx,
                request,
                route,
                "rate_limited",
                "too many unauthenticated requests from this address",
                actor_name(key_id, False),
            )
            return RedirectResponse("/console/login?error=limited", status_code=303)
        row = ctx.get_key(parsed[0]) if parsed else None
        ok = (
            parsed is not None
            and row is not None
            and row.state(datetime.now(UTC)) == "active"
            and ctx.hasher.verify(row.secret_hash, parsed[1])
        )
        if not ok:
            reason = (
                "malformed_key"
                if parsed is None
                else "unknown_key"
                if row is None
                else "bad_secret"
                if row.state(datetime.now(UTC)) == "active"
                else f"{row.state(datetime.now(UTC))}_key"
            )
            _audit_denied(ctx, request, route, reason, "console login refused", actor_name(key_id, False))
            return RedirectResponse("/console/login?error=bad", status_code=303)
        assert parsed is not None and row is not None
        ctx.verified.add(row.key_id, row.secret_hash, parsed[1])
        token = issue_session(ctx.session_secret, row.key_id, now_s=int(time.time()), ttl_s=ctx.api.session_ttl_s)
        ctx.audit(
            request_id=request.state.request_id,
            actor=f"api:{row.key_id}",
            route=route,
            result="applied",
            reason="login",
            detail="console session opened",
            parameters={},
            client=client_address(request),
        )
        resp = RedirectResponse("/console", status_code=303)
        _cookie(resp, ctx, SESSION_COOKIE, token, ctx.api.session_ttl_s)
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
        return resp

    @app.post("/console/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = await _form(request)
        ctx = _ctx(request)
        s = verify_session(ctx.session_secret, request.cookies.get(SESSION_COOKIE), now_s=int(time.time()))
        if s is not None and not check_csrf(ctx.session_secret, s, form.get("csrf")):
            return _page(ctx, "Forbidden", _notice("missing or wrong CSRF token", "error"), active="", status=403)
        return _to_login(clear=True)

    @app.get("/console", include_in_schema=False)
    @_safe
    def overview(request: Request) -> Response:
        from flows.api.app import _kill_switch, compute_equity

        ctx, p, s = _authenticate(request, "console.overview", "read", "status")
        control = ctx.control_state()
        ks = _kill_switch(ctx, control, ctx.db.latest_decisions(1))
        eq = compute_equity(ctx, max_points=1500)
        pts = eq["points"]
        today = 0.0
        if pts:
            day0 = pts[-1]["ts_ns"] - pts[-1]["ts_ns"] % 86_400_000_000_000
            before = [q for q in pts if q["ts_ns"] < day0]
            today = pts[-1]["pnl"] - (before[-1]["pnl"] if before else 0.0)
        state_cls = "good" if ks.state == "normal" else "bad"
        cards = "".join(
            [
                _card("Kill switch", e(ks.state), state_cls, "kill_switch"),
                _card("Operator mode", e(ks.operator_mode), "", "operator_mode"),
                _card("Risk gate", e(ks.gate), "", "gate"),
                _card("Equity", _num(pts[-1]["equity"]) if pts else "n/a", "", "equity"),
                _card("P&L", _num(eq["pnl"]), "good" if eq["pnl"] >= 0 else "bad", "pnl"),
                _card("Today's P&L", _num(today), "good" if today >= 0 else "bad", "today_pnl"),
                _card("Max drawdown", _pct(eq.get("max_drawdown_frac")), "", "max_drawdown"),
            ]
        )
        x = [q["time"] for q in pts]
        charts = (
            "<h2>Equity and buy-and-hold</h2>"
            + _chart(
                "equity",
                [
                    {"type": "scatter", "mode": "lines", "name": "equity", "x": x, "y": [q["equity"] for q in pts]},
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "name": "buy and hold",
                        "x": x,
                        "y": [q["buy_and_hold"] for q in pts],
                        "line": {"dash": "dot"},
                    },
                ],
                {"yaxis": {"title": "quote currency"}},
            )
            + "<h2>Drawdown</h2>"
            + _chart(
                "drawdown",
                [
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "fill": "tozeroy",
                        "name": "drawdown",
                        "x": x,
                        "y": [-100 * q["drawdown_frac"] for q in pts],
                    }
                ],
                {"yaxis": {"title": "% of peak equity"}},
            )
        )
        note = "" if control.get("available") else _notice(f"control topic: {e(control.get('error'))}")
        body = (
            f'{note}<div class="cards">{cards}</div>{charts}<p class="muted">Resolution '
            f"{e(eq['resolution_s'])} s · {eq['count']} points · capital {_num(eq['capital'])} "
            f"(LEVIBOT_API_CAPITAL)</p>"
        )
        return _page(ctx, "Overview", body, active="overview", p=p, session=s)

    @app.get("/console/positions", include_in_schema=False)
    @_safe
    def positions(request: Request) -> Response:
        ctx, p, s = _authenticate(request, "console.positions", "read", "book")
        rows = ctx.db.positions(None)
        for r in rows:
            r["exposure"] = r["net_qty"] * r["mark_price"]
        tbl = _table(
            [
                ("symbol", "Symbol"),
                ("net_qty", "Net qty"),
                ("mark_price", "Mark"),
                ("mark_source", "Mark from"),
                ("exposure", "Exposure"),
                ("cash_flow", "Cash flow"),
                ("fees", "Fees"),
                ("pnl", "P&L"),
                ("fill_count", "Fills"),
                ("last_fill_time", "Last fill"),
            ],
            rows,
            num={"net_qty", "mark_price", "exposure", "cash_flow", "fees", "pnl"},
            fmt={"last_fill_time": _time, "fill_count": e},
            name="positions",
        )
        chart = _chart(
            "positions_pnl",
            [{"type": "bar", "name": "P&L", "x": [r["symbol"] for r in rows], "y": [r["pnl"] for r in rows]}],
            {"yaxis": {"title": "P&L, quote"}},
        )
        return _page(ctx, "Positions", tbl + "<h2>P&amp;L per symbol</h2>" + chart, active="positions", p=p, session=s)

    @app.get("/console/orders", include_in_schema=False)
    @_safe
    def orders(request: Request, cursor: str | None = None) -> Response:
        ctx, p, s = _authenticate(request, "console.orders", "read", "book")
        o, nxt = _rows(ctx, "orders", 100, cursor)
        f, _ = _rows(ctx, "fills", 100)
        body = (
            "<h2>Orders</h2>"
            + _table(
                [
                    ("time", "Time"),
                    ("order_id", "Order"),
                    ("strategy", "Strategy"),
                    ("symbol", "Symbol"),
                    ("side", "Side"),
                    ("qty", "Qty"),
                    ("order_type", "Type"),
                    ("limit_price", "Limit"),
                    ("reduce_only", "Reduce only"),
                ],
                o,
                num={"qty", "limit_price"},
                fmt={"time": _time},
                name="orders",
            )
            + _older("/console/orders", nxt)
            + "<h2>Fills</h2>"
            + _table(
                [
                    ("time", "Time"),
                    ("fill_id", "Fill"),
                    ("order_id", "Order"),
                    ("symbol", "Symbol"),
                    ("side", "Side"),
                    ("qty", "Qty"),
                    ("price", "Price"),
                    ("fee", "Fee"),
                    ("slippage_bps", "Slippage (bps)"),
                    ("liquidity", "Liquidity"),
                ],
                f,
                num={"qty", "price", "fee", "slippage_bps"},
                fmt={"time": _time},
                name="fills",
            )
        )
        return _page(ctx, "Orders and fills", body, active="orders", p=p, session=s)

    @app.get("/console/risk", include_in_schema=False)
    @_safe
    def risk(request: Request) -> Response:
        from flows.api.app import compute_risk

        ctx, p, s = _authenticate(request, "console.risk", "read", "risk")
        v = compute_risk(ctx)
        lim = v["limits"]
        cards = "".join(
            [
                _card(
                    "VaR",
                    f"{_num(v['portfolio_var'])} ({_pct(v['portfolio_var_frac'])})",
                    "bad" if lim["portfolio_var"]["breached"] else "",
                    "var",
                ),
                _card("VaR limit", _pct(lim["portfolio_var"]["limit"]), "", "var_limit"),
                _card(
                    "CVaR",
                    f"{_num(v['portfolio_cvar'])} ({_pct(v['portfolio_cvar_frac'])})",
                    "bad" if lim["portfolio_cvar"]["breached"] else "",
                    "cvar",
                ),
                _card("CVaR limit", _pct(lim["portfolio_cvar"]["limit"]), "", "cvar_limit"),
                _card("Historical VaR", _num(v["historical_var"]), "", "hvar"),
                _card("Confidence", _pct(v["alpha"]), "", "alpha"),
                _card("Window", f"{v['window']} returns", "", "window"),
            ]
        )
        breaches = _notice("Over limit: " + e(", ".join(v["breaches"])), "error") if v["breaches"] else ""
        sym = sorted(v["component_var"])
        strat = sorted(v["component_var_by_strategy"])
        charts = (
            "<h2>Component VaR per symbol</h2>"
            + _chart(
                "component_var",
                [{"type": "bar", "name": "component VaR", "x": sym, "y": [v["component_var"][k] for k in sym]}],
                {"yaxis": {"title": "quote currency"}},
            )
            + "<h2>Component VaR per strategy</h2>"
            + _chart(
                "component_var_by_strategy",
                [
                    {
                        "type": "bar",
                        "name": "component VaR",
                        "x": strat,
                        "y": [v["component_var_by_strategy"][k] for k in strat],
                    }
                ],
                {"yaxis": {"title": "quote currency"}},
            )
        )
        rows = [
            {"strategy": k, "var": v["component_var_by_strategy"][k], **lim["strategies"].get(k, {})} for k in strat
        ]
        tbl = _table(
            [
                ("strategy", "Strategy"),
                ("var", "Component VaR"),
                ("value", "of equity"),
                ("limit", "Budget"),
                ("breached", "Over"),
            ],
            rows,
            num={"var"},
            fmt={"value": _pct, "limit": lambda x: _pct(x) if x is not None else "none"},
            name="strategies",
        )
        dec, _ = _rows(ctx, "risk_decisions", 50)
        dtbl = _table(
            [
                ("time", "Time"),
                ("symbol", "Symbol"),
                ("strategy", "Strategy"),
                ("action", "Action"),
                ("requested_qty", "Requested"),
                ("approved_qty", "Approved"),
                ("var", "VaR"),
                ("reasons", "Reasons"),
            ],
            dec,
            num={"requested_qty", "approved_qty", "var"},
            fmt={"time": _time, "reasons": lambda r: e(", ".join(r or []))},
            name="decisions",
        )
        body = (
            f'{breaches}<div class="cards">{cards}</div>{charts}<h2>Strategies against their budgets</h2>{tbl}'
            f"<h2>Latest risk decisions</h2>{dtbl}"
        )
        return _page(ctx, "Risk", body, active="risk", p=p, session=s)

    @app.get("/console/signals", include_in_schema=False)
    @_safe
    def signals(request: Request, cursor: str | None = None, id: str | None = None) -> Response:
        from flows.api.app import _db

        ctx, p, s = _authenticate(request, "console.signals", "read", "signals")
        life = ""
        if id is not None and 0 < len(id) <= 128 and id.isascii() and id.isprintable() and " " not in id:
            events = _db(lambda: ctx.db.signal_lifecycle(id))
            life = f"<h2>Lifecycle of {e(id)}: {e(events[-1]['kind']) if events else 'unknown'}</h2>" + _table(
                [
                    ("time", "Time"),
                    ("id", "Message"),
                    ("version", "Version"),
                    ("kind", "Kind"),
                    ("side", "Side"),
                    ("entries", "Entries"),
                    ("targets", "Targets"),
                    ("stop", "Stop"),
                    ("close_fraction", "Close"),
                ],
                events,
                num={"stop", "close_fraction"},
                fmt={"time": _time, "entries": _prices, "targets": _prices},
                name="lifecycle",
            )
        rows, nxt = _rows(ctx, "signals", 100, cursor)

        def link(v: Any) -> str:
            return f'<a href="/console/signals?id={quote(str(v), safe="")}" data-signal="{e(v)}">{e(v)}</a>'

        tbl = life + _table(
            [
                ("time", "Time"),
                ("id", "Signal"),
                ("version", "Version"),
                ("kind", "Lifecycle"),
                ("symbol", "Symbol"),
                ("side", "Side"),
                ("entries", "Entries"),
                ("targets", "Targets"),
                ("stop", "Stop"),
                ("trust", "Trust"),
                ("source_chat", "Chat"),
            ],
            rows,
            num={"stop", "trust"},
            fmt={"time": _time, "entries": _prices, "targets": _prices, "id": link},
            name="signals",
        )
        return _page(ctx, "Signals", tbl + _older("/console/signals", nxt), active="signals", p=p, session=s)

    @app.get("/console/models", include_in_schema=False)
    @_safe
    def models(request: Request) -> Response:
        ctx, p, s = _authenticate(request, "console.models", "read", "models")
        try:
            reg = ctx.registry()
            metas = list(reversed(reg.versions()))
            champ = reg.latest_champion_version()
        except (OSError, ValueError):
            metas, champ = [], None
        rows = [
            {
                "version": m["version"],
                "status": m.get("status"),
                "feature_set": m.get("feature_set"),
                "created_at": m.get("created_at"),
                "holdout_ll": (m.get("metrics") or {}).get("holdout", {}).get("log_loss")
                if isinstance((m.get("metrics") or {}).get("holdout"), dict)
                else None,
                "promotion": m.get("promotion"),
            }
            for m in metas[:100]
        ]
        tbl = _table(
            [
                ("version", "Version"),
                ("status", "Status"),
                ("feature_set", "Feature set"),
                ("created_at", "Created"),
                ("holdout_ll", "Holdout log loss"),
                ("promotion", "Note"),
            ],
            rows,
            num={"holdout_ll"},
            fmt={"created_at": _time},
            name="models",
        )
        cal = ""
        if champ:
            try:
                c = ctx.calibration(champ)
                xs = [q["raw"] for q in c["curve"]]
                cal = (
                    f"<h2>Calibration of the champion {e(champ)} ({e(c['method'])})</h2>"
                    + _chart(
                        "calibration",
                        [
                            {
                                "type": "scatter",
                                "mode": "lines+markers",
                                "name": "calibrator",
                                "x": xs,
                                "y": [q["calibrated"] for q in c["curve"]],
                            },
                            {
                                "type": "scatter",
                                "mode": "lines",
                                "name": "identity",
                                "x": [0, 1],
                                "y": [0, 1],
                                "line": {"dash": "dot"},
                            },
                        ],
                        {"xaxis": {"title": "raw P(up)"}, "yaxis": {"title": "calibrated"}},
                    )
                    + _table(
                        [("metric", "CV metric"), ("raw", "raw"), ("calibrated", "calibrated")],
                        [
                            {"metric": k, "raw": c["cv_raw"].get(k), "calibrated": c["cv_calibrated"].get(k)}
                            for k in sorted(set(c["cv_raw"]) | set(c["cv_calibrated"]))
                        ],
                        num={"raw", "calibrated"},
                        name="calibration_metrics",
                    )
                )
            except (KeyError, OSError, RuntimeError, TypeError) as exc:
                cal = _notice(f"champion calibration unavailable: {e(type(exc).__name__)}", "error")
        d = ctx.drift()
        drift = "<h2>Drift alerts</h2>" + (
            _table(
                [("time", "Time"), ("severity", "Severity"), ("message", "Message"), ("dedupe_key", "Key")],
                d["items"][:50],
                fmt={"time": _time},
                name="drift",
            )
            if d["available"]
            else _notice(f"alerts topic: {e(d['error'])}")
        )
        pinned = ctx.control_state().get("pinned_model")
        head = (
            f'<div class="cards">{_card("Champion", e(champ or "none"), "", "champion")}'
            f"{_card('Pinned', e(pinned or 'none'), '', 'pinned')}{_card('Versions', str(len(metas)), '', 'versions')}</div>"
        )
        return _page(ctx, "Models", head + "<h2>Registry</h2>" + tbl + cal + drift, active="models", p=p, session=s)

    @app.get("/console/audit", include_in_schema=False)
    @_safe
    def audit(request: Request, cursor: str | None = None) -> Response:
        ctx, p, s = _authenticate(request, "console.audit", "read", "audit")
        rows, nxt = _rows(ctx, "audit", 100, cursor)
        tbl = _table(
            [
                ("time", "Time"),
                ("source", "Source"),
                ("actor", "Actor"),
                ("action", "Action"),
                ("scope", "Scope"),
                ("result", "Result"),
                ("detail", "Detail"),
                ("command_id", "Command"),
                ("client_address", "Client"),
            ],
            rows,
            fmt={"time": _time},
            name="audit",
        )
        return _page(ctx, "Audit trail", tbl + _older("/console/audit", nxt), active="audit", p=p, session=s)

    def _control_body(ctx: ApiContext, p: Principal, s: Session, msg: str = "") -> str:
        control = ctx.control_state()
        modes = control.get("modes") or {}
        mrows = [{"scope": k, **v} for k, v in sorted(modes.items())]
        mt = (
            _table([("scope", "Scope"), ("mode", "Mode"), ("issuer", "By"), ("reason", "Reason")], mrows, name="modes")
            if control.get("available")
            else _notice(f"control topic: {e(control.get('error'))}", "error")
        )
        forms = ""
        if grants(p.scopes, "trade"):
            scope = f"account:{ctx.api.account}"
            for action, label in _MODE_ACTIONS.items():
                forms += (
                    f'<form method="post" action="/console/control" data-form="{action}" class="inline">'
                    f'{_csrf_field(ctx, s)}<input type="hidden" name="action" value="{action}">'
                    f'<input type="hidden" name="scope" value="{e(scope)}">'
                    f'<button type="submit" class="{"danger" if action == "halt" else ""}" '
                    f'data-action="{action}">{e(label)}…</button></form> '
                )
            forms = (
                f"<h2>Account {e(ctx.api.account)}</h2><p>{forms}</p><p class='muted'>Each asks for a reason "
                f"and a confirmation, then sends a signed command on the control topic.</p>"
            )
        else:
            forms = _notice("This key has the read scope only: no commands.")
        return f"{msg}<h2>Modes on the control topic</h2>{mt}{forms}"

    @app.get("/console/control", include_in_schema=False)
    @_safe
    def control(request: Request) -> Response:
        ctx, p, s = _authenticate(request, "console.control", "read", "status")
        return _page(ctx, "Control", _control_body(ctx, p, s), active="control", p=p, session=s)

    @app.post("/console/control", include_in_schema=False)
    async def control_step(request: Request) -> Response:
        from anyio import to_thread

        form = await _form(request)
        return await to_thread.run_sync(_control_step, request, form)

    def _control_step(request: Request, form: dict[str, str]) -> Response:
        from flows.api.app import _command

        action = form.get("action", "")
        route = f"console.control.{action}" if action in _MODE_ACTIONS else "console.control"
        try:
            ctx, p, s = _authenticate(request, route, "trade", "control")
        except _Denied as d:
            return d.response
        if not check_csrf(ctx.session_secret, s, form.get("csrf")):
            _audit_denied(ctx, request, route, "csrf", "console form without a valid CSRF token", p.actor)
            return _page(
                ctx,
                "Forbidden",
                _notice("missing or wrong CSRF token", "error"),
                active="control",
                p=p,
                session=s,
                status=403,
            )
        if action not in _MODE_ACTIONS:
            return _page(
                ctx,
                "Control",
                _control_body(ctx, p, s, _notice("unknown action", "error")),
                active="control",
                p=p,
                session=s,
                status=422,
            )
        scope, reason = form.get("scope", f"account:{ctx.api.account}"), form.get("reason", "")
        if form.get("confirm") != "yes":
            body = (
                f'<form method="post" action="/console/control" data-form="confirm">{_csrf_field(ctx, s)}'
                f'<input type="hidden" name="action" value="{e(action)}"><input type="hidden" name="scope" '
                f'value="{e(scope)}"><input type="hidden" name="confirm" value="yes">'
                f"{_notice(f'<strong>{e(_MODE_ACTIONS[action])}</strong> {e(scope)}: are you sure?')}"
                f'<p><label>Reason <input type="text" name="reason" size="60" maxlength="4096" '
                f'value="{e(reason)}" {"required" if action != "resume" else ""}></label></p>'
                f'<p><button type="submit" class="danger" data-action="confirm">Confirm '
                f'{e(_MODE_ACTIONS[action].lower())}</button> <a href="/console/control">Cancel</a></p></form>'
            )
            return _page(ctx, f"Confirm: {_MODE_ACTIONS[action]}", body, active="control", p=p, session=s)
        try:
            sent = _command(
                ctx, request, p, action, scope, reason, {}, {"scope": scope, "reason": reason, "via": "console"}
            )
        except ApiError as exc:
            return _page(
                ctx,
                "Control",
                _control_body(ctx, p, s, _notice(f"Not sent: {e(exc.reason)}: {e(exc.detail)}", "error")),
                active="control",
                p=p,
                session=s,
                status=exc.status_code,
            )
        msg = _notice(
            f"Sent <strong>{e(sent.action)}</strong> for {e(sent.scope)}: command "
            f'<code data-command-id="{e(sent.command_id)}">{e(sent.command_id)}</code> on {e(sent.topic)}'
            f"{' (audited)' if sent.audited else ''}. The flow applies it at its next event.",
            "ok",
        )
        return _page(ctx, "Control", _control_body(ctx, p, s, msg), active="control", p=p, session=s, status=200)


def _eq(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())
