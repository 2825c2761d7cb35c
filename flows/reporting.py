"""Wiring between a run's results and its tear sheet: what the flow collected -> ``RunInputs`` -> report files.

``levibot run`` (embedded), ``backtest``, ``sweep`` and ``evaluate-strategies`` all end here, so their reports
have the same sections and the same JSON keys (``docs/reports.md``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from connectors.report import terminal_summary, write_report
from operators.portfolio import combine_marks
from operators.report import Report, RunInputs, build_report
from schemas.time import NS_PER_S as NS

__all__ = ["decision_closes", "run_inputs", "run_report", "live_inputs", "publish"]


def decision_closes(ticks: Any, resolution_s: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Close of every decision bar per symbol from the ticks (a frame with ``symbol``, ``ts``, ``price``):
    ``(bar close ts ns, last price in [close - resolution, close))``, as the flow's bars."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    res = int(resolution_s) * NS
    for sym, g in ticks.groupby("symbol", sort=True):
        t = g["ts"].to_numpy(np.int64)
        p = g["price"].to_numpy(np.float64)
        order = np.argsort(t, kind="stable")
        t, p = t[order], p[order]
        end = (t // res + 1) * res
        last = np.flatnonzero(np.append(end[1:] != end[:-1], True))
        out[str(sym)] = (end[last], p[last])
    return out


def run_inputs(
    res: Any,
    history: Any,
    resolution_s: int,
    *,
    rejected_rows: int | None = None,
    var_window: int = 500,
    var_alpha: float = 0.99,
) -> RunInputs:
    """``RunInputs`` of an in-process run (``flows.embedded.RunResult``) over ``history``.

    The account marks stop at the last decision the flow took, one bar before the end of the data; the final
    mark added here values the closing book (cash + positions at each symbol's last price) at the close of the
    last decision bar, so the curve ends where the data ends (as the sweep's does)."""
    ts, eq = combine_marks(res.marks)
    prices = decision_closes(history.ticks, resolution_s)
    final = None
    if res.accounts and prices:
        last_px = {s: float(c[-1]) for s, (_, c) in prices.items()}
        end = max(int(t[-1]) for t, _ in prices.values())
        value = sum(
            float(a["cash"]) + sum(q * last_px.get(s, 0.0) for s, q in (a.get("positions") or {}).items())
            for a in res.accounts
        )
        final = (end, value)
    dead = Counter((str(d.stage), str(d.error)) for d in getattr(res, "dead", []) or [])
    stored = dict(res.counts or {})
    capital = sum(float(a["initial_capital"]) for a in res.accounts) if res.accounts else None
    signals = getattr(res, "signal_counts", None)
    return RunInputs(
        ts=ts,
        equity=eq,
        final_mark=final,
        prices=prices,
        fills=res.fills,
        orders=res.orders,
        decisions=res.decisions,
        accounts=res.accounts,
        scores=getattr(res, "scores", []) or [],
        alerts=getattr(res, "alerts", []) or [],
        dead_letters=dict(dead),
        signals=signals,
        ticks=res.ticks,
        rejected_rows=len(history.rejects) if rejected_rows is None else rejected_rows,
        stored=stored,
        capital=capital,
        var_window=var_window,
        var_alpha=var_alpha,
        info={
            "Symbols": ", ".join(sorted(prices)),
            "Ticks": f"{res.ticks:,}",
            "Decision bar": f"{resolution_s // 60:,} minutes",
            "Run time": f"{res.seconds:,.1f} s",
        },
    )


def live_inputs(
    col: Any,
    resolution_s: int,
    *,
    ticks: int = 0,
    signals: bool = True,
    mode: str = "full",
    info: dict[str, str] | None = None,
    var_window: int = 500,
    var_alpha: float = 0.99,
) -> RunInputs:
    """``RunInputs`` of a live run from what its :class:`connectors.report_live.LiveRunCollector` kept: the marks,
    orders, fills, decisions, accounts, scores, alerts and dead letters; the decision bars' closes as the prices
    (the first emission of each bar: what the flow decided on); the signals read from ``signals`` (``signals``:
    the run had that input) with the rejected ones by reason and their outcomes
    (:func:`operators.report.signals.signal_summary`; ``mode``: the pipeline's, only ``full`` applies signals)."""
    from operators.report.signals import signal_summary

    ev = col.events
    res = int(resolution_s) * NS
    seen: dict[tuple[str, int], float] = {}
    for b in ev["bars"]:
        seen.setdefault((str(b.symbol), int(b.ts) + res), float(b.close))
    prices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sym in sorted({k[0] for k in seen}):
        pts = sorted((t, c) for (s_, t), c in seen.items() if s_ == sym)
        prices[sym] = (np.array([t for t, _ in pts], np.int64), np.array([c for _, c in pts]))
    ts, eq = combine_marks(ev["marks"])
    final = None
    accounts = ev["accounts"]
    if accounts and prices:
        last_px = {s_: float(c[-1]) for s_, (_, c) in prices.items()}
        end = max(int(t[-1]) for t, _ in prices.values())
        value = sum(
            float(a["cash"]) + sum(q * last_px.get(s_, 0.0) for s_, q in (a.get("positions") or {}).items())
            for a in accounts
        )
        final = (end, value)
    sig = None
    if signals:
        sig = signal_summary(
            ev["signals"], dict(col.signal_rejections), ev["bars"], resolution_s, applied=mode == "full"
        )
    capital = sum(float(a["initial_capital"]) for a in accounts) if accounts else None
    return RunInputs(
        ts=ts,
        equity=eq,
        final_mark=final,
        prices=prices,
        fills=ev["fills"],
        orders=ev["orders"],
        decisions=ev["decisions"],
        accounts=accounts,
        scores=ev["scores"],
        alerts=ev["alerts"],
        dead_letters=dict(col.dead_counts),
        signals=sig,
        ticks=int(ticks),
        capital=capital,
        var_window=var_window,
        var_alpha=var_alpha,
        info={
            "Symbols": ", ".join(sorted(prices)),
            "Ticks": f"{int(ticks):,}",
            "Decision bar": f"{int(resolution_s) // 60:,} minutes",
            **(info or {}),
        },
    )


def run_report(res: Any, history: Any, resolution_s: int, *, title: str, kind: str) -> Report:
    """The tear sheet of an in-process run."""
    return build_report(run_inputs(res, history, resolution_s), title=title, kind=kind)


def publish(rep: Report, out_dir: Path, stem: str, echo: Any = print) -> tuple[Path, Path]:
    """Write ``<stem>.html`` and ``<stem>.json`` under ``out_dir``, print the terminal summary and the paths."""
    html_path, json_path = write_report(rep, out_dir, stem)
    echo(terminal_summary(rep))
    echo(f"\n  report   {html_path} ({html_path.stat().st_size / 1e6:,.1f} MB)")
    echo(f"  summary  {json_path}")
    return html_path, json_path
