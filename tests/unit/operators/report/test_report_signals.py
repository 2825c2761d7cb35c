"""The signals section of a run's tear sheet: what the flow read from ``signals`` (parsed, rejected by reason)
and what the signal follower made of each parsed signal (``operators/report/signals.py``), through the live
run's collector (``connectors/report_live.py``) and ``flows.reporting.live_inputs`` into the report and its HTML."""

from __future__ import annotations

import numpy as np
import pytest

from connectors.report import render_html
from connectors.report_live import LiveRunCollector
from flows.reporting import live_inputs
from operators.bars import BarRecord
from operators.report import build_report
from operators.report.signals import OUTCOMES, signal_outcomes, signal_summary
from operators.strategies import SignalFollower
from schemas.events import DeadLetter, Signal

T0 = 1_700_000_000_000_000_000
NS = 1_000_000_000
RES = 1800


def _sig(
    i: int,
    kind: str = "open",
    *,
    sym: str = "BTC-USD",
    entries=(100.0,),
    stop=90.0,
    trust=0.6,
    at=0,
    ref=None,
    version=1,
    targets=(130.0,),
) -> Signal:
    return Signal(
        id=f"s{i}",
        source_chat="@ch",
        source_message_id=i,
        version=version,
        symbol=sym,
        side="long",
        kind=kind,
        entries=list(entries) if kind == "open" else [],
        targets=list(targets) if kind == "open" else [],
        stop=stop if kind == "open" else None,
        trust=trust,
        ts=T0 + at * RES * NS,
        ref_id=ref,
    )


def _bars(closes, sym: str = "BTC-USD", lows=None) -> list[BarRecord]:
    out = []
    for i, c in enumerate(closes):
        lo = c if lows is None else lows[i]
        out.append(BarRecord(sym, T0 + i * RES * NS, RES, c, c, lo, c, 1.0, 0.0, 0.0, c, 1, False, 0))
    return out


def test_every_outcome_against_the_follower_itself():
    """A hand-built signal sequence: each outcome is what a SignalFollower fed bar by bar says, and the
    counts add up (received = parsed + rejected; the outcomes cover every parsed signal)."""
    closes = [105.0, 104.0, 100.0, 101.0, 120.0, 95.0, 96.0, 97.0]
    lows = [105.0, 104.0, 100.0, 101.0, 120.0, 85.0, 96.0, 97.0]
    sigs = [
        _sig(1, entries=(100.0,), at=0),  # entered at bar 2 (close 100)
        _sig(2, entries=(50.0,), stop=40.0, at=0),  # never reaches its zone: waiting at the end
        _sig(3, entries=(103.9,), stop=103.0, at=0, sym="BTC-USD", trust=0.1),  # trust 0.1 < 0.2: ignored
        _sig(4, "close", at=4, ref="s1"),  # closes s1's position: changed
        _sig(5, "cancel", at=4, ref="nope"),  # no matching idea
        _sig(1, entries=(100.0,), at=0),  # s1 again, same revision: duplicate
        _sig(6, entries=(80.0,), stop=86.0, at=4),  # its stop (86) trades (low 85) before entry: stopped
        _sig(7, entries=(100.0,), at=20),  # after the last decision
    ]
    bars = _bars(closes, lows=lows)
    got = signal_outcomes(sigs, bars, RES)
    assert got == ["entered", "waiting", "low_trust", "changed", "no_idea", "duplicate", "stopped", "after_end"]
    assert set(got) <= set(OUTCOMES)
    summary = signal_summary(sigs, {"validation": 2, "invalid_json": 1}, bars, RES)
    assert summary["received"] == len(sigs) + 3 and summary["parsed"] == len(sigs)
    assert summary["acted_on"] == 2  # s1 entered, s4 closed it
    assert sum(summary["outcomes"].values()) == len(sigs)
    # the same follower fed by hand: s1 enters at bar 2, s4 takes its target to 0 at bar 4
    f = SignalFollower()
    assert f.on_signal(sigs[0]) is None
    targets = []
    for i, b in enumerate(bars[:5]):
        if i == 4:
            targets.append(f.on_signal(sigs[3]).target)
        it = f.on_bar("BTC-USD", b.ts + RES * NS, b.close, None, bar=b)
        if it is not None:
            targets.append(it.target)
    assert targets == [pytest.approx(0.6), 0.0]


