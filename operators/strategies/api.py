"""The extended call of the one strategy interface: optional keywords that richer strategies use.

Every strategy of this package implements :class:`~operators.strategies.base.Strategy`'s
``on_bar(symbol, ts, close, features)`` and accepts two optional keyword-only arguments, so the
pipeline can call every strategy the same way:

* ``score``: the model's calibrated probability of an up move (fraction in [0, 1]) for this bar, or None;
* ``bar``: the closed bar itself (any object with ``open``, ``high``, ``low``, ``close``, ``volume``;
  prices in quote currency per base unit, volume in base units), or None (then strategies that want
  the bar's range use ``close`` for high and low).

Such strategies set the class attribute ``accepts_keywords = True``; :func:`call_on_bar` uses it so the
baseline :class:`~operators.strategies.trend.EmaSpreadTrend` (four positional arguments only) keeps working.
Strategies that follow Telegram signals also have ``on_signal(signal) -> Intent | None``
(:class:`SignalStrategy`). ``ts`` is always event time in ns (the close of the bar, or the signal's time).

>>> from operators.strategies import EmaSpreadTrend, ZScoreReversion
>>> isinstance(ZScoreReversion(), ScoredStrategy), hasattr(EmaSpreadTrend(), "on_signal")
(True, False)
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from schemas.events import Signal

from .base import Intent

__all__ = ["ScoredStrategy", "SignalStrategy", "call_on_bar", "bar_range"]


@runtime_checkable
class ScoredStrategy(Protocol):
    """``Strategy`` plus the optional ``score`` and ``bar`` keywords (see the module docstring)."""

    name: str

    def on_bar(self, symbol: str, ts: int, close: float, features: Sequence[float] | None, *,
               score: float | None = None, bar: Any = None) -> Intent | None:
        """Return a new intent when the wanted position changes, else None."""
        ...


@runtime_checkable
class SignalStrategy(Protocol):
    """A strategy that also consumes :class:`schemas.events.Signal` events."""

    name: str

    def on_signal(self, signal: Signal) -> Intent | None:
        """Apply a signal (open/update/cancel/close); return a new intent when the wanted position changes."""
        ...


def call_on_bar(strategy: Any, symbol: str, ts: int, close: float, features: Sequence[float] | None, *,
                score: float | None = None, bar: Any = None) -> Intent | None:
    """Call ``strategy.on_bar`` with the keywords when it takes them (this package's strategies and the
    orchestrator do), else with the four positional arguments of the base protocol (e.g. ``EmaSpreadTrend``).

    >>> from operators.strategies import EmaSpreadTrend
    >>> call_on_bar(EmaSpreadTrend(), "BTC-USD", 1, 100.0, None, score=0.7) is None
    True
    """
    if getattr(strategy, "accepts_keywords", False):
        return strategy.on_bar(symbol, ts, close, features, score=score, bar=bar)
    return strategy.on_bar(symbol, ts, close, features)


def bar_range(close: float, bar: Any) -> tuple[float, float]:
    """``(high, low)`` of ``bar``, or ``(close, close)`` without a bar (quote per base unit).

    >>> bar_range(100.0, None)
    (100.0, 100.0)
    """
    if bar is None:
        return close, close
    return float(bar.high), float(bar.low)
