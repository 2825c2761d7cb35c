"""The account stage against its frozen previous implementation (``tests/support/reference/account_stage.py`` and the
ledger, attribution, return window, order manager and execution stage it uses: the code of ae8e5c8, before the
account-stage throughput round of 2026-12-03 12:00), behind the frozen reference gate (fd74071): the benchmark's
inputs on every gate, loose and tight limits, TWAP and market execution, the position-cap gate, a pickle
round-trip half-way and operator commands must give the very same decisions, orders, fills, reports, marks,
state and closing summary, every float to the last bit (compared as encoded bytes)."""

from __future__ import annotations

import dataclasses
import pickle

import msgspec
import numpy as np
import pytest

from benchmarks import account as bench
from operators.account.stage import AccountStage
from operators.risk import OrderRequest, PortfolioState
from schemas.events import ControlCommand
from tests.support.reference import account_stage as ref_stage
from tests.support.reference import gate as ref_gate

KINDS = ("decisions", "orders", "fills", "reports", "marks", "alerts", "audit", "cancels", "state")


def _enc(x: object) -> bytes:
    return msgspec.json.encode(x)


class _RefGate(ref_gate.RiskGate):
    """The frozen gate behind the frozen stage's ``decide`` call (it builds the objects and evaluates)."""

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


def _pair(cfg):  # type: ignore[no-untyped-def]
    new, old = AccountStage(cfg), ref_stage.AccountStage(cfg)
    if cfg.gate == "risk":
        old.gate = _RefGate(cfg.limits)
    return new, old


def _check(a, b, where: str) -> None:  # type: ignore[no-untyped-def]
    for kind in KINDS:
        assert _enc(getattr(a, kind)) == _enc(getattr(b, kind)), (where, kind)


def _same_summary(new, old) -> None:  # type: ignore[no-untyped-def]
    """The same closing figures (keys the stage added since the reference was frozen are not compared)."""
    a, b = new.summary(), old.summary()
    assert _enc({k: a[k] for k in b}) == _enc(b)


def _inputs(n: int, seed: int):  # type: ignore[no-untyped-def]
    """The benchmark's worst case, with some intents dropped and a few carrying the orchestrator's contributions
    (per-strategy shares), so that flat decision times, reducing orders and attribution splits all occur."""
    rng = np.random.default_rng(seed)
    ups = bench._inputs(n, seed=seed)
    for u in ups:
        for i, p in enumerate(u.points):
            r = rng.random()
            if r < 0.15 and p.intent is not None:
                u.points[i] = dataclasses.replace(p, intent=None)
            elif r < 0.3 and p.intent is not None and p.intent.target != 0.0:
                t = p.intent.target
                w = float(rng.uniform(-0.5, 1.5))
                u.points[i] = dataclasses.replace(
                    p,
                    intent=msgspec.structs.replace(
                        p.intent, strategy="orchestrator", contributions={"trend": t * w, "mean_reversion": t * (1 - w)}
                    ),
                )
    return ups


CASES = {
    "gaussian": dict(var_method="gaussian"),
    "gaussian_tight": dict(
        var_method="gaussian",
        max_portfolio_var=0.004,
        symbol_var_budget=0.003,
        max_leverage=0.8,
        default_lot_size=0.001,
    ),
    "gaussian_budgets": dict(
        var_method="gaussian",
        max_portfolio_var=0.006,
        strategy_var_budget=0.002,
        max_gross_exposure=60_000.0,
        max_net_exposure=30_000.0,
    ),
    "fhs": dict(var_method="fhs"),
    "fhs_tight": dict(
        var_method="fhs", max_portfolio_var=0.004, symbol_var_budget=0.003, max_leverage=0.8, default_lot_size=0.001
    ),
    "historical_tight": dict(var_method="historical", max_portfolio_cvar=0.006, max_position_frac=0.4, min_qty=0.01),
    "drawdown": dict(
        var_method="gaussian",
        max_drawdown=0.02,
        resume_drawdown=0.005,
        halt_cooldown_s=7200.0,
        rate_per_s=0.0003,
        rate_burst=2.0,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("execution", ["twap", "market"])
def test_account_stage_matches_the_reference(case: str, execution: str) -> None:
    cfg = bench._config()
    cfg = dataclasses.replace(cfg, execution=execution, limits=dataclasses.replace(cfg.limits, **CASES[case]))
    n = 500 if case.startswith("gaussian") else 250
    new, old = _pair(cfg)
    ups = _inputs(n, seed=len(case))
    for i, u in enumerate(ups):
        _check(new.on_update(u), old.on_update(u), f"update {i}")
        if i == len(ups) // 2:  # recovery: both stages through a pickle round-trip
            new, old = pickle.loads(pickle.dumps(new)), pickle.loads(pickle.dumps(old))
    _check(new.flush(), old.flush(), "flush")
    _same_summary(new, old)
    assert new.decisions == old.decisions
    # the cases reach what they are about (a test that cannot fail otherwise)
    assert sum(new.decisions.values()) > n
    if case.endswith("tight") or case == "gaussian_budgets":
        assert new.decisions["resized"] > 10
    if case == "drawdown":
        assert new.decisions["rejected"] > 10


def test_position_cap_gate_matches_the_reference() -> None:
    cfg = dataclasses.replace(bench._config(), gate="position_cap", max_position_frac=0.3)
    new, old = _pair(cfg)
    for i, u in enumerate(_inputs(300, seed=4)):
        _check(new.on_update(u), old.on_update(u), f"update {i}")
    _same_summary(new, old)


def test_operator_commands_match_the_reference() -> None:
    """Reduce-only, halt, disable and resume commands (verified by the flow before they reach the stage) applied
    along the way: the same audit events, decisions and orders."""
    cfg = bench._config()
    new, old = _pair(cfg)
    ups = _inputs(400, seed=9)
    plan = {
        60: ("reduce_only", "symbol:ETH-USD"),
        120: ("halt", "strategy:trend"),
        150: ("disable_strategy", "strategy:mean_reversion"),
        200: ("resume", "symbol:ETH-USD"),
        260: ("halt", "account:default"),
        330: ("resume", "account:default"),
    }
    for i, u in enumerate(ups):
        if i in plan:
            action, scope = plan[i]
            c = ControlCommand(id=f"c{i}", action=action, scope=scope, issuer="tester", reason="test", ts=u.progress)
            _check(new.on_control([c]), old.on_control([c]), f"command {i}")
        _check(new.on_update(u), old.on_update(u), f"update {i}")
    _same_summary(new, old)
