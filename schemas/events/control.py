"""The control plane: operator commands and the audit trail."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .base import (
    SCOPE_PATTERN,
    Event,
    Id,
    Name,
    SchemaVersion1,
    Text,
    Timestamp,
    _finite,
    _pattern,
    _ts,
    _version,
)

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


class ControlCommand(Event, tag="control_command", frozen=True, kw_only=True):
    """An operator command (``control`` topic, compacted by :attr:`compaction_key`).

    ``scope``: ``account:<name>``, ``symbol:<symbol>`` or ``strategy:<name>``; ``action`` one of
    :data:`CONTROL_ACTIONS`; ``issuer`` who sent it (an operator name or API key id); ``reason`` free text;
    ``ts`` ns UTC — the command takes effect at the first event at or after it. ``signature`` is the lowercase hex
    HMAC-SHA256 of the command's canonical bytes under the key named ``key_id`` (``operators.control.signing``);
    an unsigned or badly signed command is dead-lettered and alerted, never applied."""

    id: Id
    issuer: Name
    scope: Annotated[str, _pattern(SCOPE_PATTERN, max_length=128)]
    action: Literal[
        "halt", "reduce_only", "resume", "set_limit", "enable_strategy", "disable_strategy", "pin_model", "unpin_model"
    ]
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


class AuditEvent(Event, tag="audit_event", frozen=True, kw_only=True):
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
