"""Settings of ``levibot api``, read once from the environment (``LEVIBOT_API_*``; secrets, DSNs and topics come
from :class:`flows.settings.Settings`). Reference: ``docs/api.md``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from operators.api.access import DEFAULT_TIERS, Tier, parse_rate, parse_tiers

__all__ = ["ApiSettings"]


@dataclass(frozen=True)
class ApiSettings:
    """Knobs of the API service. Field docs double as the reference in ``docs/api.md``."""

    host: str = field(
        default="127.0.0.1",
        metadata={
            "env": "LEVIBOT_API_HOST",
            "doc": "Address the API binds: loopback only by default; 0.0.0.0 inside a container or pod, behind TLS.",
        },
    )
    port: int = field(default=8700, metadata={"env": "LEVIBOT_API_PORT", "doc": "TCP port of the API."})
    tiers: str = field(
        default="",
        metadata={
            "env": "LEVIBOT_API_TIERS",
            "doc": 'JSON that changes or adds key tiers: {"free": {"rate": "60/minute", "groups": [...], '
            '"scopes": [...], "max_accounts": 1}, ...} (defaults: free, pro, enterprise).',
        },
    )
    default_tier: str = field(
        default="pro", metadata={"env": "LEVIBOT_API_DEFAULT_TIER", "doc": "Tier of a key created without --tier."}
    )
    rate_storage: str = field(
        default="memory://",
        repr=False,
        metadata={
            "env": "LEVIBOT_API_RATE_STORAGE",
            "doc": "Where rate-limit counters live: memory:// (this process) or redis://host:port/db (shared by every "
            "replica, kept across restarts).",
        },
    )
    auth_rate: str = field(
        default="30/minute",
        metadata={
            "env": "LEVIBOT_API_AUTH_RATE",
            "doc": "Quota per client address for requests that are not (yet) authenticated: no key, a bad key, or "
            "a key's first verification in this process (the slow hash).",
        },
    )
    max_body_bytes: int = field(
        default=16_384,
        metadata={"env": "LEVIBOT_API_MAX_BODY_BYTES", "doc": "Largest request body, bytes (larger: 413)."},
    )
    max_query_bytes: int = field(
        default=2048,
        metadata={"env": "LEVIBOT_API_MAX_QUERY_BYTES", "doc": "Longest query string, bytes (longer: 414)."},
    )
    control_cache_s: float = field(
        default=2.0,
        metadata={
            "env": "LEVIBOT_API_CONTROL_CACHE_S",
            "doc": "Seconds /v1/status reuses the folded control topic before reading it again.",
        },
    )
    workers: int = field(
        default=1,
        metadata={
            "env": "LEVIBOT_API_WORKERS",
            "doc": "uvicorn worker processes of `levibot api` (more than one needs a Redis LEVIBOT_API_RATE_STORAGE).",
        },
    )
    db_pool_size: int = field(
        default=8, metadata={"env": "LEVIBOT_API_DB_POOL", "doc": "Most PostgreSQL connections the API holds."}
    )

    read_cache_s: float = field(
        default=1.0,
        metadata={
            "env": "LEVIBOT_API_READ_CACHE_S",
            "doc": "Seconds one process reuses what /v1/status and /v1/positions read from PostgreSQL (0: read on "
            "every request).",
        },
    )
    key_cache_s: float = field(
        default=30.0,
        metadata={
            "env": "LEVIBOT_API_KEY_CACHE_S",
            "doc": "Seconds one process reuses a key's row (scopes, tier, revocation) between requests, only while it "
            "listens to PostgreSQL's notifications of key changes (a revocation drops the row at once); "
            "0: read the row on every request.",
        },
    )
    account: str = field(
        default="default",
        metadata={
            "env": "LEVIBOT_API_ACCOUNT",
            "doc": "The account /v1/status (kill switch), /v1/risk and the console show.",
        },
    )
    capital: float = field(
        default=100_000.0,
        metadata={
            "env": "LEVIBOT_API_CAPITAL",
            "doc": "The account's starting capital, quote currency (equity = capital + P&L; the account stage's "
            "capital, default 100000).",
        },
    )
    max_fills: int = field(
        default=200_000,
        metadata={
            "env": "LEVIBOT_API_MAX_FILLS",
            "doc": "Most fills /v1/equity reads (from the oldest); beyond it the series is marked truncated.",
        },
    )
    drift_tail: int = field(
        default=500,
        metadata={
            "env": "LEVIBOT_API_DRIFT_TAIL",
            "doc": "Messages per partition /v1/models/drift reads from the end of the alerts topic.",
        },
    )

    session_secret: str = field(
        default="",
        repr=False,
        metadata={
            "env": "LEVIBOT_API_SESSION_SECRET",
            "doc": "Secret (32+ characters) that signs console sessions and CSRF tokens; the same on every replica. "
            "Empty: a random one per process (sessions end when the process does).",
        },
    )
    session_ttl_s: int = field(
        default=28_800,
        metadata={
            "env": "LEVIBOT_API_SESSION_TTL_S",
            "doc": "Seconds a console login lasts (the key is re-checked on every request regardless).",
        },
    )
    cookie_secure: int = field(
        default=1,
        metadata={
            "env": "LEVIBOT_API_COOKIE_SECURE",
            "doc": "1: console cookies carry Secure (sent over HTTPS only: behind the TLS proxy); 0 for plain-HTTP "
            "development on loopback.",
        },
    )
    grafana_url: str = field(
        default="",
        metadata={
            "env": "LEVIBOT_API_GRAFANA_URL",
            "doc": "Grafana's address; the console links to it for time series (empty: no link).",
        },
    )

    telegram_bot_token: str = field(
        default="",
        repr=False,
        metadata={
            "env": "LEVIBOT_API_TELEGRAM_BOT_TOKEN",
            "doc": "The bot's token: answers bot commands (sendMessage) and checks Mini App initData signatures. "
            "Empty: no bot commands, no Mini App.",
        },
    )
    telegram_secret_token: str = field(
        default="",
        repr=False,
        metadata={
            "env": "LEVIBOT_API_TELEGRAM_SECRET_TOKEN",
            "doc": "The secret Telegram (or the signal ingest forwarding commands) sends in "
            "X-Telegram-Bot-Api-Secret-Token to POST /telegram/bot (required for that route).",
        },
    )
    telegram_api_url: str = field(
        default="https://api.telegram.org",
        metadata={"env": "LEVIBOT_API_TELEGRAM_API_URL", "doc": "The Bot API's address (a local server in tests)."},
    )
    telegram_chats: str = field(
        default="",
        metadata={
            "env": "LEVIBOT_API_TELEGRAM_CHATS",
            "doc": "Chat ids bot commands are accepted from, comma-separated.",
        },
    )
    telegram_users: str = field(
        default="",
        metadata={
            "env": "LEVIBOT_API_TELEGRAM_USERS",
            "doc": 'JSON {"<Telegram user id>": "<API key id>"}: the users allowed (bot and Mini App) and the key '
            "each acts as (its scopes and tier apply).",
        },
    )
    telegram_max_age_s: int = field(
        default=3600,
        metadata={
            "env": "LEVIBOT_API_TELEGRAM_MAX_AGE_S",
            "doc": "Oldest Mini App initData accepted (auth_date), seconds.",
        },
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ApiSettings:
        env = dict(os.environ if env is None else env)
        kw: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"], "")
            if raw == "":
                continue
            try:
                kw[f.name] = int(raw) if f.type in ("int", int) else float(raw) if f.type in ("float", float) else raw
            except ValueError:
                raise ValueError(f"{f.metadata['env']} must be a number, got {raw!r}") from None
        s = cls(**kw)  # type: ignore[arg-type]
        s.tier_map()  # fail early on bad tiers
        parse_rate(s.auth_rate)
        if s.default_tier not in s.tier_map():
            raise ValueError(f"LEVIBOT_API_DEFAULT_TIER {s.default_tier!r} is not a configured tier")
        if not s.rate_storage.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError("LEVIBOT_API_RATE_STORAGE must be memory:// or a redis:// URI")
        if s.session_secret and len(s.session_secret) < 32:
            raise ValueError("LEVIBOT_API_SESSION_SECRET must be at least 32 characters")
        if s.session_ttl_s < 60 or s.cookie_secure not in (0, 1):
            raise ValueError("LEVIBOT_API_SESSION_TTL_S must be >= 60 and LEVIBOT_API_COOKIE_SECURE 0 or 1")
        if s.grafana_url and not s.grafana_url.startswith(("http://", "https://")):
            raise ValueError("LEVIBOT_API_GRAFANA_URL must be an http(s) URL")
        from operators.api.telegram import TelegramAccess

        TelegramAccess.parse(s.telegram_chats, s.telegram_users)  # fail early on a bad allow-list
        if not s.capital > 0 or s.max_fills < 1 or s.drift_tail < 1:
            raise ValueError("LEVIBOT_API_CAPITAL must be > 0, LEVIBOT_API_MAX_FILLS and LEVIBOT_API_DRIFT_TAIL >= 1")
        if not 1 <= s.workers <= 64:
            raise ValueError("LEVIBOT_API_WORKERS must be 1 to 64")
        if s.max_body_bytes < 1024 or s.max_query_bytes < 256:
            raise ValueError("LEVIBOT_API_MAX_BODY_BYTES must be >= 1024 and LEVIBOT_API_MAX_QUERY_BYTES >= 256")
        return s

    def tier_map(self) -> dict[str, Tier]:
        return parse_tiers(self.tiers, DEFAULT_TIERS)
