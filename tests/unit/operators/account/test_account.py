"""The account stage on correlated BTC/ETH history: portfolio VaR across symbols, component VaR, in-flight
orders counted, the book kept from execution reports only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from operators.account.stage import AccountConfig, AccountStage
from operators.ids import stable_id
from operators.messages import DecisionPoint, SymbolUpdate, TickColumns
from operators.risk import RiskLimits, norm_ppf
from operators.risk.portfolio import component_var, portfolio_var_gaussian, sample_covariance
from schemas.events import Intent, Tick

SYMS = ("BTC-USD", "ETH-USD")
NS = 1_000_000_000


def _updates(closes: dict[str, np.ndarray], intents_at: dict[int, dict[str, float]], t0: int = 1_700_000_000 * NS):
    """Per bar and symbol: one tick just before the close (the venue fills on it) and a decision point, with an
    intent (target) where ``intents_at`` says so."""
    n = len(closes[SYMS[0]])
    for i in range(n):
        t = t0 + (i + 1) * 1800 * NS
        for s in SYMS:
            p = float(closes[s][i])
            tick = Tick(symbol=s, ts=t - NS, price=p, qty=1e6, side="buy", trade_id=f"{s}:{i}", venue="t")
            tg = intents_at.get(i, {}).get(s)
            it = (
                None
                if tg is None
                else Intent(
                    id=stable_id("int", "t", s, t, tg),
                    symbol=s,
                    strategy="t",
                    target=tg,
                    confidence=1.0,
                    price=p,
                    ts=t,
                    contributions={"t": tg},
                )
            )
            yield SymbolUpdate(s, t - 1800 * NS, TickColumns(s, [tick], t - 1800 * NS), [DecisionPoint(s, t, p, it)], t)


def _account(limits: RiskLimits) -> AccountStage:
    """An account on the Gaussian gate (these tests check its closed-form portfolio maths)."""
    import dataclasses

    return AccountStage(
        AccountConfig(
            symbols=SYMS,
            capital=100_000.0,
            fraction=1.0,
            limits=dataclasses.replace(limits, var_method="gaussian"),
            execution="market",
            risk_window=500,
        )
    )


def test_two_intents_that_each_fit_are_resized_so_the_portfolio_fits(closes):
    r = np.column_stack([closes[s][1:] / closes[s][:-1] - 1 for s in SYMS])
    k = len(closes["BTC-USD"]) - 2
    window = r[k - 500 : k]  # the account's window at the decision: the 500 returns before it
    assert np.corrcoef(window.T)[0, 1] > 0.5, "BTC and ETH move together in this window"
    cov = sample_covariance(window)
    expo = 100_000.0 * 0.5  # fraction 1 x equal weights 1/2 x equity, each symbol
    z = norm_ppf(0.99)
    alone = [z * math.sqrt(cov[i, i]) * expo / 1e5 for i in range(2)]
    both = -portfolio_var_gaussian(np.array([expo, expo]), cov, 0.99) / 1e5
    limit = (max(alone) + both) / 2  # each fits alone, together they do not
    assert max(alone) < limit < both
    lim = RiskLimits(
        max_portfolio_var=limit,
        max_portfolio_cvar=1.0,
        symbol_var_budget=1.0,
        max_leverage=10.0,
        max_price_age_s=3600.0,
        min_history=100,
        rate_per_s=1e9,
        rate_burst=1e9,
        min_confidence=0.0,
    )
    acc = _account(lim)
    decisions = []
    for u in _updates(closes, {k: {"BTC-USD": 1.0, "ETH-USD": 1.0}}):
        decisions += acc.on_update(u).decisions
    decisions += acc.flush().decisions
    btc, eth = decisions
    assert btc.action == "approved" and eth.action == "resized"
    assert "portfolio_var_limit" in eth.reasons
    # the second decision saw the first one's order in flight: the portfolio after both fits the limit
    assert eth.portfolio.var == pytest.approx(limit, rel=1e-6) or eth.portfolio.var <= limit
    assert eth.portfolio.positions["BTC-USD"] == pytest.approx(btc.approved_qty)
    # and the book after the fills: positions are the sums of the fill reports
    assert acc.ledger.position("BTC-USD") == pytest.approx(btc.approved_qty)
    assert acc.ledger.position("ETH-USD") == pytest.approx(eth.approved_qty)


def test_component_var_by_symbol_sums_to_the_portfolio_var(closes):
    lim = RiskLimits(
        max_portfolio_var=1.0,
        max_portfolio_cvar=1.0,
        symbol_var_budget=1.0,
        max_leverage=10.0,
        max_price_age_s=3600.0,
        min_history=100,
        rate_per_s=1e9,
        rate_burst=1e9,
        min_confidence=0.0,
    )
    acc = _account(lim)
    k = len(closes["BTC-USD"]) - 3
    for u in _updates(closes, {k: {"BTC-USD": 0.8, "ETH-USD": -0.3}}):
        acc.on_update(u)
    acc.flush()
    risk = acc.risk_report()
    assert set(risk["component_var"]) == set(SYMS)
    assert math.fsum(risk["component_var"].values()) == pytest.approx(risk["portfolio_var"], rel=1e-12)
    # against the textbook formula on the same window and exposures
    x = np.array([acc.ledger.position(s) * acc.closes[s] for s in SYMS])
    cov = sample_covariance(acc.returns.matrix())
    assert risk["portfolio_var"] == pytest.approx(-portfolio_var_gaussian(x, cov, 0.99), rel=1e-12)
    assert [risk["component_var"][s] for s in SYMS] == pytest.approx(list(-component_var(x, cov, 0.99)), rel=1e-12)


def test_a_strategy_budget_holds(closes):
    """Two strategies share BTC's target; the small one's component VaR budget binds: the order is resized so that
    its component stays within the budget, and the larger strategy's unlimited budget does not matter."""
    base = dict(
        max_portfolio_var=1.0,
        max_portfolio_cvar=1.0,
        symbol_var_budget=1.0,
        max_leverage=10.0,
        max_price_age_s=3600.0,
        min_history=100,
        rate_per_s=1e9,
        rate_burst=1e9,
        min_confidence=0.0,
    )
    k = len(closes["BTC-USD"]) - 3

    def run(budgets: dict[str, float]):
        acc = _account(RiskLimits(**base, strategy_var_budgets=budgets))
        out = []
        t0 = 1_700_000_000 * NS
        for u in _updates(closes, {}, t0):
            if u.points[0].ts == t0 + (k + 1) * 1800 * NS and u.symbol == "BTC-USD":
                p = u.points[0]
                it = Intent(
                    id="int-two",
                    symbol="BTC-USD",
                    strategy="portfolio",
                    target=1.0,
                    confidence=1.0,
                    contributions={"ml": 0.25, "trend": 0.75},
                    price=p.close,
                    ts=p.ts,
                )
                u = SymbolUpdate(u.symbol, u.floor, u.ticks, [DecisionPoint(u.symbol, p.ts, p.close, it)], u.progress)
            out += acc.on_update(u).decisions
        acc.flush()
        return out, acc

    (free,), _ = run({})
    assert free.action == "approved"
    # ml's component at the full order, as a fraction of equity: budget it at 40 % of that
    (_probe,), acc0 = run({})
    full = acc0.risk_report()["component_var_by_strategy"]["ml"] / acc0.risk_report()["equity"]
    budget = 0.4 * full
    (d,), acc = run({"ml": budget})
    assert d.action == "resized" and "strategy_var_budget" in d.reasons
    rep = acc.risk_report()
    assert rep["component_var_by_strategy"]["ml"] / rep["equity"] <= budget * (1 + 1e-6)
    assert d.approved_qty == pytest.approx(0.4 * free.approved_qty, rel=0.05)


