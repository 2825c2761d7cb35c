"""Grafana dashboards as code: ``python deploy/grafana/build.py`` writes deploy/grafana/dashboards/*.json.

``--check`` writes nothing and exits 1 when a JSON file differs from what this script generates (the tests run
it). Each dashboard links to the operator console (``levibot api``, docs/api.md): the hidden ``console`` variable
holds its address (default ``http://127.0.0.1:8700/console``). Set it per deployment with ``--console-url URL
--out DIR`` (dashboards generated for that address into DIR, mounted instead of these), or per link with Grafana's
``?var-console=URL``. Every query uses only metrics from ``connectors/metrics/`` (or recording rules of
``deploy/prometheus/rules``); ``tests/repo/test_deploy.py`` parses each one with ``promtool`` and checks the names.

The dashboards (uid, title):
  levibot-pipeline   Pipeline health: throughput, latency, lag, dead letters, sinks, recovery
  levibot-trading    Trading: equity, P&L, drawdown, positions, orders and fills
  levibot-risk       Risk: VaR and CVaR per symbol and portfolio, limits, rejections, kill switch
  levibot-models     Models: score distributions, calibration, drift and retrain requests
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
INSTANCE = 'instance=~"$instance"'
SCHEMA_VERSION = 39
#: where the operator console answers by default (``levibot api`` on its default port; docs/api.md)
DEFAULT_CONSOLE_URL = "http://127.0.0.1:8700/console"


@dataclass
class Target:
    """One PromQL query of a panel; ``legend`` is a Grafana legend format (``{{label}}``)."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    """A panel: ``kind`` is a Grafana panel type (timeseries, stat, gauge, bargauge, heatmap, table)."""

    title: str
    kind: str
    targets: list[Target]
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    thresholds: list[tuple[float | None, str]] = field(default_factory=lambda: [(None, "green")])
    stack: bool = False
    min: float | None = None
    max: float | None = None
    mappings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Row:
    title: str
    panels: list[Panel]


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[Row]
    tags: tuple[str, ...] = ("levibot",)
    #: the console page that shows this dashboard's state (path under the console; "" the overview)
    console_page: str = ""
    console_title: str = "Operator console"


def _panel_json(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    custom: dict[str, Any] = {}
    if p.kind == "timeseries":
        custom = {
            "lineWidth": 1,
            "fillOpacity": 10 if not p.stack else 30,
            "showPoints": "never",
            "stacking": {"mode": "normal" if p.stack else "none", "group": "A"},
        }
    defaults: dict[str, Any] = {
        "unit": p.unit,
        "custom": custom,
        "thresholds": {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in p.thresholds]},
        "mappings": p.mappings,
    }
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    out: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": p.width, "h": p.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": t.expr,
                "legendFormat": t.legend,
                "instant": t.instant,
                "range": not t.instant,
            }
            for i, t in enumerate(p.targets)
        ],
    }
    if p.kind == "timeseries":
        out["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif p.kind in ("stat", "gauge", "bargauge"):
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif p.kind == "heatmap":
        out["options"] = {"calculate": False, "yAxis": {"unit": p.unit}, "color": {"scheme": "Oranges"}}
        for t in out["targets"]:
            t["format"] = "heatmap"
    return out


def render(d: Dashboard, console_url: str = DEFAULT_CONSOLE_URL) -> dict[str, Any]:
    """The dashboard as Grafana JSON (provisioned: no ``id``, fixed ``uid``), linking to the console at
    ``console_url``."""
    console_url = console_url.rstrip("/")
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row in d.rows:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        pid, y, x, row_h = pid + 1, y + 1, 0, 0
        for p in row.panels:
            if x + p.width > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel_json(p, pid, x, y))
            pid, x, row_h = pid + 1, x + p.width, max(row_h, p.height)
        y += row_h
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": list(d.tags),
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "label": "process",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": "label_values(levibot_process_info, instance)", "refId": "instance"},
                    "definition": "label_values(levibot_process_info, instance)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "refresh": 2,
                    "sort": 1,
                },
                {
                    # the operator console's address, used by the links below (hidden; ?var-console=URL overrides it)
                    "name": "console",
                    "label": "operator console",
                    "type": "textbox",
                    "hide": 2,
                    "query": console_url,
                    "current": {"selected": False, "text": console_url, "value": console_url},
                    "options": [{"selected": True, "text": console_url, "value": console_url}],
                },
            ]
        },
        "annotations": {
            "list": [
                {
                    "name": "Alerts",
                    "datasource": DATASOURCE,
                    "enable": True,
                    "iconColor": "red",
                    "expr": 'ALERTS{alertname=~"Levibot.*", alertstate="firing"}',
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{summary}}",
                    "step": "60s",
                }
            ]
        },
        "links": [
            {"title": "LeviBot dashboards", "type": "dashboards", "tags": ["levibot"], "asDropdown": True},
            {
                "title": d.console_title,
                "type": "link",
                "url": "${console}" + d.console_page,
                "tooltip": "State and actions (positions, risk, halt) in the LeviBot operator console",
                "icon": "external link",
                "targetBlank": True,
                "includeVars": False,
                "keepTime": False,
            },
        ],
        "panels": panels,
    }


def _rate(metric: str, by: str, extra: str = "") -> str:
    sel = f"{INSTANCE}{', ' + extra if extra else ''}"
    return f"sum by ({by}) (rate({metric}{{{sel}}}[5m]))"


def _quantile(q: float, stage_sel: str, metric: str = "levibot_stage_latency_seconds", by: str = "stage") -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) "
        f"(rate({metric}_bucket{{{INSTANCE}{', ' + stage_sel if stage_sel else ''}}}[5m])))"
    )


RED_AT = lambda v: [(None, "green"), (v, "red")]  # noqa: E731


def dashboards() -> list[Dashboard]:
    """The four dashboards."""
    pipeline = Dashboard(
        "levibot-pipeline",
        "LeviBot — pipeline health",
        "Throughput, latency, Kafka lag, dead letters, sinks and recovery of every flow process.",
        [
            Row(
                "Throughput",
                [
                    Panel(
                        "Events in per second",
                        "timeseries",
                        [Target(_rate("levibot_events_in_total", "stage, topic"), "{{stage}} {{topic}}")],
                        unit="ops",
                    ),
                    Panel(
                        "Events out per second",
                        "timeseries",
                        [Target(_rate("levibot_events_out_total", "stage, topic"), "{{stage}} → {{topic}}")],
                        unit="ops",
                    ),
                    Panel(
                        "Seconds since last input batch",
                        "stat",
                        [
                            Target(
                                f"time() - max by (instance) (levibot_last_batch_timestamp_seconds{{{INSTANCE}}})",
                                "{{instance}}",
                                instant=True,
                            )
                        ],
                        unit="s",
                        width=8,
                        height=6,
                        thresholds=RED_AT(300),
                    ),
                    Panel(
                        "Event-time delay of the newest tick",
                        "timeseries",
                        [
                            Target(
                                f"time() - max by (topic) (levibot_last_event_timestamp_seconds{{{INSTANCE}}})",
                                "{{topic}}",
                            )
                        ],
                        unit="s",
                        width=8,
                        height=6,
                    ),
                    Panel(
                        "Messages per input batch (p50, p99)",
                        "timeseries",
                        [
                            Target(_quantile(0.5, "", "levibot_batch_size_messages", "topic"), "p50 {{topic}}"),
                            Target(_quantile(0.99, "", "levibot_batch_size_messages", "topic"), "p99 {{topic}}"),
                        ],
                        width=8,
                        height=6,
                    ),
                ],
            ),
            Row(
                "Latency",
                [
                    Panel(
                        "Stage latency p50 / p99",
                        "timeseries",
                        [Target(_quantile(0.5, ""), "p50 {{stage}}"), Target(_quantile(0.99, ""), "p99 {{stage}}")],
                        unit="s",
                    ),
                    Panel(
                        "Decision latency heatmap",
                        "heatmap",
                        [
                            Target(
                                f'sum by (le) (rate(levibot_stage_latency_seconds_bucket{{{INSTANCE}, stage="decision"}}[5m]))',
                                "{{le}}",
                            )
                        ],
                        unit="s",
                    ),
                ],
            ),
            Row(
                "Kafka and dead letters",
                [
                    Panel(
                        "Consumer lag by topic",
                        "timeseries",
                        [Target(f"sum by (topic) (levibot_kafka_consumer_lag_messages{{{INSTANCE}}})", "{{topic}}")],
                        thresholds=RED_AT(10000),
                    ),
                    Panel(
                        "Consumer lag by partition",
                        "bargauge",
                        [
                            Target(
                                f"max by (topic, partition) (levibot_kafka_consumer_lag_messages{{{INSTANCE}}})",
                                "{{topic}}/{{partition}}",
                                instant=True,
                            )
                        ],
                        thresholds=RED_AT(10000),
                    ),
                    Panel(
                        "Dead letters per second by reason",
                        "timeseries",
                        [
                            Target(
                                _rate("levibot_dead_letters_total", "reason, source_topic"),
                                "{{reason}} ({{source_topic}})",
                            )
                        ],
                        unit="ops",
                        stack=True,
                    ),
                    Panel(
                        "Dead-letter ratio of the input",
                        "stat",
                        [Target("levibot:dead_letter_ratio:rate5m", "ratio", instant=True)],
                        unit="percentunit",
                        thresholds=RED_AT(0.01),
                    ),
                    Panel(
                        "Late ticks per second",
                        "timeseries",
                        [Target(_rate("levibot_late_ticks_total", "symbol"), "{{symbol}}")],
                        unit="ops",
                    ),
                ],
            ),
            Row(
                "Sinks and resilience",
                [
                    Panel(
                        "Sink write latency p99",
                        "timeseries",
                        [Target(_quantile(0.99, "", "levibot_sink_write_seconds", "sink"), "{{sink}}")],
                        unit="s",
                    ),
                    Panel(
                        "Sink rows and failures per second",
                        "timeseries",
                        [
                            Target(_rate("levibot_sink_rows_total", "sink"), "rows {{sink}}"),
                            Target(_rate("levibot_sink_failures_total", "sink"), "failures {{sink}}"),
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Circuit breakers",
                        "stat",
                        [
                            Target(
                                f"max by (breaker) (levibot_circuit_breaker_state{{{INSTANCE}}})",
                                "{{breaker}}",
                                instant=True,
                            )
                        ],
                        width=8,
                        thresholds=[(None, "green"), (1, "orange"), (2, "red")],
                        mappings=[
                            {
                                "type": "value",
                                "options": {"0": {"text": "closed"}, "1": {"text": "half-open"}, "2": {"text": "open"}},
                            }
                        ],
                    ),
                    Panel(
                        "Committed recovery epoch",
                        "timeseries",
                        [Target(f"max by (instance) (levibot_recovery_committed_epoch{{{INSTANCE}}})", "{{instance}}")],
                        width=8,
                    ),
                    Panel(
                        "Snapshots, resumes and restarts (1h)",
                        "stat",
                        [
                            Target(
                                f"sum(increase(levibot_recovery_snapshots_total{{{INSTANCE}}}[1h]))",
                                "snapshots",
                                instant=True,
                            ),
                            Target(
                                f"sum(increase(levibot_recovery_resumes_total{{{INSTANCE}}}[1h]))",
                                "resumes",
                                instant=True,
                            ),
                            Target(
                                f"sum(increase(levibot_process_restarts_total{{{INSTANCE}}}[1h]))",
                                "restarts",
                                instant=True,
                            ),
                            Target('sum(up{job=~"levibot.*"})', "processes up", instant=True),
                        ],
                        width=8,
                    ),
                ],
            ),
        ],
    )

    trading = Dashboard(
        "levibot-trading",
        "LeviBot — trading",
        "Equity, P&L and drawdown, positions, orders and fills.",
        [
            Row(
                "Performance",
                [
                    Panel(
                        "Portfolio equity",
                        "timeseries",
                        [Target(f"sum(levibot_equity_quote{{{INSTANCE}}})", "equity")],
                        unit="currencyUSD",
                    ),
                    Panel(
                        "P&L by symbol",
                        "timeseries",
                        [Target(f"sum by (symbol) (levibot_pnl_quote{{{INSTANCE}}})", "{{symbol}}")],
                        unit="currencyUSD",
                    ),
                    Panel(
                        "Total P&L",
                        "stat",
                        [Target(f"sum(levibot_pnl_quote{{{INSTANCE}}})", "P&L", instant=True)],
                        unit="currencyUSD",
                        width=8,
                        height=6,
                        thresholds=[(None, "red"), (0, "green")],
                    ),
                    Panel(
                        "Drawdown by symbol",
                        "timeseries",
                        [Target(f"max by (symbol) (levibot_drawdown_ratio{{{INSTANCE}}})", "{{symbol}}")],
                        unit="percentunit",
                        width=8,
                        height=6,
                        min=0,
                    ),
                    Panel(
                        "Portfolio drawdown from the 1-day peak",
                        "stat",
                        [
                            Target(
                                f"1 - sum(levibot_equity_quote{{{INSTANCE}}}) / "
                                f"max_over_time(sum(levibot_equity_quote{{{INSTANCE}}})[1d:5m])",
                                "drawdown",
                                instant=True,
                            )
                        ],
                        unit="percentunit",
                        width=8,
                        height=6,
                        thresholds=[(None, "green"), (0.1, "orange"), (0.2, "red")],
                    ),
                ],
            ),
            Row(
                "Positions",
                [
                    Panel(
                        "Position by symbol",
                        "timeseries",
                        [Target(f"sum by (symbol) (levibot_position_qty{{{INSTANCE}}})", "{{symbol}}")],
                    ),
                    Panel(
                        "Current positions",
                        "bargauge",
                        [Target(f"sum by (symbol) (levibot_position_qty{{{INSTANCE}}})", "{{symbol}}", instant=True)],
                    ),
                ],
            ),
            Row(
                "Orders and fills",
                [
                    Panel(
                        "Orders per minute by strategy and side",
                        "timeseries",
                        [Target(f"60 * {_rate('levibot_orders_total', 'strategy, side')}", "{{strategy}} {{side}}")],
                        unit="opm",
                        stack=True,
                    ),
                    Panel(
                        "Fills per minute by symbol",
                        "timeseries",
                        [
                            Target(
                                f"60 * {_rate('levibot_fills_total', 'symbol, liquidity')}", "{{symbol}} {{liquidity}}"
                            )
                        ],
                        unit="opm",
                        stack=True,
                    ),
                    Panel(
                        "Filled notional per hour",
                        "timeseries",
                        [
                            Target(
                                f"sum by (symbol) (increase(levibot_fill_notional_quote_total{{{INSTANCE}}}[1h]))",
                                "{{symbol}}",
                            )
                        ],
                        unit="currencyUSD",
                        width=8,
                    ),
                    Panel(
                        "Fees per hour",
                        "timeseries",
                        [
                            Target(
                                f"sum by (symbol) (increase(levibot_fees_quote_total{{{INSTANCE}}}[1h]))", "{{symbol}}"
                            )
                        ],
                        unit="currencyUSD",
                        width=8,
                    ),
                    Panel(
                        "Slippage p50 / p95",
                        "timeseries",
                        [
                            Target(_quantile(0.5, "", "levibot_fill_slippage_bps", "symbol"), "p50 {{symbol}}"),
                            Target(_quantile(0.95, "", "levibot_fill_slippage_bps", "symbol"), "p95 {{symbol}}"),
                        ],
                        width=8,
                    ),
                ],
            ),
        ],
    )

    risk = Dashboard(
        "levibot-risk",
        "LeviBot — risk",
        "VaR and CVaR per symbol and for the portfolio, limit use, rejections and the kill switch.",
        [
            Row(
                "Kill switch and limits",
                [
                    Panel(
                        "Kill switch",
                        "stat",
                        [
                            Target(
                                f"max by (scope) (levibot_kill_switch_engaged{{{INSTANCE}}})", "{{scope}}", instant=True
                            )
                        ],
                        width=6,
                        thresholds=RED_AT(1),
                        mappings=[{"type": "value", "options": {"0": {"text": "trading"}, "1": {"text": "HALTED"}}}],
                    ),
                    Panel(
                        "Portfolio VaR use of limit",
                        "gauge",
                        [
                            Target(
                                'max by (scope) (levibot_risk_var_ratio{scope="portfolio"}) / '
                                'max by (scope) (levibot_risk_limit_ratio{limit="var", scope="portfolio"})',
                                "VaR",
                                instant=True,
                            )
                        ],
                        unit="percentunit",
                        width=6,
                        min=0,
                        max=1,
                        thresholds=[(None, "green"), (0.75, "orange"), (0.9, "red")],
                    ),
                    Panel(
                        "Portfolio CVaR use of limit",
                        "gauge",
                        [
                            Target(
                                'max by (scope) (levibot_risk_cvar_ratio{scope="portfolio"}) / '
                                'max by (scope) (levibot_risk_limit_ratio{limit="cvar", scope="portfolio"})',
                                "CVaR",
                                instant=True,
                            )
                        ],
                        unit="percentunit",
                        width=6,
                        min=0,
                        max=1,
                        thresholds=[(None, "green"), (0.75, "orange"), (0.9, "red")],
                    ),
                    Panel(
                        "Configured limits",
                        "table",
                        [
                            Target(
                                "max by (limit, scope) (levibot_risk_limit_ratio)", "{{limit}} {{scope}}", instant=True
                            )
                        ],
                        unit="percentunit",
                        width=6,
                    ),
                ],
            ),
            Row(
                "VaR and CVaR",
                [
                    Panel(
                        "Portfolio VaR and CVaR with limits",
                        "timeseries",
                        [
                            Target('max(levibot_risk_var_ratio{scope="portfolio"})', "VaR"),
                            Target('max(levibot_risk_cvar_ratio{scope="portfolio"})', "CVaR"),
                            Target('max(levibot_risk_limit_ratio{limit="var", scope="portfolio"})', "VaR limit"),
                            Target('max(levibot_risk_limit_ratio{limit="cvar", scope="portfolio"})', "CVaR limit"),
                        ],
                        unit="percentunit",
                    ),
                    Panel(
                        "VaR by symbol",
                        "timeseries",
                        [
                            Target(
                                f'max by (scope) (levibot_risk_var_ratio{{{INSTANCE}, scope!="portfolio"}})',
                                "{{scope}}",
                            )
                        ],
                        unit="percentunit",
                    ),
                    Panel(
                        "CVaR by symbol",
                        "timeseries",
                        [
                            Target(
                                f'max by (scope) (levibot_risk_cvar_ratio{{{INSTANCE}, scope!="portfolio"}})',
                                "{{scope}}",
                            )
                        ],
                        unit="percentunit",
                    ),
                ],
            ),
            Row(
                "Decisions",
                [
                    Panel(
                        "Risk decisions per minute by action",
                        "timeseries",
                        [Target(f"60 * {_rate('levibot_risk_decisions_total', 'action')}", "{{action}}")],
                        unit="opm",
                        stack=True,
                    ),
                    Panel(
                        "Rejections per hour by reason",
                        "bargauge",
                        [
                            Target(
                                f"sum by (reason) (increase(levibot_risk_rejections_total{{{INSTANCE}}}[1h]))",
                                "{{reason}}",
                                instant=True,
                            )
                        ],
                    ),
                    Panel(
                        "Approval ratio (1h)",
                        "stat",
                        [
                            Target(
                                f'sum(increase(levibot_risk_decisions_total{{{INSTANCE}, action!="rejected"}}[1h])) / '
                                f"clamp_min(sum(increase(levibot_risk_decisions_total{{{INSTANCE}}}[1h])), 1)",
                                "approved",
                                instant=True,
                            )
                        ],
                        unit="percentunit",
                        width=8,
                    ),
                ],
            ),
        ],
    )

    models = Dashboard(
        "levibot-models",
        "LeviBot — models",
        "Score distributions, calibration, drift and retrain requests of the online and batch models.",
        [
            Row(
                "Scores",
                [
                    Panel(
                        "Score distribution (ensemble)",
                        "heatmap",
                        [
                            Target(
                                f'sum by (le) (increase(levibot_score_probability_bucket{{{INSTANCE}, model="ensemble"}}[5m]))',
                                "{{le}}",
                            )
                        ],
                        unit="percentunit",
                    ),
                    Panel(
                        "Median and tails of scores by model",
                        "timeseries",
                        [
                            Target(_quantile(0.5, "", "levibot_score_probability", "model"), "p50 {{model}}"),
                            Target(_quantile(0.05, "", "levibot_score_probability", "model"), "p05 {{model}}"),
                            Target(_quantile(0.95, "", "levibot_score_probability", "model"), "p95 {{model}}"),
                        ],
                        unit="percentunit",
                        min=0,
                        max=1,
                    ),
                    Panel(
                        "Mean score by model",
                        "timeseries",
                        [
                            Target(
                                f"sum by (model) (rate(levibot_score_probability_sum{{{INSTANCE}}}[15m])) / "
                                f"sum by (model) (rate(levibot_score_probability_count{{{INSTANCE}}}[15m]))",
                                "{{model}}",
                            )
                        ],
                        unit="percentunit",
                        min=0,
                        max=1,
                    ),
                    Panel(
                        "Scores per second by model",
                        "timeseries",
                        [Target(_rate("levibot_score_probability_count", "model"), "{{model}}")],
                        unit="ops",
                    ),
                ],
            ),
            Row(
                "Calibration and drift",
                [
                    Panel(
                        "Expected calibration error",
                        "timeseries",
                        [Target(f"max by (model) (levibot_model_calibration_error{{{INSTANCE}}})", "{{model}}")],
                        unit="percentunit",
                        thresholds=RED_AT(0.05),
                    ),
                    Panel(
                        "Drift events (24h)",
                        "bargauge",
                        [
                            Target(
                                f"sum by (model, detector) (increase(levibot_drift_events_total{{{INSTANCE}}}[1d]))",
                                "{{model}} {{detector}}",
                                instant=True,
                            )
                        ],
                        thresholds=RED_AT(1),
                    ),
                    Panel(
                        "Retrain requests (24h)",
                        "stat",
                        [
                            Target(
                                f"sum by (model) (increase(levibot_retrain_requests_total{{{INSTANCE}}}[1d]))",
                                "{{model}}",
                                instant=True,
                            )
                        ],
                    ),
                    Panel(
                        "Stage latency bar → score → order (p99)",
                        "timeseries",
                        [Target(_quantile(0.99, 'stage=~"bar_to_score|score_to_order"'), "{{stage}}")],
                        unit="s",
                    ),
                ],
            ),
        ],
    )
    # the console page each dashboard links to: the state behind its time series, and the halt button
    trading.console_page, trading.console_title = "/positions", "Positions in the operator console"
    risk.console_page, risk.console_title = "/risk", "Risk in the operator console"
    models.console_page, models.console_title = "/models", "Models in the operator console"
    return [pipeline, trading, risk, models]


def all_queries(ds: list[Dashboard] | None = None) -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every query, annotations and variables included."""
    out: list[tuple[str, str, str]] = []
    for d in ds or dashboards():
        js = render(d)
        for p in js["panels"]:
            for t in p.get("targets", []):
                out.append((d.uid, p["title"], t["expr"]))
        for a in js["annotations"]["list"]:
            out.append((d.uid, "annotation " + a["name"], a["expr"]))
    return out


def files(console_url: str = DEFAULT_CONSOLE_URL, out_dir: Path = OUT_DIR) -> dict[Path, str]:
    """Output path -> JSON text of every dashboard."""
    return {
        out_dir / f"{d.uid}.json": json.dumps(render(d, console_url), indent=2, ensure_ascii=False) + "\n"
        for d in dashboards()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the JSON files are missing or stale")
    ap.add_argument(
        "--console-url",
        default=DEFAULT_CONSOLE_URL,
        help=f"the operator console's address the dashboards link to (default {DEFAULT_CONSOLE_URL})",
    )
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="directory to write (default deploy/grafana/dashboards)")
    args = ap.parse_args(argv)
    if not args.console_url.startswith(("http://", "https://")):
        ap.error("--console-url must be an http(s) URL")
    if (
        args.out.resolve() == OUT_DIR.resolve()
        and args.console_url.rstrip("/") != DEFAULT_CONSOLE_URL
        and not args.check
    ):
        ap.error("the checked-in dashboards use the default console URL: write others with --out DIR")
    stale = []
    for path, text in files(args.console_url, args.out).items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale dashboards (run python deploy/grafana/build.py):", *map(str, stale), sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
