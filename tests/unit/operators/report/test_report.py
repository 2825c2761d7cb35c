"""Tear sheets: the builder (operators.report) against the project's statistics and independent textbook formulas,
round trips on hand-built fills, the renderers (connectors.report): self-contained HTML, stable JSON, terminal text
without unit-suffixed field names, and `levibot report compare`."""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics

import numpy as np
import pytest

import connectors.report as creport
from connectors.report import (
    FORMAT,
    compare_summaries,
    format_value,
    render_comparison,
    render_html,
    report_json,
    terminal_summary,
    write_report,
)
from operators import performance as perf
from operators.report import SECTION_KEYS, RunInputs, build_report, round_trips
from operators.risk.backtest import christoffersen, kupiec_pof

NS = 1_000_000_000
DAY = 86_400 * NS
#: a field name with a unit suffix, as the old summary table showed them (``var_breach_rate_frac``, ``start_ts_ns``)
UNIT_SUFFIXED = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:frac|quote|ns|s|per_year|pct|bps|ms)\b")


# ------------------------------------------------------------------------------------------- a fixed run


def _fills(ts: np.ndarray, price: np.ndarray) -> list[dict]:
    """Alternating long and short round trips on one symbol: buy 1 at day 10, sell 2 at day 30 (flip), ..."""
    out = []
    q = 0.0
    for k, i in enumerate(range(10, len(ts) - 10, 20)):
        want = 1.0 if k % 2 == 0 else -1.0
        d = want - q
        out.append(
            {
                "symbol": "BTC-USD",
                "side": "buy" if d > 0 else "sell",
                "qty": abs(d),
                "price": float(price[i]),
                "fee": 0.5 * abs(d),
                "ts": int(ts[i]),
                "order_id": f"o{k}",
            }
        )
        q = want
    return out


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(7)
    n = 420
    ts = np.arange(n, dtype=np.int64) * DAY + 1_600_000_000 * NS
    eq = 100_000.0 * np.cumprod(1 + rng.normal(0.0006, 0.012, n))
    price = 10_000.0 * np.cumprod(1 + rng.normal(0.0003, 0.03, n))
    fills = _fills(ts, price)
    orders = [{"order_id": f["order_id"], "strategy": "trend", "symbol": "BTC-USD"} for f in fills]
    inp = RunInputs(
        ts=ts,
        equity=eq,
        prices={"BTC-USD": (ts, price)},
        fills=fills,
        orders=orders,
        var_window=100,
        capital=100_000.0,
        ticks=1234,
    )
    return inp, build_report(inp, title="fixed run", kind="backtest")


def test_headline_equals_project_functions_and_textbook_formulas(run):
    inp, rep = run
    m = {k: v.value for k, v in rep.metrics().items()}
    eq = np.asarray(inp.equity)
    ts = np.asarray(inp.ts)
    r = [eq[i] / eq[i - 1] - 1 for i in range(1, len(eq))]
    ppy = 365.0  # daily marks, 365-day year
    years = (ts[-1] - ts[0]) / NS / (365 * 86_400)
    # textbook, computed here without the project's code
    mean, sd = statistics.fmean(r), statistics.stdev(r)
    sharpe = mean / sd * math.sqrt(ppy)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    peak, mdd = eq[0], 0.0
    for e in eq:
        peak = max(peak, e)
        mdd = max(mdd, (peak - e) / peak)
    total = eq[-1] / eq[0] - 1
    cagr = (eq[-1] / eq[0]) ** (1 / years) - 1
    notional = sum(f["price"] * f["qty"] for f in inp.fills)
    fees = sum(f["fee"] for f in inp.fills)
    ref = {
        "total_return": total,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": mean / downside * math.sqrt(ppy),
        "volatility": sd * math.sqrt(ppy),
        "max_drawdown": mdd,
        "calmar": cagr / mdd,
        "pnl": eq[-1] - eq[0],
        "end_equity": eq[-1],
        "fees": fees,
        "traded_notional": notional,
        "turnover": notional / statistics.fmean(eq) / years,
        "fills": len(inp.fills),
        "orders": len(inp.orders),
    }
    for k, v in ref.items():
        assert m[k] == pytest.approx(v, rel=1e-9), k
    # and the project's own functions, the one definition of each number
    rr = perf.period_returns(eq)
    assert m["sharpe"] == perf.sharpe(rr, ppy) and m["sortino"] == perf.sortino(rr, ppy)
    assert m["max_drawdown"] == perf.max_drawdown(eq) and m["total_return"] == perf.total_return(eq)
    assert m["cagr"] == perf.cagr(ts, eq)
    assert m["max_drawdown_duration"] == perf.max_drawdown_duration_s(ts, eq)
    # buy and hold of the one symbol, no costs
    p = np.asarray(inp.prices["BTC-USD"][1])
    assert m["buy_hold_return"] == pytest.approx(p[-1] / p[0] - 1, rel=1e-12)


