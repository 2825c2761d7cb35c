"""Trade discipline around any strategy: a minimum holding period and a turnover budget, in event time.

:class:`TradeDiscipline` wraps a strategy (same ``on_bar``/``on_signal``) and passes its wishes on only when
they are worth their costs in turnover:

* **minimum hold**: a non-zero position is kept at least ``min_hold_bars`` bars (the strategy's ``on_bar``
  calls) before it may change in any way; a change wished earlier waits and is applied at the first bar that
  allows it, if the strategy still wants it;
* **turnover budget**: a token bucket in units of ``|Δ target|`` (fraction of the strategy's capital: a full
  round trip long costs 2), refilled at ``turnover_per_year`` units per year of event time, holding at most
  ``burst`` units (full at the start). An entry, an increase or a flip needs the tokens for its whole change;
  when they are missing the risk-reducing part is still done (a flip becomes an exit) and the rest is skipped:
  it is not retried until the strategy wishes something else (a late entry on a stale wish is worse than
  none). Reductions and exits never wait for tokens, but they spend them (the bucket may go negative), so the
  budget bounds the strategy's whole turnover.

Deterministic (event time only), picklable (plain containers), bounded state per symbol.

>>> from operators.strategies.base import StrategyTarget
>>> class Flip:
...     name = "flip"
...     def __init__(self): self.n = 0
...     def on_bar(self, symbol, ts, close, features, *, score=None, bar=None):
...         self.n += 1
...         return StrategyTarget("flip", symbol, ts, 1.0 if self.n % 2 else -1.0)   # wants to flip every bar
>>> d = TradeDiscipline(Flip(), min_hold_bars=3)
>>> [None if (i := d.on_bar("X", t, 1.0, None)) is None else i.target for t in range(1, 8)]
[1.0, None, None, -1.0, None, None, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .base import StrategyTarget

__all__ = ["TradeDiscipline", "YEAR_NS"]

YEAR_NS = 365 * 86_400 * 1_000_000_000


class _State:
    __slots__ = ("want", "eff", "held", "tokens", "last_ts", "skip", "conf", "reason", "spent", "skipped")

    def __init__(self, tokens: float) -> None:
        self.want = 0.0  # the strategy's latest wish
        self.eff = 0.0  # what was passed on
        self.held = 0  # bars since ``eff`` last changed
        self.tokens = tokens
        self.last_ts: int | None = None
        self.skip: float | None = None  # a wish skipped for want of tokens (not retried)
        self.conf, self.reason = 0.0, ""
        self.spent = 0.0  # total |Δ target| passed on
        self.skipped = 0  # wishes skipped for the budget

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, s: tuple[object, ...]) -> None:
        for k, v in zip(self.__slots__, s, strict=True):
            setattr(self, k, v)


class TradeDiscipline:
    """Minimum hold and turnover budget around ``strategy`` (see the module docstring). ``name`` is the wrapped
    strategy's; ``turnover_per_year=None`` means no budget."""

    def __init__(
        self, strategy: Any, *, min_hold_bars: int = 0, turnover_per_year: float | None = None, burst: float = 4.0
    ) -> None:
        if min_hold_bars < 0:
            raise ValueError("min_hold_bars must be >= 0")
        if turnover_per_year is not None and not (turnover_per_year > 0 and math.isfinite(turnover_per_year)):
            raise ValueError("turnover_per_year must be a positive number (or None: no budget)")
        if not burst >= 2.0:
            raise ValueError("burst must be >= 2 (one full round trip)")
        self.inner = strategy
        self.name = strategy.name
        self.min_hold_bars = min_hold_bars
        self.turnover_per_year = turnover_per_year
        self.rate_per_ns = (turnover_per_year / YEAR_NS) if turnover_per_year else 0.0
        self.burst = float(burst)
        self.state: dict[str, _State] = {}

    def _st(self, symbol: str) -> _State:
        st = self.state.get(symbol)
        if st is None:
            st = self.state[symbol] = _State(self.burst)
        return st

    def _refill(self, st: _State, ts: int) -> None:
        if st.last_ts is not None and ts > st.last_ts and self.turnover_per_year:
            st.tokens = min(self.burst, st.tokens + (ts - st.last_ts) * self.rate_per_ns)
        if st.last_ts is None or ts > st.last_ts:
            st.last_ts = ts

    def _wish(self, st: _State, it: StrategyTarget | None) -> None:
        if it is not None:
            st.want = float(it.target)
            st.conf, st.reason = it.confidence, it.reason
            if st.skip is not None and st.want != st.skip:
                st.skip = None

    def _apply(self, symbol: str, ts: int, st: _State) -> StrategyTarget | None:
        want, eff = st.want, st.eff
        if want == eff or want == st.skip:
            return None
        if eff != 0.0 and st.held < self.min_hold_bars:
            return None  # held too briefly: wait
        new = want
        reduction = want * eff >= 0.0 and abs(want) <= abs(eff)
        if self.turnover_per_year and not reduction and st.tokens < abs(want - eff):
            st.skip = want
            st.skipped += 1
            new = 0.0 if want * eff < 0.0 else eff  # a flip still exits; an entry or increase is skipped
            if new == eff:
                return None
        st.tokens -= abs(new - eff)
        st.spent += abs(new - eff)
        st.eff, st.held = new, 0
        return StrategyTarget(self.name, symbol, ts, new, confidence=st.conf, reason=st.reason)

    def target(self, symbol: str) -> float:
        """The target passed on for ``symbol`` (fraction of the strategy's capital)."""
        st = self.state.get(symbol)
        return st.eff if st is not None else 0.0

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
        st = self._st(symbol)
        self._refill(st, ts)
        st.held += 1
        self._wish(st, self.inner.on_bar(symbol, ts, close, features, score=score, bar=bar))
        return self._apply(symbol, ts, st)

    def on_signal(self, signal: Any) -> StrategyTarget | None:
        """Pass a signal to the wrapped strategy when it takes signals (None otherwise)."""
        if not hasattr(self.inner, "on_signal"):
            return None
        st = self._st(signal.symbol)
        self._refill(st, signal.ts)
        self._wish(st, self.inner.on_signal(signal))
        return self._apply(signal.symbol, signal.ts, st)
