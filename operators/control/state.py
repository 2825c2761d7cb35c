"""``ControlState``: what the operators' commands have set, folded from the ``control`` topic.

Pure and deterministic: the same commands applied in the same order give the same state (and the same pickle),
whatever the wall clock. Signatures are checked *before* :meth:`ControlState.apply` (``operators.control.signing``;
the state never holds a key, because it is snapshotted); a command whose signature fails is only noted with
:meth:`ControlState.record_refusal`.

Semantics
---------

* **Slots.** Each command sets one slot, the same one its ``compaction_key`` names: the *mode* of its scope
  (``halt``, ``reduce_only``, ``resume``), one *limit* of an account (``set_limit``), the *enabled* flag of a
  strategy (``enable_strategy``, ``disable_strategy``), or the deployment's *model pin* (``pin_model``,
  ``unpin_model``). Within a slot the command applied last wins. Commands must be applied in topic order
  (``control`` has one partition); that is the order Kafka compaction keeps (the last message per key), so a state
  folded from the compacted topic equals the state of a flow that saw every command. The command's ``ts`` says
  *when* it takes effect (the flow applies it at its first event at or after ``ts``), not which command wins.
* **Modes.** ``halt`` > ``reduce_only`` > ``normal``. :meth:`ControlState.mode` of an order's (account, symbol,
  strategy) is the most restrictive of the three scopes' modes. ``resume`` lifts the halt or reduce-only of
  *exactly* its scope: resuming ``account:default`` leaves a halt of ``symbol:BTCUSD`` in force, and resuming a
  symbol does not undo an account halt. A later ``halt`` of a scope replaces its ``reduce_only`` and vice versa.
* **Limits.** ``set_limit`` needs an ``account:`` scope and ``parameters`` ``{"name": <field>, "value": <number>}``,
  where ``name`` is a numeric field of ``operators.risk.limits.RiskLimits`` (``max_leverage``, ``min_history``,
  ...) and ``value`` finite and >= 0 (every numeric ``RiskLimits`` field is), integral for integer fields. With
  ``base_limits`` given, the new value must also pass ``RiskLimits``' own checks together with the account's other
  overrides (e.g. ``resume_drawdown < max_drawdown``). An override stays until another ``set_limit`` of the same
  name replaces it.
* **Strategies.** ``enable_strategy``/``disable_strategy`` need a ``strategy:<name>`` scope; every strategy is
  enabled until disabled.
* **Model pin.** ``pin_model`` (``parameters`` ``{"version": <registry version>}``) and ``unpin_model`` need an
  ``account:`` scope (it is recorded; the pin holds for the whole deployment, whose registry is one).
* **Validation.** Any other parameter, a wrong scope kind, a missing or invalid parameter: the command is refused
  (:class:`AppliedResult` ``status="refused"`` with a reason code from :data:`APPLY_REASONS`) and changes nothing.
* **Idempotence.** Every applied or refused command's id is remembered: the same id again (a redelivery, a
  replayed message) reports ``duplicate`` and changes nothing, even with different content. Ids are kept for the
  life of the state (operator commands arrive at human rate).

>>> from schemas.events import ControlCommand
>>> T = 1_700_000_000_000_000_000
>>> def cmd(i, scope, action, **params):
...     return ControlCommand(id=f"c{i}", issuer="alice", scope=scope, action=action, parameters=params, ts=T + i)
>>> st = ControlState()
>>> st.apply(cmd(1, "symbol:BTCUSD", "reduce_only")).status
'applied'
>>> st.mode("default", "BTCUSD", "trend"), st.mode("default", "ETHUSD", "trend")
('reduce_only', 'normal')
>>> _ = st.apply(cmd(2, "account:default", "halt"))
>>> st.mode("default", "BTCUSD", "trend")
'halted'
>>> _ = st.apply(cmd(3, "account:default", "resume"))
>>> st.mode("default", "BTCUSD", "trend")          # the symbol's reduce-only is still in force
'reduce_only'
>>> st.apply(cmd(4, "account:default", "set_limit", name="max_leverage", value=1.5)).status
'applied'
>>> st.limit_overrides("default")
{'max_leverage': 1.5}
>>> r = st.apply(cmd(5, "account:default", "set_limit", name="lot_sizes", value=1.0))
>>> r.status, r.reason
('refused', 'unknown_limit')
>>> st.apply(cmd(4, "account:default", "halt")).status  # same id again
'duplicate'
>>> _ = st.apply(cmd(6, "strategy:trend", "disable_strategy"))
>>> st.strategy_enabled("trend"), st.strategy_enabled("breakout")
(False, True)
>>> _ = st.apply(cmd(7, "account:default", "pin_model", version="20260101T000000000000Z-ab12cd34"))
>>> st.pinned_model()
'20260101T000000000000Z-ab12cd34'
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal

from schemas.events import CONTROL_ACTIONS, NAME_PATTERN, SCOPE_PATTERN, ControlCommand

if TYPE_CHECKING:  # pragma: no cover
    from operators.risk.limits import RiskLimits

__all__ = [
    "Mode",
    "MODES",
    "APPLY_REASONS",
    "AppliedResult",
    "Refusal",
    "ControlState",
    "check",
    "numeric_limit_fields",
    "parse_scope",
    "slot_of",
]

Mode = Literal["normal", "reduce_only", "halted"]
#: Modes from least to most restrictive.
MODES: Final[tuple[Mode, ...]] = ("normal", "reduce_only", "halted")
_RANK: Final = {m: i for i, m in enumerate(MODES)}
_MODE_OF_ACTION: Final[dict[str, Mode]] = {"halt": "halted", "reduce_only": "reduce_only", "resume": "normal"}

#: Reason codes of a refused command: what :func:`check` (and ``base_limits``) can say.
APPLY_REASONS: Final = (
    "unknown_action",
    "invalid_scope",
    "wrong_scope",
    "missing_parameter",
    "unexpected_parameter",
    "unknown_limit",
    "invalid_value",
)

_SCOPE_RE: Final = re.compile(SCOPE_PATTERN)
_NAME_RE: Final = re.compile(NAME_PATTERN)
# parameters each action takes (all of them required)
_PARAMS: Final[dict[str, tuple[str, ...]]] = {
    "halt": (),
    "reduce_only": (),
    "resume": (),
    "set_limit": ("name", "value"),
    "enable_strategy": (),
    "disable_strategy": (),
    "pin_model": ("version",),
    "unpin_model": (),
}
_SCOPE_KIND: Final[dict[str, tuple[str, ...]]] = {
    "set_limit": ("account",),
    "enable_strategy": ("strategy",),
    "disable_strategy": ("strategy",),
    "pin_model": ("account",),
    "unpin_model": ("account",),
}
#: Refusals kept by a state for inspection (the oldest are dropped first).
REFUSALS_KEPT: Final = 100


@dataclass(frozen=True, slots=True)
class AppliedResult:
    """What :meth:`ControlState.apply` did with one command: ``status`` ``applied``, ``refused`` (``reason`` one of
    :data:`APPLY_REASONS`, ``detail`` human text) or ``duplicate`` (the id was seen before; nothing changed)."""

    command_id: str
    status: Literal["applied", "refused", "duplicate"]
    reason: str = ""
    detail: str = ""

    @property
    def applied(self) -> bool:
        return self.status == "applied"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A command that was not applied, with its reason code (an apply reason or a signature reason)."""

    command: ControlCommand
    reason: str
    detail: str = ""


