"""Authentication, authorisation and quotas of every ``/v1`` route, as one FastAPI dependency per route
(:func:`require`).

Order of checks (each failure is answered and written to the audit table as ``denied``):

1. a credential: ``X-API-Key: <token>`` or ``Authorization: Bearer <token>``; none or malformed → 401;
2. the key row by the token's key id (``ApiContext.get_key``: cached only while PostgreSQL's notifications of key
   changes are heard, so a revocation takes effect at once); unknown → 401. Revoked or expired → 401;
3. the secret against the stored Argon2id hash, unless this process verified the same secret for the same hash
   before (concurrent first requests of a key wait for one verification). Every verification that is not cached, and
   every request without a valid key, first counts against the
   client address's quota (``LEVIBOT_API_AUTH_RATE``; over it → 429), which bounds what guessing costs us;
   mismatch → 401;
4. the route's group in the key's tier, the route's scope in the key's scopes → 403;
5. the key's quota (its own ``rate`` or its tier's) → 429 with ``Retry-After``.

When the shared rate-limit store (Redis) does not answer, the request is refused with 503
``rate_limit_unavailable`` (audited as ``error``): quotas are never silently counted per process instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, HTTPException, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from connectors.ratelimit import LimiterUnavailable, Verdict
from flows.api.context import ApiContext
from operators.api.access import Denial, Principal, denial
from operators.api.audit import actor_name
from operators.api.keys import parse_token

__all__ = ["ApiError", "require", "context", "client_address", "request_parameters"]

log = logging.getLogger("levibot.api")

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key token (lvb_...).")
bearer = HTTPBearer(auto_error=False, description="An API key token (lvb_...) as a bearer token.")


class ApiError(HTTPException):
    """An error answer with a machine ``reason`` code (the body's ``error``)."""

    def __init__(self, status: int, reason: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.reason = reason


async def context(request: Request) -> ApiContext:
    return request.app.state.ctx


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def request_parameters(request: Request) -> dict[str, Any]:
    """The request's query parameters and path parameters (what the audit digest covers for a read)."""
    return {"query": sorted(request.query_params.multi_items()), "path": dict(request.path_params)}


def _deny(
    ctx: ApiContext,
    request: Request,
    route: str,
    d: Denial,
    *,
    key_id: str | None,
    authenticated: bool,
    headers: dict[str, str] | None = None,
) -> ApiError:
    ctx.audit(
        request_id=request.state.request_id,
        actor=actor_name(key_id, authenticated),
        route=route,
        result="denied",
        reason=d.reason,
        detail=d.detail,
        parameters=request_parameters(request),
        client=client_address(request),
    )
    return ApiError(d.status, d.reason, d.detail, headers)


def _hit(ctx: ApiContext, request: Request, route: str, identity: str, rate: str, actor: str) -> Verdict:
    try:
        return ctx.limiter.hit(identity, rate)
    except LimiterUnavailable as exc:
        log.warning("rate limits unavailable on %s: %s", route, exc)
        ctx.audit(
            request_id=request.state.request_id,
            actor=actor,
            route=route,
            result="error",
            reason="rate_limit_unavailable",
            detail=str(exc),
            parameters=request_parameters(request),
            client=client_address(request),
        )
        raise ApiError(
            503, "rate_limit_unavailable", "the shared rate-limit store does not answer", {"Retry-After": "5"}
        ) from None


def _auth_quota(ctx: ApiContext, request: Request, route: str, key_id: str | None) -> None:
    v = _hit(ctx, request, route, f"auth:{client_address(request)}", ctx.api.auth_rate, actor_name(key_id, False))
    if not v.allowed:
        raise _deny(
            ctx,
            request,
            route,
            Denial(429, "rate_limited", "too many unauthenticated requests from this address"),
            key_id=key_id,
            authenticated=False,
            headers={"Retry-After": str(v.retry_after_s)},
        )


def require(scope: str, group: str) -> Callable[..., Principal]:
    """The dependency of a route of ``group`` needing ``scope``: the calling key's :class:`Principal`."""

    def dependency(
        request: Request,
        response: Response,
        x_api_key: str | None = Security(api_key_header),
        auth: HTTPAuthorizationCredentials | None = Security(bearer),
        ctx: ApiContext = Depends(context),
    ) -> Principal:
        route = request.scope["route"].name if request.scope.get("route") else "unknown"
        request.state.route_name = route
        token = x_api_key if x_api_key else (auth.credentials if auth else None)
        if not token:
            _auth_quota(ctx, request, route, None)
            raise _deny(
                ctx,
                request,
                route,
                Denial(401, "unauthenticated", "an API key is required (X-API-Key or Authorization: Bearer)"),
                key_id=None,
                authenticated=False,
                headers={"WWW-Authenticate": "Bearer"},
            )
        parsed = parse_token(token)
        if parsed is None:
            _auth_quota(ctx, request, route, None)
            raise _deny(
                ctx,
                request,
                route,
                Denial(401, "malformed_key", "the API key is not a LeviBot key token"),
                key_id=None,
                authenticated=False,
                headers={"WWW-Authenticate": "Bearer"},
            )
        key_id, secret = parsed
        row = ctx.get_key(key_id)
        if row is None:
            _auth_quota(ctx, request, route, key_id)
            raise _deny(
                ctx,
                request,
                route,
                Denial(401, "unknown_key", "no such API key"),
                key_id=key_id,
                authenticated=False,
                headers={"WWW-Authenticate": "Bearer"},
            )
        state = row.state(datetime.now(UTC))
        if state != "active":
            ctx.verified.forget(key_id)
            _auth_quota(ctx, request, route, key_id)
            raise _deny(
                ctx,
                request,
                route,
                Denial(401, f"{state}_key", f"this API key is {state}"),
                key_id=key_id,
                authenticated=False,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not ctx.verified.seen(key_id, row.secret_hash, secret):
            # one verification per key at a time: the requests that waited find it done (and are not counted
            # against the address's quota for it)
            with ctx.verify_lock(key_id):
                if not ctx.verified.seen(key_id, row.secret_hash, secret):
                    _auth_quota(ctx, request, route, key_id)
                    if not ctx.hasher.verify(row.secret_hash, secret):
                        raise _deny(
                            ctx,
                            request,
                            route,
                            Denial(401, "bad_secret", "the API key does not match"),
                            key_id=key_id,
                            authenticated=False,
                            headers={"WWW-Authenticate": "Bearer"},
                        )
                    ctx.verified.add(key_id, row.secret_hash, secret)
        p = Principal(
            key_id=key_id, scopes=row.scopes, tier=row.tier, accounts=row.accounts, rate=row.rate, name=row.name
        )
        request.state.principal = p
        d = denial(p, scope, group, ctx.tiers)
        if d is not None:
            raise _deny(ctx, request, route, d, key_id=key_id, authenticated=True)
        tier = ctx.tier(p.tier)
        rate = p.rate or (tier.rate if tier else "1/minute")
        v = _hit(ctx, request, route, f"key:{key_id}", rate, p.actor)
        if not v.allowed:
            raise _deny(
                ctx,
                request,
                route,
                Denial(429, "rate_limited", f"quota of {rate} exceeded"),
                key_id=key_id,
                authenticated=True,
                headers={
                    "Retry-After": str(v.retry_after_s),
                    "X-RateLimit-Limit": str(v.limit),
                    "X-RateLimit-Remaining": "0",
                },
            )
        response.headers["X-RateLimit-Limit"] = str(v.limit)
        response.headers["X-RateLimit-Remaining"] = str(v.remaining)
        return p

    return dependency