def _cmd(i: int, action: str, scope: str = "account:default", **params):
    from schemas.events import ControlCommand

    return ControlCommand(
        id=f"cmd-{i}", issuer="ops", scope=scope, action=action, parameters=params, reason="test", ts=1_700_000_000 * NS
    )


def test_operator_halt_reduce_only_resume_and_limits(closes):
    """Commands take effect at the account's next decision: a halt refuses every order and cancels what is working,
    reduce-only lets only reductions through, resume restores trading, set_limit changes the gate; every command
    leaves an audit event with the event time at which it took effect."""
    lim = RiskLimits(
        max_portfolio_var=1.0,
        max_portfolio_cvar=1.0,
        symbol_var_budget=1.0,
        max_leverage=10.0,
        max_price_age_s=3600.0,
        min_history=100,
        rate_per_s=1e9,
        rate_burst=1e9,
        min_confidence=0.0,
    )
    acc = _account(lim)
    n = len(closes["BTC-USD"])
    plan = {
        n - 12: {"BTC-USD": 0.6},
        n - 10: {"BTC-USD": 1.0},
        n - 8: {"BTC-USD": 0.3},
        n - 6: {"BTC-USD": 0.9},
        n - 4: {"BTC-USD": 1.0},
    }
    commands = {
        n - 10: [_cmd(1, "halt")],
        n - 9: [_cmd(2, "reduce_only", "symbol:BTC-USD"), _cmd(3, "resume")],
        n - 7: [_cmd(4, "resume", "symbol:BTC-USD")],
        n - 5: [_cmd(5, "set_limit", name="max_position_frac", value=0.05), _cmd(6, "set_limit", name="nope", value=1)],
    }
    decisions, audit, alerts = [], [], []
    i = -1
    for u in _updates(closes, plan):
        if u.symbol == "BTC-USD":
            i += 1
            for c in commands.get(i, []):
                e = acc.on_control([c])
                audit += e.audit
                alerts += e.alerts
        e = acc.on_update(u)
        decisions += e.decisions
    by = [(d.action, tuple(d.reasons)) for d in decisions]
    assert by[0][0] == "approved"  # 0.6 before any command
    assert by[1] == ("rejected", ("operator_halt",))  # halted: nothing, not even a reduction
    assert by[2][0] != "rejected" and decisions[2].side == "sell"  # reduce-only: 1.0 -> 0.3 is a reduction: allowed
    assert by[3][0] != "rejected" and decisions[3].side == "buy"  # resumed: 0.3 -> 0.9
    # set_limit max_position_frac=0.05: BTC already holds ~45 % of equity, so no increase passes any more
    assert "position_limit" in decisions[4].reasons
    assert [a.result for a in audit] == ["applied"] * 5 + ["refused"]
    assert [a.command_id for a in audit] == [f"cmd-{k}" for k in range(1, 7)]
    assert len({a.id for a in audit}) == 6 and all(a.ts > 1_700_000_000 * NS for a in audit)
    assert len(alerts) == 1 and alerts[0].labels["reason"] == "unknown_limit"
    # the same command again (a redelivery) changes nothing and is not audited twice
    assert not acc.on_control([_cmd(1, "halt")]).audit and acc.control.mode("default", "BTC-USD") == "normal"


