"""Baseline trend follower on the EMA spread feature (the flow's stand-in until issue 5's strategies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from operators.features import CORE_V1

from .base import StrategyTarget

_EMA_SPREAD = CORE_V1.features.index("ema_spread")


class EmaSpreadTrend:
    """Long when ``ema_spread`` (EMA12 − EMA26, fraction of price) exceeds ``entry``, short below ``−entry``
    (flat instead when ``allow_short`` is false), flat again once it falls back inside ``±exit``.

    >>> s = EmaSpreadTrend(entry=0.01, exit=0.002)
    >>> f = [0.0] * len(CORE_V1.features)
    >>> f[_EMA_SPREAD] = 0.02
    >>> s.on_bar("BTC-USD", 1, 100.0, f).target
    1.0
    >>> s.on_bar("BTC-USD", 2, 100.0, f) is None  # unchanged wish: no new intent
    True
    """

    def __init__(
        self, entry: float = 0.004, exit: float = 0.001, allow_short: bool = True, name: str = "trend"
    ) -> None:
        if not 0 <= exit <= entry:
            raise ValueError("need 0 <= exit <= entry")
        self.name = name
        self.entry = entry
        self.exit = exit
        self.allow_short = allow_short
        self.target = 0.0

    def on_bar(
        self,
        symbol: str,
        ts: int,
        close: float,
        features: Sequence[float] | None,
        *,
        score: float | None = None,
        bar: Any = None,
    ) -> StrategyTarget | None:
        if features is None:
            return None
        spread = features[_EMA_SPREAD]
        want = self.target
        if spread > self.entry:
            want = 1.0
        elif spread < -self.entry:
            want = -1.0 if self.allow_short else 0.0
        elif abs(spread) < self.exit:
            want = 0.0
        if want == self.target:
            return None
        self.target = want
        return StrategyTarget(
            self.name,
            symbol,
            ts,
            want,
            confidence=min(1.0, abs(spread) / (2 * self.entry)),
            reason=f"ema_spread={spread:.5f}",
        )
