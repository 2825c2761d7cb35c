"""Tests for operators.features: incremental == batch, independent references (pandas, TA-Lib) on real BTC bars."""

from __future__ import annotations

import dataclasses
import gzip
import math
import pickle
import re
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
import talib  # PyPI "ta-lib" (binary wheel): an independent reference, a test dependency — never skipped
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.bars import aggregate_ticks
from operators.features import CORE_V1, CoreFeatures, compute_features
from operators.features.core import compute_features_array
from operators.synthetic import synthesize_ticks
from tests.support import DATA, REPO

WARM = 25  # first row with values: the slow EMA needs 26 closes
Bar = namedtuple(
    "Bar",
    "symbol ts resolution_s open high low close volume buy_volume sell_volume vwap trade_count synthetic revision",
    defaults=(False, 0),
)


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    """Real BTC 30-min bars, replayed as synthetic ticks and re-aggregated (gives vwap and buy/sell volume)."""
    with gzip.open(DATA / "BTC-30m.csv.gz", "rt") as f:
        df = pd.read_csv(f)
    ts = pd.to_datetime(df["Date"]).to_numpy().astype("datetime64[ns]").astype(np.int64)  # naive = UTC
    raw = [df[f"BTC.{k}"].to_numpy(float) for k in ("open", "high", "low", "close", "volume")]
    t = synthesize_ticks(ts, *raw, resolution_s=1800, n=8, symbol="BTC")
    cols = aggregate_ticks(t.ts, t.price, t.qty, t.side, resolution_s=1800, symbol="BTC", synthetic=True)
    out = pd.DataFrame(
        {
            k: cols[k]
            for k in (
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
            )
        }
    )
    assert np.array_equal(out["close"].to_numpy(), raw[3]) and np.array_equal(out["ts"].to_numpy(), ts)
    return out


@pytest.fixture(scope="module")
def feats(btc) -> pd.DataFrame:
    return compute_features(btc, CORE_V1.with_resolution(1800))


def close_enough(got: pd.Series, want, rtol: float = 1e-9, atol: float = 0.0) -> None:
    g = np.asarray(got, float)[WARM:]
    w = np.asarray(want, float)[WARM:]
    assert not np.isnan(w).any() and not np.isnan(g).any()
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def test_warmup_rows(feats):
    assert feats.iloc[:WARM].isna().all().all()
    assert not feats.iloc[WARM:].isna().any().any()
    assert list(feats.columns) == list(CORE_V1.features) == DOCUMENTED_FEATURES


#: The feature names of docs/features.md's table of ``core@1``, in its order (the page documents every feature).
DOCUMENTED_FEATURES = [
    line.split("|")[2].strip().strip("`")
    for line in (REPO / "docs" / "features.md")
    .read_text(encoding="utf-8")
    .split("## Feature set `core@1`", 1)[1]
    .split("\n## ", 1)[0]
    .splitlines()
    if re.match(r"\| \d+ \| `", line)
]


def test_log_returns_vs_numpy(btc, feats):
    lc = np.log(btc["close"])
    for h in (1, 5, 15):
        close_enough(feats[f"ret_{h}"], lc.diff(h), atol=1e-14)


def test_realised_vol_vs_pandas_rolling_std(btc, feats):
    r = np.log(btc["close"]).diff()
    close_enough(feats["rv_20"], r.rolling(20).std(ddof=1))


def test_ewma_vol_vs_pandas_ewm(btc, feats):
    r = np.log(btc["close"]).diff()
    # RiskMetrics, lambda 0.94, seeded with the first squared return == pandas ewm(adjust=False)
    close_enough(feats["ewma_vol"], np.sqrt((r * r).ewm(alpha=1 - 0.94, adjust=False).mean()))


def test_rsi_vs_talib_and_pandas(btc, feats):
    c = btc["close"].to_numpy()
    close_enough(feats["rsi_14"], talib.RSI(c, timeperiod=14))
    # pandas: Wilder smoothing is ewm(alpha=1/14, adjust=False) seeded with the SMA of the first 14 changes
    d = pd.Series(np.diff(c))
    g, lo = d.clip(lower=0), (-d).clip(lower=0)

    def wilder(x):
        y = x.copy()
        y.iloc[13] = x.iloc[:14].mean()
        return y.iloc[13:].ewm(alpha=1 / 14, adjust=False).mean()

    ag, al = wilder(g), wilder(lo)
    rsi = pd.Series(np.nan, index=range(len(c)))
    rsi.iloc[14:] = (100 * ag / (ag + al)).to_numpy()
    close_enough(feats["rsi_14"], rsi)


