"""What strategies share beyond :class:`~operators.strategies.base.Strategy`: the signal-follower protocol and a
helper for the bar's range.

Every strategy of this package, the orchestrator included, implements the one ``Strategy.on_bar(symbol, ts, close,
features, *, score=None, bar=None)``; strategies that follow Telegram signals also have
``on_signal(signal) -> StrategyTarget | None`` (:class:`SignalStrategy`). ``ts`` is always event time in ns (the
close of the bar, or the signal's time).

>>> from operators.strategies import EmaSpreadTrend, Strategy, ZScoreReversion
>>> isinstance(ZScoreReversion(), Strategy), isinstance(EmaSpreadTrend(), SignalStrategy)
(True, False)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from schemas.events import Signal

from .base import StrategyTarget

__all__ = ["SignalStrategy", "bar_range"]


@runtime_checkable
class SignalStrategy(Protocol):
    """A strategy that also consumes :class:`schemas.events.Signal` events."""

    name: str

    def on_signal(self, signal: Signal) -> StrategyTarget | None:
        """Apply a signal (open/update/cancel/close); return a new target when the wanted position changes."""
        ...


def bar_range(close: float, bar: Any) -> tuple[float, float]:
    """``(high, low)`` of ``bar``, or ``(close, close)`` without a bar (quote per base unit).

    >>> bar_range(100.0, None)
    (100.0, 100.0)
    """
    if bar is None:
        return close, close
    return float(bar.high), float(bar.low)
