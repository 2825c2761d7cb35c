"""Strategies: doctests, rules, the Telegram follower's signal handling, picklability."""

from __future__ import annotations

import doctest
import importlib
import pickle
from collections import namedtuple

import pytest

from operators.strategies import (EmaSpreadTrend, MLScoreThreshold, Strategy, SignalFollower,
                                  VolatilityBreakout, ZScoreReversion)
from schemas.events import Signal

T0 = 1_700_000_000_000_000_000
B = namedtuple("B", "open high low close volume")
MODULES = ["operators.strategies.api", "operators.strategies.ml_score", "operators.strategies.mean_reversion",
           "operators.strategies.breakout", "operators.strategies.telegram", "operators.strategies.trend"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


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
    s = MLScoreThreshold(long_above=0.6, short_below=0.4, exit_above=0.55, exit_below=0.45, allow_short=False)
    assert s.on_bar("X", 1, 1.0, None) is None                       # no score
    assert s.on_bar("X", 2, 1.0, None, score=0.3) is None             # shorts off: stays flat
    assert s.on_bar("X", 3, 1.0, None, score=0.61).target == 1.0
    assert s.on_bar("X", 4, 1.0, None, score=0.47).target == 0.0      # below the coin flip: stand aside
    lin = MLScoreThreshold(long_above=0.6, short_below=0.4, exit_above=0.55, exit_below=0.45, sizing="linear",
                           size_step=0.25)
    assert lin.on_bar("X", 1, 1.0, None, score=0.62).target == 1.0
    assert lin.on_bar("Y", 1, 1.0, None, score=0.34).target == -1.0
    hold = MLScoreThreshold(min_hold_bars=3)
    assert hold.on_bar("X", 1, 1.0, None, score=0.9).target == 1.0
    assert hold.on_bar("X", 2, 1.0, None, score=0.5) is None          # held for 1 bar only
    hold.on_bar("X", 3, 1.0, None, score=0.53)
    assert hold.on_bar("X", 4, 1.0, None, score=0.5).target == 0.0
    with pytest.raises(ValueError):
        MLScoreThreshold(long_above=0.4)


def test_zscore_stop_blocks_reentry():
    s = ZScoreReversion(window=4, entry_z=1.0, exit_z=0.1, stop_z=1.25)
    for i, c in enumerate([10.0, 10.0, 10.0]):
        s.on_bar("X", i, c, None)
    assert s.on_bar("X", 3, 9.0, None).target == 1.0    # z = -1.5: long (below the lower band)
    assert s.on_bar("X", 4, 8.0, None).target == 0.0    # z = -1.31 beyond -stop_z: stopped
    assert s.on_bar("X", 5, 7.0, None) is None          # z = -1.16, still beyond -entry_z: no re-entry
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
    base = dict(id="s1", source_chat="@ch", source_message_id=1, symbol="ETH-USD", side="short", entries=[200.0],
                targets=[190.0, 180.0, 170.0], stop=210.0, trust=0.8, ts=T0)
    base.update(kw)
    return Signal(**base)


def test_follower_zone_targets_stop_short():
    f = SignalFollower(max_size=0.5, zone_tolerance_bps=50.0)       # zone 199..201
    f.on_bar("ETH-USD", T0 - 1, 205.0, None)
    assert f.on_signal(_sig()) is None                               # 205 outside the zone: pending
    assert f.on_bar("ETH-USD", T0 + 1, 203.0, None, bar=B(204, 204, 202, 203, 1)) is None
    it = f.on_bar("ETH-USD", T0 + 2, 200.5, None, bar=B(203, 203, 200.5, 200.5, 1))
    assert it.target == pytest.approx(-0.4)                          # -max_size * trust
    it = f.on_bar("ETH-USD", T0 + 3, 185.0, None, bar=B(200, 200, 185, 185, 1))
    assert it.target == pytest.approx(-0.4 * 2 / 3)                  # first of three targets
    it = f.on_bar("ETH-USD", T0 + 4, 209.0, None, bar=B(185, 211, 185, 209, 1))
    assert it.target == 0.0 and "stop" in it.reason
    assert f.ideas == {}


def test_follower_market_entry_update_close_and_edit():
    f = SignalFollower(max_size=1.0, zone_tolerance_bps=0.0)
    f.on_bar("BTC-USD", T0 - 1, 100.0, None)
    it = f.on_signal(_sig(symbol="BTC-USD", side="long", entries=[99.0, 101.0], targets=[110.0], stop=90.0, trust=0.5))
    assert it.target == 0.5                                           # last close in the zone: enter now
    upd = _sig(id="s2", source_message_id=2, symbol="BTC-USD", side="long", kind="update", entries=[], targets=[],
               stop=98.0, ref_id="s1", ts=T0 + 5)
    assert f.on_signal(upd) is None and f.ideas["s1"].stop == 98.0
    edit = _sig(symbol="BTC-USD", side="long", entries=[99.0, 101.0], targets=[105.0], stop=90.0, trust=0.5, version=2)
    f.on_signal(edit)
    assert f.ideas["s1"].targets == [105.0]
    assert f.on_signal(edit) is None                                  # same (id, version): ignored
    close = _sig(id="s3", source_message_id=3, symbol="BTC-USD", side="long", kind="close", entries=[],
                 close_fraction=0.5, ref_id=None, ts=T0 + 6)           # matched by chat + symbol
    assert f.on_signal(close).target == 0.25
    assert f.on_bar("BTC-USD", T0 + 7, 104.0, None, bar=B(100, 106, 100, 104, 1)).target == 0.0   # last target


def test_follower_cancel_expiry_trust_and_stop_before_entry():
    f = SignalFollower(min_trust=0.3, entry_ttl_s=60)
    assert f.on_signal(_sig(trust=0.1)) is None and f.ideas == {}    # not trusted enough
    f.on_signal(_sig())
    cancel = _sig(id="c1", source_message_id=5, kind="cancel", entries=[], ref_id="s1", ts=T0 + 1)
    f.on_signal(cancel)
    assert "s1" not in f.ideas
    f.on_signal(_sig(id="s9", source_message_id=9))
    assert f.on_bar("ETH-USD", T0 + 61 * 10**9, 150.0, None) is None and f.ideas == {}   # expired
    f.on_signal(_sig(id="s10", source_message_id=10, ts=T0 + 100 * 10**9))
    f.on_bar("ETH-USD", T0 + 101 * 10**9, 212.0, None)                # stop traded before entry
    assert f.ideas == {}
    keep = SignalFollower(zone_tolerance_bps=0.0)
    keep.on_bar("ETH-USD", T0 - 1, 200.0, None)
    assert keep.on_signal(_sig()).target == pytest.approx(-0.8)
    keep.on_signal(cancel)                                            # cancel of a filled idea: kept by default
    assert keep.target["ETH-USD"] == pytest.approx(-0.8)
