"""`levibot run` on its embedded default (DESIGN §6) and `levibot backtest`: history through the flow.

No service is needed: history is replayed in-process through the same trading flow the live path
runs (a Kafka-shaped source of tick batches), and everything it emits is stored in ClickHouse
embedded through chDB under ``<var>/clickhouse``. The run ends with a summary and a report.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from bytewax.testing import run_main
from tqdm import tqdm

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrate import migrate
from connectors.clickhouse.sink import ClickHouseSink
from connectors.history import History, load_history
from connectors.history_source import HistorySource
from connectors.memory import CollectSink
from connectors.report import write_html_report, write_json_summary
from flows.settings import Settings
from flows.trading import Outputs, build_trading_flow
from operators.pipeline import PipelineConfig
from operators.performance import summarize
from operators.portfolio import combine_marks
from operators.risk import RiskLimits
from operators.risk.backtest import rolling_forecasts
from schemas.events import Alert, Bar, DeadLetter, FeatureVector, Fill, Order, RiskDecision, Score, Tick

DATABASE = "levibot"

#: The bundled history is 30-minute bars: the default decides on 30-minute bars rebuilt from its ticks.
#: Synthetic ticks come every 225 s, so a price up to an hour old is still current; parents are sliced over
#: 15 minutes in 5-minute children.
EMBEDDED_PIPELINE = PipelineConfig(base_resolution_s=1, bar_resolutions_s=(60, 300, 1800), decision_resolution_s=1800,
                                   trend_entry=0.01, trend_exit=0.002, limits=RiskLimits(max_price_age_s=3600.0),
                                   twap_horizon_s=900.0, twap_slice_s=300.0)


@dataclass
class RunResult:
    """What an in-process run produced: stored counts, the collected orders/fills/decisions, the accounts' equity
    marks ``(account, ts ns, equity quote)`` and their closing figures (``AccountStage.summary``)."""

    counts: dict[str, int]
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    marks: list[tuple[str, int, float]] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    ticks: int = 0
    signals: int = 0


def run_history(history: History, ch_dsn: str | None, cfg: PipelineConfig = EMBEDDED_PIPELINE, *,
                partitions: int = 2, batch_size: int = 5000, progress: bool = True,
                database: str = DATABASE, metrics: Any | None = None) -> RunResult:
    """Run the trading flow over ``history`` in this process; store into ClickHouse when ``ch_dsn`` is given.

    The universe is the history's symbols (``cfg.symbols`` is replaced by them)."""
    t0 = time.monotonic()
    cfg = replace(cfg, symbols=tuple(sorted(set(history.ticks["symbol"].unique().tolist()))))
    orders: list[Order] = []
    fills: list[Fill] = []
    marks: list = []
    decisions: list = []
    accounts: list = []
    out = Outputs(orders=[CollectSink(orders)], fills=[CollectSink(fills)], marks=[CollectSink(marks)],
                  decisions=[CollectSink(decisions)], accounts=[CollectSink(accounts)])
    if ch_dsn:
        migrate(connect(ch_dsn), database)
        for kind, table, typ in (("ticks", "ticks", Tick), ("bars", "bars", Bar), ("features", "features", FeatureVector),
                                 ("decisions", "risk_decisions", RiskDecision), ("orders", "orders", Order),
                                 ("fills", "fills", Fill), ("dead", "dead_letters", DeadLetter),
                                 ("scores", "scores", Score), ("alerts", "alerts", Alert)):
            getattr(out, kind).append(ClickHouseSink(ch_dsn, table, typ, database=database))
    bar = tqdm(total=len(history), unit="tick", unit_scale=True, desc="levibot", disable=not progress)
    flow = build_trading_flow(HistorySource(history.ticks, partitions=partitions, batch_size=batch_size), out, cfg,
                              progress=bar.update, metrics=metrics)
    run_main(flow)
    bar.close()
    counts: dict[str, int] = {}
    if ch_dsn:
        client = connect(ch_dsn)
        for t in ("ticks", "bars", "features", "scores", "alerts", "risk_decisions", "orders", "fills", "dead_letters"):
            counts[t] = client.query(f"SELECT count() FROM {database}.{t} FINAL").result_rows[0][0]
    return RunResult(counts, orders, fills, marks, decisions, accounts, time.monotonic() - t0, len(history))


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


def summarize_run(res: RunResult, var_window: int = 500, var_alpha: float = 0.99) -> dict:
    """Performance summary of a run: the portfolio equity curve, its ratios, and a rolling historical
    VaR backtest of the portfolio's own returns (breaches with Kupiec's test)."""
    ts, equity = combine_marks(res.marks)
    forecasts = None
    if len(equity) > var_window + 1:
        returns = equity[1:] / equity[:-1] - 1.0
        var, _ = rolling_forecasts(returns, var_window, var_alpha, "historical")
        forecasts = np.concatenate([np.full(var_window, np.nan), var])
    summary = summarize(ts, equity, fills=res.fills, var_forecasts=forecasts, var_alpha=var_alpha) if len(equity) > 1 else {}
    out = {"ticks": res.ticks, **{f"stored_{k}": v for k, v in res.counts.items()},
           "orders": len(res.orders), "fills": len(res.fills), "signals": res.signals,
           "pnl_quote": float(equity[-1] - equity[0]) if len(equity) else 0.0, **summary}
    out["accounts"] = sorted(res.accounts, key=lambda a: a["account"])
    return out