def test_ema_spread_vs_talib_and_pandas(btc, feats):
    c = btc["close"].to_numpy()
    want = (talib.EMA(c, 12) - talib.EMA(c, 26)) / c
    close_enough(feats["ema_spread"], want, rtol=1e-9, atol=1e-13)

    def ema_sma_seed(n):
        s = pd.Series(c.copy())
        s.iloc[n - 1] = c[:n].mean()
        out = pd.Series(np.nan, index=s.index)
        out.iloc[n - 1 :] = s.iloc[n - 1 :].ewm(span=n, adjust=False).mean().to_numpy()
        return out

    close_enough(feats["ema_spread"], (ema_sma_seed(12) - ema_sma_seed(26)) / c, rtol=1e-9, atol=1e-13)
    # pandas' default first-value seeding differs at the start but the difference decays as (1 - alpha)^t
    first_seed = (pd.Series(c).ewm(span=12, adjust=False).mean() - pd.Series(c).ewm(span=26, adjust=False).mean()) / c
    diff = np.abs(feats["ema_spread"].to_numpy() - first_seed.to_numpy())
    assert diff[WARM] > 1e-6 and np.nanmax(diff[1000:]) < 1e-12


def test_vwap_dist_range_volume_flow_vs_pandas(btc, feats):
    pv = (btc["vwap"] * btc["volume"]).rolling(20).sum()
    close_enough(feats["vwap_dist_20"], btc["close"] / (pv / btc["volume"].rolling(20).sum()) - 1, atol=1e-13)
    close_enough(feats["hl_range"], (btc["high"] - btc["low"]) / btc["close"], rtol=1e-15)
    rng = btc["high"] - btc["low"]
    close_enough(feats["close_pos"], ((btc["close"] - btc["low"]) / rng).where(rng > 0, 0.5), rtol=1e-15)
    v = btc["volume"]
    close_enough(feats["vol_z_20"], (v - v.rolling(20).mean()) / v.rolling(20).std(), atol=1e-9)
    bs = btc["buy_volume"] + btc["sell_volume"]
    close_enough(feats["ofi"], ((btc["buy_volume"] - btc["sell_volume"]) / bs).where(bs > 0, 0.0), atol=1e-15)
    close_enough(feats["log_trades"], np.log1p(btc["trade_count"]), rtol=1e-15)


def test_skew_vs_pandas_rolling_skew(btc, feats):
    r = np.log(btc["close"]).diff()
    close_enough(feats["skew_20"], r.rolling(20).skew(), rtol=1e-9, atol=1e-9)


def test_incremental_equals_batch_and_survives_snapshot(btc, feats):
    spec = CORE_V1.with_resolution(1800)
    f = CoreFeatures(spec)
    rows = []
    for i, rec in enumerate(btc.head(3000).itertuples(index=False)):
        if i == 1234:
            f = pickle.loads(pickle.dumps(f))
        bar = Bar(
            "BTC",
            rec.ts,
            1800,
            rec.open,
            rec.high,
            rec.low,
            rec.close,
            rec.volume,
            rec.buy_volume,
            rec.sell_volume,
            rec.vwap,
            rec.trade_count,
        )
        v = f.update(bar)
        rows.append([np.nan] * len(spec.features) if v is None else list(v))
    got = np.array(rows)
    want = feats.head(3000).to_numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[WARM:], want[WARM:])  # bit-identical: same code path
    assert len(pickle.dumps(f)) < 8000


def test_golden_values_pin_the_definition(feats):
    """First warm and last row of core@1 on the bundled BTC bars; a change here needs a new feature-set version."""
    for row, golden in ((feats.iloc[WARM].to_dict(), GOLDEN_ROW_25), (feats.iloc[-1].to_dict(), GOLDEN_ROW_LAST)):
        assert set(golden) == set(row)
        for k, v in golden.items():
            assert math.isclose(row[k], v, rel_tol=1e-9, abs_tol=1e-12), k


def test_skips_corrections_old_and_foreign_bars():
    f = CoreFeatures(CORE_V1)
    b = Bar("X", 60_000_000_000, 60, 1, 2, 1, 1.5, 1, 0.5, 0.5, 1.5, 3)
    f.update(b)
    assert f.update(b._replace(ts=120_000_000_000, revision=1)) is None
    assert f.update(b) is None  # not newer
    assert f.update(b._replace(ts=180_000_000_000, resolution_s=1)) is None
    assert f.skipped == 3 and f.n_bars == 1


def test_spec_hash_and_versioning():
    assert CORE_V1.definition_hash == "b96e9013d4475c90"
    assert CORE_V1.with_resolution(1800).definition_hash == CORE_V1.definition_hash
    assert CORE_V1.with_resolution(1800).hash != CORE_V1.hash
    assert CORE_V1.id.startswith("core@1/60s#")
    changed = dataclasses.replace(CORE_V1, params={**CORE_V1.params, "ewma_lambda": 0.97})
    with pytest.raises(ValueError, match="bump the version"):
        changed.verify()
    with pytest.raises(ValueError):
        CoreFeatures(changed)
    dataclasses.replace(changed, version=2).verify()  # a new version is fine


