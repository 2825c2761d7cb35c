"""`levibot control` and connectors/control.py against the real Kafka broker: every sub-command lands signed on the
compacted `control` topic under its compaction key, `status` folds the topic back, and no key, a wrong key or a
forged message never becomes state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from connectors.control import ControlPublisher, fold, key_by_compaction_key, read_control
from connectors.kafka.admin import ensure_topics
from connectors.kafka.sink import EventProducer
from connectors.kafka.source import iter_topic
from flows.cli import app
from flows.cli_control import default_issuer, sanitize_name
from operators.control import ControlState, sign, verify
from schemas.codec import decode, encode
from schemas.events import NAME_PATTERN, ControlCommand
from tests.support.flowproc import REPO, drop_topics, new_prefix

pytestmark = pytest.mark.kafka

KEY = "operator-key-for-tests-0123456789"
KEY_ID = "ops-2026"
runner = CliRunner()


@pytest.fixture
def prefix(kafka_bootstrap):
    """A fresh `control` topic for one test."""
    p = new_prefix("ctl")
    ensure_topics(kafka_bootstrap, prefix=p, names=["control"])
    yield p
    drop_topics(kafka_bootstrap, [p])


@pytest.fixture(scope="module")
def empty_prefix(kafka_bootstrap):
    """One `control` topic for the tests that must send nothing (they check it stays empty)."""
    p = new_prefix("ctlx")
    ensure_topics(kafka_bootstrap, prefix=p, names=["control"])
    yield p
    drop_topics(kafka_bootstrap, [p])


def env_for(prefix: str, key: str | None = KEY, key_id: str | None = KEY_ID, verify_keys: str | None = None) -> dict:
    return {
        "LEVIBOT_TOPIC_PREFIX": prefix,
        "LEVIBOT_CONTROL_KEY": key,
        "LEVIBOT_CONTROL_KEY_ID": key_id,
        "LEVIBOT_CONTROL_VERIFY_KEYS": verify_keys,
    }


def control(prefix: str, *args: str, **env_kw) -> object:
    return runner.invoke(app, ["control", *args], env=env_for(prefix, **env_kw))


def messages(bootstrap: str, topic: str) -> list:
    return [m for batch in iter_topic(bootstrap, topic, timeout_s=20) for m in batch]


def status_json(prefix: str, **env_kw) -> dict:
    res = control(prefix, "status", "--json", **env_kw)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


SUBCOMMANDS = [
    (["halt", "--reason", "exchange outage", "--scope", "symbol:BTCUSD"], "halt", "symbol:BTCUSD", {}),
    (["reduce-only", "--reason", "drawdown review"], "reduce_only", "account:default", {}),
    (["resume", "--scope", "account:default", "--reason", "review done"], "resume", "account:default", {}),
    (
        ["set-limit", "max_leverage", "1.5", "--reason", "desk limit"],
        "set_limit",
        "account:default",
        {"name": "max_leverage", "value": 1.5},
    ),
    (["set-limit", "min_history", "150"], "set_limit", "account:default", {"name": "min_history", "value": 150}),
    (["disable-strategy", "trend", "--reason", "bad fills"], "disable_strategy", "strategy:trend", {}),
    (["enable-strategy", "zscore"], "enable_strategy", "strategy:zscore", {}),
    (
        ["pin-model", "20260101T000000000000Z-ab12cd34", "--issuer", "jane.doe"],
        "pin_model",
        "account:default",
        {"version": "20260101T000000000000Z-ab12cd34"},
    ),
    (["unpin-model", "--scope", "account:desk2"], "unpin_model", "account:desk2", {}),
]


def test_every_subcommand_lands_signed_under_its_compaction_key(kafka_bootstrap, prefix):
    before = time.time_ns()
    for args, *_ in SUBCOMMANDS:
        res = control(prefix, *args)
        assert res.exit_code == 0, (args, res.output)
        assert res.stdout.startswith("sent ") and "key_id=ops-2026" in res.stdout
    after = time.time_ns()
    msgs = messages(kafka_bootstrap, f"{prefix}control")
    assert len(msgs) == len(SUBCOMMANDS)
    ids = set()
    for m, (args, action, scope, params) in zip(sorted(msgs, key=lambda m: m.offset()), SUBCOMMANDS, strict=True):
        c = decode(m.value(), ControlCommand)
        assert (c.action, c.scope, dict(c.parameters)) == (action, scope, params), args
        assert type(c.parameters.get("value", 0.0)) is (int if params.get("name") == "min_history" else float)
        assert m.key() == key_by_compaction_key(c) == c.compaction_key.encode()
        assert c.key_id == KEY_ID and len(c.signature) == 64
        assert verify(c, {KEY_ID: KEY.encode()}).ok
        assert verify(c, {KEY_ID: b"some-other-key-0123456789"}).reason == "bad_signature"
        assert before <= c.ts <= after  # the operator's wall clock at send time
        assert c.issuer == ("jane.doe" if "--issuer" in args else default_issuer())
        assert c.reason == (args[args.index("--reason") + 1] if "--reason" in args else "")
        assert c.id.startswith("cmd-")
        ids.add(c.id)
    assert len(ids) == len(SUBCOMMANDS)

    d = status_json(prefix)
    assert d["counts"]["applied"] == len(SUBCOMMANDS) and d["refused"] == []
    assert {s: m["mode"] for s, m in d["modes"].items()} == {"symbol:BTCUSD": "halted", "account:default": "normal"}
    assert d["modes"]["symbol:BTCUSD"]["reason"] == "exchange outage"
    assert d["modes"]["account:default"]["action"] == "resume"  # who lifted the reduce-only, and why
    assert d["modes"]["account:default"]["reason"] == "review done"
    lim = d["limits"]["account:default"]
    assert (lim["max_leverage"]["value"], lim["min_history"]["value"]) == (1.5, 150)
    assert lim["max_leverage"]["reason"] == "desk limit" and lim["max_leverage"]["issuer"] == default_issuer()
    assert d["disabled_strategies"] == ["trend"] and d["strategies"]["strategy:zscore"]["enabled"] is True
    assert d["pinned_model"] is None and d["model"]["action"] == "unpin_model"  # unpinned after the pin

    text = control(prefix, "status")
    assert text.exit_code == 0, text.output
    out = text.stdout
    for needle in (
        "9 message(s): 9 applied, 0 refused",
        "symbol:BTCUSD",
        "halted",
        "exchange outage",
        "max_leverage = 1.5",
        "min_history = 150",
        "strategy:trend",
        "disabled",
        "bad fills",
        "pinned model: none (unpinned",
        "refused (not applied): 0",
        f"by {default_issuer()}",
    ):
        assert needle in out, (needle, out)


def test_two_identical_commands_are_two_commands(kafka_bootstrap, prefix):
    for _ in range(2):
        assert control(prefix, "halt", "--reason", "same").exit_code == 0
    cmds = [decode(m.value(), ControlCommand) for m in messages(kafka_bootstrap, f"{prefix}control")]
    assert len(cmds) == 2 and cmds[0].id != cmds[1].id and cmds[0].signature != cmds[1].signature
    assert status_json(prefix)["counts"]["applied"] == 2


def test_forged_and_broken_commands_are_refused_not_applied(kafka_bootstrap, prefix):
    topic = f"{prefix}control"
    assert control(prefix, "halt", "--reason", "genuine halt").exit_code == 0
    # a resume signed with the wrong key, under the right key id
    assert control(prefix, "resume", "--issuer", "mallory", key="not-the-operator-key-000").exit_code == 0
    # a resume under a key id nobody trusts
    assert control(prefix, "resume", "--issuer", "mallory", key="rogue-key-0123456789", key_id="rogue").exit_code == 0
    raw = EventProducer(kafka_bootstrap, topic, key_fn=key_by_compaction_key)
    unsigned = ControlCommand(
        id="cmd-unsigned", issuer="mallory", scope="account:default", action="resume", ts=time.time_ns()
    )
    raw.send([unsigned])  # no signature at all
    good = sign(
        ControlCommand(
            id="cmd-misrouted", issuer="ops", scope="account:default", action="resume", ts=time.time_ns(), key_id=KEY_ID
        ),
        KEY.encode(),
    )
    raw.produce_raw(b"account:default/limit:max_leverage", encode(good))  # valid signature, wrong Kafka key
    raw.produce_raw(b"account:default/mode", b"{not json")
    raw.flush()

    d = status_json(prefix)
    assert d["modes"]["account:default"]["mode"] == "halted"  # nothing lifted the genuine halt
    assert d["modes"]["account:default"]["reason"] == "genuine halt"
    assert d["counts"] == {"applied": 1, "refused": 4, "duplicate": 0, "undecodable": 1, "tombstone": 0}
    refusals = [(r.get("issuer"), r["refusal"]) for r in d["refused"]]
    assert refusals == [
        ("mallory", "bad_signature"),
        ("mallory", "unknown_key"),
        ("mallory", "unsigned"),
        ("ops", "wrong_key"),
        (None, "invalid_json"),
    ]
    text = control(prefix, "status").stdout
    assert "refused (not applied): 5" in text and "bad_signature" in text and "unknown_key" in text
    assert "genuine halt" in text


def test_key_rotation_old_and_new_key_ids_both_verify(kafka_bootstrap, prefix):
    old = "retiring-key-0123456789"
    assert control(prefix, "halt", "--reason", "old key", key=old, key_id="k2025").exit_code == 0
    assert control(prefix, "set-limit", "max_leverage", "1", key=KEY, key_id="k2026").exit_code == 0
    both = status_json(prefix, key=KEY, key_id="k2026", verify_keys=f"k2025={old}")
    assert both["counts"]["applied"] == 2 and both["modes"]["account:default"]["mode"] == "halted"
    new_only = status_json(prefix, key=KEY, key_id="k2026")
    assert new_only["counts"]["applied"] == 1 and [r["refusal"] for r in new_only["refused"]] == ["unknown_key"]
    # a verify-only host: no signing key, but the keyring
    verify_only = status_json(prefix, key=None, key_id=None, verify_keys=f"k2025={old},k2026={KEY}")
    assert verify_only["counts"]["applied"] == 2


def test_without_a_key_nothing_is_sent_and_the_exit_code_is_2(kafka_bootstrap, empty_prefix):
    prefix = empty_prefix
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_CONTROL_")}
    env["LEVIBOT_TOPIC_PREFIX"] = prefix
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", "control", "halt", "--reason", "no key"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "LEVIBOT_CONTROL_KEY is not set" in res.stderr and "Traceback" not in res.stderr
    res = control(prefix, "status", key=None, key_id=None)
    assert res.exit_code == 2 and "LEVIBOT_CONTROL_KEY is not set" in res.output
    for key in ("", "   "):
        res = control(prefix, "halt", "--reason", "empty key", key=key)
        assert res.exit_code == 2 and "LEVIBOT_CONTROL_KEY is not set" in res.output
    res = control(prefix, "halt", "--reason", "weak key", key="k3y!w3ak")
    assert res.exit_code == 2 and "too short" in res.output and "k3y!w3ak" not in res.output  # never echoed
    assert messages(kafka_bootstrap, f"{prefix}control") == []


def test_the_levibot_entry_point_sends_a_signed_halt(kafka_bootstrap, prefix):
    env = {**os.environ, "LEVIBOT_TOPIC_PREFIX": prefix, "LEVIBOT_CONTROL_KEY": KEY, "LEVIBOT_CONTROL_KEY_ID": KEY_ID}
    for module in ("flows.cli", "flows.cli_control"):  # the full CLI, and the fast-starting control group alone
        args = ["control", "halt"] if module == "flows.cli" else ["halt"]
        res = subprocess.run(
            [sys.executable, "-m", module, *args, "--reason", f"via {module}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert res.returncode == 0, res.stderr
    view = read_control(kafka_bootstrap, f"{prefix}control", {KEY_ID: KEY.encode()})
    assert [r.outcome for r in view.records] == ["applied", "applied"]
    assert view.state.mode() == "halted"
    assert view.state.mode_commands()["account:default"].reason == "via flows.cli_control"


BAD_INPUT = [
    (["halt"], "Missing option"),
    (["halt", "--reason", "   "], "needs a --reason"),
    (["reduce-only", "--reason", ""], "needs a --reason"),
    (["halt", "--reason", "x", "--scope", "venue:binance"], "is not account:<name>"),
    (["halt", "--reason", "x", "--scope", "symbol:btcusd"], "is not account:<name>"),
    (["halt", "--reason", "x", "--issuer", "bad issuer"], "does not match"),
    (["set-limit", "lot_sizes", "1"], "not a numeric RiskLimits field"),
    (["set-limit", "max_leverage", "lots"], "must be a number"),
    (["set-limit", "max_leverage", "nan"], "must be finite"),
    (["set-limit", "--", "max_leverage", "-1"], "invalid_value"),
    (["set-limit", "min_history", "10.5"], "invalid_value"),
    (["set-limit", "max_leverage", "2", "--scope", "symbol:BTCUSD"], "wrong_scope"),
    (["pin-model", "has space"], "invalid_value"),
    (["pin-model", "v1", "--scope", "strategy:trend"], "wrong_scope"),
    (["disable-strategy", "bad name!"], "is not account:<name>"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_refused_before_sending(kafka_bootstrap, empty_prefix, args, message):
    res = control(empty_prefix, *args)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert messages(kafka_bootstrap, f"{empty_prefix}control") == []


def test_missing_topic_is_a_clear_error(kafka_bootstrap):
    p = new_prefix("ctlnone")
    res = control(p, "halt", "--reason", "nowhere to go")
    assert res.exit_code == 1 and "levibot topics create" in res.output
    res = control(p, "status")
    assert res.exit_code == 1 and "levibot topics create" in res.output


def test_publisher_and_fold(kafka_bootstrap, prefix):
    topic = f"{prefix}control"
    key = KEY.encode()
    pub = ControlPublisher(kafka_bootstrap, topic)
    unsigned = ControlCommand(id="cmd-1", issuer="ops", scope="account:default", action="halt", ts=time.time_ns())
    with pytest.raises(ValueError, match="unsigned"):
        pub.publish(unsigned)
    with pytest.raises(ValueError):  # the wire contract's patterns are checked before sending
        pub.publish(
            sign(
                ControlCommand(id="has space", issuer="ops", scope="account:default", action="halt", ts=time.time_ns()),
                key,
            )
        )
    cmds = [
        sign(
            ControlCommand(
                id=f"cmd-{i}",
                issuer="ops",
                scope=scope,
                action=action,
                parameters=params,
                ts=time.time_ns(),
                reason=f"r{i}",
            ),
            key,
        )
        for i, (scope, action, params) in enumerate(
            [
                ("symbol:ETH-USD", "reduce_only", {}),
                ("account:default", "set_limit", {"name": "max_gross_exposure", "value": 250000.0}),
                ("strategy:breakout", "disable_strategy", {}),
                ("symbol:ETH-USD", "halt", {}),
            ]
        )
    ]
    for c in cmds:
        assert pub.publish(c) == c
    pub.publish(cmds[0])  # a redelivery of the same command
    pub.close()
    view = read_control(kafka_bootstrap, topic, {"default": key})
    assert [r.outcome for r in view.records] == ["applied"] * 4 + ["duplicate"]
    assert [r.offset for r in view.records] == list(range(5))
    local = ControlState()
    for c in cmds:
        local.apply(c)
    local.apply(cmds[0])
    assert view.state == local
    assert view.state.mode("default", "ETH-USD", "trend") == "halted"
    assert view.state.limit_overrides() == {"max_gross_exposure": 250000.0}
    # the fold is the same on plain tuples, and a tombstone is ignored
    again = fold(
        [(0, i, key_by_compaction_key(c), encode(c)) for i, c in enumerate(cmds)] + [(0, 9, b"k", None)],
        {"default": key},
    )
    assert again.state == view.state
    assert again.by_outcome("tombstone")[0].offset == 9


@pytest.mark.parametrize(
    "cmd",
    [
        [],
        ["halt"],
        ["reduce-only"],
        ["resume"],
        ["set-limit"],
        ["enable-strategy"],
        ["disable-strategy"],
        ["pin-model"],
        ["unpin-model"],
        ["status"],
    ],
    ids=lambda c: " ".join(c) or "control",
)
def test_help(cmd):
    res = runner.invoke(app, ["control", *cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


def test_issuer_default_is_a_sanitised_name():
    import re

    assert re.fullmatch(NAME_PATTERN, default_issuer())
    assert sanitize_name("Jane Doe (ops)") == "Jane_Doe__ops_" and sanitize_name("--x") == "x"
    assert sanitize_name("x" * 100) == "x" * 64 and sanitize_name("") == "operator"
