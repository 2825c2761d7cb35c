"""Telegram on the operator API against the real PostgreSQL and Kafka, with a local HTTP server in place of the Bot
API host: bot commands from allow-listed chats and users (``/status``, ``/positions``, ``/pnl``, ``/halt`` with its
``/confirm``) answered by ``sendMessage``, the halt signed on the control topic, refusals from other chats, users and
scopes audited; Mini App ``initData``: valid opens the console, forged, expired, foreign or not allow-listed is
refused and audited; and (slow) a Telegram ``/halt`` that a running live flow applies."""

from __future__ import annotations

import json
import re
import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from connectors.ratelimit import RateLimiter
from flows.api.app import create_app
from flows.api.context import ApiContext
from flows.api.settings import ApiSettings
from flows.settings import Settings
from operators.api.keys import parse_token
from operators.api.telegram import sign_init_data
from tests.support import metric_total, wait_for
from tests.support.api import FAST, key_headers, store_trading_rows
from tests.support.http import FakeBotApi

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
BOT_TOKEN = "123456:TEST-bot-token"
SECRET = "telegram-webhook-secret-0123456789"
KEY = "telegram-test-control-key-0123456789"
CHAT, OTHER_CHAT = -1001234, -55


@pytest.fixture
def tg(kafka_bootstrap, pg_dsn, topic_prefix, tmp_path):
    from connectors.kafka.admin import ensure_topics

    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    bot = FakeBotApi()
    db = ApiDatabase(pg_dsn, max_size=2)
    db.open()
    trader = parse_token(key_headers(db, ("trade",), "pro")["X-API-Key"])[0]
    reader = parse_token(key_headers(db, ("read",), "pro")["X-API-Key"])[0]
    db.close()
    s = Settings.from_env(
        {
            "LEVIBOT_PG_DSN": pg_dsn,
            "LEVIBOT_CONTROL_KEY": KEY,
            "LEVIBOT_TOPIC_PREFIX": topic_prefix,
            "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEVIBOT_VAR": str(tmp_path),
        }
    )
    a = ApiSettings(
        auth_rate="1000/minute",
        telegram_bot_token=BOT_TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_url=bot.url,
        telegram_chats=f"{CHAT}",
        telegram_users=json.dumps({"7": trader, "11": reader}),
        session_secret="z" * 40,
    )
    ctx = ApiContext(settings=s, api=a, db=ApiDatabase(pg_dsn, max_size=4), limiter=RateLimiter(), hasher=FAST)
    try:
        with TestClient(create_app(ctx), base_url="https://testserver", follow_redirects=False) as client:
            yield client, bot, ctx, trader, pg_dsn, topic_prefix
    finally:
        bot.close()


def _update(chat: int, user: int, text: str, mid: int = 1) -> dict:
    return {
        "update_id": mid,
        "message": {
            "message_id": mid,
            "chat": {"id": chat, "type": "supergroup"},
            "from": {"id": user, "is_bot": False, "first_name": "T"},
            "text": text,
        },
    }


