"""Control plane: signed operator commands (halt, reduce-only, resume, limits, strategies, model pin) and their
audit trail. Pure and deterministic; the Kafka and PostgreSQL sides live in ``connectors/control.py`` and the
``audit`` table, the command line in ``flows/cli_control.py``. Operator guide: ``docs/control.md``.

>>> from operators.control import ControlState, sign, verify
>>> ControlState().mode("default", "BTCUSD", "trend")
'normal'
"""

from .audit import AUDIT_RESULTS, REFUSAL_ALERT_KIND, audit_event, audit_id, parameters_digest, refusal_alert
from .signing import (
    MIN_KEY_BYTES,
    SIGNATURE_REASONS,
    Verdict,
    canonical_bytes,
    canonical_parameters,
    keyring,
    parse_key,
    parse_keyring,
    sign,
    signature_of,
    verify,
)
from .state import (
    APPLY_REASONS,
    MODES,
    AppliedResult,
    ControlState,
    Mode,
    Refusal,
    check,
    numeric_limit_fields,
    parse_scope,
    slot_of,
)

__all__ = [
    "APPLY_REASONS",
    "MODES",
    "Mode",
    "AppliedResult",
    "Refusal",
    "ControlState",
    "check",
    "numeric_limit_fields",
    "parse_scope",
    "slot_of",
    "SIGNATURE_REASONS",
    "MIN_KEY_BYTES",
    "Verdict",
    "canonical_bytes",
    "canonical_parameters",
    "signature_of",
    "sign",
    "verify",
    "parse_key",
    "parse_keyring",
    "keyring",
    "AUDIT_RESULTS",
    "REFUSAL_ALERT_KIND",
    "audit_event",
    "audit_id",
    "parameters_digest",
    "refusal_alert",
]
