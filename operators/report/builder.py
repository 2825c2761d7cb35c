"""The tear-sheet builder: a run's results in, a :class:`~operators.report.model.Report` out (pure, no I/O).

Every statistic comes from :mod:`operators.performance` (returns, Sharpe, drawdown, calendar returns, ...),
:mod:`operators.risk.backtest` (rolling VaR/CVaR forecasts, breaches, Kupiec, Christoffersen) and
:mod:`operators.models.metrics` (AUC, log-loss, Brier, calibration); this module only arranges them, adds the
human names and units, and thins long series for the charts. Sections and their keys are listed in
``docs/reports.md``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from operators import performance as perf
from operators.models import metrics as mm
from operators.risk.backtest import christoffersen, kupiec_pof, rolling_forecasts, var_breaches

from .model import Chart, Column, Metric, Report, Section, Series, Table, downsample_minmax
from .trades import Trade, round_trips

__all__ = ["RunInputs", "build_report", "buy_and_hold", "price_at", "positions_at", "SECTION_KEYS"]

NAN = float("nan")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SECTION_KEYS = (
    "equity",
    "drawdown",
    "calendar",
    "rolling",
    "distribution",
    "attribution",
    "trades",
    "exposure",
    "risk",
    "models",
    "signals",
    "data_quality",
)

_REASONS = {
    "below_min_notional": "change smaller than the minimum order",
    "position_limit": "position limit",
    "gross_exposure_limit": "gross exposure limit",
    "net_exposure_limit": "net exposure limit",
    "leverage_limit": "leverage limit",
    "portfolio_var_limit": "portfolio VaR limit",
    "portfolio_cvar_limit": "portfolio CVaR limit",
    "kill_switch_halted": "kill switch: halted",
    "kill_switch_reduce_only": "kill switch: reduce-only",
    "rate_limited": "order rate limit",
    "stale_price": "stale price",
    "low_confidence": "confidence too low",
    "operator_halt": "operator halt",
    "operator_reduce_only": "operator reduce-only",
    "reconciliation_reduce_only": "reduce-only after a reconciliation mismatch",
}


@dataclass
class RunInputs:
    """What a run produced, as the builder needs it (any field may be empty; the section then says so).

    ``ts`` (ns) / ``equity`` (quote): the account equity marks; ``final_mark``: ``(ts, equity)`` of the last bar when
    the marks stop short of it (appended when later than the last mark); ``prices``: symbol -> ``(ts, close)`` of
    the decision bars (ts = bar close), for buy-and-hold, exposure and model outcomes; ``fills``/``orders``: events
    or mappings; ``decisions``: ``RiskDecision`` s; ``accounts``: ``AccountStage.summary()`` dicts; ``scores``:
    ``Score`` events; ``alerts``: ``Alert`` events; ``dead_letters``: ``(stage, error) -> count``; ``signals``:
    ``{"received", "parsed", "rejected": {reason: n}, "acted_on", "outcomes": {outcome: n}}``
    (:func:`operators.report.signals.signal_summary`) or None when the run had no signal input;
    ``capital``: starting capital (quote; default the first mark); ``trades``: round trips when the source knows
    them better than its fills (sweeps); ``positions``: symbol -> ``(ts, qty)`` when there are no fills;
    ``by_symbol``/``by_strategy``: attribution rows when there is no account summary; ``tables``: extra tables
    (e.g. a sweep's parameter sets) and ``charts`` shown in an extra section ``runs``; ``info``: ``label -> text`` shown under
    the title."""

    ts: Any = field(default_factory=lambda: np.zeros(0, np.int64))
    equity: Any = field(default_factory=lambda: np.zeros(0))
    final_mark: tuple[int, float] | None = None
    prices: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    fills: Sequence[Any] = ()
    orders: Sequence[Any] = ()
    decisions: Sequence[Any] = ()
    accounts: Sequence[Mapping[str, Any]] = ()
    scores: Sequence[Any] = ()
    alerts: Sequence[Any] = ()
    dead_letters: Mapping[tuple[str, str], int] = field(default_factory=dict)
    signals: Mapping[str, Any] | None = None
    ticks: int = 0
    rejected_rows: int = 0
    stored: Mapping[str, int] = field(default_factory=dict)
    capital: float | None = None
    trades: Sequence[Trade] | None = None
    positions: Mapping[str, tuple[Any, Any]] | None = None
    by_symbol: Sequence[Mapping[str, Any]] | None = None
    by_strategy: Sequence[Mapping[str, Any]] | None = None
    tables: Sequence[Table] = ()
    charts: Sequence[Chart] = ()
    info: Mapping[str, str] = field(default_factory=dict)
    var_window: int = 500
    var_alpha: float = 0.99
    horizon_bars: int = 1


# ------------------------------------------------------------------------------------------------- helpers


def _get(o: Any, name: str, default: Any = None) -> Any:
    return o.get(name, default) if isinstance(o, Mapping) else getattr(o, name, default)


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return NAN
    return v


def _thin(x: np.ndarray, y: np.ndarray, n: int) -> tuple[list[Any], list[float | None]]:
    if x.size == 0:
        return [], []
    xs, ys = downsample_minmax(x, y, n)
    return xs.tolist(), [None if not math.isfinite(v) else float(v) for v in ys.tolist()]


def price_at(prices: tuple[Any, Any], ts: Any) -> np.ndarray:
    """Last close at or before each of ``ts`` (NaN before the first bar).

    >>> price_at(([10, 20], [1.0, 2.0]), [5, 10, 15, 25]).tolist()
    [nan, 1.0, 1.0, 2.0]
    """
    pt = np.asarray(prices[0], dtype=np.int64)
    pc = np.asarray(prices[1], dtype=np.float64)
    i = np.searchsorted(pt, np.asarray(ts, dtype=np.int64), side="right") - 1
    out = np.where(i >= 0, pc[np.maximum(i, 0)] if pc.size else NAN, NAN)
    return out.astype(np.float64)


def buy_and_hold(prices: Mapping[str, tuple[Any, Any]], ts: Any, capital: float) -> np.ndarray:
    """Equity of ``capital`` split equally over the symbols at the first of ``ts`` and held, no costs (quote).

    >>> buy_and_hold({"A": ([0, 1], [10.0, 20.0]), "B": ([0, 1], [5.0, 5.0])}, [0, 1], 100.0).tolist()
    [100.0, 150.0]
    """
    t = np.asarray(ts, dtype=np.int64)
    if not prices or t.size == 0:
        return np.zeros(0)
    total = np.zeros(t.size)
    used = 0
    for sym in sorted(prices):
        p = price_at(prices[sym], t)
        first = p[np.isfinite(p)]
        if first.size == 0:
            continue
        used += 1
        total += np.where(np.isfinite(p), p / first[0], 1.0)
    return capital * total / used if used else np.zeros(0)


def positions_at(fills: Sequence[Any], ts: Any) -> dict[str, np.ndarray]:
    """Signed position (base units) of each symbol after every fill at or before each of ``ts``."""
    t = np.asarray(ts, dtype=np.int64)
    by: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for f in fills:
        q = float(_get(f, "qty"))
        by[str(_get(f, "symbol"))].append((int(_get(f, "ts")), q if _get(f, "side") == "buy" else -q))
    out = {}
    for sym, rows in by.items():
        rows.sort(key=lambda r: r[0])
        ft = np.array([r[0] for r in rows], dtype=np.int64)
        cum = np.cumsum([r[1] for r in rows])
        i = np.searchsorted(ft, t, side="right") - 1
        out[sym] = np.where(i >= 0, cum[np.maximum(i, 0)], 0.0)
    return out


def _m(key: str, label: str, value: Any, unit: str = "ratio", note: str = "") -> Metric:
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    return Metric(key, label, value, unit, note)


def _versions_text(v: set[str]) -> str:
    """A model's versions in a few words: all of them when few, else the count and the first and last."""

    def order(x: str) -> tuple[str, int]:
        head, _, tail = x.rpartition("-")
        return (head, int(tail)) if tail.isdigit() else (x, -1)

    vs = sorted(v, key=order)
    if len(vs) <= 4:
        return ", ".join(vs)
    return f"{len(vs):,} versions (updated online), from {vs[0]} to {vs[-1]}"


def _ms_reason(code: str) -> str:
    return _REASONS.get(code, code.replace("_", " "))


# ------------------------------------------------------------------------------------------------ sections


def _equity_section(ts: np.ndarray, eq: np.ndarray, bh: np.ndarray, capital: float, n: int) -> Section:
    s = Section(
        "equity",
        "Equity against buy-and-hold and cash",
        "Where the money went: the strategy's account value against holding the same symbols and against "
        "doing nothing.",
    )
    if eq.size < 2:
        s.notes.append("Fewer than two equity marks: nothing to draw.")
        return s
    series = [Series("Strategy", *_thin(ts, eq, n), color="#0969da")]
    if bh.size:
        series.append(Series("Buy and hold (equal weights, no costs)", *_thin(ts, bh, n), color="#8250df"))
        s.metrics += [
            _m("buy_hold_return", "Buy-and-hold return", perf.total_return(bh), "fraction"),
            _m("excess_return", "Return over buy-and-hold", perf.total_return(eq) - perf.total_return(bh), "fraction"),
        ]
    series.append(Series("Cash (no trading)", [int(ts[0]), int(ts[-1])], [capital, capital], color="#6e7781"))
    s.charts.append(
        Chart(
            "equity",
            "Account equity",
            "time (UTC)",
            "equity (quote currency)",
            series,
            "Above the purple line the strategy beat holding the coins; below the grey line it lost money.",
            y_unit="quote",
        )
    )
    return s


def _drawdown_section(ts: np.ndarray, eq: np.ndarray, n: int) -> Section:
    s = Section("drawdown", "Drawdown", "How far the account fell below its previous high, and for how long.")
    if eq.size < 2:
        s.notes.append("Fewer than two equity marks: no drawdown.")
        return s
    dd = perf.drawdown_series(eq)
    s.charts.append(
        Chart(
            "underwater",
            "Drawdown below the running peak",
            "time (UTC)",
            "drawdown (%)",
            [Series("Drawdown", *_thin(ts, -dd, n), kind="area", color="#cf222e")],
            "The deeper and wider the red area, the longer the account spent below its best value.",
            y_unit="fraction",
        )
    )
    rows = []
    for i, p in enumerate(perf.drawdown_periods(ts, eq, 5), 1):
        rows.append(
            {
                "rank": i,
                "start": p["start_ts"],
                "trough": p["trough_ts"],
                "end": p["end_ts"],
                "depth": p["depth"],
                "length": p["duration_s"],
                "state": "recovered" if p["end_ts"] is not None else "not recovered",
            }
        )
    s.tables.append(
        Table(
            "worst_drawdowns",
            "Worst five drawdown periods",
            (
                Column("rank", "Rank", "count"),
                Column("start", "Peak", "timestamp"),
                Column("trough", "Lowest point", "timestamp"),
                Column("end", "Recovered", "timestamp"),
                Column("depth", "Depth", "fraction"),
                Column("length", "Length", "seconds"),
                Column("state", "State"),
            ),
            rows,
        )
    )
    if not rows:
        s.notes.append("The account never fell below a previous high.")
    return s


def _calendar_section(ts: np.ndarray, eq: np.ndarray, bh: np.ndarray) -> Section:
    s = Section(
        "calendar",
        "Monthly and yearly returns",
        "Compounded return of each calendar month and year (UTC); the months compound to the total return.",
    )
    if eq.size < 2:
        s.notes.append("Fewer than two equity marks: no calendar returns.")
        return s
    months = perf.calendar_returns(ts, eq, "month")
    years = sorted({y for y, _, _ in months})
    z: list[list[float | None]] = [[None] * 12 for _ in years]
    for y, mo, r in months:
        z[years.index(y)][mo - 1] = r
    s.charts.append(
        Chart(
            "monthly_heatmap",
            "Monthly returns",
            "month",
            "year",
            [Series("Monthly return", list(MONTHS), [str(y) for y in years], z=z)],
            "Green months made money, red months lost it; the colour's depth is the size.",
            y_unit="fraction",
            x_kind="category",
            kind="heatmap",
        )
    )
    yr = perf.calendar_returns(ts, eq, "year")
    bhy = {y: r for y, _, r in perf.calendar_returns(ts, bh, "year")} if bh.size else {}
    rows = [{"year": str(y), "ret": r, "bh": bhy.get(y), "excess": r - bhy[y] if y in bhy else None} for y, _, r in yr]
    s.tables.append(
        Table(
            "yearly",
            "Yearly returns",
            (
                Column("year", "Year"),
                Column("ret", "Strategy", "fraction"),
                Column("bh", "Buy and hold", "fraction"),
                Column("excess", "Difference", "fraction"),
            ),
            rows,
            note="A partial first or last year covers only the months in the run.",
        )
    )
    return s


def _rolling_section(ts: np.ndarray, r: np.ndarray, period_s: float, ppy: float, n: int) -> Section:
    s = Section(
        "rolling",
        "Rolling Sharpe ratio and volatility",
        "Whether the edge is steady or came from one good stretch: both over a trailing window of 30 days "
        "(half the run when the run is shorter).",
    )
    if not (period_s == period_s and period_s > 0) or r.size < 20:
        s.notes.append("Too few returns for a rolling window.")
        return s
    w = int(max(10, min(round(30 * 86_400 / period_s), r.size // 2)))
    shp, vol = perf.rolling_sharpe_vol(r, w, ppy)
    days = w * period_s / 86_400
    s.notes.append(f"Window: {w:,} periods of {period_s / 60:,.0f} minutes ({days:,.1f} days), annualised.")
    t = ts[1:]
    s.charts.append(
        Chart(
            "rolling_sharpe",
            "Rolling Sharpe ratio (annualised)",
            "time (UTC)",
            "Sharpe ratio",
            [Series("Sharpe ratio", *_thin(t, shp, n), color="#0969da")],
            "Above zero the window made money for its risk; a line that keeps crossing zero has no "
            "steady edge. Gaps are flat windows.",
            y_unit="ratio",
        )
    )
    s.charts.append(
        Chart(
            "rolling_volatility",
            "Rolling volatility (annualised)",
            "time (UTC)",
            "volatility (%)",
            [Series("Volatility", *_thin(t, vol, n), color="#bf8700")],
            "How much the account's value swung; spikes are the stretches a risk limit should catch.",
            y_unit="fraction",
        )
    )
    return s


def _distribution_section(r: np.ndarray) -> Section:
    s = Section(
        "distribution",
        "Distribution of period returns",
        "The shape of the account's per-period returns against a normal curve with the same mean and "
        "spread: fat tails mean bigger surprises than a Gaussian risk model expects.",
    )
    if r.size < 3:
        s.notes.append("Fewer than three returns.")
        return s
    sk, ku = perf.skew_kurtosis(r)
    flat = float(np.mean(r == 0.0))
    s.metrics += [
        _m("best_period", "Best period", float(r.max()), "fraction"),
        _m("worst_period", "Worst period", float(r.min()), "fraction"),
        _m("skewness", "Skewness", sk),
        _m("excess_kurtosis", "Excess kurtosis", ku),
        _m("flat_periods", "Periods without any change in equity", flat, "fraction"),
    ]
    nz = r[r != 0.0]
    if nz.size < 3:
        s.notes.append("Almost every period is flat (no position): no histogram.")
        return s
    lo, hi = np.quantile(nz, [0.005, 0.995])
    if not hi > lo:
        lo, hi = float(nz.min()), float(nz.max()) + 1e-12
    edges = np.linspace(lo, hi, 61)
    cnt, _ = np.histogram(np.clip(nz, lo, hi), edges)
    mid = (edges[:-1] + edges[1:]) / 2
    mu, sd = float(nz.mean()), float(nz.std(ddof=1))
    pdf = np.exp(-0.5 * ((mid - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)) if sd > 0 else np.zeros_like(mid)
    expect = pdf * nz.size * (edges[1] - edges[0])
    s.charts.append(
        Chart(
            "return_histogram",
            "Period returns against the normal distribution",
            "return per period (%)",
            "periods",
            [
                Series("Observed", mid.tolist(), cnt.tolist(), kind="bar", color="#0969da"),
                Series("Normal, same mean and standard deviation", mid.tolist(), expect.tolist(), color="#cf222e"),
            ],
            "Bars beyond the red curve at the edges are the fat tails; flat periods (no position) are left out.",
            y_unit="count",
            x_kind="fraction",
        )
    )
    return s


def _attribution_section(inp: RunInputs, trades: list[Trade], eq: np.ndarray, years: float) -> Section:
    s = Section(
        "attribution",
        "Attribution by symbol and by strategy",
        "What each symbol and each strategy contributed, and what its trading cost.",
    )
    mean_eq = float(eq.mean()) if eq.size else NAN
    n_trades = Counter(t.symbol for t in trades)
    n_fills = Counter(str(_get(f, "symbol")) for f in inp.fills)
    rows: list[dict[str, Any]] = []
    if inp.by_symbol is not None:
        rows = [dict(r) for r in inp.by_symbol]
    else:
        agg: dict[str, dict[str, float]] = {}
        for acc in inp.accounts:
            for sym, r in (acc.get("by_symbol") or {}).items():
                a = agg.setdefault(sym, defaultdict(float))
                for k_out, k_in in (
                    ("realised", "realised_pnl"),
                    ("open", "unrealised_pnl"),
                    ("fees", "fees"),
                    ("net", "net_pnl"),
                    ("traded", "traded"),
                ):
                    a[k_out] += _f(r.get(k_in, 0.0))
        rows = [{"symbol": sym, **a} for sym, a in sorted(agg.items())]
    for r in rows:
        sym = r["symbol"]
        r.setdefault("fills", n_fills.get(sym, 0))
        r.setdefault("trades", n_trades.get(sym, 0))
        r["turnover"] = perf.turnover(_f(r.get("traded", 0.0)), mean_eq, years) if years > 0 else NAN
    cols = (
        Column("symbol", "Symbol"),
        Column("net", "Net P&L", "quote"),
        Column("realised", "Realised P&L", "quote"),
        Column("open", "Open P&L", "quote"),
        Column("fees", "Fees", "quote"),
        Column("traded", "Traded notional", "quote"),
        Column("turnover", "Annual turnover", "per_year"),
        Column("fills", "Fills", "count"),
        Column("trades", "Trades (round trips)", "count"),
    )
    s.tables.append(Table("by_symbol", "By symbol", cols, rows))
    if rows:
        syms = [r["symbol"] for r in rows]
        s.charts.append(
            Chart(
                "pnl_by_symbol",
                "Net P&L and fees by symbol",
                "symbol",
                "quote currency",
                [
                    Series("Net P&L", syms, [_f(r.get("net")) for r in rows], kind="bar", color="#0969da"),
                    Series("Fees", syms, [_f(r.get("fees")) for r in rows], kind="bar", color="#cf222e"),
                ],
                "A symbol whose fees rival its P&L is traded too often for its edge.",
                y_unit="quote",
                x_kind="category",
            )
        )
    # strategies
    srows: list[dict[str, Any]] = []
    if inp.by_strategy is not None:
        srows = [dict(r) for r in inp.by_strategy]
    else:
        orders_by = Counter(str(_get(o, "strategy", "")) for o in inp.orders)
        pnl_by: dict[str, float] = defaultdict(float)
        trades_by: Counter[str] = Counter()
        for t in trades:
            pnl_by[t.strategy or "unknown"] += t.pnl
            trades_by[t.strategy or "unknown"] += 1
        agg2: dict[str, dict[str, float]] = {}
        for acc in inp.accounts:
            for k, v in (acc.get("by_strategy") or {}).items():
                a = agg2.setdefault(k, defaultdict(float))
                for key in ("fees", "traded", "fills"):
                    a[key] += _f(v.get(key, 0.0))
        attributed: dict[str, dict[str, float]] = {}
        for acc in inp.accounts:
            for k, v in (acc.get("pnl_by_strategy") or {}).items():
                a = attributed.setdefault(k, defaultdict(float))
                a["net"] += _f(v.get("net_pnl", 0.0))
                a["fees"] += _f(v.get("fees", 0.0))
        for k in sorted(set(agg2) | set(orders_by)):
            a = agg2.get(k, {})
            srows.append(
                {
                    "strategy": k,
                    "net": attributed[k]["net"] if k in attributed else None,
                    "closed": pnl_by.get(k) if trades_by.get(k) else None,
                    "fees": a.get("fees", 0.0),
                    "traded": a.get("traded", 0.0),
                    "turnover": perf.turnover(a.get("traded", 0.0), mean_eq, years) if years > 0 else NAN,
                    "orders": orders_by.get(k, 0),
                    "fills": int(a.get("fills", 0)),
                    "trades": trades_by.get(k, 0),
                }
            )
        contributors = sorted(set(attributed) - set(agg2) - set(orders_by))
        for k in contributors:
            srows.append(
                {
                    "strategy": k,
                    "net": attributed[k]["net"],
                    "closed": None,
                    "fees": attributed[k]["fees"],
                    "traded": None,
                    "turnover": None,
                    "orders": None,
                    "fills": None,
                    "trades": None,
                }
            )
        if contributors:
            named = ", ".join(sorted(set(agg2) | set(orders_by))) or "the orchestrator"
            s.notes.append(
                f"Orders carry the name {named}: the orchestrator combines the strategies' targets before "
                "the account. The rows below it split the account's net P&L and fees among the strategies "
                "by each one's share of the target it traded on (the split adds up to the account's P&L); "
                "traded notional, orders and fills belong to the combined orders."
            )
        elif srows and len(srows) == 1 and srows[0]["net"] is None:
            s.notes.append(
                f"All orders carry the one strategy name {srows[0]['strategy']!r}: the orchestrator "
                "combines the strategies' targets before the account, and the run results do not split "
                "P&L among the contributing strategies."
            )
    for r in srows:
        if "turnover" not in r and r.get("traded", 0.0) is not None:
            r["turnover"] = perf.turnover(_f(r.get("traded", 0.0)), mean_eq, years) if years > 0 else NAN
    s.tables.append(
        Table(
            "by_strategy",
            "By strategy",
            (
                Column("strategy", "Strategy"),
                Column("net", "Net P&L", "quote"),
                Column("closed", "P&L of closed trades", "quote"),
                Column("fees", "Fees", "quote"),
                Column("traded", "Traded notional", "quote"),
                Column("turnover", "Annual turnover", "per_year"),
                Column("orders", "Orders", "count"),
                Column("fills", "Fills", "count"),
                Column("trades", "Trades (round trips)", "count"),
            ),
            srows,
        )
    )
    return s


def _trades_section(trades: list[Trade], open_trades: list[Trade], n: int) -> Section:
    s = Section(
        "trades",
        "Trades (round trips)",
        "A trade runs from flat to flat in one symbol (a flip closes one trade and opens the next), "
        "however many orders and fills it took.",
    )
    pnls = np.array([t.pnl for t in trades])
    wl = perf.win_loss(pnls)
    hold = np.array([t.holding_s for t in trades])
    s.metrics += [
        _m("trades", "Trades (round trips)", len(trades), "count"),
        _m("open_trades", "Trades still open at the end", len(open_trades), "count"),
        _m("hit_rate", "Hit rate", perf.hit_rate(pnls), "fraction", "share of trades with P&L above zero"),
        _m("avg_win", "Average winning trade", wl["avg_win"], "quote"),
        _m("avg_loss", "Average losing trade", wl["avg_loss"], "quote"),
        _m("win_loss_ratio", "Average win / average loss", wl["win_loss_ratio"]),
        _m("profit_factor", "Profit factor", wl["profit_factor"], note="gross wins over gross losses"),
        _m("expectancy", "Average P&L per trade", wl["expectancy"], "quote"),
        _m("avg_holding", "Average holding time", float(hold.mean()) if hold.size else NAN, "seconds"),
        _m("median_holding", "Median holding time", float(np.median(hold)) if hold.size else NAN, "seconds"),
    ]
    if not trades:
        s.notes.append("No round trip was completed in this run.")
        return s
    rows = []
    for side in ("long", "short"):
        sel = [t for t in trades if t.side == side]
        p = np.array([t.pnl for t in sel])
        rows.append(
            {
                "side": side,
                "trades": len(sel),
                "hit": perf.hit_rate(p),
                "pnl": float(p.sum()) if p.size else 0.0,
                "fees": float(sum(t.fees for t in sel)),
                "hold": float(np.mean([t.holding_s for t in sel])) if sel else None,
            }
        )
    s.tables.append(
        Table(
            "by_side",
            "Long and short trades",
            (
                Column("side", "Side"),
                Column("trades", "Trades", "count"),
                Column("hit", "Hit rate", "fraction"),
                Column("pnl", "Net P&L", "quote"),
                Column("fees", "Fees", "quote"),
                Column("hold", "Average holding time", "seconds"),
            ),
            rows,
        )
    )
    best = sorted(trades, key=lambda t: -abs(t.pnl))[:10]
    s.tables.append(
        Table(
            "largest_trades",
            "Ten largest trades by size of P&L",
            (
                Column("symbol", "Symbol"),
                Column("side", "Side"),
                Column("open", "Opened", "timestamp"),
                Column("close", "Closed", "timestamp"),
                Column("pnl", "Net P&L", "quote"),
                Column("fees", "Fees", "quote"),
                Column("fills", "Fills", "count"),
            ),
            [
                {
                    "symbol": t.symbol,
                    "side": t.side,
                    "open": t.open_ts,
                    "close": t.close_ts,
                    "pnl": t.pnl,
                    "fees": t.fees,
                    "fills": t.fills,
                }
                for t in best
            ],
        )
    )
    lo, hi = np.quantile(pnls, [0.01, 0.99]) if pnls.size > 10 else (pnls.min(), pnls.max())
    if hi > lo:
        edges = np.linspace(lo, hi, 41)
        cnt, _ = np.histogram(np.clip(pnls, lo, hi), edges)
        mid = ((edges[:-1] + edges[1:]) / 2).tolist()
        s.charts.append(
            Chart(
                "trade_pnl_histogram",
                "P&L per trade",
                "net P&L per trade (quote currency)",
                "trades",
                [Series("Trades", mid, cnt.tolist(), kind="bar", color="#0969da")],
                "Many small losses and a few large wins is a trend-follower's shape; the reverse is a mean-reverter's.",
                y_unit="count",
                x_kind="number",
            )
        )
    return s


def _exposure_section(ts: np.ndarray, eq: np.ndarray, pos: dict[str, np.ndarray], inp: RunInputs, n: int) -> Section:
    s = Section(
        "exposure",
        "Exposure and leverage",
        "How much of the account was at risk in the market over time (positions at the decision-bar closes).",
    )
    if ts.size == 0 or not pos:
        s.notes.append("No positions in this run.")
        return s
    gross = np.zeros(ts.size)
    net = np.zeros(ts.size)
    for sym, q in pos.items():
        if sym not in inp.prices:
            continue
        v = q * np.nan_to_num(price_at(inp.prices[sym], ts))
        gross += np.abs(v)
        net += v
    lev = gross / eq
    s.metrics += [
        _m("avg_gross_exposure", "Average gross exposure", float(lev.mean()), "fraction", "of equity"),
        _m("max_leverage", "Highest leverage", float(lev.max()), "ratio", "gross exposure over equity"),
        _m("time_in_market", "Time in the market", float(np.mean(gross > 0)), "fraction"),
    ]
    s.charts.append(
        Chart(
            "exposure",
            "Gross and net exposure",
            "time (UTC)",
            "fraction of equity (%)",
            [
                Series("Gross exposure", *_thin(ts, lev, n), kind="area", color="#8250df"),
                Series("Net exposure", *_thin(ts, net / eq, n), color="#0969da"),
            ],
            "Gross is everything held long or short, net is long minus short; 100 % gross is a leverage of one.",
            y_unit="fraction",
        )
    )
    return s


def _gate_forecasts(inp: RunInputs) -> dict[str, Any] | None:
    """The account's own VaR forecasts (one account, at least 30 periods with a forecast), or None."""
    if len(inp.accounts) != 1:
        return None
    vf = inp.accounts[0].get("var_forecasts") or {}
    var = np.asarray(vf.get("var", [])[:-1], dtype=np.float64)
    pnl = np.asarray(vf.get("pnl", []), dtype=np.float64)
    if var.size != pnl.size or int(np.isfinite(var).sum()) < 30:
        return None
    return vf


def _breach_metrics(hits: np.ndarray, a: float, kupiec_p: Any) -> list[Metric]:
    """The VaR backtest's figures for a breach sequence at confidence ``a`` (Kupiec's p-value given)."""
    ch = christoffersen(hits, a)
    return [
        _m("var_breaches", "VaR breaches", int(hits.sum()), "count"),
        _m("var_breach_rate", "Breach rate", float(hits.mean()), "fraction"),
        _m("var_expected_rate", "Expected breach rate", 1.0 - a, "fraction"),
        _m(
            "kupiec_p",
            "Kupiec test p-value (breach count)",
            kupiec_p,
            "probability",
            "below 0.05: the VaR is breached too often or too rarely",
        ),
        _m(
            "christoffersen_ind_p",
            "Christoffersen test p-value (breaches independent)",
            ch.p_ind,
            "probability",
            "below 0.05: breaches come in clusters",
        ),
        _m(
            "christoffersen_cc_p",
            "Christoffersen test p-value (conditional coverage)",
            ch.p_cc,
            "probability",
            "count and independence together",
        ),
        _m("breach_after_breach", "Breach rate right after a breach", ch.p11, "fraction"),
    ]


def _worst_breaches(t: np.ndarray, x: np.ndarray, hits: np.ndarray, k: int = 500) -> tuple[list[int], list[float]]:
    """Times and values of the breaches, the ``k`` worst of them when there are more, in time order."""
    bt, bx = t[hits], x[hits]
    if bt.size > k:
        keep = np.sort(np.argsort(bx)[:k])
        bt, bx = bt[keep], bx[keep]
    return bt.tolist(), bx.tolist()


def _gate_risk(s: Section, vf: dict[str, Any], n: int) -> None:
    """The backtest of the gate's own forecasts: each period's realised P&L against the VaR of the book that went
    into it, over the periods that had something at risk (a flat book with nothing working forecasts, and can
    make, no loss); a breach is a period that lost more than its VaR."""
    a = float(vf["alpha"])
    var = np.asarray(vf["var"][:-1], dtype=np.float64)
    cvar = np.asarray(vf["cvar"][:-1], dtype=np.float64)
    pnl = np.asarray(vf["pnl"], dtype=np.float64)
    t = np.asarray(vf["ts"][1:], dtype=np.int64)
    ok = np.isfinite(var)
    n_all = int(ok.sum())
    ok &= var > 0.0
    var, cvar, pnl, t = var[ok], cvar[ok], pnl[ok], t[ok]
    s.metrics += [
        _m("var_periods", "Periods forecast", n_all, "count"),
        _m("var_forecasts", "Periods with a position at risk", int(var.size), "count", "the backtest runs over these"),
    ]
    if var.size < 30:
        s.notes.append(f"Only {var.size} periods had a position at risk: too few for a VaR backtest.")
        return
    hits = -pnl > var
    s.metrics += _breach_metrics(hits, a, kupiec_pof(int(hits.size), int(hits.sum()), a).p_value)
    bt, br = _worst_breaches(t, pnl, hits)
    s.charts.append(
        Chart(
            "var_backtest",
            f"Realised P&L against the gate's {a:.0%} VaR and CVaR",
            "time (UTC)",
            "P&L per period (quote currency)",
            [
                Series("Realised P&L", *_thin(t, pnl, n), color="#8c959f"),
                Series("VaR forecast (as a loss)", *_thin(t, -var, n), color="#bf8700"),
                Series("CVaR forecast (as a loss)", *_thin(t, -cvar, n), color="#cf222e"),
                Series("Breach", bt, br, kind="markers", color="#cf222e"),
            ],
            "Periods with a position at risk. Red dots are breaches; at 99 % about one period in a "
            "hundred should fall below the yellow line, and the dots should not bunch together.",
            y_unit="quote",
        )
    )


def _risk_section(ts: np.ndarray, r: np.ndarray, inp: RunInputs, summary: dict[str, Any], n: int) -> Section:
    a = inp.var_alpha
    vf = _gate_forecasts(inp)
    if vf is not None:
        s = Section(
            "risk",
            "Risk: the gate's VaR forecasts against realised P&L",
            f"Before each period the account forecasts the one-period VaR and CVaR of its book at "
            f"{float(vf['alpha']):.0%} ({vf['method']} method, the gate's own): the positions it holds plus "
            "what is still being executed, over the return window the gate uses. A breach is a period that "
            "lost more than its VaR; the backtest counts the periods that had a position at risk.",
        )
        _gate_risk(s, vf, n)
        return _risk_limits(s, inp)
    s = Section(
        "risk",
        "Risk: VaR forecasts against realised returns",
        f"A rolling historical VaR and CVaR at {a:.0%} over the previous {inp.var_window:,} periods of the "
        "account's own returns, each forecast made before the period it covers; a breach is a period that "
        "lost more than its VaR.",
    )
    if r.size > inp.var_window + 1:
        var, cvar = rolling_forecasts(r, inp.var_window, a, "historical")
        real = r[inp.var_window :]
        hits = var_breaches(real, var)
        t = ts[1 + inp.var_window :]
        s.metrics += [
            _m("var_forecasts", "VaR forecasts", int(hits.size), "count"),
            *_breach_metrics(hits, a, summary.get("kupiec_p_value")),
        ]
        bt, br = _worst_breaches(t, real, hits)
        s.charts.append(
            Chart(
                "var_backtest",
                f"Realised returns against the {a:.0%} VaR and CVaR",
                "time (UTC)",
                "return per period (%)",
                [
                    Series("Realised return", *_thin(t, real, n), color="#8c959f"),
                    Series("VaR forecast", *_thin(t, var, n), color="#bf8700"),
                    Series("CVaR forecast", *_thin(t, cvar, n), color="#cf222e"),
                    Series("Breach", bt, br, kind="markers", color="#cf222e"),
                ],
                "Red dots are breaches; at 99 % about one period in a hundred should fall below the "
                "yellow line, and the dots should not bunch together.",
                y_unit="fraction",
            )
        )
    else:
        s.notes.append(f"Too few returns for the VaR backtest (needs more than {inp.var_window + 1:,}).")
    return _risk_limits(s, inp)


def _risk_limits(s: Section, inp: RunInputs) -> Section:
    """Limit hits and kill-switch events of the run's risk decisions."""
    reasons: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    kill: list[int] = []
    for d in inp.decisions:
        actions[str(_get(d, "action"))] += 1
        for code in _get(d, "reasons", []) or []:
            reasons[str(code)] += 1
            if str(code).startswith("kill_switch"):
                kill.append(int(_get(d, "ts")))
    if actions:
        s.metrics += [
            _m("decisions_approved", "Risk decisions approved", actions.get("approved", 0), "count"),
            _m("decisions_resized", "Risk decisions resized", actions.get("resized", 0), "count"),
            _m("decisions_rejected", "Risk decisions rejected", actions.get("rejected", 0), "count"),
        ]
    if reasons:
        s.tables.append(
            Table(
                "limit_hits",
                "Why orders were resized or refused",
                (Column("code", "Reason code"), Column("what", "Meaning"), Column("n", "Decisions", "count")),
                [{"code": c, "what": _ms_reason(c), "n": k} for c, k in reasons.most_common()],
            )
        )
    kill_alerts = [al for al in inp.alerts if "kill" in str(_get(al, "kind", ""))]
    if kill or kill_alerts:
        s.metrics.append(_m("kill_switch_decisions", "Decisions stopped by the kill switch", len(kill), "count"))
        s.tables.append(
            Table(
                "kill_switch",
                "Kill-switch events",
                (
                    Column("first", "First", "timestamp"),
                    Column("last", "Last", "timestamp"),
                    Column("n", "Decisions refused", "count"),
                ),
                [{"first": min(kill), "last": max(kill), "n": len(kill)}] if kill else [],
            )
        )
    else:
        s.notes.append("The drawdown kill switch never tripped.")
    rr = [(acc.get("account"), acc.get("risk") or {}) for acc in inp.accounts]
    if rr:
        s.tables.append(
            Table(
                "closing_risk",
                "The book's one-period risk at the end of the run",
                (
                    Column("account", "Account"),
                    Column("var", "Portfolio VaR", "quote"),
                    Column("cvar", "Portfolio CVaR", "quote"),
                    Column("var_frac", "VaR of equity", "fraction"),
                    Column("hist", "Historical VaR", "quote"),
                ),
                [
                    {
                        "account": name,
                        "var": x.get("portfolio_var"),
                        "cvar": x.get("portfolio_cvar"),
                        "var_frac": x.get("portfolio_var_frac"),
                        "hist": x.get("historical_var"),
                    }
                    for name, x in rr
                ],
                note="Positive numbers are losses; zero when the book is flat at the end.",
            )
        )
    return s


def _model_section(inp: RunInputs, n: int) -> Section:
    s = Section(
        "models",
        "Models",
        "How good the models' probabilities of an up-move were, measured afterwards "
        f"against what the price did over the next {inp.horizon_bars} decision bar(s).",
    )
    ys: dict[str, list[float]] = defaultdict(list)
    ps: dict[str, list[float]] = defaultdict(list)
    versions: dict[str, set[str]] = defaultdict(set)
    ens_t: list[int] = []
    h = max(1, int(inp.horizon_bars))
    for sc in inp.scores:
        sym = str(_get(sc, "symbol"))
        for k, v in (_get(sc, "model_versions", {}) or {}).items():
            versions[k].add(str(v))
        pr = inp.prices.get(sym)
        if pr is None:
            continue
        pt = np.asarray(pr[0], dtype=np.int64)
        t = int(_get(sc, "ts"))
        i = int(np.searchsorted(pt, t))
        if i >= pt.size or pt[i] != t or i + h >= pt.size:
            continue
        pc = pr[1]
        y = 1.0 if float(pc[i + h]) > float(pc[i]) else 0.0
        for name, p in (_get(sc, "raw", {}) or {}).items():
            ys[name].append(y)
            ps[name].append(float(p))
        for name in ("calibrated", "ensemble"):
            ys[name].append(y)
            ps[name].append(float(_get(sc, name)))
        ens_t.append(t)
    if not inp.scores:
        s.notes.append("No model scores in this run (models off, or no decision bar was scored).")
        return s
    if not ys:
        s.notes.append(f"{len(inp.scores):,} scores, but none could be matched with a later close.")
    rows = []
    for name in sorted(ys, key=lambda k: (k in ("calibrated", "ensemble"), k)):
        st = mm.summarize(ys[name], ps[name])
        rows.append(
            {
                "model": name,
                "n": st["n"],
                "auc": st["auc"],
                "log_loss": st["log_loss"],
                "brier": st["brier"],
                "ece": st["ece"],
                "base": st["base_rate"],
            }
        )
    s.tables.append(
        Table(
            "model_metrics",
            "Out-of-sample scores (prequential)",
            (
                Column("model", "Model"),
                Column("n", "Scored bars", "count"),
                Column("auc", "AUC", "ratio"),
                Column("log_loss", "Log-loss", "nats"),
                Column("brier", "Brier score", "probability"),
                Column("ece", "Calibration error (ECE)", "probability"),
                Column("base", "Share of up-moves", "fraction"),
            ),
            rows,
            note="AUC 0.5 is a coin flip; log-loss of a coin flip is 0.693 nats, its Brier score 0.25.",
        )
    )
    ens = next((r for r in rows if r["model"] == "ensemble"), None)
    if ens:
        s.metrics += [
            _m("model_auc", "AUC of the ensemble", ens["auc"]),
            _m("model_log_loss", "Log-loss of the ensemble", ens["log_loss"], "nats"),
            _m("model_brier", "Brier score of the ensemble", ens["brier"]),
            _m("model_scored", "Scored bars", ens["n"], "count"),
        ]
        y_ens = np.asarray(ys["ensemble"])
        p_ens = np.asarray(ps["ensemble"])
        b = np.minimum((p_ens * 10).astype(int), 9)
        mids, obs, cnt = [], [], []
        for k in range(10):
            m = b == k
            if m.any():
                mids.append(float(p_ens[m].mean()))
                obs.append(float(y_ens[m].mean()))
                cnt.append(int(m.sum()))
        s.charts.append(
            Chart(
                "calibration",
                "Calibration of the ensemble (reliability)",
                "forecast probability of an up-move",
                "observed share of up-moves",
                [
                    Series("Perfect calibration", [0.0, 1.0], [0.0, 1.0], color="#8c959f"),
                    Series("Ensemble (ten bins)", mids, obs, kind="markers", color="#0969da"),
                ],
                "Points on the grey diagonal mean the probabilities can be taken at face value; points "
                "bunched near 0.5 mean the model rarely commits.",
                y_unit="probability",
                x_kind="number",
            )
        )
    s.tables.append(
        Table(
            "model_versions",
            "Model versions used",
            (Column("model", "Model"), Column("versions", "Versions")),
            [{"model": k, "versions": _versions_text(v)} for k, v in sorted(versions.items())],
        )
    )
    drift = [al for al in inp.alerts if "drift" in str(_get(al, "kind", ""))]
    s.metrics.append(_m("drift_alerts", "Drift alerts", len(drift), "count"))
    if drift:
        s.tables.append(
            Table(
                "drift_events",
                "Drift alerts",
                (Column("ts", "Time", "timestamp"), Column("severity", "Severity"), Column("message", "Message")),
                [
                    {
                        "ts": int(_get(a, "ts")),
                        "severity": _get(a, "severity"),
                        "message": str(_get(a, "message"))[:200],
                    }
                    for a in drift[:20]
                ],
                note=f"The first 20 of {len(drift):,}." if len(drift) > 20 else "",
            )
        )
    else:
        s.notes.append("No drift alert was raised.")
    return s


def _signals_section(inp: RunInputs) -> Section:
    s = Section(
        "signals",
        "Telegram signals",
        "Signals received from the channels, how many parsed, why the rest were rejected, and what became of them.",
    )
    sig = inp.signals
    if not sig or not int(sig.get("received", 0) or 0):
        s.notes.append(
            "No Telegram signals in this run: the run had no signal input, so the signal follower never traded."
        )
        s.metrics.append(_m("signals_received", "Signals received", 0, "count"))
        return s
    rej = dict(sig.get("rejected") or {})
    s.metrics += [
        _m("signals_received", "Signals received", int(sig.get("received", 0)), "count"),
        _m("signals_parsed", "Signals parsed", int(sig.get("parsed", 0)), "count"),
        _m("signals_rejected", "Signals rejected", int(sum(rej.values())), "count"),
        _m(
            "signals_acted_on",
            "Signals acted on",
            int(sig.get("acted_on", 0) or 0),
            "count",
            "the signal follower took or changed a position on them",
        ),
    ]
    if rej:
        s.tables.append(
            Table(
                "signal_rejections",
                "Rejected signals by reason",
                (Column("reason", "Reason"), Column("n", "Signals", "count")),
                [{"reason": k, "n": v} for k, v in sorted(rej.items(), key=lambda kv: -kv[1])],
                note="Messages on the signals topic the flow could not read as a signal (the reason "
                "code of their dead letter).",
            )
        )
    outcomes = dict(sig.get("outcomes") or {})
    if outcomes:
        from .signals import OUTCOMES

        s.tables.append(
            Table(
                "signal_outcomes",
                "What became of the parsed signals",
                (Column("outcome", "Outcome"), Column("n", "Signals", "count")),
                [{"outcome": OUTCOMES.get(k, k), "n": int(v)} for k, v in outcomes.items()],
                note="The signal follower's own reading of each signal (entry zone, trust, "
                "follow-ups), replayed over the decision bars; its position is then netted with "
                "the other strategies' by the orchestrator before the risk gate.",
            )
        )
    return s


def _data_section(inp: RunInputs) -> Section:
    s = Section("data_quality", "Data quality", "What came in, what was refused at the door and why.")
    dead = sum(inp.dead_letters.values())
    late = sum(v for (stage, err), v in inp.dead_letters.items() if "late" in err)
    s.metrics += [
        _m("ticks", "Ticks read", inp.ticks, "count"),
        _m("rejected_rows", "Input rows rejected while loading", inp.rejected_rows, "count"),
        _m("dead_letters", "Dead letters", dead, "count"),
        _m("late_ticks", "Late ticks dropped", late, "count"),
    ]
    if inp.dead_letters:
        s.tables.append(
            Table(
                "dead_letters",
                "Dead letters by stage and reason",
                (Column("stage", "Stage"), Column("error", "Reason"), Column("n", "Count", "count")),
                [
                    {"stage": st, "error": er, "n": k}
                    for (st, er), k in sorted(inp.dead_letters.items(), key=lambda kv: -kv[1])
                ],
            )
        )
    else:
        s.notes.append("No dead letters: every input event was accepted.")
    if inp.stored:
        s.tables.append(
            Table(
                "stored",
                "Rows written to the store",
                (Column("table", "Table"), Column("n", "Rows", "count")),
                [{"table": k.replace("_", " "), "n": v} for k, v in sorted(inp.stored.items())],
            )
        )
    return s


# ------------------------------------------------------------------------------------------------- builder


def build_report(
    inp: RunInputs, *, title: str, kind: str = "run", max_points: int = 1500, subtitle: str = ""
) -> Report:
    """The tear sheet of one run (see the module doc and ``docs/reports.md``)."""
    ts = np.asarray(inp.ts, dtype=np.int64)
    eq = np.asarray(inp.equity, dtype=np.float64)
    if inp.final_mark is not None and ts.size and int(inp.final_mark[0]) > int(ts[-1]):
        ts = np.append(ts, np.int64(inp.final_mark[0]))
        eq = np.append(eq, float(inp.final_mark[1]))
    n = int(max_points)
    capital = float(inp.capital if inp.capital is not None else (eq[0] if eq.size else NAN))
    if inp.trades is not None:
        trades, open_trades = (
            [t for t in inp.trades if t.close_ts is not None],
            [t for t in inp.trades if t.close_ts is None],
        )
    else:
        strat = {str(_get(o, "order_id")): str(_get(o, "strategy", "")) for o in inp.orders}
        trades, open_trades = round_trips(inp.fills, strat)
    pnls = [t.pnl for t in trades]
    summary: dict[str, Any] = {}
    r = np.zeros(0)
    if eq.size > 1:
        r = perf.period_returns(eq)
        summary = perf.summarize(ts, eq, fills=inp.fills, trade_pnls=pnls)
        if r.size > inp.var_window + 1:
            var, _ = rolling_forecasts(r, inp.var_window, inp.var_alpha, "historical")
            fc = np.concatenate([np.full(inp.var_window, NAN), var])
            summary = perf.summarize(
                ts, eq, fills=inp.fills, trade_pnls=pnls, var_forecasts=fc, var_alpha=inp.var_alpha
            )
    g = summary.get
    bh = buy_and_hold(inp.prices, ts, capital) if eq.size else np.zeros(0)
    fees = g("fees_quote") if inp.fills else sum(_f(x.get("fees", 0.0)) for x in (inp.by_symbol or []))
    traded = g("traded_notional_quote") if inp.fills else sum(_f(x.get("traded", 0.0)) for x in (inp.by_symbol or []))
    years = g("years", 0.0) or 0.0
    turnover = (
        g("turnover_per_year")
        if inp.fills
        else (perf.turnover(traded, float(eq.mean()), years) if eq.size and years > 0 else NAN)
    )
    n_fills = len(inp.fills) if inp.fills else int(sum(_f(x.get("fills", 0)) for x in (inp.by_symbol or [])))
    headline = [
        _m("total_return", "Total return", g("total_return_frac"), "fraction"),
        _m("cagr", "Annual growth rate (CAGR)", g("cagr_frac"), "fraction"),
        _m("sharpe", "Sharpe ratio (annualised)", g("sharpe"), note="risk-free rate 0, 365-day year"),
        _m("sortino", "Sortino ratio (annualised)", g("sortino")),
        _m("volatility", "Volatility (annualised)", g("volatility_ann_frac"), "fraction"),
        _m("max_drawdown", "Max drawdown", g("max_drawdown_frac"), "fraction"),
        _m("max_drawdown_duration", "Longest drawdown", g("max_drawdown_duration_s"), "seconds"),
        _m("calmar", "Calmar ratio", g("calmar"), note="annual growth over max drawdown"),
        _m("pnl", "Net P&L", float(eq[-1] - eq[0]) if eq.size else NAN, "quote", "after fees"),
        _m("end_equity", "Final equity", float(eq[-1]) if eq.size else NAN, "quote"),
        _m(
            "buy_hold_return",
            "Buy-and-hold return",
            perf.total_return(bh) if bh.size else NAN,
            "fraction",
            "the same symbols, equal weights, no costs",
        ),
        _m("fees", "Fees paid", fees, "quote"),
        _m("turnover", "Annual turnover", turnover, "per_year", "traded notional over average equity, per year"),
        _m("trades", "Trades (round trips)", len(trades), "count", "flat to flat in one symbol"),
        _m("hit_rate", "Hit rate", perf.hit_rate(pnls), "fraction", "share of trades with P&L above zero"),
        _m("orders", "Orders sent", len(inp.orders) if inp.orders or inp.fills else None, "count"),
        _m("fills", "Fills", n_fills, "count"),
        _m("traded_notional", "Traded notional", traded, "quote"),
    ]
    period_s = g("period_s", NAN)
    ppy = g("periods_per_year", NAN)
    pos = (
        (
            positions_at(inp.fills, ts)
            if inp.positions is None
            else {k: price_at(v, ts) for k, v in inp.positions.items()}
        )
        if ts.size
        else {}
    )
    pos = {k: np.nan_to_num(v) for k, v in pos.items()}
    sections = [
        _equity_section(ts, eq, bh, capital, n),
        _drawdown_section(ts, eq, n),
        _calendar_section(ts, eq, bh),
        _rolling_section(ts, r, period_s, ppy, n),
        _distribution_section(r),
        _attribution_section(inp, trades, eq, years),
        _trades_section(trades, open_trades, n),
        _exposure_section(ts, eq, pos, inp, n),
        _risk_section(ts, r, inp, summary, n),
        _model_section(inp, n),
        _signals_section(inp),
        _data_section(inp),
    ]
    if inp.tables or inp.charts:
        sections.append(Section("runs", "Parameter sets and runs", tables=list(inp.tables), charts=list(inp.charts)))
    period = (int(ts[0]), int(ts[-1])) if ts.size else None
    info = dict(inp.info)
    if ts.size:
        info.setdefault("Equity marks", f"{ts.size:,}")
        if period_s == period_s:
            info.setdefault("Bar", f"{period_s / 60:,.0f} minutes")
    return Report(title, kind, period, headline, sections, subtitle, info)
