"""The orchestrator: static and risk-parity weights, caps, netting, signals, pickling."""

from __future__ import annotations

import itertools
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.orchestrator import Orchestrator
from operators.strategies import SignalFollower, StrategyTarget
from schemas.events import Signal

T0 = 1_700_000_000_000_000_000
#: the allocation rules alone: weights every bar, no hold, no budget
RAW = dict(rebalance_bars=1, min_hold_bars=0, turnover_per_year=None)


class Fixed:
    """Test strategy: wants ``targets[i]`` at its i-th bar."""

    def __init__(self, name, targets):
        self.name, self.targets, self.i, self.cur = name, list(targets), 0, 0.0

    def on_bar(self, symbol, ts, close, features, *, score=None, bar=None):
        t = self.targets[min(self.i, len(self.targets) - 1)]
        self.i += 1
        if t == self.cur:
            return None
        self.cur = t
        return StrategyTarget(self.name, symbol, ts, t, confidence=0.5)


def test_static_weights_netting_and_caps():
    o = Orchestrator(
        [Fixed("a", [1.0]), Fixed("b", [-1.0]), Fixed("c", [1.0])],
        weights={"a": 2, "b": 1, "c": 1},
        caps={"c": 0.1},
        **RAW,
    )
    it = o.on_bar("X", T0, 100.0, None)
    assert o.weights("X") == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert o.contributions("X") == {"a": 0.5, "b": -0.25, "c": 0.1}
    assert it.target == pytest.approx(0.35) and it.strategy == "portfolio"
    assert "a:+0.500" in it.reason and it.confidence == pytest.approx(0.5)


def test_min_change_and_exit_always_emitted():
    o = Orchestrator([Fixed("a", [1.0, 1.0, 0.96, 0.0])], min_change=0.05, **RAW)
    assert o.on_bar("X", 1, 1.0, None).target == 1.0
    assert o.on_bar("X", 2, 1.0, None) is None
    assert o.on_bar("X", 3, 1.0, None) is None  # moved 0.04 < min_change
    assert o.on_bar("X", 4, 1.0, None).target == 0.0  # an exit is never held back


def test_max_gross():
    o = Orchestrator([Fixed("a", [1.0]), Fixed("b", [1.0])], weights={"a": 1, "b": 1}, max_gross=0.7, **RAW)
    assert o.on_bar("X", 1, 1.0, None).target == 0.7


def test_risk_parity_is_inverse_realised_vol():
    """Strategy a is always long 1, b always long 0.25: b's returns are a quarter of a's, so b gets 4x a's weight."""
    o = Orchestrator(
        [Fixed("a", [1.0]), Fixed("b", [0.25])],
        allocation="risk_parity",
        vol_window=50,
        min_periods=10,
        vol_floor=0.0,
        min_change=0.0,
        **RAW,
    )
    assert o.weights("X") == {"a": 0.5, "b": 0.5}  # no history yet: static
    px = 100.0
    for i in range(60):
        px *= 1.01 if i % 2 else 0.995
        o.on_bar("X", T0 + i, px, None)
    w = o.weights("X")
    assert w["b"] / w["a"] == pytest.approx(4.0, rel=1e-9)
    assert math.fsum(w.values()) == pytest.approx(1.0)
    assert o.emitted["X"] == pytest.approx(w["a"] * 1.0 + w["b"] * 0.25, abs=1e-12)


def test_risk_parity_vol_floor_for_idle_strategy():
    o = Orchestrator(
        [Fixed("a", [1.0]), Fixed("idle", [0.0])],
        allocation="risk_parity",
        vol_window=20,
        min_periods=5,
        vol_floor=0.5,
        **RAW,
    )
    px = 100.0
    for i in range(30):
        px *= 1.01 if i % 2 else 0.99
        o.on_bar("X", T0 + i, px, None)
    w = o.weights("X")
    assert w["idle"] == pytest.approx(2 / 3, rel=1e-6)  # its sigma floored at half the asset's (a's) sigma


def test_signals_routed_and_pickle_round_trip():
    f = SignalFollower(zone_tolerance_bps=0.0)
    o = Orchestrator([Fixed("a", [0.0]), f], weights={"a": 1, "tg_follow": 1}, **RAW)
    o.on_bar("ETH-USD", T0, 200.0, None)
    sig = Signal(
        id="s",
        source_chat="@c",
        source_message_id=1,
        symbol="ETH-USD",
        side="long",
        entries=[200.0],
        targets=[220.0],
        stop=190.0,
        trust=1.0,
        ts=T0 + 1,
    )
    it = o.on_signal(sig)
    assert it.target == 0.5
    clone = pickle.loads(pickle.dumps(o))
    a = o.on_bar("ETH-USD", T0 + 2, 225.0, None)
    b = clone.on_bar("ETH-USD", T0 + 2, 225.0, None)
    assert a == b and a.target == 0.0


