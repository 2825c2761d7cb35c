"""Performance statistics (operators.performance): hand-computed cases, properties, Kupiec, streaming == batch,
and an independent library (empyrical-reloaded) on the real returns of the bundled BTC and ETH history."""

from __future__ import annotations

import math
import pickle
import statistics

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import operators.performance as perf
from operators.performance import (
    NS_PER_S,
    EquityTracker,
    cagr,
    calmar,
    chi2_1_sf,
    drawdown_series,
    hit_rate,
    infer_period_s,
    kupiec_pof,
    max_drawdown,
    max_drawdown_duration_s,
    period_returns,
    periods_per_year,
    sharpe,
    sortino,
    summarize,
    total_return,
    traded_notional,
    turnover,
    var_breach_count,
)
from tests.support import REPO

try:  # an independent reference when available; the hand values below are always checked
    from scipy import stats as scipy_stats
except ImportError:  # pragma: no cover
    scipy_stats = None

DAY_NS = 86_400 * NS_PER_S
YEAR_NS = 365 * DAY_NS
EQ = [100.0, 110.0, 99.0, 120.0]
TS = np.arange(4, dtype=np.int64) * DAY_NS


# ------------------------------------------------------------------------------------------ hand-computed


def test_returns_and_drawdown_by_hand():
    r = period_returns(EQ)
    assert r.tolist() == pytest.approx([0.1, -0.1, 120 / 99 - 1], rel=1e-15)
    assert max_drawdown(EQ) == 0.1  # (110 - 99) / 110, exactly
    assert drawdown_series(EQ).tolist() == [0.0, 0.0, 0.1, 0.0]
    assert total_return(EQ) == pytest.approx(0.2, rel=1e-15)


def test_sharpe_and_sortino_by_hand():
    r = [0.1, -0.1, 120 / 99 - 1]
    ppy = 365.0
    expected_sharpe = statistics.mean(r) / statistics.stdev(r) * math.sqrt(ppy)  # stdev: n - 1
    assert sharpe(np.array(r), ppy) == pytest.approx(expected_sharpe, rel=1e-12)
    assert sharpe(np.array(r), ppy) == pytest.approx(8.543828, rel=1e-6)
    downside = math.sqrt((0.0 + 0.01 + 0.0) / 3)  # min(r, 0)^2 averaged over all three returns
    assert sortino(np.array(r), ppy) == pytest.approx(statistics.mean(r) / downside * math.sqrt(ppy), rel=1e-12)
    s = summarize(TS, EQ, period_s=86_400)
    assert s["sharpe"] == pytest.approx(expected_sharpe, rel=1e-12)
    assert s["volatility_ann_frac"] == pytest.approx(statistics.stdev(r) * math.sqrt(ppy), rel=1e-12)


def test_annualisation():
    assert periods_per_year(1800) == 17_520.0
    assert periods_per_year(1) == 31_536_000.0
    assert infer_period_s(np.array([0, 60, 120, 300]) * NS_PER_S) == 60.0
    assert math.isnan(infer_period_s(np.array([5])))
    with pytest.raises(ValueError):
        periods_per_year(0)


def test_cagr_calmar_turnover_hit_rate_by_hand():
    ts = np.array([0, YEAR_NS, 2 * YEAR_NS])
    eq = [100.0, 80.0, 121.0]
    assert cagr(ts, eq) == pytest.approx(0.1, rel=1e-12)
    assert calmar(0.1, 0.2) == pytest.approx(0.5)
    assert math.isnan(calmar(0.1, 0.0)) and math.isnan(calmar(float("nan"), 0.1))
    assert turnover(1000.0, 100.0, 2.0) == 5.0
    assert hit_rate([1.0, -1.0, 0.0, 2.0, 3.0]) == 0.6
    assert math.isnan(hit_rate([]))
    s = summarize(
        ts,
        eq,
        period_s=YEAR_NS / NS_PER_S,
        fills=[{"price": 10.0, "qty": 30.0, "fee": 0.5}, {"price": 20.0, "qty": -10.0, "fee": 0.25}],
        trade_pnls=[5.0, -2.0],
    )
    assert s["years"] == 2.0
    assert s["cagr_frac"] == pytest.approx(0.1, rel=1e-12)
    assert s["max_drawdown_frac"] == pytest.approx(0.2, rel=1e-15)
    assert s["calmar"] == pytest.approx(0.5, rel=1e-12)
    assert s["traded_notional_quote"] == 500.0 and s["fees_quote"] == 0.75 and s["n_fills"] == 2
    assert s["turnover_per_year"] == pytest.approx(500.0 / np.mean(eq) / 2.0, rel=1e-15)
    assert s["n_trades"] == 2 and s["hit_rate_frac"] == 0.5


