"""VaR backtest helpers (breaches, Kupiec POF) against SciPy, and the rolling VaR backtest on real BTC/ETH bars."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from operators.risk import (
    METHODS,
    ewma_cvar,
    ewma_var,
    historical_cvar,
    historical_var,
    kupiec_pof,
    rolling_forecasts,
    var_backtest,
    var_breaches,
)
from operators.risk.backtest import _WINDOW_FNS
from tests.support import DATA


def _kupiec_scipy(n: int, x: int, alpha: float) -> tuple[float, float]:
    p = 1 - alpha
    lr = -2 * (stats.binom.logpmf(x, n, p) - stats.binom.logpmf(x, n, x / n))
    return lr, stats.chi2.sf(lr, 1)


@pytest.mark.parametrize(
    "n,x,alpha",
    [
        (1000, 10, 0.99),
        (1000, 20, 0.99),
        (1000, 3, 0.99),
        (250, 0, 0.99),
        (34018, 401, 0.99),
        (34018, 1738, 0.95),
        (500, 500, 0.95),
        (100, 1, 0.95),
    ],
)
def test_kupiec_matches_scipy_binomial_likelihood_ratio(n, x, alpha):
    k = kupiec_pof(n, x, alpha)
    lr, pv = _kupiec_scipy(n, x, alpha)
    assert k.lr == pytest.approx(max(lr, 0.0), rel=1e-9, abs=1e-9)
    if lr > 1e-6:
        assert k.p_value == pytest.approx(pv, rel=1e-7, abs=1e-300)
    else:  # p̂ == p up to rounding: the χ² survival is steep at 0 (1 - sqrt(2 LR / π)), both must be ~1
        assert k.p_value > 0.999 and pv > 0.999


def test_kupiec_hand_case():
    # n = 1000, x = 20, p = 0.01: LR = -2[980 ln .99 + 20 ln .01 - 980 ln .98 - 20 ln .02]
    lr = -2 * (980 * math.log(0.99) + 20 * math.log(0.01) - 980 * math.log(0.98) - 20 * math.log(0.02))
    k = kupiec_pof(1000, 20, 0.99)
    assert k.lr == pytest.approx(lr, rel=1e-12)
    assert k.p_value == pytest.approx(math.erfc(math.sqrt(lr / 2)), rel=1e-12)
    assert k.p_value < 0.01
    with pytest.raises(ValueError):
        kupiec_pof(10, 11, 0.99)


def test_breaches_are_strictly_below():
    r = np.array([-0.03, -0.02, 0.0])
    assert var_breaches(r, np.full(3, -0.02)).tolist() == [True, False, False]


@pytest.mark.parametrize("method", ["historical", "gaussian", "cornish_fisher"])
def test_vectorised_forecasts_equal_the_batch_estimators(method):
    r = np.random.default_rng(3).standard_t(3, 700) * 0.01
    r[100:160] = 0.004  # a constant stretch: degenerate windows
    w = 50
    v, c = rolling_forecasts(r, w, 0.99, method)
    fv, fc = _WINDOW_FNS[method]
    ref_v = np.array([fv(r[i - w : i], 0.99) for i in range(w, r.size)])
    ref_c = np.array([fc(r[i - w : i], 0.99) for i in range(w, r.size)])
    np.testing.assert_allclose(v, ref_v, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(c, ref_c, rtol=1e-11, atol=1e-15)


def test_ewma_forecast_uses_only_the_past():
    r = np.random.default_rng(4).normal(0, 0.01, 300)
    v, c = rolling_forecasts(r, 100, 0.95, "ewma")
    assert v.size == 200
    assert v[0] == pytest.approx(ewma_var(r[:100], 0.95), rel=1e-14)  # forecast for r[100] from r[:100]
    assert c[-1] == pytest.approx(ewma_cvar(r[:-1], 0.95), rel=1e-14)
    hv, hc = rolling_forecasts(r, 100, 0.95, "historical")
    assert hv[0] == historical_var(r[:100], 0.95) and hc[-1] == pytest.approx(historical_cvar(r[199:299], 0.95))


def test_backtest_on_iid_normal_returns_is_not_rejected():
    r = np.random.default_rng(5).normal(0, 0.01, 20_000)
    for m in METHODS:
        b = var_backtest(r, 500, 0.99, m)
        assert b.n == 19_500
        assert 0.007 < b.rate < 0.013, (m, b.rate)
        assert b.expected == pytest.approx(0.01)


def _log_returns(asset: str) -> np.ndarray:
    df = pd.read_csv(DATA / f"{asset}-30m.csv.gz")
    return np.diff(np.log(df[f"{asset}.close"].to_numpy(float)))


@pytest.fixture(scope="module")
def btc() -> np.ndarray:
    return _log_returns("BTC")


def test_rolling_var_backtest_on_btc_30m_is_sane(btc):
    """Real BTC 30-min log returns, 1000-bar window: the historical VaR is close to its nominal rate; the normal
    models under-predict 99 % tail losses (fat tails); Cornish-Fisher at 95 % is far too loose because the huge
    excess kurtosis of 30-min crypto returns (median ≈ 18 per window) pulls the CF 95 % quantile toward the
    centre. These are findings, recorded in docs/risk.md."""
    res = {(m, a): var_backtest(btc, 1000, a, m) for m in METHODS for a in (0.95, 0.99)}
    assert {b.n for b in res.values()} == {btc.size - 1000}
    h95, h99 = res["historical", 0.95], res["historical", 0.99]
    assert 0.045 < h95.rate < 0.055 and 0.009 < h99.rate < 0.014
    assert h95.p_value > 0.05  # not rejected at 95 %
    for a in (0.95, 0.99):
        for m in METHODS:
            b = res[m, a]
            assert b.mean_cvar < b.mean_var < 0  # return sign, CVaR beyond VaR
            assert b.mean_breach_return < 0
    for m in ("gaussian", "ewma"):
        assert res[m, 0.99].rate > 0.015 and res[m, 0.99].p_value < 1e-6  # fat tails: too many breaches
    assert res["cornish_fisher", 0.95].rate > 0.15
    assert res["cornish_fisher", 0.99].rate < 0.01
    for b in res.values():  # all within an order of magnitude of nominal except CF 95 %
        if (b.method, b.alpha) != ("cornish_fisher", 0.95):
            assert 0.3 * b.expected < b.rate < 2.5 * b.expected, b


def test_fhs_rolling_forecasts_equal_the_one_period_estimator():
    """The vectorised FHS backtest gives, for every period, what fhs_var_cvar gives from the returns before it."""
    from operators.risk.filtered import fhs_var_cvar

    r = np.random.default_rng(7).standard_t(3, 900) * 0.01
    r[:5] = 0.0  # a start without price moves: no volatility forecast yet
    r[300:340] = 0.002
    w = 200
    for a in (0.95, 0.99):
        v, c = rolling_forecasts(r, w, a, "fhs")
        ref = np.array([fhs_var_cvar(r[:i], a, window=w) for i in range(w, r.size)])
        np.testing.assert_allclose(v, ref[:, 0], rtol=1e-11, atol=1e-15)
        np.testing.assert_allclose(c, ref[:, 1], rtol=1e-11, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.01, 100.0), st.integers(0, 10_000))
def test_fhs_is_scale_equivariant_and_its_cvar_is_beyond_its_var(scale, seed):
    from operators.risk.filtered import fhs_var_cvar

    r = np.random.default_rng(seed).standard_t(4, 600) * 0.01
    v, c = fhs_var_cvar(r, 0.99, window=400)
    v2, c2 = fhs_var_cvar(scale * r, 0.99, window=400)
    assert v2 == pytest.approx(scale * v, rel=1e-9) and c2 == pytest.approx(scale * c, rel=1e-9)
    assert c <= v < 0


def test_fhs_passes_kupiec_and_christoffersen_out_of_sample_on_the_bundled_history():
    """FHS with the decay chosen on the first 40 % of the bundled 30-minute history (scripts/var_model_selection.py)
    is not rejected on the remaining 60 %: Kupiec, Christoffersen independence and conditional coverage, p > 0.05,
    at 95 % and 99 %, BTC and ETH. The historical and Gaussian VaR of the same windows fail independence there."""
    from operators.risk.backtest import christoffersen, kupiec_pof

    for asset in ("BTC", "ETH"):
        r = _log_returns(asset)
        split = int(0.4 * r.size)
        for a in (0.95, 0.99):
            v, _ = rolling_forecasts(r, 1000, a, "fhs")
            hits = (r[1000:] < v)[split - 1000 :]
            k, ch = kupiec_pof(hits.size, int(hits.sum()), a), christoffersen(hits, a)
            assert min(k.p_value, ch.p_ind, ch.p_cc) > 0.05, (asset, a, k.p_value, ch.p_ind, ch.p_cc)
            hv, _ = rolling_forecasts(r, 1000, a, "historical")
            assert christoffersen((r[1000:] < hv)[split - 1000 :], a).p_ind < 0.05
