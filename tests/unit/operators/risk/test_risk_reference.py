"""The faster gate, return window and scenario VaR against the implementations they replaced (``tests/support/reference``,
the code of commit fd74071): random books, intents, limits and return histories must give the very same decisions
(every field, floats compared exactly), covariances, scenarios and VaR/CVaR numbers. Then the account stage end to
end: the same run with the reference gate behind it gives the same decisions, orders and summary."""

from __future__ import annotations

import dataclasses
import math

import msgspec
import numpy as np
import pytest

from benchmarks import account as bench
from operators.account.returns import ReturnWindow
from operators.account.stage import AccountStage
from operators.risk import MarketState, OrderRequest, PortfolioState, RiskGate, RiskLimits
from operators.risk.scenarios import ScenarioLines, var_cvar
from tests.support.reference import gate as ref_gate
from tests.support.reference import returns as ref_returns
from tests.support.reference import scenarios as ref_scenarios

T0 = 1_700_000_000_000_000_000
NS = 1_000_000_000
SYMS = ("BTC-USD", "ETH-USD", "SOL-USD")


def _same(a: object, b: object) -> bool:
    """Equal as encoded bytes (so -0.0 and 0.0 differ, and so would any last bit)."""
    return msgspec.json.encode(a) == msgspec.json.encode(b)


def _limits(rng: np.random.Generator, method: str) -> RiskLimits:
    """Random limits: some loose, some binding, lots and per-symbol budgets now and then."""
    pick = lambda lo, hi: float(10 ** rng.uniform(lo, hi))  # noqa: E731
    kw = dict(
        var_method=method,
        min_history=int(rng.integers(2, 40)),
        max_price_age_s=float(rng.choice([30.0, 1e9])),
        min_confidence=float(rng.choice([0.0, 0.5])),
        rate_per_s=float(rng.choice([1e9, 0.01])),
        rate_burst=float(rng.choice([1e9, 2.0])),
        max_portfolio_var=pick(-3, -0.5),
        max_portfolio_cvar=pick(-3, -0.3),
        symbol_var_budget=pick(-3.5, -1),
        max_leverage=pick(-1, 0.7),
        max_position_frac=pick(-1, 0.3),
        max_drawdown=float(rng.choice([0.05, 0.5, 1.0])),
        resume_drawdown=0.01,
    )
    if rng.random() < 0.3:
        kw["max_gross_exposure"] = pick(3, 5)
    if rng.random() < 0.3:
        kw["max_net_exposure"] = pick(3, 5)
    if rng.random() < 0.3:
        kw["default_lot_size"] = float(rng.choice([0.001, 0.01, 1.0]))
    if rng.random() < 0.2:
        kw["symbol_var_budgets"] = {SYMS[0]: pick(-4, -2)}
    if rng.random() < 0.2:
        kw["max_position_qty"] = {SYMS[1]: pick(-1, 2)}
    if rng.random() < 0.15:
        kw["strategy_var_budget"] = pick(-3, -1)
    if rng.random() < 0.1:
        kw["min_qty"] = 0.5
    return RiskLimits(**kw)


def _case(rng: np.random.Generator, n: int):
    syms = SYMS[:n]
    prices = {s: float(p) for s, p in zip(syms, 10 ** rng.uniform(0, 4.5, n), strict=True)}
    if rng.random() < 0.05:
        prices.pop(syms[-1])  # a held symbol without a price
    ts = {s: T0 - int(rng.integers(0, 60)) * NS for s in syms}
    t_rows = int(rng.integers(0, 120))
    cov = np.diag(10 ** rng.uniform(-5, -3, n))
    rets = rng.multivariate_normal(np.zeros(n), cov, size=t_rows) if t_rows else np.zeros((0, n))
    if rng.random() < 0.2 and t_rows:
        rets[rng.integers(0, t_rows)] = 0.0  # flat periods: zero products, signed zeros
    positions = {s: float(rng.choice([0.0, 1.0, -1.0])) * float(10 ** rng.uniform(-2, 2)) for s in syms}
    shares = {}
    if rng.random() < 0.3:
        shares = {s: {"trend": 0.7, "mr": 0.3} for s in syms if rng.random() < 0.7}
    sym = syms[int(rng.integers(0, n))]
    intent = OrderRequest(
        f"i-{rng.integers(1 << 30)}",
        sym,
        str(rng.choice(["buy", "sell"])),
        float(10 ** rng.uniform(-3, 2.5)) if rng.random() > 0.03 else 0.0,
        strategy=str(rng.choice(["trend", "mr"])),
        confidence=float(rng.uniform(0.3, 1.0)),
    )
    equity = float(rng.choice([1e5, 1e5, 3e4, -5.0]))
    return syms, prices, ts, rets, positions, shares, intent, equity