def test_fills_as_objects():
    from schemas.events import Fill

    f = Fill(
        fill_id="f1",
        order_id="o1",
        symbol="BTC-USD",
        side="buy",
        price=100.0,
        qty=0.5,
        fee=0.05,
        ts=1_700_000_000 * NS_PER_S,
    )
    assert traded_notional([f, {"price": 10.0, "qty": 1.0}]) == (60.0, 0.05)


def test_drawdown_duration_by_hand():
    ts = np.array([0, 10, 20, 30, 40, 50, 60]) * NS_PER_S
    # peak 100 at 0 s, regained at 30 s (30 s); new peak 105 at 40 s, under water to the end at 60 s (20 s)
    assert max_drawdown_duration_s(ts, [100.0, 90.0, 95.0, 100.0, 105.0, 104.0, 103.0]) == 30.0
    assert max_drawdown_duration_s(ts, [100.0, 101.0, 102.0, 90.0, 91.0, 92.0, 93.0]) == 40.0
    assert max_drawdown_duration_s(ts, [100.0] * 7) == 0.0


def test_flat_curve_undefined_ratios_are_nan():
    s = summarize(np.arange(5) * DAY_NS, [100.0] * 5)
    assert s["max_drawdown_frac"] == 0.0 and s["total_return_frac"] == 0.0 and s["cagr_frac"] == 0.0
    for k in ("sharpe", "sortino", "calmar", "hit_rate_frac", "var_breach_rate_frac", "kupiec_lr", "kupiec_p_value"):
        assert math.isnan(s[k]), k
    assert s["n_var_forecasts"] == 0 and s["n_trades"] == 0
    one = summarize(np.array([7]), [50.0])
    assert one["n_marks"] == 1 and math.isnan(one["sharpe"]) and math.isnan(one["cagr_frac"])
    assert math.isnan(one["period_s"]) and math.isnan(one["mean_return_frac"])


def test_sortino_nan_without_losses_and_constant_returns_sharpe_nan():
    assert math.isnan(sortino(np.array([0.01, 0.02]), 365.0))
    assert math.isnan(sharpe(np.full(10, 0.01), 365.0))  # std is rounding noise: undefined, not 1e15


def test_summary_values_are_plain_python_numbers():
    rng = np.random.default_rng(1)
    eq = 1000 * np.cumprod(1 + rng.normal(0, 0.01, 200))
    s = summarize(np.arange(200) * 1800 * NS_PER_S, eq, var_forecasts=np.full(199, -0.02))
    assert len(s) == 31
    for k, v in s.items():
        assert type(v) in (int, float), (k, type(v))
    assert s["period_s"] == 1800.0 and s["periods_per_year"] == 17_520.0


def test_input_validation():
    with pytest.raises(ValueError):
        max_drawdown([100.0, 0.0])
    with pytest.raises(ValueError):
        max_drawdown([100.0, float("nan")])
    with pytest.raises(ValueError):
        summarize(np.array([2, 1]), [1.0, 2.0])
    with pytest.raises(ValueError):
        summarize(np.array([1, 2, 3]), [1.0, 2.0])
    with pytest.raises(ValueError):
        summarize(np.array([1, 2]), [1.0, 2.0], var_forecasts=[-0.1, -0.1])  # one forecast per return
    tr = EquityTracker()
    tr.update(10, 1.0)
    with pytest.raises(ValueError):
        tr.update(9, 1.0)
    with pytest.raises(ValueError):
        tr.update(11, -1.0)


# --------------------------------------------------------------------------------------- VaR and Kupiec

# chi2(1) upper quantiles (critical values at 10 %, 5 %, 1 %, 0.1 %) and sf(1) = 2(1 - Phi(1))
CHI2_1_HAND = [
    (3.841458820694124, 0.05),
    (2.705543454095404, 0.10),
    (6.634896601021214, 0.01),
    (10.827566170662733, 0.001),
    (1.0, 0.31731050786291415),
]


