"""Pure units of the model layer: metrics, calibration, splits, compiled trees, ensemble, PSI, promotion."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from operators.models import (
    FlatForest,
    IsotonicCalibrator,
    LogLossWeights,
    PlattCalibrator,
    PromotionRule,
    PsiReference,
    auc,
    brier,
    ece,
    label_of,
    log_loss,
    promotion_decision,
    retrain_due,
    walk_forward_splits,
)
from operators.models.forest import CompiledForest


def test_auc_equals_pairwise_definition_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200), 1)  # many ties
    pos, neg = p[y == 1], p[y == 0]
    want = np.mean([(a > b) + 0.5 * (a == b) for a, b in itertools.product(pos, neg)])
    assert auc(y, p) == pytest.approx(want, abs=1e-12)
    assert auc(y, y.astype(float)) == 1.0 and auc(y, 1.0 - y) == 0.0


def test_log_loss_brier_ece_by_hand():
    y = np.array([1, 0, 1, 1])
    p = np.array([0.8, 0.3, 0.6, 0.9])
    assert log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.6) + math.log(0.9)) / 4)
    assert brier(y, p) == pytest.approx((0.04 + 0.09 + 0.16 + 0.01) / 4)
    # bins of width 0.1: each prediction alone in its bin -> mean |p - y|
    assert ece(y, p, n_bins=10) == pytest.approx((0.2 + 0.3 + 0.4 + 0.1) / 4)


def test_isotonic_and_platt_fix_a_miscalibrated_model():
    rng = np.random.default_rng(2)
    true_p = rng.uniform(0.2, 0.8, 40_000)
    y = (rng.random(true_p.size) < true_p).astype(float)
    raw = 1 / (1 + np.exp(-3 * np.log(true_p / (1 - true_p)) - 0.5))  # overconfident and shifted
    assert ece(y, raw) > 0.1
    for cal in (IsotonicCalibrator().fit(raw, y), PlattCalibrator().fit(raw, y)):
        out = cal.predict(raw)
        assert ece(y, out) < 0.015, type(cal).__name__
        assert np.all(np.diff(out[np.argsort(raw)]) >= -1e-12)  # monotone
        assert cal.predict_one(float(raw[7])) == pytest.approx(float(out[7]), abs=1e-12)
    pl = PlattCalibrator().fit(raw, y)
    assert pl.a == pytest.approx(1 / 3, abs=0.03) and pl.b == pytest.approx(-0.5 / 3, abs=0.03)


def test_walk_forward_splits_are_ordered_with_the_gap():
    ts = np.repeat(np.arange(1000, dtype=np.int64) * 10, 2)  # two symbols share times
    gap = 35
    folds = walk_forward_splits(ts, 4, gap)
    assert len(folds) == 4
    prev_val_end = None
    for tr, va in folds:
        assert ts[tr].max() < ts[va].min() - gap
        assert set(ts[va]).isdisjoint(ts[tr])
        if prev_val_end is not None:
            assert ts[va].min() > prev_val_end
        prev_val_end = ts[va].max()
    assert sum(len(v) for _, v in folds) > 0.55 * ts.size


def test_compiled_trees_equal_lightgbm_including_missing_values():
    import lightgbm as lgb

    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 6))
    y = ((X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=5000)) > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan  # trains NaN-aware splits
    b = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), 60)
    Xt = rng.normal(size=(500, 6))
    Xt[rng.random(Xt.shape) < 0.1] = np.nan
    want = b.predict(Xt, raw_score=True)
    flat = FlatForest.from_dump(b.dump_model())
    comp = CompiledForest(flat)
    np.testing.assert_allclose(flat.raw(Xt), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose([comp.raw_one(list(r)) for r in Xt], want, rtol=0, atol=1e-12)


def test_ensemble_weights_follow_recent_log_loss():
    w = LogLossWeights(half_life=50, eta=1.0)
    rng = np.random.default_rng(4)
    for _ in range(400):
        y = float(rng.random() < 0.5)
        good = 0.7 if y else 0.3  # informative
        w.update(y, {"good": good, "flat": 0.5})
    ws = w.weights(["good", "flat"])
    assert ws["good"] > 0.99
    # the formula: w_i proportional to exp(-eta * S_i)
    s = w.S
    assert ws["good"] / ws["flat"] == pytest.approx(math.exp(-(s["good"] - s["flat"])), rel=1e-9)
    p, u, _ = w.blend({"good": 0.7, "flat": 0.5})
    assert p == pytest.approx(0.7 * ws["good"] + 0.5 * ws["flat"]) and 0 <= u < 0.05
    # regime change: the flat model becomes better and takes over within a few half-lives
    for _ in range(400):
        y = float(rng.random() < 0.5)
        w.update(y, {"good": 0.3 if y else 0.7, "flat": 0.5})
    assert w.weights(["good", "flat"])["flat"] > 0.99


def test_psi_stable_vs_shifted():
    rng = np.random.default_rng(5)
    ref = PsiReference.fit(rng.normal(size=(20_000, 2)), ["a", "b"])
    same = ref.compute(rng.normal(size=(2000, 2)))
    assert max(same.values()) < 0.02
    moved = ref.compute(np.column_stack([rng.normal(1.0, 1, 2000), rng.normal(size=2000)]))
    assert moved["a"] > 0.25 and moved["b"] < 0.05


def test_label_rule_and_promotion_rule_and_schedule():
    assert label_of(0.001, 0.0) == 1.0 and label_of(0.0, 0.0) == 0.0 and label_of(-0.001, 0.0) == 0.0
    assert math.isnan(label_of(0.0005, 0.001)) and label_of(0.002, 0.001) == 1.0 and label_of(-0.002, 0.001) == 0.0
    base = {"log_loss": 0.693, "auc": 0.5, "ece": 0.0}
    good = {"log_loss": 0.690, "auc": 0.55, "ece": 0.01}
    assert promotion_decision(good, None, base)[0]
    assert not promotion_decision(good, {"log_loss": 0.689, "auc": 0.56, "ece": 0.01}, base)[0]
    assert not promotion_decision({**good, "ece": 0.2}, None, base)[0]
    assert not promotion_decision(
        good, {"log_loss": 0.6905, "auc": 0.56, "ece": 0.01}, base, PromotionRule(min_gain=0.001)
    )[0]
    assert retrain_due(10**18, None, 3600) and retrain_due(5, 4, 3600, drift_requested=True)
    assert not retrain_due(3599 * 10**9, 0, 3600) and retrain_due(3600 * 10**9, 0, 3600)