def test_disabling_a_strategy_drops_its_contribution(closes):
    lim = RiskLimits(
        max_portfolio_var=1.0,
        max_portfolio_cvar=1.0,
        symbol_var_budget=1.0,
        max_leverage=10.0,
        max_price_age_s=3600.0,
        min_history=100,
        rate_per_s=1e9,
        rate_burst=1e9,
        min_confidence=0.0,
    )

    def run(disable: bool) -> float:
        acc = _account(lim)
        if disable:
            acc.on_control([_cmd(9, "disable_strategy", "strategy:ml")])
        k = len(closes["BTC-USD"]) - 3
        t0 = 1_700_000_000 * NS
        for u in _updates(closes, {}, t0):
            if u.symbol == "BTC-USD" and u.points[0].ts == t0 + (k + 1) * 1800 * NS:
                p = u.points[0]
                it = Intent(
                    id="int-c",
                    symbol="BTC-USD",
                    strategy="portfolio",
                    target=1.0,
                    confidence=1.0,
                    contributions={"ml": 0.4, "trend": 0.6},
                    price=p.close,
                    ts=p.ts,
                )
                u = SymbolUpdate(u.symbol, u.floor, u.ticks, [DecisionPoint(u.symbol, p.ts, p.close, it)], u.progress)
            acc.on_update(u)
        acc.flush()
        return acc.ledger.position("BTC-USD")

    full, without = run(False), run(True)
    assert without == pytest.approx(0.6 * full, rel=1e-3)


