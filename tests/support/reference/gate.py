"""``RiskGate``: runs every pre-trade check over an order intent, the portfolio and the market, and returns a
``schemas.events.RiskDecision`` (approved / resized / rejected, reasons, VaR/CVaR snapshot).

Inputs (event time only; the caller passes ``now_ns``):

* intent — :class:`OrderRequest` or any object with ``intent_id`` (or ``id``), ``symbol``, ``side`` (``buy`` /
  ``sell``), ``qty`` (base units, > 0), optional ``strategy`` and ``confidence`` (fraction).
* portfolio — :class:`PortfolioState` or any object with ``equity`` (quote currency) and ``positions``
  (``{symbol: signed base units}``), e.g. ``schemas.events.PortfolioSnapshot``.
* market — :class:`MarketState`: last prices and their event times, and an aligned (T, N) window of one-period
  returns for the VaR checks.

Order of evaluation. The order is split into its **reducing part** (the quantity that moves the position toward
zero, at most |position|) and the rest, which **increases risk**.

1. Kill switch (updated with the portfolio equity at ``now_ns`` first): ``halted`` rejects the whole order;
   ``reduce_only`` caps it to its reducing part.
2. Hard checks on the risk-increasing part (failing caps the order to its reducing part): equity > 0
   (``no_equity``), last price present and fresh (``no_price``, ``stale_price``), signal confidence
   (``low_confidence``), prices of every held symbol (``no_price``), enough return history for every symbol at
   risk (``insufficient_history``).
3. Quantity limits, each resizing the order down to the largest quantity that fits (or that leaves the limit no
   worse than before): ``position_limit`` (qty and fraction of equity), ``gross_exposure_limit``,
   ``net_exposure_limit``, ``leverage_limit``, ``symbol_var_budget`` (incremental VaR of the order),
   ``portfolio_var_limit``, ``portfolio_cvar_limit``.
4. Rounding down to the symbol's lot size (``lot_size`` when it alone changed the quantity; below ``min_qty`` the
   order is rejected with ``below_min_qty``).
5. Order-rate token bucket (``rate_limited``), charged only when an order goes out.

``reasons`` lists every check the requested quantity failed (a resized order names all the limits it hit, the
binding one among them); an approved order has none.

The decision's ``var``/``cvar`` are the symbol position's standalone loss after the decision, and
``portfolio.var``/``cvar`` the portfolio's, at ``limits.alpha`` with ``limits.var_method``, fractions of equity,
**positive = loss** (the schema's convention: ``to_loss`` of the return-sign numbers); 0.0 when they cannot be
computed (no history, equity <= 0).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> market = MarketState(prices={"BTC-USD": 30_000.0}, price_ts_ns={"BTC-USD": 1_700_000_000_000_000_000},
...                      symbols=("BTC-USD",), returns=rng.normal(0, 0.01, size=(500, 1)))
>>> gate = RiskGate(RiskLimits(var_method="gaussian", symbol_var_budget=0.02, default_lot_size=0.001))
>>> d = gate.evaluate(OrderRequest("i-1", "BTC-USD", "buy", 5.0, confidence=0.6),
...                   PortfolioState(equity=100_000.0, positions={}), market, now_ns=1_700_000_000_000_000_000)
>>> d.action, d.reasons, d.approved_qty    # 5 BTC = 150 % of equity; 99 % VaR of 2 % of equity fits ~2.8 BTC
('resized', ['position_limit', 'symbol_var_budget'], 2.824)
>>> round(d.portfolio.var, 6) <= 0.02
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.events import PortfolioSnapshot, RiskDecision

from operators.risk.checks import PASS, Verdict, check_confidence, check_kill_switch, check_stale, max_feasible_qty
from operators.risk.filtered import filtered_scenarios
from .scenarios import ScenarioLines, var_cvar
from operators.risk.kill_switch import KillSwitch
from operators.risk.limits import RiskLimits
from operators.risk.standard_normal import norm_pdf, norm_ppf
from operators.risk.portfolio import sample_covariance
from operators.risk.rate_limit import TokenBucket
from operators.risk.sizing import round_to_lot

__all__ = ["OrderRequest", "PortfolioState", "MarketState", "GateState", "RiskGate", "decision_id", "to_loss"]


def to_loss(x: float) -> float:
    """Return-sign risk number to the positive-loss convention: ``-x`` (a VaR of -0.03 is a 0.03 loss).

    >>> to_loss(-0.03)
    0.03
    """
    return -x


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a strategy wants: ``qty`` base units (> 0) on ``side``; ``confidence`` a fraction (None = not given);
    ``ts`` ns UTC of the intent (informational; the gate uses its ``now_ns``)."""

    intent_id: str
    symbol: str
    side: str
    qty: float
    strategy: str | None = None
    confidence: float | None = None
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """``equity`` quote currency; ``positions`` signed base units per symbol; ``shares``: per symbol, each strategy's
    share of the position (fractions summing to 1; for the order's symbol, the shares of the intent's target), used
    by the per-strategy VaR budgets (absent: the budgets are not checked)."""

    equity: float
    positions: Mapping[str, float] = field(default_factory=dict)
    shares: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


