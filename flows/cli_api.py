"""``levibot api`` (serve the operator API) and ``levibot api-keys create|list|revoke``.

``flows/cli.py`` adds them with :func:`register`. Keys are stored only as an Argon2id hash (``api_keys`` table,
migration 0004: run ``levibot db migrate`` first); ``create`` prints the token once. Guide: ``docs/api.md``.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import typer

__all__ = ["register", "build_keys_app", "serve", "export_openapi"]


def _fail(msg: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings() -> tuple[Any, Any]:
    from flows.api.settings import ApiSettings
    from flows.settings import Settings

    try:
        return Settings.from_env(), ApiSettings.from_env()
    except ValueError as exc:
        _fail(str(exc))


def _db(dsn: str) -> Any:
    import psycopg

    from connectors.postgres.api import ApiDatabase

    try:
        return ApiDatabase(dsn, max_size=1).open(wait_s=15.0)
    except (psycopg.Error, Exception) as exc:  # pool timeout, refused connection
        _fail(f"PostgreSQL is not reachable: {type(exc).__name__} (LEVIBOT_PG_DSN; `levibot db migrate`)", code=1)


def export_openapi(path: Path) -> None:
    """Write the OpenAPI schema of the app (sorted keys, 2-space indent, final newline) to ``path``."""
    from flows.api.app import create_app
    from flows.api.settings import ApiSettings

    schema = create_app(api_settings=ApiSettings()).openapi()
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def serve(host: str, port: int, log_level: str = "info", *, workers: int = 1, access_log: bool = True) -> None:
    """uvicorn on ``create_app`` (imported by each of ``workers`` processes: ``--workers`` > 1 needs shared
    rate limits, i.e. a Redis ``LEVIBOT_API_RATE_STORAGE``, or every process would count its own quota)."""
    import uvicorn

    # access log: method, path and status only (tokens travel in headers, never in the URL)
    uvicorn.run(
        "flows.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=512,
        h11_max_incomplete_event_size=16_384,
        workers=workers,
        access_log=access_log,
    )


def _audit_cli(db: Any, action: str, key_id: str, result: str, detail: str, params: dict[str, Any]) -> None:
    import time
    import uuid

    from flows.cli_control import default_issuer
    from operators.api.audit import api_audit_event

    db.write_audit(
        api_audit_event(
            request_id=f"cli-{uuid.uuid4().hex}",
            actor=default_issuer(),
            route=action,
            result=result,
            detail=detail,
            parameters=params,
            ts=time.time_ns(),
            scope=f"api_key:{key_id}",
            source="cli",
        )
    )


def build_keys_app() -> typer.Typer:
    keys = typer.Typer(
        help="API keys of `levibot api`: create (the token is shown once), list, revoke.",
        no_args_is_help=True,
        add_completion=False,
    )

    @keys.command("create")
    def create(
        name: str = typer.Option(..., "--name", help="Who or what the key is for (shown in listings)."),
        scopes: str = typer.Option("read", "--scopes", help="Comma-separated: read, trade, admin."),
        tier: str | None = typer.Option(
            None, "--tier", help="free, pro, enterprise or a configured tier (default LEVIBOT_API_DEFAULT_TIER)."
        ),
        accounts: str = typer.Option("default", "--accounts", help="Accounts it may command, comma-separated."),
        rate: str = typer.Option("", "--rate", help="Own quota replacing the tier's, e.g. 120/minute."),
        expires_days: float = typer.Option(0.0, "--expires-days", help="Expire after this many days (0: never)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Create a key and print its token once: store it now, it cannot be shown again."""
        from flows.cli_control import default_issuer, sanitize_name
        from operators.api.access import check_accounts, normalise_scopes, parse_rate
        from operators.api.keys import KeyHasher, make_token, parse_token

        s, a = _settings()
        tiers = a.tier_map()
        tier_name = tier or a.default_tier
        if tier_name not in tiers:
            _fail(f"unknown tier {tier_name!r}; one of {', '.join(sorted(tiers))}")
        t = tiers[tier_name]
        try:
            sc = normalise_scopes(scopes.split(","))
            acc = check_accounts(accounts.split(","), t)
            if rate:
                parse_rate(rate)
        except ValueError as exc:
            _fail(str(exc))
        beyond = [x for x in sc if x not in t.scopes]
        if beyond:
            _fail(f"tier {t.name!r} does not allow the scope(s) {', '.join(beyond)}")
        if len(name) > 128 or not name.strip():
            _fail("--name must be 1-128 characters")
        if expires_days < 0:
            _fail("--expires-days must be >= 0")
        token = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
        key_id, secret = parse_token(token)  # type: ignore[misc]
        db = _db(s.pg_dsn)
        try:
            expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
            row = db.create_key(
                key_id=key_id,
                name=name.strip(),
                secret_hash=KeyHasher().hash(secret),
                scopes=sc,
                tier=t.name,
                accounts=acc,
                rate=rate,
                created_by=sanitize_name(default_issuer()),
                expires_at=expires,
            )
            _audit_cli(
                db,
                "api_keys.create",
                key_id,
                "applied",
                "key created",
                {"scopes": list(sc), "tier": t.name, "accounts": list(acc), "rate": rate},
            )
        finally:
            db.close()
        info = row.public(datetime.now(UTC))
        if as_json:
            typer.echo(json.dumps({**info, "token": token}, sort_keys=True))
        else:
            typer.echo(f"key {key_id} ({name}): scopes {','.join(sc)}, tier {t.name}, accounts {','.join(acc)}")
            typer.echo(f"token (shown once, keep it secret): {token}")

    @keys.command("list")
    def list_(
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
        active: bool = typer.Option(False, "--active", help="Only keys that are not revoked."),
    ) -> None:
        """Every key: id, name, scopes, tier, accounts, state (never the secret or its hash)."""
        s, _ = _settings()
        db = _db(s.pg_dsn)
        try:
            now = datetime.now(UTC)
            rows = [r.public(now) for r in db.list_keys(include_revoked=not active)]
        finally:
            db.close()
        if as_json:
            typer.echo(json.dumps(rows, sort_keys=True))
            return
        if not rows:
            typer.echo("no API keys")
        for r in rows:
            typer.echo(
                f"{r['key_id']}  {r['state']:8} {','.join(r['scopes']):16} {r['tier']:10} "
                f"{','.join(r['accounts']):16} created {r['created_at'][:19]} by {r['created_by']}  {r['name']}"
            )

    @keys.command("revoke")
    def revoke(key_id: str = typer.Argument(..., help="The key id (12 hex digits, as `list` shows).")) -> None:
        """Revoke a key for good: every later request with it is refused (401) and audited."""
        from flows.cli_control import default_issuer
        from operators.api.keys import is_key_id

        if not is_key_id(key_id):
            _fail("KEY_ID is 12 lowercase hex digits")
        s, _ = _settings()
        db = _db(s.pg_dsn)
        try:
            out = db.revoke_key(key_id, default_issuer())
            if out == "revoked":
                _audit_cli(db, "api_keys.revoke", key_id, "applied", "key revoked", {"key_id": key_id})
        finally:
            db.close()
        if out == "unknown":
            _fail(f"no API key {key_id}", code=1)
        typer.echo(f"key {key_id} {'revoked' if out == 'revoked' else 'was already revoked'}")

    return keys


