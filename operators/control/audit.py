"""``AuditEvent`` for a control command: who asked for what, when, and what became of it.

The event's id is deterministic — a function of the command (id, content and signature) and of the result — so a
flow that re-emits it after a recovery writes the same row again, which the append-only ``audit`` table ignores
(``ON CONFLICT DO NOTHING``). ``parameters_digest`` is the hex SHA-256 of the command's canonical parameters
(``operators.control.signing.canonical_parameters``), never the parameters themselves; ``ts`` is the command's
event time.

>>> from schemas.events import ControlCommand
>>> from operators.control.state import ControlState
>>> cmd = ControlCommand(id="cmd-1", issuer="alice", scope="account:default", action="set_limit",
...                      parameters={"name": "max_leverage", "value": 1.5}, reason="desk limit",
...                      ts=1_700_000_000_000_000_000)
>>> ev = audit_event(cmd, ControlState().apply(cmd))
>>> ev.actor, ev.action, ev.scope, ev.result, ev.command_id, ev.ts
('alice', 'set_limit', 'account:default', 'applied', 'cmd-1', 1700000000000000000)
>>> ev.parameters_digest == parameters_digest(cmd.parameters), len(ev.parameters_digest)
(True, 64)
>>> ev.id == audit_event(cmd, "applied").id       # deterministic: same command, same result, same id
True
>>> from operators.control.signing import Verdict
>>> audit_event(cmd, Verdict(False, "bad_signature", "signature does not match key 'default'")).detail
"bad_signature: signature does not match key 'default'"
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final, Literal, cast

from operators.control.signing import SIGNATURE_REASONS, Verdict, canonical_bytes, canonical_parameters
from operators.control.state import AppliedResult
from operators.ids import stable_id
from schemas.events import Alert, AuditEvent, ControlCommand

__all__ = ["AUDIT_RESULTS", "REFUSAL_ALERT_KIND", "audit_event", "audit_id", "parameters_digest", "refusal_alert"]

#: ``AuditEvent.result`` values.
AUDIT_RESULTS: Final = ("applied", "refused", "denied", "error")
_Outcome = Literal["applied", "refused", "denied", "error"]
#: ``Alert.kind`` of a refused control command.
REFUSAL_ALERT_KIND: Final = "control.refused"


def parameters_digest(parameters: Mapping[str, object]) -> str:
    """Hex SHA-256 of the canonical JSON of ``parameters`` (sorted keys, compact)."""
    return hashlib.sha256(canonical_parameters(parameters)).hexdigest()


def audit_id(cmd: ControlCommand, result: str, reason: str = "") -> str:
    """``audit-<20 hex>`` from the command id, the result, the reason and a digest of the whole signed message (so
    two different forged messages reusing one id get two audit rows)."""
    message = hashlib.sha256(canonical_bytes(cmd) + b"\x00" + cmd.signature.encode("utf-8", "replace")).hexdigest()
    return stable_id("audit", cmd.id, result, reason, message)


def audit_event(
    cmd: ControlCommand, result: AppliedResult | Verdict | str, detail: str = "", source: str = "flow"
) -> AuditEvent:
    """The audit entry for ``cmd``.

    ``result``: an :class:`~operators.control.state.AppliedResult` (``applied`` or ``refused``; a ``duplicate``
    has nothing to audit and raises ``ValueError``), a failed :class:`~operators.control.signing.Verdict`
    (``refused`` with the signature reason), or one of :data:`AUDIT_RESULTS` as text. ``detail`` defaults to
    ``"<reason>: <detail>"`` of the result; ``source`` names the writer (``flow``, ``cli``, ``api``)."""
    outcome: _Outcome
    if isinstance(result, AppliedResult):
        if result.status == "duplicate":
            raise ValueError(f"command {cmd.id} is a duplicate: it changed nothing and was audited the first time")
        outcome, reason, text = result.status, result.reason, result.detail
    elif isinstance(result, Verdict):
        if result.ok:
            raise ValueError("a passed signature check is not an outcome; audit the result of applying the command")
        outcome, reason, text = "refused", result.reason, result.detail
    elif result in AUDIT_RESULTS:
        outcome, reason, text = cast(_Outcome, result), "", ""
    else:
        raise ValueError(f"result must be an AppliedResult, a failed Verdict or one of {AUDIT_RESULTS}, got {result!r}")
    if not detail:
        detail = f"{reason}: {text}" if reason and text else (reason or text)
    return AuditEvent(
        id=audit_id(cmd, outcome, reason),
        actor=cmd.issuer,
        action=cmd.action,
        scope=cmd.scope[:128],
        result=outcome,
        command_id=cmd.id,
        detail=detail[:4096],
        parameters_digest=parameters_digest(cmd.parameters),
        source=source,
        ts=cmd.ts,
    )


def refusal_alert(cmd: ControlCommand, reason: str, detail: str = "") -> Alert:
    """The alert for a command that was not applied: ``critical`` when its signature failed (one of
    ``SIGNATURE_REASONS``: a forgery, or a sender with a wrong or retired key), ``warning`` when it was signed but
    invalid. Deterministic id; ``dedupe_key`` groups repeats by reason and key id; ``ts`` is the command's.

    >>> cmd = ControlCommand(id="cmd-9", issuer="mallory", scope="account:default", action="resume",
    ...                      ts=1_700_000_000_000_000_000, signature="00" * 32)
    >>> a = refusal_alert(cmd, "bad_signature", "signature does not match key 'default'")
    >>> a.severity, a.kind, a.labels["reason"], a.dedupe_key
    ('critical', 'control.refused', 'bad_signature', 'control.refused:bad_signature:default')
    """
    severity = "critical" if reason in SIGNATURE_REASONS else "warning"
    text = (
        f"control command {cmd.id} ({cmd.action} {cmd.scope}, issuer {cmd.issuer}, key {cmd.key_id}) refused: {reason}"
    )
    if detail:
        text += f" ({detail})"
    return Alert(
        id=stable_id("alert", audit_id(cmd, "refused", reason)),
        severity=severity,  # type: ignore[arg-type]
        kind=REFUSAL_ALERT_KIND,
        message=text[:4096],
        labels={
            "reason": reason[:256],
            "action": cmd.action,
            "scope": cmd.scope[:256],
            "issuer": cmd.issuer[:256],
            "key_id": cmd.key_id[:256],
        },
        dedupe_key=f"{REFUSAL_ALERT_KIND}:{reason}:{cmd.key_id}"[:256],
        ts=cmd.ts,
    )