class MarketState:
    """Market inputs of the gate. ``prices`` quote/base; ``price_ts_ns`` event time of each last price (ns UTC);
    ``symbols`` the columns of ``returns``, a (T, N) window of aligned one-period returns (fractions, oldest
    first). The sample covariance (n-1) is computed once, on first use. Instead of ``returns``, a ``window`` (an
    object with ``len()``, ``matrix()`` and ``cov()``, e.g. the account's
    :class:`~operators.account.returns.ReturnWindow`) may supply the rows and a covariance it keeps up to date;
    its rows are finite by construction and are only materialised when a check needs them (historical VaR)."""

    __slots__ = ("prices", "price_ts_ns", "symbols", "_returns", "_window", "n_returns", "_index", "_cov", "_fhs")

    def __init__(
        self,
        prices: Mapping[str, float],
        price_ts_ns: Mapping[str, int],
        symbols: tuple[str, ...] = (),
        returns: np.ndarray | None = None,
        *,
        window: Any = None,
    ) -> None:
        self.prices = prices
        self.price_ts_ns = price_ts_ns
        self.symbols = tuple(symbols)
        self._window = window
        self._cov: np.ndarray | None = None
        self._fhs: tuple[float, np.ndarray] | None = None
        if window is not None:
            if returns is not None:
                raise ValueError("give returns or window, not both")
            self._returns: np.ndarray | None = None
            self.n_returns = len(window)
        else:
            r = np.zeros((0, len(self.symbols))) if returns is None else np.asarray(returns, dtype=np.float64)
            if r.ndim != 2 or r.shape[1] != len(self.symbols):
                raise ValueError(f"returns must be (T, {len(self.symbols)}), got {r.shape}")
            if not np.isfinite(r).all():
                raise ValueError("returns must be finite")
            self._returns = r
            self.n_returns = r.shape[0]
        self._index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def from_windows(
        cls, prices: Mapping[str, float], price_ts_ns: Mapping[str, int], windows: Mapping[str, np.ndarray]
    ) -> MarketState:
        """Align per-symbol return windows (oldest first) on their common most recent length."""
        syms = tuple(windows)
        t = min((len(w) for w in windows.values()), default=0)
        r = (
            np.column_stack([np.asarray(windows[s], dtype=np.float64)[len(windows[s]) - t :] for s in syms])
            if syms and t
            else np.zeros((0, len(syms)))
        )
        return cls(prices, price_ts_ns, syms, r)

    @property
    def returns(self) -> np.ndarray:
        """(T, N) returns, oldest first."""
        if self._returns is None:
            self._returns = self._window.matrix()
        return self._returns

    @property
    def cov(self) -> np.ndarray:
        """(N, N) sample covariance of ``returns`` (divide by T - 1)."""
        if self._cov is None:
            self._cov = self._window.cov() if self._window is not None else sample_covariance(self.returns)
        return self._cov

    def index(self, symbol: str) -> int | None:
        """Column of ``symbol`` in ``returns`` (None if absent)."""
        return self._index.get(symbol)

    def scenarios(self, method: str, lam: float) -> np.ndarray:
        """The (T', N) return scenarios of a historical ``method``: the window's rows (``"historical"``), or their
        filtered version (``"fhs"``, decay ``lam``; from the window when it keeps its own EWMA state, else
        :func:`~operators.risk.filtered.filtered_scenarios` of the rows)."""
        if method == "historical":
            return self.returns
        if self._fhs is None or self._fhs[0] != lam:
            w = self._window
            if w is not None and getattr(w, "lam", None) == lam:
                self._fhs = (lam, w.scenarios())
            else:
                self._fhs = (lam, filtered_scenarios(self.returns, lam))
        return self._fhs[1]


