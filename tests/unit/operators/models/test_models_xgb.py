"""XGBoost as a challenger: same CV/calibration procedure as LightGBM, compiled one-row path equal to XGBoost's own
predictions, registry round trip, and the streaming Scorer taking it as its batch model."""

from __future__ import annotations

import pickle
from functools import cache

import numpy as np
import pytest

pytest.importorskip("xgboost", reason="xgboost-cpu is in the test extra (pip install -e '.[test]')")

from connectors.model_registry import ModelRegistry
from operators.features import CORE_V1
from operators.models import Scorer, ScorerConfig, TrainConfig, summarize
from operators.models.xgb import XgbModel, XgbParams, train_xgboost

RES = 1800 * 10**9
SPEC = CORE_V1.with_resolution(1800)
NAMES = tuple(f for f in SPEC.features if f not in ("ofi", "log_trades"))
FAST = XgbParams(num_boost_round=80, early_stopping_rounds=10, min_child_weight=20.0)


def _data(n: int = 3000, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    X[rng.random(X.shape) < 0.02] = np.nan  # missing values take the learnt default branch
    logit = 0.8 * np.nan_to_num(X[:, 0]) - 0.5 * np.nan_to_num(X[:, 3]) * (np.nan_to_num(X[:, 5]) > 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    ts = 1_600_000_000 * 10**9 + np.arange(n, dtype=np.int64) * RES
    return X, y, ts


def test_trains_calibrates_and_beats_the_base_rate_out_of_sample():
    X, y, ts = _data()
    m = train_xgboost(X[:2000], y[:2000], ts[:2000], NAMES, TrainConfig(n_splits=2, gap_ns=2 * RES), FAST)
    assert m.info["model"] == "xgboost" and m.info["n_rounds"] >= 1 and len(m.info["fold_best_iters"]) == 2
    p = m.predict(X[2000:])
    got = summarize(y[2000:], p)
    base = summarize(y[2000:], np.full(1000, y[:2000].mean()))
    assert got["log_loss"] < base["log_loss"] - 0.01 and got["auc"] > 0.6


def test_compiled_one_row_path_equals_xgboost_and_survives_pickle_and_the_registry(tmp_path):
    X, y, ts = _data()
    m = train_xgboost(X[:2000], y[:2000], ts[:2000], NAMES, TrainConfig(n_splits=2, gap_ns=2 * RES), FAST)
    rows = X[2000:2400]
    want = m.predict_raw(rows)  # XGBoost's own (float32) predictions
    got = np.array([m.predict_one(r.tolist())[0] for r in rows])
    assert np.abs(got - want).max() < 1e-5  # float32 accumulation inside XGBoost
    assert np.isnan(rows).any()
    # thresholds sit exactly where XGBoost's float32 comparison flips: values at the split points agree too
    clone = pickle.loads(pickle.dumps(m))
    assert [clone.predict_one(r.tolist()) for r in rows[:50]] == [m.predict_one(r.tolist()) for r in rows[:50]]
    assert np.array_equal(clone.predict(rows), m.predict(rows))
    reg = ModelRegistry(tmp_path / "models")
    v = reg.register(m, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v, "challenger won")
    loaded = reg.load(v)
    assert isinstance(loaded, XgbModel) and loaded.predict_one(rows[0].tolist()) == m.predict_one(rows[0].tolist())


def test_split_points_follow_xgboost_float32_comparison():
    X, y, ts = _data(1500)
    m = train_xgboost(X[:1200], y[:1200], ts[:1200], NAMES, TrainConfig(n_splits=2, gap_ns=2 * RES), FAST)
    f = m.forest
    inner = np.flatnonzero(f.left != np.arange(f.left.size))
    rows = []
    for i in inner[:200]:  # a row sitting on each split threshold
        for x in (f.threshold[i], np.nextafter(f.threshold[i], np.inf)):
            r = np.zeros(len(NAMES))
            r[f.feature[i]] = x
            rows.append(r)
    rows = np.array(rows)
    got = np.array([m.predict_one(r.tolist())[0] for r in rows])
    assert np.abs(got - m.predict_raw(rows)).max() < 1e-5


def test_scorer_takes_it_as_its_batch_model():
    X, y, ts = _data()
    m = train_xgboost(X[:2000], y[:2000], ts[:2000], NAMES, TrainConfig(n_splits=2, gap_ns=2 * RES), FAST)
    sc = Scorer("BTC-USD", SPEC, batch=m, batch_version="xgb-1", cfg=ScorerConfig(), names=NAMES)
    full = np.zeros(len(SPEC.features))
    idx = [SPEC.features.index(n) for n in NAMES]
    full[idx] = X[2500]
    raw, cal, ens, _ = sc.score(tuple(full.tolist()), int(ts[2500]))
    assert raw["lgbm"] == pytest.approx(m.predict_one(X[2500].tolist())[0]) and 0 < cal < 1 and 0 < ens < 1
    assert sc.model_versions["lgbm"] == "xgb-1"


@cache
def _btc(n: int = 3000):
    from connectors.files import read_bars
    from operators.models import build_training_set, features_frame, replay_bars
    from tests.support import DATA

    b = read_bars(DATA / "BTC-30m.csv.gz").frame.iloc[:n]
    bars = replay_bars(b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, symbol="BTC-USD")
    return build_training_set(features_frame(bars, SPEC), bars, SPEC, audit=False), bars


def test_evaluation_scores_the_challenger_on_the_same_rows_and_decides():
    from flows.training import evaluate, render_table

    ds, bars = _btc()
    r = evaluate(ds=ds, bars=bars, spec=SPEC, n_folds=2, challengers=("xgboost",))
    t = r["table"]["pooled"]
    assert t["xgboost"]["n"] == t["lgbm"]["n"] == r["n_test"] > 500
    assert r["challengers"]["xgboost"]["keep"] == (t["xgboost"]["log_loss"] < t["lgbm"]["log_loss"])
    assert "XGBoost, isotonic (challenger)" in render_table(r)
    with pytest.raises(ValueError):
        evaluate(ds=ds, bars=bars, spec=SPEC, n_folds=2, challengers=("catboost",))


def test_champion_challenger_path_of_the_training_job(tmp_path):
    """`levibot train --model xgboost`: registered as a challenger next to a LightGBM champion and promoted only
    by the promotion rule on the later holdout (same rows, gap and calibration for both)."""
    from flows.training import train

    ds, _ = _btc()
    first = train(tmp_path, ds=ds, spec=SPEC, n_splits=2)
    reg = ModelRegistry(tmp_path / "models")
    reg.promote(first["version"], "the LightGBM champion")  # whether or not it beat the base rate
    second = train(tmp_path, ds=ds, spec=SPEC, n_splits=2, model_kind="xgboost")
    meta = reg.get(second["version"])
    assert meta["model_kind"] == "xgboost" and isinstance(reg.load(second["version"]), XgbModel)
    assert second["holdout_champion"] is not None  # compared with the LightGBM champion on the holdout
    champion = reg.latest_champion_version()
    if second["promoted"]:
        assert champion == second["version"]
        assert second["holdout"]["log_loss"] < second["holdout_champion"]["log_loss"]
    else:
        assert meta["status"] == "challenger" and champion == first["version"]
    with pytest.raises(ValueError):
        train(tmp_path, ds=ds, spec=SPEC, model_kind="catboost")
