"""Telegram signal ingest: a faust-streaming app (wiring only; see ``docs/signals-ingest.md``).

* ``POST <LEVIBOT_TELEGRAM_WEBHOOK_PATH>`` (default ``/telegram/webhook``): Telegram's webhook. Checks the
  ``X-Telegram-Bot-Api-Secret-Token`` header (401 when missing or wrong; without a configured secret the app refuses to
  start), limits the body (413 above ``LEVIBOT_TELEGRAM_MAX_BODY_BYTES``; every other page too), writes the update verbatim to ``telegram.updates`` keyed by
  chat id and answers 200 once Kafka acknowledged it (503 if it did not, so Telegram retries). With
  ``LEVIBOT_TELEGRAM_COMMANDS_URL`` (the operator API's ``POST /telegram/bot``), a bot command (a message or edit
  whose text is ``/status``, ``/positions``, ``/pnl``, ``/halt``, ``/resume``, ``/confirm``, ``/help`` or ``/start``)
  is not a signal: it is forwarded there verbatim with ``LEVIBOT_TELEGRAM_COMMANDS_SECRET`` as the secret header
  (the API decides who may send it, answers through ``sendMessage`` and audits); 200 when the API took it, 503 when
  it could not be reached or failed (Telegram retries), and a dead letter ``command_refused`` when it refused the
  forward itself (a configuration error: wrong secret, bot commands not enabled).
* Agent ``ingest`` on ``telegram.updates``: each message, post or edit goes through
  :func:`operators.signals.lifecycle_state.ingest_message` with the Faust table ``messages`` as its state; signals go
  to ``signals`` (keyed by symbol), rejections to ``dlq`` with the reason code, duplicates are dropped and counted.
* ``GET /metrics`` (Prometheus), ``GET /healthz``.

Run it with ``levibot ingest-signals`` or ``python -m flows.signal_ingest``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from flows.faust_worker import main_for, run_worker
from flows.settings import Settings, require_secrets
from operators.signals.lifecycle_state import ChatAllowList

if TYPE_CHECKING:  # faust is imported where the app is built
    from faust.types import StreamT

__all__ = ["INGEST_SECRETS", "SignalIngestConfig", "create_app", "run", "main"]

#: secrets the signal ingest refuses to start without: variable -> what it is for
INGEST_SECRETS = {
    "LEVIBOT_TELEGRAM_SECRET_TOKEN": "the secret token Telegram sends in X-Telegram-Bot-Api-Secret-Token "
    "with every webhook call (setWebhook's secret_token)"
}

log = logging.getLogger(__name__)

_METRICS_UPDATES = Counter("levibot_signal_updates_total", "Webhook requests by result.", ["result"])
_METRICS_OUT = Counter(
    "levibot_signal_ingest_total", "Ingested messages by outcome (signal kind, duplicate, dlq reason).", ["outcome"]
)


def faust_broker(bootstrap: str) -> list[str]:
    """Faust broker URLs for a ``host:port[,host:port]`` bootstrap string."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def partition_count(bootstrap: str, topic: str, timeout_s: float = 10.0) -> int:
    """Partitions of an existing topic (the Faust tables must match the source topic); raises if it is missing."""
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic=topic, timeout=timeout_s)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        raise RuntimeError(f"topic {topic!r} does not exist: run `levibot topics create` first")
    return len(t.partitions)


