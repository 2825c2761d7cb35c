"""Mean reversion on the z-score of the close against its rolling mean (a Bollinger-band rule)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from .base import StrategyTarget


def rolling_zscore(window: deque[float], close: float) -> float:
    """``(close − mean) / std`` over ``window`` (which already holds ``close``), std with ddof = 1; NaN when the
    window is not full or flat.

    >>> round(rolling_zscore(deque([1.0, 2.0, 3.0], maxlen=3), 3.0), 6)
    1.0
    """
    n = len(window)
    if n < (window.maxlen or 0) or n < 2:
        return math.nan
    m = math.fsum(window) / n
    var = math.fsum((x - m) ** 2 for x in window) / (n - 1)
    if var <= 0.0:
        return math.nan
    return (close - m) / math.sqrt(var)


class ZScoreReversion:
    """Fade stretched prices: ``z = (close − SMA_n) / SD_n`` over the last ``window`` closes (this bar
    included; SD with ddof = 1; dimensionless). Long when ``z <= −entry_z`` (the close sits ``entry_z``
    standard deviations below its mean: the lower Bollinger band), short when ``z >= entry_z`` (flat when
    ``allow_short`` is false); flat again once ``|z| <= exit_z``; otherwise hold. ``stop_z`` (optional):
    also flat when the move runs further against the position, ``|z| >= stop_z``, and no re-entry in the
    same direction until ``z`` has been back inside ``±entry_z``.

    The vectorised twin for sweeps is :func:`operators.sweep.zscore_positions` (same rule, same numbers).

    >>> s = ZScoreReversion(window=3, entry_z=1.0, exit_z=0.2)
    >>> [s.on_bar("ETH-USD", i, c, None) for i, c in enumerate([10.0, 10.0])]
    [None, None]
    >>> s.on_bar("ETH-USD", 2, 7.0, None).target     # z = -1.155: long
    1.0
    >>> s.on_bar("ETH-USD", 3, 8.5, None).target     # closes 10, 7, 8.5: z = 0, inside ±exit_z: flat
    0.0
    """

    def __init__(
        self,
        window: int = 48,
        entry_z: float = 2.0,
        exit_z: float = 0.5,
        allow_short: bool = True,
        stop_z: float | None = None,
        name: str = "zscore_mr",
    ) -> None:
        if window < 2:
            raise ValueError("window must be >= 2 bars")
        if not 0.0 <= exit_z < entry_z:
            raise ValueError("need 0 <= exit_z < entry_z")
        if stop_z is not None and stop_z <= entry_z:
            raise ValueError("stop_z must exceed entry_z")
        self.name = name
        self.window = window
        self.entry_z, self.exit_z, self.stop_z = entry_z, exit_z, stop_z
        self.allow_short = allow_short
        self.closes: dict[str, deque[float]] = {}
        self.target: dict[str, float] = {}
        self.blocked: dict[str, float] = {}  # direction stopped out, until z is back inside ±entry_z

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
        """One closed bar; only ``close`` (quote per base unit) is used."""
        w = self.closes.get(symbol)
        if w is None:
            w = self.closes[symbol] = deque(maxlen=self.window)
        w.append(float(close))
        z = rolling_zscore(w, float(close))
        if z != z:
            return None
        cur = self.target.get(symbol, 0.0)
        blocked = self.blocked.get(symbol, 0.0)
        if blocked and abs(z) < self.entry_z:
            blocked = self.blocked[symbol] = 0.0
        want = cur
        if self.stop_z is not None and cur != 0.0 and abs(z) >= self.stop_z and (z > 0) == (cur < 0):
            want = 0.0
            self.blocked[symbol] = cur
        elif z <= -self.entry_z and blocked <= 0.0:
            want = 1.0
        elif z >= self.entry_z and blocked >= 0.0:
            want = -1.0 if self.allow_short else 0.0
        elif abs(z) <= self.exit_z:
            want = 0.0
        if want == cur:
            return None
        self.target[symbol] = want
        return StrategyTarget(
            self.name, symbol, ts, want, confidence=min(1.0, abs(z) / (2.0 * self.entry_z)), reason=f"z={z:.3f}"
        )
