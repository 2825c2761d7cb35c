"""ML-score strategy: trade the model's calibrated probability of an up move, when it is worth the costs.

Two rules (``rule=``):

* ``"edge"`` (the default): the **expected edge** of a position over the label horizon, from the calibrated
  probability ``p`` of an up move and the conditional sizes of the move,
  ``edge = p · m_up − (1 − p) · m_down`` (fraction of price, per unit long; a short earns ``−edge``), where
  ``m_up = E[r | r > 0]`` and ``m_down = E[−r | r < 0]`` of the simple return ``r`` over ``horizon_bars``
  bars. A position is opened (or flipped) only when its edge exceeds the round-trip cost by a margin,
  ``edge > (1 + margin) · cost.round_trip`` (``cost``: a :class:`~operators.strategies.costs.CostModel`, by
  default the pipeline's venue); it is kept while its own edge stays ``>= exit_edge`` (the exit's cost is paid
  whenever it happens, so only a negative expectation is a reason to leave) and at least ``horizon_bars`` bars
  (``min_hold_bars``, default the horizon). ``m_up``/``m_down`` are either given (``move_stats``, estimated on
  a training window) or estimated causally from the closes this strategy has seen (exponentially weighted,
  half-life ``stats_half_life_bars``; no trade before ``min_moves`` moves on each side);
* ``"threshold"``: long at ``p >= long_above``, short at ``p <= short_below``, flat inside the exit band
  ``[exit_below, exit_above]`` or when ``p`` crosses 0.5 against the position, otherwise hold (hysteresis).
  Size ``sizing="binary"`` ±1 or ``"linear"`` ``±min(1, |p − 0.5| / (long_above − 0.5))`` quantised to
  ``size_step``; ``min_hold_bars`` (default 0).

A bar without a score (``score=None``: the model is not warm) changes nothing. Confidence: edge rule
``min(1, |edge| / (2 · hurdle))``; threshold rule ``|p − 0.5| · 2``. Pure, deterministic, picklable.

>>> s = MLScoreThreshold(rule="threshold", long_above=0.6, short_below=0.4, exit_above=0.55, exit_below=0.45)
>>> s.on_bar("BTC-USD", 1, 100.0, None, score=0.65).target
1.0
>>> s.on_bar("BTC-USD", 2, 100.0, None, score=0.57) is None   # inside hysteresis: hold
True
>>> s.on_bar("BTC-USD", 3, 100.0, None, score=0.5).target      # inside the exit band: flat
0.0

With moves of ±1 % over the horizon and a 17 bps round trip (margin 0.5: hurdle ``1.5 · 0.17 = 0.255 %``),
``p = 0.6`` is worth ``0.6 · 1 − 0.4 · 1 = 0.2 %``, below the hurdle: flat; ``p = 0.65`` (0.3 %) goes long:

>>> from operators.strategies.costs import CostModel
>>> e = MLScoreThreshold(cost=CostModel(8.5), margin=0.5, move_stats=(0.01, 0.01), horizon_bars=2)
>>> e.on_bar("ETH-USD", 1, 100.0, None, score=0.6) is None
True
>>> e.on_bar("ETH-USD", 2, 100.0, None, score=0.65).target, e.on_bar("ETH-USD", 3, 100.0, None, score=0.45)
(1.0, None)
>>> e.on_bar("ETH-USD", 4, 100.0, None, score=0.45).target     # edge -0.1 % after the 2-bar hold: flat
0.0
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from .base import StrategyTarget
from .costs import DEFAULT_COSTS, CostModel

__all__ = ["MLScoreThreshold", "MoveStats"]


class MoveStats:
    """Causal estimate of ``m_up = E[r | r > 0]`` and ``m_down = E[−r | r < 0]`` of the simple return over
    ``horizon_bars`` bars, exponentially weighted with half-life ``half_life_bars`` (in returns observed).

    >>> m = MoveStats(1, 1e9)
    >>> for c in (100.0, 101.0, 100.0, 102.0):
    ...     m.update(c)
    >>> round(m.up, 6), round(m.down, 6), m.n_up, m.n_down     # +1 %, +2 % up; -0.990099 % down
    (0.015, 0.009901, 2, 1)
    """

    __slots__ = ("horizon", "decay", "closes", "w_up", "s_up", "w_dn", "s_dn", "n_up", "n_down")

    def __init__(self, horizon_bars: int, half_life_bars: float) -> None:
        if horizon_bars < 1 or not half_life_bars > 0:
            raise ValueError("need horizon_bars >= 1 and half_life_bars > 0")
        self.horizon = horizon_bars
        self.decay = 0.5 ** (1.0 / half_life_bars)
        self.closes: deque[float] = deque(maxlen=horizon_bars + 1)
        self.w_up = self.s_up = self.w_dn = self.s_dn = 0.0
        self.n_up = self.n_down = 0

    def update(self, close: float) -> None:
        """The close of the next bar (quote/base; non-positive or non-finite closes are ignored)."""
        if not (close > 0 and math.isfinite(close)):
            return
        self.closes.append(float(close))
        if len(self.closes) <= self.horizon:
            return
        r = self.closes[-1] / self.closes[0] - 1.0
        d = self.decay
        self.w_up *= d
        self.s_up *= d
        self.w_dn *= d
        self.s_dn *= d
        if r > 0:
            self.w_up += 1.0
            self.s_up += r
            self.n_up += 1
        elif r < 0:
            self.w_dn += 1.0
            self.s_dn -= r
            self.n_down += 1

    @property
    def up(self) -> float:
        return self.s_up / self.w_up if self.w_up > 0 else math.nan

    @property
    def down(self) -> float:
        return self.s_dn / self.w_dn if self.w_dn > 0 else math.nan

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, s: tuple[object, ...]) -> None:
        for k, v in zip(self.__slots__, s, strict=True):
            setattr(self, k, v)


class MLScoreThreshold:
    """Trade the calibrated P(up) ``score``; see the module docstring for the two rules and every parameter."""

    def __init__(
        self,
        long_above: float = 0.55,
        short_below: float = 0.45,
        exit_above: float = 0.52,
        exit_below: float = 0.48,
        allow_short: bool = True,
        sizing: str = "binary",
        size_step: float = 0.25,
        min_hold_bars: int | None = None,
        name: str = "ml_score",
        *,
        rule: str = "edge",
        cost: CostModel = DEFAULT_COSTS,
        margin: float = 0.5,
        horizon_bars: int = 1,
        move_stats: tuple[float, float] | None = None,
        stats_half_life_bars: float = 2000.0,
        min_moves: int = 100,
        exit_edge: float = 0.0,
    ) -> None:
        if not 0.0 <= short_below <= exit_below <= exit_above <= long_above <= 1.0:
            raise ValueError("need 0 <= short_below <= exit_below <= exit_above <= long_above <= 1")
        if long_above <= 0.5 or short_below >= 0.5:
            raise ValueError("long_above must be > 0.5 and short_below < 0.5")
        if sizing not in ("binary", "linear"):
            raise ValueError("sizing must be 'binary' or 'linear'")
        if rule not in ("edge", "threshold"):
            raise ValueError("rule must be 'edge' or 'threshold'")
        if min_hold_bars is None:
            min_hold_bars = horizon_bars if rule == "edge" else 0
        if not 0.0 < size_step <= 1.0 or min_hold_bars < 0:
            raise ValueError("need 0 < size_step <= 1 and min_hold_bars >= 0")
        if margin < 0 or horizon_bars < 1 or min_moves < 0:
            raise ValueError("need margin >= 0, horizon_bars >= 1, min_moves >= 0")
        if move_stats is not None and not all(v > 0 and math.isfinite(v) for v in move_stats):
            raise ValueError("move_stats must be two positive fractions (m_up, m_down)")
        self.name = name
        self.long_above, self.short_below = long_above, short_below
        self.exit_above, self.exit_below = exit_above, exit_below
        self.allow_short = allow_short
        self.sizing = sizing
        self.size_step = size_step
        self.min_hold_bars = min_hold_bars
        self.rule = rule
        self.cost, self.margin, self.horizon_bars = cost, margin, horizon_bars
        self.hurdle = (1.0 + margin) * cost.round_trip  # fraction of price
        self.move_stats = (move_stats[0], move_stats[1]) if move_stats is not None else None  # a copy as a tuple
        self.stats_half_life_bars, self.min_moves, self.exit_edge = stats_half_life_bars, min_moves, exit_edge
        self.moves: dict[str, MoveStats] = {}
        self.target: dict[str, float] = {}
        self.held_bars: dict[str, int] = {}

    def _size(self, p: float) -> float:
        if self.sizing == "binary":
            return 1.0
        raw = min(1.0, abs(p - 0.5) / (self.long_above - 0.5))
        q = round(raw / self.size_step) * self.size_step
        return min(1.0, max(self.size_step, q))

    def moves_of(self, symbol: str) -> tuple[float, float]:
        """``(m_up, m_down)`` used for ``symbol`` now (fractions; NaN while the online estimate is not warm)."""
        if self.move_stats is not None:
            return self.move_stats
        m = self.moves.get(symbol)
        if m is None or m.n_up < self.min_moves or m.n_down < self.min_moves:
            return math.nan, math.nan
        return m.up, m.down

    def edge(self, symbol: str, p: float) -> float:
        """Expected return of a unit long position over the horizon at probability ``p`` (fraction; NaN = unknown)."""
        up, down = self.moves_of(symbol)
        return p * up - (1.0 - p) * down

    def _want_threshold(self, p: float, cur: float) -> float:
        if p >= self.long_above:
            return self._size(p)
        if p <= self.short_below:
            return -self._size(p) if self.allow_short else 0.0
        if self.exit_below <= p <= self.exit_above:
            return 0.0
        if (cur > 0 and p < 0.5) or (cur < 0 and p > 0.5):
            return 0.0  # crossed the coin flip without reaching the opposite threshold: stand aside
        return cur

    def _want_edge(self, e: float, cur: float) -> float:
        if e != e:
            return cur
        if e > self.hurdle:
            return 1.0
        if -e > self.hurdle:
            return -1.0 if self.allow_short else 0.0
        if (cur > 0 and e < self.exit_edge) or (cur < 0 and -e < self.exit_edge):
            return 0.0
        return cur

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
        """One closed bar with the model's score (None = no score: nothing changes)."""
        cur = self.target.get(symbol, 0.0)
        self.held_bars[symbol] = self.held_bars.get(symbol, 0) + 1
        if self.rule == "edge" and self.move_stats is None:
            m = self.moves.get(symbol)
            if m is None:
                m = self.moves[symbol] = MoveStats(self.horizon_bars, self.stats_half_life_bars)
            m.update(float(close))
        if score is None or score != score:
            return None
        p = float(score)
        if self.rule == "edge":
            e = self.edge(symbol, p)
            want = self._want_edge(e, cur)
        else:
            e = math.nan
            want = self._want_threshold(p, cur)
        if want == cur:
            return None
        if cur != 0.0 and self.held_bars[symbol] < self.min_hold_bars:
            return None
        self.target[symbol] = want
        self.held_bars[symbol] = 0
        if self.rule == "edge":
            conf = min(1.0, abs(e) / (2.0 * self.hurdle)) if self.hurdle > 0 else 1.0
            why = f"score={p:.4f},edge_bps={e * 1e4:.1f},hurdle_bps={self.hurdle * 1e4:.1f}"
        else:
            conf, why = min(1.0, abs(p - 0.5) * 2.0), f"score={p:.4f}"
        return StrategyTarget(self.name, symbol, ts, want, confidence=conf, reason=why)