def test_validation():
    with pytest.raises(ValueError):
        Orchestrator([Fixed("a", [1]), Fixed("a", [1])])
    with pytest.raises(ValueError):
        Orchestrator([Fixed("a", [1])], allocation="magic")


def _two_pass_std(xs):
    """The exact recomputation the rolling sums replace: two-pass, ``math.fsum``, ddof = 1."""
    m = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _exact_std(xs):
    """Exact rational variance (``fractions.Fraction``), one rounding to float, then ``math.sqrt``."""
    from fractions import Fraction

    fs = [Fraction(x) for x in xs]
    m = sum(fs) / len(fs)
    return math.sqrt(float(sum((f - m) ** 2 for f in fs) / (len(fs) - 1)))


def _assert_close(got, want):
    assert got == want or abs(got - want) <= 1e-12 * abs(want), (got, want)


def test_rolling_std_matches_exact_recomputation_on_long_streams():
    """5,000 pushes through a 480 window (each value added and later removed): every step equals the two-pass std."""
    import random
    from collections import deque

    from operators.orchestrator import RollingStd

    rnd = random.Random(7)
    r, ref = RollingStd(480), deque(maxlen=480)
    for i in range(5_000):
        # returns of very different scales, long idle stretches (exact zeros) and a constant stretch
        x = 0.0 if 1_000 <= i < 1_600 else 0.003 if 2_500 <= i < 3_100 else rnd.gauss(1e-4, 10 ** rnd.uniform(-6, -1))
        r.push(x)
        ref.append(x)
        assert r.values() == list(ref)
        if len(ref) >= 2 and i % 7 == 0:
            _assert_close(r.std(), _two_pass_std(ref))
    assert len(r) == 480


def test_rolling_std_idle_window_is_exactly_zero_after_large_values():
    from operators.orchestrator import RollingStd

    r = RollingStd(5)
    for x in (1e6, -3e-9, 0.7, 123.456, 1e-300):
        r.push(x)
    for _ in range(5):
        r.push(0.0)
    assert r.std() == 0.0  # a float running sum would leave a residue here


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=120),
    st.integers(min_value=2, max_value=40),
)
def test_rolling_std_property(xs, window):
    from operators.orchestrator import RollingStd

    r = RollingStd(window)
    for x in xs:
        r.push(x)
    tail = xs[-window:]
    if len(tail) >= 2:
        _assert_close(r.std(), _exact_std(tail))  # the two-pass fsum std is itself off for constant data


def test_rolling_std_non_finite_and_pickle():
    from operators.orchestrator import RollingStd

    r = RollingStd(3)
    for x in (1.0, float("nan"), 2.0):
        r.push(x)
    assert math.isnan(r.std())
    r.push(3.0)
    assert math.isnan(r.std())  # nan still in the window
    r.push(4.0)
    assert r.std() == 1.0  # 2, 3, 4
    clone = pickle.loads(pickle.dumps(r))
    assert clone.values() == r.values() and (clone.s1, clone.s2) == (r.s1, r.s2)
    clone.push(10.0)
    r.push(10.0)
    assert clone.std() == r.std()
    with pytest.raises(ValueError):
        RollingStd(1)


def test_risk_parity_weights_equal_two_pass_recomputation():
    """The orchestrator's weights from the rolling sums equal inverse two-pass stds of the same returns."""
    import random

    rnd = random.Random(3)
    o = Orchestrator(
        [
            Fixed("a", [rnd.choice([1.0, 0.5, -1.0, 0.0]) for _ in range(700)]),
            Fixed("b", [rnd.choice([0.25, -0.25, 0.0]) for _ in range(700)]),
        ],
        allocation="risk_parity",
        vol_window=100,
        min_periods=20,
        vol_floor=0.25,
        min_change=0.0,
        **RAW,
    )
    px = 100.0
    for i in range(700):
        px *= 1 + rnd.gauss(0, 0.01)
        o.on_bar("X", T0 + i, px, None)
    floor = 0.25 * _two_pass_std(o.asset_returns["X"].values())
    inv = {n: 1 / max(_two_pass_std(o.returns["X"][n].values()), floor) for n in ("a", "b")}
    tot = sum(inv.values())
    for n, w in o.weights("X").items():
        _assert_close(w, inv[n] / tot)


