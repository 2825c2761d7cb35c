"""The streaming Scorer: delayed labels, recovery of pending predictions, hot swap from the registry, drift."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from connectors.model_registry import ChampionWatcher, ModelRegistry
from operators.models import (
    DriftMonitor,
    PsiReference,
    Scorer,
    ScorerConfig,
    forward_labels,
)
from schemas.events import Alert, Score
from tests.support.models import RES, SPEC, btc_bars_and_features, trained_model

T0 = 1_600_000_000 * 10**9


def _stream(
    scorer: Scorer, feats: pd.DataFrame, bars: pd.DataFrame, start: int = 0, stop: int | None = None, each=None
):
    close = dict(zip((bars.ts + RES).tolist(), bars.close.tolist(), strict=True))
    out = []
    for i, (ts, *vals) in enumerate(feats[["ts", *SPEC.features]].itertuples(index=False)):
        if i < start or (stop is not None and i >= stop):
            continue
        if each is not None:
            each(i, scorer)
        out.append(scorer.score(tuple(vals), int(ts)))
        scorer.learn(int(ts), close[int(ts)])
    return out


def test_streaming_labels_match_the_offline_builder():
    bars, feats = btc_bars_and_features()
    sc = Scorer("BTC-USD", SPEC, cfg=ScorerConfig(horizon_bars=3))
    seen = []
    orig = sc._resolve
    sc._resolve = lambda p, y: (seen.append((p.ts, y)), orig(p, y))  # type: ignore[method-assign]
    _stream(sc, feats, bars)
    lab = forward_labels(bars, resolution_s=1800, horizon_bars=3)
    lab = lab[lab.ts.isin(feats.ts)]
    got = dict(seen)
    # every label resolved online equals the offline one (the last few are still pending at the end)
    assert len(got) >= len(lab) - 5 and sc.n_resolved == len(got)
    assert all(got[t] == y for t, y in zip(lab.ts.tolist(), lab.label.tolist(), strict=True) if t in got)


def test_pending_predictions_survive_a_pickle_round_trip():
    bars, feats = btc_bars_and_features()
    cfg = ScorerConfig(horizon_bars=4)
    a = Scorer("BTC-USD", SPEC, batch=trained_model(0, 2000), batch_version="v1", cfg=cfg)
    _stream(a, feats, bars, 0, 2500)
    assert len(a.pending) == 4  # the last 4 decisions wait for their labels
    blob = pickle.dumps(a)
    b = pickle.loads(blob)
    assert [p.ts for p in b.pending] == [p.ts for p in a.pending]
    ra = _stream(a, feats, bars, 2500, 3200)
    rb = _stream(b, feats, bars, 2500, 3200)
    assert ra == rb  # restored state resolves the pending labels and continues identically
    assert a.online.n_learned == b.online.n_learned and a.rolling_metrics() == b.rolling_metrics()
    # without the model in the pickle, the watcher-like source re-attaches it
    small = Scorer(
        "BTC-USD",
        SPEC,
        batch=trained_model(0, 2000),
        batch_version="v1",
        cfg=ScorerConfig(horizon_bars=4, pickle_model=False),
    )
    _stream(small, feats, bars, 0, 2500)
    c = pickle.loads(pickle.dumps(small))
    assert c.batch is None and len(pickle.dumps(small)) < len(blob)

    class Src:
        version = "v1"
        model = trained_model(0, 2000)

    assert c.maybe_swap(Src()) and c.batch is not None
    assert _stream(c, feats, bars, 2500, 2600) == _stream(small, feats, bars, 2500, 2600)


def test_hot_swap_of_a_promoted_model_while_scoring(tmp_path):
    bars, feats = btc_bars_and_features()
    reg = ModelRegistry(tmp_path / "models")
    m1, m2 = trained_model(0, 1500), trained_model(0, 3000)
    v1 = reg.register(m1, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v1, "first")
    watcher = ChampionWatcher(reg, poll_s=0.0)
    sc = Scorer("BTC-USD", SPEC, cfg=ScorerConfig())
    versions = []

    def each(i: int, s: Scorer) -> None:
        if i == 3300:  # the training job promotes a new champion while the stream runs
            v2 = reg.register(m2, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
            reg.promote(v2, "better")
        s.maybe_swap(watcher)
        versions.append(s.batch_version)

    res = _stream(sc, feats, bars, 3000, 3600, each)
    v2 = reg.latest_champion_version()
    assert v2 != v1 and versions[0] == v1 and versions[-1] == v2
    assert versions.index(v2) == 300  # picked up at the very next decision
    assert reg.get(v1)["status"] == "retired" and reg.get(v2)["status"] == "champion"
    # after the swap the scores are model 2's
    x = tuple(feats[list(SPEC.features)].iloc[3599])
    row = [x[list(SPEC.features).index(n)] for n in m2.names]
    assert res[-1][0]["lgbm"] == pytest.approx(m2.predict_one(row)[0], abs=1e-12)
    ev = sc.score_event(int(feats.ts.iloc[3599]), res[-1])
    assert isinstance(ev, Score) and ev.model_versions["lgbm"] == v2


def test_a_pinned_model_stays_while_champions_change_and_unpin_follows_the_champion(tmp_path):
    """An operator's pin_model holds the scorer at that version while newer champions are promoted; a version the
    registry does not know, or one trained on other features, changes nothing; unpinning follows the champion."""
    reg = ModelRegistry(tmp_path / "models")
    m1, m2 = trained_model(0, 1500), trained_model(0, 3000)
    v1 = reg.register(m1, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v1, "first")
    v2 = reg.register(m2, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v2, "second")
    other = reg.register(m1, feature_set="other-bars", feature_set_version=1, horizon_ns=RES, metrics={})
    watcher = ChampionWatcher(reg, poll_s=0.0, feature_set=SPEC.id)
    sc = Scorer("BTC-USD", SPEC, cfg=ScorerConfig())
    assert sc.maybe_swap(watcher) and sc.batch_version == v2
    assert sc.maybe_swap(watcher, pinned=v1) and sc.batch_version == v1 and sc.batch is not None
    assert not sc.maybe_swap(watcher, pinned=v1)  # stays, nothing reloaded
    v3 = reg.register(m2, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v3, "third")
    assert not sc.maybe_swap(watcher, pinned=v1) and sc.batch_version == v1
    for bad in ("no-such-version", other):
        assert not watcher.usable(bad)
        assert not sc.maybe_swap(watcher, pinned=bad) and sc.batch_version == v1
    x = [0.0] * len(m1.names)
    assert sc.batch.predict_one(x)[0] == pytest.approx(m1.predict_one(x)[0], abs=1e-15)
    assert sc.maybe_swap(watcher) and sc.batch_version == v3  # unpinned: the champion again


def test_adwin_raises_model_drift_alert_and_retrain_request():
    d = DriftMonitor("BTC-USD", delta=0.002, cooldown_s=0)
    rng = np.random.default_rng(0)
    alerts: list[Alert] = []
    for i in range(3000):
        y = float(rng.random() < 0.5)
        p = (0.8 if y else 0.2) if i < 1500 else (0.2 if y else 0.8)  # the model turns wrong at 1500
        alerts += d.update_error("lgbm", y, p, T0 + i * RES)
    worse = [a for a in alerts if a.labels["direction"] == "worse"]
    assert worse and all(a.kind == "model_drift" for a in alerts)
    assert T0 + 1500 * RES <= worse[0].ts < T0 + 1700 * RES
    assert d.requests and d.requests[0].reason == "model_drift"


def test_psi_alert_on_a_feature_shift():
    rng = np.random.default_rng(1)
    ref = PsiReference.fit(rng.normal(size=(5000, 2)), ["a", "b"])
    d = DriftMonitor("ETH-USD", psi_window=200, psi_every=100, reference=ref, cooldown_s=30 * 86400)
    alerts = []
    for i in range(400):
        alerts += d.observe_features([rng.normal(), rng.normal()], T0 + i * RES)
    assert not alerts
    for i in range(400, 800):
        alerts += d.observe_features([rng.normal(2.0), rng.normal()], T0 + i * RES)
    assert len(alerts) == 1 and alerts[0].labels["feature"] == "a" and d.requests[-1].reason == "feature_drift"
