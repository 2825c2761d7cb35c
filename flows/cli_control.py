"""`levibot control`: sign and send one operator command to the ``control`` topic, or show the control state.

``flows/cli.py`` adds the command group with :func:`register`::

    from flows.cli_control import register
    register(app)

Sub-commands: ``halt``, ``reduce-only``, ``resume``, ``set-limit NAME VALUE``, ``enable-strategy NAME``,
``disable-strategy NAME``, ``pin-model VERSION``, ``unpin-model`` (each with ``--scope``, ``--reason``,
``--issuer``) and ``status``. The signing key comes only from the environment (``LEVIBOT_CONTROL_KEY``,
``LEVIBOT_CONTROL_KEY_ID``; ``LEVIBOT_CONTROL_VERIFY_KEYS`` adds keys for verifying). Without a key every
sub-command refuses with exit code 2; a broker that cannot take the command is exit code 1. Operator guide:
``docs/control.md``.
"""

from __future__ import annotations

import getpass
import json
import math
import re
import time
import uuid
from typing import Any, NoReturn

import typer

from schemas.events import NAME_PATTERN

__all__ = ["register", "build_app", "status_data", "default_issuer", "sanitize_name", "new_command_id"]

_NAME_RE = re.compile(NAME_PATTERN)
_SCOPE_HELP = "account:<name>, symbol:<SYMBOL> or strategy:<name>."
_NO_KEY = (
    "LEVIBOT_CONTROL_KEY is not set: control commands are signed with a key that comes only from the "
    "environment (LEVIBOT_CONTROL_KEY, and LEVIBOT_CONTROL_KEY_ID for its id); see docs/control.md"
)


def sanitize_name(text: str, fallback: str = "operator") -> str:
    """``text`` made into a machine name (``NAME_PATTERN``): other characters become ``_``, a leading
    non-alphanumeric run is dropped, at most 64 characters.

    >>> sanitize_name("jane.doe"), sanitize_name("DOMAIN\\\\Jane Doe"), sanitize_name("__"), sanitize_name("ünï")
    ('jane.doe', 'DOMAIN_Jane_Doe', 'operator', 'n_')
    """
    s = re.sub(r"[^A-Za-z0-9_.:@/+-]", "_", text)
    s = re.sub(r"^[^A-Za-z0-9]+", "", s)[:64]
    return s if _NAME_RE.fullmatch(s) else fallback


def default_issuer() -> str:
    """The OS user name, sanitised (``operator`` when there is none)."""
    try:
        return sanitize_name(getpass.getuser())
    except Exception:  # no user name in the environment nor the password database
        return "operator"


def new_command_id() -> str:
    """A fresh, unique command id (``cmd-`` + uuid4 hex): two identical commands are two commands."""
    return f"cmd-{uuid.uuid4().hex}"


