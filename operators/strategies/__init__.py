"""Strategies: turn closed bars, feature values, model scores and signals into order intents (one small
interface: ``on_bar(symbol, ts, close, features, *, score=None, bar=None) -> StrategyTarget | None``, plus
``on_signal(signal)`` for signal followers). See ``docs/strategies.md``."""

from .api import SignalStrategy, bar_range
from .base import Strategy, StrategyTarget
from .breakout import VolatilityBreakout
from .discipline import TradeDiscipline
from .mean_reversion import ZScoreReversion, rolling_zscore
from .ml_score import MLScoreThreshold
from .telegram import Idea, SignalFollower
from .trend import EmaSpreadTrend

__all__ = [
    "StrategyTarget",
    "Strategy",
    "SignalStrategy",
    "bar_range",
    "EmaSpreadTrend",
    "MLScoreThreshold",
    "ZScoreReversion",
    "rolling_zscore",
    "VolatilityBreakout",
    "TradeDiscipline",
    "SignalFollower",
    "Idea",
]
