"""Control commands from API requests: the same checks as ``levibot control`` before anything is signed.

:func:`build_command` returns an unsigned :class:`~schemas.events.ControlCommand` or raises :class:`Rejected` with
the reason code the flow would refuse it with (``operators.control.state.check``), plus the API's own:
``missing_reason`` (halt and reduce-only need one), ``account_not_allowed`` (the key does not name the account).
Signing (``operators.control.signing.sign``) and publishing (``connectors.control.ControlPublisher``) are done by
the caller, with the deployment's key: an API key never signs anything itself.

>>> from operators.api.access import Principal
>>> p = Principal("00112233aabb", ("trade",), "pro", ("default",))
>>> cmd = build_command(p, "halt", "account:default", "feed outage", {}, ts=1_700_000_000_000_000_000,
...                     command_id="cmd-1", key_id="default")
>>> cmd.issuer, cmd.action, cmd.scope, cmd.signature
('api:00112233aabb', 'halt', 'account:default', '')
>>> build_command(p, "halt", "account:other", "x", {}, ts=1_700_000_000_000_000_000, command_id="c", key_id="d")
Traceback (most recent call last):
...
operators.api.commands.Rejected: account_not_allowed: this key may not act on account 'other'
>>> build_command(p, "set_limit", "account:default", "", {"name": "max_leverage", "value": -1.0},
...               ts=1_700_000_000_000_000_000, command_id="c", key_id="d").action
Traceback (most recent call last):
...
operators.api.commands.Rejected: invalid_value: ...
"""

from __future__ import annotations

import math
from typing import Any

from operators.api.access import Principal, may_act_on
from operators.control.state import check, numeric_limit_fields, parse_scope
from schemas.events import ControlCommand

__all__ = ["Rejected", "build_command"]


class Rejected(ValueError):
    """A request that would not make a valid command: ``reason`` code and ``detail`` text."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def build_command(
    p: Principal,
    action: str,
    scope: str,
    reason: str,
    parameters: dict[str, Any],
    *,
    ts: int,
    command_id: str,
    key_id: str,
) -> ControlCommand:
    """An unsigned command of ``p`` (issuer ``api:<key id>``), checked as the flow will check it."""
    try:
        kind, name = parse_scope(scope)
    except ValueError as exc:
        raise Rejected("invalid_scope", str(exc)) from None
    if kind == "account" and not may_act_on(p, name):
        raise Rejected("account_not_allowed", f"this key may not act on account {name!r}")
    if action in ("halt", "reduce_only") and not reason.strip():
        raise Rejected("missing_reason", f"{action} needs a reason")
    params = dict(parameters)
    if action == "set_limit":
        kinds = numeric_limit_fields()
        lname, value = params.get("name"), params.get("value")
        if lname not in kinds:
            raise Rejected("unknown_limit", f"{lname!r} is not a numeric RiskLimits field")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Rejected("invalid_value", "value must be a finite number")
        if kinds[lname] is int and float(value).is_integer():
            params["value"] = int(value)
    try:
        cmd = ControlCommand(
            id=command_id,
            issuer=p.actor,
            scope=scope,
            action=action,  # type: ignore[arg-type]
            parameters=params,
            reason=reason,
            ts=ts,
            key_id=key_id,
        )
    except (TypeError, ValueError) as exc:
        raise Rejected("invalid_command", str(exc)) from None
    problem = check(cmd)
    if problem is not None:
        raise Rejected(*problem)
    return cmd
