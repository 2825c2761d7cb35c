"""Strategies: doctests, rules, the Telegram follower's signal handling, picklability."""

from __future__ import annotations

import math
import pickle
from collections import namedtuple

import pytest

from operators.strategies import (
    EmaSpreadTrend,
    MLScoreThreshold,
    SignalFollower,
    Strategy,
    VolatilityBreakout,
    ZScoreReversion,
)
from schemas.events import Signal
from tests.support import REPO

T0 = 1_700_000_000_000_000_000
B = namedtuple("B", "open high low close volume")


def test_all_strategies_share_the_interface_and_pickle():
    strats = [MLScoreThreshold(), ZScoreReversion(window=5), VolatilityBreakout(window=5), SignalFollower()]
    for s in strats:
        assert isinstance(s, Strategy)
        for i in range(12):
            s.on_bar("BTC-USD", T0 + i, 100.0 + (i % 3), None, score=0.6, bar=B(100, 103, 99, 100 + i % 3, 1.0))
        clone = pickle.loads(pickle.dumps(s))
        a = s.on_bar("BTC-USD", T0 + 99, 90.0, None, score=0.2, bar=B(100, 100, 90, 90, 1.0))
        b = clone.on_bar("BTC-USD", T0 + 99, 90.0, None, score=0.2, bar=B(100, 100, 90, 90, 1.0))
        assert a == b
    assert EmaSpreadTrend().on_bar("BTC-USD", T0, 100.0, None, score=0.9) is None


def test_ml_score_rules():
    s = MLScoreThreshold(
        long_above=0.6, short_below=0.4, exit_above=0.55, exit_below=0.45, allow_short=False, rule="threshold"
    )
    assert s.on_bar("X", 1, 1.0, None) is None  # no score
    assert s.on_bar("X", 2, 1.0, None, score=0.3) is None  # shorts off: stays flat
    assert s.on_bar("X", 3, 1.0, None, score=0.61).target == 1.0
    assert s.on_bar("X", 4, 1.0, None, score=0.47).target == 0.0  # below the coin flip: stand aside
    lin = MLScoreThreshold(
        long_above=0.6,
        short_below=0.4,
        exit_above=0.55,
        exit_below=0.45,
        sizing="linear",
        size_step=0.25,
        rule="threshold",
    )
    assert lin.on_bar("X", 1, 1.0, None, score=0.62).target == 1.0
    assert lin.on_bar("Y", 1, 1.0, None, score=0.34).target == -1.0
    hold = MLScoreThreshold(min_hold_bars=3, rule="threshold")
    assert hold.on_bar("X", 1, 1.0, None, score=0.9).target == 1.0
    assert hold.on_bar("X", 2, 1.0, None, score=0.5) is None  # held for 1 bar only
    hold.on_bar("X", 3, 1.0, None, score=0.53)
    assert hold.on_bar("X", 4, 1.0, None, score=0.5).target == 0.0
    with pytest.raises(ValueError):
        MLScoreThreshold(long_above=0.4)


def test_zscore_stop_blocks_reentry():
    s = ZScoreReversion(window=4, entry_z=1.0, exit_z=0.1, stop_z=1.25)
    for i, c in enumerate([10.0, 10.0, 10.0]):
        s.on_bar("X", i, c, None)
    assert s.on_bar("X", 3, 9.0, None).target == 1.0  # z = -1.5: long (below the lower band)
    assert s.on_bar("X", 4, 8.0, None).target == 0.0  # z = -1.31 beyond -stop_z: stopped
    assert s.on_bar("X", 5, 7.0, None) is None  # z = -1.16, still beyond -entry_z: no re-entry
    assert s.blocked["X"] == 1.0


def test_volatility_breakout_short_and_time_exit():
    s = VolatilityBreakout(window=3, k=1.0, trail_atr=10.0, max_hold_bars=2)
    for i, c in enumerate([100.0, 100.5, 100.0, 100.5]):
        s.on_bar("X", i, c, None, bar=B(c, c + 0.5, c - 0.5, c, 1))
    assert s.on_bar("X", 4, 97.0, None, bar=B(100, 100, 97, 97, 1)).target == -1.0
    assert s.on_bar("X", 5, 96.0, None, bar=B(97, 97, 96, 96, 1)) is None
    it = s.on_bar("X", 6, 95.0, None, bar=B(96, 96, 95, 95, 1))
    assert it.target == 0.0 and it.reason == "exit:time"


def _sig(**kw) -> Signal:
    base = dict(
        id="s1",
        source_chat="@ch",
        source_message_id=1,
        symbol="ETH-USD",
        side="short",
        entries=[200.0],
        targets=[190.0, 180.0, 170.0],
        stop=210.0,
        trust=0.8,
        ts=T0,
    )
    base.update(kw)
    return Signal(**base)


