"""Bot commands through the signal ingest's webhook (issue 16, item 4), all live: the Faust ingest app and a real
``levibot api`` run as subprocesses on the real Kafka and PostgreSQL, a local HTTP server stands in for the Bot API
host. ``/status``, ``/positions``, ``/pnl`` from the allow-listed chat are answered through ``sendMessage``;
``/halt`` + ``/confirm`` put a signed halt on the control topic, audited; the same command from another chat is
refused and audited; commands never reach ``telegram.updates`` while a signal still does; with the API down the
webhook answers 503 (Telegram retries); a forward the API refuses (wrong secret) becomes a dead letter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import psycopg
import pytest

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from operators.api.keys import parse_token
from schemas.codec import decode
from schemas.events import DeadLetter
from tests.support import REPO, read_all, wait_for
from tests.support.api import key_headers
from tests.support.flowproc import free_port
from tests.support.http import FakeBotApi
from tests.support.ingest import ORIGINAL, post, start_app, stop_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
BOT_TOKEN = "123456:TEST-ingest-bot-token"
INGEST_SECRET = "ingest-webhook-secret-0123456789"
API_SECRET = "api-bot-secret-0123456789abcdef"
CONTROL_KEY = "ingest-commands-control-key-0123456789"
CHAT, OTHER_CHAT = -1001234567890, -1005555555555


def _cmd(update_id: int, chat: int, user: int, text: str) -> bytes:
    return json.dumps(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1_700_000_000 + update_id,
                "chat": {"id": chat, "type": "supergroup", "title": "desk"},
                "from": {"id": user, "is_bot": False, "first_name": "T"},
                "text": text,
            },
        }
    ).encode()


def _signal(update_id: int) -> bytes:
    return json.dumps(
        {
            "update_id": update_id,
            "channel_post": {
                "message_id": update_id,
                "date": 1_700_000_000 + update_id,
                "chat": {"id": CHAT, "type": "channel", "title": "VIP", "username": "vipsignals"},
                "text": ORIGINAL,
            },
        }
    ).encode()


def _start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 - the log stays open for the child process, closed when it stops
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "levibot"), "api", "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"levibot api exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(up, 60, "levibot api /livez")
    return proc


def test_bot_commands_forwarded_by_the_signal_ingest(kafka_bootstrap, pg_dsn, topic_prefix, tmp_path):
    from connectors.control import read_control
    from connectors.kafka.admin import ensure_topics
    from operators.control.signing import keyring

    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    db = ApiDatabase(pg_dsn, max_size=1).open()
    trader = parse_token(key_headers(db, ("trade",), "pro")["X-API-Key"])[0]
    db.close()
    bot = FakeBotApi()
    api_port, ingest_port, bad_port = free_port(), free_port(), free_port()
    common = {
        "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEVIBOT_TOPIC_PREFIX": topic_prefix,
        "LEVIBOT_VAR": str(tmp_path / "var"),
    }
    api_env = {
        **{k: "" for k in os.environ if k.startswith("LEVIBOT_API_")},
        **common,
        "LEVIBOT_PG_DSN": pg_dsn,
        "LEVIBOT_CONTROL_KEY": CONTROL_KEY,
        "LEVIBOT_API_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "LEVIBOT_API_TELEGRAM_SECRET_TOKEN": API_SECRET,
        "LEVIBOT_API_TELEGRAM_API_URL": bot.url,
        "LEVIBOT_API_TELEGRAM_CHATS": str(CHAT),
        "LEVIBOT_API_TELEGRAM_USERS": json.dumps({"7": trader}),
        "LEVIBOT_API_AUTH_RATE": "1000/minute",
    }
    ingest_env = {
        **common,
        "LEVIBOT_TELEGRAM_SECRET_TOKEN": INGEST_SECRET,
        "LEVIBOT_TELEGRAM_CHATS": f"{CHAT}:0.8",
        "LEVIBOT_SIGNAL_WEB_PORT": str(ingest_port),
        "LEVIBOT_TELEGRAM_COMMANDS_URL": f"http://127.0.0.1:{api_port}/telegram/bot",
        "LEVIBOT_TELEGRAM_COMMANDS_SECRET": API_SECRET,
    }
    hook = f"http://127.0.0.1:{ingest_port}/telegram/webhook"
    ok = {"X-Telegram-Bot-Api-Secret-Token": INGEST_SECRET}
    api = _start_api(api_env, api_port, tmp_path / "api.log")
    ingest = start_app("flows.signal_ingest", ingest_env, ingest_port, tmp_path / "ingest.log")
    procs = [api, ingest]
    try:

        def say(uid: int, chat: int, user: int, text: str) -> str:
            n = len(bot.calls)
            assert post(hook, _cmd(uid, chat, user, text), ok) == 200
            assert len(bot.calls) == n + 1, bot.calls  # answered before the webhook returned
            path, body = bot.calls[-1]
            assert path == f"/bot{BOT_TOKEN}/sendMessage" and body["chat_id"] == chat
            return body["text"]

        assert post(hook, _cmd(1, CHAT, 7, "/status"), {}) == 401  # the ingest's own secret still guards it
        assert "account default" in say(2, CHAT, 7, "/status")
        assert say(3, CHAT, 7, "/positions") == "no positions"
        assert say(4, CHAT, 7, "/pnl").startswith("P&L ")
        assert say(5, OTHER_CHAT, 7, "/halt now") == "Not allowed here."
        staged = say(6, CHAT, 7, "/halt exchange outage")
        code = re.search(r"/confirm ([0-9a-f]{6})", staged).group(1)
        done = say(7, CHAT, 7, f"/confirm {code}")
        cmd_id = re.search(r"command (cmd-[0-9a-f]+)", done).group(1)
        view = read_control(kafka_bootstrap, f"{topic_prefix}control", keyring(CONTROL_KEY))
        assert [(r.command.id, r.command.action, r.outcome) for r in view.records] == [(cmd_id, "halt", "applied")]
        assert view.records[0].command.issuer == f"api:{trader}"
        assert view.state.scope_mode("account:default") == "halted"
        assert post(hook, _signal(8), ok) == 200  # a signal still goes the signal way
        # commands are not signals: only the signal's update is on telegram.updates
        # (the webhook answers an update only once the broker has acknowledged it, so a command produced there by
        # mistake would be on the topic before the signal's update, which was posted last)
        updates = wait_for(
            lambda: read_all(kafka_bootstrap, f"{topic_prefix}telegram.updates"), 30, "the signal's update"
        )
        assert [json.loads(m.value())["update_id"] for m in updates] == [8]
        with psycopg.connect(pg_dsn) as conn:
            rows = conn.execute(
                "SELECT actor, action, result, split_part(detail, ':', 1) FROM audit "
                "WHERE source = 'api' ORDER BY ts_ns"
            ).fetchall()
        assert rows == [
            ("telegram:7", "api.telegram.halt", "denied", "not_allowed"),
            (f"api:{trader}", "api.telegram.halt", "applied", "published"),
        ]

        # the API down: 503, so Telegram delivers the command again later; nothing is ingested meanwhile
        stop_app(api)
        assert post(hook, _cmd(9, CHAT, 7, "/status"), ok) == 503

        # an ingest whose forwarding secret the API does not know: the refused forward is a dead letter
        api = procs[0] = _start_api(api_env, api_port, tmp_path / "api2.log")
        bad = {
            **ingest_env,
            "LEVIBOT_SIGNAL_WEB_PORT": str(bad_port),
            "LEVIBOT_TELEGRAM_COMMANDS_SECRET": "wrong",
            "LEVIBOT_SIGNAL_APP_ID": f"{topic_prefix}levibot-signal-ingest-bad",
        }
        stop_app(ingest)
        ingest = procs[1] = start_app("flows.signal_ingest", bad, bad_port, tmp_path / "ingest2.log")
        n = len(bot.calls)
        assert post(f"http://127.0.0.1:{bad_port}/telegram/webhook", _cmd(10, CHAT, 7, "/status"), ok) == 200
        dls = wait_for(
            lambda: [
                d
                for d in (decode(m.value(), DeadLetter) for m in read_all(kafka_bootstrap, f"{topic_prefix}dlq"))
                if d.error == "command_refused"
            ],
            30,
            "the command_refused dead letter",
        )
        assert len(dls) == 1 and dls[0].stage == "telegram_webhook" and "HTTP 401" in dls[0].detail
        assert json.loads(dls[0].raw)["update_id"] == 10 and len(bot.calls) == n  # nothing answered
        assert API_SECRET not in (tmp_path / "ingest.log").read_text(errors="replace")
    finally:
        for p in procs:
            stop_app(p)
        bot.close()
