"""[Reference: operators/.../account_stage.py as of commit ae8e5c8, kept verbatim but for absolute imports; see __init__.py.] The account stage (keyed by account): the one place that knows the whole book.

It receives :class:`~operators.messages.SymbolUpdate` messages from the per-symbol signal stages and execution
reports from its venue, and it emits risk decisions, orders, fills and equity marks. Positions, cash and P&L come
**only** from execution reports (:class:`~operators.account.ledger.Ledger` via the order manager), whether the venue
runs in process (:class:`~operators.execution.venue.SimVenue`: the embedded default, backtests, simulated live runs)
or elsewhere (reports arrive through :meth:`AccountStage.on_reports`).

Event time (see :mod:`operators.messages` for the ordering contract). The account's clock moves from one decision
time ``T`` to the next, only once every symbol of the account has reached ``T`` (its progress >= ``T``), so the
decisions do not depend on how the symbols' streams interleave on arrival. At each ``T``:

1. the venue sees every tick with key < ``T`` (symbol by symbol, in the account's symbol order); the reports it
   returns are applied (fills booked);
2. the closes of the decision points at ``T`` become the marks; the per-symbol returns since the previous time form
   one row of the return window (covariance for the gate); the account's equity is marked and fed to the gate's
   kill switch;
3. each intent at ``T`` (symbol order) is sized against the account — target fraction x ``fraction`` x equity x the
   symbol's allocation weight — netted against the position and the quantity in flight, checked by the gate
   (portfolio VaR/CVaR across symbols, exposure, leverage, kill switch, ...) and, if approved, sent to the venue:
   TWAP children of the approved parent (unfinished children of the symbol's earlier parents are cancelled first),
   or one market order.

Every intent gets a :class:`~schemas.events.RiskDecision` (``below_min_notional`` when the change is too small).
Pure and picklable: the whole stage is Bytewax state.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from operators.control import ControlState, audit_event, refusal_alert
from operators.execution.broker import BrokerConfig
from .orders import OrderManager
from .execution_stage import ExecutionStage
from operators.execution.venue import SimVenue, Venue
from operators.ids import stable_id
from operators.messages import DecisionPoint, Emitted, SymbolUpdate, TickColumns, TickRow
from operators.risk import MarketState, OrderRequest, PortfolioState, RiskGate, RiskLimits
from operators.risk.historical import historical_var
from operators.risk.scenarios import var_cvar
from operators.risk.standard_normal import norm_pdf, norm_ppf
from operators.risk.portfolio import component_var, portfolio_cvar_gaussian, portfolio_var_gaussian, sample_covariance
from operators.risk.gate import decision_id
from operators.risk.position_cap import PositionCapGate
import msgspec

from schemas.events import Alert, ControlCommand, ExecutionReport, PortfolioSnapshot, RiskDecision
from schemas.time import NS_PER_S as NS

from .attribution import StrategyAttribution
from .ledger import Ledger
from .account_returns import ReturnWindow

__all__ = ["AccountConfig", "AccountStage"]


@dataclass(frozen=True)
class AccountConfig:
    """One account. ``symbols``: the account's universe (its clock waits for each of them); ``capital`` quote
    currency; ``fraction``: position notional at full conviction, fraction of equity times the symbol's weight;
    ``weights``: allocation per symbol (fractions, normalised; default equal); ``gate``: ``"risk"``
    (:class:`~operators.risk.RiskGate` with ``limits``) or ``"position_cap"`` (the baseline:
    ``max_position_frac`` of equity); ``min_notional`` quote currency; ``risk_window``: return rows kept for the
    covariance (count); ``execution``: ``"twap"`` (children over ``twap_horizon_s`` every ``twap_slice_s``) or
    ``"market"``; ``broker``: the in-process venue's costs; ``forecasts_kept``: the latest VaR forecasts kept for the
    run's backtest (count)."""

    name: str = "default"
    symbols: tuple[str, ...] = ()
    capital: float = 100_000.0
    fraction: float = 0.5
    weights: Mapping[str, float] | None = None
    gate: str = "risk"
    limits: RiskLimits = field(default_factory=RiskLimits)
    max_position_frac: float = 1.0
    min_notional: float = 10.0
    risk_window: int = 500
    execution: str = "twap"
    twap_horizon_s: float = 30.0
    twap_slice_s: float = 10.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    forecasts_kept: int = 60_000

    def __post_init__(self) -> None:
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"account {self.name!r} needs a non-empty universe of distinct symbols")
        if self.gate not in ("risk", "position_cap"):
            raise ValueError(f"gate must be 'risk' or 'position_cap', got {self.gate!r}")
        if self.execution not in ("twap", "market"):
            raise ValueError(f"execution must be 'twap' or 'market', got {self.execution!r}")
        if self.weights is not None and (
            set(self.weights) - set(self.symbols)
            or any(not w >= 0 for w in self.weights.values())
            or sum(self.weights.values()) <= 0
        ):
            raise ValueError("weights must be >= 0 for symbols of the universe, with a positive sum")

    def weight(self, symbol: str) -> float:
        """Allocation of ``symbol`` (fraction of the account)."""
        if self.weights is None:
            return 1.0 / len(self.symbols)
        return self.weights.get(symbol, 0.0) / sum(self.weights.values())


