"""The orchestrator: static and risk-parity weights, caps, netting, signals, pickling."""

from __future__ import annotations

import doctest
import math
import pickle

import pytest

import operators.orchestrator as orch_mod
from operators.orchestrator import Orchestrator
from operators.strategies import Intent, SignalFollower
from schemas.events import Signal

T0 = 1_700_000_000_000_000_000


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
        return Intent(self.name, symbol, ts, t, confidence=0.5)


def test_doctests():
    res = doctest.testmod(orch_mod)
    assert res.failed == 0 and res.attempted > 0


def test_static_weights_netting_and_caps():
    o = Orchestrator([Fixed("a", [1.0]), Fixed("b", [-1.0]), Fixed("c", [1.0])], weights={"a": 2, "b": 1, "c": 1},
                     caps={"c": 0.1})
    it = o.on_bar("X", T0, 100.0, None)
    assert o.weights("X") == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert o.contributions("X") == {"a": 0.5, "b": -0.25, "c": 0.1}
    assert it.target == pytest.approx(0.35) and it.strategy == "portfolio"
    assert "a:+0.500" in it.reason and it.confidence == pytest.approx(0.5)


def test_min_change_and_exit_always_emitted():
    o = Orchestrator([Fixed("a", [1.0, 1.0, 0.96, 0.0])], min_change=0.05)
    assert o.on_bar("X", 1, 1.0, None).target == 1.0
    assert o.on_bar("X", 2, 1.0, None) is None
    assert o.on_bar("X", 3, 1.0, None) is None          # moved 0.04 < min_change
    assert o.on_bar("X", 4, 1.0, None).target == 0.0    # an exit is never held back


def test_max_gross():
    o = Orchestrator([Fixed("a", [1.0]), Fixed("b", [1.0])], weights={"a": 1, "b": 1}, max_gross=0.7)
    assert o.on_bar("X", 1, 1.0, None).target == 0.7


def test_risk_parity_is_inverse_realised_vol():
    """Strategy a is always long 1, b always long 0.25: b's returns are a quarter of a's, so b gets 4x a's weight."""
    o = Orchestrator([Fixed("a", [1.0]), Fixed("b", [0.25])], allocation="risk_parity", vol_window=50,
                     min_periods=10, vol_floor=0.0, min_change=0.0)
    assert o.weights("X") == {"a": 0.5, "b": 0.5}      # no history yet: static
    px = 100.0
    for i in range(60):
        px *= 1.01 if i % 2 else 0.995
        o.on_bar("X", T0 + i, px, None)
    w = o.weights("X")
    assert w["b"] / w["a"] == pytest.approx(4.0, rel=1e-9)
    assert math.fsum(w.values()) == pytest.approx(1.0)
    assert o.emitted["X"] == pytest.approx(w["a"] * 1.0 + w["b"] * 0.25, abs=1e-12)


def test_risk_parity_vol_floor_for_idle_strategy():
    o = Orchestrator([Fixed("a", [1.0]), Fixed("idle", [0.0])], allocation="risk_parity", vol_window=20,
                     min_periods=5, vol_floor=0.5)
    px = 100.0
    for i in range(30):
        px *= 1.01 if i % 2 else 0.99
        o.on_bar("X", T0 + i, px, None)
    w = o.weights("X")
    assert w["idle"] == pytest.approx(2 / 3, rel=1e-6)   # its sigma floored at half the asset's (a's) sigma


def test_signals_routed_and_pickle_round_trip():
    f = SignalFollower(zone_tolerance_bps=0.0)
    o = Orchestrator([Fixed("a", [0.0]), f], weights={"a": 1, "tg_follow": 1})
    o.on_bar("ETH-USD", T0, 200.0, None)
    sig = Signal(id="s", source_chat="@c", source_message_id=1, symbol="ETH-USD", side="long", entries=[200.0],
                 targets=[220.0], stop=190.0, trust=1.0, ts=T0 + 1)
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