@dataclass(frozen=True)
class SignalIngestConfig:
    """Settings of the signal ingest app (environment variables in brackets).

    ``secret_token`` [LEVIBOT_TELEGRAM_SECRET_TOKEN]; ``chats`` [LEVIBOT_TELEGRAM_CHATS, ``-1001234:0.8,@chan:0.5``];
    ``web_host``/``web_port`` [LEVIBOT_SIGNAL_WEB_HOST, default 127.0.0.1 / LEVIBOT_SIGNAL_WEB_PORT, default 6066];
    ``webhook_path`` [LEVIBOT_TELEGRAM_WEBHOOK_PATH]; ``max_body_bytes`` [LEVIBOT_TELEGRAM_MAX_BODY_BYTES, default
    1 MiB]; ``app_id`` [LEVIBOT_SIGNAL_APP_ID, default ``<topic prefix>levibot-signal-ingest``; also the consumer group
    and the changelog topic prefix]; ``produce_timeout_s`` seconds the webhook waits for Kafka's ack;
    ``commands_url`` [LEVIBOT_TELEGRAM_COMMANDS_URL: the operator API's ``/telegram/bot``; empty: bot commands are
    ingested like any message] and ``commands_secret`` [LEVIBOT_TELEGRAM_COMMANDS_SECRET: the API's
    LEVIBOT_API_TELEGRAM_SECRET_TOKEN, required with the URL]; ``commands_timeout_s`` seconds a forward may take.
    """

    bootstrap: str
    topic_prefix: str
    secret_token: str
    chats: ChatAllowList
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    webhook_path: str = "/telegram/webhook"
    max_body_bytes: int = 1 << 20
    app_id: str = "levibot-signal-ingest"
    datadir: Path = Path("var/faust")
    produce_timeout_s: float = 10.0
    commands_url: str = ""
    commands_secret: str = field(default="", repr=False)
    commands_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SignalIngestConfig:
        """From the environment; :class:`flows.settings.MissingSecrets` (a ``ValueError``) without the secret token."""
        e = dict(os.environ if env is None else env)
        require_secrets("levibot ingest-signals", e, INGEST_SECRETS)
        base = Settings.from_env(e)
        return cls(
            bootstrap=base.kafka_bootstrap,
            topic_prefix=base.topic_prefix,
            secret_token=e.get("LEVIBOT_TELEGRAM_SECRET_TOKEN", ""),
            chats=ChatAllowList.parse(e.get("LEVIBOT_TELEGRAM_CHATS", "")),
            web_host=e.get("LEVIBOT_SIGNAL_WEB_HOST") or "127.0.0.1",
            web_port=int(e.get("LEVIBOT_SIGNAL_WEB_PORT") or 6066),
            webhook_path=e.get("LEVIBOT_TELEGRAM_WEBHOOK_PATH") or "/telegram/webhook",
            max_body_bytes=int(e.get("LEVIBOT_TELEGRAM_MAX_BODY_BYTES") or (1 << 20)),
            app_id=e.get("LEVIBOT_SIGNAL_APP_ID") or f"{base.topic_prefix}levibot-signal-ingest",
            datadir=base.var_dir / "faust",
            commands_url=_commands_url(e.get("LEVIBOT_TELEGRAM_COMMANDS_URL", "")),
            commands_secret=_commands_secret(e),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def _commands_url(url: str) -> str:
    url = url.strip()
    if url and not url.startswith(("http://", "https://")):
        raise ValueError("LEVIBOT_TELEGRAM_COMMANDS_URL must be an http(s) URL (the operator API's /telegram/bot)")
    return url


def _commands_secret(e: dict[str, str]) -> str:
    secret = e.get("LEVIBOT_TELEGRAM_COMMANDS_SECRET", "")
    if e.get("LEVIBOT_TELEGRAM_COMMANDS_URL", "").strip() and not secret:
        raise ValueError(
            "LEVIBOT_TELEGRAM_COMMANDS_URL needs LEVIBOT_TELEGRAM_COMMANDS_SECRET (the operator API's "
            "LEVIBOT_API_TELEGRAM_SECRET_TOKEN)"
        )
    return secret


def bot_command(body: bytes) -> str | None:
    """The name of the bot command in an update's raw JSON (see ``operators.api.telegram.parse_command``: a
    ``message`` or ``edited_message`` whose text starts with one of its ``COMMANDS``), else None."""
    import json

    from operators.api.telegram import COMMANDS, parse_command

    try:
        doc = json.loads(body)
    except ValueError:
        return None
    cmd = parse_command(doc) if isinstance(doc, dict) else None
    return cmd.name if cmd is not None and cmd.name in COMMANDS else None


def create_app(cfg: SignalIngestConfig):  # -> faust.App
    """Build the Faust app: webhook view, ingest agent, state table, metrics page."""
    import asyncio
    import time

    import faust
    from aiohttp import web as aioweb
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from connectors.kafka.decode import dead_letter_ts
    from connectors.telegram import SECRET_HEADER, secret_token_ok
    from operators.signals.lifecycle_state import inbound_from_update, ingest_message
    from schemas.codec import DecodeError, decode, encode
    from schemas.events import DEAD_LETTER_RAW_MAX_BYTES, DeadLetter, TelegramUpdate

    require_secrets("levibot ingest-signals", {"LEVIBOT_TELEGRAM_SECRET_TOKEN": cfg.secret_token}, INGEST_SECRETS)
    if not cfg.chats:
        log.warning("LEVIBOT_TELEGRAM_CHATS is empty: every message goes to dlq as chat_not_allowed")

    updates_name = cfg.topic("telegram.updates")
    n_parts = partition_count(cfg.bootstrap, updates_name)
    cfg.datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        cfg.app_id,
        broker=faust_broker(cfg.bootstrap),
        store="memory://",
        datadir=str(cfg.datadir / "{conf.id}"),
        autodiscover=False,
        topic_disable_leader=True,
        topic_partitions=n_parts,
        consumer_auto_offset_reset="earliest",
        web_bind=cfg.web_host,
        web_port=cfg.web_port,
        web_host=cfg.web_host,
        web_application_options={"client_max_size": cfg.max_body_bytes},
        producer_acks=-1,
    )
    updates = app.topic(updates_name, key_serializer="raw", value_serializer="raw", internal=False)
    signals = app.topic(cfg.topic("signals"), key_serializer="raw", value_serializer="raw", internal=False)
    dlq = app.topic(cfg.topic("dlq"), key_serializer="raw", value_serializer="raw", internal=False)
    # State of ingest_message: m|chat|msg and s|chat|symbol records (JSON). Partitioned like telegram.updates
    # (writes go to the partition of the update being processed; all keys of a chat live on its partition).
    messages = app.Table("messages", default=None, partitions=n_parts, key_type=str)

    m_updates, m_out = _METRICS_UPDATES, _METRICS_OUT

    async def dead_letter(
        key: bytes | None,
        value: bytes,
        reason: str,
        detail: str,
        partition: int,
        offset: int,
        ts_ms: int,
        stage: str,
        *,
        ack_timeout_s: float | None = None,
    ) -> None:
        """Queue a dead letter; with ``ack_timeout_s`` also wait (seconds) until Kafka acknowledged it."""
        dl = DeadLetter(
            source_topic=updates_name,
            partition=partition,
            offset=offset,
            key=key,
            error=reason,
            detail=detail[:4096],
            raw=value[:DEAD_LETTER_RAW_MAX_BYTES],
            raw_size=len(value),
            ts=dead_letter_ts(ts_ms),
            stage=stage,
        )
        fut = await dlq.send(key=updates_name.encode(), value=encode(dl))
        if ack_timeout_s is not None:
            await asyncio.wait_for(fut, ack_timeout_s)

    http: dict[str, Any] = {}

    async def forward_command(update_id: int, body: bytes):
        """POST a bot command's update to the operator API; the webhook's answer to Telegram (see the module doc)."""
        import aiohttp

        if "session" not in http:
            http["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=cfg.commands_timeout_s))
        try:
            async with http["session"].post(
                cfg.commands_url,
                data=body,
                headers={"Content-Type": "application/json", SECRET_HEADER: cfg.commands_secret},
            ) as r:
                status = r.status
                await r.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("could not forward bot command update %s: %s", update_id, type(exc).__name__)
            m_updates.labels("command_unavailable").inc()
            return _json({"ok": False, "error": "try again later"}, 503)
        if 200 <= status < 300:
            m_updates.labels("command_forwarded").inc()
            return _json({"ok": True, "forwarded": "command"}, 200)
        if status >= 500 or status == 429:
            log.warning("the operator API answered HTTP %s to bot command update %s", status, update_id)
            m_updates.labels("command_unavailable").inc()
            return _json({"ok": False, "error": "try again later"}, 503)
        # the API refused the forward itself (wrong secret, bot commands not configured): never going to work as
        # is, so keep the update as a dead letter and let Telegram stop redelivering it
        received_ms = int(time.time() * 1000)
        try:
            await dead_letter(
                None,
                body,
                "command_refused",
                f"the operator API answered HTTP {status} to the "
                f"forwarded bot command (LEVIBOT_TELEGRAM_COMMANDS_URL / _SECRET)",
                -1,
                -1,
                received_ms,
                "telegram_webhook",
                ack_timeout_s=cfg.produce_timeout_s,
            )
        except Exception as kafka_exc:
            log.warning("could not dead-letter a refused bot command: %r", kafka_exc)
            m_updates.labels("kafka_error").inc()
            return _json({"ok": False, "error": "try again later"}, 503)
        m_updates.labels("command_refused").inc()
        return _json({"ok": True, "dead_letter": "command_refused"}, 200)

    def _json(obj: dict[str, Any], status: int):
        return aioweb.json_response(obj, status=status)

    @app.on_before_shutdown.connect
    async def close_http(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        if "session" in http:
            await http.pop("session").close()

    class TelegramWebhook(faust.web.View):
        """Telegram's webhook: verify, bound, forward to Kafka, answer."""

        async def post(self, request):  # request: aiohttp.web.Request
            if not secret_token_ok(request.headers.get(SECRET_HEADER), cfg.secret_token):
                m_updates.labels("unauthorized").inc()
                return self.json({"ok": False, "error": "unauthorized"}, status=401)
            if (request.content_length or 0) > cfg.max_body_bytes:
                m_updates.labels("too_large").inc()
                return self.json({"ok": False, "error": "body too large"}, status=413)
            try:
                body = await request.read()
            except aioweb.HTTPRequestEntityTooLarge:
                m_updates.labels("too_large").inc()
                return self.json({"ok": False, "error": "body too large"}, status=413)
            try:
                update = decode(body, TelegramUpdate, max_bytes=cfg.max_body_bytes)
            except DecodeError as exc:
                # Authenticated but unusable (not JSON, not UTF-8, not an Update): into dlq, then 200, because Telegram
                # redelivers on every non-2xx answer (a 400 too) and this body will never parse. The 200 goes out
                # only once Kafka holds the dead letter; if it does not, 503 and Telegram's retry brings it back.
                # Its time is the receive time: nothing in the body can be trusted, and a Kafka timestamp of 0 would
                # let the broker's retention delete the dead letter at once.
                received_ms = int(time.time() * 1000)
                try:
                    await dead_letter(
                        None,
                        body,
                        exc.reason,
                        exc.detail,
                        -1,
                        -1,
                        received_ms,
                        "telegram_webhook",
                        ack_timeout_s=cfg.produce_timeout_s,
                    )
                except Exception as kafka_exc:
                    log.warning("could not dead-letter a %s webhook body: %r", exc.reason, kafka_exc)
                    m_updates.labels("kafka_error").inc()
                    return self.json({"ok": False, "error": "try again later"}, status=503)
                m_updates.labels(f"dlq_{exc.reason}").inc()
                return self.json({"ok": True, "dead_letter": exc.reason})
            if cfg.commands_url and bot_command(body) is not None:
                return await forward_command(update.update_id, body)
            msg = update.any_message
            key = str(msg.chat.id).encode() if msg is not None else b"none"
            # Kafka timestamp = produce time (DESIGN: topics retain by Kafka time); the message's own date stays in
            # the body. Stamping an edit of a months-old post with its date would hand it to retention at once.
            try:
                fut = await updates.send(key=key, value=body)
                await asyncio.wait_for(fut, cfg.produce_timeout_s)
            except Exception as exc:  # Kafka unreachable: Telegram will retry later
                log.warning("could not produce update %s: %r", update.update_id, exc)
                m_updates.labels("kafka_error").inc()
                return self.json({"ok": False, "error": "try again later"}, status=503)
            m_updates.labels("accepted").inc()
            return self.json({"ok": True})

    app.page(cfg.webhook_path)(TelegramWebhook)

    @app.page("/metrics")
    async def metrics(self, request):
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(self, request):
        return self.json({"ok": True, "app": cfg.app_id})

    @app.agent(updates)
    async def ingest(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            m = event.message
            value: bytes = event.value
            ts_ms = int(m.timestamp * 1000) if m.timestamp else 0
            try:
                update = decode(value, TelegramUpdate)
            except DecodeError as exc:
                m_out.labels(exc.reason).inc()
                await dead_letter(m.key, value, exc.reason, exc.detail, m.partition, m.offset, ts_ms, "signal_ingest")
                continue
            inbound = inbound_from_update(update)
            if inbound is None:
                m_out.labels("unsupported_update").inc()
                await dead_letter(
                    m.key,
                    value,
                    "unsupported_update",
                    f"update {update.update_id} has no message",
                    m.partition,
                    m.offset,
                    ts_ms,
                    "signal_ingest",
                )
                continue
            out = ingest_message(inbound, trust=cfg.chats.trust(inbound.chat_id, inbound.username), get=messages.get)
            if out.status == "signal":
                sig = out.signal
                assert sig is not None
                await signals.send(key=sig.symbol.encode(), value=encode(sig))
                m_out.labels(sig.kind).inc()
            elif out.status == "rejected":
                m_out.labels(out.reason).inc()
                await dead_letter(m.key, value, out.reason, out.detail, m.partition, m.offset, ts_ms, "signal_ingest")
            else:
                m_out.labels("duplicate").inc()
            for k, v in out.writes:  # after the output is queued (see docs: at-least-once window)
                messages[k] = v

    return app


def run(cfg: SignalIngestConfig | None = None, *, loglevel: str = "info") -> None:
    """Run the app in this process until SIGINT/SIGTERM (a Faust worker owns the event loop; exits the process)."""
    run_worker(create_app(cfg or SignalIngestConfig.from_env()), loglevel)


def main() -> None:
    main_for(run)


if __name__ == "__main__":
    main()