def register(app: typer.Typer) -> None:
    """Add ``api`` and ``api-keys`` to the ``levibot`` Typer app."""

    @app.command("api")
    def api(
        host: str | None = typer.Option(None, help="Bind address (default LEVIBOT_API_HOST, 127.0.0.1)."),
        port: int | None = typer.Option(None, help="Port (default LEVIBOT_API_PORT, 8700)."),
        openapi_out: Path | None = typer.Option(
            None, "--openapi-out", help="Write the OpenAPI schema to this file and exit."
        ),
        log_level: str = typer.Option("info", help="uvicorn log level."),
        workers: int | None = typer.Option(
            None,
            min=1,
            max=64,
            help="Worker processes (default "
            "LEVIBOT_API_WORKERS, 1); more than one needs a Redis "
            "LEVIBOT_API_RATE_STORAGE.",
        ),
        access_log: bool = typer.Option(
            True, "--access-log/--no-access-log", help="uvicorn's access log (method, path, status)."
        ),
    ) -> None:
        """Serve the operator API (FastAPI on uvicorn): read endpoints over PostgreSQL, signed control commands
        (docs/api.md)."""
        if openapi_out is not None:
            export_openapi(openapi_out)
            typer.echo(f"wrote {openapi_out}")
            return
        _, a = _settings()
        n = workers or a.workers
        if n > 1 and not a.rate_storage.startswith("redis"):
            _fail("more than one worker needs shared rate limits: set LEVIBOT_API_RATE_STORAGE=redis://...")
        serve(host or a.host, port or a.port, log_level, workers=n, access_log=access_log)

    app.add_typer(build_keys_app(), name="api-keys")


def main() -> None:
    """``levibot api-keys`` on its own (loads only what key management needs)."""
    build_keys_app()()
