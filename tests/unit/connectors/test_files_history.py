"""File sources and the history loader, on the bundled real bars and on small hand-made files."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from connectors.files import read_bars, read_ticks
from connectors.history import bar_resolution_s, load_history
from tests.support import DATA

BTC = DATA / "BTC-30m.csv.gz"
ETH = DATA / "ETH-30m.csv.gz"


def test_bundled_bars_read_by_name_not_position():
    loaded = read_bars(BTC)
    df = loaded.frame
    assert len(df) + len(loaded.rejects) == 35_019  # the README's row count
    assert set(df["symbol"]) == {"BTC-USD"}
    # first row of the file: Date, open, CLOSE, high, low, volume = 4367.1, 4386.3, 4387.5, 4365.0
    first = df.iloc[0]
    assert (first["open"], first["close"], first["high"], first["low"]) == (4367.1, 4386.3, 4387.5, 4365.0)
    assert first["ts"] == pd.Timestamp("2017-10-01T00:00:00Z").value
    assert df["ts"].is_monotonic_increasing
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert bar_resolution_s(df["ts"].to_numpy()) == 1800


def test_bad_bar_rows_are_rejected_with_reasons(tmp_path):
    p = tmp_path / "bars.csv"
    p.write_text(
        "ts,open,high,low,close,volume\n"
        "2020-01-01T00:00:00Z,10,11,9,10.5,3\n"
        "2020-01-01T00:01:00Z,10,9,11,10.5,3\n"  # high < low
        "not-a-date,10,11,9,10.5,3\n"
        "2020-01-01T00:03:00Z,nan,11,9,10.5,3\n"
        "2020-01-01T00:04:00Z,10,11,9,10.5,-1\n"
        "2020-01-01T00:02:00Z,10,12,9,11,1\n"
    )
    loaded = read_bars(p, symbol="ABC")
    assert len(loaded.frame) == 2 and loaded.frame["ts"].is_monotonic_increasing
    reasons = dict(zip(loaded.rejects["row"], loaded.rejects["reason"], strict=True))
    assert set(reasons) == {3, 4, 5, 6}
    assert "OHLC" in reasons[3] and "timestamp" in reasons[4] and "price" in reasons[5] and "volume" in reasons[6]


def test_ticks_csv_and_parquet_agree(tmp_path):
    df = pd.DataFrame(
        {
            "symbol": ["BTC-USD", "ETH-USD", "BTC-USD", "bad sym"],
            "ts": [1_600_000_000_002, 1_600_000_000_001, 1_600_000_000_000, 1_600_000_000_003],  # ms epoch
            "price": [10.0, 20.0, 11.0, 5.0],
            "qty": [1.0, 2.0, 0.0, 1.0],
            "side": ["buy", "SELL", None, "buy"],
        }
    )
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    a, b = read_ticks(tmp_path / "t.csv"), read_ticks(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.frame["ts"].tolist() == [1_600_000_000_000_000_000, 1_600_000_000_001_000_000, 1_600_000_000_002_000_000]
    assert a.frame["side"].tolist() == ["unknown", "sell", "buy"]
    assert a.rejects["reason"].tolist() == ["bad symbol"]


def test_missing_file_and_columns_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_bars(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_bars(tmp_path / "x.csv", symbol="X")


def test_history_merges_symbols_in_event_time_and_is_deterministic():
    h1 = load_history([BTC, ETH], ticks_per_bar=8, max_bars=200)
    h2 = load_history([ETH, BTC], ticks_per_bar=8, max_bars=200)
    assert len(h1) == 2 * 200 * 8
    ts = h1.ticks["ts"].to_numpy()
    assert np.all(np.diff(ts) >= 0)
    assert h1.ticks["trade_id"].is_unique
    # per symbol, the order and ids do not depend on the order of the inputs
    for sym in ("BTC-USD", "ETH-USD"):
        a = h1.ticks[h1.ticks.symbol == sym]["trade_id"].tolist()
        b = h2.ticks[h2.ticks.symbol == sym]["trade_id"].tolist()
        assert a == b
    assert h1.ticks["synthetic"].all()


def test_history_volume_is_conserved_per_bar():
    bars = read_bars(BTC).frame.head(50)
    h = load_history([BTC], ticks_per_bar=6, max_bars=50)
    assert h.ticks["qty"].sum() == pytest.approx(bars["volume"].sum(), rel=1e-12)
    assert h.ticks["price"].max() == bars["high"].max() and h.ticks["price"].min() == bars["low"].min()


def test_gzip_tick_file(tmp_path):
    p = tmp_path / "t.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("symbol,ts,price,qty\nBTC-USD,2021-01-01T00:00:00Z,1.5,2\n")
    loaded = read_ticks(p)
    assert loaded.frame["trade_id"].tolist() == ["BTC-USD-1609459200000000000-0"]