def test_risk_section_uses_the_risk_backtests(run):
    inp, rep = run
    m = {k: v.value for k, v in rep.metrics().items()}
    eq = np.asarray(inp.equity)
    r = eq[1:] / eq[:-1] - 1
    w = inp.var_window
    # rolling historical VaR, recomputed by hand: the 1 % linear quantile of the previous w returns
    var = np.array([np.quantile(r[i - w : i], 0.01) for i in range(w, r.size)])
    hits = r[w:] < var
    assert m["var_forecasts"] == hits.size and m["var_breaches"] == int(hits.sum())
    assert m["kupiec_p"] == pytest.approx(kupiec_pof(hits.size, int(hits.sum()), 0.99).p_value)
    ch = christoffersen(hits, 0.99)
    assert m["christoffersen_ind_p"] == ch.p_ind and m["christoffersen_cc_p"] == ch.p_cc


def test_christoffersen_against_scipy_and_hand_counts():
    from scipy.stats import chi2

    rng = np.random.default_rng(1)
    hits = rng.random(2000) < 0.03
    hits[500:520] = True  # a cluster
    ch = christoffersen(hits, 0.99)
    prev, cur = hits[:-1], hits[1:]
    n = {(a, b): int(np.sum((prev == a) & (cur == b))) for a in (0, 1) for b in (0, 1)}
    p01, p11 = n[0, 1] / (n[0, 0] + n[0, 1]), n[1, 1] / (n[1, 0] + n[1, 1])
    pi = (n[0, 1] + n[1, 1]) / sum(n.values())
    l0 = (n[0, 0] + n[1, 0]) * math.log(1 - pi) + (n[0, 1] + n[1, 1]) * math.log(pi)
    l1 = n[0, 0] * math.log(1 - p01) + n[0, 1] * math.log(p01) + n[1, 0] * math.log(1 - p11) + n[1, 1] * math.log(p11)
    assert ch.lr_ind == pytest.approx(-2 * (l0 - l1), rel=1e-10)
    assert ch.p_ind == pytest.approx(chi2.sf(ch.lr_ind, 1), rel=1e-8)
    assert ch.p_cc == pytest.approx(chi2.sf(ch.lr_cc, 2), rel=1e-8)
    assert ch.p_ind < 1e-6  # the cluster is found


def test_tear_sheet_statistics_against_naive_loops():
    from scipy import stats

    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.02, 300)
    s, v = perf.rolling_sharpe_vol(r, 50, 365.0)
    for i in (49, 120, 299):
        wdw = r[i - 49 : i + 1]
        assert s[i] == pytest.approx(wdw.mean() / wdw.std(ddof=1) * math.sqrt(365), rel=1e-8)
        assert v[i] == pytest.approx(wdw.std(ddof=1) * math.sqrt(365), rel=1e-8)
    assert np.isnan(s[:49]).all()
    sk, ku = perf.skew_kurtosis(r)
    assert sk == pytest.approx(stats.skew(r), rel=1e-9) and ku == pytest.approx(stats.kurtosis(r), rel=1e-9)
    ts = np.arange(r.size + 1, dtype=np.int64) * DAY
    eq = 100 * np.concatenate([[1.0], np.cumprod(1 + r)])
    months = perf.calendar_returns(ts, eq, "month")
    assert math.prod(1 + x for _, _, x in months) - 1 == pytest.approx(eq[-1] / eq[0] - 1, rel=1e-10)
    assert [(y, mo) for y, mo, _ in months][:2] == [(1970, 1), (1970, 2)]
    worst = perf.drawdown_periods(ts, eq, 5)
    assert worst[0]["depth"] == pytest.approx(perf.max_drawdown(eq)) and len(worst) <= 5
    assert all(a["depth"] >= b["depth"] for a, b in itertools.pairwise(worst))


# ------------------------------------------------------------------------------------------------ trades


