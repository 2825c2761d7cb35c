"""An embedded run (flows.embedded) with its stores on the embedded ClickHouse: the summary, the report and the
stored rows agree (the trading flow in process without a store: tests/unit/flows/test_trading_flow.py)."""

from __future__ import annotations

import json

import pytest

from connectors.history import load_history
from flows.embedded import run_embedded
from flows.settings import Settings
from tests.support import DATA

FILES = [DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"]


@pytest.mark.clickhouse
def test_embedded_run_writes_summary_report_and_stores(tmp_path, capsys, chdb_path):
    # the session's chDB path: one embedded ClickHouse per test process
    s = Settings(var_dir=tmp_path, clickhouse_dsn=f"chdb://{chdb_path}")
    from flows.embedded import EMBEDDED_PIPELINE

    res, rep, report = run_embedded(s, FILES, EMBEDDED_PIPELINE, max_bars=1500)
    printed = capsys.readouterr().out
    for words in (
        "Trades (round trips)",
        "Orders sent",
        "Fills",
        "Net P&L",
        "Max drawdown",
        "Sharpe ratio",
        "VaR breaches",
        "No Telegram signals in this run",
    ):
        assert words in printed
    assert res.counts["ticks"] == 2 * 1500 * 8
    m = {k: v.value for k, v in rep.metrics().items()}
    assert res.counts["orders"] == m["orders"] == len(res.orders) > 0
    assert res.counts["fills"] == len(res.fills) == m["fills"]
    assert 0 < m["trades"] < m["fills"]  # round trips, not fills
    text = report.read_text()
    assert report.exists() and 'data-section="risk"' in text and "Plotly.newPlot" in text
    data = json.loads((tmp_path / "reports" / "embedded-run.json").read_text())
    assert (
        data["metrics"]["ticks"] == 24_000 and "max_drawdown" in data["metrics"] and "var_breaches" in data["metrics"]
    )
    # the last bar has its equity mark: the curve ends at the close of the last decision bar of the data
    assert rep.period[1] == (int(res_last_tick(s, FILES)) // (1800 * 10**9) + 1) * 1800 * 10**9


def res_last_tick(_s, files) -> int:

    return int(load_history(files, ticks_per_bar=8, max_bars=1500).ticks["ts"].max())
