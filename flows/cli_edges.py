"""CLI commands of the Kafka edges: ``ingest-signals``, ``dispatch-alerts``, ``replay-telegram``.

``flows/cli.py`` adds them with :func:`register`::

    from flows.cli_edges import register
    register(app)
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import typer

__all__ = ["register", "replay_export"]

#: ``DeadLetter.source_topic`` of messages rejected during an export replay (``offset`` = index in the export).
EXPORT_SOURCE = "telegram.export"


def replay_export(
    path: Path,
    *,
    bootstrap: str,
    topic_prefix: str = "",
    trust: float,
    chat_id: int | None = None,
    dead_letters: bool = True,
    progress: bool = True,
) -> dict[str, object]:
    """Replay a Telegram Desktop export into ``signals`` (and rejections into ``dlq``) in message-time order, with the
    same ingest rules as the live app (versions, lifecycle references, reason codes). Returns the counts."""
    from tqdm import tqdm

    from connectors.kafka.sink import EventProducer, key_by_source_topic
    from connectors.telegram import read_desktop_export
    from operators.signals.lifecycle_state import ingest_message
    from schemas.events import DeadLetter

    export = read_desktop_export(path, chat_id=chat_id)
    sig_out = EventProducer(bootstrap, f"{topic_prefix}signals")
    dlq_out = EventProducer(bootstrap, f"{topic_prefix}dlq", key_fn=key_by_source_topic)
    state: dict[str, dict] = {}
    kinds: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    duplicates = 0
    for i, msg in enumerate(tqdm(export.messages, desc="replay-telegram", unit="msg", disable=not progress)):
        out = ingest_message(msg, trust=trust, get=state.get)
        state.update(out.writes)
        if out.status == "signal":
            assert out.signal is not None
            sig_out.send([out.signal])
            kinds[out.signal.kind] += 1
        elif out.status == "rejected":
            rejected[out.reason] += 1
            if dead_letters:
                raw = (msg.text or "").encode()
                dlq_out.send(
                    [
                        DeadLetter(
                            source_topic=EXPORT_SOURCE,
                            offset=i,
                            key=str(msg.chat_id).encode(),
                            error=out.reason,
                            detail=out.detail[:4096],
                            raw=raw[: 256 * 1024],
                            raw_size=len(raw),
                            ts=msg.ts_ns,
                            stage="replay_telegram",
                        )
                    ]
                )
        else:
            duplicates += 1
    sig_out.flush()
    dlq_out.flush()
    return {
        "chat_id": export.chat_id,
        "messages": len(export.messages),
        "signals": sum(kinds.values()),
        "kinds": dict(kinds),
        "rejected": dict(rejected),
        "duplicates": duplicates,
        "skipped": dict(export.skipped),
    }


def register(app: typer.Typer) -> None:
    """Add ``ingest-signals``, ``dispatch-alerts`` and ``replay-telegram`` to ``app``."""

    def _run_faust(config_cls: Any, run: Any, web_port: int | None, loglevel: str) -> None:
        from dataclasses import replace

        try:
            cfg = config_cls.from_env()
        except ValueError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        if web_port is not None:
            cfg = replace(cfg, web_port=web_port)
        run(cfg, loglevel=loglevel)

    @app.command("ingest-signals")
    def ingest_signals(
        web_port: int | None = typer.Option(None, help="Webhook port (default LEVIBOT_SIGNAL_WEB_PORT or 6066)."),
        loglevel: str = typer.Option("info", help="Faust log level."),
    ) -> None:
        """Run the Telegram signal ingest (Faust): webhook -> telegram.updates -> signals / dlq. Stops on Ctrl-C."""
        from flows.signal_ingest import SignalIngestConfig, run

        _run_faust(SignalIngestConfig, run, web_port, loglevel)

    @app.command("dispatch-alerts")
    def dispatch_alerts(
        web_port: int | None = typer.Option(None, help="Metrics port (default LEVIBOT_ALERT_WEB_PORT or 6067)."),
        loglevel: str = typer.Option("info", help="Faust log level."),
    ) -> None:
        """Run the alert dispatcher (Faust): alerts -> signed webhooks, dead letters to dlq. Stops on Ctrl-C."""
        from flows.alert_dispatch import AlertDispatchConfig, run

        _run_faust(AlertDispatchConfig, run, web_port, loglevel)

    @app.command("replay-telegram")
    def replay_telegram(
        result_json: Path = typer.Argument(
            ..., exists=True, dir_okay=False, help="Telegram Desktop export result.json."
        ),
        chat: int | None = typer.Option(None, help="Bot API chat id to use (default: from the export, -100<id>)."),
        trust: float | None = typer.Option(
            None, min=0.0, max=1.0, help="Trust weight in [0, 1] (default: the chat's in LEVIBOT_TELEGRAM_CHATS)."
        ),
        dlq: bool = typer.Option(True, help="Write rejected messages to dlq with their reason."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
    ) -> None:
        """Replay a channel export into `signals` in message-time order; prints counts."""
        from connectors.telegram import read_desktop_export
        from flows.settings import Settings
        from operators.signals.lifecycle_state import ChatAllowList

        s = Settings.from_env()
        weight = trust
        if weight is None:
            cid = chat if chat is not None else read_desktop_export(result_json).chat_id
            weight = ChatAllowList.parse(os.environ.get("LEVIBOT_TELEGRAM_CHATS", "")).trust(cid, None)
            if weight is None:
                typer.secho(
                    f"error: chat {cid} is not in LEVIBOT_TELEGRAM_CHATS; pass --trust", fg=typer.colors.RED, err=True
                )
                raise typer.Exit(2)
        res = replay_export(
            result_json,
            bootstrap=s.kafka_bootstrap,
            topic_prefix=s.topic_prefix,
            trust=weight,
            chat_id=chat,
            dead_letters=dlq,
            progress=progress,
        )
        typer.echo(f"chat {res['chat_id']}: messages {res['messages']}")
        kinds = res["kinds"]
        assert isinstance(kinds, dict)
        typer.echo(f"signals {res['signals']} " + " ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
        rejected = res["rejected"]
        assert isinstance(rejected, dict)
        typer.echo(
            f"rejected {sum(rejected.values())} "
            + " ".join(f"{k}={v}" for k, v in sorted(rejected.items()))
            + (" (to dlq)" if dlq else " (not written)")
        )
        skipped = res["skipped"]
        assert isinstance(skipped, dict)
        typer.echo(
            f"duplicates {res['duplicates']}; skipped " + (" ".join(f"{k} {v}" for k, v in skipped.items()) or "0")
        )
