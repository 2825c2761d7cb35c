"""Point-in-time guards on the real bundled bars: no look-ahead, and shuffled labels carry no signal."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from connectors.files import read_bars
from operators.features import CORE_V1
from operators.models import (
    LgbmParams,
    LookAheadError,
    TrainConfig,
    build_training_set,
    cross_validate,
    features_frame,
    forward_labels,
    replay_bars,
)
from tests.support import DATA

SPEC = CORE_V1.with_resolution(1800)
RES = 1800 * 10**9


@cache
def _bars(n: int) -> pd.DataFrame:
    out = []
    for f in ("BTC", "ETH"):
        b = read_bars(DATA / f"{f}-30m.csv.gz").frame.iloc[:n]
        out.append(
            replay_bars(b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, symbol=str(b.symbol.iloc[0]))
        )
    return pd.concat(out, ignore_index=True)


@cache
def _feats(n: int) -> pd.DataFrame:
    return features_frame(_bars(n), SPEC)


def test_labels_look_exactly_horizon_ahead_and_respect_gaps():
    t0 = 1_600_000_000 * 10**9
    starts = np.array([0, 1, 2, 3, 7, 8], dtype=np.int64) * RES + t0  # a 3-bar hole after bar 3
    close = np.array([100.0, 101.0, 100.5, 100.5, 99.0, 99.5])
    bars = pd.DataFrame({"symbol": "X", "ts": starts, "close": close})
    lab = forward_labels(bars, resolution_s=1800, horizon_bars=1, max_wait_bars=2)
    got = dict(zip(((lab.ts - t0) // RES).tolist(), lab.label.tolist(), strict=True))
    # bar ends 1..4 and 8..9; end 4 (bar 3) waits 3 bars past its horizon (> 2): dropped
    assert got == {1: 1.0, 2: 0.0, 3: 0.0, 8: 1.0}
    assert (lab.label_ts > lab.ts).all()
    lab3 = forward_labels(bars, resolution_s=1800, horizon_bars=1, threshold=0.006)
    assert dict(zip(((lab3.ts - t0) // RES).tolist(), lab3.label.tolist(), strict=True)) == {
        1: 1.0
    }  # others in the band


def test_clean_features_pass_and_rows_use_only_the_past():
    ds = build_training_set(_feats(3000), _bars(3000), SPEC)
    assert len(ds) > 5800
    assert (ds.label_ts > ds.ts).all()
    assert set(ds.names) == set(SPEC.features) - {"ofi", "log_trades"}
    # the label is the NEXT bar's move: ret_1 at t + 1 bar equals fwd_ret at t
    f = _feats(3000)
    btc = f[f.symbol == "BTC-USD"].set_index("ts")["ret_1"]
    m = ds.symbol == "BTC-USD"
    nxt = btc.reindex(ds.ts[m] + RES).to_numpy()
    ok = np.isfinite(nxt)
    np.testing.assert_allclose(ds.fwd_ret[m][ok], nxt[ok], rtol=1e-9, atol=1e-15)


def test_feature_shifted_into_the_future_is_refused():
    f = _feats(3000).copy()
    f["rsi_14"] = f.groupby("symbol")["rsi_14"].shift(-1)  # value of the next bar at t: look-ahead
    f = f.dropna()
    with pytest.raises(LookAheadError, match="rsi_14"):
        build_training_set(f, _bars(3000), SPEC)


def test_features_stamped_before_they_were_known_are_refused():
    f = _feats(3000).copy()
    f["ts"] = f["ts"] - RES  # claims every vector was known one bar earlier
    with pytest.raises(LookAheadError):
        build_training_set(f, _bars(3000), SPEC)


def test_join_never_uses_a_vector_stamped_after_t():
    f = _feats(3000).copy()
    f["ts"] = f["ts"] + RES // 2  # known half a bar late: must join to the NEXT decision time, never back
    ds = build_training_set(f, _bars(3000), SPEC, audit=False)
    orig = _feats(3000)
    btc = orig[orig.symbol == "BTC-USD"].set_index("ts")["ret_1"]
    m = ds.symbol == "BTC-USD"
    j = list(ds.names).index("ret_1")
    prev = btc.reindex(ds.ts[m] - RES).to_numpy()  # the vector of the previous bar end
    ok = np.isfinite(prev)
    np.testing.assert_array_equal(ds.X[m][ok, j], prev[ok])


def test_shuffled_labels_give_auc_near_half_and_real_labels_do_not():
    ds = build_training_set(_feats(12000), _bars(12000), SPEC, audit=False)
    cfg = TrainConfig(params=LgbmParams(num_boost_round=120, early_stopping_rounds=20), n_splits=3, gap_ns=2 * RES)
    rng = np.random.default_rng(0)
    real = cross_validate(ds.X, ds.y, ds.ts, cfg)
    shuf = cross_validate(ds.X, rng.permutation(ds.y), ds.ts, cfg)
    from operators.models import auc

    m = np.isfinite(shuf.oof)
    a_shuf = auc(ds.y[m], shuf.oof[m])  # vs the true labels: no information
    a_self = np.mean([fm["auc"] for fm in shuf.fold_metrics])  # vs the shuffled labels it was trained on
    a_real = np.mean([fm["auc"] for fm in real.fold_metrics])
    assert abs(a_self - 0.5) < 0.025, a_self
    assert abs(a_shuf - 0.5) < 0.025, a_shuf
    assert a_real > a_self + 0.01, (a_real, a_self)