class GateState:
    """The gate's mutable state (lives in Bytewax state): kill switch, rate bucket, decision counters."""

    __slots__ = ("kill", "bucket", "decisions")

    def __init__(self, limits: RiskLimits) -> None:
        self.kill = KillSwitch(limits.max_drawdown, limits.halt_cooldown_s, limits.resume_drawdown)
        self.bucket = TokenBucket(limits.rate_per_s, limits.rate_burst)
        self.decisions = {"approved": 0, "resized": 0, "rejected": 0}

    def __getstate__(self) -> tuple:
        return (self.kill, self.bucket, self.decisions)

    def __setstate__(self, s: tuple) -> None:
        self.kill, self.bucket, self.decisions = s


def decision_id(intent_id: str) -> str:
    """The id of the decision on ``intent_id``: ``rd:<intent id>``, or a BLAKE2b digest when that is over 128 chars."""
    did = "rd:" + intent_id
    return did if len(did) <= 128 else "rd:" + hashlib.blake2b(intent_id.encode(), digest_size=16).hexdigest()


class _Book:
    """The book's exposure vector ``x0`` over ``market.symbols`` and scalar loss functions of the order quantity
    ``q`` along column ``j`` (``dj`` = sign x price per unit), memoised. For the Gaussian method the portfolio
    variance after ``q`` more is the quadratic ``a + 2 b q + c q²`` (``a = x0'Σx0``, ``b = dj (Σx0)_j``,
    ``c = dj² Σ_jj``), so each VaR/CVaR limit has a closed-form largest quantity (:meth:`max_q`)."""

    def __init__(self, market: MarketState, exposures: np.ndarray, j: int, dj: float, gate: RiskGate) -> None:
        self.alpha = gate.limits.alpha
        self.gauss = gate.limits.var_method == "gaussian"
        self.kv, self.kc = gate._kv, gate._kc  # Gaussian VaR / CVaR loss = k · σ_p (zero mean)
        self._memo: dict[float, tuple[float, float]] = {}
        self.gross_o = self.net_o = 0.0  # gross and net exposure of the other symbols (quote), set by the gate
        if self.gauss:
            cov = market.cov
            sx = cov @ exposures
            self.a, self.b, self.c = float(exposures @ sx), dj * float(sx[j]), dj * dj * float(cov[j, j])
        else:
            r = market.scenarios(gate.limits.var_method, gate.limits.fhs_lambda)
            self.lines = ScenarioLines(r @ exposures, dj * r[:, j], self.alpha)

    def losses(self, q: float) -> tuple[float, float]:
        """Portfolio (VaR, CVaR) after ``q`` more along the order direction: positive losses, quote currency."""
        m = self._memo.get(q)
        if m is None:
            if self.gauss:
                sp = math.sqrt(max(self.a + 2.0 * self.b * q + self.c * q * q, 0.0))
                m = (self.kv * sp, self.kc * sp)
            else:
                v, c = self.lines.var_cvar(q)
                m = (-v, -c)
            self._memo[q] = m
        return m

    def var_loss(self, q: float) -> float:
        return self.losses(q)[0]

    def cvar_loss(self, q: float) -> float:
        return self.losses(q)[1]

    def max_q(self, k: float, bound: float) -> float:
        """Gaussian only: the largest ``q`` with ``k · σ_p(q) <= bound`` (``inf`` when every ``q`` fits, ``-inf``
        when none does)."""
        big = bound / k
        a, b, c = self.a - big * big, self.b, self.c
        if c <= 0.0:  # no variance along the order: linear in q
            return math.inf if b <= 0.0 else -a / (2.0 * b)
        disc = b * b - c * a
        if disc < 0.0:
            return -math.inf
        return (-b + math.sqrt(disc)) / c


