"""ML-score threshold strategy: trade the model's calibrated probability of an up move."""

from __future__ import annotations

from typing import Any, Sequence

from .base import Intent


class MLScoreThreshold:
    """Long when the score ``p`` (calibrated P(up), fraction) is at or above ``long_above``, short at or below
    ``short_below`` (flat instead when ``allow_short`` is false); back to flat once ``p`` returns inside the
    exit band ``[exit_below, exit_above]``; between the band and the entry thresholds the position is held
    (hysteresis, fewer round trips).

    Size: ``sizing="binary"`` targets ±1; ``"linear"`` targets ``±min(1, |p − 0.5| / (long_above − 0.5))``
    quantised to ``size_step`` (fraction of capital, so a drifting score does not re-order every bar).
    ``min_hold_bars``: a position is kept at least this many bars before it may be changed (0 = off).
    A bar without a score (``score=None``, e.g. the model is not warm) changes nothing.

    Confidence of the intent: ``|p − 0.5| * 2`` (0 at a coin flip, 1 at certainty).

    >>> s = MLScoreThreshold(long_above=0.6, short_below=0.4, exit_above=0.55, exit_below=0.45)
    >>> s.on_bar("BTC-USD", 1, 100.0, None, score=0.65).target
    1.0
    >>> s.on_bar("BTC-USD", 2, 100.0, None, score=0.57) is None   # inside hysteresis: hold
    True
    >>> s.on_bar("BTC-USD", 3, 100.0, None, score=0.5).target      # inside the exit band: flat
    0.0
    >>> s.on_bar("BTC-USD", 4, 100.0, None, score=0.3).target
    -1.0
    """


    def __init__(self, long_above: float = 0.55, short_below: float = 0.45, exit_above: float = 0.52,
                 exit_below: float = 0.48, allow_short: bool = True, sizing: str = "binary",
                 size_step: float = 0.25, min_hold_bars: int = 0, name: str = "ml_score") -> None:
        if not 0.0 <= short_below <= exit_below <= exit_above <= long_above <= 1.0:
            raise ValueError("need 0 <= short_below <= exit_below <= exit_above <= long_above <= 1")
        if long_above <= 0.5 or short_below >= 0.5:
            raise ValueError("long_above must be > 0.5 and short_below < 0.5")
        if sizing not in ("binary", "linear"):
            raise ValueError("sizing must be 'binary' or 'linear'")
        if not 0.0 < size_step <= 1.0 or min_hold_bars < 0:
            raise ValueError("need 0 < size_step <= 1 and min_hold_bars >= 0")
        self.name = name
        self.long_above, self.short_below = long_above, short_below
        self.exit_above, self.exit_below = exit_above, exit_below
        self.allow_short = allow_short
        self.sizing = sizing
        self.size_step = size_step
        self.min_hold_bars = min_hold_bars
        self.target: dict[str, float] = {}
        self.held_bars: dict[str, int] = {}

    def _size(self, p: float) -> float:
        if self.sizing == "binary":
            return 1.0
        raw = min(1.0, abs(p - 0.5) / (self.long_above - 0.5))
        q = round(raw / self.size_step) * self.size_step
        return min(1.0, max(self.size_step, q))

    def on_bar(self, symbol: str, ts: int, close: float, features: Sequence[float] | None, *,
               score: float | None = None, bar: Any = None) -> Intent | None:
        """One closed bar with the model's score (None = no score: nothing changes)."""
        cur = self.target.get(symbol, 0.0)
        self.held_bars[symbol] = self.held_bars.get(symbol, 0) + 1
        if score is None or not score == score:
            return None
        p = float(score)
        want = cur
        if p >= self.long_above:
            want = self._size(p)
        elif p <= self.short_below:
            want = -self._size(p) if self.allow_short else 0.0
        elif self.exit_below <= p <= self.exit_above:
            want = 0.0
        elif (cur > 0 and p < 0.5) or (cur < 0 and p > 0.5):
            want = 0.0  # crossed the coin flip without reaching the opposite threshold: stand aside
        if want == cur:
            return None
        if cur != 0.0 and self.held_bars[symbol] < self.min_hold_bars:
            return None
        self.target[symbol] = want
        self.held_bars[symbol] = 0
        return Intent(self.name, symbol, ts, want, confidence=min(1.0, abs(p - 0.5) * 2.0), reason=f"score={p:.4f}")
