"""The GRU sequence challenger: windows, the numpy forward against the JAX forward and a finite-difference
gradient, determinism, learning a lagged signal, the per-symbol stream in the Scorer, pickle and registry round
trips, and the evaluation / champion-challenger path of the training job."""

from __future__ import annotations

import pickle
from dataclasses import replace
from functools import cache

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax and optax are in the test extra (pip install -e '.[test]')")
pytest.importorskip("optax", reason="jax and optax are in the test extra (pip install -e '.[test]')")

from connectors.model_registry import ModelRegistry
from operators.features import CORE_V1
from operators.models import Scorer, ScorerConfig, TrainConfig, summarize
from operators.models.sequence import (
    GruParams,
    SequenceModel,
    SequenceStream,
    _bce,
    _jax,
    gru_logits,
    init_weights,
    jax_logits,
    train_gru,
    windows,
)

RES = 1800 * 10**9
SPEC = CORE_V1.with_resolution(1800)
NAMES = tuple(f for f in SPEC.features if f not in ("ofi", "log_trades"))
FAST = GruParams(window=6, hidden=8, max_epochs=12, patience=3, batch_size=128, learning_rate=1e-2)


def _data(n: int = 4000, seed: int = 3, lag: int = 3):
    """Two interleaved symbols (rows sorted by time, then symbol); P(up) depends on feature 0 ``lag`` rows of the
    SAME symbol earlier: invisible in the current row alone."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    sym = np.array(["BTC-USD", "ETH-USD"] * (n // 2), dtype=object)
    ts = 1_600_000_000 * 10**9 + (np.arange(n, dtype=np.int64) // 2) * RES
    logit = np.zeros(n)
    for s in ("BTC-USD", "ETH-USD"):
        pos = np.flatnonzero(sym == s)
        logit[pos[lag:]] = 3.0 * X[pos[:-lag], 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, y, ts, sym


@cache
def _trained():
    X, y, ts, sym = _data()
    m = train_gru(
        X[:3000], y[:3000], ts[:3000], NAMES, TrainConfig(n_splits=2, gap_ns=2 * RES), FAST, groups=sym[:3000]
    )
    return m, (X, y, ts, sym)


def test_windows_are_per_symbol_and_padded_in_front():
    Z = np.arange(10, dtype=float).reshape(10, 1)
    g = ["a", "b"] * 5
    W = windows(Z, g, 3)[:, :, 0]
    assert W[0].tolist() == [0, 0, 0] and W[1].tolist() == [0, 0, 1]
    assert W[8].tolist() == [4, 6, 8] and W[9].tolist() == [5, 7, 9]  # never the other symbol's rows
    assert windows(Z, None, 2)[5, :, 0].tolist() == [4, 5]


def test_numpy_forward_equals_the_jax_forward():
    rng = np.random.default_rng(0)
    w = init_weights(len(NAMES), GruParams(hidden=8, seed=1))
    w = {k: (v + rng.normal(scale=0.3, size=v.shape)).astype(np.float32) for k, v in w.items()}  # biases non-zero
    Xw = rng.normal(size=(64, 7, len(NAMES))).astype(np.float32)
    j = jax_logits(w, Xw)
    assert np.abs(gru_logits(w, Xw) - j).max() < 1e-5  # both float32
    assert np.abs(gru_logits(w, Xw.astype(np.float64)) - j).max() < 1e-4  # float64 numpy vs float32 XLA
    assert np.std(j) > 0.1  # not a constant


def test_jax_gradient_matches_finite_differences_of_the_numpy_loss():
    jax, jnp = _jax()
    from operators.models.sequence import _jax_forward

    rng = np.random.default_rng(1)
    w = {
        k: (v + rng.normal(scale=0.2, size=v.shape)).astype(np.float32)
        for k, v in init_weights(3, GruParams(hidden=4, seed=2)).items()
    }
    Xw = rng.normal(size=(16, 5, 3)).astype(np.float32)
    y = (rng.random(16) < 0.5).astype(np.float32)
    g = jax.grad(lambda ww: _bce(_jax_forward(ww, jnp.asarray(Xw)), jnp.asarray(y)))(
        {k: jnp.asarray(v) for k, v in w.items()}
    )

    def loss64(ww):
        z = gru_logits(ww, Xw.astype(np.float64))
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    eps = 1e-5
    for k in ("W", "U", "b", "bhn", "w_out", "b_out"):
        w64 = {n: v.astype(np.float64) for n, v in w.items()}
        for flat in rng.choice(w[k].size, size=min(6, w[k].size), replace=False):
            i = np.unravel_index(flat, w[k].shape)
            up = {n: v.copy() for n, v in w64.items()}
            dn = {n: v.copy() for n, v in w64.items()}
            up[k][i] += eps
            dn[k][i] -= eps
            fd = (loss64(up) - loss64(dn)) / (2 * eps)
            assert float(np.asarray(g[k])[i]) == pytest.approx(fd, abs=2e-5, rel=2e-3), (k, i)


def test_learns_a_lagged_signal_out_of_sample_and_is_deterministic():
    m, (X, y, ts, sym) = _trained()
    assert m.info["model"] == "gru" and m.info["n_rounds"] >= 1 and len(m.info["fold_best_epochs"]) == 2
    p = m.predict(X, groups=sym)[3000:]
    got = summarize(y[3000:], p)
    base = summarize(y[3000:], np.full(1000, y[:3000].mean()))
    assert got["log_loss"] < base["log_loss"] - 0.05 and got["auc"] > 0.7
    # the windows carry the signal: without the symbol grouping the lag is scrambled and the edge shrinks
    blind = summarize(y[3000:], m.predict(X, groups=None)[3000:])
    assert blind["auc"] < got["auc"] - 0.05
    again = train_gru(
        X[:3000], y[:3000], ts[:3000], NAMES, TrainConfig(n_splits=2, gap_ns=2 * RES), FAST, groups=sym[:3000]
    )
    assert all(np.array_equal(again.weights[k], m.weights[k]) for k in m.weights)
    other = train_gru(
        X[:3000],
        y[:3000],
        ts[:3000],
        NAMES,
        TrainConfig(n_splits=2, gap_ns=2 * RES),
        replace(FAST, seed=8),
        groups=sym[:3000],
    )
    assert not np.array_equal(other.weights["W"], m.weights["W"])


def test_stream_scores_equal_the_batch_windows_and_survive_pickle():
    m, (X, _y, _ts, sym) = _trained()
    want = m.predict_raw(X[:400], groups=sym[:400])
    streams = {"BTC-USD": m.stream(), "ETH-USD": m.stream()}
    got = np.array([streams[s].predict_one(X[i].tolist())[0] for i, s in enumerate(sym[:200])])
    assert np.abs(got - want[:200]).max() < 1e-12
    clones = {s: pickle.loads(pickle.dumps(st)) for s, st in streams.items()}
    rest = [
        (streams[s].predict_one(X[i].tolist()), clones[s].predict_one(X[i].tolist()))
        for i, s in enumerate(sym[200:400], start=200)
    ]
    assert all(a == b for a, b in rest)
    assert np.abs(np.array([a[0] for a, _ in rest]) - want[200:]).max() < 1e-12
    # a stream made at a hot swap keeps the rows the previous one saw
    swapped = m.stream(streams["BTC-USD"])
    assert list(swapped.rows) == list(streams["BTC-USD"].rows) and len(swapped.rows) == m.window
    assert isinstance(swapped, SequenceStream) and len(m.stream(object()).rows) == 0


def test_registry_round_trip_and_the_scorer_takes_it_per_symbol(tmp_path):
    m, (X, _y, ts, sym) = _trained()
    reg = ModelRegistry(tmp_path / "models")
    v = reg.register(m, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v, "challenger won")
    loaded = reg.load(v)
    assert isinstance(loaded, SequenceModel)
    assert np.array_equal(loaded.predict(X[:500], groups=sym[:500]), m.predict(X[:500], groups=sym[:500]))
    idx = [SPEC.features.index(n) for n in NAMES]
    scorers = {
        s: Scorer(s, SPEC, batch=loaded, batch_version=v, cfg=ScorerConfig(), names=NAMES)
        for s in ("BTC-USD", "ETH-USD")
    }
    assert scorers["BTC-USD"].batch is not scorers["ETH-USD"].batch  # one window state per symbol
    want = m.predict_raw(X[:300], groups=sym[:300])
    got = []
    for i in range(300):
        full = np.zeros(len(SPEC.features))
        full[idx] = X[i]
        sc = scorers[sym[i]]
        raw, cal, ens, _ = sc.score(tuple(full.tolist()), int(ts[i]))
        got.append(raw["lgbm"])
        assert 0 < cal < 1 and 0 < ens < 1
        if i == 150:  # a restored scorer continues identically
            scorers[sym[i]] = pickle.loads(pickle.dumps(sc))
    assert np.abs(np.array(got) - want).max() < 1e-12
    assert scorers["BTC-USD"].model_versions["lgbm"] == v


@cache
def _btc(n: int = 3000):
    from connectors.files import read_bars
    from operators.models import build_training_set, features_frame, replay_bars
    from tests.support import DATA

    b = read_bars(DATA / "BTC-30m.csv.gz").frame.iloc[:n]
    bars = replay_bars(b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, symbol="BTC-USD")
    return build_training_set(features_frame(bars, SPEC), bars, SPEC, audit=False), bars


def test_evaluation_scores_the_gru_on_the_same_rows_and_decides():
    from flows.training import evaluate, render_table

    ds, bars = _btc()
    r = evaluate(ds=ds, bars=bars, spec=SPEC, n_folds=2, challengers=("gru",))
    t = r["table"]["pooled"]
    assert t["gru"]["n"] == t["lgbm"]["n"] == r["n_test"] > 500
    assert r["challengers"]["gru"]["keep"] == (t["gru"]["log_loss"] < t["lgbm"]["log_loss"])
    assert np.isfinite(t["gru"]["log_loss"]) and 0.3 < t["gru"]["auc"] < 0.8
    assert "GRU (sequence), isotonic (challenger)" in render_table(r)


def test_champion_challenger_path_both_ways(tmp_path):
    """`levibot train --model gru`: a challenger next to a LightGBM champion, promoted only by the rule on the
    holdout; and a GRU champion is scored on the holdout with its windows when LightGBM challenges it."""
    from flows.training import train

    ds, _ = _btc()
    first = train(tmp_path, ds=ds, spec=SPEC, n_splits=2)
    reg = ModelRegistry(tmp_path / "models")
    reg.promote(first["version"], "the LightGBM champion")
    second = train(tmp_path, ds=ds, spec=SPEC, n_splits=2, model_kind="gru")
    meta = reg.get(second["version"])
    assert meta["model_kind"] == "gru" and isinstance(reg.load(second["version"]), SequenceModel)
    assert second["holdout_champion"] is not None
    if second["promoted"]:
        assert reg.latest_champion_version() == second["version"]
        assert second["holdout"]["log_loss"] < second["holdout_champion"]["log_loss"]
    else:
        assert meta["status"] == "challenger" and reg.latest_champion_version() == first["version"]
    reg.promote(second["version"], "a GRU champion")
    third = train(tmp_path, ds=ds, spec=SPEC, n_splits=2)
    assert third["holdout_champion"] == pytest.approx(second["holdout"])  # the same windows, the same numbers
