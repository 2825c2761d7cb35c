"""Signal ingest against the real broker: the Faust app runs as a subprocess, Telegram is played by HTTP requests
from the test, results are read back from the topics. Also the Telegram Desktop export replay."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from connectors.kafka.admin import ensure_topics
from operators.signals.lifecycle_state import ChatAllowList, InboundMessage, ingest_message
from schemas.codec import decode
from schemas.events import DeadLetter, Signal
from tests.support import TEST_DATA, read_all, wait_for
from tests.support.flowproc import free_port
from tests.support.ingest import ORIGINAL, post, start_app, stop_app

EXPORT = TEST_DATA / "telegram_export.json"
SECRET = "t0p-s3cret_token"
CHAT = -1001234567890
OTHER_CHAT = -1009999999999
T0 = 1_700_000_000  # Unix seconds

pytestmark = pytest.mark.kafka


def update(
    update_id: int,
    message_id: int,
    text: str,
    *,
    chat: int = CHAT,
    edit: int | None = None,
    reply_to: int | None = None,
    username: str = "vipsignals",
) -> bytes:
    msg: dict = {
        "message_id": message_id,
        "date": T0 + message_id,
        "chat": {"id": chat, "type": "channel", "title": "VIP", "username": username},
        "text": text,
    }
    if edit is not None:
        msg["edit_date"] = edit
    if reply_to is not None:
        msg["reply_to_message"] = {"message_id": reply_to, "date": T0 + reply_to, "chat": msg["chat"]}
    slot = "edited_channel_post" if edit is not None else "channel_post"
    return json.dumps({"update_id": update_id, slot: msg}).encode()


EDITED = "#BTC/USDT LONG 10x\nEntry: 27000 - 27400\nTargets: 27800 - 28500 - 29500\nSL: 26600"


def test_webhook_to_signals_exactly_once(kafka_bootstrap, topic_prefix, tmp_path):
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["telegram.updates", "signals", "dlq"])
    port = free_port()
    env = {
        "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEVIBOT_TOPIC_PREFIX": topic_prefix,
        "LEVIBOT_TELEGRAM_SECRET_TOKEN": SECRET,
        "LEVIBOT_TELEGRAM_CHATS": f"{CHAT}:0.8,@otherchan:0.3",
        "LEVIBOT_SIGNAL_WEB_PORT": str(port),
        "LEVIBOT_TELEGRAM_MAX_BODY_BYTES": str(64 * 1024),
        "LEVIBOT_VAR": str(tmp_path / "var"),
    }
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    ok = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    proc = start_app("flows.signal_ingest", env, port, tmp_path / "ingest.log")
    t_start_ms = int(time.time() * 1000)
    try:
        # refused: no secret, wrong secret (same length and not), oversized
        assert post(url, update(1, 10, ORIGINAL), {}) == 401
        assert post(url, update(1, 10, ORIGINAL), {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1] + "X"}) == 401
        assert post(url, update(1, 10, ORIGINAL), {"X-Telegram-Bot-Api-Secret-Token": "nope"}) == 401
        big = update(2, 11, "x" * 5000 + " " + "y" * 70_000)
        assert post(url, big, ok) == 413

        # accepted: the signal delivered twice, its edit, a reply follow-up, chatter, a foreign chat
        assert post(url, update(3, 10, ORIGINAL), ok) == 200
        assert post(url, update(3, 10, ORIGINAL), ok) == 200  # Telegram redelivery
        assert post(url, update(4, 10, EDITED, edit=T0 + 500), ok) == 200
        assert post(url, update(5, 12, "TP1 hit ✅ Move SL to entry", reply_to=10), ok) == 200
        assert post(url, update(6, 13, "gm fam, big week ahead"), ok) == 200
        assert post(url, update(7, 14, ORIGINAL, chat=OTHER_CHAT, username="randomchan"), ok) == 200
        assert post(url, update(8, 10, EDITED, edit=T0 + 500), ok) == 200  # the edit redelivered

        sig_topic, dlq_topic = topic_prefix + "signals", topic_prefix + "dlq"
        wait_for(
            lambda: len(read_all(kafka_bootstrap, sig_topic)) >= 3 and len(read_all(kafka_bootstrap, dlq_topic)) >= 2,
            30,
            "3 signals and 2 dead letters",
        )
        # the agent has handled every one of the 7 accepted updates (one outcome each): a duplicate signal would
        # already be on the topic
        wait_for(lambda: metric_total(port, "levibot_signal_ingest_total") == 7, 30, "7 ingest outcomes")
        sigs = sorted(
            (decode(m.value(), Signal) for m in read_all(kafka_bootstrap, sig_topic)),
            key=lambda s: (s.source_message_id, s.version),
        )
        dls = [decode(m.value(), DeadLetter) for m in read_all(kafka_bootstrap, dlq_topic)]
        raw_updates = read_all(kafka_bootstrap, topic_prefix + "telegram.updates")
        sig_msgs = read_all(kafka_bootstrap, sig_topic)
        t_end_ms = int(time.time() * 1000)
    finally:
        stop_app(proc)

    # nothing from the refused requests reached Kafka: only the 7 accepted updates
    assert len(raw_updates) == 7
    # messages dated 2023 are stamped with the time they were produced, not their own date: the topics retain by
    # Kafka time, and a 2023 timestamp would hand them to retention at its next check
    assert all(t_start_ms <= m.timestamp()[1] <= t_end_ms for m in raw_updates + sig_msgs)
    assert {m.key() for m in raw_updates} == {str(CHAT).encode(), str(OTHER_CHAT).encode()}

    assert [(s.id, s.version, s.kind) for s in sigs] == [
        (f"tg:{CHAT}:10", 1, "open"),
        (f"tg:{CHAT}:10", 2, "open"),
        (f"tg:{CHAT}:12", 1, "update"),
    ]
    v1, v2, upd = sigs
    assert (v1.symbol, v1.side, v1.entries, v1.targets, v1.stop, v1.leverage, v1.trust) == (
        "BTC-USDT",
        "long",
        [27000.0, 27400.0],
        [27800.0, 28500.0, 29000.0],
        26500.0,
        10.0,
        0.8,
    )
    assert (v2.targets[-1], v2.stop, v2.ts) == (29500.0, 26600.0, (T0 + 500) * 10**9)
    assert (upd.ref_id, upd.symbol, upd.side, upd.stop) == (f"tg:{CHAT}:10", "BTC-USDT", "long", 27200.0)
    assert sorted(d.error for d in dls) == ["chat_not_allowed", "no_signal"]
    assert all(d.source_topic == topic_prefix + "telegram.updates" and d.offset >= 0 for d in dls)


# ---------------------------------------------------------------------------------------------------------------
# the ingest step itself (pure): versions, stale edits, lifecycle resolution without a reply


def test_ingest_state_rules():
    state: dict = {}
    trust = ChatAllowList.parse(f"{CHAT}:0.9").trust(CHAT, None)

    def step(**kw):
        out = ingest_message(InboundMessage(chat_id=CHAT, **kw), trust=trust, get=state.get)
        state.update(out.writes)
        return out

    assert step(message_id=1, date_s=T0, text="#ETH/USDT SHORT Entry 1850 TP 1800 1750 SL 1900").status == "signal"
    e2 = step(message_id=1, date_s=T0, edit_date_s=T0 + 60, text="#ETH/USDT SHORT Entry 1850 TP 1800 1700 SL 1900")
    assert (e2.signal.version, e2.signal.targets) == (2, [1800.0, 1700.0])
    assert step(message_id=1, date_s=T0, edit_date_s=T0 + 30, text="old edit").status == "duplicate"
    # a follow-up naming the symbol, not a reply, finds the latest open ETH signal
    c = step(message_id=2, date_s=T0 + 100, text="#ETH close 50% now")
    assert (c.signal.kind, c.signal.ref_id, c.signal.close_fraction, c.signal.side) == (
        "close",
        f"tg:{CHAT}:1",
        0.5,
        "short",
    )
    # a reply to the follow-up resolves to the same original
    r = step(message_id=3, date_s=T0 + 200, text="Stop loss hit", reply_to_message_id=2)
    assert (r.signal.kind, r.signal.ref_id) == ("close", f"tg:{CHAT}:1")
    # unresolvable follow-up, no text, foreign chat
    assert step(message_id=4, date_s=T0 + 300, text="TP2 hit ✅").reason == "unresolved_ref"
    assert step(message_id=5, date_s=T0 + 301, text=None).reason == "no_text"
    foreign = ingest_message(InboundMessage(chat_id=-5, message_id=1, date_s=T0, text="x"), trust=None, get=state.get)
    assert (foreign.status, foreign.reason, foreign.writes) == ("rejected", "chat_not_allowed", ())


# ---------------------------------------------------------------------------------------------------------------
# Telegram Desktop export replay


def test_replay_telegram_export(kafka_bootstrap, topic_prefix, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from flows.cli_edges import register

    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["signals", "dlq"], partitions={"signals": 1})
    monkeypatch.setenv("LEVIBOT_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("LEVIBOT_TOPIC_PREFIX", topic_prefix)
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep sub-commands addressable by name
        pass

    res = CliRunner().invoke(app, ["replay-telegram", str(EXPORT), "--trust", "0.7"])
    assert res.exit_code == 0, res.output
    export = json.loads(EXPORT.read_text())
    chat = -(10**12 + export["id"])
    sigs = [decode(m.value(), Signal) for m in read_all(kafka_bootstrap, topic_prefix + "signals")]
    dls = [decode(m.value(), DeadLetter) for m in read_all(kafka_bootstrap, topic_prefix + "dlq")]
    # message-time order on the (single-partition) topic, although the file lists one message out of order
    assert [s.ts for s in sigs] == sorted(s.ts for s in sigs)
    assert [s.source_message_id for s in sigs] == [101, 102, 104, 105, 106, 107, 109, 111]
    assert {s.source_chat for s in sigs} == {str(chat)} and {s.trust for s in sigs} == {0.7}
    kinds = {s.source_message_id: (s.kind, s.ref_id) for s in sigs}
    assert kinds[104] == ("update", f"tg:{chat}:101")  # reply "TP1 ✅" to the BTC signal
    assert kinds[106] == ("cancel", f"tg:{chat}:105")  # "#SOL cancelled", resolved by symbol
    assert kinds[109] == ("close", f"tg:{chat}:102")  # reply "closed" to the ETH short
    assert sorted(d.error for d in dls) == ["no_signal", "no_signal", "no_stop"]
    assert "signals 8" in res.output and "service 1" in res.output


# ---------------------------------------------------------------------------------------------------------------
# poison bytes: bodies that are not UTF-8 (used to be an HTTP 500, uncounted, not dead-lettered, retried forever)


def post_json(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


def metric_total(port: int, name: str) -> float:
    """The sum of a counter over all its label values."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


