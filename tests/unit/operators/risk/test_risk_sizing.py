"""Dynamic sizing: volatility targeting, capped fractional Kelly, lot rounding (hand-computed cases + properties)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.risk import (
    PERIODS_PER_YEAR_30M,
    annualise_vol,
    kelly_fraction,
    kelly_qty,
    round_to_lot,
    vol_target_notional,
    vol_target_qty,
)


def test_vol_target_hand_case_30_minute_bars():
    assert PERIODS_PER_YEAR_30M == 17_520
    sigma = 0.005  # 0.5 % per 30-min bar
    sa = 0.005 * math.sqrt(17_520)  # 66.18 % a year
    assert annualise_vol(sigma, 17_520) == pytest.approx(sa, rel=1e-15)
    n = vol_target_notional(100_000.0, sigma, 0.25, 17_520)
    assert n == pytest.approx(0.25 * 100_000 / sa, rel=1e-14)  # 37 776.8 quote
    q = vol_target_qty(100_000.0, 20_000.0, sigma, 0.25, lot_size=0.001)
    assert q == 1.888  # 37 776.8 / 20 000 = 1.88884 -> down to the lot
    assert q * 20_000 * sa <= 0.25 * 100_000 + 1e-9


def test_vol_target_caps_and_edges():
    assert vol_target_notional(100_000.0, 1e-6, 0.5, 17_520, max_leverage=2.0) == 200_000.0
    assert vol_target_notional(100_000.0, 0.0, 0.5, 17_520, max_leverage=3.0) == 300_000.0
    assert vol_target_notional(-5.0, 0.01, 0.5, 17_520) == 0.0
    assert vol_target_qty(1_000.0, 100.0, 0.01, 0.2, lot_size=1.0, min_qty=5.0) == 0.0  # 1.5 units < min_qty
    with pytest.raises(ValueError):
        vol_target_qty(1_000.0, 100.0, 0.0, 0.2)  # unbounded without a leverage cap
    with pytest.raises(ValueError):
        vol_target_qty(1_000.0, 0.0, 0.01, 0.2)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e3, 1e8), st.floats(1e-2, 1e5), st.floats(1e-4, 0.1), st.floats(0.01, 1.0))
def test_vol_target_position_has_the_target_vol(equity, price, sigma, target):
    q = vol_target_qty(equity, price, sigma, target, 17_520)
    assert q * price * sigma * math.sqrt(17_520) == pytest.approx(target * equity, rel=1e-9)


def test_kelly_hand_cases():
    assert kelly_fraction(0.55, 1.0, 1.0, 1.0) == pytest.approx(0.10, abs=1e-15)  # even money: 2p - 1
    assert kelly_fraction(0.6, 2.0, 1.0, 1.0) == pytest.approx(0.4, abs=1e-15)  # 0.6 - 0.4 / 2
    assert kelly_fraction(0.6, 2.0) == pytest.approx(0.2, abs=1e-15)  # half Kelly
    assert kelly_fraction(0.6, 2.0, 0.5, 0.1) == 0.1  # capped
    assert kelly_fraction(0.4, 1.0) == 0.0  # negative edge: no bet
    assert kelly_fraction(1.0, 0.5, 1.0, 1.0) == 1.0
    assert kelly_qty(50_000.0, 25_000.0, 0.6, 2.0, lot_size=0.01) == 0.4  # 10 000 / 25 000
    assert kelly_qty(0.0, 100.0, 0.9, 1.0) == 0.0
    for bad in ((1.1, 1.0), (0.5, 0.0), (0.5, -1.0)):
        with pytest.raises(ValueError):
            kelly_fraction(*bad)


def _growth_optimal_stake(p: float, b: float) -> float:
    """The stake f in [0, 1) that maximises the expected log growth ``p log(1 + b f) + (1 - p) log(1 - f)`` of a
    bet that wins ``b`` per unit staked with probability ``p`` and loses the stake otherwise, found numerically
    (bounded Brent search), without the closed form."""
    from scipy.optimize import minimize_scalar

    def neg_growth(f: float) -> float:
        win = p * math.log1p(b * f)
        lose = (1.0 - p) * math.log1p(-f) if p < 1.0 else 0.0
        return -(win + lose)

    return float(minimize_scalar(neg_growth, bounds=(0.0, 1.0 - 1e-9), method="bounded", options={"xatol": 1e-12}).x)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.01, 100.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_kelly_stake_is_the_capped_fraction_of_the_growth_optimal_stake(p, b, frac, cap):
    """Full Kelly maximises the expected log growth of wealth (Kelly 1956); the sizing stakes ``frac`` of it, never
    more than ``cap`` and never a negative amount."""
    f = kelly_fraction(p, b, frac, cap)
    assert 0.0 <= f <= cap
    f_opt = _growth_optimal_stake(p, b)
    assert f == pytest.approx(min(frac * f_opt, cap), abs=2e-6)


def test_round_to_lot():
    assert round_to_lot(0.3, 0.1) == 0.3  # not 0.30000000000000004, not 0.2
    assert round_to_lot(0.7, 0.1) == 0.7
    assert round_to_lot(1.23456, 0.001) == 1.234
    assert round_to_lot(0.0009, 0.001) == 0.0
    assert round_to_lot(12.0, 5.0) == 10.0
    assert round_to_lot(1.2345, 0.0) == 1.2345
    assert round_to_lot(0.05, 0.01, min_qty=0.1) == 0.0
    with pytest.raises(ValueError):
        round_to_lot(-1.0, 0.1)


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 1e6), st.sampled_from([1e-8, 1e-5, 0.001, 0.01, 0.1, 1.0, 5.0, 100.0]))
def test_round_to_lot_never_rounds_up_beyond_noise_and_is_a_multiple(q, lot):
    x = round_to_lot(q, lot)
    assert x <= q + 1e-9 * lot
    assert q - x < lot * (1 + 1e-9)
    assert Decimal(repr(x)) % Decimal(repr(lot)) == 0
