"""`levibot run` on its embedded default and `levibot backtest`: history through the flow.

No service is needed: history is replayed in-process through the same trading flow the live path
runs (a Kafka-shaped source of tick batches), and everything it emits is stored in ClickHouse
embedded through chDB under ``<var>/clickhouse``. The run ends with a tear sheet (``flows.reporting``): HTML, JSON and a terminal summary.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bytewax.testing import run_main
from tqdm import tqdm

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrate import migrate
from connectors.clickhouse.sink import ClickHouseSink
from connectors.history import History, load_history
from connectors.history_source import HistorySource
from connectors.memory import CollectSink
from flows.settings import Settings
from flows.trading import Outputs, build_trading_flow
from operators.pipeline import PipelineConfig
from operators.risk import RiskLimits
from schemas.events import Alert, Bar, DeadLetter, FeatureVector, Fill, Order, RiskDecision, Score, Tick

DATABASE = "levibot"

#: The bundled history is 30-minute bars: the default decides on 30-minute bars rebuilt from its ticks.
#: Synthetic ticks come every 225 s, so the base bars are 5 minutes (1 s or 1 min bars of ticks 225 s apart would
#: each hold one tick: 1.1 million stored copies of the ticks table, and the same decisions, orders and fills);
#: a price up to an hour old is still current; parents are sliced over 15 minutes in 5-minute children.
EMBEDDED_PIPELINE = PipelineConfig(
    base_resolution_s=300,
    bar_resolutions_s=(1800,),
    decision_resolution_s=1800,
    trend_entry=0.01,
    trend_exit=0.002,
    limits=RiskLimits(max_price_age_s=3600.0),
    twap_horizon_s=900.0,
    twap_slice_s=300.0,
)


@dataclass
class RunResult:
    """What an in-process run produced: stored counts, the collected orders/fills/decisions, the accounts' equity
    marks ``(account, ts ns, equity quote)`` and their closing figures (``AccountStage.summary``), the model scores,
    alerts and dead letters (for the report)."""

    counts: dict[str, int]
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    marks: list[tuple[str, int, float]] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    ticks: int = 0
    signals: int = 0
    scores: list[Score] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def run_history(
    history: History,
    ch_dsn: str | None,
    cfg: PipelineConfig = EMBEDDED_PIPELINE,
    *,
    partitions: int = 2,
    batch_size: int = 5000,
    progress: bool = True,
    database: str = DATABASE,
    metrics: Any | None = None,
) -> RunResult:
    """Run the trading flow over ``history`` in this process; store into ClickHouse when ``ch_dsn`` is given.

    The universe is the history's symbols (``cfg.symbols`` is replaced by them)."""
    t0 = time.monotonic()
    cfg = replace(cfg, symbols=tuple(sorted(set(history.ticks["symbol"].unique().tolist()))))
    orders: list[Order] = []
    fills: list[Fill] = []
    marks: list = []
    decisions: list = []
    accounts: list = []
    scores: list = []
    alerts: list = []
    dead: list = []
    out = Outputs(
        orders=[CollectSink(orders)],
        fills=[CollectSink(fills)],
        marks=[CollectSink(marks)],
        decisions=[CollectSink(decisions)],
        accounts=[CollectSink(accounts)],
        scores=[CollectSink(scores)],
        alerts=[CollectSink(alerts)],
        dead=[CollectSink(dead)],
    )
    if ch_dsn:
        migrate(connect(ch_dsn), database)
        for kind, table, typ in (
            ("tick_rows", "ticks", Tick),
            ("bar_rows", "bars", Bar),
            ("features", "features", FeatureVector),
            ("decisions", "risk_decisions", RiskDecision),
            ("orders", "orders", Order),
            ("fills", "fills", Fill),
            ("dead", "dead_letters", DeadLetter),
            ("scores", "scores", Score),
            ("alerts", "alerts", Alert),
        ):
            getattr(out, kind).append(ClickHouseSink(ch_dsn, table, typ, database=database))
    bar = tqdm(total=len(history), unit="tick", unit_scale=True, desc="levibot", disable=not progress)
    flow = build_trading_flow(
        HistorySource(history.ticks, partitions=partitions, batch_size=batch_size),
        out,
        cfg,
        progress=bar.update,
        metrics=metrics,
    )
    run_main(flow)
    bar.close()
    counts: dict[str, int] = {}
    if ch_dsn:
        client = connect(ch_dsn)
        for t in ("ticks", "bars", "features", "scores", "alerts", "risk_decisions", "orders", "fills", "dead_letters"):
            counts[t] = client.query(f"SELECT count() FROM {database}.{t} FINAL").result_rows[0][0]
    return RunResult(
        counts,
        orders,
        fills,
        marks,
        decisions,
        accounts,
        time.monotonic() - t0,
        len(history),
        scores=scores,
        alerts=alerts,
        dead=dead,
    )


def _serve_metrics(settings: Settings) -> Any | None:
    """Serve /metrics while the run lasts (LEVIBOT_METRICS_PORT, 0 = off); a busy port only costs the endpoint."""
    from connectors.metrics import FlowMetrics, start_metrics_server

    if not settings.metrics_port:
        return None
    try:
        port = start_metrics_server(settings.metrics_port)
        print(f"metrics: http://127.0.0.1:{port}/metrics", file=sys.stderr)
    except OSError as exc:
        print(f"metrics endpoint not started (port {settings.metrics_port}: {exc}); the run goes on", file=sys.stderr)
    return FlowMetrics()


def run_embedded(
    settings: Settings,
    files: list[Path],
    cfg: PipelineConfig = EMBEDDED_PIPELINE,
    max_bars: int | None = None,
    report_dir: Path | None = None,
) -> tuple[RunResult, Any, Path]:
    """`levibot run` with no configuration: bundled history -> flow -> embedded ClickHouse, and a tear sheet
    (``<var>/reports/embedded-run.html`` and ``.json``). Returns the run, the report and the HTML path."""
    from flows.reporting import publish, run_report

    history = load_history(files, ticks_per_bar=8, max_bars=max_bars)
    metrics = _serve_metrics(settings)
    res = run_history(history, settings.clickhouse_dsn_resolved, cfg, progress=sys.stderr.isatty(), metrics=metrics)
    out_dir = report_dir or settings.var_dir / "reports"
    rep = run_report(
        res,
        history,
        cfg.decision_resolution_s,
        kind="run",
        title="LeviBot Stream — embedded run (bundled BTC/ETH history)",
    )
    html_path, _ = publish(rep, out_dir, "embedded-run")
    print(f"  store    {settings.clickhouse_dsn_resolved}")
    return res, rep, html_path
