"""Risk-gate benchmark (issue 5): decisions per second of ``RiskGate.evaluate`` on one intent, for the
Gaussian and historical VaR methods, on an order that passes, on one that must be resized (the position and leverage
limits bind before the VaR limits), and on one that only the VaR limits resize (``var_resized``: tight VaR/CVaR
limits, so each VaR/CVaR limit's largest quantity is searched — the scenario search for the historical method), and
on one that only the CVaR limit resizes (``cvar_resized``)."""

from __future__ import annotations

import time

import numpy as np

from operators.risk import MarketState, OrderRequest, PortfolioState, RiskGate, RiskLimits

T0 = 1_700_000_000_000_000_000


def _rate(gate: RiskGate, intent: OrderRequest, market: MarketState, n: int) -> float:
    portfolio = PortfolioState(equity=100_000.0, positions={"BTC-USD": 0.5, "ETH-USD": -2.0})
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for i in range(n):
            gate.evaluate(intent, portfolio, market, T0 + i * 1_000_000_000)
        best = min(best, time.perf_counter() - t)
    return n / best


def run(n: int = 2000) -> dict[str, float]:
    """Decisions/s, best of 3 runs of ``n`` decisions, 2 symbols, a 1,000-return window."""
    rng = np.random.default_rng(1)
    market = MarketState(
        prices={"BTC-USD": 30_000.0, "ETH-USD": 2_000.0},
        price_ts_ns={"BTC-USD": T0, "ETH-USD": T0},
        symbols=("BTC-USD", "ETH-USD"),
        returns=rng.normal(0, 0.01, size=(1000, 2)),
    )
    small = OrderRequest("i-small", "BTC-USD", "buy", 0.1, confidence=0.9)
    big = OrderRequest("i-big", "BTC-USD", "buy", 20.0, confidence=0.9)
    out: dict[str, float] = {}
    for method in ("gaussian", "historical", "fhs"):
        limits = RiskLimits(var_method=method, rate_per_s=1e9, rate_burst=1e9, max_price_age_s=1e9)
        out[f"gate_{method}_approved_per_s"] = _rate(RiskGate(limits), small, market, n)
        out[f"gate_{method}_resized_per_s"] = _rate(RiskGate(limits), big, market, max(50, n // 10))
        tight = RiskLimits(
            var_method=method,
            rate_per_s=1e9,
            rate_burst=1e9,
            max_price_age_s=1e9,
            max_portfolio_var=0.004,
            max_portfolio_cvar=0.005,
            symbol_var_budget=0.003,
        )
        d = RiskGate(tight).evaluate(
            big, PortfolioState(equity=100_000.0, positions={"BTC-USD": 0.5, "ETH-USD": -2.0}), market, T0
        )
        assert d.action == "resized" and "portfolio_var_limit" in d.reasons, d
        out[f"gate_{method}_var_resized_per_s"] = _rate(RiskGate(tight), big, market, max(50, n // 10))
        # only the CVaR limit binds (its search alone: the scenario search without the VaR's slope bound)
        cvar = RiskLimits(
            var_method=method,
            rate_per_s=1e9,
            rate_burst=1e9,
            max_price_age_s=1e9,
            max_portfolio_cvar=0.006,
            max_portfolio_var=1.0,
            symbol_var_budget=1.0,
        )
        d = RiskGate(cvar).evaluate(
            big, PortfolioState(equity=100_000.0, positions={"BTC-USD": 0.5, "ETH-USD": -2.0}), market, T0
        )
        assert d.action == "resized" and d.reasons[-1] == "portfolio_cvar_limit", d
        out[f"gate_{method}_cvar_resized_per_s"] = _rate(RiskGate(cvar), big, market, max(50, n // 10))
    return out


if __name__ == "__main__":
    for k, v in run().items():
        print(f"{k}: {v:,.0f}")