def _fail(msg: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings() -> Any:
    from flows.settings import Settings

    try:
        return Settings.from_env()
    except ValueError as exc:
        _fail(str(exc))


def _keys(s: Any, *, signing: bool) -> tuple[str, bytes | None, dict[str, bytes]]:
    """``(key_id, signing key or None, every verification key)`` from the settings; exits 2 when unusable."""
    from operators.control.signing import keyring, parse_key

    if signing and not s.control_key.strip():
        _fail(_NO_KEY)
    try:
        keys = keyring(s.control_key, s.control_key_id, s.control_verify_keys)
        key = parse_key(s.control_key) if s.control_key.strip() else None
    except ValueError as exc:
        _fail(f"bad control key configuration: {exc}")
    if not keys:
        _fail(_NO_KEY + " (or LEVIBOT_CONTROL_VERIFY_KEYS to only read)")
    return s.control_key_id, key, keys


def _send(action: str, scope: str, reason: str, issuer: str | None, parameters: dict[str, Any]) -> None:
    from connectors.control import ControlPublisher
    from connectors.kafka.sink import DeliveryError
    from operators.control.signing import sign
    from operators.control.state import check, parse_scope
    from schemas.codec import DecodeError
    from schemas.events import ControlCommand
    from schemas.time import iso

    s = _settings()
    key_id, key, _ = _keys(s, signing=True)
    assert key is not None
    try:
        parse_scope(scope)
    except ValueError as exc:
        _fail(str(exc))
    who = default_issuer() if issuer is None else issuer
    if _NAME_RE.fullmatch(who) is None:
        _fail(f"--issuer {who!r} does not match {NAME_PATTERN}")
    if action in ("halt", "reduce_only") and not reason.strip():
        _fail(f"{action.replace('_', '-')} needs a --reason")
    try:
        cmd = ControlCommand(
            id=new_command_id(),
            issuer=who,
            scope=scope,
            action=action,  # type: ignore[arg-type]
            parameters=parameters,
            reason=reason,
            ts=time.time_ns(),
            key_id=key_id,
        )
    except ValueError as exc:
        _fail(str(exc))
    problem = check(cmd)
    if problem is not None:
        _fail(f"not sent: the command would be refused ({problem[0]}): {problem[1]}")
    try:
        signed = sign(cmd, key)
        topic = s.topic("control")
        pub = ControlPublisher(s.kafka_bootstrap, topic)
        sent = pub.publish(signed)
    except (DecodeError, ValueError) as exc:
        _fail(f"not sent: {exc}")
    except (RuntimeError, DeliveryError) as exc:  # missing topic, broker down, delivery failed
        _fail(f"not sent: {exc}", code=1)
    typer.echo(
        f"sent {action} {scope} id={sent.id} issuer={sent.issuer} key_id={sent.key_id} ts={iso(sent.ts)} "
        f"topic={topic} key={sent.compaction_key}"
    )


def _who(cmd: Any) -> dict[str, Any]:
    from schemas.time import iso

    return {
        "id": cmd.id,
        "issuer": cmd.issuer,
        "ts": cmd.ts,
        "time": iso(cmd.ts),
        "reason": cmd.reason,
        "key_id": cmd.key_id,
    }


def status_data(view: Any) -> dict[str, Any]:
    """The state of a :class:`connectors.control.ControlView` as plain data (what ``status --json`` prints)."""
    st = view.state
    counts = {o: len(view.by_outcome(o)) for o in ("applied", "refused", "duplicate", "undecodable", "tombstone")}
    modes = {
        scope: {"mode": st.scope_mode(scope), **_who(c), "action": c.action} for scope, c in st.mode_commands().items()
    }
    limits = {
        f"account:{acct}": {name: {"value": st.limit_overrides(acct)[name], **_who(c)} for name, c in per.items()}
        for acct, per in st.limit_commands().items()
    }
    strategies = {
        f"strategy:{n}": {"enabled": c.action == "enable_strategy", **_who(c)}
        for n, c in st.strategy_commands().items()
    }
    mc = st.model_command()
    model = None if mc is None else {"pinned": st.pinned_model(), "action": mc.action, "scope": mc.scope, **_who(mc)}
    refused = []
    for r in view.records:
        if r.outcome in ("refused", "undecodable"):
            item: dict[str, Any] = {"partition": r.partition, "offset": r.offset, "outcome": r.outcome}
            if r.command is not None:
                item.update(
                    action=r.command.action,
                    scope=r.command.scope,
                    parameters=dict(r.command.parameters),
                    **_who(r.command),
                )
            item.update(refusal=r.reason, refusal_detail=r.detail)  # reason code and text (not the command's reason)
            refused.append(item)
    return {
        "topic": view.topic,
        "messages": len(view.records),
        "counts": counts,
        "modes": modes,
        "limits": limits,
        "strategies": strategies,
        "disabled_strategies": st.disabled_strategies(),
        "model": model,
        "pinned_model": st.pinned_model(),
        "refused": refused,
    }


def _print_status(d: dict[str, Any]) -> None:
    c = d["counts"]
    typer.echo(
        f"control topic {d['topic']}: {d['messages']} message(s): {c['applied']} applied, {c['refused']} "
        f"refused, {c['duplicate']} duplicate, {c['undecodable']} undecodable"
    )

    def since(x: dict[str, Any]) -> str:
        why = f": {x['reason']}" if x.get("reason") else ""
        return f"since {x['time']} by {x['issuer']} ({x['id']}){why}"

    typer.echo("modes:" if d["modes"] else "modes: every scope normal")
    for scope, m in d["modes"].items():
        typer.echo(f"  {scope:32} {m['mode']:12} {since(m)}")
    typer.echo("limit overrides:" if d["limits"] else "limit overrides: none")
    for scope, per in d["limits"].items():
        for name, x in per.items():
            typer.echo(f"  {scope:32} {name} = {x['value']!r}  {since(x)}")
    typer.echo("strategies:" if d["strategies"] else "strategies: all enabled")
    for scope, x in d["strategies"].items():
        typer.echo(f"  {scope:32} {'enabled' if x['enabled'] else 'disabled':12} {since(x)}")
    m = d["model"]
    if m is None:
        typer.echo("pinned model: none (following the registry's champion)")
    elif m["pinned"] is None:
        typer.echo(f"pinned model: none (unpinned {since(m)})")
    else:
        typer.echo(f"pinned model: {m['pinned']} {since(m)}")
    typer.echo(f"refused (not applied): {len(d['refused'])}")
    for r in d["refused"]:
        if "id" in r:
            typer.echo(
                f"  {r['id']} {r['action']} {r['scope']} by {r['issuer']} at {r['time']} key_id={r['key_id']}: "
                f"{r['refusal']} ({r['refusal_detail']})"
            )
        else:
            typer.echo(
                f"  partition {r['partition']} offset {r['offset']}: {r['outcome']} {r['refusal']} "
                f"({r['refusal_detail'][:200]})"
            )


def register(app: typer.Typer) -> None:
    """Add the ``control`` command group to the ``levibot`` Typer app."""
    app.add_typer(build_app(), name="control")


def build_app() -> typer.Typer:
    """The ``control`` command group on its own (``python -m flows.cli_control`` runs it without loading the rest
    of the CLI, which starts faster)."""
    control = typer.Typer(
        help="Operator commands on the signed, compacted `control` topic (docs/control.md).",
        no_args_is_help=True,
        add_completion=False,
    )

    scope_opt = typer.Option("account:default", "--scope", help=f"Scope of the command: {_SCOPE_HELP}")
    issuer_opt = typer.Option(None, "--issuer", help="Who sends it (default: the OS user name, sanitised).")
    reason_opt = typer.Option("", "--reason", help="Why (free text, kept in the audit trail).")
    reason_required = typer.Option(..., "--reason", help="Why (required; kept in the audit trail).")

    @control.command("halt")
    def halt(scope: str = scope_opt, reason: str = reason_required, issuer: str | None = issuer_opt) -> None:
        """Stop every order in the scope, reducing ones too, until `resume` of the same scope."""
        _send("halt", scope, reason, issuer, {})

    @control.command("reduce-only")
    def reduce_only(scope: str = scope_opt, reason: str = reason_required, issuer: str | None = issuer_opt) -> None:
        """Only orders that shrink a position in the scope, until `resume` of the same scope."""
        _send("reduce_only", scope, reason, issuer, {})

    @control.command("resume")
    def resume(scope: str = scope_opt, reason: str = reason_opt, issuer: str | None = issuer_opt) -> None:
        """Lift the halt or reduce-only of exactly this scope (other scopes keep theirs)."""
        _send("resume", scope, reason, issuer, {})

    @control.command("set-limit")
    def set_limit(
        name: str = typer.Argument(..., help="A numeric RiskLimits field, e.g. max_leverage."),
        value: str = typer.Argument(..., help="New value (finite, >= 0; integer for integer fields)."),
        scope: str = scope_opt,
        reason: str = reason_opt,
        issuer: str | None = issuer_opt,
    ) -> None:
        """Override one risk limit of an account (scope account:<name>)."""
        from operators.control.state import numeric_limit_fields

        kinds = numeric_limit_fields()
        if name not in kinds:
            _fail(f"{name!r} is not a numeric RiskLimits field; one of {', '.join(sorted(kinds))}")
        try:
            as_float = float(value)
        except ValueError:
            _fail(f"VALUE must be a number, got {value!r}")
        if not math.isfinite(as_float):
            _fail(f"VALUE must be finite, got {value!r}")
        number: float | int = int(as_float) if kinds[name] is int and as_float.is_integer() else as_float
        _send("set_limit", scope, reason, issuer, {"name": name, "value": number})

    @control.command("enable-strategy")
    def enable_strategy(
        name: str = typer.Argument(..., help="Strategy name."),
        reason: str = reason_opt,
        issuer: str | None = issuer_opt,
    ) -> None:
        """Count the strategy's intents again (scope strategy:<NAME>)."""
        _send("enable_strategy", f"strategy:{name}", reason, issuer, {})

    @control.command("disable-strategy")
    def disable_strategy(
        name: str = typer.Argument(..., help="Strategy name."),
        reason: str = reason_opt,
        issuer: str | None = issuer_opt,
    ) -> None:
        """Drop the strategy's contribution and unwind its positions (scope strategy:<NAME>)."""
        _send("disable_strategy", f"strategy:{name}", reason, issuer, {})

    @control.command("pin-model")
    def pin_model(
        version: str = typer.Argument(..., help="A model registry version."),
        scope: str = scope_opt,
        reason: str = reason_opt,
        issuer: str | None = issuer_opt,
    ) -> None:
        """Stop the model hot reload at VERSION (deployment-wide)."""
        _send("pin_model", scope, reason, issuer, {"version": version})

    @control.command("unpin-model")
    def unpin_model(scope: str = scope_opt, reason: str = reason_opt, issuer: str | None = issuer_opt) -> None:
        """Follow the registry's champion again."""
        _send("unpin_model", scope, reason, issuer, {})

    @control.command("status")
    def status(
        as_json: bool = typer.Option(False, "--json", help="Print the state as one JSON object."),
        timeout: float = typer.Option(10.0, help="Seconds to wait for the end of the topic."),
    ) -> None:
        """Show the state the control topic holds: modes per scope, limit overrides, strategies, the model pin, who
        set each and when and why, and every refused command."""
        from connectors.control import read_control

        s = _settings()
        _, _, keys = _keys(s, signing=False)
        try:
            view = read_control(s.kafka_bootstrap, s.topic("control"), keys, timeout_s=timeout)
        except (RuntimeError, TimeoutError) as exc:
            _fail(str(exc), code=1)
        data = status_data(view)
        if as_json:
            typer.echo(json.dumps(data, sort_keys=True))
        else:
            _print_status(data)

    return control


# exercised through a subprocess in tests/integration/flows/test_control_cli.py
if __name__ == "__main__":  # pragma: no cover
    build_app()()