class _Chunk:
    """One batch of a symbol's ticks waiting for the venue: its columns and the next row to feed; the columns as
    Python lists (keys, ts, price, qty) once a search or a slice of several rows needs them (not pickled: rebuilt
    from the columns when needed)."""

    __slots__ = ("cols", "i", "_lists")

    def __init__(self, cols: TickColumns, i: int = 0) -> None:
        self.cols, self.i, self._lists = cols, i, None

    def lists(self) -> tuple[list, list, list, list]:
        if self._lists is None:
            c = self.cols
            self._lists = (c.keys.tolist(), c.ts.tolist(), c.price.tolist(), c.qty.tolist())
        return self._lists

    def __getstate__(self) -> tuple:
        return (self.cols, self.i)

    def __setstate__(self, s: tuple) -> None:
        self.cols, self.i = s
        self._lists = None


class AccountStage:
    """Account state: ledger, orders, gate, venue (in process or remote), the symbols' queues and return window."""

    def __init__(self, cfg: AccountConfig, venue: Venue | None = None, *, remote_venue: bool = False) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.symbols = cfg.symbols
        self.index = {s: i for i, s in enumerate(cfg.symbols)}
        self.ledger = Ledger(cfg.capital)
        self.execution = ExecutionStage(
            None if remote_venue else (venue or SimVenue(cfg.capital, cfg.broker, account=cfg.name)),
            execution=cfg.execution,
            twap_horizon_s=cfg.twap_horizon_s,
            twap_slice_s=cfg.twap_slice_s,
            account=cfg.name,
        )
        if cfg.gate == "risk":
            self.gate: Any = RiskGate(cfg.limits)
        else:
            self.gate = PositionCapGate(cfg.max_position_frac, cfg.min_notional, (f"fixed_fraction={cfg.fraction}",))
        self.progress: dict[str, int | None] = {s: None for s in cfg.symbols}
        self._prog_heap: list[tuple[int, str]] = []
        self._silent = len(cfg.symbols)  # symbols that have not reported any progress yet
        self.ticks: dict[str, deque] = {s: deque() for s in cfg.symbols}  # [TickColumns, next index]
        self.points: list[tuple[int, int, int, DecisionPoint]] = []  # heap of (ts, symbol index, seq, point)
        self._seq = 0
        self.clock: int | None = None  # last decision time processed (ns)
        self.closes: dict[str, float] = {}  # latest decision-bar close per symbol
        self.prev_close: dict[str, float] = {}
        self.last_tick_ts: dict[str, int] = {}
        self.last_price: dict[str, float] = {}
        self.returns = ReturnWindow(
            cfg.risk_window, len(cfg.symbols), lam=cfg.limits.fhs_lambda if cfg.limits.var_method == "fhs" else None
        )
        self._mkt: tuple[int, MarketState] | None = None  # the gate's market view, built once per time
        self.peak_equity = cfg.capital
        self.shares: dict[str, dict[str, float]] = {}  # symbol -> strategy -> share of its last target
        # symbol -> strategy -> share of the position for P&L attribution (normalised to sum 1)
        self.attr_shares: dict[str, dict[str, float]] = {}
        self.attribution = StrategyAttribution()
        self.control = ControlState(base_limits=cfg.limits)
        self.reconcile_mode: str = "normal"  # "reduce_only" after a mismatch with the venue, until one matches
        self.mismatches = 0
        self.reconciliations = 0
        self._last_var = (0.0, 0.0)  # portfolio (VaR, CVaR) after the last gated decision, fractions of equity
        self._last_equity = cfg.capital
        self._contrib: dict[str, dict[str, float]] = {}  # symbol -> the last intent's contributions
        self.decisions = {"approved": 0, "resized": 0, "rejected": 0}
        self._weights = {s: cfg.weight(s) for s in cfg.symbols}  # cfg.weight per symbol, computed once
        # one-period VaR/CVaR forecasts of the book after each decision time, for the backtest against the next
        # period's realised P&L: ts (ns) and (VaR, CVaR as positive losses in quote currency or NaN, equity quote);
        # flat typed arrays, so that the state pickles as a few byte strings however long the run
        self._fc_ts = array("q")
        self._fc_val = array("d")

    @property
    def oms(self) -> OrderManager:
        """The execution stage's order states."""
        return self.execution.oms

    @property
    def venue(self) -> Venue | None:
        """The in-process venue (None when the venue is remote)."""
        return self.execution.venue

    # -- inputs ---------------------------------------------------------------------------------------------------
    def on_update(self, u: SymbolUpdate) -> Emitted:
        """One batch of one symbol from its signal stage; returns what the account could decide with it."""
        out = Emitted()
        sym = u.symbol
        if sym not in self.index:
            raise KeyError(f"symbol {sym!r} is not in account {self.name!r}'s universe {self.symbols}")
        ticks = u.ticks
        if len(ticks.ts) if type(ticks) is TickColumns else len(ticks):
            self.ticks[sym].append(_Chunk(ticks))
        for p in u.points:
            self._seq += 1
            heapq.heappush(self.points, (p.ts, self.index[sym], self._seq, p))
        if u.progress is not None:
            old = self.progress[sym]
            if old is None:
                self._silent = self._unreported() - 1
            if old is None or u.progress > old:
                self.progress[sym] = u.progress
                heapq.heappush(self._prog_heap, (u.progress, sym))
                if len(self._prog_heap) > 8 * len(self.symbols) + 64:
                    self._prog_heap = [(p, s) for s, p in self.progress.items() if p is not None]
                    heapq.heapify(self._prog_heap)
        barrier = self._barrier()
        self._release(barrier, out)
        if barrier is not None and self.execution.venue is None:  # remote
            self.execution.send_due(barrier, out)
        if out.marks or out.decisions:
            out.state = self.state()
        return out

    def on_reports(self, reports: Iterable[ExecutionReport]) -> Emitted:
        """Reports from a remote venue (``execution.reports``), in their arrival order. A ``positions`` snapshot is
        reconciled against the book (every earlier report of the venue has been applied by then: one partition per
        account keeps them in order)."""
        out = Emitted()
        for r in reports:
            self._apply([r], out)
            if r.kind == "positions":
                self._reconcile(r, out)
        out.state = self.state()
        return out

    def _reconcile(self, snap: ExecutionReport, out: Emitted, tol: float = 1e-9) -> None:
        """Compare the book with the venue's snapshot: positions per symbol (relative ``tol``) and open orders. A
        mismatch is an alert with both sides and puts the account in reduce-only until a snapshot matches again."""
        self.reconciliations += 1
        ours = self.ledger.holdings()
        theirs = {k: v for k, v in snap.positions.items() if v != 0.0}
        diff = {
            s: (ours.get(s, 0.0), theirs.get(s, 0.0))
            for s in sorted(set(ours) | set(theirs))
            if abs(ours.get(s, 0.0) - theirs.get(s, 0.0)) > tol * max(1.0, abs(theirs.get(s, 0.0)))
        }
        # orders we think are working that the venue does not know (ours are a superset while reports are in flight)
        unknown = sorted(set(snap.open_orders) - set(self.oms.open))
        ts = snap.ts
        if diff or unknown:
            self.mismatches += 1
            first = self.reconcile_mode == "normal"
            self.reconcile_mode = "reduce_only"
            reps = self.execution.stop(
                True, "account:" + self.name, "reconciliation_reduce_only", max(self.clock or 0, ts), out
            )
            if reps:
                self._apply(reps, out)
            detail = "; ".join(f"{s}: book {a:+.10g} vs venue {b:+.10g}" for s, (a, b) in diff.items())
            if unknown:
                detail += (
                    "; " if detail else ""
                ) + f"venue has {len(unknown)} open order(s) the book does not: {unknown[:5]}"
            out.alerts.append(
                Alert(
                    id=stable_id("alert", "recon", self.name, snap.id),
                    severity="critical",
                    kind="reconciliation.mismatch",
                    message=(
                        f"account {self.name} disagrees with venue {snap.venue} at report {snap.seq}: "
                        f"{detail}. The account is reduce-only until a snapshot matches."
                    )[:4096],
                    labels={
                        "account": self.name,
                        "venue": snap.venue,
                        "symbols": ",".join(diff)[:256],
                        "first": str(first).lower(),
                        # orders sent so far have ts <= this (ns): later ones obey reduce-only
                        "account_ts": str(max(self.clock or 0, self.execution.sent_until)),
                    },
                    dedupe_key=f"reconciliation.mismatch:{self.name}",
                    ts=ts,
                )
            )
        elif self.reconcile_mode != "normal":
            self.reconcile_mode = "normal"
            out.alerts.append(
                Alert(
                    id=stable_id("alert", "recon-ok", self.name, snap.id),
                    severity="info",
                    kind="reconciliation.resolved",
                    message=f"account {self.name} matches venue {snap.venue} again at report {snap.seq}",
                    labels={"account": self.name, "venue": snap.venue},
                    dedupe_key=f"reconciliation.resolved:{self.name}",
                    ts=ts,
                )
            )

    def on_control(self, commands: Iterable[ControlCommand]) -> Emitted:
        """Operator commands whose signatures the flow has verified, in topic order. Each takes effect now: at the
        account's next decision (its event time ``clock``), before any later intent; a halt also cancels what is
        working in its scope. Every applied or refused command gives an audit event (``ts``: the account's event
        time at which it took effect; with a remote venue not before the release time of the children already
        sent) and a refused one an alert."""
        out = Emitted()
        for c in commands:
            res = self.control.apply(c)
            if res.status == "duplicate":
                continue
            ev = audit_event(c, res)
            # the event time from which it holds: a remote venue may already have children released up to
            # ``sent_until`` (sent before the command came), so that is where "after the command" starts
            at = max(self.clock or c.ts, self.execution.sent_until)
            out.audit.append(msgspec.structs.replace(ev, ts=at))
            if res.status != "applied":
                out.alerts.append(refusal_alert(c, res.reason, res.detail))
                continue
            if c.action == "set_limit" and self.cfg.gate == "risk":
                lim = self.gate.limits = self.control.effective_limits(self.cfg.limits, self.name)
                self.gate._set_constants()
                kill = self.gate.state.kill  # the kill switch and the rate bucket keep their state, take the limits
                kill.max_drawdown, kill.cooldown_s, kill.resume_drawdown = (
                    lim.max_drawdown,
                    lim.halt_cooldown_s,
                    lim.resume_drawdown,
                )
                self.gate.state.bucket.rate_per_s, self.gate.state.bucket.burst = (
                    float(lim.rate_per_s),
                    float(lim.rate_burst),
                )
            else:
                reps = self.execution.on_command(c.action, c.scope, at, out)
                if reps:
                    self._apply(reps, out)
        out.state = self.state()
        return out

    def flush(self) -> Emitted:
        """End of a finite input: every queued decision time is processed and the venue sees every tick."""
        out = Emitted()
        self._release(None, out, final=True)
        self._feed(None, out)
        self.execution.send_due(None, out)
        return out

    # -- the clock ------------------------------------------------------------------------------------------------
    _silent: int | None = None  # class default: a stage pickled before the count existed recounts once
    _weights: dict[str, float] | None = None  # class default: a stage pickled before the cache computes each time
    _z_of: dict[float, tuple[float, float]] = {}  # alpha -> (z, CVaR factor) of the Gaussian forecast (shared cache)

    def _unreported(self) -> int:
        """How many symbols of the universe have not reported progress yet (kept as a count: O(1))."""
        if self._silent is None:
            self._silent = sum(v is None for v in self.progress.values())
        return self._silent

    def _barrier(self) -> int | None:
        """The smallest progress over the universe (ns), None while a symbol has not reported yet."""
        if self._unreported():
            return None
        h = self._prog_heap
        while self.progress[h[0][1]] != h[0][0]:  # stale entries: that symbol has moved on
            heapq.heappop(h)
        return h[0][0]

    def _release(self, barrier: int | None, out: Emitted, final: bool = False) -> None:
        pts = self.points
        while pts and (final or (barrier is not None and pts[0][0] <= barrier)):
            t = pts[0][0]
            group: list[DecisionPoint] = []
            while pts and pts[0][0] == t:
                group.append(heapq.heappop(pts)[3])
            self._feed(t, out)
            self._at(t, group, out)

    def _feed(self, t: int | None, out: Emitted) -> None:
        """Give the venue every queued tick with key < ``t`` (all of them when ``t`` is None), symbol by symbol."""
        ex = self.execution
        for sym in self.symbols:
            q = self.ticks[sym]
            while q:
                chunk = q[0]
                if type(chunk) is list:  # a stage pickled before chunks had their class: [columns, next index]
                    chunk = q[0] = _Chunk(chunk[0], chunk[1])
                cols, i = chunk.cols, chunk.i
                n = len(cols.ts)
                # every key of the chunk below t (keys never decrease): all of it, without the search
                if t is None or cols.keys[-1] < t:
                    j = n
                else:  # cols.cut(i, t): the first key >= t at or after i
                    j = bisect_left(chunk.lists()[0], t, i)
                if j > i:
                    one = j == i + 1
                    if one:  # one trade: its values without slicing the columns
                        top = cols.ts.item(i)
                        price = cols.price.item(i)
                    else:
                        _, ts, px, qty = chunk.lists()
                        top = max(ts[i:j])
                        price = px[j - 1]
                    self.last_tick_ts[sym] = max(self.last_tick_ts.get(sym, 0), top)
                    self.last_price[sym] = price
                    if ex.venue is not None:  # not ex.remote: the rows cols.rows(i, j) would give, the same values
                        rows = (
                            [TickRow(cols.symbol, top, price, cols.qty.item(i))]
                            if one
                            else [TickRow(cols.symbol, a, b, c) for a, b, c in zip(ts[i:j], px[i:j], qty[i:j])]
                        )
                        reports = ex.on_ticks(rows)
                        if reports:
                            self._apply(reports, out)
                if j < n:
                    chunk.i = j
                    break
                q.popleft()

    def _apply(self, reports: Sequence[ExecutionReport], out: Emitted) -> None:
        book = self.ledger.book
        attr = self.attribution
        for f in self.execution.apply(reports, out):
            book(f)
            q = f.last_qty if f.side == "buy" else -f.last_qty
            attr.on_fill(f.symbol, q, float(f.last_price), f.fee, self.attr_shares.get(f.symbol))  # type: ignore[arg-type]

    def _marks(self) -> dict[str, float]:
        m = dict(self.last_price)
        m.update(self.closes)
        return m

    def _at(self, t: int, group: list[DecisionPoint], out: Emitted) -> None:
        rets = [0.0] * len(self.symbols)
        any_ret = False
        prev_close, closes, index = self.prev_close, self.closes, self.index
        for p in group:
            sym = p.symbol
            prev = prev_close.get(sym)
            if prev is not None:
                rets[index[sym]] = p.close / prev - 1.0
                any_ret = True
            prev_close[sym] = closes[sym] = p.close
        if any_ret:
            self.returns.push(rets)
        self.clock = t
        marks = self._marks()
        equity = self.ledger.equity(marks)
        self.peak_equity = max(self.peak_equity, equity)
        self._last_equity = equity
        out.marks.append((t, equity))
        self.attribution.mark(marks, self.ledger.holdings(), self.attr_shares)
        kill = self.gate.update_equity(equity, t)
        for p in group:
            if p.intent is not None:
                self._decide(p, t, marks, equity, out, kill)
        self._forecast(t, marks, equity)

    def _forecast(self, t: int, marks: dict[str, float], equity: float) -> None:
        """The book's one-period VaR and CVaR at the gate's confidence and method, after the decisions at ``t``
        (positions plus what is still working: the exposure going into the next period); NaN while the window
        holds fewer than two returns."""
        lim = self.cfg.limits
        book = self.exposure_book()
        xl = [book.get(s, 0.0) * marks.get(s, 0.0) for s in self.symbols]
        if len(self.returns) < 2:
            var = cvar = math.nan
        elif not any(xl):
            var = cvar = 0.0
        elif lim.var_method in ("historical", "fhs"):
            x = np.array(xl)
            rows = self.returns.matrix() if lim.var_method == "historical" else self.returns.scenarios()
            v, c = var_cvar(rows @ x, lim.alpha)
            var, cvar = -v, -c
        else:
            x = np.array(xl)
            sp = math.sqrt(max(float(x.dot(self.returns.cov()).dot(x)), 0.0))  # = x @ cov @ x, the same BLAS calls
            k = self._z_of.get(lim.alpha)
            if k is None:
                z = norm_ppf(lim.alpha)
                k = self._z_of[lim.alpha] = (z, norm_pdf(z) / (1.0 - lim.alpha))
            var, cvar = k[0] * sp, k[1] * sp
        self._fc_ts.append(t)
        self._fc_val.extend((var, cvar, equity))
        keep = self.cfg.forecasts_kept
        if len(self._fc_ts) > keep + keep // 4:  # drop the oldest in one go, now and then
            cut = len(self._fc_ts) - keep
            del self._fc_ts[:cut]
            del self._fc_val[: 3 * cut]

    # -- decisions ------------------------------------------------------------------------------------------------
    def _market(self, marks: dict[str, float]) -> MarketState:
        t = self.clock or 0
        if self._mkt is None or self._mkt[0] != t:
            last = self.last_tick_ts
            ts = {s: last.get(s, t) for s in self.symbols}
            self._mkt = (
                t,
                MarketState(prices=marks, price_ts_ns=ts, symbols=self.symbols, window=self.returns, index=self.index),
            )
        return self._mkt[1]

    def _decide(
        self, p: DecisionPoint, t: int, marks: dict[str, float], equity: float, out: Emitted, kill: str | None = None
    ) -> None:
        cfg = self.cfg
        it = p.intent
        assert it is not None
        sym, price = p.symbol, p.close
        target = self._controlled_target(sym, it.target, it.contributions)
        if target != 0.0 and it.contributions:
            self.shares[sym] = {
                k: v / target
                for k, v in it.contributions.items()
                if self.control.strategy_enabled(k) and self.control.scope_mode(f"strategy:{k}") != "halted"
            }
            tot = sum(v * target for v in self.shares[sym].values())
            if tot != 0.0:
                self.attr_shares[sym] = {k: v * target / tot for k, v in self.shares[sym].items()}
        elif not it.contributions and target != 0.0:  # one strategy, no orchestrator (a flat target keeps the
            self.attr_shares[sym] = {it.strategy: 1.0}  # shares of whoever held the position it closes)
        ex = self.execution
        if cfg.execution == "twap":
            reps = ex.cancel_open(sym, t)
            if reps:
                self._apply(reps, out)
        # what is held and working, per symbol (the gate's view too): the symbol's entry is its position plus its
        # quantity in flight, the very sum ledger.position(sym) + ex.in_flight(sym)
        book = self.exposure_book()
        held = book.get(sym, 0.0)
        w = self._weights.get(sym) if self._weights is not None else None
        if w is None:
            w = cfg.weight(sym)
        target_qty = target * cfg.fraction * w * max(equity, 0.0) / price
        # no operator mode command ever applied: every scope is normal (ControlState.mode's answer, without its
        # three look-ups)
        mode = self.control.mode(self.name, sym, it.strategy) if self.control._modes else "normal"
        why = "operator_reduce_only"
        if mode == "normal" and self.reconcile_mode != "normal":
            mode, why = self.reconcile_mode, "reconciliation_reduce_only"
        wanted = target_qty
        if mode == "reduce_only":  # an operator's reduce-only: toward zero, never past it, never more
            if target_qty * held <= 0.0:
                target_qty = 0.0
            elif abs(target_qty) > abs(held):
                target_qty = held
        delta = target_qty - held
        side = "buy" if delta > 0 else "sell"
        qty = abs(delta)
        if mode == "halted":
            d = self._refused(self._request(it, sym, side, qty), equity, marks, t, "operator_halt")
        elif mode == "reduce_only" and target_qty != wanted and qty * price < cfg.min_notional:
            d = self._refused(self._request(it, sym, side, qty), equity, marks, t, why)
        elif cfg.gate == "risk" and qty * price < cfg.min_notional:
            d = self._small(self._request(it, sym, side, qty), equity, marks, t)
        elif cfg.gate == "risk":  # the gate's evaluate on the intent's fields (no request objects built)
            # the kill switch was updated with this equity at t by _at (nothing between changes it)
            d = self.gate.decide(
                it.id,
                sym,
                side,
                qty,
                it.strategy,
                it.confidence,
                equity,
                book,
                self.shares,
                self._market(marks),
                t,
                kill,
            )
        else:
            d = self.gate.evaluate(
                self._request(it, sym, side, qty),
                PortfolioState(equity=equity, positions=book, shares=self.shares),
                self._market(marks),
                t,
            )
        self.decisions[d.action] += 1
        if d.portfolio is not None and (d.portfolio.var or d.portfolio.cvar):
            self._last_var = (d.portfolio.var, d.portfolio.cvar)
        out.decisions.append(d)
        if d.approved_qty <= 0.0:
            return
        if d.side is None:
            d = msgspec.structs.replace(d, side=side)
        reps = ex.submit(d, it.strategy, it.ts, it.target, abs(target_qty) < abs(held), t, out)
        if reps:
            self._apply(reps, out)

    @staticmethod
    def _request(it: Any, sym: str, side: str, qty: float) -> OrderRequest:
        return OrderRequest(it.id, sym, side, qty, strategy=it.strategy, confidence=it.confidence, ts=it.ts)

    def exposure_book(self) -> dict[str, float]:
        """What the gate counts as held: every position plus what is still working at the venue, per symbol
        (signed base units), so two intents in a row never see the same room twice."""
        return self.execution.add_in_flight(self.ledger.holdings())

    def _controlled_target(self, sym: str, target: float, contributions: Mapping[str, float]) -> float:
        """The intent's target without the contributions of strategies an operator disabled or halted, and with
        those in reduce-only held to no more than their previous contribution (same sign)."""
        if not contributions:
            return target
        prev = self._contrib.get(sym, {})
        out = 0.0
        changed = False
        for k, c in contributions.items():
            if not self.control.strategy_enabled(k) or self.control.scope_mode(f"strategy:{k}") == "halted":
                changed = True
                continue
            if self.control.scope_mode(f"strategy:{k}") == "reduce_only":
                p = prev.get(k, 0.0)
                lim = abs(p) if p * c > 0 else 0.0
                if abs(c) > lim:
                    c, changed = (lim if c > 0 else -lim), True
            out += c
        self._contrib[sym] = dict(contributions)
        return out if changed else target

    def _refused(self, oi: OrderRequest, equity: float, marks: dict[str, float], t: int, reason: str) -> RiskDecision:
        d = self._small(oi, equity, marks, t)
        return msgspec.structs.replace(d, reasons=[reason])

    def _small(self, oi: OrderRequest, equity: float, marks: dict[str, float], t: int) -> RiskDecision:
        """The decision on an intent whose change is below ``min_notional``: rejected, nothing checked."""
        held = self.ledger.holdings()
        expo = self.ledger.exposures(marks)
        snap = PortfolioSnapshot(
            equity=equity,
            gross_exposure=sum(abs(x) for x in expo.values()),
            net_exposure=sum(expo.values()),
            drawdown=min(1.0, max(0.0, 1 - equity / self.peak_equity)) if self.peak_equity > 0 else 0.0,
            positions=dict(list(held.items())[:256]),
        )
        return RiskDecision(
            id=decision_id(oi.intent_id),
            intent_id=oi.intent_id,
            symbol=oi.symbol,
            ts=t,
            action="rejected",
            requested_qty=oi.qty,
            approved_qty=0.0,
            reasons=["below_min_notional"],
            portfolio=snap,
            strategy=oi.strategy,
            side=oi.side,
        )

    def state(self) -> dict[str, Any]:
        """What an operator watches, after the last event: the kill switch (``normal``, ``reduce_only``,
        ``halted``), the operators' mode of the account, the reconciliation mode, the mismatches so far, the last
        decision's portfolio VaR/CVaR (fraction of equity) and the gate's limits for them, the commands handled."""
        risk = self.cfg.gate == "risk"
        kill = self.gate.state.kill.state if risk else "normal"
        lim = self.gate.limits if risk else None
        return {
            "account": self.name,
            "kill_switch": kill,
            "operator_mode": self.control.scope_mode("account:" + self.name) if self.control._modes else "normal",
            "reconcile_mode": self.reconcile_mode,
            "mismatches": self.mismatches,
            "var_frac": self._last_var[0],
            "cvar_frac": self._last_var[1],
            "var_limit": lim.max_portfolio_var if lim else None,
            "cvar_limit": lim.max_portfolio_cvar if lim else None,
            "control": dict(self.control.counts),
            "equity": self._last_equity,
        }

    # -- risk -------------------------------------------------------------------------------------------------------
    def risk_report(self) -> dict[str, Any]:
        """The book's one-period risk at the gate's confidence, positive losses in quote currency (``*_frac``: of
        equity): portfolio VaR and CVaR (Gaussian, zero mean, sample covariance of the return window), historical VaR
        of the portfolio P&L series over the window, and the Euler components of the Gaussian VaR by symbol and by
        strategy (a symbol's component split by the strategies' shares of its last target); the components sum to
        the portfolio VaR."""
        alpha = self.cfg.limits.alpha
        marks = self._marks()
        equity = self.ledger.equity(marks)
        x = np.array([self.ledger.position(s) * marks.get(s, 0.0) for s in self.symbols])
        r = self.returns.matrix()
        out: dict[str, Any] = {
            "alpha": alpha,
            "equity": equity,
            "window": int(r.shape[0]),
            "exposure": dict(zip(self.symbols, x.tolist())),
        }
        if r.shape[0] < 2 or not x.any():
            out.update(
                portfolio_var=0.0,
                portfolio_cvar=0.0,
                historical_var=0.0,
                component_var={s: 0.0 for s in self.symbols},
                component_var_by_strategy={},
            )
        else:
            cov = sample_covariance(r)
            comp = -component_var(x, cov, alpha)
            out["portfolio_var"] = -portfolio_var_gaussian(x, cov, alpha)
            out["portfolio_cvar"] = -portfolio_cvar_gaussian(x, cov, alpha)
            out["historical_var"] = -historical_var(r @ x, alpha)
            out["component_var"] = dict(zip(self.symbols, comp.tolist()))
            by: dict[str, float] = {}
            for s, c in zip(self.symbols, comp.tolist()):
                for k, share in (self.shares.get(s) or {"unattributed": 1.0}).items():
                    by[k] = by.get(k, 0.0) + c * share
            out["component_var_by_strategy"] = by
        for k in ("portfolio_var", "portfolio_cvar", "historical_var"):
            out[k + "_frac"] = out[k] / equity if equity > 0 else 0.0
        return out

    # -- results --------------------------------------------------------------------------------------------------
    def forecast_series(self) -> dict[str, Any]:
        """The VaR forecasts and what followed: for each decision time ``ts`` (ns) the book's VaR and CVaR over the
        next period (positive losses, quote currency; NaN before the window had two returns) and the equity then;
        ``pnl[i]`` is the realised P&L of the period after ``ts[i]`` (equity at the next time minus equity at
        ``ts[i]``; the last period has none). ``alpha`` and ``method`` are the gate's."""
        v = self._fc_val
        eq = v[2::3].tolist()
        return {
            "alpha": self.cfg.limits.alpha,
            "method": self.cfg.limits.var_method,
            "ts": self._fc_ts.tolist(),
            "var": v[0::3].tolist(),
            "cvar": v[1::3].tolist(),
            "equity": eq,
            "pnl": [b - a for a, b in zip(eq, eq[1:])],
        }

    def summary(self) -> dict[str, Any]:
        """The account's figures: equity, cash, positions, fees, P&L by symbol and by strategy (quote currency)."""
        marks = self._marks()
        led = self.ledger
        eq = led.equity(marks)
        return {
            "account": self.name,
            "equity": eq,
            "cash": led.cash,
            "initial_capital": led.initial_cash,
            "pnl": eq - led.initial_cash,
            "fees": led.fees(),
            "realised_pnl": led.realised(),
            "unrealised_pnl": led.unrealised(marks),
            "positions": led.holdings(),
            "by_symbol": led.by_symbol(marks),
            "by_strategy": {
                k: {"fees": v.fees, "traded": v.traded, "fills": v.fills} for k, v in sorted(led.by_strategy.items())
            },
            "pnl_by_strategy": self.attribution.result(marks, led.holdings(), self.attr_shares),
            "decisions": dict(self.decisions),
            "open_orders": len(self.oms.open),
            "risk": self.risk_report(),
            "var_forecasts": self.forecast_series(),
            "report_counts": dict(self.oms.counts),
        }