def _limit(
    reason: str,
    loss: Callable[[float], float],
    q0: float,
    q_hi: float,
    bound: float,
    solve: Callable[[float, float], float] | None,
    q_cap: float | None = None,
) -> Verdict:
    """:func:`~operators.risk.checks.check_limit` with a solver ``solve(b, hi)`` for the largest ``q`` in
    ``[q0, hi]`` with ``loss(q) <= b`` (closed form, or the scenario search), bisection without one. The same
    semantics: the bound is ``max(bound, loss(q0))`` and increments below 1e-9 of ``q_hi - q0`` count as none.

    ``q_cap`` (<= ``q_hi``): the quantity the limits checked before this one already allow. The limit is judged on
    the full request (its reason is named when ``q_hi`` breaks it), but its largest quantity is only searched below
    ``q_cap``, and not at all when ``q_cap`` fits."""
    b = max(bound, loss(q0))
    if loss(q_hi) <= b:
        return PASS
    hi = q_hi if q_cap is None else min(q_cap, q_hi)
    if hi < q_hi and (hi <= q0 or loss(hi) <= b):
        return Verdict(False, (reason,), max(hi, q0))
    if solve is None:
        q = max_feasible_qty(loss, q0, hi, b)
    else:
        q = min(max(solve(b, hi), q0), hi)
        if q > q0 and loss(q) > b:  # rounding at the root: settle it by bisection on [q0, q]
            q = max_feasible_qty(loss, q0, q, b)
    if q - q0 <= 1e-9 * (q_hi - q0):
        q = q0
    return Verdict(False, (reason,), q)