def test_round_trips_on_a_hand_built_fill_sequence():
    def f(sym, side, qty, px, ts, fee=0.0, oid=""):
        return dict(symbol=sym, side=side, qty=qty, price=px, ts=ts * NS, fee=fee, order_id=oid)

    fills = [
        f("BTC", "buy", 0.5, 100.0, 0, 0.05, "a"),  # long 1 in two partial fills
        f("BTC", "buy", 0.5, 102.0, 10, 0.05, "a"),
        f("ETH", "sell", 2.0, 50.0, 15, 0.10, "e"),  # ETH short, interleaved
        f("BTC", "sell", 0.4, 110.0, 20, 0.04, "b"),  # partial exit
        f("BTC", "sell", 0.6, 90.0, 30, 0.06, "b"),  # flat: BTC trade 1 = 0.4*110 + 0.6*90 - 101 - 0.2 = -3.2
        f("ETH", "buy", 3.0, 40.0, 40, 0.30, "e"),  # ETH flip: short closes +20 - 0.1 - 0.2 = 19.7; long 1 opens
        f("BTC", "sell", 1.0, 95.0, 50, 0.10, "c"),  # BTC short 1 opens
        f("BTC", "buy", 1.0, 94.0, 60, 0.10, "c"),  # flat: +1 - 0.2 = 0.8
        f("ETH", "sell", 1.0, 45.0, 70, 0.10, "e"),  # ETH long closes: +5 - 0.1 (its part of the flip fee) - 0.1 = 4.8
        f("BTC", "buy", 2.0, 96.0, 80, 0.20, "d"),  # open at the end
    ]
    closed, still = round_trips(fills, {"a": "trend", "b": "trend", "c": "zscore", "d": "zscore", "e": "tg"})
    assert len(closed) == 4 and len(still) == 1
    got = sorted(
        (t.symbol, t.side, t.open_ts // NS, t.close_ts // NS, round(t.pnl, 9), t.fills, t.strategy) for t in closed
    )
    assert got == [
        ("BTC", "long", 0, 30, -3.2, 4, "trend"),
        ("BTC", "short", 50, 60, 0.8, 2, "zscore"),
        ("ETH", "long", 40, 70, 4.8, 2, "tg"),
        ("ETH", "short", 15, 40, 19.7, 2, "tg"),
    ]
    assert still[0].symbol == "BTC" and still[0].close_ts is None
    # the report counts round trips, not fills
    ts = np.arange(0, 90, 10, dtype=np.int64) * NS
    rep = build_report(
        RunInputs(
            ts=ts,
            equity=np.linspace(1000, 1021.1, ts.size),
            fills=fills,
            orders=[{"order_id": k, "strategy": "x"} for k in "abcde"],
        ),
        title="t",
    )
    m = {k: x.value for k, x in rep.metrics().items()}
    assert m["trades"] == 4 and m["fills"] == 10 and m["orders"] == 5 and m["open_trades"] == 1
    assert m["hit_rate"] == 0.75
    assert m["avg_win"] == pytest.approx((19.7 + 0.8 + 4.8) / 3) and m["avg_loss"] == pytest.approx(-3.2)
    assert m["avg_holding"] == pytest.approx((30 + 10 + 30 + 25) / 4)


def test_final_mark_is_appended_when_the_marks_stop_a_bar_short():
    ts = np.array([0, 1, 2], dtype=np.int64) * DAY
    rep = build_report(RunInputs(ts=ts, equity=[100.0, 101.0, 102.0], final_mark=(3 * DAY, 104.0)), title="t")
    assert rep.metrics()["end_equity"].value == 104.0 and rep.period == (0, 3 * DAY)
    same = build_report(RunInputs(ts=ts, equity=[100.0, 101.0, 102.0], final_mark=(2 * DAY, 99.0)), title="t")
    assert same.metrics()["end_equity"].value == 102.0


# ----------------------------------------------------------------------------------------------- renderers


def _visible_text(page: str) -> str:
    page = re.sub(r"<script\b.*?</script>", " ", page, flags=re.S)
    page = re.sub(r"<style\b.*?</style>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_html_is_self_contained_with_every_section_and_human_labels(run, tmp_path):
    _, rep = run
    html_path, json_path = write_report(rep, tmp_path, "r")
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    for key in ("headline", *SECTION_KEYS):
        assert f'data-section="{key}"' in page, key
    # nothing outside the file: no external script, stylesheet, image or font
    assert not re.search(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    text = _visible_text(page)
    assert not UNIT_SUFFIXED.findall(text), UNIT_SUFFIXED.findall(text)[:5]
    for label in (
        "Total return",
        "Sharpe ratio (annualised)",
        "Max drawdown",
        "Fees paid",
        "Annual turnover",
        "Trades (round trips)",
        "Orders sent",
        "Fills",
        "No Telegram signals in this run",
    ):
        assert label in text, label
    assert html_path.stat().st_size < 6_000_000
    data = json.loads(json_path.read_text())
    assert data["format"] == FORMAT and data["version"] == 1 and data["kind"] == "backtest"
    assert {
        "total_return",
        "sharpe",
        "max_drawdown",
        "fees",
        "turnover",
        "trades",
        "orders",
        "fills",
        "hit_rate",
        "var_breaches",
        "kupiec_p",
        "christoffersen_cc_p",
    } <= set(data["metrics"])
    assert data["metric_info"]["sharpe"] == {
        "label": "Sharpe ratio (annualised)",
        "unit": "ratio",
        "section": "headline",
        "note": "risk-free rate 0, 365-day year",
    }
    assert set(data["sections"]) == set(SECTION_KEYS)


def test_terminal_summary_has_no_unit_suffixed_names(run):
    _, rep = run
    text = terminal_summary(rep)
    assert not UNIT_SUFFIXED.findall(text), UNIT_SUFFIXED.findall(text)
    assert "Trades (round trips)" in text and "Orders sent" in text and "No Telegram signals" in text


def test_long_series_are_thinned_and_the_page_stays_small():
    n = 200_000
    ts = np.arange(n, dtype=np.int64) * 60 * NS
    eq = 1e5 * np.cumprod(1 + np.random.default_rng(0).normal(0, 1e-4, n))
    rep = build_report(RunInputs(ts=ts, equity=eq, var_window=500), title="long", max_points=1000)
    assert all(c.points() <= 4 * 1000 for s in rep.sections for c in s.charts)
    page = render_html(rep)
    assert len(page) - len(creport._plotly_js()) < 600_000
    assert "Telegram" in page


def test_format_value_by_unit():
    assert format_value("fraction", -0.0000123) == "-0.00123 %"
    assert format_value("quote", -1234.5) == "-1,234.50"
    assert format_value("seconds", 5400.0) == "1.5 hours"
    assert format_value("ratio", float("inf")) == "∞" and format_value("ratio", None) == "n/a"
    assert format_value("count", np.int64(5)) == "5" and format_value("text", "x") == "x"


def test_compare_two_runs(run, tmp_path):
    import typer
    from typer.testing import CliRunner

    from flows.cli_report import register

    inp, rep = run
    a = report_json(rep)
    rep2 = build_report(
        RunInputs(
            ts=inp.ts,
            equity=np.asarray(inp.equity) * np.linspace(1, 1.1, len(inp.ts)),
            fills=inp.fills[:3],
            orders=inp.orders[:3],
        ),
        title="other run",
    )
    b = report_json(rep2)
    rows = {r["key"]: r for r in compare_summaries(a, b)}
    assert (
        rows["fills"]["a"] == len(inp.fills) and rows["fills"]["b"] == 3 and rows["fills"]["diff"] == 3 - len(inp.fills)
    )
    assert rows["total_return"]["diff"] == pytest.approx(b["metrics"]["total_return"] - a["metrics"]["total_return"])
    text = render_comparison(a, b, headline_only=True)
    assert "Total return" in text and "B minus A" in text and not UNIT_SUFFIXED.findall(text)
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    write_report(rep, tmp_path, "a")
    write_report(rep2, tmp_path, "b")
    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command, so Typer keeps sub-command names
        pass

    register(app)
    res = CliRunner().invoke(app, ["report", "compare", str(pa), str(pb)])
    assert res.exit_code == 0, res.output
    assert "Sharpe ratio (annualised)" in res.output and "fixed run" in res.output and "other run" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert CliRunner().invoke(app, ["report", "compare", str(pa), str(bad)]).exit_code == 2


def test_walkforward_result_becomes_a_tear_sheet():
    from flows.cli_report import walkforward_report

    ts = np.arange(300, dtype=np.int64) * 1800 * NS
    curves = {
        k: (ts, 2e5 * np.cumprod(1 + np.random.default_rng(i).normal(0, 1e-3, ts.size)))
        for i, k in enumerate(("trend", "portfolio_risk_parity"))
    }
    rows = [
        {"strategy": k, "sharpe": 1.0, "total_return_frac": 0.1, "probabilistic_sharpe": 0.9, "deflated_sharpe": 0.4}
        for k in curves
    ]
    rep = walkforward_report({"curves": curves, "rows": rows, "folds": 2, "seconds": 1.0, "trials": 52})
    assert rep.kind == "walkforward" and rep.section("runs").tables[0].rows[0]["strategy"] == "trend"
    table = rep.section("runs").tables[0]
    assert table.rows[0]["dsr"] == 0.4 and "52 configurations" in table.note
    assert len(rep.section("runs").charts[0].series) == 2
    assert not UNIT_SUFFIXED.findall(_visible_text(render_html(rep)))