def metric_value(port: int, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return 0.0


def test_webhook_dead_letters_bodies_that_are_not_utf8(kafka_bootstrap, topic_prefix, tmp_path):
    from connectors.kafka.sink import EventProducer
    from tests.support.flowproc import listening_addresses

    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["telegram.updates", "signals", "dlq"])
    port = free_port()
    env = {
        "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEVIBOT_TOPIC_PREFIX": topic_prefix,
        "LEVIBOT_TELEGRAM_SECRET_TOKEN": SECRET,
        "LEVIBOT_TELEGRAM_CHATS": f"{CHAT}:0.8",
        "LEVIBOT_SIGNAL_WEB_PORT": str(port),
        "LEVIBOT_VAR": str(tmp_path / "var"),
    }
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    ok = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    good = update(21, 30, ORIGINAL)
    poison = [
        good.replace(b"LONG 10x", b"LONG \xff10x"),  # stray byte in the text
        good.replace(b"LONG 10x", b"LONG \xed\xa0\x8010x"),  # a UTF-16 surrogate encoded as UTF-8
        good.replace(b'"VIP"', b'"VIP\xe2\x82"'),  # truncated 3-byte sequence before the quote
        good.replace(b'"chat"', b'"ch\xffat"'),  # in a key
        good.replace(b'"VIP"', b'"V\xc0\xafIP"'),  # overlong '/'
    ]
    for p in poison:
        with pytest.raises(UnicodeDecodeError):
            p.decode("utf-8")
    proc = start_app("flows.signal_ingest", env, port, tmp_path / "ingest.log")
    try:
        # the receiver's default bind is loopback only (LEVIBOT_SIGNAL_WEB_HOST opens it, as the deployments do)
        assert listening_addresses(port) == {"127.0.0.1"}
        before = metric_value(port, "levibot_signal_updates_total", 'result="dlq_invalid_json"')
        t_start_ms = int(time.time() * 1000)
        # unauthenticated poison is refused and never reaches Kafka
        assert post_json(url, poison[0], {})[0] == 401
        for p in poison:
            assert post_json(url, p, ok) == (200, {"ok": True, "dead_letter": "invalid_json"})
        # the same bytes put straight on telegram.updates (another producer) are dead-lettered by the agent
        prod = EventProducer(kafka_bootstrap, topic_prefix + "telegram.updates")
        prod.produce_raw(str(CHAT).encode(), poison[1])
        prod.flush(10)
        # and the receiver still works: a valid update afterwards becomes a signal
        assert post_json(url, good, ok) == (200, {"ok": True})
        sig_topic, dlq_topic = topic_prefix + "signals", topic_prefix + "dlq"
        wait_for(
            lambda: (
                len(read_all(kafka_bootstrap, sig_topic)) >= 1
                and len(read_all(kafka_bootstrap, dlq_topic)) >= len(poison) + 1
            ),
            30,
            "1 signal and 6 dead letters",
        )
        after = metric_value(port, "levibot_signal_updates_total", 'result="dlq_invalid_json"')
        ingest_count = metric_value(port, "levibot_signal_ingest_total", 'outcome="invalid_json"')
        dl_msgs = read_all(kafka_bootstrap, dlq_topic)
        sigs = [decode(m.value(), Signal) for m in read_all(kafka_bootstrap, sig_topic)]
        raw_updates = read_all(kafka_bootstrap, topic_prefix + "telegram.updates")
        log_text = (tmp_path / "ingest.log").read_text(errors="replace")
    finally:
        stop_app(proc)

    assert after - before == len(poison) and ingest_count == 1
    assert "Traceback" not in log_text and "UnicodeDecodeError" not in log_text
    dls = [decode(m.value(), DeadLetter) for m in dl_msgs]
    hook = [d for d in dls if d.stage == "telegram_webhook"]
    agent = [d for d in dls if d.stage == "signal_ingest"]
    # every poison body is in dlq verbatim, with the codec's reason, keyed by the source topic
    assert sorted(d.raw for d in hook) == sorted(poison)
    assert all(d.error == "invalid_json" and d.raw_size == len(d.raw) and "UTF-8" in d.detail for d in hook)
    assert all(
        d.source_topic == topic_prefix + "telegram.updates" and (d.partition, d.offset) == (-1, -1) for d in hook
    )
    assert {m.key() for m in dl_msgs} == {(topic_prefix + "telegram.updates").encode()}
    # stamped with the receive time, in the payload and as the Kafka timestamp (0 would fall to retention at once)
    t_end_ms = int(time.time() * 1000)
    hook_ts = [m.timestamp()[1] for m in dl_msgs if decode(m.value(), DeadLetter).stage == "telegram_webhook"]
    assert all(t_start_ms <= t <= t_end_ms for t in hook_ts) and len(hook_ts) == len(poison)
    assert all(t_start_ms * 10**6 <= d.ts <= t_end_ms * 10**6 for d in hook)
    # the one the agent rejected carries its Kafka coordinates
    poisoned_in_topic = [m for m in raw_updates if m.value() == poison[1]]
    assert len(agent) == 1 and len(poisoned_in_topic) == 1
    assert (agent[0].error, agent[0].raw, agent[0].partition, agent[0].offset) == (
        "invalid_json",
        poison[1],
        poisoned_in_topic[0].partition(),
        poisoned_in_topic[0].offset(),
    )
    # only the valid update and the directly produced poison are on telegram.updates; the valid one became a signal
    assert sorted(m.value() for m in raw_updates) == sorted([good, poison[1]])
    assert [(s.id, s.version) for s in sigs] == [(f"tg:{CHAT}:30", 1)]
