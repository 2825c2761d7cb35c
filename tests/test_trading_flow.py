"""The trading flow in-process: same orders whatever the partitioning and batching; late ticks and
bad input reach the dead-letter sink; the embedded default writes its summary, report and stores."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from bytewax.testing import run_main

from connectors.history import load_history
from connectors.history_source import HistorySource
from connectors.kafka.source import EventBatch
from connectors.memory import CollectSink
from flows.embedded import run_embedded, run_history
from flows.settings import Settings
from flows.trading import Outputs, build_trading_flow
from operators.pipeline import PipelineConfig
from schemas.events import DeadLetter, Tick

from .conftest import DATA

FILES = [DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"]
CFG = PipelineConfig(base_resolution_s=300, bar_resolutions_s=(1800,), decision_resolution_s=1800)


@pytest.fixture(scope="module")
def history():
    return load_history(FILES, ticks_per_bar=8, max_bars=2500)


def test_orders_independent_of_partitions_and_batch_size(history):
    runs = [run_history(history, None, CFG, partitions=p, batch_size=b, progress=False) for p, b in ((1, 5000), (3, 777), (2, 20_000))]
    ref = sorted(runs[0].orders, key=lambda o: o.order_id)
    assert len(ref) > 50 and {o.symbol for o in ref} == {"BTC-USD", "ETH-USD"}
    for r in runs[1:]:
        assert sorted(r.orders, key=lambda o: o.order_id) == ref
        assert sorted(r.fills, key=lambda f: f.fill_id) == sorted(runs[0].fills, key=lambda f: f.fill_id)


class _ListSource(HistorySource):
    """Hand-made EventBatches (one partition) for routing tests."""

    def __init__(self, batches: list[EventBatch]) -> None:  # noqa: D107
        self.batches = batches

    def list_parts(self):
        return ["0"]

    def build_part(self, step_id, for_part, resume_state):
        from bytewax.inputs import StatefulSourcePartition

        batches = self.batches

        class P(StatefulSourcePartition):
            i = 0

            def next_batch(self):
                if self.i >= len(batches):
                    raise StopIteration()
                self.i += 1
                return [batches[self.i - 1]]

            def snapshot(self):
                return self.i

        return P()


def test_late_ticks_and_decode_failures_reach_the_dead_letter_sink():
    t0 = 1_700_000_000_000_000_000

    def tk(i: int, sec: float, sym: str = "BTC-USD") -> Tick:
        return Tick(symbol=sym, ts=t0 + int(sec * 1e9), price=100.0, qty=1.0, side="buy", trade_id=f"x:{i}", venue="x")

    bad = DeadLetter(source_topic="ticks", partition=0, offset=5, error="invalid_json", detail="x", raw=b"{", ts=t0)
    batches = [EventBatch("ticks", 0, 3, [tk(0, 0.1), tk(1, 5.2), tk(2, 9.9, "ETH-USD")]),
               EventBatch("ticks", 0, 6, [tk(3, 2.0), tk(4, 12.0)], [bad])]  # tick 3 is late for 1 s bars
    dead: list = []
    bars: list = []
    cfg = PipelineConfig(base_resolution_s=1, bar_resolutions_s=(60,), decision_resolution_s=60)
    run_main(build_trading_flow(_ListSource(batches), Outputs(dead=[CollectSink(dead)], bars=[CollectSink(bars)]), cfg))
    reasons = sorted(d.error for d in dead)
    assert reasons == ["invalid_json", "late_tick"]
    late = next(d for d in dead if d.error == "late_tick")
    assert b'"x:3"' in late.raw and late.stage == "bars"
    # ETH's window closed through the partition watermark although ETH had no further tick
    assert any(b.symbol == "ETH-USD" and b.resolution_s == 1 for b in bars)


@pytest.mark.clickhouse
def test_embedded_run_writes_summary_report_and_stores(tmp_path, capsys, chdb_path):
    # the session's chDB path: one embedded ClickHouse per test process
    s = Settings(var_dir=tmp_path, clickhouse_dsn=f"chdb://{chdb_path}")
    from flows.embedded import EMBEDDED_PIPELINE

    res, summary, report = run_embedded(s, FILES, EMBEDDED_PIPELINE, max_bars=1500)
    printed = capsys.readouterr().out
    for word in ("ticks", "bars", "signals", "orders", "fills", "P&L", "max drawdown", "Sharpe", "VaR 99% breaches"):
        assert word in printed
    assert res.counts["ticks"] == 2 * 1500 * 8
    assert res.counts["orders"] == summary["orders"] == len(res.orders) > 0
    assert res.counts["fills"] == len(res.fills)
    assert report.exists() and "<svg" in report.read_text()
    ElementTree.fromstring(report.read_text())  # well-formed
    data = json.loads((tmp_path / "reports" / "embedded-run.json").read_text())
    assert data["ticks"] == 24_000 and "max_drawdown_frac" in data and "n_var_breaches" in data