def test_follower_zone_targets_stop_short():
    f = SignalFollower(max_size=0.5, zone_tolerance_bps=50.0)  # zone 199..201
    f.on_bar("ETH-USD", T0 - 1, 205.0, None)
    assert f.on_signal(_sig()) is None  # 205 outside the zone: pending
    assert f.on_bar("ETH-USD", T0 + 1, 203.0, None, bar=B(204, 204, 202, 203, 1)) is None
    it = f.on_bar("ETH-USD", T0 + 2, 200.5, None, bar=B(203, 203, 200.5, 200.5, 1))
    assert it.target == pytest.approx(-0.4)  # -max_size * trust
    it = f.on_bar("ETH-USD", T0 + 3, 185.0, None, bar=B(200, 200, 185, 185, 1))
    assert it.target == pytest.approx(-0.4 * 2 / 3)  # first of three targets
    it = f.on_bar("ETH-USD", T0 + 4, 209.0, None, bar=B(185, 211, 185, 209, 1))
    assert it.target == 0.0 and "stop" in it.reason
    assert f.ideas == {}


def test_follower_market_entry_update_close_and_edit():
    f = SignalFollower(max_size=1.0, zone_tolerance_bps=0.0)
    f.on_bar("BTC-USD", T0 - 1, 100.0, None)
    it = f.on_signal(_sig(symbol="BTC-USD", side="long", entries=[99.0, 101.0], targets=[110.0], stop=90.0, trust=0.5))
    assert it.target == 0.5  # last close in the zone: enter now
    upd = _sig(
        id="s2",
        source_message_id=2,
        symbol="BTC-USD",
        side="long",
        kind="update",
        entries=[],
        targets=[],
        stop=98.0,
        ref_id="s1",
        ts=T0 + 5,
    )
    assert f.on_signal(upd) is None and f.ideas["s1"].stop == 98.0
    edit = _sig(symbol="BTC-USD", side="long", entries=[99.0, 101.0], targets=[105.0], stop=90.0, trust=0.5, version=2)
    f.on_signal(edit)
    assert f.ideas["s1"].targets == [105.0]
    assert f.on_signal(edit) is None  # same (id, version): ignored
    close = _sig(
        id="s3",
        source_message_id=3,
        symbol="BTC-USD",
        side="long",
        kind="close",
        entries=[],
        close_fraction=0.5,
        ref_id=None,
        ts=T0 + 6,
    )  # matched by chat + symbol
    assert f.on_signal(close).target == 0.25
    assert f.on_bar("BTC-USD", T0 + 7, 104.0, None, bar=B(100, 106, 100, 104, 1)).target == 0.0  # last target


def test_follower_cancel_expiry_trust_and_stop_before_entry():
    f = SignalFollower(min_trust=0.3, entry_ttl_s=60)
    assert f.on_signal(_sig(trust=0.1)) is None and f.ideas == {}  # not trusted enough
    f.on_signal(_sig())
    cancel = _sig(id="c1", source_message_id=5, kind="cancel", entries=[], ref_id="s1", ts=T0 + 1)
    f.on_signal(cancel)
    assert "s1" not in f.ideas
    f.on_signal(_sig(id="s9", source_message_id=9))
    assert f.on_bar("ETH-USD", T0 + 61 * 10**9, 150.0, None) is None and f.ideas == {}  # expired
    f.on_signal(_sig(id="s10", source_message_id=10, ts=T0 + 100 * 10**9))
    f.on_bar("ETH-USD", T0 + 101 * 10**9, 212.0, None)  # stop traded before entry
    assert f.ideas == {}
    keep = SignalFollower(zone_tolerance_bps=0.0)
    keep.on_bar("ETH-USD", T0 - 1, 200.0, None)
    assert keep.on_signal(_sig()).target == pytest.approx(-0.8)
    keep.on_signal(cancel)  # cancel of a filled idea: kept by default
    assert keep.target["ETH-USD"] == pytest.approx(-0.8)


# ------------------------------------------------------------------------------------------ cost-aware decisions
YEAR = 365 * 86_400 * 10**9


