"""operators.risk.standard_normal against closed forms and SciPy (reference only; operators never import SciPy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from operators.risk.standard_normal import chi2_1_sf, norm_cdf, norm_pdf, norm_ppf


def test_quantiles_at_95_and_99_match_the_closed_form_values():
    assert norm_ppf(0.95) == pytest.approx(1.6448536269514722, abs=1e-15)
    assert norm_ppf(0.99) == pytest.approx(2.3263478740408408, abs=1e-15)
    assert norm_ppf(0.05) == pytest.approx(-1.6448536269514722, abs=1e-15)
    assert norm_ppf(0.01) == pytest.approx(-2.3263478740408408, abs=1e-15)
    assert norm_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-15)
    assert norm_ppf(0.5) == 0.0


def test_density_values():
    assert norm_pdf(0.0) == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-15)
    assert norm_pdf(1.6448536269514722) == pytest.approx(0.10313564037537139, rel=1e-14)
    assert norm_pdf(2.3263478740408408) == pytest.approx(0.02665214220345808, rel=1e-14)
    assert norm_pdf(1.0) == pytest.approx(math.exp(-0.5) / math.sqrt(2 * math.pi), rel=1e-15)


def test_ppf_matches_scipy_over_the_whole_range():
    ps = np.concatenate(
        [np.logspace(-300, -1, 3000), np.linspace(1e-4, 1 - 1e-4, 20001), 1 - np.logspace(-15, -1, 2000)]
    )
    ours = np.array([norm_ppf(p) for p in ps])
    ref = stats.norm.ppf(ps)
    assert np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))) < 1e-12


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1 - 1e-12))
def test_ppf_inverts_cdf(p):
    x = norm_ppf(p)
    assert x == pytest.approx(stats.norm.ppf(p), rel=1e-12, abs=1e-12)
    assert norm_cdf(x) == pytest.approx(p, rel=1e-9)


def test_ppf_edges_and_domain():
    assert norm_ppf(0.0) == -math.inf and norm_ppf(1.0) == math.inf
    with pytest.raises(ValueError):
        norm_ppf(1.5)
    with pytest.raises(ValueError):
        norm_ppf(float("nan"))


def test_pdf_and_cdf_match_scipy():
    xs = np.linspace(-37, 37, 7401)
    pdf = np.array([norm_pdf(x) for x in xs])
    cdf = np.array([norm_cdf(x) for x in xs])
    np.testing.assert_allclose(pdf, stats.norm.pdf(xs), rtol=1e-13, atol=0)
    np.testing.assert_allclose(cdf, stats.norm.cdf(xs), rtol=1e-12, atol=0)


def test_chi2_1_survival_matches_scipy():
    xs = np.concatenate([[0.0, 1e-12, 1e-6], np.linspace(0.001, 150, 15000)])
    ours = np.array([chi2_1_sf(x) for x in xs])
    np.testing.assert_allclose(ours, stats.chi2.sf(xs, 1), rtol=1e-12, atol=0)
    assert chi2_1_sf(3.841458820694124) == pytest.approx(0.05, rel=1e-12)  # the 95 % critical value
    assert chi2_1_sf(6.6348966010212145) == pytest.approx(0.01, rel=1e-12)
    assert chi2_1_sf(-1.0) == 1.0
