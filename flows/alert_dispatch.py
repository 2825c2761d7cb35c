"""Alert dispatcher: a faust-streaming app on ``alerts`` (wiring only; see ``docs/alerts.md``).

Batches of up to ``batch_max`` alerts are taken from ``alerts``; each is decoded (bad payloads -> ``dlq``),
throttled by its dedupe key (:func:`operators.alerts.throttle`, state in the Faust table ``throttle``), routed
(:func:`operators.alerts.route`) and delivered to every matching destination by a
:class:`connectors.webhooks.WebhookSender` (signed, retried with backoff and jitter, behind a circuit breaker per
destination). Offsets are committed only after the whole batch is delivered or dead-lettered
(``delivery_failed``), so a crash re-sends rather than loses (at-least-once; receivers dedupe by
``X-Levibot-Alert-Id``). ``GET /metrics`` serves the ``levibot_alerts_*`` metrics, ``GET /healthz`` liveness.

Run it with ``levibot dispatch-alerts`` or ``python -m flows.alert_dispatch``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from connectors.webhooks import BreakerPolicy, RetryPolicy
from flows.faust_worker import main_for, producer_knows, run_worker
from flows.settings import MissingSecrets, Settings
from operators.alerts import AlertRouting

if TYPE_CHECKING:  # faust is imported where the app is built
    from faust.streams import Stream
    from faust.types import StreamT

__all__ = ["AlertDispatchConfig", "create_app", "run", "main"]

log = logging.getLogger(__name__)

#: Largest request body the dispatcher's web server reads, bytes (it serves only GET pages).
MAX_REQUEST_BODY_BYTES = 4096


@dataclass(frozen=True)
class AlertDispatchConfig:
    """Settings of the dispatcher. Routing JSON from ``LEVIBOT_ALERT_ROUTES`` (inline) or
    ``LEVIBOT_ALERT_ROUTES_FILE`` (a path), or one JSON destination ``default`` from ``LEVIBOT_ALERT_WEBHOOK_URL``
    signed with ``LEVIBOT_ALERT_WEBHOOK_SECRET`` (docker-compose.yml, k8s/); each destination's signing key from the
    environment variable its ``key_env`` names: without it the dispatcher refuses to start. ``batch_max`` alerts per batch (the in-memory bound), ``batch_within_s`` seconds to fill one;
    ``max_in_flight`` concurrent requests per destination; ``web_port`` [LEVIBOT_ALERT_WEB_PORT, 6067] serves
    /metrics and /healthz; ``app_id`` [LEVIBOT_ALERT_APP_ID, default ``<prefix>levibot-alert-dispatch``]."""

    bootstrap: str
    topic_prefix: str
    routing: AlertRouting
    keys: dict[str, bytes] = field(repr=False, default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    max_in_flight: int = 8
    batch_max: int = 100
    batch_within_s: float = 0.2
    web_host: str = "127.0.0.1"
    web_port: int = 6067
    app_id: str = "levibot-alert-dispatch"
    datadir: Path = Path("var/faust")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any], *, env: dict[str, str], **kw: Any) -> AlertDispatchConfig:
        """Build from the routing JSON and the environment (for the keys); ``ValueError`` on a missing key."""
        routing = AlertRouting.from_dict(cfg)
        keys: dict[str, bytes] = {}
        for d in routing.destinations:
            key = env.get(d.key_env, "")
            if not key.strip():
                raise MissingSecrets(
                    "levibot dispatch-alerts",
                    {d.key_env: f"the HMAC-SHA256 key that signs every alert sent to destination {d.name!r}"},
                )
            keys[d.name] = key.encode()
        return cls(
            routing=routing,
            keys=keys,
            retry=RetryPolicy(**cfg.get("retry", {})),
            breaker=BreakerPolicy(**cfg.get("breaker", {})),
            max_in_flight=int(cfg.get("max_in_flight", 8)),
            batch_max=int(cfg.get("batch_max", 100)),
            batch_within_s=float(cfg.get("batch_within_s", 0.2)),
            **kw,
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AlertDispatchConfig:
        e = dict(os.environ if env is None else env)
        base = Settings.from_env(e)
        if e.get("LEVIBOT_ALERT_ROUTES"):
            raw = e["LEVIBOT_ALERT_ROUTES"]
        elif e.get("LEVIBOT_ALERT_ROUTES_FILE"):
            raw = Path(e["LEVIBOT_ALERT_ROUTES_FILE"]).read_text()
        elif e.get("LEVIBOT_ALERT_WEBHOOK_URL"):
            raw = json.dumps(
                {
                    "destinations": [
                        {
                            "name": "default",
                            "url": e["LEVIBOT_ALERT_WEBHOOK_URL"],
                            "key_env": "LEVIBOT_ALERT_WEBHOOK_SECRET",
                        }
                    ]
                }
            )
        else:
            raise ValueError(
                "no alert routing: set LEVIBOT_ALERT_ROUTES (JSON), LEVIBOT_ALERT_ROUTES_FILE, or "
                "LEVIBOT_ALERT_WEBHOOK_URL (one destination signed with LEVIBOT_ALERT_WEBHOOK_SECRET)"
            )
        try:
            cfg = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"alert routing is not valid JSON: {exc}") from None
        return cls.from_dict(
            cfg,
            env=e,
            bootstrap=base.kafka_bootstrap,
            topic_prefix=base.topic_prefix,
            web_host=e.get("LEVIBOT_ALERT_WEB_HOST") or "127.0.0.1",
            web_port=int(e.get("LEVIBOT_ALERT_WEB_PORT") or 6067),
            app_id=e.get("LEVIBOT_ALERT_APP_ID") or f"{base.topic_prefix}levibot-alert-dispatch",
            datadir=base.var_dir / "faust",
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def create_app(cfg: AlertDispatchConfig):  # -> faust.App
    """Build the Faust app: dispatch agent, throttle table, metrics page."""
    import asyncio

    import aiohttp
    import faust
    import msgspec
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from connectors.kafka.decode import dead_letter_ts
    from connectors.webhooks import METRICS, WebhookSender
    from flows.signal_ingest import faust_broker, partition_count
    from operators.alerts import mark_done, render_payload, route, throttle
    from schemas.codec import DecodeError, decode, encode
    from schemas.events import DEAD_LETTER_RAW_MAX_BYTES, Alert, DeadLetter

    alerts_name = cfg.topic("alerts")
    n_parts = partition_count(cfg.bootstrap, alerts_name)
    if n_parts != 1:
        log.warning(
            "%s has %d partitions: run a single dispatcher instance (the throttle table is global)",
            alerts_name,
            n_parts,
        )
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
        # only GET pages (/metrics, /healthz): no request body is ever needed
        web_application_options={"client_max_size": MAX_REQUEST_BODY_BYTES},
        producer_acks=-1,
    )
    alerts = app.topic(alerts_name, key_serializer="raw", value_serializer="raw", internal=False)
    dlq = app.topic(cfg.topic("dlq"), key_serializer="raw", value_serializer="raw", internal=False)
    # dedupe_key -> throttle record (operators.alerts.throttle); written with the producer's partitioner because
    # the agent works on batches (no single "current event").
    throttle_table = app.Table("throttle", default=None, partitions=1, key_type=str, use_partitioner=True)
    senders: dict[str, WebhookSender] = {}
    session_box: list[aiohttp.ClientSession] = []

    def sender(name: str) -> WebhookSender:
        if not session_box:
            session_box.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        s = senders.get(name)
        if s is None:
            dest = next(d for d in cfg.routing.destinations if d.name == name)
            s = senders[name] = WebhookSender(
                dest.name,
                dest.url,
                cfg.keys[dest.name],
                session=session_box[0],
                timeout_s=dest.timeout_s,
                retry=cfg.retry,
                breaker=cfg.breaker,
                max_in_flight=cfg.max_in_flight,
            )
        return s

    async def dead_letter(m: Any, value: bytes, reason: str, detail: str, stage: str) -> None:
        ts_ms = int(m.timestamp * 1000) if m.timestamp else 0
        dl = DeadLetter(
            source_topic=alerts_name,
            partition=m.partition,
            offset=m.offset,
            key=m.key,
            error=reason,
            detail=detail[:4096],
            raw=value[:DEAD_LETTER_RAW_MAX_BYTES],
            raw_size=len(value),
            ts=dead_letter_ts(ts_ms),
            stage=stage[:64],
        )
        fut = await dlq.send(key=alerts_name.encode(), value=encode(dl))
        await fut  # the dead letter must be in Kafka before the alert's offset is committed

    async def deliver(m: Any, value: bytes, alert: Alert) -> None:
        dests = route(alert, cfg.routing.destinations)
        results = await asyncio.gather(
            *(sender(d.name).deliver(msgspec.json.encode(render_payload(alert, d)), alert.id) for d in dests)
        )
        for d, r in zip(dests, results, strict=True):
            if not r.ok:
                await dead_letter(
                    m,
                    value,
                    "delivery_failed",
                    f"destination {d.name}: {r.error} after {r.attempts} attempts",
                    f"alert_dispatch.{d.name}",
                )

    @app.agent(alerts)
    async def dispatch(stream: StreamT[bytes]) -> None:
        # the throttle table's first write needs the changelog partition from the producer's metadata
        await producer_knows(app, throttle_table.changelog_topic.get_topic_name())
        # the agent is given a faust Stream; its interface StreamT does not declare take_events
        async for events in cast("Stream[bytes]", stream).take_events(cfg.batch_max, within=cfg.batch_within_s):
            jobs = []
            pending: set[str] = set()
            records: dict[str, dict] = {}
            for ev in events:
                m, value = ev.message, ev.value
                try:
                    alert = decode(value, Alert)
                except DecodeError as exc:
                    await dead_letter(m, value, exc.reason, exc.detail, "alert_dispatch")
                    continue
                METRICS.received.labels(alert.severity).inc()
                key = alert.dedupe_key
                rec = records.get(key) or throttle_table.get(key)
                decision, rec = throttle(alert, rec, cfg.routing.throttle, pending)
                records[key] = rec
                if decision != "send":
                    METRICS.suppressed.labels(decision).inc()
                    continue
                if not route(alert, cfg.routing.destinations):
                    METRICS.suppressed.labels("no_route").inc()
                    continue
                pending.add(alert.id)
                jobs.append((m, value, alert))
            for key, rec in records.items():  # admitted ids are persisted before delivery (crash -> resend)
                throttle_table[key] = rec
            await asyncio.gather(*(deliver(m, value, a) for m, value, a in jobs))
            for _, _, a in jobs:
                records[a.dedupe_key] = mark_done(records[a.dedupe_key], a.id)
            for key, rec in records.items():
                throttle_table[key] = rec

    @app.page("/metrics")
    async def metrics(self, request):
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(self, request):
        return self.json({"ok": True, "app": cfg.app_id, "breakers": {n: s.breaker.state for n, s in senders.items()}})

    return app


def run(cfg: AlertDispatchConfig | None = None, *, loglevel: str = "info") -> None:
    """Run the dispatcher in this process until SIGINT/SIGTERM (exits the process)."""
    run_worker(create_app(cfg or AlertDispatchConfig.from_env()), loglevel)


def main() -> None:
    main_for(run)


if __name__ == "__main__":
    main()