def parse_scope(scope: str) -> tuple[str, str]:
    """``"symbol:BTCUSD" -> ("symbol", "BTCUSD")``; ``ValueError`` when ``scope`` does not match ``SCOPE_PATTERN``.

    >>> parse_scope("account:default"), parse_scope("strategy:ml:v2")
    (('account', 'default'), ('strategy', 'ml:v2'))
    """
    if type(scope) is not str or _SCOPE_RE.fullmatch(scope) is None:
        raise ValueError(f"scope {scope!r} is not account:<name>, symbol:<SYMBOL> or strategy:<name>")
    kind, _, name = scope.partition(":")
    return kind, name


def slot_of(cmd: ControlCommand) -> str:
    """The slot ``cmd`` sets (the part of ``compaction_key`` after the scope): ``mode``, ``limit:<name>``,
    ``enabled`` or ``model``."""
    return cmd.compaction_key[len(cmd.scope) + 1 :]


@cache
def numeric_limit_fields() -> dict[str, type]:
    """Numeric fields of ``RiskLimits`` that ``set_limit`` may change: ``{name: int | float}``.

    >>> numeric_limit_fields()["max_leverage"], numeric_limit_fields()["min_history"]
    (<class 'float'>, <class 'int'>)
    """
    from operators.risk.limits import RiskLimits

    hints = typing.get_type_hints(RiskLimits)
    return {f.name: hints[f.name] for f in dataclasses.fields(RiskLimits) if hints[f.name] in (int, float)}