def run_embedded(settings: Settings, files: list[Path], cfg: PipelineConfig = EMBEDDED_PIPELINE,
                 max_bars: int | None = None, report_dir: Path | None = None) -> tuple[RunResult, dict, Path]:
    """`levibot run` with no configuration: bundled history -> flow -> embedded ClickHouse, a summary and a report."""
    history = load_history(files, ticks_per_bar=8, max_bars=max_bars)
    metrics = _serve_metrics(settings)
    res = run_history(history, settings.clickhouse_dsn_resolved, cfg, progress=sys.stderr.isatty(), metrics=metrics)
    summary = summarize_run(res)
    ts, equity = combine_marks(res.marks)
    out_dir = report_dir or settings.var_dir / "reports"
    flat, tables = report_parts(summary)
    report = write_html_report(out_dir / "embedded-run.html", title="LeviBot Stream — embedded run (bundled BTC/ETH history)",
                               summary=flat, equity_ts=ts, equity=equity, tables=tables)
    write_json_summary(out_dir / "embedded-run.json", summary)
    print(render_summary(summary, res, len(history.rejects)))
    print(f"  report              {report}")
    print(f"  store               {settings.clickhouse_dsn_resolved}")
    return res, summary, report


def report_parts(summary: dict) -> tuple[dict, dict[str, list[dict]]]:
    """The summary without its nested account figures, and one table per account (positions and P&L by symbol,
    quote currency) for the HTML report."""
    flat = {k: v for k, v in summary.items() if k != "accounts"}
    tables: dict[str, list[dict]] = {}
    for acc in summary.get("accounts", []):
        flat[f"account {acc['account']}: equity"] = acc["equity"]
        flat[f"account {acc['account']}: fees"] = acc["fees"]
        tables[f"Account {acc['account']} by symbol (quote currency)"] = [
            {"symbol": sym, "position": r["position"], "average price": r["avg_price"], "mark": r["mark"],
             "realised P&L": r["realised_pnl"], "open P&L": r["unrealised_pnl"], "fees": r["fees"],
             "net P&L": r["net_pnl"], "traded notional": r["traded"]} for sym, r in acc["by_symbol"].items()]
    return flat, tables


def render_summary(summary: dict, res: RunResult, rejected_rows: int) -> str:
    """The end-of-run summary as printed text."""
    def g(key: str, fmt: str = "{:,.4f}") -> str:
        v = summary.get(key)
        return "n/a" if v is None or (isinstance(v, float) and v != v) else fmt.format(v)

    lines = [
        f"\nLeviBot Stream — embedded run: {res.ticks:,} ticks in {res.seconds:.1f}s ({res.ticks / max(res.seconds, 1e-9):,.0f}/s)",
        f"  ticks               {res.ticks:>14,}",
        f"  rejected input rows {rejected_rows:>14,}",
        f"  bars                {summary.get('stored_bars', 0):>14,}",
        f"  signals             {res.signals:>14,}",
        f"  model scores        {summary.get('stored_scores', 0):>14,}",
        f"  drift alerts        {summary.get('stored_alerts', 0):>14,}",
        f"  orders              {len(res.orders):>14,}",
        f"  fills               {len(res.fills):>14,}",
        f"  P&L (quote)         {g('pnl_quote', '{:,.2f}'):>14}",
        f"  total return        {g('total_return_frac', '{:.2%}'):>14}",
        f"  max drawdown        {g('max_drawdown_frac', '{:.2%}'):>14}",
        f"  Sharpe (ann.)       {g('sharpe', '{:.2f}'):>14}",
        f"  VaR 99% breaches    {g('n_var_breaches', '{:,}'):>14} of {g('n_var_forecasts', '{:,}')} "
        f"(Kupiec p = {g('kupiec_p_value', '{:.3f}')})",
    ]
    for acc in summary.get("accounts", []):
        lines += render_account(acc)
    return "\n".join(lines)


def render_account(acc: dict) -> list[str]:
    """An account's closing figures as printed lines (money in quote currency)."""
    lines = [f"\n  Account {acc['account']!r}: equity {acc['equity']:,.2f} (started with {acc['initial_capital']:,.2f}), "
             f"cash {acc['cash']:,.2f}",
             f"    net P&L {acc['pnl']:+,.2f} = realised {acc['realised_pnl']:+,.2f} + open {acc['unrealised_pnl']:+,.2f} "
             f"- fees {acc['fees']:,.2f}",
             f"    risk decisions: {acc['decisions']['approved']:,} approved, {acc['decisions']['resized']:,} resized, "
             f"{acc['decisions']['rejected']:,} rejected; {acc['open_orders']:,} orders still open",
             "    symbol         position        avg price       net P&L          fees"]
    for sym, row in acc["by_symbol"].items():
        lines.append(f"    {sym:<12} {row['position']:>10,.4f} {row['avg_price']:>16,.2f} {row['net_pnl']:>+13,.2f} "
                     f"{row['fees']:>13,.2f}")
    return lines
