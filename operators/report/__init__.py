"""Tear sheets: a run's results as a structured report (numbers, tables, chart data; no I/O, no drawing).

``build_report(RunInputs(...), title=...)`` returns a :class:`Report`; ``connectors.report`` renders it as a
self-contained HTML page, a JSON summary and a terminal summary. See ``docs/reports.md``.
"""

from .builder import SECTION_KEYS, RunInputs, build_report, buy_and_hold, positions_at, price_at
from .model import UNITS, Chart, Column, Metric, Report, Section, Series, Table, downsample_minmax
from .signals import signal_summary
from .trades import Trade, round_trips, trades_from_positions

__all__ = [
    "SECTION_KEYS",
    "RunInputs",
    "build_report",
    "buy_and_hold",
    "positions_at",
    "price_at",
    "UNITS",
    "Chart",
    "Column",
    "Metric",
    "Report",
    "Section",
    "Series",
    "Table",
    "downsample_minmax",
    "Trade",
    "round_trips",
    "trades_from_positions",
    "signal_summary",
]