@pytest.mark.parametrize("method", ["gaussian", "historical", "fhs"])
def test_gate_decisions_match_the_reference(method: str) -> None:
    """A few thousand random decisions (kill switch, stale prices, history, every quantity limit, lots, rates,
    strategy budgets, several decisions in a row on the same state) are the reference gate's, field for field."""
    rng = np.random.default_rng({"gaussian": 11, "historical": 12, "fhs": 13}[method])
    n_cases = 1500 if method == "gaussian" else 400
    resized = rejected = crashed = 0
    for _ in range(n_cases):
        lim = _limits(rng, method)
        new, old = RiskGate(lim), ref_gate.RiskGate(lim)
        syms, prices, ts, rets, positions, shares, intent, equity = _case(rng, int(rng.integers(1, 4)))
        for k in range(3):  # the same gates, later times: kill switch and bucket state carried along
            now = T0 + k * 7 * NS
            m_new = MarketState(prices, ts, syms, rets)
            m_old = ref_gate.MarketState(prices, ts, syms, rets)
            pf = PortfolioState(equity=equity * (1.0 - 0.2 * k), positions=positions, shares=shares)
            d_new = new.evaluate(intent, pf, m_new, now)
            try:
                d_old = old.evaluate(intent, pf, m_old, now)
            except KeyError:  # the reference failed on a flat position in a symbol without a price
                crashed += 1
                assert any(q == 0.0 and x not in prices for x, q in positions.items())
                break
            assert _same(d_new, d_old), (d_new, d_old)
            resized += d_new.action == "resized"
            rejected += d_new.action == "rejected"
            assert new.state.kill.state == old.state.kill.state and new.state.bucket.tokens == old.state.bucket.tokens
    # the cases reach the interesting branches (a test that cannot fail otherwise)
    assert resized > n_cases // 10 and rejected > n_cases // 10