def test_return_window_covariance_stays_exact_as_rows_come_and_go():
    """The running-sum covariance equals the two-pass sample covariance of the window's rows to 1e-12 (relative
    to the scale sqrt(var_i var_j)) after every push, through several wraps of the ring buffer."""
    from operators.account.returns import ReturnWindow

    rng = np.random.default_rng(11)
    w = ReturnWindow(50, 3)
    rows = rng.multivariate_normal(
        [3e-4, -2e-4, 1e-4], [[1e-4, 6e-5, 1e-5], [6e-5, 2e-4, 0.0], [1e-5, 0.0, 5e-5]], size=400
    )
    for k, r in enumerate(rows):
        w.push(r)
        if len(w) < 2:
            continue
        exact = sample_covariance(w.matrix())
        scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
        assert np.max(np.abs(w.cov() - exact) / scale) < 1e-12, k


def test_a_wide_return_window_keeps_no_square_sums_and_its_covariance_stays_exact():
    """Above ``WIDE_N`` columns the window keeps no n x n running sums (800 MB at 10,000 symbols, in every
    snapshot): nothing of that size is stored or pickled, and ``cov`` (summed from the rows when read) equals the
    two-pass sample covariance to 1e-12 after every push from the third, through wraps of the ring buffer and a pickle round trip;
    the FHS scenarios are those of the narrow code path column by column."""
    import pickle

    from operators.account.returns import ReturnWindow

    n = ReturnWindow.WIDE_N + 3
    rng = np.random.default_rng(5)
    w, narrow = ReturnWindow(7, n, lam=0.94), ReturnWindow(7, 8, lam=0.94)
    assert w._s2 is None and w._s1 is None
    for k in range(20):
        r = rng.normal(0.0, 1e-2, n)
        w.push(r)
        narrow.push(r[:8])
        assert w._s2 is None
        if len(w) < 3:  # (two rows: the one-pass formula loses ~1e-10, the running sums of a narrow window too)
            continue
        exact = sample_covariance(w.matrix())
        scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
        assert np.max(np.abs(w.cov() - exact) / scale) < 1e-12, k
        assert np.array_equal(w.scenarios()[:, :8], narrow.scenarios()), k
    w.push(rng.normal(0.0, 1e-2, n))  # (a push drops the covariance cache)
    blob = pickle.dumps(w)
    assert len(blob) < 2 * (w.buf.nbytes + w._zbuf.nbytes) + 100_000  # the rows, not n x n
    back = pickle.loads(blob)
    assert np.array_equal(back.cov(), w.cov())


def _run_with_contributions(closes, contrib_of, n_bars: int = 3000) -> AccountStage:
    """The account over the real history with an intent per symbol every 40 bars; ``contrib_of(i, symbol)`` gives
    that intent's contributions by strategy (its target is their sum)."""
    acc = _account(
        RiskLimits(
            max_portfolio_var=1.0,
            max_portfolio_cvar=1.0,
            symbol_var_budget=1.0,
            max_leverage=10.0,
            max_price_age_s=3600.0,
            min_history=100,
            rate_per_s=1e9,
            rate_burst=1e9,
            min_confidence=0.0,
            max_drawdown=1.0,
            resume_drawdown=0.5,
        )
    )
    short = {s: c[:n_bars] for s, c in closes.items()}
    for u in _updates(short, {}):
        p = u.points[0]
        i = (p.ts - 1_700_000_000 * NS) // (1800 * NS) - 1
        if i % 40 == 0 and i >= 120:
            c = contrib_of(i, u.symbol)
            it = Intent(
                id=stable_id("int", "attr", u.symbol, p.ts),
                symbol=u.symbol,
                strategy="portfolio",
                target=sum(c.values()),
                confidence=1.0,
                contributions=c,
                price=p.close,
                ts=p.ts,
            )
            u = SymbolUpdate(u.symbol, u.floor, u.ticks, [DecisionPoint(u.symbol, p.ts, p.close, it)], u.progress)
        acc.on_update(u)
    acc.flush()
    return acc


