"""Account-stage benchmark (issue "One account across symbols"): intents per second through
``AccountStage.on_update`` — the event-time clock over the symbols, sizing against the shared book, the portfolio
``RiskGate`` (Gaussian VaR with the symbols' covariance), the decision, and the fills booked — and, separately, the
share of that time spent in the execution stage it drives (TWAP children of approved parents, the order state
machine, the in-process venue filling them and its reports). ``account_intents_per_s`` is the whole path;
``account_stage_intents_per_s`` leaves out the time inside :class:`~operators.execution.stage.ExecutionStage`
(measured by timing each of its calls), which is what the account stage itself costs per intent.

Two inputs:

* **worst case** (``account_*``): two symbols' decision points at every 30-minute time with an intent each,
  alternating targets so that almost every intent trades (3 TWAP children, 3 acks, 3 fills); one tick per symbol
  and time keeps the venue and the marks moving.
* **realistic** (``account_real_*``, :func:`run_realistic`): the very updates the signal stages send the account
  when the embedded default (``flows.embedded``, full mode) runs over the bundled BTC/ETH history: every tick, every
  decision point, the few intents its strategies produce; recorded from that run, then replayed into a fresh
  account stage with the run's configuration. Intents per second there count the intents; the stage's time is
  mostly the ticks and the decision times without intents.

Timed in process, no Bytewax, the garbage collector frozen after set-up; best of ``repeats`` runs.
"""

from __future__ import annotations

import gc
import pickle
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from operators.account.stage import AccountConfig, AccountStage
from operators.execution.broker import BrokerConfig
from operators.execution.stage import ExecutionStage
from operators.ids import stable_id
from operators.messages import DecisionPoint, SymbolUpdate, TickColumns
from operators.risk import RiskLimits
from schemas.events import Intent, Tick
from schemas.time import NS_PER_S as NS

T0 = 1_700_000_000_000_000_000
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
            it = Intent(
                id=stable_id("int", "bench", sym, t, tg),
                symbol=sym,
                strategy="bench",
                target=tg,
                confidence=0.9,
                price=p,
                ts=t,
            )
            out.append(
                SymbolUpdate(sym, t - STEP, TickColumns(sym, [tick], t - STEP), [DecisionPoint(sym, t, p, it)], t)
            )
    return out


class _TimedExecution(ExecutionStage):
    """The execution stage with the wall time of every call of its public methods summed in ``spent`` (seconds;
    a method called from another one is counted once, in the outer call)."""

    spent = 0.0
    _depth = 0


#: the clock of the measurements: wall time (perf_counter), or this thread's CPU time (thread_time, ``cpu=True``:
#: steadier on a shared machine, since time the process waits for a core is not counted)
_CLOCK = [time.perf_counter]


def _timed(f: Any) -> Any:
    def call(self, *a, **kw):  # type: ignore[no-untyped-def]
        if self._depth:
            return f(self, *a, **kw)
        self._depth = 1
        clock = _CLOCK[0]
        t = clock()
        try:
            return f(self, *a, **kw)
        finally:
            self.spent += clock() - t
            self._depth = 0

    return call


for _name, _f in list(vars(ExecutionStage).items()):
    if isinstance(_f, types.FunctionType) and not _name.startswith("_"):
        setattr(_TimedExecution, _name, _timed(_f))
del _name, _f


def _stage(cfg: AccountConfig) -> tuple[AccountStage, _TimedExecution]:
    acc = AccountStage(cfg)
    ex = _TimedExecution(
        acc.venue, execution=cfg.execution, twap_horizon_s=cfg.twap_horizon_s, twap_slice_s=cfg.twap_slice_s
    )
    acc.execution = ex
    return acc, ex


def _config(var_method: str = "gaussian") -> AccountConfig:
    return AccountConfig(
        symbols=SYMBOLS,
        limits=RiskLimits(
            max_price_age_s=3600.0,
            rate_per_s=1e9,
            rate_burst=1e9,
            min_history=20,
            min_confidence=0.0,
            max_drawdown=1.0,
            resume_drawdown=0.5,
            var_method=var_method,
        ),
        twap_horizon_s=900.0,
        twap_slice_s=300.0,
        broker=BrokerConfig(),
    )


