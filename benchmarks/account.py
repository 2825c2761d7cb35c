"""Account-stage benchmark (issue "One account across symbols"): intents per second through
``AccountStage.on_update`` — the event-time clock over the symbols, sizing against the shared book, the portfolio
``RiskGate`` (Gaussian VaR with the symbols' covariance), the decision, and the fills booked — and, separately, the
share of that time spent in the execution stage it drives (TWAP children of approved parents, the order state
machine, the in-process venue filling them and its reports). ``account_intents_per_s`` is the whole path;
``account_stage_intents_per_s`` leaves out the time inside :class:`~operators.execution.stage.ExecutionStage`
(measured by timing each of its calls), which is what the account stage itself costs per intent.

The input is two symbols' decision points at every 30-minute time with an intent each, alternating targets so
that most intents trade; one tick per symbol and time keeps the venue and the marks moving. Timed in process,
no Bytewax, the garbage collector frozen after set-up; best of ``repeats`` runs.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from operators.account.stage import AccountConfig, AccountStage
from operators.execution.broker import BrokerConfig
from operators.execution.stage import ExecutionStage
from operators.ids import stable_id
from operators.messages import DecisionPoint, SymbolUpdate, TickColumns
from operators.risk import RiskLimits
from schemas.events import Intent, Tick

T0 = 1_700_000_000_000_000_000
NS = 1_000_000_000
STEP = 1800 * NS
SYMBOLS = ("BTC-USD", "ETH-USD")


def _inputs(n_times: int, seed: int = 3) -> list[SymbolUpdate]:
    """Correlated random-walk closes; per time and symbol one tick just before the close and one decision point
    with an intent (targets cycle through -1 .. 1)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]]) * 1e-4
    steps = rng.multivariate_normal([0.0, 0.0], cov, size=n_times)
    px = np.array([30_000.0, 2_000.0]) * np.exp(np.cumsum(steps, axis=0))
    targets = (-1.0, -0.5, 0.0, 0.5, 1.0, 0.25)
    out = []
    for i in range(n_times):
        t = T0 + (i + 1) * STEP
        for j, sym in enumerate(SYMBOLS):
            p = float(px[i, j])
            tick = Tick(symbol=sym, ts=t - NS, price=p, qty=5.0, side="buy", trade_id=f"b:{sym}:{i}", venue="bench")
            tg = targets[(i + j) % len(targets)]
            it = Intent(id=stable_id("int", "bench", sym, t, tg), symbol=sym, strategy="bench", target=tg,
                        confidence=0.9, price=p, ts=t)
            out.append(SymbolUpdate(sym, t - STEP, TickColumns(sym, [tick], t - STEP), [DecisionPoint(sym, t, p, it)], t))
    return out


class _TimedExecution(ExecutionStage):
    """The execution stage with the wall time of every call summed in ``spent`` (seconds)."""

    spent = 0.0

    def _timed(name: str):  # type: ignore[no-untyped-def]
        def call(self, *a, **kw):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return getattr(ExecutionStage, name)(self, *a, **kw)
            finally:
                self.spent += time.perf_counter() - t
        return call

    for _name in ("apply", "on_ticks", "submit", "send_due", "cancel_open", "withdraw_unsent", "on_command",
                  "in_flight", "add_in_flight"):
        locals()[_name] = _timed(_name)
    del _name, _timed


def _stage(cfg: AccountConfig) -> tuple[AccountStage, _TimedExecution]:
    acc = AccountStage(cfg)
    ex = _TimedExecution(acc.venue, execution=cfg.execution, twap_horizon_s=cfg.twap_horizon_s,
                         twap_slice_s=cfg.twap_slice_s)
    acc.execution = ex
    return acc, ex


def _config(var_method: str = "gaussian") -> AccountConfig:
    return AccountConfig(symbols=SYMBOLS, limits=RiskLimits(max_price_age_s=3600.0, rate_per_s=1e9, rate_burst=1e9,
                                                            min_history=20, min_confidence=0.0, max_drawdown=1.0,
                                                            resume_drawdown=0.5, var_method=var_method),
                         twap_horizon_s=900.0, twap_slice_s=300.0, broker=BrokerConfig())


def _measure(updates: list[SymbolUpdate], var_method: str, repeats: int) -> tuple[float, float, AccountStage]:
    best = (float("inf"), 0.0)
    acc = None
    for _ in range(repeats):
        acc, ex = _stage(_config(var_method))
        gc.collect()
        gc.freeze()
        try:
            t = time.perf_counter()
            for u in updates:
                acc.on_update(u)
            best = min(best, (time.perf_counter() - t, ex.spent))
        finally:
            gc.unfreeze()
    assert acc is not None
    return best[0], best[1], acc


def run(n_times: int = 10_000, repeats: int = 3) -> dict[str, float]:
    """Intents per second of the account stage (``n_times`` x 2 intents) on the Gaussian gate, and what they
    became; the same on the default gate (filtered historical simulation, ``account_fhs_*``)."""
    updates = _inputs(n_times)
    n = 2 * n_times
    total, in_execution, acc = _measure(updates, "gaussian", repeats)
    f_total, f_exec, _ = _measure(updates, "fhs", repeats)
    return {"account_intents": float(n), "account_intents_per_s": n / total,
            "account_stage_intents_per_s": n / (total - in_execution),
            "account_execution_share": in_execution / total,
            "account_approved_frac": (acc.decisions["approved"] + acc.decisions["resized"]) / n,
            "account_orders": float(len(acc.oms.finished) + len(acc.oms.open)),
            "account_fhs_intents_per_s": n / f_total, "account_fhs_stage_intents_per_s": n / (f_total - f_exec)}