def test_cost_model_from_the_broker_config():
    import math

    from operators.execution.broker import BrokerConfig, sqrt_impact_bps
    from operators.strategies.costs import CostModel

    cfg = BrokerConfig(half_spread_bps=2.0, impact_k_bps=20.0, max_impact_bps=3.0, taker_fee_bps=5.0)
    c = CostModel.from_broker(cfg, participation=0.04)  # impact 20 * sqrt(0.04) = 4 bps, capped at 3
    assert c.impact_bps == sqrt_impact_bps(0.04, 1.0, 20.0, 3.0) == 3.0
    assert c.one_way_bps == 10.0 and c.round_trip_bps == 20.0 and math.isclose(c.round_trip, 0.002)
    with pytest.raises(ValueError):
        CostModel(fee_bps=-1.0)
    with pytest.raises(ValueError):
        CostModel.from_broker(cfg, participation=0.0)


def test_move_stats_equal_conditional_means():
    import numpy as np

    from operators.strategies.ml_score import MoveStats

    rng = np.random.default_rng(5)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    m = MoveStats(3, 1e12)  # (practically) no decay: plain means
    for c in closes:
        m.update(float(c))
    r = closes[3:] / closes[:-3] - 1
    assert m.up == pytest.approx(r[r > 0].mean(), rel=1e-9)
    assert m.down == pytest.approx(-r[r < 0].mean(), rel=1e-9)
    assert (m.n_up, m.n_down) == (int((r > 0).sum()), int((r < 0).sum()))
    m.update(float("nan"))
    m.update(-1.0)
    assert m.n_up + m.n_down == r.size  # bad closes ignored


def test_edge_rule_needs_the_hurdle_holds_the_horizon_and_leaves_on_negative_edge():
    from operators.strategies.costs import CostModel

    cost = CostModel(fee_bps=10.0)  # round trip 20 bps; margin 1: hurdle 40 bps
    s = MLScoreThreshold(cost=cost, margin=1.0, horizon_bars=3, move_stats=(0.02, 0.02))
    assert s.hurdle == pytest.approx(0.004)
    # edge = 0.02 * (2p - 1): 0.004 at p = 0.6
    assert s.on_bar("X", 1, 1.0, None, score=0.595) is None  # 38 bps < 40: stays flat
    it = s.on_bar("X", 2, 1.0, None, score=0.61)
    assert it.target == 1.0 and "edge_bps=44.0" in it.reason
    assert s.on_bar("X", 3, 1.0, None, score=0.3) is None  # edge -160 bps, but held 1 bar < 3
    assert s.on_bar("X", 4, 1.0, None, score=0.45) is None  # held 2 bars
    assert s.on_bar("X", 5, 1.0, None, score=0.51) is None  # held 3, edge +4 bps >= 0: keep
    assert s.on_bar("X", 6, 1.0, None, score=0.49).target == 0.0  # edge -4 bps: leave (no flip: 4 < 40)
    assert s.on_bar("X", 7, 1.0, None, score=0.2).target == -1.0  # short edge 120 bps
    assert s.on_bar("X", 8, 1.0, None, score=None) is None
    s2 = MLScoreThreshold(cost=cost, margin=1.0, horizon_bars=1, move_stats=(0.02, 0.02), allow_short=False)
    assert s2.on_bar("X", 1, 1.0, None, score=0.1) is None  # shorts off
    with pytest.raises(ValueError):
        MLScoreThreshold(move_stats=(0.01, 0.0))
    with pytest.raises(ValueError):
        MLScoreThreshold(rule="magic")


def test_edge_rule_online_moves_wait_for_enough_history_and_pickle():
    import numpy as np

    from operators.strategies.costs import CostModel

    rng = np.random.default_rng(2)
    closes = (100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))).tolist()
    s = MLScoreThreshold(cost=CostModel(fee_bps=1.0), margin=0.0, horizon_bars=1, min_moves=50)
    first = None
    for i, c in enumerate(closes[:200]):
        it = s.on_bar("X", i, c, None, score=0.99)
        if it is not None and first is None:
            first = i
    m = s.moves["X"]
    assert first is not None and min(m.n_up, m.n_down) >= 50  # traded only once both sides had 50 moves
    clone = pickle.loads(pickle.dumps(s))
    for i, c in enumerate(closes[200:], start=200):
        p = 0.5 + 0.45 * math.sin(i / 7)
        a, b = s.on_bar("X", i, c, None, score=p), clone.on_bar("X", i, c, None, score=p)
        assert a == b


class _Wants:
    """Test strategy: wants ``seq[i]`` at its i-th bar (emits only changes)."""

    name = "w"

    def __init__(self, seq):
        self.seq, self.i, self.cur = list(seq), 0, 0.0

    def on_bar(self, symbol, ts, close, features, *, score=None, bar=None):
        t = self.seq[min(self.i, len(self.seq) - 1)]
        self.i += 1
        if t == self.cur:
            return None
        self.cur = t
        from operators.strategies import StrategyTarget

        return StrategyTarget("w", symbol, ts, t, confidence=0.7, reason="r")