class RiskGate:
    """Pre-trade risk gate (see the module doc); ``limits`` immutable, ``state`` picklable. Whole gate picklable."""

    def __init__(self, limits: RiskLimits | None = None, state: GateState | None = None) -> None:
        self.limits = limits or RiskLimits()
        self.state = state or GateState(self.limits)
        self._set_constants()

    def _set_constants(self) -> None:
        z = norm_ppf(self.limits.alpha)
        self._kv = z  # VaR loss per unit of σ (zero mean)
        self._kc = norm_pdf(z) / (1.0 - self.limits.alpha)  # CVaR loss per unit of σ

    def update_equity(self, equity: float, now_ns: int) -> str:
        """Feed an equity mark (quote currency) to the kill switch between intents; the kill-switch state."""
        return self.state.kill.update(equity, now_ns)

    def evaluate(self, intent: Any, portfolio: Any, market: MarketState, now_ns: int) -> RiskDecision:
        """Decide on one intent at event time ``now_ns`` (ns UTC); see the module doc for the checks."""
        L = self.limits
        sym: str = intent.symbol
        req = float(intent.qty)
        side = intent.side
        sign = 1.0 if side == "buy" else -1.0
        equity = float(portfolio.equity)
        positions = dict(portfolio.positions)
        cur = float(positions.get(sym, 0.0))
        kill_state = self.state.kill.update(equity, now_ns)
        reasons: list[str] = []

        def cap(v: Verdict, limit: float) -> float:
            reasons.extend(r for r in v.reasons if r not in reasons)
            return limit

        qmax = req if req > 0.0 and math.isfinite(req) else 0.0
        if qmax == 0.0:
            reasons.append("zero_qty")
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        reducing = min(qmax, max(0.0, -sign * cur))  # part of the order that shrinks |position|
        increases = qmax > reducing

        v = check_kill_switch(kill_state, increases)
        if not v.ok:
            qmax = cap(v, 0.0 if kill_state == "halted" else reducing)
        price = market.prices.get(sym)
        if price is None or not price > 0.0:
            qmax = cap(Verdict(False, ("no_price",)), 0.0 if price is None else reducing)
        if qmax > reducing:
            for v in (
                Verdict(False, ("no_equity",)) if equity <= 0.0 else Verdict(True),
                check_stale(market.price_ts_ns.get(sym), now_ns, L.max_price_age_s),
                check_confidence(getattr(intent, "confidence", None), L.min_confidence),
            ):
                if not v.ok:
                    qmax = cap(v, reducing)
        if qmax > reducing:
            held = {s for s, q in positions.items() if q != 0.0} | {sym}
            if any(not market.prices.get(s, 0.0) > 0.0 for s in held):
                qmax = cap(Verdict(False, ("no_price",)), reducing)
            elif any(market.index(s) is None for s in held) or market.n_returns < L.min_history:
                qmax = cap(Verdict(False, ("insufficient_history",)), reducing)
        book: _Book | None = None
        if qmax > reducing:
            qmax, book = self._quantity_limits(
                sym,
                sign,
                cur,
                reducing,
                qmax,
                equity,
                positions,
                market,
                reasons,
                getattr(portfolio, "shares", None) or {},
            )
        q = round_to_lot(qmax, L.lot_size(sym))
        if q < qmax and q > 0.0 and not reasons and q != req:
            reasons.append("lot_size")
        if 0.0 < q < L.min_qty or (q == 0.0 and qmax > 0.0):
            q = 0.0
            reasons.append("below_min_qty")
        if q > 0.0 and not self.state.bucket.try_take(now_ns):
            q = 0.0
            reasons.append("rate_limited")
        if q == 0.0 and not reasons:
            reasons.append("rejected")
        action = "rejected" if q == 0.0 else ("approved" if q == req else "resized")
        self.state.decisions[action] += 1
        positions[sym] = cur + sign * q
        return self._decision(intent, req, q, action, reasons, equity, positions, market, now_ns, book)

    # ----------------------------------------------------------------------------------------------------------

    def _quantity_limits(
        self,
        sym: str,
        sign: float,
        cur: float,
        q0: float,
        qmax: float,
        equity: float,
        positions: dict[str, float],
        market: MarketState,
        reasons: list[str],
        shares: Mapping[str, Mapping[str, float]] | None = None,
    ) -> tuple[float, _Book]:
        """The largest quantity (base units, >= ``q0``) that fits every quantity limit, and the book it was
        computed on (its loss functions of the order quantity serve the decision's VaR/CVaR snapshot)."""
        L = self.limits
        price = market.prices[sym]
        others = [(s, q * market.prices[s]) for s, q in positions.items() if s != sym and q != 0.0]
        gross_o = math.fsum(abs(e) for _, e in others)
        net_o = math.fsum(e for _, e in others)

        def pos(q: float) -> float:
            return cur + sign * q

        n = len(market.symbols)
        x0 = np.zeros(n)
        for s, q in positions.items():
            i = market.index(s)
            if i is not None:
                x0[i] += q * market.prices[s]
        j: int = market.index(sym)  # type: ignore[assignment]
        book = _Book(market, x0, j, sign * price, self)
        book.gross_o, book.net_o = gross_o, net_o
        base = book.var_loss(0.0)
        # for q >= q0 (the reducing part) |position| grows linearly: |pos(q0)| + (q - q0)
        p0 = abs(pos(q0))
        a0 = net_o + pos(q0) * price
        gauss = book.gauss
        kv, kc = book.kv, book.kc
        # (reason, loss(q), limit, largest q for a bound on the loss): closed form for the Gaussian method (each
        # loss convex in q); for the historical one the bisection over the scenario lines that can still matter
        hist = None if gauss else book.lines
        specs: list[tuple[str, Callable[[float], float], float, Callable[[float, float], float] | None]] = [
            (
                "position_limit",
                lambda q: abs(pos(q)),
                min(L.max_position_qty.get(sym, math.inf), L.max_position_frac * equity / price),
                lambda b, hi: q0 + (b - p0),
            ),
            (
                "gross_exposure_limit",
                lambda q: gross_o + abs(pos(q)) * price,
                L.max_gross_exposure,
                lambda b, hi: q0 + (b - gross_o - p0 * price) / price,
            ),
            (
                "net_exposure_limit",
                lambda q: abs(net_o + pos(q) * price),
                L.max_net_exposure,
                lambda b, hi: q0 + ((b - a0) if sign > 0 else (b + a0)) / price,
            ),
            (
                "leverage_limit",
                lambda q: (gross_o + abs(pos(q)) * price) / equity,
                L.max_leverage,
                lambda b, hi: q0 + (b * equity - gross_o - p0 * price) / price,
            ),
            (
                "symbol_var_budget",
                lambda q: (book.var_loss(q) - base) / equity,
                L.var_budget(sym),
                (lambda b, hi: book.max_q(kv, b * equity + base))
                if gauss
                else (lambda b, hi: hist.largest("var", base, equity, b, q0, hi)),
            ),  # type: ignore[union-attr]
            (
                "portfolio_var_limit",
                lambda q: book.var_loss(q) / equity,
                L.max_portfolio_var,
                (lambda b, hi: book.max_q(kv, b * equity))
                if gauss
                else (lambda b, hi: hist.largest("var", 0.0, equity, b, q0, hi)),
            ),  # type: ignore[union-attr]
            (
                "portfolio_cvar_limit",
                lambda q: book.cvar_loss(q) / equity,
                L.max_portfolio_cvar,
                (lambda b, hi: book.max_q(kc, b * equity))
                if gauss
                else (lambda b, hi: hist.largest("cvar", 0.0, equity, b, q0, hi)),
            ),  # type: ignore[union-attr]
        ]
        strat = self._strategy_budget_loss(sym, sign, positions, market, shares or {}, equity)
        if strat is not None:
            specs.append(("strategy_var_budget", strat, 1.0, None))
        q_req = qmax
        # every check sees the full request, so reasons name all limits hit; each searches only below what the
        # earlier ones allow (the cheap exposure limits come first, the VaR searches last)
        for reason, loss, limit, solve in specs:
            if math.isinf(limit) and limit > 0:
                continue
            v = _limit(reason, loss, q0, q_req, limit, solve, qmax)
            if not v.ok:
                qmax = min(qmax, v.max_qty)  # type: ignore[type-var]
                reasons.extend(r for r in v.reasons if r not in reasons)
        # Verify the final, lot-rounded quantity against every limit: the historical quantile is not convex in q,
        # so the minimum over the checks (or the rounding) may land outside one of them; shrink again if so. With
        # every loss convex (Gaussian, no strategy budgets) each fits on [q0, its own largest q]: nothing to verify.
        if gauss and strat is None:
            return qmax, book
        bounds = [(loss, max(limit, loss(q0))) for _, loss, limit, _ in specs if not (math.isinf(limit) and limit > 0)]
        lot = L.lot_size(sym)
        for _ in range(4):
            qr = round_to_lot(qmax, lot)
            bad = [(loss, b) for loss, b in bounds if qr > q0 and loss(qr) > b]
            if not bad:
                return qmax, book
            qmax = min(max_feasible_qty(loss, q0, qr, b) for loss, b in bad)
        return q0, book

    def _strategy_budget_loss(
        self,
        sym: str,
        sign: float,
        positions: Mapping[str, float],
        market: MarketState,
        shares: Mapping[str, Mapping[str, float]],
        equity: float,
    ) -> Callable[[float], float] | None:
        """``q -> max over strategies of (component VaR / equity) / budget`` after ``q`` more of ``sym``, or None when
        no strategy in the book has a finite budget. Components are Gaussian Euler components (they sum to the
        portfolio VaR); a strategy's exposure in a symbol is the position times its share there."""
        L = self.limits
        names = sorted({k for sh in shares.values() for k in sh})
        budgets = [L.strategy_budget(k) for k in names]
        if not names or all(math.isinf(b) for b in budgets):
            return None
        n = len(market.symbols)
        cov = market.cov
        e0 = np.zeros((len(names), n))  # strategy x symbol exposure of the book without the order's symbol
        for s, q in positions.items():
            i = market.index(s)
            if i is None or s == sym or q == 0.0:
                continue
            for k, share in shares.get(s, {}).items():
                e0[names.index(k), i] += q * market.prices[s] * share
        j = market.index(sym)
        sh = np.array([shares.get(sym, {}).get(k, 0.0) for k in names])
        price = market.prices[sym]
        cur = float(positions.get(sym, 0.0))
        lim = np.array([b * equity for b in budgets])
        kv = self._kv

        def loss(q: float) -> float:
            e = e0.copy()
            e[:, j] += (cur + sign * q) * price * sh  # type: ignore[index]
            x = e.sum(axis=0)
            var = float(x @ cov @ x)
            if var <= 0.0:
                return 0.0
            comp = kv * (e @ (cov @ x)) / math.sqrt(var)
            return float(
                np.max(np.where(np.isinf(lim), 0.0, comp / np.where(np.isinf(lim), 1.0, np.maximum(lim, 1e-300))))
            )

        return loss

    def _decision(
        self,
        intent: Any,
        req: float,
        q: float,
        action: str,
        reasons: list[str],
        equity: float,
        positions: dict[str, float],
        market: MarketState,
        now_ns: int,
        book: _Book | None = None,
    ) -> RiskDecision:
        """The decision with its snapshot after ``q``. ``book``: the quantity limits' book of this order, whose
        Gaussian losses of ``q`` are the portfolio's (every held symbol priced and in the window: the limits
        checked that), so nothing is recomputed."""
        L = self.limits
        sym = intent.symbol
        held = {s: p for s, p in positions.items() if p != 0.0}
        px = market.prices
        s_var = s_cvar = p_var = p_cvar = 0.0
        if book is not None and equity > 0.0 and market.n_returns >= 2:
            x_j = positions[sym] * px[sym]
            gross = book.gross_o + abs(x_j)
            net = book.net_o + x_j
            p_var, p_cvar = book.losses(q)
            j: int = market.index(sym)  # type: ignore[assignment]
            if book.gauss:
                sp = math.sqrt(max(float(market.cov[j, j]), 0.0)) * abs(x_j)
                s_var, s_cvar = self._kv * sp, self._kc * sp
            else:
                xs = np.zeros(len(market.symbols))
                xs[j] = x_j
                s_var, s_cvar = self._losses(market, xs)
            p_var, p_cvar, s_var, s_cvar = p_var / equity, p_cvar / equity, s_var / equity, s_cvar / equity
            ok_data = False
        else:
            gross = math.fsum(abs(p) * px[s] for s, p in held.items() if s in px)
            net = math.fsum(p * px[s] for s, p in held.items() if s in px)
            ok_data = (
                equity > 0.0 and market.n_returns >= 2 and all(s in px and market.index(s) is not None for s in held)
            )
        if ok_data:
            n = len(market.symbols)
            x = np.zeros(n)
            for s, p in held.items():
                x[market.index(s)] = p * px[s]  # type: ignore[index]
            i = market.index(sym)
            p_var, p_cvar = self._losses(market, x)
            if i is None:
                pass
            elif L.var_method == "gaussian":  # the symbol alone: σ = sqrt(Σ_ii) |x_i|
                sp = math.sqrt(max(float(market.cov[i, i]), 0.0)) * abs(float(x[i]))
                s_var, s_cvar = self._kv * sp, self._kc * sp
            else:
                xs = np.zeros(n)
                xs[i] = x[i]
                s_var, s_cvar = self._losses(market, xs)
            p_var, p_cvar, s_var, s_cvar = (v / equity for v in (p_var, p_cvar, s_var, s_cvar))
        kill = self.state.kill
        snap = PortfolioSnapshot(
            equity=equity,
            gross_exposure=gross,
            net_exposure=net,
            drawdown=min(max(kill.drawdown, 0.0), 1.0),
            var=p_var,
            cvar=p_cvar,
            positions=dict(list(held.items())[:256]),
        )
        iid = getattr(intent, "intent_id", None) or intent.id
        return RiskDecision(
            id=decision_id(iid),
            intent_id=iid,
            symbol=sym,
            ts=int(now_ns),
            action=action,
            requested_qty=req,
            approved_qty=q,
            reasons=reasons[:32],
            var=s_var,
            cvar=s_cvar,
            portfolio=snap,
            strategy=getattr(intent, "strategy", None),
            side=intent.side,
        )

    def _losses(self, market: MarketState, x: np.ndarray) -> tuple[float, float]:
        """(VaR, CVaR) positive losses of exposure vector ``x``, quote currency."""
        L = self.limits
        if not x.any():
            return 0.0, 0.0
        if L.var_method == "gaussian":
            sp = math.sqrt(max(float(x @ market.cov @ x), 0.0))
            return self._kv * sp, self._kc * sp
        v, c = var_cvar(market.scenarios(L.var_method, L.fhs_lambda) @ x, L.alpha)
        return to_loss(v), to_loss(c)

    def __getstate__(self) -> tuple:
        return (self.limits, self.state)

    def __setstate__(self, s: tuple) -> None:
        self.limits, self.state = s
        self._set_constants()