def _limit_value(name: str, value: Any) -> tuple[float | int | None, str]:
    """The override value of limit ``name`` from a parameter, or ``(None, why)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"value of {name} must be a number, got {value!r}"
    if not math.isfinite(value) or value < 0:
        return None, f"value of {name} must be finite and >= 0, got {value!r}"
    if numeric_limit_fields()[name] is int:
        if value != int(value):
            return None, f"{name} takes an integer, got {value!r}"
        return int(value), ""
    return float(value), ""


def check(cmd: ControlCommand) -> tuple[str, str] | None:
    """Static validation of one command: ``None`` when it can be applied, else ``(reason, detail)`` with a reason
    from :data:`APPLY_REASONS`. Needs no state (the CLI runs it before sending).

    >>> check(ControlCommand(id="c", issuer="a", scope="symbol:BTCUSD", action="disable_strategy", ts=10**18))
    ('wrong_scope', 'disable_strategy needs a strategy:<name> scope, got symbol:BTCUSD')
    """
    action = cmd.action
    if action not in CONTROL_ACTIONS or action not in _PARAMS:
        return "unknown_action", f"unknown action {action!r}"
    try:
        kind, _ = parse_scope(cmd.scope)
    except ValueError as exc:
        return "invalid_scope", str(exc)
    kinds = _SCOPE_KIND.get(action)
    if kinds is not None and kind not in kinds:
        return "wrong_scope", f"{action} needs a {' or '.join(k + ':<name>' for k in kinds)} scope, got {cmd.scope}"
    wanted = _PARAMS[action]
    extra = sorted(set(cmd.parameters) - set(wanted))
    if extra:
        return "unexpected_parameter", f"{action} takes {list(wanted) or 'no parameters'}, got also {extra}"
    missing = [p for p in wanted if p not in cmd.parameters]
    if missing:
        return "missing_parameter", f"{action} needs parameters {missing}"
    p = cmd.parameters
    if action == "set_limit":
        name = p["name"]
        if not isinstance(name, str) or name not in numeric_limit_fields():
            return "unknown_limit", (
                f"{name!r} is not a numeric RiskLimits field; one of {', '.join(sorted(numeric_limit_fields()))}"
            )
        value, why = _limit_value(name, p["value"])
        if value is None:
            return "invalid_value", why
    elif action == "pin_model":
        v = p["version"]
        if not isinstance(v, str) or _NAME_RE.fullmatch(v) is None:
            return "invalid_value", f"version must be a model version matching {NAME_PATTERN}, got {v!r}"
    return None


class ControlState:
    """The control plane's state (module docstring: semantics). Picklable; compare with ``==``.

    ``base_limits``: the ``RiskLimits`` the overrides apply to; when given, ``set_limit`` also refuses values that
    ``RiskLimits`` itself rejects together with the account's other overrides."""

    def __init__(self, base_limits: RiskLimits | None = None) -> None:
        self.base_limits = base_limits
        self._modes: dict[str, ControlCommand] = {}  # scope -> last halt / reduce_only / resume
        self._limits: dict[str, dict[str, ControlCommand]] = {}  # account name -> limit name -> last set_limit
        self._strategies: dict[str, ControlCommand] = {}  # strategy name -> last enable / disable
        self._model: ControlCommand | None = None  # last pin_model / unpin_model
        self._seen: set[str] = set()
        self._refusals: list[Refusal] = []
        self.counts: dict[str, int] = {"applied": 0, "refused": 0, "duplicate": 0}

    # -- changes ---------------------------------------------------------------------------------------------

    def apply(self, cmd: ControlCommand) -> AppliedResult:
        """Apply one (already verified) command; see the module docstring for what each action does."""
        if cmd.id in self._seen:
            self.counts["duplicate"] += 1
            return AppliedResult(cmd.id, "duplicate", "duplicate", f"command {cmd.id} was already handled")
        self._seen.add(cmd.id)
        problem = check(cmd)
        if problem is None and cmd.action == "set_limit" and self.base_limits is not None:
            problem = self._check_against_base(cmd)
        if problem is not None:
            reason, detail = problem
            self.record_refusal(cmd, reason, detail)
            self.counts["refused"] += 1
            return AppliedResult(cmd.id, "refused", reason, detail)
        _kind, name = parse_scope(cmd.scope)
        a = cmd.action
        if a in _MODE_OF_ACTION:
            self._modes[cmd.scope] = cmd
        elif a == "set_limit":
            self._limits.setdefault(name, {})[str(cmd.parameters["name"])] = cmd
        elif a in ("enable_strategy", "disable_strategy"):
            self._strategies[name] = cmd
        else:  # pin_model / unpin_model
            self._model = cmd
        self.counts["applied"] += 1
        return AppliedResult(cmd.id, "applied", "", f"{a} {cmd.scope}")

    def record_refusal(self, cmd: ControlCommand, reason: str, detail: str = "") -> None:
        """Note a command that was not applied (e.g. a failed signature: ``unsigned``, ``unknown_key``,
        ``bad_signature``). Only the last :data:`REFUSALS_KEPT` are kept; the id is *not* marked as seen, so a forged
        copy of an id can never block the genuine command."""
        self._refusals.append(Refusal(cmd, reason, detail))
        if len(self._refusals) > REFUSALS_KEPT:
            del self._refusals[: len(self._refusals) - REFUSALS_KEPT]

    def _check_against_base(self, cmd: ControlCommand) -> tuple[str, str] | None:
        _, account = parse_scope(cmd.scope)
        name = str(cmd.parameters["name"])
        overrides = self.limit_overrides(account)
        value, _ = _limit_value(name, cmd.parameters["value"])
        base = self.base_limits
        assert value is not None and base is not None  # check(cmd) passed, and apply() calls this with base limits
        overrides[name] = value
        try:
            # the overrides are numeric fields only (numeric_limit_fields), which a str-keyed dict cannot tell mypy
            dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            return "invalid_value", f"RiskLimits refuses {name}={cmd.parameters['value']!r}: {exc}"
        return None

    # -- queries ---------------------------------------------------------------------------------------------

    def scope_mode(self, scope: str) -> Mode:
        """Mode set on exactly ``scope`` (``"normal"`` when none or after a resume)."""
        cmd = self._modes.get(scope)
        return "normal" if cmd is None else _MODE_OF_ACTION[cmd.action]

    def mode(self, account: str | None = "default", symbol: str | None = None, strategy: str | None = None) -> Mode:
        """Mode for an order of ``account``/``symbol``/``strategy`` (names, not scopes; ``None`` skips that scope):
        the most restrictive of the three scopes' modes."""
        best: Mode = "normal"
        for kind, name in (("account", account), ("symbol", symbol), ("strategy", strategy)):
            if name is not None:
                m = self.scope_mode(f"{kind}:{name}")
                if _RANK[m] > _RANK[best]:
                    best = m
        return best

    def limit_overrides(self, account: str = "default") -> dict[str, float | int]:
        """``{RiskLimits field: value}`` set by ``set_limit`` for ``account`` (a fresh dict, sorted by name)."""
        cmds = self._limits.get(account, {})
        return {n: _limit_value(n, cmds[n].parameters["value"])[0] for n in sorted(cmds)}  # type: ignore[misc]

    def effective_limits(self, base: RiskLimits, account: str = "default") -> RiskLimits:
        """``base`` with ``account``'s overrides applied (``ValueError`` if ``RiskLimits`` rejects them)."""
        overrides = self.limit_overrides(account)
        return dataclasses.replace(base, **overrides) if overrides else base  # type: ignore[arg-type]

    def strategy_enabled(self, name: str) -> bool:
        """False only after a ``disable_strategy`` of ``strategy:<name>`` not followed by an enable."""
        cmd = self._strategies.get(name)
        return cmd is None or cmd.action == "enable_strategy"

    def disabled_strategies(self) -> list[str]:
        return sorted(n for n, c in self._strategies.items() if c.action == "disable_strategy")

    def pinned_model(self) -> str | None:
        """The pinned model version, or None (follow the registry's champion)."""
        cmd = self._model
        return None if cmd is None or cmd.action == "unpin_model" else str(cmd.parameters["version"])

    def seen(self, command_id: str) -> bool:
        return command_id in self._seen

    # -- the commands behind the state (who, when, why) ------------------------------------------------------

    def mode_commands(self) -> dict[str, ControlCommand]:
        """``{scope: last mode command}`` (including resumes), sorted by scope."""
        return {s: self._modes[s] for s in sorted(self._modes)}

    def limit_commands(self) -> dict[str, dict[str, ControlCommand]]:
        """``{account: {limit name: last set_limit}}``, sorted."""
        return {a: {n: self._limits[a][n] for n in sorted(self._limits[a])} for a in sorted(self._limits)}

    def strategy_commands(self) -> dict[str, ControlCommand]:
        """``{strategy: last enable/disable}``, sorted."""
        return {s: self._strategies[s] for s in sorted(self._strategies)}

    def model_command(self) -> ControlCommand | None:
        return self._model

    def slots(self) -> dict[str, ControlCommand]:
        """Every slot's current command keyed by its compaction key, sorted (the model pin under its own key)."""
        out: dict[str, ControlCommand] = {}
        for c in self._modes.values():
            out[c.compaction_key] = c
        for per in self._limits.values():
            for c in per.values():
                out[c.compaction_key] = c
        for c in self._strategies.values():
            out[c.compaction_key] = c
        if self._model is not None:
            out[self._model.compaction_key] = self._model
        return dict(sorted(out.items()))

    def refusals(self) -> list[Refusal]:
        """The last refused commands, oldest first."""
        return list(self._refusals)

    def summary(self) -> dict[str, Any]:
        """The effective state as plain sorted data: ``modes`` (non-normal scopes), ``limits`` per account,
        ``disabled_strategies``, ``pinned_model``."""
        return {
            "modes": {s: self.scope_mode(s) for s in sorted(self._modes) if self.scope_mode(s) != "normal"},
            "limits": {a: self.limit_overrides(a) for a in sorted(self._limits)},
            "disabled_strategies": self.disabled_strategies(),
            "pinned_model": self.pinned_model(),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ControlState):
            return NotImplemented
        return (
            self.slots() == other.slots()
            and self._seen == other._seen
            and self._refusals == other._refusals
            and self.base_limits == other.base_limits
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ControlState({self.summary()!r})"