def _run(d, n, step_ns):
    out = []
    for i in range(n):
        it = d.on_bar("X", i * step_ns, 1.0, None)
        out.append(None if it is None else it.target)
    return out


def test_turnover_budget_skips_unaffordable_entries_and_lets_exits_through():
    from operators.strategies.discipline import TradeDiscipline

    day = 86_400 * 10**9
    # 36.5 units a year = 0.1 a day; burst 2: one round trip banked
    d = TradeDiscipline(_Wants([1, 0, 1, 0, -1, -1, 1, 1, 1]), turnover_per_year=36.5, burst=2.0)
    got = _run(d, 9, day)
    # bar0 enter (tokens 2 -> 1), bar1 exit (-> 0.1 after refill: 1.1 - 1), bar2 entry skipped (0.2 < 1),
    # bar3 want 0 = what we hold, bar4 short skipped, bar6 long skipped (0.6 < 1), 7-8 the same wish: not retried
    assert got == [1.0, 0.0, None, None, None, None, None, None, None]
    st = d.state["X"]
    assert st.skipped == 3 and st.spent == 2.0
    # a flip that cannot be afforded still exits
    f = TradeDiscipline(_Wants([1, -1]), turnover_per_year=1.0, burst=2.0)
    assert _run(f, 2, 10**9) == [1.0, 0.0]
    # over a long churny stream the turnover never exceeds burst + rate * time
    import random

    rnd = random.Random(1)
    seq = [rnd.choice([-1.0, 0.0, 1.0]) for _ in range(2000)]
    g = TradeDiscipline(_Wants(seq), turnover_per_year=52.0, burst=4.0)
    hour = 3600 * 10**9
    _run(g, 2000, hour)
    span = 1999 * hour
    # exits may overdraw by at most one position (|target| <= 1) beyond the budget
    assert g.state["X"].spent <= 4.0 + 52.0 * span / YEAR + 1.0
    assert g.state["X"].spent > 0


def test_min_hold_defers_changes_and_pickle_continues():
    from operators.strategies.discipline import TradeDiscipline

    d = TradeDiscipline(_Wants([1, 0, 0, 0, -1, 1, 1, 1]), min_hold_bars=3)
    got = _run(d, 3, 10**9)
    assert got == [1.0, None, None]  # the exit wished at bar 1 waits
    clone = pickle.loads(pickle.dumps(d))
    rest = [d.on_bar("X", i * 10**9, 1.0, None) for i in range(3, 8)]
    rest2 = [clone.on_bar("X", i * 10**9, 1.0, None) for i in range(3, 8)]
    assert rest == rest2
    assert [None if x is None else x.target for x in rest] == [0.0, -1.0, None, None, 1.0]
    assert rest[0].confidence == 0.7 and rest[0].reason == "r"
    with pytest.raises(ValueError):
        TradeDiscipline(_Wants([0]), burst=1.0)


@pytest.mark.slow
def test_walkforward_one_fold_trains_on_the_training_window_only():
    """scripts/strategy_walkforward.py on the first 13,000 bars (one fold): every row is there with its costs, the
    fold's LightGBM saw only rows whose 4-bar labels end inside the training window, and the ML margin is one of
    the grid's (chosen on the training window)."""
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import strategy_walkforward as wf

    res = wf.main(max_bars=13_000)
    assert res["folds"] == 1
    rows = {r["strategy"]: r for r in res["rows"]}
    assert set(rows) == set(wf.GRIDS) | {
        "portfolio_risk_parity",
        "portfolio_static",
        "portfolio_risk_parity_old_rules",
        "buy_and_hold",
    }
    for r in rows.values():
        assert r["fills"] >= 0 and r["turnover_per_year"] >= 0 and r["fees_frac_per_year"] >= 0
    assert rows["portfolio_risk_parity"]["fills"] < rows["portfolio_risk_parity_old_rules"]["fills"]
    # every configuration tried is counted; deflating for them never raises the probability
    assert res["trials"] == sum(len(g) for g in wf.GRIDS.values()) + 3 and res["trials_sharpe_var"] > 0
    for r in rows.values():
        p, d = r["probabilistic_sharpe"], r["deflated_sharpe"]
        assert (p != p and d != d) or (0.0 <= d <= p <= 1.0), r["strategy"]
    m = res["models"][0]
    horizon_ns = wf.HORIZON * 1800 * 10**9
    assert m["train_end_ns"] + horizon_ns < m["test_start_ns"] == res["test_start_ts_ns"]
    assert res["chosen"]["ml_score"][0] in wf.GRIDS["ml_score"]
