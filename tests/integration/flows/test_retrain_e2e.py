"""Drift -> `alerts` -> the retrain loop -> the REAL training -> a new champion -> the running flow picks it up
(issue 15 item 4), end to end on the real broker with nothing faked.

* The champion at the start is a LightGBM model trained (``flows.training.train``) on the first 6,000 bars of the
  bundled history, October 2017 to February 2018: the most volatile months of the two years. It does not beat the
  base rate on its own holdout, so the test promotes it through the registry (as ``levibot`` would after an
  operator's decision); its PSI reference (the feature deciles of its training window) comes with it.
* The running flow (``levibot run --live --venue sim``) gets real bars from late 2018 (bar 20,000 on: October 2018,
  the calmest stretch of the data). That is a real regime change: its drift monitor compares the last 500 feature
  rows with the champion's training window (``operators.models.drift``) and raises ``model_drift`` alerts (source
  ``psi``, the worst features the volatilities: PSI 1.5 to 1.7, the threshold is 0.25) about 550 bars in, on
  `alerts`.
* ``levibot retrain`` (``flows.retrain.retrain_loop``, polling every second, schedule a week) consumes them and runs
  the real training on the whole bundled history (about 3 s here); the challenger beats the old champion on the
  later holdout and is promoted by the champion/challenger rule.
* The flow's ``ChampionWatcher`` picks the new champion up between batches: the scores it publishes after that carry
  the new version as ``model_versions["lgbm"]``.

Before any drift alert the retrain loop must not train (the registry already holds a model younger than its
schedule), so the new version can only come from the alert.
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from pathlib import Path

import pytest

from connectors.history import iter_tick_events, load_history
from connectors.kafka.sink import EventProducer
from connectors.model_registry import ModelRegistry
from flows.training import train
from schemas.events import Alert, Score
from tests.support import DATA, wait_for
from tests.support.flowproc import BAR_ARGS, FlowProc, create_topics, drop_topics, flow_env, new_prefix, read_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHAMPION_BARS = 6000  # the first bars of each file the initial champion is trained on
START_BAR = 20_000  # the flow's input starts here (October 2018)
FLOW_BARS = 800  # bars per symbol before the retrain; PSI needs 500 decision rows, fires about 550 in
MORE_BARS = 200  # bars per symbol after it, for the scores of the new champion


def head_of(src: Path, dst: Path, bars: int) -> Path:
    with gzip.open(src, "rt") as f:
        lines = [next(f) for _ in range(bars + 1)]
    with gzip.open(dst, "wt") as f:
        f.writelines(lines)
    return dst


def test_real_drift_raises_an_alert_the_retrain_loop_trains_on_and_the_flow_takes_the_new_champion(
    kafka_bootstrap, tmp_path
):
    t_start = time.monotonic()
    var = tmp_path / "var"
    reg = ModelRegistry(var / "models")
    small = [head_of(DATA / f"{s}-30m.csv.gz", tmp_path / f"{s}-30m.csv.gz", CHAMPION_BARS) for s in ("BTC", "ETH")]
    first = train(var, sources=small, n_splits=2)
    if not first["promoted"]:
        reg.promote(first["version"], "test setup: the champion of the 2017-18 regime")
    old = first["version"]
    assert reg.latest_champion_version() == old

    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8)
    t0 = int(history.ticks["ts"].min())
    start_ns = t0 + START_BAR * 1800 * 10**9
    ticks = [t for t in iter_tick_events(history.ticks) if t.ts >= start_ns]
    cut = next(i for i, t in enumerate(ticks) if t.ts >= start_ns + FLOW_BARS * 1800 * 10**9)
    end = next(i for i, t in enumerate(ticks) if t.ts >= start_ns + (FLOW_BARS + MORE_BARS) * 1800 * 10**9)

    prefix = new_prefix("rtr")
    env = flow_env(prefix=prefix, var=var)
    procs: list[FlowProc] = []
    try:
        create_topics(kafka_bootstrap, prefix)
        flow = FlowProc(["run", "--live", "--venue", "sim", "--stores", "none", *BAR_ARGS], env, tmp_path / "flow.log")
        retrainer = FlowProc(["retrain", "--poll", "1"], env, tmp_path / "retrain.log")
        procs += [flow, retrainer]
        out = EventProducer(kafka_bootstrap, f"{prefix}ticks")
        out.send(ticks[:cut])
        out.flush(60)
        drift = wait_for(
            lambda: [
                a
                for a in read_events(kafka_bootstrap, f"{prefix}alerts", Alert)
                if a.kind == "model_drift" and a.severity == "warning"
            ],
            120,
            "a model_drift alert from the running flow",
            procs=procs,
            interval_s=0.5,
        )
        t_drift = time.monotonic()
        new = wait_for(
            lambda: (lambda v: v if v not in (None, old) else None)(reg.latest_champion_version()),
            180,
            "a new champion from the retrain loop",
            procs=procs,
            interval_s=0.5,
        )
        t_new = time.monotonic()
        # the rest as a live feed: 10 bars of both symbols a second (the flow's ChampionWatcher re-reads the
        # registry at most every 5 s, at a batch; the batch that sees the new champion swaps it in)
        rest = iter(range(cut, end, 2 * 8 * 10))
        seen: Counter = Counter()

        def feed_and_score() -> list:
            i = next(rest, None)
            if i is not None:
                out.send(ticks[i : min(i + 2 * 8 * 10, end)])
                out.flush(60)
            got = read_events(kafka_bootstrap, f"{prefix}scores", Score)
            seen.clear()
            seen.update(Counter(s.model_versions.get("lgbm") for s in got))
            return [s for s in got if s.model_versions.get("lgbm") == new]

        try:
            scored = wait_for(
                feed_and_score, 120, "scores of the new champion from the flow", procs=procs, interval_s=1.0
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nscores by lgbm version: {dict(seen)}; old {old}, new {new}") from None
        for i in rest:  # the rest of the feed
            out.send(ticks[i : min(i + 2 * 8 * 10, end)])
        out.flush(60)
        last_ts = ticks[end - 1].ts - 2 * 1800 * 10**9  # the last closed decision bar, give or take one
        wait_for(
            lambda: max(s.ts for s in read_events(kafka_bootstrap, f"{prefix}scores", Score)) >= last_ts,
            60,
            "the scores of the whole feed",
            procs=procs,
            interval_s=0.5,
        )
        versions = [v["version"] for v in reg.versions()]
        meta = reg.get(new)
        scores = read_events(kafka_bootstrap, f"{prefix}scores", Score)
        retrain_log = (tmp_path / "retrain.log").read_text(errors="replace")
    finally:
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])

    # the alert came from the flow's own drift monitor: a PSI shift of the features against the champion's window
    assert any(a.labels.get("source") == "psi" for a in drift), [(a.labels, a.message) for a in drift][:3]
    # exactly one retraining so far gave the new version (the schedule was not due), with the real trainer's output
    assert versions[0] == old and new in versions and len(versions) >= 2
    assert meta["status"] == "champion" and meta["feature_set"] == reg.get(old)["feature_set"]
    assert meta["metrics"]["holdout"]["log_loss"] < meta["metrics"]["holdout_champion"]["log_loss"]
    assert "retrained (drift)" in retrain_log and "retrained (schedule)" not in retrain_log
    # the flow scored with the old champion before and with the new one after
    assert any(s.model_versions.get("lgbm") == old for s in scores)
    first_new = min(s.ts for s in scored)
    assert all(s.model_versions.get("lgbm") == new for s in scores if s.ts > first_new + 3600 * 10**9)
    took = time.monotonic() - t_start
    print(
        f"drift alert -> new champion {t_new - t_drift:.1f}s; whole test {took:.1f}s; first alert: "
        f"{drift[0].message}; versions {versions}"
    )