def test_pnl_by_strategy_equals_pnl_by_symbol_when_each_strategy_trades_one_symbol(closes):
    """A strategy that alone holds a symbol owns that symbol's P&L: the attribution by strategy (cash flows and
    marks between decisions) equals the ledger's own net P&L of the symbol (realised + open - fees)."""
    acc = _run_with_contributions(
        closes, lambda i, s: {("x" if s == "BTC-USD" else "y"): (1.0 if (i // 40) % 3 else -0.5)}
    )
    summ = acc.summary()
    by_sym, by_strat = summ["by_symbol"], summ["pnl_by_strategy"]
    assert set(by_strat) == {"x", "y"} and summ["decisions"]["approved"] + summ["decisions"]["resized"] > 50
    for strat, sym in (("x", "BTC-USD"), ("y", "ETH-USD")):
        assert by_strat[strat]["net_pnl"] == pytest.approx(by_sym[sym]["net_pnl"], rel=1e-9, abs=1e-6)
        assert by_strat[strat]["fees"] == pytest.approx(by_sym[sym]["fees"], rel=1e-12)
    assert abs(by_strat["x"]["net_pnl"]) > 100.0 and abs(by_strat["y"]["net_pnl"]) > 100.0


def test_pnl_by_strategy_splits_shared_positions_by_their_contributions(closes):
    """Two strategies share both symbols, one of them changing sides: their P&L adds up to the account's P&L and
    their fees to its fees, and a strategy that never contributes gets nothing."""

    def contrib(i, s):
        k = (i // 40) % 4
        return {"trend": 0.6, "swing": (0.5 if k < 2 else -0.3) * (1.0 if s == "BTC-USD" else 0.5), "idle": 0.0}

    acc = _run_with_contributions(closes, contrib)
    summ = acc.summary()
    by = summ["pnl_by_strategy"]
    assert sum(v["net_pnl"] for v in by.values()) == pytest.approx(summ["pnl"], rel=1e-9, abs=1e-6)
    assert sum(v["fees"] for v in by.values()) == pytest.approx(summ["fees"], rel=1e-9)
    assert by["idle"]["net_pnl"] == 0.0 and by["idle"]["fees"] == 0.0
    assert by["trend"]["fees"] > 0 and by["swing"]["fees"] != 0


def test_var_forecasts_of_the_book_go_with_the_next_periods_pnl(closes):
    """Before each period the account forecasts its book's VaR and CVaR (the gate's Gaussian method, the window's
    covariance, positions plus what is working); the series carries the realised P&L of the period that followed.
    Checked against an independent computation from the ledger's positions and the return window."""
    acc = _run_with_contributions(closes, lambda i, s: {"t": (1.0 if (i // 40) % 3 else -0.5)}, n_bars=1500)
    vf = acc.summary()["var_forecasts"]
    n = len(vf["ts"])
    assert n > 1000 and len(vf["pnl"]) == n - 1 and vf["method"] == "gaussian" and vf["alpha"] == 0.99
    assert vf["ts"] == sorted(vf["ts"])
    eq = np.array(vf["equity"])
    assert np.allclose(np.diff(eq), vf["pnl"], rtol=0, atol=1e-9)
    var, cvar = np.array(vf["var"]), np.array(vf["cvar"])
    assert np.isnan(var[0]) and np.isfinite(var[-500:]).all() and (var[-500:] > 0).mean() > 0.5
    assert (cvar[np.isfinite(cvar)] >= var[np.isfinite(var)] - 1e-9).all()  # CVaR at least the VaR
    # the last forecast: the book at the end (nothing is working any more after the flush)
    marks = acc._marks()
    x = np.array([acc.ledger.position(s) * marks[s] for s in SYMS])
    cov = sample_covariance(acc.returns.matrix())
    want = -portfolio_var_gaussian(x, cov, 0.99)
    assert var[-1] == pytest.approx(want, rel=1e-9)
    # about one period in a hundred loses more than the 99 % VaR when the book is exposed
    pnl = np.array(vf["pnl"])
    v = var[:-1]
    live = np.isfinite(v) & (v > 0)
    assert 0.0 < np.mean(-pnl[live] > v[live]) < 0.05


def test_the_forecast_series_is_bounded_and_stays_aligned(closes):
    """Only the latest ``forecasts_kept`` forecasts are kept (the state pickles small however long a live run is);
    times and values stay row-aligned when the oldest are dropped."""
    import pickle

    acc = AccountStage(
        AccountConfig(
            symbols=SYMS,
            capital=100_000.0,
            execution="market",
            forecasts_kept=100,
            limits=RiskLimits(max_price_age_s=3600.0, min_history=2),
        )
    )
    short = {s: c[:400] for s, c in closes.items()}
    ts = []
    for u in _updates(short, {}):
        acc.on_update(u)
        ts.append(u.points[0].ts)
    vf = acc.summary()["var_forecasts"]
    assert 100 <= len(vf["ts"]) <= 125 and len(vf["ts"]) == len(vf["var"]) == len(vf["equity"])
    assert vf["ts"] == sorted(set(ts))[-len(vf["ts"]) :]
    assert vf["equity"] == [100_000.0] * len(vf["ts"])  # no intent, no trade
    assert len(pickle.dumps(acc)) < 200_000


def test_fhs_scenarios_of_the_window_equal_the_batch_filter():
    """The account's window keeps each symbol's EWMA variance across every row it saw: before it wraps its FHS
    scenarios equal the batch filter of its rows; after, the last rows of the batch filter over all rows pushed."""
    from operators.account.returns import ReturnWindow
    from operators.risk.filtered import filtered_scenarios

    rng = np.random.default_rng(11)
    rows = rng.standard_t(4, size=(700, 3)) * 0.01
    rows[:3, 2] = 0.0  # a symbol that has not moved yet
    w = ReturnWindow(250, 3, lam=0.7)
    for i, r in enumerate(rows):
        w.push(r)
        if i in (1, 100, 249):
            np.testing.assert_allclose(w.scenarios(), filtered_scenarios(rows[: i + 1], 0.7), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(w.scenarios(), filtered_scenarios(rows, 0.7)[-250:], rtol=1e-12, atol=1e-18)
    assert w.scenarios().shape == (250, 3)


def test_the_account_gates_on_filtered_historical_var(closes):
    """var_method="fhs": the gate sizes on the filtered scenarios and the account forecasts with them."""
    lim = RiskLimits(
        var_method="fhs",
        max_portfolio_var=0.01,
        max_portfolio_cvar=0.015,
        symbol_var_budget=0.006,
        max_price_age_s=3600.0,
        min_history=100,
        rate_per_s=1e9,
        rate_burst=1e9,
        min_confidence=0.0,
        max_drawdown=1.0,
        resume_drawdown=0.5,
        max_leverage=10.0,
    )
    acc = AccountStage(
        AccountConfig(symbols=SYMS, capital=100_000.0, fraction=1.0, limits=lim, execution="market", risk_window=500)
    )
    short = {s: c[:1500] for s, c in closes.items()}
    n = 0
    for u in _updates(
        short, {i: {"BTC-USD": 1.0 if (i // 40) % 2 else -1.0, "ETH-USD": 1.0} for i in range(120, 1500, 40)}
    ):
        n += sum(1 for d in acc.on_update(u).decisions if "portfolio_var_limit" in d.reasons)
    acc.flush()
    vf = acc.summary()["var_forecasts"]
    assert vf["method"] == "fhs" and n > 0
    var = np.array(vf["var"])
    assert np.isfinite(var[-300:]).all() and (var[-300:] > 0).any()
    # the last forecast: the FHS VaR of the book over the window's filtered scenarios
    from operators.risk.scenarios import var_cvar as vc

    marks = acc._marks()
    x = np.array([acc.ledger.position(s) * marks[s] for s in SYMS])
    assert var[-1] == pytest.approx(-vc(acc.returns.scenarios() @ x, 0.99)[0], rel=1e-12)
