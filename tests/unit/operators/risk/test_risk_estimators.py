"""VaR/CVaR estimators: independent references (numpy, SciPy, pandas, hand-computed cases), conventions and
properties (CVaR at or beyond VaR, positive homogeneity, translation, streaming == batch, pickling)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, stats

from operators.risk import (
    EwmaEstimator,
    RollingCornishFisher,
    RollingGaussian,
    RollingHistorical,
    cornish_fisher_cvar,
    cornish_fisher_monotone_tail,
    cornish_fisher_var,
    cornish_fisher_z,
    ewma_cvar,
    ewma_sigma,
    ewma_var,
    ewma_variance_path,
    gaussian_cvar,
    gaussian_var,
    historical_cvar,
    historical_var,
    make_estimator,
    normal_cvar,
    normal_var,
    population_moments,
    to_loss,
)

ALPHAS = (0.95, 0.99)
Z95, Z99 = 1.6448536269514722, 2.3263478740408408
ret_floats = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_infinity=False, allow_subnormal=False)
returns_arrays = arrays(np.float64, st.integers(2, 300), elements=ret_floats)
alphas = st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.995])


def _rng_returns(seed: int, n: int, df: float = 4.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(df, n) * 0.01


# ----------------------------------------------------------------------------------------------------------------
# historical


def test_historical_var_is_numpys_linear_quantile():
    r = _rng_returns(1, 1001)
    for a in (0.9, 0.95, 0.99, 0.999):
        assert historical_var(r, a) == float(np.quantile(r, 1 - a, method="linear"))


def test_historical_hand_cases():
    r = [0.03, -0.05, 0.0, 0.01, -0.02]  # sorted: -0.05 -0.02 0 0.01 0.03
    assert historical_var(r, 0.75) == -0.02  # h = 0.25 * 4 = 1 -> x_1
    assert historical_cvar(r, 0.75) == -0.05  # strictly below -0.02
    assert historical_var(r, 0.9) == pytest.approx(-0.05 + 0.4 * 0.03)  # h = 0.4
    assert historical_cvar(r, 0.9) == -0.05
    # 20 returns, alpha 0.95: h = 0.95 -> VaR = x_0 + 0.95 (x_1 - x_0); only x_0 strictly below
    x = np.arange(-10, 10) / 100.0
    assert historical_var(x, 0.95) == pytest.approx(-0.1 + 0.95 * 0.01)
    assert historical_cvar(x, 0.95) == -0.1
    # alpha 0.9 on 11 returns: h = 1 exactly -> VaR = x_1, ES = x_0
    y = np.arange(11) / 100.0 - 0.05
    assert historical_var(y, 0.9) == pytest.approx(-0.04)
    assert historical_cvar(y, 0.9) == pytest.approx(-0.05)


def test_historical_es_equals_var_when_nothing_is_strictly_below():
    # h = 0.01 * 4 = 0.04 -> VaR = x_0 + 0.04 (x_1 - x_0); with a tie at the minimum VaR == min, nothing below
    assert historical_var([-0.02, -0.02, 0.0, 0.01, 0.03], 0.99) == -0.02
    assert historical_cvar([-0.02, -0.02, 0.0, 0.01, 0.03], 0.99) == -0.02
    assert historical_cvar([0.01], 0.95) == historical_var([0.01], 0.95) == 0.01
    assert historical_cvar([0.0] * 50, 0.99) == 0.0


def test_historical_es_mean_strictly_below_matches_a_direct_computation():
    r = _rng_returns(2, 997)
    for a in (0.95, 0.99):
        q = np.quantile(r, 1 - a)
        assert historical_cvar(r, a) == pytest.approx(r[r < q].mean(), rel=1e-13)


# ----------------------------------------------------------------------------------------------------------------
# Gaussian


def test_gaussian_closed_forms_standard_normal():
    assert normal_var(0.0, 1.0, 0.95) == pytest.approx(-Z95, abs=1e-15)
    assert normal_var(0.0, 1.0, 0.99) == pytest.approx(-Z99, abs=1e-15)
    assert normal_cvar(0.0, 1.0, 0.95) == pytest.approx(-0.10313564037537139 / 0.05, rel=1e-13)
    assert normal_cvar(0.0, 1.0, 0.99) == pytest.approx(-0.02665214220345808 / 0.01, rel=1e-12)
    assert normal_var(0.001, 0.02, 0.99) == pytest.approx(0.001 - 0.02 * Z99, rel=1e-15)


def test_gaussian_uses_population_moments_and_matches_scipy():
    r = _rng_returns(3, 500)
    mu, sd = r.mean(), r.std(ddof=0)
    for a in ALPHAS:
        assert gaussian_var(r, a) == pytest.approx(stats.norm.ppf(1 - a, loc=mu, scale=sd), rel=1e-12)
        es_ref = stats.norm.expect(lambda x: x, loc=mu, scale=sd, ub=stats.norm.ppf(1 - a, mu, sd), conditional=True)
        assert gaussian_cvar(r, a) == pytest.approx(es_ref, rel=1e-8)
    # ddof = 1 would give a different number: the convention is observable
    assert gaussian_var(r, 0.99) != pytest.approx(mu - Z99 * r.std(ddof=1), rel=1e-6)


def test_population_moments_match_scipy_biased_moments():
    r = _rng_returns(4, 777)
    mu, sd, sk, ek = population_moments(r)
    assert mu == pytest.approx(r.mean(), rel=1e-13)
    assert sd == pytest.approx(r.std(ddof=0), rel=1e-13)
    assert sk == pytest.approx(stats.skew(r, bias=True), rel=1e-10)
    assert ek == pytest.approx(stats.kurtosis(r, fisher=True, bias=True), rel=1e-10)
    assert population_moments([0.01] * 5) == (0.01, 0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------------------------------------------
# Cornish-Fisher


def test_cornish_fisher_reduces_to_gaussian_without_skew_or_kurtosis():
    for a in ALPHAS:
        c = stats.norm.ppf(1 - a)
        assert cornish_fisher_z(c, 0.0, 0.0) == pytest.approx(c, rel=1e-15)
    # a symmetric two-point-free sample with S = 0: only the kurtosis term moves VaR
    r = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / 100
    mu, sd, sk, ek = population_moments(r)
    assert sk == pytest.approx(0.0, abs=1e-12) and ek == pytest.approx(-1.3)
    z = -Z95
    assert cornish_fisher_var(r, 0.95) == pytest.approx(mu + sd * (z + (z**3 - 3 * z) * -1.3 / 24), rel=1e-12)


def test_cornish_fisher_var_hand_formula_with_scipy_moments():
    r = _rng_returns(5, 2000, df=5.0)
    s, k = stats.skew(r, bias=True), stats.kurtosis(r, bias=True)
    mu, sd = r.mean(), r.std(ddof=0)
    for a in ALPHAS:
        z = stats.norm.ppf(1 - a)
        g = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
        assert cornish_fisher_var(r, a) == pytest.approx(mu + sd * g, rel=1e-10)


@pytest.mark.parametrize("skew,exkurt", [(0.0, 0.0), (-0.5, 1.0), (0.3, 2.0), (-1.0, 4.0), (0.8, 6.0)])
@pytest.mark.parametrize("alpha", [0.9, 0.95, 0.99])
def test_cornish_fisher_cvar_is_the_tail_integral_of_the_cf_quantile(skew, exkurt, alpha):
    """CF-ES closed form == (1/p) ∫_0^p g(Φ⁻¹(u)) du, integrated numerically with SciPy."""
    p = 1 - alpha
    val, _ = integrate.quad(
        lambda x: cornish_fisher_z(x, skew, exkurt) * stats.norm.pdf(x),
        -np.inf,
        stats.norm.ppf(p),
        epsabs=1e-13,
        epsrel=1e-12,
    )
    ref = val / p
    # build a return series with exactly these moments? Use the standardised formula via mu=0, sigma=1:
    from operators.risk.cornish_fisher import _tail_factor

    c = stats.norm.ppf(p)
    ours = stats.norm.pdf(c) / p * _tail_factor(c, skew, exkurt)
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-12)


def test_cornish_fisher_cvar_on_a_sample_equals_integral_with_its_moments():
    r = _rng_returns(6, 3000, df=6.0)
    mu, sd, s, k = population_moments(r)
    for a in ALPHAS:
        p = 1 - a
        val, _ = integrate.quad(
            lambda x: cornish_fisher_z(x, s, k) * stats.norm.pdf(x),
            -np.inf,
            stats.norm.ppf(p),
            epsabs=1e-13,
            epsrel=1e-12,
        )
        assert cornish_fisher_cvar(r, a) == pytest.approx(mu + sd * val / p, rel=1e-9)


def test_cornish_fisher_monotone_tail_agrees_with_a_grid():
    for s, k in [(0.0, 0.0), (-0.5, 1.0), (-3.0, 0.0), (0.0, 30.0), (2.0, 1.0), (-1.5, 10.0), (1.0, -1.0)]:
        for a in (0.95, 0.99):
            c = stats.norm.ppf(1 - a)
            x = np.linspace(-60, c, 200001)
            grid = bool(np.all(np.diff(cornish_fisher_z(x, s, k)) > 0))
            assert cornish_fisher_monotone_tail(s, k, a) == grid, (s, k, a)


# ----------------------------------------------------------------------------------------------------------------
# EWMA


def test_ewma_recursion_matches_pandas_and_a_hand_case():
    r = _rng_returns(7, 3000)
    ref = pd.Series(r**2).ewm(alpha=0.06, adjust=False).mean().to_numpy()  # seeded with the first value
    np.testing.assert_allclose(ewma_variance_path(r), ref, rtol=1e-12)
    # hand: s2 = 0.01² -> 0.94 * 1e-4 + 0.06 * 0.02²
    s = math.sqrt(0.94 * 1e-4 + 0.06 * 4e-4)
    assert ewma_sigma([0.01, -0.02]) == pytest.approx(s, rel=1e-15)
    assert ewma_var([0.01, -0.02], 0.99) == pytest.approx(-Z99 * s, rel=1e-14)
    assert ewma_cvar([0.01, -0.02], 0.95) == pytest.approx(-s * 0.10313564037537139 / 0.05, rel=1e-13)
    assert ewma_var([0.01, -0.02], 0.95, lam=0.5) == pytest.approx(-Z95 * math.sqrt(0.5e-4 + 2e-4), rel=1e-14)


def test_ewma_is_mean_zero():
    r = np.full(100, 0.01)  # constant positive return: population σ = 0 but EWMA σ = 0.01
    assert ewma_var(r, 0.99) == pytest.approx(-Z99 * 0.01, rel=1e-12)
    assert gaussian_var(r, 0.99) == pytest.approx(0.01)


# ----------------------------------------------------------------------------------------------------------------
# properties


BATCH = {
    "historical": (historical_var, historical_cvar),
    "gaussian": (gaussian_var, gaussian_cvar),
    "cornish_fisher": (cornish_fisher_var, cornish_fisher_cvar),
    "ewma": (ewma_var, ewma_cvar),
}


@settings(max_examples=200, deadline=None)
@given(returns_arrays, alphas)
def test_cvar_at_or_beyond_var(r, a):
    """In return sign CVaR <= VaR (the expected shortfall is at least the VaR loss). Cornish-Fisher: guaranteed
    only where the CF quantile is increasing on the tail, checked there."""
    tol = 1e-12 * (1 + np.abs(r).max())
    for m in ("historical", "gaussian", "ewma"):
        v, c = BATCH[m]
        assert c(r, a) <= v(r, a) + tol, m
    _, _, s, k = population_moments(r)
    if cornish_fisher_monotone_tail(s, k, a):
        assert cornish_fisher_cvar(r, a) <= cornish_fisher_var(r, a) + tol


@settings(max_examples=150, deadline=None)
@given(returns_arrays, alphas, st.floats(min_value=1e-3, max_value=1e3))
def test_positive_homogeneity(r, a, c):
    """Scaling the position by c > 0 scales every VaR and CVaR by c."""
    for m, (v, cv) in BATCH.items():
        for f in (v, cv):
            assert f(c * r, a) == pytest.approx(c * f(r, a), rel=1e-9, abs=1e-12 * c), m


@settings(max_examples=100, deadline=None)
@given(returns_arrays, alphas, st.floats(min_value=-0.1, max_value=0.1))
def test_translation_shifts_window_estimators(r, a, k):
    """Adding a sure return k shifts historical, Gaussian and CF VaR/CVaR by k (EWMA is mean-zero: it does not).
    Float rounding of ``r + k`` can merge distinct returns into ties, which moves the "strictly below" ES by a
    whole observation; such draws are excluded."""
    assume(np.ptp(r) > 1e-6 and np.unique(r + k).size == np.unique(r).size)
    for m in ("historical", "gaussian", "cornish_fisher"):
        for f in BATCH[m]:
            assert f(r + k, a) == pytest.approx(f(r, a) + k, rel=1e-7, abs=1e-9), m


def test_to_loss_is_the_positive_loss_convention():
    r = _rng_returns(8, 1000)
    v = historical_var(r, 0.99)
    assert v < 0 and to_loss(v) == -v > 0


@pytest.mark.parametrize(
    "cls,fns",
    [
        (RollingHistorical, BATCH["historical"]),
        (RollingGaussian, BATCH["gaussian"]),
        (RollingCornishFisher, BATCH["cornish_fisher"]),
    ],
)
def test_streaming_equals_batch_on_the_same_window(cls, fns):
    r = _rng_returns(9, 400)
    est = cls(window=50)
    for i, x in enumerate(r):
        est.update(x)
        win = r[max(0, i - 49) : i + 1]
        if i % 7 == 0 or i > 380:
            for a in ALPHAS:
                assert est.var(a) == fns[0](win, a)
                assert est.cvar(a) == fns[1](win, a)
        if i == 200:  # snapshot / restore mid-stream (Bytewax state)
            est = pickle.loads(pickle.dumps(est))
    assert est.n == est.window == 50 and est.ready and est._w.count == 400


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 200), elements=ret_floats), st.integers(1, 40), alphas)
def test_streaming_equals_batch_property(r, window, a):
    for m in ("historical", "gaussian", "cornish_fisher"):
        est = make_estimator(m, window)
        for x in r:
            est.update(x)
        win = r[-window:]
        assert est.var(a) == BATCH[m][0](win, a)
        assert est.cvar(a) == BATCH[m][1](win, a)


def test_ewma_streaming_equals_batch_and_pickles():
    r = _rng_returns(10, 500)
    est = EwmaEstimator(0.94)
    for i, x in enumerate(r):
        est.update(x)
        if i == 250:
            est = pickle.loads(pickle.dumps(est))
    assert est.var(0.99) == ewma_var(r, 0.99) and est.cvar(0.95) == ewma_cvar(r, 0.95)
    assert len(pickle.dumps(est)) < 200  # O(1) state


def test_rolling_state_is_bounded():
    est = RollingHistorical(100)
    size0 = len(pickle.dumps(est))
    for x in _rng_returns(11, 10_000):
        est.update(x)
    assert len(pickle.dumps(est)) <= size0 + 8  # only the seen-count grows (a few bytes)


def test_input_validation():
    for f in (historical_var, historical_cvar, gaussian_var, cornish_fisher_var, ewma_var):
        with pytest.raises(ValueError):
            f([], 0.95)
        with pytest.raises(ValueError):
            f([0.01, float("nan")], 0.95)
        with pytest.raises(ValueError):
            f([0.01, 0.02], 1.0)
    with pytest.raises(ValueError):
        RollingHistorical(10).var(0.95)
    with pytest.raises(ValueError):
        RollingHistorical(10).update(float("inf"))
    with pytest.raises(ValueError):
        EwmaEstimator().var(0.99)
    with pytest.raises(ValueError):
        make_estimator("nope")
