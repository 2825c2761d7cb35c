"""Feature store (embedded ClickHouse), registry and the training wiring."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from connectors.feature_store import read_features, store_name, write_features
from connectors.files import read_bars
from connectors.model_registry import ModelRegistry
from flows.training import dataset, features_build, train
from operators.features import CORE_V1
from operators.models import LgbmParams, TrainConfig, features_frame, replay_bars, train_lightgbm
from operators.pipeline import PipelineConfig
from operators.signal_stage import SignalStage
from operators.synthetic import iter_synthetic_ticks
from tests.support import DATA

SPEC = CORE_V1.with_resolution(1800)
RES = 1800 * 10**9


def _btc(n: int) -> pd.DataFrame:
    return read_bars(DATA / "BTC-30m.csv.gz").frame.iloc[:n]


@pytest.mark.clickhouse
def test_stream_and_offline_store_give_identical_features(ch_database):
    client, db = ch_database
    from connectors.clickhouse.migrate import migrate

    migrate(client, db)
    b = _btc(300)
    # streaming: the bars replayed as ticks through the per-symbol pipeline (as `levibot run` does)
    pipe = SignalStage(
        "BTC-USD", PipelineConfig(base_resolution_s=1, bar_resolutions_s=(1800,), decision_resolution_s=1800)
    )
    ticks = list(iter_synthetic_ticks(b.itertuples(index=False), resolution_s=1800))
    streamed, pbars = [], []
    for i in range(0, len(ticks), 97):  # arbitrary batches
        e = pipe.on_batch(ticks[i : i + 97])
        streamed += e.features
        pbars += [x for x in e.bars if x.resolution_s == 1800]
    e = pipe.on_batch([], watermark_ns=int(b.ts.iloc[-1]) + RES)
    streamed += e.features
    pbars += [x for x in e.bars if x.resolution_s == 1800]
    # batch: the stream's own bars through features_frame, into ClickHouse and back: bit-identical
    cols = [
        "symbol",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "buy_volume",
        "sell_volume",
        "vwap",
        "trade_count",
    ]
    sbars = pd.DataFrame([[getattr(x, c) for c in cols] for x in pbars], columns=cols)
    n = write_features(client, features_frame(sbars, SPEC), SPEC, database=db)
    back = read_features(client, SPEC, database=db)
    assert n == len(back) == len(streamed) == 300 - 25
    assert back.ts.tolist() == [fv.ts for fv in streamed]
    assert back[list(SPEC.features)].to_numpy().tolist() == [fv.values for fv in streamed]
    assert streamed[0].names == list(SPEC.features)
    # `levibot features build` makes the bars offline (replay_bars, vectorised): equal to float rounding
    bars = replay_bars(b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, symbol="BTC-USD")
    for c in cols[1:]:
        np.testing.assert_allclose(bars[c].to_numpy(float), sbars[c].to_numpy(float), rtol=1e-12, err_msg=c)
    np.testing.assert_allclose(
        features_frame(bars, SPEC)[list(SPEC.features)].to_numpy(),
        back[list(SPEC.features)].to_numpy(),
        rtol=1e-9,
        atol=1e-12,
    )
    # the store key names the resolution; another resolution never collides
    assert store_name(SPEC) == "core/1800s"
    assert read_features(client, CORE_V1, database=db).empty
    write_features(client, features_frame(sbars, SPEC), SPEC, database=db)  # a re-build does not duplicate
    assert len(read_features(client, SPEC, database=db)) == n


@pytest.mark.clickhouse
def test_features_build_then_training_from_the_store(ch_database, chdb_path, tmp_path):
    _client, db = ch_database
    src = tmp_path / "BTC-small.csv.gz"
    with gzip.open(DATA / "BTC-30m.csv.gz", "rt") as f:
        lines = [next(f) for _ in range(4001)]
    with gzip.open(src, "wt") as f:
        f.writelines(lines)
    out = features_build(f"chdb://{chdb_path}", database=db, sources=[src])
    assert out["rows"] == 4000 - 25 and out["symbols"] == ["BTC-USD"]
    ds, _bars, spec = dataset([src], dsn=f"chdb://{chdb_path}", database=db)  # audited against the bars
    ds2, _, _ = dataset([src])
    np.testing.assert_array_equal(ds.X, ds2.X)
    np.testing.assert_array_equal(ds.y, ds2.y)
    r1 = train(tmp_path / "var", ds=ds, spec=spec, n_splits=2)
    reg = ModelRegistry(tmp_path / "var" / "models")
    meta = reg.get(r1["version"])
    assert meta["feature_set"] == spec.id and meta["names"] == list(ds.names) and meta["horizon_ns"] == RES
    assert meta["status"] == ("champion" if r1["promoted"] else "challenger")
    # the same data again: equal holdout log-loss is not better -> the champion stays
    if r1["promoted"]:
        r2 = train(tmp_path / "var", ds=ds, spec=spec, n_splits=2)
        assert not r2["promoted"] and r2["holdout_champion"] is not None
        assert reg.latest_champion_version() == r1["version"]


def test_registry_versions_hashes_and_promotion(tmp_path):
    b = _btc(3000)
    bars = replay_bars(b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, symbol="BTC-USD")
    f = features_frame(bars, SPEC)
    X = f[["ret_1", "rsi_14", "hl_range"]].to_numpy()
    y = (np.random.default_rng(0).random(len(f)) < 0.5).astype(float)
    m = train_lightgbm(
        X,
        y,
        f.ts.to_numpy(),
        ("ret_1", "rsi_14", "hl_range"),
        TrainConfig(params=LgbmParams(num_boost_round=20), n_splits=2, gap_ns=2 * RES),
    )
    reg = ModelRegistry(tmp_path / "models")
    assert reg.latest_champion_version() is None
    v1 = reg.register(m, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={"x": 1})
    v2 = reg.register(m, feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={"x": 2})
    assert v1 != v2 and [v["version"] for v in reg.versions()] == [v1, v2]
    meta = reg.get(v1)
    for k in (
        "version",
        "feature_set",
        "feature_set_version",
        "train_start_ns",
        "train_end_ns",
        "metrics",
        "content_hash",
        "created_at",
        "status",
    ):
        assert k in meta
    assert meta["status"] == "challenger"
    loaded = reg.load(v1)
    np.testing.assert_array_equal(loaded.predict(X[:50]), m.predict(X[:50]))
    assert reg.promote(v1, "first") is None and reg.latest_champion_version() == v1
    assert reg.promote(v2, "better") == v1
    assert reg.get(v1)["status"] == "retired" and reg.champion()["version"] == v2
    assert json.loads((tmp_path / "models" / v2 / "meta.json").read_text())["status"] == "champion"
    assert not list((tmp_path / "models").glob(".*.*"))  # no temp files left behind
    p = tmp_path / "models" / v1 / "model.pkl"
    p.write_bytes(p.read_bytes()[:-1] + b"\x00")
    with pytest.raises(RuntimeError, match="content hash"):
        reg.load(v1)