def _say(client, bot, chat, user, text, mid=1) -> str:
    n = len(bot.calls)
    r = client.post(
        "/telegram/bot", json=_update(chat, user, text, mid), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert r.status_code == 200, r.text
    assert len(bot.calls) == n + 1
    path, body = bot.calls[-1]
    assert path == f"/bot{BOT_TOKEN}/sendMessage" and body["chat_id"] == chat
    return body["text"]


def _audit(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT actor, action, result, split_part(detail, ':', 1) FROM audit WHERE source = 'api' ORDER BY ts_ns"
        ).fetchall()


def test_bot_commands_from_allow_listed_chats_only(tg, kafka_bootstrap, caplog):
    import logging

    from connectors.control import read_control
    from operators.control.signing import keyring

    caplog.set_level(logging.DEBUG)
    client, bot, _ctx, trader, dsn, prefix = tg
    store_trading_rows(dsn)
    r = client.post("/telegram/bot", json=_update(CHAT, 7, "/status"), headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
    assert r.status_code == 401 and bot.calls == []
    assert "HALTED" in _say(client, bot, CHAT, 7, "/status@LeviBot")  # the stored decision's gate kill switch
    pos = _say(client, bot, CHAT, 7, "/positions")
    assert "BTC-USD: +0.25" in pos and "ETH-USD: +2" in pos
    assert _say(client, bot, CHAT, 7, "/pnl").startswith("P&L ")
    assert _say(client, bot, OTHER_CHAT, 7, "/halt now") == "Not allowed here."
    assert _say(client, bot, CHAT, 8, "/status") == "Not allowed here."
    assert "'trade' scope" in _say(client, bot, CHAT, 11, "/halt")
    staged = _say(client, bot, CHAT, 7, "/halt exchange outage", mid=9)
    code = re.search(r"/confirm ([0-9a-f]{6})", staged).group(1)
    assert "'trade' scope" in _say(client, bot, CHAT, 11, f"/confirm {code}")  # a reader cannot confirm it
    assert read_control(kafka_bootstrap, f"{prefix}control", keyring(KEY)).records == []  # nothing sent yet
    done = _say(client, bot, CHAT, 7, f"/confirm {code}")
    cmd_id = re.search(r"command (cmd-[0-9a-f]+)", done).group(1)
    view = read_control(kafka_bootstrap, f"{prefix}control", keyring(KEY))
    assert [(r.command.id, r.command.action, r.outcome) for r in view.records] == [(cmd_id, "halt", "applied")]
    assert view.state.scope_mode("account:default") == "halted"
    assert view.records[0].command.issuer == f"api:{trader}" and view.records[0].command.reason == "exchange outage"
    assert "nothing to confirm" in _say(client, bot, CHAT, 7, f"/confirm {code}")  # once only
    assert bot.calls[-1][1]["reply_parameters"]["message_id"] == 1
    assert BOT_TOKEN not in caplog.text and SECRET not in caplog.text  # the token is in the Bot API's URL path
    rows = _audit(dsn)
    assert rows == [
        ("anonymous", "api.telegram.webhook", "denied", "bad_secret_token"),
        ("telegram:7", "api.telegram.halt", "denied", "not_allowed"),
        ("telegram:8", "api.telegram.status", "denied", "not_allowed"),
        (rows[3][0], "api.telegram.halt", "denied", "scope"),
        (rows[3][0], "api.telegram.confirm", "denied", "scope"),
        (f"api:{trader}", "api.telegram.halt", "applied", "published"),
    ]


def test_mini_app_init_data(tg):
    client, _bot, _ctx, trader, dsn, _ = tg
    now = int(time.time())
    user = json.dumps({"id": 7, "first_name": "T"})
    good = sign_init_data(BOT_TOKEN, {"auth_date": str(now), "query_id": "AAE", "user": user})
    assert client.get("/console/telegram").status_code == 200
    r = client.post("/console/telegram/login", data={"init_data": good})
    assert r.status_code == 303 and r.headers["location"] == "/console"
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
    page = client.get("/console")
    assert page.status_code == 200 and 'data-card="kill_switch"' in page.text
    client.cookies.clear()
    forged = good.replace("%22id%22%3A+7", "%22id%22%3A+11")
    assert forged != good
    expired = sign_init_data(BOT_TOKEN, {"auth_date": str(now - 7200), "user": user})
    foreign = sign_init_data("999:another-bot", {"auth_date": str(now), "user": user})
    stranger = sign_init_data(BOT_TOKEN, {"auth_date": str(now), "user": json.dumps({"id": 8})})
    for data, code in ((forged, 401), (expired, 401), (foreign, 401), (stranger, 403), ("", 401)):
        r = client.post("/console/telegram/login", data={"init_data": data})
        assert r.status_code == code and "set-cookie" not in r.headers, (data, r.status_code)
    assert client.get("/console").headers["location"] == "/console/login"
    rows = [(a, act, res, d) for a, act, res, d in _audit(dsn)]
    assert rows == [
        (f"api:{trader}", "api.console.telegram_login", "applied", "login"),
        ("anonymous", "api.console.telegram_login", "denied", "bad_signature"),
        ("anonymous", "api.console.telegram_login", "denied", "expired"),
        ("anonymous", "api.console.telegram_login", "denied", "bad_signature"),
        ("telegram:8", "api.console.telegram_login", "denied", "not_allowed"),
        ("anonymous", "api.console.telegram_login", "denied", "malformed"),
    ]


@pytest.mark.slow
def test_telegram_halt_halts_a_live_flow(kafka_bootstrap, pg_dsn, tmp_path):
    """``/halt`` + ``/confirm`` from an allow-listed chat halts a running live flow: the flow applies the command and
    audits it, and no order follows it."""
    from schemas.events import AuditEvent, Order
    from tests.support.flowproc import (
        BAR_ARGS,
        FlowProc,
        TopicCounter,
        create_topics,
        drop_topics,
        flow_env,
        new_prefix,
        read_events,
    )

    prefix = new_prefix("tg")
    migrate(pg_dsn)
    env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_CONTROL_KEY=KEY, LEVIBOT_PG_DSN=pg_dsn)
    bot = FakeBotApi()
    procs: list = []
    try:
        create_topics(kafka_bootstrap, prefix)
        procs.append(
            FlowProc(
                ["replay", "--max-bars", "6000", "--speed", "60000", "--no-progress"], env, tmp_path / "replay.log"
            )
        )
        from tests.support.flowproc import free_ports

        m_port = free_ports(1)[0]
        flow = FlowProc(
            ["run", "--live", "--venue", "sim", "--stores", "postgres", *BAR_ARGS],
            dict(env, LEVIBOT_METRICS_PORT=str(m_port)),
            tmp_path / "flow.log",
        )
        procs.append(flow)
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        wait_for(lambda: orders.count() > 20, 180, "the first orders", procs=[flow], interval_s=0.5)
        db = ApiDatabase(pg_dsn, max_size=1).open()
        trader = parse_token(key_headers(db, ("trade",), "pro")["X-API-Key"])[0]
        db.close()
        s = Settings.from_env(
            {
                "LEVIBOT_PG_DSN": pg_dsn,
                "LEVIBOT_CONTROL_KEY": KEY,
                "LEVIBOT_TOPIC_PREFIX": prefix,
                "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "LEVIBOT_VAR": str(tmp_path / "var"),
            }
        )
        a = ApiSettings(
            telegram_bot_token=BOT_TOKEN,
            telegram_secret_token=SECRET,
            telegram_api_url=bot.url,
            telegram_chats=f"{CHAT}",
            telegram_users=json.dumps({"7": trader}),
        )
        ctx = ApiContext(settings=s, api=a, db=ApiDatabase(pg_dsn, max_size=2), limiter=RateLimiter(), hasher=FAST)
        with TestClient(create_app(ctx)) as client:
            assert _say(client, bot, OTHER_CHAT, 7, "/halt") == "Not allowed here."
            code = re.search(r"/confirm ([0-9a-f]{6})", _say(client, bot, CHAT, 7, "/halt telegram live")).group(1)
            cmd_id = re.search(r"command (cmd-[0-9a-f]+)", _say(client, bot, CHAT, 7, f"/confirm {code}")).group(1)

            def applied() -> list:
                return [
                    e
                    for e in read_events(kafka_bootstrap, f"{prefix}audit", AuditEvent)
                    if e.command_id == cmd_id and e.result == "applied" and e.source == "flow"
                ]

            halt = wait_for(applied, 120, "the flow to apply the Telegram halt", procs=[flow], interval_s=0.5)[0]
            assert halt.actor == f"api:{trader}" and halt.action == "halt"

            # the flow goes on reading ticks while halted: 1,600 more (100 decision bars of each symbol), or the
            # whole replay (2 files x 6,000 bars x 8 ticks)
            def ticks_read() -> float:
                return metric_total(m_port, "levibot_events_in_total", stage="ingest", topic=f"{prefix}ticks")

            read = wait_for(ticks_read, 30, "the flow's ingest count", procs=[flow], retry_on=(OSError,))
            wait_for(
                lambda: ticks_read() >= min(read + 1_600, 2 * 6_000 * 8),
                60,
                "ticks read while halted",
                procs=[flow],
                retry_on=(OSError,),
            )
        after = [o for o in read_events(kafka_bootstrap, f"{prefix}orders", Order) if o.ts > halt.ts]
        assert not after, f"{len(after)} orders after the Telegram halt"
        orders.close()
        with psycopg.connect(pg_dsn) as conn:
            rows = conn.execute(
                "SELECT source, actor, action, result FROM audit WHERE command_id = %s OR "
                "action = 'api.telegram.halt' ORDER BY source, ts_ns",
                (cmd_id,),
            ).fetchall()
        assert rows == [
            ("api", "telegram:7", "api.telegram.halt", "denied"),
            ("api", f"api:{trader}", "api.telegram.halt", "applied"),
            ("flow", f"api:{trader}", "halt", "applied"),
        ]
    finally:
        bot.close()
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])
