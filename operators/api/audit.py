"""Audit entries for API calls: every mutating call and every denial becomes one ``AuditEvent`` (``source="api"``).

``actor`` is ``api:<key id>`` for an authenticated key, ``api:<key id>/unverified`` for a well-formed token whose
key is unknown, revoked or expired or whose secret is wrong, and ``anonymous`` otherwise: a presented secret is
never written anywhere. ``action`` is ``api.<route name>``; ``parameters_digest`` the hex SHA-256 of the request's
canonical parameters (:func:`request_digest`: sorted compact JSON of query and body), never the parameters
themselves. The id is deterministic from the request id, the result and the reason code, so a retried write of the
same entry is one row.

>>> ev = api_audit_event(request_id="req-1", actor="anonymous", route="orders.list", result="denied",
...                      reason="unauthenticated", detail="no API key", parameters={"limit": "10"},
...                      client="127.0.0.1", ts=1_700_000_000_000_000_000)
>>> ev.action, ev.result, ev.source, ev.detail, ev.client_address
('api.orders.list', 'denied', 'api', 'unauthenticated: no API key', '127.0.0.1')
>>> ev.parameters_digest == request_digest({"limit": "10"})
True
>>> again = api_audit_event(request_id="req-1", actor="x", route="r", result="denied", reason="unauthenticated",
...                         ts=1_700_000_000_000_000_001)
>>> ev.id == again.id
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from operators.ids import stable_id
from schemas.events import NAME_PATTERN, AuditEvent

__all__ = ["request_digest", "api_audit_event", "actor_name"]

_NAME_RE: Final = re.compile(NAME_PATTERN)
_BAD: Final = re.compile(r"[^A-Za-z0-9_.:@/+-]")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    return str(value)


def request_digest(parameters: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the sorted compact JSON of ``parameters`` (non-JSON values by their ``str``).

    >>> request_digest({"b": 1, "a": [1.5, "x"]}) == request_digest({"a": [1.5, "x"], "b": 1})
    True
    """
    return hashlib.sha256(msgspec.json.encode(_plain(parameters), order="sorted")).hexdigest()


def actor_name(key_id: str | None, authenticated: bool) -> str:
    """``api:<key id>``; ``api:<key id>/unverified`` when the key id came from a token that did not authenticate;
    ``anonymous`` without a key id.

    >>> actor_name("00112233aabb", True), actor_name("00112233aabb", False), actor_name(None, False)
    ('api:00112233aabb', 'api:00112233aabb/unverified', 'anonymous')
    """
    if not key_id:
        return "anonymous"
    return f"api:{key_id}" if authenticated else f"api:{key_id}/unverified"


def _name(text: str) -> str:
    s = _BAD.sub("_", text)[:64]
    return s if _NAME_RE.fullmatch(s) else "unknown"


def api_audit_event(
    *,
    request_id: str,
    actor: str,
    route: str,
    result: str,
    ts: int,
    reason: str = "",
    detail: str = "",
    parameters: Mapping[str, Any] | None = None,
    client: str = "",
    scope: str = "",
    command_id: str | None = None,
    source: str = "api",
) -> AuditEvent:
    """The audit row of one API call. ``result``: ``applied`` (the call did what it asked: for a control command,
    the signed command was published; the flow audits its own ``applied``), ``refused`` (invalid request),
    ``denied`` (401/403/413/429) or ``error``; ``ts`` the request's wall-clock time, ns. ``source="cli"`` (key
    management by ``levibot api-keys``) records ``route`` as the action as it is, without the ``api.`` prefix."""
    text = f"{reason}: {detail}" if reason and detail else (reason or detail)
    return AuditEvent(
        id=stable_id("audit", "api", request_id, result, reason),
        actor=_name(actor),
        action=_name(f"api.{route}" if source == "api" else route),
        scope=scope[:128],
        result=result,  # type: ignore[arg-type]
        command_id=command_id,
        detail=text[:4096],
        parameters_digest=request_digest(parameters or {}),
        source=source,
        client_address=client[:64],
        ts=ts,
    )
