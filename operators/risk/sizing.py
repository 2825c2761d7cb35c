"""Dynamic position sizing: volatility targeting, capped fractional Kelly, rounding to a lot size.

Volatility targeting: choose the notional ``N`` so that the position's annualised volatility is a target fraction
of equity, ``N · σ_a = target_vol · equity``. The per-period volatility ``σ`` (fraction per bar, e.g. the EWMA
σ) is annualised with the square-root-of-time rule for i.i.d. returns, ``σ_a = σ · sqrt(periods_per_year)``;
crypto trades 24/7, so 30-minute bars give ``periods_per_year = 365 · 48 = 17 520``. Then
``qty = min(N, max_leverage · equity) / price`` base units, rounded down to the lot.

Kelly: a binary bet that wins ``b`` times the stake with probability ``p`` and loses the stake otherwise has the
growth-optimal stake ``f* = p - (1 - p)/b`` (fraction of equity). We bet ``f = clip(fraction · f*, 0, cap)``:
a fraction of full Kelly (default ½, "half Kelly") because ``p`` and ``b`` are estimates, never negative (no edge
→ no bet) and at most ``cap`` (default 0.25 of equity).

>>> round(kelly_fraction(0.55, 1.0, fraction=1.0, cap=1.0), 12)     # f* = 0.55 - 0.45
0.1
>>> vol_target_qty(equity=100_000, price=50_000, sigma=0.01, target_vol=0.2, periods_per_year=10_000,
...                lot_size=0.001)            # σ_a = 1.0 -> notional 20 000 -> 0.4 BTC
0.4
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = [
    "PERIODS_PER_YEAR_30M",
    "round_to_lot",
    "annualise_vol",
    "vol_target_notional",
    "vol_target_qty",
    "kelly_fraction",
    "kelly_qty",
]

_LOT_NOISE = Decimal("1e-9")  # lots: a quantity this close below a multiple counts as that multiple

#: 30-minute bars in a 365-day, 24/7 year.
PERIODS_PER_YEAR_30M = 365 * 48


def round_to_lot(qty: float, lot_size: float, min_qty: float = 0.0) -> float:
    """Round ``qty`` (base units, >= 0) **down** to a multiple of ``lot_size`` (base units; 0 = no rounding);
    below ``min_qty`` (base units) gives 0. Computed in decimal on the shortest float representations, so the
    result is an exact decimal multiple (no ``0.30000000000000004``); a quantity within 1e-9 lot below the next
    multiple counts as that multiple (float noise such as ``19.999999999999996``).

    >>> round_to_lot(0.3, 0.1), round_to_lot(0.2999, 0.1), round_to_lot(7.0, 5.0), round_to_lot(0.05, 0.01, 0.1)
    (0.3, 0.2, 5.0, 0.0)
    """
    if not (qty >= 0.0 and math.isfinite(qty)):
        raise ValueError(f"qty must be finite and >= 0, got {qty!r}")
    if not (lot_size >= 0.0 and math.isfinite(lot_size)):
        raise ValueError(f"lot_size must be finite and >= 0, got {lot_size!r}")
    if lot_size > 0.0:
        lot = Decimal(repr(lot_size))  # the lot as written (0.1, not 0.1000000000000000055...)
        n = math.floor(Decimal(repr(qty)) / lot + _LOT_NOISE)
        qty = float(n * lot)
    return qty if qty >= min_qty and qty > 0.0 else 0.0


def annualise_vol(sigma: float, periods_per_year: float) -> float:
    """``σ · sqrt(periods_per_year)`` (fraction per year)."""
    return sigma * math.sqrt(periods_per_year)


def vol_target_notional(
    equity: float, sigma: float, target_vol: float, periods_per_year: float, max_leverage: float = math.inf
) -> float:
    """Notional (quote currency) with annualised vol ``target_vol`` (fraction of equity per year), capped at
    ``max_leverage · equity``; 0 when ``equity <= 0``; the leverage cap when ``σ == 0``."""
    if equity <= 0.0 or target_vol <= 0.0:
        return 0.0
    if not sigma >= 0.0 or periods_per_year <= 0.0:
        raise ValueError(f"need sigma >= 0 and periods_per_year > 0, got {sigma!r}, {periods_per_year!r}")
    sa = annualise_vol(sigma, periods_per_year)
    cap = max_leverage * equity
    return cap if sa == 0.0 else min(target_vol * equity / sa, cap)


def vol_target_qty(
    equity: float,
    price: float,
    sigma: float,
    target_vol: float,
    periods_per_year: float = PERIODS_PER_YEAR_30M,
    lot_size: float = 0.0,
    max_leverage: float = math.inf,
    min_qty: float = 0.0,
) -> float:
    """Volatility-targeting quantity, base units (>= 0), rounded down to ``lot_size``.

    ``equity`` quote currency; ``price`` quote/base; ``sigma`` return volatility per period (fraction);
    ``target_vol`` annualised fraction of equity; ``max_leverage`` notional/equity multiple.
    """
    if not price > 0.0:
        raise ValueError(f"price must be > 0, got {price!r}")
    n = vol_target_notional(equity, sigma, target_vol, periods_per_year, max_leverage)
    if math.isinf(n):
        raise ValueError("zero volatility and no leverage cap: unbounded size")
    return round_to_lot(n / price, lot_size, min_qty)


def kelly_fraction(p: float, b: float, fraction: float = 0.5, cap: float = 0.25) -> float:
    """Capped fractional Kelly stake, fraction of equity: ``clip(fraction · (p - (1-p)/b), 0, cap)``.

    ``p`` win probability in [0, 1]; ``b`` payoff ratio (win / loss per unit staked, > 0); ``fraction`` of full
    Kelly in [0, 1]; ``cap`` fraction of equity (>= 0).

    >>> round(kelly_fraction(0.6, 2.0), 12), kelly_fraction(0.3, 1.0), kelly_fraction(0.9, 10.0)
    (0.2, 0.0, 0.25)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if not b > 0.0:
        raise ValueError(f"b must be > 0, got {b!r}")
    if not 0.0 <= fraction <= 1.0 or not cap >= 0.0:
        raise ValueError(f"need fraction in [0, 1] and cap >= 0, got {fraction!r}, {cap!r}")
    f_star = p - (1.0 - p) / b
    return min(max(fraction * f_star, 0.0), cap)


def kelly_qty(
    equity: float,
    price: float,
    p: float,
    b: float,
    fraction: float = 0.5,
    cap: float = 0.25,
    lot_size: float = 0.0,
    min_qty: float = 0.0,
) -> float:
    """``kelly_fraction · equity / price`` base units, rounded down to ``lot_size``; 0 when ``equity <= 0``.

    >>> kelly_qty(10_000, 100.0, 0.6, 2.0, lot_size=1.0)   # 0.2 of 10 000 = 2 000 -> 20 units
    20.0
    """
    if not price > 0.0:
        raise ValueError(f"price must be > 0, got {price!r}")
    if equity <= 0.0:
        return 0.0
    return round_to_lot(kelly_fraction(p, b, fraction, cap) * equity / price, lot_size, min_qty)