@pytest.mark.parametrize(("x", "p"), CHI2_1_HAND)
def test_chi2_sf_hand_values(x, p):
    assert chi2_1_sf(x) == pytest.approx(p, rel=1e-12)


def test_chi2_sf_against_scipy_or_hand():
    xs = [0.0, 1e-8, 0.1, 0.5, 1.0, 2.0, 3.841458820694124, 7.5, 15.0, 40.0, 100.0]
    if scipy_stats is None:  # no reference library installed: the hand table is the check
        for x, p in CHI2_1_HAND:
            assert chi2_1_sf(x) == pytest.approx(p, rel=1e-12)
        return
    for x in xs:
        assert chi2_1_sf(x) == pytest.approx(float(scipy_stats.chi2.sf(x, 1)), rel=1e-12, abs=1e-300)
    assert chi2_1_sf(-1.0) == 1.0 and math.isnan(chi2_1_sf(float("nan")))


@pytest.mark.parametrize(
    ("n", "x", "alpha"),
    [
        (1000, 10, 0.99),
        (1000, 20, 0.99),
        (1000, 0, 0.99),
        (1000, 1000, 0.99),
        (250, 3, 0.99),
        (500, 40, 0.95),
        (500, 10, 0.95),
        (17_519, 250, 0.99),
    ],
)
def test_kupiec_against_binomial_likelihood(n, x, alpha):
    # LR = 2 [ln L(p̂) - ln L(p)]: the binomial coefficient cancels, so log-pmfs give the same statistic
    p = 1 - alpha
    ph = x / n

    def loglik(q):
        return (0.0 if x == 0 else x * math.log(q)) + (0.0 if x == n else (n - x) * math.log(1 - q))

    lr = 2 * (loglik(ph) - loglik(p))
    k = kupiec_pof(n, x, alpha)
    assert k.lr == pytest.approx(lr, rel=1e-12, abs=1e-12)
    assert k.p_value == pytest.approx(math.erfc(math.sqrt(lr / 2)), rel=1e-12, abs=1e-300)
    if scipy_stats is not None and 0 < x < n:
        ref = 2 * (scipy_stats.binom.logpmf(x, n, ph) - scipy_stats.binom.logpmf(x, n, p))
        assert k.lr == pytest.approx(float(ref), rel=1e-9, abs=1e-9)
        # sf is steep at 0 (d sf / d x ~ x^-1/2): logpmf rounding of ~1e-14 in LR moves it by ~1e-7
        assert k.p_value == pytest.approx(float(scipy_stats.chi2.sf(ref, 1)), rel=1e-8, abs=1e-6)


def test_kupiec_known_values():
    assert kupiec_pof(1000, 10, 0.99) == perf.KupiecResult(0.0, 1.0)  # exactly at the expected rate
    assert kupiec_pof(1000, 20, 0.99).lr == pytest.approx(7.827239, abs=1e-6)
    k = kupiec_pof(250, 0, 0.99)  # no breaches: LR = -2 * 250 ln 0.99
    assert k.lr == pytest.approx(-500 * math.log(0.99), rel=1e-12)
    with pytest.raises(ValueError):
        kupiec_pof(0, 0, 0.99)
    with pytest.raises(ValueError):
        kupiec_pof(10, 11, 0.99)
    with pytest.raises(ValueError):
        kupiec_pof(10, 1, 1.0)


def test_kupiec_agrees_with_risk_backtest():
    from operators.risk.backtest import kupiec_pof as risk_kupiec

    for n, x in [(1000, 7), (1000, 25), (300, 0)]:
        a, b = kupiec_pof(n, x, 0.99), risk_kupiec(n, x, 0.99)
        assert (a.lr, a.p_value) == pytest.approx((b.lr, b.p_value), rel=1e-12, abs=1e-15)