def test_rebalance_bars_freeze_risk_parity_weights_between_refreshes():
    import random

    rnd = random.Random(11)
    mk = lambda: [Fixed("a", [rnd.choice([1.0, -1.0]) for _ in range(400)]), Fixed("b", [0.5])]  # noqa: E731
    o = Orchestrator(
        mk(),
        allocation="risk_parity",
        vol_window=50,
        min_periods=20,
        rebalance_bars=10,
        min_change=0.0,
        min_hold_bars=0,
        turnover_per_year=None,
    )
    px, seen = 100.0, []
    for i in range(200):
        px *= 1 + rnd.gauss(0, 0.01)
        o.on_bar("X", T0 + i, px, None)
        seen.append((o.n_returns.get("X", 0), o.weights("X")))
    epochs = {}
    for n, w in seen:
        if n >= 20:
            epochs.setdefault((n - 20) // 10, []).append(w)
    assert len(epochs) >= 15
    for ws in epochs.values():
        assert all(w == ws[0] for w in ws)  # frozen inside a rebalance period
    firsts = [ws[0] for ws in epochs.values()]
    assert any(a != b for a, b in itertools.pairwise(firsts))  # and refreshed at its boundaries


def test_default_discipline_wraps_every_strategy_and_bounds_turnover():
    import random

    from operators.strategies.discipline import TradeDiscipline

    rnd = random.Random(4)
    churn = [rnd.choice([-1.0, 0.0, 1.0]) for _ in range(3000)]
    o = Orchestrator([Fixed("a", churn), Fixed("b", list(reversed(churn)))])  # the defaults
    assert all(isinstance(s, TradeDiscipline) for s in o.strategies) and o.names == ["a", "b"]
    raw = Orchestrator([Fixed("a", churn), Fixed("b", list(reversed(churn)))], min_change=0.1, **RAW)
    half_hour = 1800 * 10**9

    def turnover(orch):
        last, tot = 0.0, 0.0
        for i in range(3000):
            it = orch.on_bar("X", T0 + i * half_hour, 100.0, None)
            if it is not None:
                tot += abs(it.target - last)
                last = it.target
        return tot

    t_new, t_raw = turnover(o), turnover(raw)
    years = 2999 * half_hour / (365 * 86_400 * 10**9)
    # each strategy spends at most burst + budget * years (+1 overdraft by exits), weighted 1/2 in the net
    assert t_new <= 2 * 0.5 * (8.0 + 26.0 * years + 1.0) + 1e-9
    assert t_raw > 10 * t_new
    assert pickle.loads(pickle.dumps(o)).on_bar("X", T0 + 3000 * half_hour, 100.0, None) == o.on_bar(
        "X", T0 + 3000 * half_hour, 100.0, None
    )


def test_default_portfolio_is_the_signal_stage_portfolio_with_the_configured_costs():
    """``default_portfolio(cfg)`` gives the same intents as the five strategies built by hand with their defaults
    for the default configuration, takes the venue's costs and the scorer's horizon from the configuration, and is
    what the signal stage trades."""
    import random
    from dataclasses import replace

    from operators.execution.broker import BrokerConfig
    from operators.models.scorer import ScorerConfig
    from operators.orchestrator import Orchestrator, default_portfolio
    from operators.pipeline import PipelineConfig
    from operators.signal_stage import SignalStage
    from operators.strategies import (
        EmaSpreadTrend,
        MLScoreThreshold,
        SignalFollower,
        VolatilityBreakout,
        ZScoreReversion,
    )

    cfg = PipelineConfig(models=False)
    a = default_portfolio(cfg)
    b = Orchestrator(
        [
            EmaSpreadTrend(cfg.trend_entry, cfg.trend_exit, cfg.allow_short),
            MLScoreThreshold(),
            ZScoreReversion(),
            VolatilityBreakout(),
            SignalFollower(),
        ],
        allocation=cfg.allocation,
    )
    assert a.names == b.names
    rnd = random.Random(9)
    px, n = 100.0, 0
    for i in range(3000):
        px *= 1 + rnd.gauss(0, 0.01)
        sc = min(0.99, max(0.01, 0.5 + rnd.gauss(0, 0.12)))
        ia = a.on_bar("BTC-USD", T0 + i * 1800 * 10**9, px, None, score=sc)
        assert ia == b.on_bar("BTC-USD", T0 + i * 1800 * 10**9, px, None, score=sc)
        n += ia is not None
    assert n > 20 and a.strategies[1].state["BTC-USD"].spent > 0  # the ML edge rule traded too
    dear = replace(cfg, broker=BrokerConfig(taker_fee_bps=20.0), scorer=ScorerConfig(horizon_bars=4))
    ml = default_portfolio(dear).strategies[1].inner
    assert ml.horizon_bars == ml.min_hold_bars == 4
    assert ml.hurdle > default_portfolio(cfg).strategies[1].inner.hurdle
    staged = SignalStage("BTC-USD", dear).strategy.strategies[1].inner  # the signal stage trades this portfolio
    assert (staged.hurdle, staged.horizon_bars) == (ml.hurdle, ml.horizon_bars)