def test_decide_with_the_kill_state_is_evaluate() -> None:
    """``decide`` given the state ``update_equity`` just returned for the same equity and time is ``evaluate``."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        lim = _limits(rng, "gaussian")
        a, b = RiskGate(lim), RiskGate(lim)
        syms, prices, ts, rets, positions, shares, intent, equity = _case(rng, 2)
        m = MarketState(prices, ts, syms, rets)
        for k in range(3):
            now, eq = T0 + k * NS, equity * (1.0 - 0.3 * k)
            kill = a.update_equity(eq, now)
            b.update_equity(eq, now)
            d_a = a.decide(
                intent.intent_id,
                intent.symbol,
                intent.side,
                intent.qty,
                intent.strategy,
                intent.confidence,
                eq,
                positions,
                shares,
                m,
                now,
                kill,
            )
            d_b = b.evaluate(intent, PortfolioState(equity=eq, positions=positions, shares=shares), m, now)
            assert _same(d_a, d_b)


def test_return_window_matches_the_reference() -> None:
    """Covariance, rows and filtered scenarios after every push, through several wraps and resyncs, for small
    windows (the list path) and wide ones (numpy), with and without the FHS state."""
    rng = np.random.default_rng(3)
    for n, size, lam in (
        (1, 7, None),
        (2, 9, None),
        (2, 5, 0.94),
        (3, 11, None),
        (4, 6, 0.97),
        (6, 8, None),
        (5, 13, 0.9),
    ):
        new, old = ReturnWindow(size, n, lam), ref_returns.ReturnWindow(size, n, lam)
        for i in range(5 * size + 3):
            row = rng.normal(0, 0.01, n)
            if i % 4 == 1:
                row[0] = 0.0
            push = row.tolist() if i % 2 else row
            new.push(push)
            old.push(push)
            assert len(new) == len(old)
            assert new.matrix().tobytes() == old.matrix().tobytes()
            if len(old) >= 2:
                assert new.cov().tobytes() == old.cov().tobytes()
                assert not new.cov().flags.writeable
            if lam is not None:
                assert new.scenarios().tobytes() == old.scenarios().tobytes()


def test_scenario_var_matches_the_reference() -> None:
    """``var_cvar`` and the scenario search are the reference's to the last bit (ties, zeros, every alpha)."""
    rng = np.random.default_rng(9)
    for _ in range(400):
        t = int(rng.integers(1, 700))
        alpha = float(rng.choice([0.9, 0.95, 0.975, 0.99, 0.999]))
        a = rng.normal(0, 100.0, t)
        if rng.random() < 0.3:
            a = np.round(a, 0)  # ties
        s = rng.normal(0, 30.0, t)
        if rng.random() < 0.2:
            s[: t // 2] = 0.0
        v = a + 1.7 * s
        assert _same(var_cvar(v, alpha), ref_scenarios.var_cvar(v, alpha))
        new, old = ScenarioLines(a, s, alpha), ref_scenarios.ScenarioLines(a, s, alpha)
        for kind in ("var", "cvar"):
            lo, hi = 0.0, float(10 ** rng.uniform(0, 2))
            bound = float(-old.var_cvar(0.0)[0 if kind == "var" else 1]) * float(rng.uniform(1.0, 3.0)) + 1e-9
            if -old.var_cvar(hi)[0 if kind == "var" else 1] <= bound:
                continue
            assert new.largest(kind, 0.0, 1.0, bound, lo, hi) == old.largest(kind, 0.0, 1.0, bound, lo, hi)


class _ReferenceGate(ref_gate.RiskGate):
    """The reference gate behind the account stage's ``decide`` call: builds the objects and evaluates (the
    kill switch updated again, as the reference always did)."""

    def decide(
        self,
        intent_id,
        sym,
        side,
        req,
        strategy,
        confidence,
        equity,
        positions,
        shares,
        market,
        now_ns,
        kill_state=None,
        positions_owned=False,
    ):  # type: ignore[no-untyped-def]
        mk = ref_gate.MarketState(market.prices, market.price_ts_ns, market.symbols, window=market._window)
        return self.evaluate(
            OrderRequest(intent_id, sym, side, req, strategy=strategy, confidence=confidence),
            PortfolioState(equity=equity, positions=positions, shares=shares),
            mk,
            now_ns,
        )


@pytest.mark.parametrize("method", ["gaussian", "fhs"])
def test_account_stage_with_the_reference_gate(method: str) -> None:
    """The benchmark's input through two account stages, one behind the reference gate: the same decisions,
    orders, fills, marks and closing summary (tight limits, so that many orders are resized)."""
    cfg = bench._config(method)
    cfg = dataclasses.replace(
        cfg,
        limits=dataclasses.replace(
            cfg.limits, max_portfolio_var=0.004, symbol_var_budget=0.003, max_leverage=0.8, default_lot_size=0.001
        ),
    )
    new, old = AccountStage(cfg), AccountStage(cfg)
    old.gate = _ReferenceGate(cfg.limits)
    for u in bench._inputs(700 if method == "gaussian" else 300):
        a, b = new.on_update(u), old.on_update(u)
        for kind in ("decisions", "orders", "fills", "reports", "marks"):
            assert _same(getattr(a, kind), getattr(b, kind)), kind
    assert new.decisions["resized"] > 50
    new.flush(), old.flush()
    assert _same(new.summary(), old.summary())
    assert math.isfinite(new.summary()["equity"])


def test_kill_switch_matches_the_reference() -> None:
    """The kill switch's update (its common path inline) against the frozen one: random equity paths through
    drawdowns, recoveries, zero and negative equity, cool-downs and manual resets give the same state, peak,
    drawdown, halt time and transition count after every event."""
    from operators.risk.kill_switch import KillSwitch
    from tests.support.reference.kill_switch import KillSwitch as RefKillSwitch

    rng = np.random.default_rng(21)
    states = set()
    for _ in range(300):
        md = float(rng.choice([0.02, 0.1, 0.5, 1.0]))
        args = (md, float(rng.choice([0.0, 30.0, 3600.0])), float(rng.uniform(0.0, md * 0.9)))
        new, old = KillSwitch(*args), RefKillSwitch(*args)
        eq, t = float(rng.choice([100.0, 0.0, -5.0, 1e5])), T0
        for _ in range(60):
            r = rng.random()
            eq = 0.0 if r < 0.03 else (-abs(eq) if r < 0.05 else eq * float(np.exp(rng.normal(0, 0.05))))
            if rng.random() < 0.1:
                eq = float(round(eq))  # exact money amounts
            if old.peak is not None and rng.random() < 0.15:  # exactly on a threshold: the boundary comparisons
                eq = (1.0 - (args[0] if rng.random() < 0.5 else args[2])) * old.peak
            t += int(rng.integers(0, 120)) * NS
            if rng.random() < 0.03:
                new.reset(eq, t)
                old.reset(eq, t)
            assert new.update(eq, t) == old.update(eq, t)
            assert (new.state, new.peak, new.drawdown, new.halted_at_ns, new.transitions) == (
                old.state,
                old.peak,
                old.drawdown,
                old.halted_at_ns,
                old.transitions,
            )
            states.add(new.state)
    assert states == {"normal", "halted", "reduce_only"}
