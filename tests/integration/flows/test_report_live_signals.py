"""Issue 12: a live run's tear sheet shows the Telegram signals it read: `levibot run --live --until-end` over a
replayed slice of the bundled history, with signals produced to the `signals` topic (valid ones the signal follower
enters, ignores or cannot match, a duplicate, and messages that are not signals at all), writes
`<var>/reports/live-run.json` whose signals section counts them, gives the rejections by reason and the outcome of
each parsed signal."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from connectors.history import load_history
from connectors.kafka.sink import EventProducer
from flows.cli import BUNDLED
from flows.reporting import decision_closes
from operators.report.signals import OUTCOMES
from schemas.events import Signal
from tests.support.flowproc import BAR_ARGS, create_topics, drop_topics, flow_env, new_prefix, run_ok

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAX_BARS = 400  # per file, 8 synthetic ticks per bar: 6,400 ticks
NS = 1_000_000_000


def test_live_run_tear_sheet_counts_and_follows_the_signals(kafka_bootstrap, tmp_path):
    prefix = new_prefix("rs")
    var = tmp_path / "var"
    env = flow_env(prefix=prefix, var=var, LEVIBOT_LIVE_REPORT="1")
    history = load_history(BUNDLED, max_bars=MAX_BARS)
    closes = decision_closes(history.ticks, 1800)
    t_btc, c_btc = closes["BTC-USD"]
    # a signal 100 bars in: applied at the next decision, where the last close (bar 99) is inside its zone
    at = int(t_btc[99]) + 60 * NS
    px = float(c_btc[99])

    def sig(i: int, **kw) -> Signal:
        base = dict(
            id=f"live-s{i}",
            source_chat="@channel",
            source_message_id=i,
            symbol="BTC-USD",
            side="long",
            entries=[px],
            targets=[px * 1.5],
            stop=px * 0.5,
            trust=0.8,
            ts=at,
        )
        base.update(kw)
        return Signal(**base)

    valid = [
        sig(1),  # entered at once
        sig(2, trust=0.05),  # below the follower's minimum trust
        sig(3, kind="cancel", entries=[], targets=[], stop=None, ref_id="nope"),  # no idea to cancel
        sig(1),  # the same message again
        sig(4, entries=[px * 0.2], stop=px * 0.1),  # far below: expires after a day
    ]
    try:
        create_topics(kafka_bootstrap, prefix)
        run_ok(["replay", "--max-bars", str(MAX_BARS), "--no-progress"], env, tmp_path / "replay.log", 120)
        prod = EventProducer(kafka_bootstrap, f"{prefix}signals")
        prod.send(valid)
        prod.flush(10.0)
        raw = Producer({"bootstrap.servers": kafka_bootstrap})
        raw.produce(f"{prefix}signals", b"{this is not json")
        raw.produce(f"{prefix}signals", json.dumps({"type": "signal", "id": "x", "symbol": "BTC-USD"}).encode())
        raw.produce(f"{prefix}signals", b"{also not json")
        assert raw.flush(10.0) == 0
        run_ok(
            ["run", "--live", "--venue", "sim", "--until-end", "--stores", "none", *BAR_ARGS],
            env,
            tmp_path / "live.log",
            240,
        )
    finally:
        drop_topics(kafka_bootstrap, [prefix])
    page = (var / "reports" / "live-run.html").read_text()
    summary = json.loads((var / "reports" / "live-run.json").read_text())
    m = summary["metrics"]
    assert m["signals_received"] == len(valid) + 3
    assert m["signals_parsed"] == len(valid)
    assert m["signals_rejected"] == 3
    assert m["signals_acted_on"] == 1
    sec = summary["sections"]["signals"]["tables"]
    rejected = {r["reason"]: r["n"] for r in sec["signal_rejections"]["rows"]}
    assert sum(rejected.values()) == 3 and rejected.get("invalid_json") == 2, rejected
    outcomes = {r["outcome"]: r["n"] for r in sec["signal_outcomes"]["rows"]}
    assert outcomes == {
        OUTCOMES["entered"]: 1,
        OUTCOMES["low_trust"]: 1,
        OUTCOMES["no_idea"]: 1,
        OUTCOMES["duplicate"]: 1,
        OUTCOMES["expired"]: 1,
    }, outcomes
    # the rest of the tear sheet is the run's: its ticks, equity marks over the slice, the decision bars' prices
    assert m["ticks"] == len(history.ticks)
    assert summary["period"]["end_ns"] >= int(t_btc[-2])  # (the last bar is still open when the input ends)
    assert summary["period"]["start_ns"] <= int(t_btc[1])
    assert OUTCOMES["entered"] in page and "Rejected signals by reason" in page