def _measure(
    updates: list[SymbolUpdate], var_method: str, repeats: int, cfg: AccountConfig | None = None
) -> tuple[float, float, AccountStage]:
    best = (float("inf"), 0.0)
    acc = None
    for _ in range(repeats):
        acc, ex = _stage(cfg or _config(var_method))
        gc.collect()
        gc.freeze()
        try:
            clock = _CLOCK[0]
            t = clock()
            for u in updates:
                acc.on_update(u)
            best = min(best, (clock() - t, ex.spent))
        finally:
            gc.unfreeze()
    assert acc is not None
    return best[0], best[1], acc


def run(n_times: int = 10_000, repeats: int = 3, realistic: bool = True, cpu: bool = False) -> dict[str, float]:
    """Intents per second of the account stage on the worst case (``n_times`` x 2 intents) on the Gaussian gate,
    and what they became; the same on the default gate (filtered historical simulation, ``account_fhs_*``); and
    (``realistic``) the recorded input of the embedded default (``account_real_*``, :func:`run_realistic`).
    ``cpu``: time with this thread's CPU time instead of the wall clock."""
    _CLOCK[0] = time.thread_time if cpu else time.perf_counter
    updates = _inputs(n_times)
    n = 2 * n_times
    total, in_execution, acc = _measure(updates, "gaussian", repeats)
    f_total, f_exec, _ = _measure(updates, "fhs", repeats)
    return {
        "account_intents": float(n),
        "account_intents_per_s": n / total,
        "account_stage_intents_per_s": n / (total - in_execution),
        "account_execution_share": in_execution / total,
        "account_approved_frac": (acc.decisions["approved"] + acc.decisions["resized"]) / n,
        "account_orders": float(len(acc.oms.finished) + len(acc.oms.open)),
        "account_fhs_intents_per_s": n / f_total,
        "account_fhs_stage_intents_per_s": n / (f_total - f_exec),
        **(run_realistic(repeats=repeats) if realistic else {}),
    }


REPO = Path(__file__).resolve().parent.parent
BUNDLED = [REPO / "data" / "market" / "BTC-30m.csv.gz", REPO / "data" / "market" / "ETH-30m.csv.gz"]


def record_realistic(max_bars: int | None = None) -> tuple[AccountConfig, list[SymbolUpdate]]:
    """Run the embedded default over the bundled history (``max_bars`` per file; None = all) and record what the
    account stage received: its configuration and every ``SymbolUpdate``, in arrival order (copies)."""
    from connectors.history import load_history
    from flows.embedded import EMBEDDED_PIPELINE, run_history

    seen: list[bytes] = []
    cfgs: list[AccountConfig] = []
    orig = AccountStage.on_update

    def record(self: AccountStage, u: SymbolUpdate) -> Any:
        if not cfgs:
            cfgs.append(self.cfg)
        seen.append(pickle.dumps(u, protocol=pickle.HIGHEST_PROTOCOL))
        return orig(self, u)

    history = load_history(BUNDLED, ticks_per_bar=8, max_bars=max_bars)
    AccountStage.on_update = record  # type: ignore[method-assign]
    try:
        run_history(history, None, EMBEDDED_PIPELINE, progress=False)
    finally:
        AccountStage.on_update = orig  # type: ignore[method-assign]
    return cfgs[0], [pickle.loads(b) for b in seen]


def run_realistic(max_bars: int | None = None, repeats: int = 3) -> dict[str, float]:
    """``account_real_*``: the recorded input of the embedded default (see the module doc) replayed into a fresh
    account stage with the run's own configuration (the default FHS gate, TWAP): intents, updates and decision
    times per second, whole path and the account stage alone."""
    cfg, updates = record_realistic(max_bars)
    n_int = sum(1 for u in updates for p in u.points if p.intent is not None)
    n_pts = len({p.ts for u in updates for p in u.points})
    n_ticks = sum(len(u.ticks) for u in updates)
    total, in_execution, acc = _measure(updates, cfg.limits.var_method, repeats, cfg)
    return {
        "account_real_intents": float(n_int),
        "account_real_updates": float(len(updates)),
        "account_real_decision_times": float(n_pts),
        "account_real_ticks": float(n_ticks),
        "account_real_intents_per_s": n_int / total,
        "account_real_stage_intents_per_s": n_int / (total - in_execution),
        "account_real_updates_per_s": len(updates) / total,
        "account_real_ticks_per_s": n_ticks / total,
        "account_real_decision_times_per_s": n_pts / total,
        "account_real_execution_share": in_execution / total,
        "account_real_orders": float(len(acc.oms.finished) + len(acc.oms.open)),
    }