def test_expired_and_baseline_mode():
    f = SignalFollower(entry_ttl_s=3 * RES)
    sigs = [_sig(1, entries=(50.0,), at=0)]
    assert signal_outcomes(sigs, _bars([100.0] * 8), RES, follower=f) == ["expired"]
    assert signal_summary(sigs, {}, _bars([100.0] * 8), RES, applied=False)["outcomes"] == {"not_used": 1}


def _dead(topic: str, error: str, i: int) -> DeadLetter:
    return DeadLetter(
        source_topic=topic,
        partition=0,
        offset=i,
        key=None,
        error=error,
        detail="bad",
        raw=b"{",
        raw_size=1,
        ts=T0,
        stage="ingest",
    )


def test_live_collector_to_the_tear_sheet():
    """The collector's sinks (written as the flow writes them) -> live_inputs -> the report: the signals section
    counts and tables, the rejections only from the signals topic, the prices from the decision bars."""
    col = LiveRunCollector(RES, "x.signals")

    def write(kind: str, items: list) -> None:
        col.sink(kind).build("step", 0, 1).write_batch([items])

    closes = [105.0, 104.0, 100.0, 101.0, 120.0]
    write("bars", _bars(closes) + _bars([1.0] * 3, sym="ETH-USD")[:1])
    write("bars", [BarRecord("BTC-USD", T0, 300, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1, False, 0)])  # not kept
    write("signals", [_sig(1), _sig(2, entries=(50.0,))])
    write(
        "dead",
        [
            _dead("x.signals", "validation", 1),
            _dead("x.signals", "invalid_json", 2),
            _dead("x.signals", "validation", 3),
            _dead("x.ticks", "validation", 4),
        ],
    )
    write("marks", [("default", int(T0 + (i + 1) * RES * NS), 100_000.0 + i) for i in range(5)])
    assert all(b.resolution_s == RES for b in col.events["bars"])
    inp = live_inputs(col, RES, ticks=1234)
    assert inp.signals["received"] == 5 and inp.signals["parsed"] == 2
    assert inp.signals["rejected"] == {"validation": 2, "invalid_json": 1}
    assert inp.signals["outcomes"] == {"entered": 1, "waiting": 1} and inp.signals["acted_on"] == 1
    assert inp.dead_letters == {("ingest", "validation"): 3, ("ingest", "invalid_json"): 1}
    assert inp.prices["BTC-USD"][1].tolist() == closes
    assert np.array_equal(inp.prices["BTC-USD"][0], T0 + (np.arange(5) + 1) * RES * NS)
    rep = build_report(inp, title="Live run", kind="run")
    sec = next(s for s in rep.sections if s.key == "signals")
    m = {x.key: x.value for x in sec.metrics}
    assert (m["signals_received"], m["signals_parsed"], m["signals_rejected"], m["signals_acted_on"]) == (5, 2, 3, 1)
    tables = {t.key: t for t in sec.tables}
    assert {r["reason"]: r["n"] for r in tables["signal_rejections"].rows} == {"validation": 2, "invalid_json": 1}
    assert {r["outcome"]: r["n"] for r in tables["signal_outcomes"].rows} == {
        OUTCOMES["entered"]: 1,
        OUTCOMES["waiting"]: 1,
    }
    page = render_html(rep)
    assert OUTCOMES["entered"] in page and "Rejected signals by reason" in page


def test_a_run_without_signal_input_says_so():
    col = LiveRunCollector(RES, "x.signals")
    rep = build_report(live_inputs(col, RES, signals=False), title="Live run", kind="run")
    sec = next(s for s in rep.sections if s.key == "signals")
    assert any("No Telegram signals" in n for n in sec.notes)
