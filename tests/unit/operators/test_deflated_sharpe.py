"""Probabilistic and deflated Sharpe ratios against independent references: the textbook formula computed with
scipy's moments and normal distribution, and Monte Carlo (the PSR of samples drawn at the true Sharpe ratio is
uniform; the expected maximum of N Sharpe ratios of luck matches simulated maxima)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from operators.performance import deflated_sharpe, expected_max_sharpe, probabilistic_sharpe


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=5, max_size=200), st.floats(-0.3, 0.3))
def test_psr_equals_the_formula_with_scipys_moments(rets, bench):
    r = np.asarray(rets)
    sd = r.std(ddof=1)
    if not sd > 1e-9:
        return
    s = r.mean() / sd
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    den = 1 - g3 * s + (g4 - 1) / 4 * s * s
    if not den > 0:
        return
    want = stats.norm.cdf((s - bench) * math.sqrt(len(r) - 1) / math.sqrt(den))
    assert probabilistic_sharpe(r, bench) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_psr_at_the_true_sharpe_ratio_is_uniform():
    """Samples of T normal returns with true per-period Sharpe 0.1: PSR(0.1) is (close to) uniform on [0, 1]."""
    rng = np.random.default_rng(7)
    T, true_sr = 500, 0.1
    p = np.array([probabilistic_sharpe(rng.normal(true_sr * 0.01, 0.01, T), true_sr) for _ in range(4000)])
    assert abs(p.mean() - 0.5) < 0.02
    assert abs((p < 0.05).mean() - 0.05) < 0.015 and abs((p > 0.95).mean() - 0.05) < 0.015


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_expected_max_sharpe_matches_simulated_maxima(n):
    rng = np.random.default_rng(n)
    var = 0.04
    sim = rng.normal(0.0, math.sqrt(var), size=(20_000, n)).max(axis=1).mean()
    assert expected_max_sharpe(n, var) == pytest.approx(sim, rel=0.03)
    assert expected_max_sharpe(1, var) == 0.0


def test_deflating_for_more_trials_never_raises_the_probability():
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.01, 2000)
    vals = [deflated_sharpe(r, n, 0.001) for n in (1, 2, 10, 100, 1000)]
    assert vals[0] == pytest.approx(probabilistic_sharpe(r, 0.0))
    assert all(a >= b for a, b in itertools.pairwise(vals))
    with pytest.raises(ValueError):
        expected_max_sharpe(0, 1.0)
