"""Runtime settings, read once from the environment (secrets only ever come from here).

Every setting has a default that runs the embedded path on this machine; pointing a setting at
an existing service (``LEVIBOT_KAFKA_BOOTSTRAP``, ``LEVIBOT_PG_DSN``, ``LEVIBOT_CLICKHOUSE_DSN``)
switches to it without code changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The local services of scripts/services.sh listen on these ports (LEVIBOT_KAFKA_PORT, LEVIBOT_PG_PORT).
DEFAULT_KAFKA_BOOTSTRAP = f"127.0.0.1:{os.environ.get('LEVIBOT_KAFKA_PORT') or 9092}"
DEFAULT_PG_DSN = f"postgresql://levibot:levibot@127.0.0.1:{os.environ.get('LEVIBOT_PG_PORT') or 55432}/levibot"


class MissingSecrets(ValueError):
    """A live process was started without a secret it needs. The message names every missing variable, what it is
    for and how to make one; nothing in it is a secret. ``levibot`` prints it and exits with status 2."""

    def __init__(self, process: str, missing: dict[str, str]) -> None:
        self.process, self.missing = process, dict(missing)
        what = "; ".join(f"{name} ({why})" for name, why in missing.items())
        super().__init__(
            f"{process} refuses to start without its secrets: set {what}. Secrets come only from the environment "
            "(docker compose: the .env file, see .env.example; Kubernetes: the levibot-secrets Secret); make a key with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` (docs/deploy.md)."
        )


def require_secrets(process: str, values: dict[str, str], needed: dict[str, str]) -> None:
    """Raise :class:`MissingSecrets` unless every variable of ``needed`` (name -> what it is for) has a non-blank
    value in ``values``.

    >>> require_secrets("levibot run --live", {"LEVIBOT_CONTROL_KEY": "k" * 32}, {"LEVIBOT_CONTROL_KEY": "signs"})
    >>> try:
    ...     require_secrets("levibot run --live", {}, {"LEVIBOT_CONTROL_KEY": "signs control commands"})
    ... except MissingSecrets as exc:
    ...     print(exc.missing)
    {'LEVIBOT_CONTROL_KEY': 'signs control commands'}
    """
    missing = {name: why for name, why in needed.items() if not (values.get(name) or "").strip()}
    if missing:
        raise MissingSecrets(process, missing)


def _default_var() -> Path:
    return Path(os.environ.get("LEVIBOT_VAR", str(Path.cwd() / "var")))


@dataclass(frozen=True)
class Settings:
    """All knobs of a LeviBot process. Field docs double as the configuration reference."""

    kafka_bootstrap: str = field(
        default=DEFAULT_KAFKA_BOOTSTRAP,
        metadata={"env": "LEVIBOT_KAFKA_BOOTSTRAP", "doc": "Kafka bootstrap servers, host:port[,host:port]."},
    )
    topic_prefix: str = field(
        default="",
        metadata={
            "env": "LEVIBOT_TOPIC_PREFIX",
            "doc": "Prefix for every topic name (isolates test runs and tenants).",
        },
    )
    pg_dsn: str = field(
        default=DEFAULT_PG_DSN,
        metadata={"env": "LEVIBOT_PG_DSN", "doc": "PostgreSQL/TimescaleDB DSN (libpq URI)."},
    )
    clickhouse_dsn: str = field(
        default="",
        metadata={
            "env": "LEVIBOT_CLICKHOUSE_DSN",
            "doc": "ClickHouse DSN: chdb:///path for the embedded engine, http(s)://user:pw@host:8123/db for a server. "
            "Empty means embedded under <var>/clickhouse.",
        },
    )
    var_dir: Path = field(
        default_factory=_default_var,
        metadata={"env": "LEVIBOT_VAR", "doc": "Directory for embedded stores, recovery snapshots and reports."},
    )
    max_message_bytes: int = field(
        default=1 << 20,
        metadata={
            "env": "LEVIBOT_MAX_MESSAGE_BYTES",
            "doc": "Largest accepted Kafka message value, bytes; larger ones go to dlq.",
        },
    )
    consume_batch: int = field(
        default=5000,
        metadata={"env": "LEVIBOT_CONSUME_BATCH", "doc": "Most messages taken from one Kafka partition per poll."},
    )
    symbols: str = field(
        default="BTC-USD,ETH-USD",
        metadata={
            "env": "LEVIBOT_SYMBOLS",
            "doc": "The traded universe, comma separated: ticks of other symbols go to dlq as unknown_symbol, and the "
            "account's event time waits for every one of them (each needs a feed).",
        },
    )
    control_key: str = field(
        default="",
        repr=False,
        metadata={
            "env": "LEVIBOT_CONTROL_KEY",
            "doc": "Secret HMAC-SHA256 key that signs (and verifies) control commands: the UTF-8 bytes of the text, "
            "or hex-decoded after a `hex:` prefix; at least 16 bytes. Empty: `levibot control` refuses to run "
            "(docs/control.md).",
        },
    )
    control_key_id: str = field(
        default="default",
        metadata={"env": "LEVIBOT_CONTROL_KEY_ID", "doc": "Key id of LEVIBOT_CONTROL_KEY, written into each command."},
    )
    control_verify_keys: str = field(
        default="",
        repr=False,
        metadata={
            "env": "LEVIBOT_CONTROL_VERIFY_KEYS",
            "doc": "Further keys accepted when verifying control commands (key rotation): comma-separated "
            "`key_id=key` pairs, each key in the LEVIBOT_CONTROL_KEY format.",
        },
    )
    metrics_port: int = field(
        default=9464,
        metadata={"env": "LEVIBOT_METRICS_PORT", "doc": "Port of the Prometheus /metrics endpoint (0 disables it)."},
    )
    metrics_host: str = field(
        default="127.0.0.1",
        metadata={
            "env": "LEVIBOT_METRICS_HOST",
            "doc": "Address the /metrics endpoint binds: loopback only by default; 0.0.0.0 (all interfaces) inside a "
            "container or pod, where Prometheus scrapes it from outside (docker-compose.yml and k8s/ set it).",
        },
    )

    sink_buffer_events: int = field(
        default=1_000_000,
        metadata={
            "env": "LEVIBOT_SINK_BUFFER_EVENTS",
            "doc": "Bound of each store sink's outage buffer (the spool under <var>/spool), events per sink and worker: "
            "while a store is down its rows wait there (in memory and on disk) and are written when it is back; a full "
            "spool makes the flow wait (docs/reliability.md).",
        },
    )
    sink_close_timeout_s: int = field(
        default=30,
        metadata={
            "env": "LEVIBOT_SINK_CLOSE_TIMEOUT_S",
            "doc": "Seconds a stopping flow waits for a store sink's spool to drain; what is left stays on disk and is "
            "written at the next start.",
        },
    )
    kafka_breaker_open_after_s: int = field(
        default=5,
        metadata={
            "env": "LEVIBOT_KAFKA_BREAKER_OPEN_AFTER_S",
            "doc": "Seconds a Kafka sink waits for the broker's acknowledgement before its circuit breaker opens (and "
            "alerts); it keeps waiting, nothing is dropped.",
        },
    )
    orders_outage_reduce_only_s: int = field(
        default=30,
        metadata={
            "env": "LEVIBOT_ORDERS_OUTAGE_REDUCE_ONLY_S",
            "doc": "Seconds orders may stay unpublishable (the kafka.orders breaker open) before the flow sends a "
            "signed reduce_only command for account:default on `control`; 0 never. Lifted only by an operator.",
        },
    )

    reports_silence_reduce_only_s: int = field(
        default=30,
        metadata={
            "env": "LEVIBOT_REPORTS_SILENCE_REDUCE_ONLY_S",
            "doc": "Seconds an order sent to a remote venue (--venue paper) may wait for its first execution report "
            "(ack, fill, reject, ...) before the flow sends a signed reduce_only command for the order's account on "
            "`control`; 0 never. Lifted only by an operator (docs/reliability.md).",
        },
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``); unknown variables are ignored."""
        env = dict(os.environ if env is None else env)
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env and env[name] != "":
                raw = env[name]
                if f.type in ("int", int):
                    try:
                        kwargs[f.name] = int(raw)
                    except ValueError as exc:
                        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
                elif f.type in ("Path", Path):
                    kwargs[f.name] = Path(raw)
                else:
                    kwargs[f.name] = raw
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def clickhouse_dsn_resolved(self) -> str:
        """The ClickHouse DSN, defaulting to the embedded chDB store under ``var_dir``."""
        return self.clickhouse_dsn or f"chdb://{(self.var_dir / 'clickhouse').resolve()}"

    @property
    def symbol_list(self) -> tuple[str, ...]:
        """``symbols`` as a tuple (order kept, duplicates and blanks removed)."""
        out: list[str] = []
        for x in self.symbols.split(","):
            x = x.strip()
            if x and x not in out:
                out.append(x)
        return tuple(out)

    def topic(self, name: str) -> str:
        """Full topic name for a registry topic, with the configured prefix."""
        return f"{self.topic_prefix}{name}"
