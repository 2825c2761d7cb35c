"""Brute-force checks of the pre-trade gate's VaR/CVaR limits, shared by the gate and scenario search tests: the
limits evaluated in full over the historical scenarios at any order quantity."""

from __future__ import annotations

import numpy as np

from operators.risk.historical import historical_var_cvar


def _var_losses(market, lim, book, it):
    """The gate's VaR/CVaR limit losses of the order quantity (full historical evaluations of the scenarios) with
    their bounds (``max(limit, loss at the reducing part)``) and the reducing part."""
    r = market.scenarios(lim.var_method, lim.fhs_lambda)
    px = market.prices
    x0 = np.array([book.positions.get(s, 0.0) * px[s] for s in market.symbols])
    j = market.symbols.index(it.symbol)
    sign = 1.0 if it.side == "buy" else -1.0
    a, col = r @ x0, sign * px[it.symbol] * r[:, j]
    eq = book.equity

    def vc(q):
        v, c = historical_var_cvar(a + q * col, lim.alpha)
        return -v, -c

    base = vc(0.0)[0]
    q0 = min(it.qty, max(0.0, -sign * book.positions.get(it.symbol, 0.0)))
    specs = [
        (lambda q: (vc(q)[0] - base) / eq, lim.var_budget(it.symbol)),
        (lambda q: vc(q)[0] / eq, lim.max_portfolio_var),
        (lambda q: vc(q)[1] / eq, lim.max_portfolio_cvar),
    ]
    return [(f, max(b, f(q0))) for f, b in specs], q0


def several_crossings(market, lim, book, it, grid: int = 600) -> bool:
    """Some VaR/CVaR limit fits again on a fine grid of ``[reducing part, request]`` after it first stopped fitting."""
    losses, q0 = _var_losses(market, lim, book, it)
    qs = np.linspace(q0, it.qty, grid)
    for f, b in losses:
        ok = np.array([f(q) <= b for q in qs])
        if (~ok).any() and ok[int(np.argmax(~ok)) :].any():
            return True
    return False


def fits_every_var_limit(market, lim, book, it, q: float) -> bool:
    """The quantity ``q`` of the order fits every VaR/CVaR limit of ``lim`` (to a relative 1e-9)."""
    losses, _ = _var_losses(market, lim, book, it)
    return all(f(q) <= b * (1 + 1e-9) + 1e-15 for f, b in losses)
