"""What the operator API computes from stored rows (pure): the P&L and equity series with buy-and-hold and
drawdown, the book's risk (VaR/CVaR and their Euler components per symbol and per strategy) against the limits,
and the gate's kill-switch state as the stored decisions show it.

Inputs are plain tuples read by ``connectors/postgres/api.py``: fills ``(ts_ns, symbol, side, qty, price, fee,
strategy)`` oldest first, bar closes ``(ts_ns, symbol, close)`` oldest first. Money in quote currency, quantities
in base units, losses positive (the account stage's ``risk_report`` convention).

>>> fills = [(10, "A", "buy", 2.0, 100.0, 1.0, "s1")]
>>> marks = [(10, "A", 100.0), (20, "A", 110.0), (30, "A", 90.0)]
>>> s = pnl_series(fills, marks, capital=1000.0)
>>> [(p["pnl"], p["equity"], p["drawdown"]) for p in s["points"]]
[(-1.0, 999.0, 0.0), (19.0, 1019.0, 0.0), (-21.0, 979.0, 40.0)]
>>> [round(p["buy_and_hold"], 6) for p in s["points"]]
[1000.0, 1100.0, 900.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from operators import performance as perf
from operators.risk.historical import historical_var
from operators.risk.portfolio import component_var, portfolio_cvar_gaussian, portfolio_var_gaussian, sample_covariance

__all__ = ["pnl_series", "return_matrix", "risk_view", "gate_kill_switch", "thin"]

Fill = tuple[int, str, str, float, float, float, str]
Mark = tuple[int, str, float]


def thin(points: list[dict[str, Any]], max_points: int) -> list[dict[str, Any]]:
    """At most ``max_points`` of ``points``, evenly spaced, the first and the last always kept.

    >>> [p["i"] for p in thin([{"i": i} for i in range(10)], 4)]
    [0, 3, 6, 9]
    """
    n = len(points)
    if n <= max_points:
        return points
    if max_points < 2:
        return points[-1:]
    idx = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return [points[i] for i in idx]


def pnl_series(
    fills: Sequence[Fill], marks: Sequence[Mark], *, capital: float | None = None, max_points: int = 2000
) -> dict[str, Any]:
    """One point per distinct mark time: ``pnl`` (cash flow − fees + Σ position × last close, since the first
    stored fill), ``exposure`` (Σ |position × close|), ``drawdown`` (peak P&L so far − P&L, quote currency); with
    ``capital``: ``equity`` = capital + P&L, ``drawdown_frac`` of the peak equity, and ``buy_and_hold``: the capital
    spread equally over the symbols marked at the first point, held. Fills at a mark's time count before it. The
    series is thinned to ``max_points``; the summary figures use every point."""
    pos: dict[str, float] = {}
    last: dict[str, float] = {}
    first: dict[str, float] = {}
    cash = fees = 0.0
    points: list[dict[str, Any]] = []
    i = 0
    j = 0
    n_f, n_m = len(fills), len(marks)
    while j < n_m:
        t = marks[j][0]
        while i < n_f and fills[i][0] <= t:
            _, sym, side, qty, price, fee, _ = fills[i]
            sgn = 1.0 if side == "buy" else -1.0
            pos[sym] = pos.get(sym, 0.0) + sgn * qty
            cash -= sgn * qty * price
            fees += fee
            last.setdefault(sym, price)
            i += 1
        while j < n_m and marks[j][0] == t:
            last[marks[j][1]] = marks[j][2]
            j += 1
        if not points:
            first = dict(last)
        value = sum(q * last.get(s, 0.0) for s, q in pos.items())
        pnl = cash - fees + value
        p: dict[str, Any] = {
            "ts_ns": t,
            "pnl": pnl,
            "exposure": sum(abs(q * last.get(s, 0.0)) for s, q in pos.items()),
        }
        if capital is not None:
            p["equity"] = capital + pnl
            held = [last[s] / first[s] for s in first if first[s] > 0 and s in last]
            p["buy_and_hold"] = capital * (sum(held) / len(held)) if held else capital
        points.append(p)
    # the drawdown below the running peak of the P&L (quote currency), and with a capital as a fraction of the
    # peak equity (0 while the peak equity is not positive): operators.performance's one definition
    peak, below = perf.peak_and_drawdown([p["pnl"] for p in points]) if points else (np.empty(0), np.empty(0))
    for p, dd in zip(points, below.tolist(), strict=True):
        p["drawdown"] = dd
    if capital is not None:
        top = capital + peak
        frac = np.divide(below, top, out=np.zeros_like(below), where=top > 0)
        for p, f in zip(points, frac.tolist(), strict=True):
            p["drawdown_frac"] = f
    max_dd = float(below.max(initial=0.0))
    out: dict[str, Any] = {
        "points": thin(points, max_points),
        "count": len(points),
        "pnl": points[-1]["pnl"] if points else 0.0,
        "max_drawdown": max_dd,
        "fees": fees,
        "symbols": sorted(set(pos) | set(last)),
    }
    if capital is not None:
        out["capital"] = capital
        out["max_drawdown_frac"] = max((p["drawdown_frac"] for p in points), default=0.0)
    return out


def return_matrix(marks: Sequence[Mark], symbols: Sequence[str], window: int) -> np.ndarray:
    """(T, N) simple returns of ``symbols`` between consecutive mark times at which every symbol has a close, the
    last ``window`` rows (the account stage's return window, from stored bars).

    >>> return_matrix([(1, "A", 100.0), (1, "B", 10.0), (2, "A", 110.0), (2, "B", 9.0)], ["A", "B"], 10).round(4)
    array([[ 0.1, -0.1]])
    """
    by_t: dict[int, dict[str, float]] = {}
    for t, s, c in marks:
        by_t.setdefault(t, {})[s] = c
    rows = [[by_t[t][s] for s in symbols] for t in sorted(by_t) if all(s in by_t[t] for s in symbols)]
    if len(rows) < 2:
        return np.zeros((0, len(symbols)))
    a = np.asarray(rows, dtype=np.float64)
    r = a[1:] / a[:-1] - 1.0
    return r[-window:]


def _limit_row(value: float, limit: float | None) -> dict[str, Any]:
    if limit is None or not math.isfinite(limit):
        return {"value": value, "limit": None, "utilisation": None, "breached": False}
    return {
        "value": value,
        "limit": limit,
        "utilisation": value / limit if limit > 0 else None,
        "breached": value > limit,
    }


def risk_view(
    exposure: Mapping[str, float],
    by_strategy: Mapping[str, Mapping[str, float]],
    returns: np.ndarray,
    symbols: Sequence[str],
    *,
    equity: float,
    alpha: float,
    max_var: float | None,
    max_cvar: float | None,
    strategy_budgets: Mapping[str, float] | None = None,
    default_strategy_budget: float | None = None,
) -> dict[str, Any]:
    """The book's one-period risk at ``alpha`` (losses positive, quote currency; ``*_frac`` of ``equity``):
    Gaussian VaR and CVaR (zero mean, sample covariance of ``returns``), historical VaR of the book's P&L over the
    window, the Euler components of the Gaussian VaR per symbol and per strategy (a strategy's component is its
    own exposure vector times the book's marginal VaR, so the components sum to the portfolio VaR), each against
    its limit (fractions of equity: ``max_var``, ``max_cvar``, strategy budgets).

    ``exposure``: symbol -> position × mark; ``by_strategy``: strategy -> symbol -> exposure (the fills of its
    orders); a symbol's exposure not covered by strategies is ``unattributed``.

    >>> r = np.array([[0.01, 0.0], [-0.01, 0.02], [0.02, -0.01], [0.0, 0.01]])
    >>> v = risk_view({"A": 100.0, "B": 50.0}, {"s": {"A": 100.0}}, r, ["A", "B"], equity=1000.0, alpha=0.95,
    ...               max_var=0.05, max_cvar=0.08)
    >>> round(sum(v["component_var"].values()) - v["portfolio_var"], 9), sorted(v["component_var_by_strategy"])
    (0.0, ['s', 'unattributed'])
    """
    x = np.array([float(exposure.get(s, 0.0)) for s in symbols])
    out: dict[str, Any] = {
        "alpha": alpha,
        "equity": equity,
        "window": int(returns.shape[0]),
        "exposure": dict(zip(symbols, x.tolist(), strict=True)),
    }
    strat = {k: np.array([float(v.get(s, 0.0)) for s in symbols]) for k, v in sorted(by_strategy.items())}
    rest = x - sum(strat.values(), np.zeros(len(symbols)))
    if np.abs(rest).max(initial=0.0) > 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0))):
        strat["unattributed"] = rest
    if returns.shape[0] < 2 or not x.any():
        out.update(
            portfolio_var=0.0,
            portfolio_cvar=0.0,
            historical_var=0.0,
            component_var=dict.fromkeys(symbols, 0.0),
            component_var_by_strategy=dict.fromkeys(strat, 0.0),
        )
    else:
        cov = sample_covariance(returns)
        comp = -component_var(x, cov, alpha)
        marginal = np.divide(comp, x, out=np.zeros_like(comp), where=x != 0)
        out["portfolio_var"] = -portfolio_var_gaussian(x, cov, alpha)
        out["portfolio_cvar"] = -portfolio_cvar_gaussian(x, cov, alpha)
        out["historical_var"] = -historical_var(returns @ x, alpha)
        out["component_var"] = dict(zip(symbols, comp.tolist(), strict=True))
        out["component_var_by_strategy"] = {k: float(v @ marginal) for k, v in strat.items()}
    frac = (lambda v: v / equity) if equity > 0 else (lambda v: 0.0)
    for k in ("portfolio_var", "portfolio_cvar", "historical_var"):
        out[k + "_frac"] = frac(out[k])
    budgets = strategy_budgets or {}
    out["limits"] = {
        "portfolio_var": _limit_row(out["portfolio_var_frac"], max_var),
        "portfolio_cvar": _limit_row(out["portfolio_cvar_frac"], max_cvar),
        "strategies": {
            k: _limit_row(frac(v), budgets.get(k, default_strategy_budget))
            for k, v in out["component_var_by_strategy"].items()
        },
    }
    out["breaches"] = sorted(
        [k for k in ("portfolio_var", "portfolio_cvar") if out["limits"][k]["breached"]]
        + [f"strategy:{k}" for k, v in out["limits"]["strategies"].items() if v["breached"]]
    )
    return out


def gate_kill_switch(
    decisions: Iterable[tuple[int, Sequence[str], float | None]], max_drawdown: float | None
) -> dict[str, Any]:
    """The risk gate's kill switch as the stored decisions show it. ``decisions``: ``(ts_ns, reasons, drawdown)``
    newest first. ``halted`` / ``reduce_only`` when the newest decision was refused by it, ``normal`` when the
    newest decision was not, ``unknown`` without decisions; ``drawdown`` (fraction of peak equity) of the newest.

    >>> gate_kill_switch([(5, ["kill_switch_halted"], 0.3)], 0.2)["state"]
    'halted'
    >>> gate_kill_switch([], 0.2)["state"]
    'unknown'
    """
    for ts, reasons, dd in decisions:
        state = (
            "halted"
            if "kill_switch_halted" in reasons
            else "reduce_only"
            if "kill_switch_reduce_only" in reasons
            else "normal"
        )
        return {
            "state": state,
            "as_of_ns": ts,
            "drawdown": dd,
            "max_drawdown": max_drawdown,
            "source": "latest risk decision",
        }
    return {
        "state": "unknown",
        "as_of_ns": None,
        "drawdown": None,
        "max_drawdown": max_drawdown,
        "source": "no risk decision stored",
    }