def test_var_breaches_in_summary():
    ts = np.arange(6) * DAY_NS
    eq = [100.0, 97.0, 98.0, 94.0, 95.0, 95.0]  # returns -3 %, +1.03 %, -4.08 %, +1.06 %, 0
    var = [float("nan"), -0.02, -0.02, -0.02, -0.02]  # first return has no forecast
    assert var_breach_count(period_returns(eq), var) == (4, 1)
    assert var_breach_count([-0.02], [-0.02]) == (1, 0)  # equal to the VaR is not a breach
    s = summarize(ts, eq, var_forecasts=var, var_alpha=0.95)
    assert s["n_var_forecasts"] == 4 and s["n_var_breaches"] == 1
    assert s["var_breach_rate_frac"] == 0.25 and s["var_expected_rate_frac"] == pytest.approx(0.05)
    k = kupiec_pof(4, 1, 0.95)
    assert (s["kupiec_lr"], s["kupiec_p_value"]) == (k.lr, k.p_value)


# ------------------------------------------------------------------------------------------- properties

returns_st = st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=1, max_size=80)
start_st = st.floats(1e-2, 1e7)


def _curve(start: float, rets: list[float]) -> np.ndarray:
    return start * np.cumprod(np.concatenate(([1.0], 1.0 + np.asarray(rets))))


@settings(max_examples=200, deadline=None)
@given(start_st, returns_st)
def test_drawdown_in_unit_interval(start, rets):
    dd = drawdown_series(_curve(start, rets))
    assert np.all(dd >= 0.0) and np.all(dd < 1.0)
    assert dd[0] == 0.0
    assert max_drawdown(_curve(start, rets)) == dd.max()


#: Returns of 0 or at least 1e-6 in size: a "loss" of a few ulps is rounding noise whose size depends on the equity's
#: scale, so a Sortino ratio over it (1e13 and more) changes with the scale in its fourth digit (found by a random run)
real_moves_st = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 0.5), st.floats(-0.5, -1e-6)), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(start_st, real_moves_st, st.floats(1e-3, 1e3))
@example(start=0.375, rets=[0.5, -2.220446049250313e-16], c=0.001)  # a rounding-noise "loss": Sortino NaN, not 6e16
def test_scaling_equity_leaves_ratios_unchanged(start, rets, c):
    eq = _curve(start, rets)
    r = period_returns(eq)
    assume(r.size >= 2 and r.std(ddof=1) > 1e-6)
    ts = np.arange(eq.size) * 3600 * NS_PER_S
    a, b = summarize(ts, eq), summarize(ts, eq * c)
    for k in ("sharpe", "sortino", "total_return_frac", "mean_return_frac", "volatility_ann_frac"):
        if math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-9), k
    assert b["max_drawdown_frac"] == pytest.approx(a["max_drawdown_frac"], abs=1e-12)
    assert b["max_drawdown_duration_s"] == pytest.approx(a["max_drawdown_duration_s"], abs=3600)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=2, max_size=80))
def test_sharpe_and_sortino_sign_follow_mean(rets):
    r = np.asarray(rets)
    s, so = sharpe(r, 365.0), sortino(r, 365.0)
    m = r.mean()
    if not math.isnan(s):
        assert np.sign(s) == np.sign(m)
    if not math.isnan(so):
        assert np.sign(so) == np.sign(m)
    if r.std(ddof=1) > 1e-9 * max(abs(m), 1e-300) and m != 0:
        assert not math.isnan(s)


# ------------------------------------------------------------------------------------ streaming == batch

marks_st = st.lists(st.tuples(st.integers(0, 10_000), st.floats(-0.3, 0.3, allow_nan=False)), min_size=1, max_size=120)


