"""Volatility breakout: enter when the close leaves a channel of ``k`` average true ranges around its mean."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, TypedDict

from .api import bar_range
from .base import StrategyTarget


class _SymbolState(TypedDict):
    """One symbol's state (a plain dict at run time): the last ``window`` closes and true ranges, the previous
    close, the current target and, since entry, the best close, the ATR at entry and the bars held."""

    closes: deque[float]
    tr: deque[float]
    prev: float | None
    target: float
    best: float
    atr: float
    held: int


class VolatilityBreakout:
    """Keltner-style breakout on the previous ``window`` bars (the current bar excluded):

    * ``mid`` = mean of their closes; ``ATR`` = mean of their true ranges
      ``max(high, prev_close) − min(low, prev_close)`` (quote per base unit; with no ``bar`` passed, high =
      low = close, so the true range is ``|Δclose|``);
    * long when ``close > mid + k·ATR``, short when ``close < mid − k·ATR`` (flat instead when
      ``allow_short`` is false);
    * exit (flat) when the close crosses back through ``mid``, or falls ``trail_atr`` ATRs (ATR at entry) from
      the best close since entry (a trailing stop), or after ``max_hold_bars`` bars (0 = no limit);
    * confidence: ``min(1, |close − mid| / (2·k·ATR))``.

    >>> from collections import namedtuple
    >>> B = namedtuple("B", "open high low close volume")
    >>> s = VolatilityBreakout(window=3, k=1.0, trail_atr=2.0)
    >>> for i, c in enumerate([100.0, 101.0, 100.0, 101.0]):
    ...     _ = s.on_bar("BTC-USD", i, c, None, bar=B(c, c + 0.5, c - 0.5, c, 1.0))
    >>> s.on_bar("BTC-USD", 4, 103.0, None, bar=B(101.0, 103.0, 101.0, 103.0, 1.0)).target   # mid 100.67, ATR 1.33
    1.0
    >>> s.on_bar("BTC-USD", 5, 100.2, None, bar=B(103.0, 103.0, 100.0, 100.2, 1.0)).reason   # below mid 101.33
    'exit:mid'
    """

    def __init__(
        self,
        window: int = 48,
        k: float = 2.0,
        trail_atr: float = 3.0,
        max_hold_bars: int = 0,
        allow_short: bool = True,
        name: str = "vol_breakout",
    ) -> None:
        if window < 2 or k <= 0 or trail_atr <= 0 or max_hold_bars < 0:
            raise ValueError("need window >= 2, k > 0, trail_atr > 0, max_hold_bars >= 0")
        self.name = name
        self.window, self.k, self.trail_atr, self.max_hold_bars = window, k, trail_atr, max_hold_bars
        self.allow_short = allow_short
        self.state: dict[str, _SymbolState] = {}

    def _st(self, symbol: str) -> _SymbolState:
        st = self.state.get(symbol)
        if st is None:
            st = self.state[symbol] = {
                "closes": deque(maxlen=self.window),
                "tr": deque(maxlen=self.window),
                "prev": None,
                "target": 0.0,
                "best": 0.0,
                "atr": 0.0,
                "held": 0,
            }
        return st

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
        """One closed bar; uses ``close`` and the bar's high/low when ``bar`` is given."""
        st = self._st(symbol)
        close = float(close)
        high, low = bar_range(close, bar)
        prev = st["prev"]
        tr = (max(high, prev) - min(low, prev)) if prev is not None else high - low
        closes, trs = st["closes"], st["tr"]
        intent = None
        if len(closes) == self.window and len(trs) == self.window:
            mid = math.fsum(closes) / self.window
            atr = math.fsum(trs) / self.window
            intent = self._decide(symbol, ts, close, mid, atr, st)
        closes.append(close)
        trs.append(tr)
        st["prev"] = close
        return intent

    def _decide(
        self, symbol: str, ts: int, close: float, mid: float, atr: float, st: _SymbolState
    ) -> StrategyTarget | None:
        cur = st["target"]
        want, why = cur, ""
        if cur != 0.0:
            st["held"] += 1
            side = 1.0 if cur > 0 else -1.0
            st["best"] = max(st["best"], close) if side > 0 else min(st["best"], close)
            if side * (close - mid) < 0:
                want, why = 0.0, "exit:mid"
            elif side * (st["best"] - close) >= self.trail_atr * st["atr"]:
                want, why = 0.0, "exit:trail"
            elif self.max_hold_bars and st["held"] >= self.max_hold_bars:
                want, why = 0.0, "exit:time"
        if atr > 0 and want == 0.0 and why == "":
            if close > mid + self.k * atr:
                want, why = 1.0, "breakout:up"
            elif close < mid - self.k * atr:
                want, why = (-1.0 if self.allow_short else 0.0), "breakout:down"
        if want == cur:
            return None
        st["target"] = want
        if want != 0.0:
            st["best"], st["atr"], st["held"] = close, atr, 0
        conf = min(1.0, abs(close - mid) / (2 * self.k * atr)) if atr > 0 else 0.0
        return StrategyTarget(self.name, symbol, ts, want, confidence=conf, reason=why)