def test_missing_columns_rejected():
    with pytest.raises(KeyError):
        compute_features_array({"close": [1.0]})


@st.composite
def bar_frames(draw):
    n = draw(st.integers(30, 60))
    # one-bar moves are 0 or at least 1e-7: a move of a few ulps is rounded away or not depending on the price
    # scale, which turns skew_20 of an otherwise flat window from sqrt(20) into 0 (no real bar moves by 1e-300)
    move = st.one_of(st.just(0.0), st.floats(1e-7, 0.05), st.floats(-0.05, -1e-7))
    c = 100 * np.exp(np.cumsum(draw(st.lists(move, min_size=n, max_size=n))))
    # ranges are 0 or at least 1e-5 of the price: close_pos = (c - low) / (high - low) is ill-conditioned for
    # ranges of a few ulps, which no real bar has
    rel = st.one_of(st.just(0.0), st.floats(1e-5, 0.03))
    up = np.array(draw(st.lists(rel, min_size=n, max_size=n)))
    dn = np.array(draw(st.lists(rel, min_size=n, max_size=n)))
    # volumes in steps of 0.001 (equal or clearly apart): two volumes an ulp apart make vol_z_20 of an otherwise
    # constant window sqrt(19) or 0 depending on the scale, as for the moves above
    v = np.array(draw(st.lists(st.integers(100, 1_000_000), min_size=n, max_size=n))) / 1000.0
    buy = v * np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    return pd.DataFrame(
        {
            "close": c,
            "high": c * (1 + up),
            "low": c * (1 - dn),
            "volume": v,
            "buy_volume": buy,
            "sell_volume": v - buy,
            "vwap": c * (1 + (up - dn) / 3),
            "trade_count": np.arange(n) % 7 + 1,
        }
    )


@settings(max_examples=60, deadline=None)
@given(bar_frames(), st.sampled_from([1e-3, 7.0, 1e4]), st.sampled_from([1e-2, 3.0, 1e5]))
def test_scale_invariance(df, k_price, k_vol):
    """Features are dimensionless: scaling prices and volumes changes nothing but float rounding."""
    base = compute_features_array(df)
    s = df.copy()
    for col in ("close", "high", "low", "vwap"):
        s[col] = s[col] * k_price
    for col in ("volume", "buy_volume", "sell_volume"):
        s[col] = s[col] * k_vol
    scaled = compute_features_array(s)
    np.testing.assert_allclose(scaled[WARM:], base[WARM:], rtol=1e-6, atol=1e-9)
    f = base[WARM:]
    names = list(CORE_V1.features)
    assert np.all((f[:, names.index("rsi_14")] >= 0) & (f[:, names.index("rsi_14")] <= 100))
    assert np.all(np.abs(f[:, names.index("ofi")]) <= 1)
    assert np.all((f[:, names.index("close_pos")] >= 0) & (f[:, names.index("close_pos")] <= 1))
    assert np.all(f[:, names.index("rv_20")] >= 0) and np.all(f[:, names.index("ewma_vol")] >= 0)


GOLDEN_ROW_25 = {
    "ret_1": -0.000723192342352519,
    "ret_5": -0.0111395907080283,
    "ret_15": -0.00697677248564865,
    "rv_20": 0.00302722264712504,
    "ewma_vol": 0.00358526684976438,
    "rsi_14": 31.4594482755158,
    "ema_spread": -0.00229956283188625,
    "vwap_dist_20": -0.00576757155942442,
    "hl_range": 0.00592765460910143,
    "close_pos": 0.60629921259842,
    "vol_z_20": 2.34758829873173,
    "ofi": 0.25,
    "log_trades": 2.19722457733622,
    "skew_20": 0.371505745398442,
}
GOLDEN_ROW_LAST = {
    "ret_1": -0.00790950546842417,
    "ret_5": -0.00226690884089464,
    "ret_15": -0.00535734958967815,
    "rv_20": 0.00468807696421889,
    "ewma_vol": 0.0047710154924958,
    "rsi_14": 54.4984642811915,
    "ema_spread": 0.00562531122230739,
    "vwap_dist_20": -0.00215356945123002,
    "hl_range": 0.0139755317827111,
    "close_pos": 0.204430657771201,
    "vol_z_20": -0.0856237160550694,
    "ofi": 0.25,
    "log_trades": 2.19722457733622,
    "skew_20": -0.109818274159249,
}