def _marks(start: float, steps: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    ts = 1_700_000_000 * NS_PER_S + np.cumsum([s for s, _ in steps]) * NS_PER_S  # gaps may be 0
    return ts.astype(np.int64), _curve(start, [r for _, r in steps])[1:]


@settings(max_examples=300, deadline=None)
@given(start_st, marks_st)
def test_streaming_equals_batch(start, steps):
    ts, eq = _marks(start, steps)
    tr = EquityTracker()
    dds = [tr.update(t, e) for t, e in zip(ts.tolist(), eq.tolist(), strict=True)]
    assert dds == drawdown_series(eq).tolist()  # same arithmetic: exact
    assert tr.max_drawdown == max_drawdown(eq)
    assert tr.max_drawdown_duration_ns / NS_PER_S == max_drawdown_duration_s(ts, eq)
    assert tr.n_marks == eq.size and tr.n_returns == eq.size - 1
    assert tr.peak == eq.max() and tr.last_equity == eq[-1]
    assert tr.total_return == pytest.approx(total_return(eq), rel=1e-12, abs=1e-15)
    r = period_returns(eq)
    if r.size:
        assert tr.mean == pytest.approx(r.mean(), rel=1e-9, abs=1e-15)
    ppy = 17_520.0
    b_sharpe, s_sharpe = sharpe(r, ppy), tr.sharpe(ppy)
    if r.size >= 2 and r.std(ddof=1) > 1e-9:
        assert s_sharpe == pytest.approx(b_sharpe, rel=1e-8, abs=1e-10)
        assert tr.std == pytest.approx(r.std(ddof=1), rel=1e-8)
    elif r.size < 2 or r.std(ddof=1) == 0.0:
        assert math.isnan(s_sharpe) and math.isnan(b_sharpe)
    b_sortino, s_sortino = sortino(r, ppy), tr.sortino(ppy)
    if math.isnan(b_sortino):
        assert math.isnan(s_sortino)
    else:
        assert s_sortino == pytest.approx(b_sortino, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(start_st, marks_st, st.data())
def test_tracker_pickles_mid_stream(start, steps, data):
    ts, eq = _marks(start, steps)
    cut = data.draw(st.integers(0, eq.size))
    marks = list(zip(ts.tolist(), eq.tolist(), strict=True))
    whole = EquityTracker()
    for m in marks:
        whole.update(*m)
    part = EquityTracker()
    for m in marks[:cut]:
        part.update(*m)
    part = pickle.loads(pickle.dumps(part))
    for m in marks[cut:]:
        part.update(*m)
    assert repr(part.__getstate__()) == repr(whole.__getstate__())


def test_streaming_equals_batch_on_a_long_curve():
    rng = np.random.default_rng(7)
    n = 20_000
    eq = 1e4 * np.cumprod(1 + rng.standard_t(4, n) * 0.004)
    ts = (1_600_000_000 + np.arange(n) * 1800) * NS_PER_S
    tr = EquityTracker()
    for t, e in zip(ts.tolist(), eq.tolist(), strict=True):
        tr.update(t, e)
    s = summarize(ts, eq)
    assert tr.max_drawdown == s["max_drawdown_frac"]
    assert tr.max_drawdown_duration_ns / NS_PER_S == s["max_drawdown_duration_s"]
    assert tr.sharpe(s["periods_per_year"]) == pytest.approx(s["sharpe"], rel=1e-10)
    assert tr.sortino(s["periods_per_year"]) == pytest.approx(s["sortino"], rel=1e-10)


# ---------------------------------------------------------------------------- independent reference: empyrical


def _real_curve(symbol: str, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(ts ns, equity)`` of holding one unit of ``symbol`` over the bundled 30-minute history (two years of real
    closes, gaps as they are), every ``every``-th bar."""
    import pandas as pd

    df = pd.read_csv(REPO / "data" / "market" / f"{symbol}-30m.csv.gz")
    ts = pd.to_datetime(df["Date"], utc=True).astype("int64").to_numpy()[::every]
    return ts, df[f"{symbol}.close"].to_numpy(dtype=np.float64)[::every]


def _curves():
    btc_ts, btc = _real_curve("BTC")
    eth_ts, eth = _real_curve("ETH")
    d_ts, d_eq = _real_curve("BTC", every=48)  # one mark a day
    short = 6.0 - eth / eth[0]  # short one unit of ETH against 6 units of cash: a falling market wins
    return {
        "BTC 30m": (btc_ts, btc, 1800.0),
        "ETH 30m": (eth_ts, eth, 1800.0),
        "BTC daily": (d_ts, d_eq, 86_400.0),
        "ETH short 30m": (eth_ts, short, 1800.0),
    }


@pytest.mark.parametrize("name", ["BTC 30m", "ETH 30m", "BTC daily", "ETH short 30m"])
def test_statistics_match_empyrical_on_real_returns(name):
    """Sharpe, Sortino, volatility, max drawdown, CAGR and Calmar of operators.performance (the batch functions,
    the summary and the streaming tracker) equal empyrical-reloaded's on the same real returns. empyrical counts
    years as returns / periods per year; ours by the timestamps (gaps in the data count as time), so its CAGR is
    given the same span through ``annualization``."""
    import empyrical

    ts, eq, period_s = _curves()[name]
    r = period_returns(eq)
    ppy = periods_per_year(period_s)
    assert r.size > 700 and np.isfinite(r).all()

    assert sharpe(r, ppy) == pytest.approx(empyrical.sharpe_ratio(r, annualization=ppy), rel=1e-10)
    assert sortino(r, ppy) == pytest.approx(empyrical.sortino_ratio(r, annualization=ppy), rel=1e-10)
    assert max_drawdown(eq) == pytest.approx(-empyrical.max_drawdown(r), rel=1e-10)
    years = (ts[-1] - ts[0]) / YEAR_NS
    growth = empyrical.annual_return(r, annualization=r.size / years)
    assert cagr(ts, eq) == pytest.approx(growth, rel=1e-9)
    assert calmar(cagr(ts, eq), max_drawdown(eq)) == pytest.approx(
        empyrical.calmar_ratio(r, annualization=r.size / years), rel=1e-9
    )

    s = summarize(ts, eq, period_s=period_s)
    assert s["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=ppy), rel=1e-10)
    assert s["sortino"] == pytest.approx(empyrical.sortino_ratio(r, annualization=ppy), rel=1e-10)
    assert s["volatility_ann_frac"] == pytest.approx(empyrical.annual_volatility(r, annualization=ppy), rel=1e-10)
    assert s["max_drawdown_frac"] == pytest.approx(-empyrical.max_drawdown(r), rel=1e-10)
    assert s["cagr_frac"] == pytest.approx(growth, rel=1e-9)
    assert s["total_return_frac"] == pytest.approx(empyrical.cum_returns_final(r), rel=1e-9)

    tr = EquityTracker()
    for t, e in zip(ts.tolist(), eq.tolist(), strict=True):
        tr.update(t, e)
    assert tr.sharpe(ppy) == pytest.approx(empyrical.sharpe_ratio(r, annualization=ppy), rel=1e-8)
    assert tr.sortino(ppy) == pytest.approx(empyrical.sortino_ratio(r, annualization=ppy), rel=1e-8)
    assert tr.max_drawdown == pytest.approx(-empyrical.max_drawdown(r), rel=1e-10)


def test_the_real_curves_are_not_degenerate():
    """The reference comparison means something only on curves with real losses and drawdowns (values from the
    bundled history, 2017-10 to 2019-10)."""
    c = _curves()
    assert max_drawdown(c["BTC 30m"][1]) > 0.8 and max_drawdown(c["ETH 30m"][1]) > 0.9
    assert max_drawdown(c["BTC daily"][1]) > 0.8 and max_drawdown(c["ETH short 30m"][1]) > 0.7
    assert total_return(c["ETH 30m"][1]) < 0 < total_return(c["ETH short 30m"][1])  # a losing and a winning curve


def test_curve_statistics_along_the_last_axis_equal_each_row_alone_bit_for_bit():
    """A stack of curves (the sweep's parameter sets) gives, row by row, exactly the numbers of one curve alone:
    the sweep, the report and the walk-forward share one implementation."""
    ts, btc = _real_curve("BTC")
    _, eth = _real_curve("ETH")
    n = min(btc.size, eth.size)
    stack = np.vstack([btc[:n], eth[:n], btc[:n][::-1], np.full(n, 100.0)])
    r = perf.period_returns(stack)
    ppy = 17_520.0
    stats = {
        "sharpe": lambda x: perf.sharpe(perf.period_returns(x), ppy),
        "sortino": lambda x: perf.sortino(perf.period_returns(x), ppy),
        "volatility": lambda x: perf.volatility(perf.period_returns(x), ppy),
        "max_drawdown": perf.max_drawdown,
        "total_return": perf.total_return,
        "cagr": lambda x: perf.cagr(ts[:n], x),
    }
    for name, f in stats.items():
        whole = f(stack)
        assert isinstance(whole, np.ndarray) and whole.shape == (4,), name
        for i in range(4):
            alone = f(stack[i])
            assert isinstance(alone, float), name
            assert whole[i] == alone or (math.isnan(alone) and math.isnan(whole[i])), (name, i)
    assert np.array_equal(perf.drawdown_series(stack)[1], perf.drawdown_series(stack[1]))
    assert r.shape == (4, n - 1) and np.array_equal(r[2], perf.period_returns(stack[2]))
    assert math.isnan(perf.sharpe(r, ppy)[3])  # the flat row: NaN, as alone
