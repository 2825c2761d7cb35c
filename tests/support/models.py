"""A small model setup shared by the model and flow tests: the feature set on 30-minute bars, the bundled BTC bars
with their features, and a quickly trained LightGBM model (each computed once per process)."""

from __future__ import annotations

from functools import cache

from connectors.files import read_bars
from operators.features import CORE_V1
from operators.models import LgbmParams, TrainConfig, build_training_set, features_frame, replay_bars, train_lightgbm
from tests.support import DATA

SPEC = CORE_V1.with_resolution(1800)  # the core feature set on the bundled 30-minute bars
RES = 1800 * 10**9  # their resolution (ns)
#: LightGBM settings that train in seconds (few rounds, two CV splits)
FAST = TrainConfig(params=LgbmParams(num_boost_round=60, early_stopping_rounds=10), n_splits=2, gap_ns=2 * RES)


@cache
def btc_bars_and_features(n: int = 4000):
    """The first ``n`` bundled BTC 30-minute bars and their features (computed once per process)."""
    b = read_bars(DATA / "BTC-30m.csv.gz").frame.iloc[:n]
    bars = replay_bars(b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, symbol="BTC-USD")
    return bars, features_frame(bars, SPEC)


@cache
def trained_model(lo: int, hi: int):
    """A LightGBM model trained on rows ``lo:hi`` of the BTC training set (trained once per process)."""
    bars, feats = btc_bars_and_features()
    ds = build_training_set(feats, bars, SPEC, audit=False)
    return train_lightgbm(ds.X[lo:hi], ds.y[lo:hi], ds.ts[lo:hi], ds.names, FAST)
