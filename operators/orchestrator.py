"""Capital allocation between strategies: static weights or risk parity, per-strategy caps, netting per symbol.

The :class:`Orchestrator` is itself a strategy (same ``on_bar`` call, plus ``on_signal``): the pipeline keeps
one instead of a single strategy and receives one netted :class:`~operators.strategies.StrategyTarget` per symbol.

Definitions (per symbol; the pipeline keeps one orchestrator per symbol, so "per symbol" is its whole state):

* ``t_i``: strategy *i*'s latest target (fraction of capital, −1..1), 0 before its first intent.
* **Strategy return** at a bar: ``r_i = t_i(previous bar) * (close / previous close − 1)`` (fraction; costs
  ignored), so ``σ_i`` measures the risk the strategy takes, not its fills.
* **Weights** ``w_i`` (sum 1). ``allocation="static"``: the given weights normalised (default equal).
  ``allocation="risk_parity"``: inverse volatility, ``w_i ∝ 1 / σ_i`` with ``σ_i`` the standard deviation
  (ddof = 1) of the last ``vol_window`` strategy returns (default 480 bars = 10 days of 30-minute bars);
  ``σ_i`` is floored at ``vol_floor * σ_asset`` (``σ_asset``: std of the close-to-close returns over the same
  window) so a strategy that sat flat does not get an unbounded weight. Until ``min_periods`` returns exist
  the static weights are used. The weights are refreshed every ``rebalance_bars`` bars (default 48 = a day of
  30-minute bars) and frozen in between, so a drifting volatility estimate alone does not re-allocate (and pay
  fees) every bar. The windows keep exact running sums (:class:`RollingStd`: integers in units of 2**-1074, so
  removing the value that leaves the window never rounds): O(1) per bar instead of O(``vol_window``), equal to
  the exact standard deviation to rounding.
* **Caps**: strategy *i*'s contribution ``c_i = clip(w_i * t_i, −cap_i, cap_i)`` (``caps``: fraction of capital
  per strategy, default 1 = no cap).
* **Trade discipline** per strategy (:class:`~operators.strategies.discipline.TradeDiscipline`, applied to each
  strategy's wishes before netting): a position is held at least ``min_hold_bars`` bars (default 4, the label
  horizon of the walk-forward's model), and each strategy has a turnover budget of ``turnover_per_year`` units of
  ``|Δ target|`` a year (default 26: thirteen full round trips; ``burst`` = 8 units banked at most, full at
  the start); an entry it cannot afford is skipped, exits always pass. ``min_hold_bars=0,
  turnover_per_year=None`` turns it off.
* **Net target** ``clip(Σ c_i, −max_gross, max_gross)``: the strategies' wishes are netted first, and only the
  net is traded. A new intent is emitted when it moves by at least ``min_change`` (the no-trade band, default
  0.1 of capital) from the last emitted target, or reaches exactly 0 (an exit is never held back).
  Its confidence is the ``|c_i|``-weighted mean of the strategies' last confidences; its reason lists
  the contributions (``trend:+0.250,zscore_mr:-0.100``).

Pure, deterministic and picklable (plain containers; ``pickle`` round trips keep the full state).

>>> from operators.strategies import MLScoreThreshold, ZScoreReversion
>>> o = Orchestrator([MLScoreThreshold(rule="threshold", name="ml"), ZScoreReversion(window=3, name="mr")],
...                  caps={"ml": 0.3})
>>> o.on_bar("BTC-USD", 1, 100.0, None, score=0.9).target     # ml wants +1, weight 0.5, capped at 0.3
0.3
>>> o.weights("BTC-USD")
{'ml': 0.5, 'mr': 0.5}
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from operators.strategies.base import StrategyTarget
from operators.strategies.discipline import TradeDiscipline
from schemas.events import Signal

__all__ = ["Orchestrator", "RollingStd", "default_portfolio"]

_SHIFT = 1074  # every finite float is an integer multiple of 2**-1074


def _fixed(x: float) -> tuple[int, int]:
    """``(x * 2**1074, x*x * 2**2148)`` as exact integers (``x`` finite); the square from the 53-bit numerator."""
    num, den = x.as_integer_ratio()
    k = _SHIFT - den.bit_length() + 1
    return num << k, (num * num) << (2 * k)


class RollingStd:
    """Sample standard deviation (ddof = 1) of the last ``window`` values, O(1) per value and exact.

    The sum and the sum of squares are kept as Python integers in units of 2**-1074 and 2**-2148, where every
    float (and its square) is an exact integer, so adding the new value and removing the one that leaves the
    window never rounds, however long the stream; the variance ``(n*S2 - S1**2) / (n*(n-1))`` is then one
    correctly rounded integer division. Non-finite values make the result ``nan`` while they are in the window.

    >>> r = RollingStd(3)
    >>> for x in (1.0, 2.0, 4.0, 8.0):
    ...     r.push(x)
    >>> r.values(), r.std() == math.sqrt(28 / 3)      # the window holds 2, 4, 8: variance 28/3
    ([2.0, 4.0, 8.0], True)
    """

    __slots__ = ("window", "xs", "s1", "s2", "bad", "_std")

    def __init__(self, window: int) -> None:
        if window < 2:
            raise ValueError("window must be >= 2")
        self._reset(window)

    def _reset(self, window: int) -> None:
        self.window = window
        self.xs: deque[float] = deque()
        self.s1 = 0  # sum of x, units 2**-1074
        self.s2 = 0  # sum of x*x, units 2**-2148
        self.bad = 0  # non-finite values in the window
        self._std: float | None = None  # cached result, cleared by push

    def __len__(self) -> int:
        return len(self.xs)

    def values(self) -> list[float]:
        return list(self.xs)

    def _add(self, x: float, sign: int) -> None:
        if math.isfinite(x):
            v, v2 = _fixed(x)
            if sign > 0:
                self.s1 += v
                self.s2 += v2
            else:
                self.s1 -= v
                self.s2 -= v2
        else:
            self.bad += sign

    def push(self, x: float) -> None:
        x = float(x)
        if len(self.xs) == self.window:
            self._add(self.xs.popleft(), -1)
        self.xs.append(x)
        self._add(x, 1)
        self._std = None

    def std(self) -> float:
        """Sample standard deviation of the window (``nan`` with fewer than 2 values or a non-finite one)."""
        if self._std is None:
            n = len(self.xs)
            if n < 2 or self.bad:
                self._std = math.nan
            else:
                num = n * self.s2 - self.s1 * self.s1  # >= 0 exactly (Cauchy-Schwarz)
                self._std = math.sqrt(num / ((n * (n - 1)) << (2 * _SHIFT)))
        return self._std

    def __getstate__(self) -> tuple[int, list[float]]:
        return (self.window, list(self.xs))  # the sums are rebuilt from the values

    def __setstate__(self, state: tuple[int, list[float]]) -> None:
        window, xs = state
        self._reset(window)
        for x in xs:
            self.push(x)


class Orchestrator:
    """Allocate between ``strategies`` (each with a unique ``name``); see the module docstring for the rules."""

    def __init__(
        self,
        strategies: Sequence[Any],
        *,
        allocation: str = "static",
        weights: Mapping[str, float] | None = None,
        caps: Mapping[str, float] | float = 1.0,
        vol_window: int = 480,
        min_periods: int = 96,
        vol_floor: float = 0.25,
        max_gross: float = 1.0,
        min_change: float = 0.1,
        rebalance_bars: int = 48,
        min_hold_bars: int = 4,
        turnover_per_year: float | None = 26.0,
        burst: float = 8.0,
        name: str = "portfolio",
    ) -> None:
        names = [s.name for s in strategies]
        if not names or len(set(names)) != len(names):
            raise ValueError("need at least one strategy, with unique names")
        if allocation not in ("static", "risk_parity"):
            raise ValueError("allocation must be 'static' or 'risk_parity'")
        if vol_window < 2 or not 2 <= min_periods <= vol_window:
            raise ValueError("need vol_window >= 2 and 2 <= min_periods <= vol_window")
        if vol_floor < 0 or max_gross <= 0 or min_change < 0 or rebalance_bars < 1:
            raise ValueError("need vol_floor >= 0, max_gross > 0, min_change >= 0, rebalance_bars >= 1")
        raw = {n: float((weights or {}).get(n, 1.0 if weights is None else 0.0)) for n in names}
        if any(w < 0 for w in raw.values()) or sum(raw.values()) <= 0:
            raise ValueError("static weights must be >= 0 with a positive sum")
        tot = sum(raw.values())
        self.static = {n: w / tot for n, w in raw.items()}
        self.caps = {n: float(caps.get(n, 1.0)) if isinstance(caps, Mapping) else float(caps) for n in names}
        self.name = name
        if min_hold_bars or turnover_per_year:
            strategies = [
                TradeDiscipline(st, min_hold_bars=min_hold_bars, turnover_per_year=turnover_per_year, burst=burst)
                for st in strategies
            ]
        self.strategies = list(strategies)
        self.rebalance_bars = rebalance_bars
        self.min_hold_bars, self.turnover_per_year, self.burst = min_hold_bars, turnover_per_year, burst
        self.cached_weights: dict[str, tuple[int, dict[str, float]]] = {}  # symbol -> (epoch, weights)
        self.names = names
        self.allocation = allocation
        self.vol_window, self.min_periods, self.vol_floor = vol_window, min_periods, vol_floor
        self.max_gross, self.min_change = max_gross, min_change
        self.targets: dict[str, dict[str, float]] = {}  # symbol -> strategy -> target
        self.confidence: dict[str, dict[str, float]] = {}  # symbol -> strategy -> last confidence
        self.returns: dict[str, dict[str, RollingStd]] = {}  # symbol -> strategy -> recent strategy returns
        self.asset_returns: dict[str, RollingStd] = {}
        self.prev_close: dict[str, float] = {}
        self.n_returns: dict[str, int] = {}  # symbol -> returns booked (bars after the first)
        self.emitted: dict[str, float] = {}
        self.last_contributions: dict[str, float] = {}  # c_i of the last netting (fraction of capital)

    # ---------------------------------------------------------------------------------------------- weights
    def _sym(self, symbol: str) -> None:
        if symbol not in self.targets:
            self.targets[symbol] = dict.fromkeys(self.names, 0.0)
            self.confidence[symbol] = dict.fromkeys(self.names, 0.0)
            self.returns[symbol] = {n: RollingStd(self.vol_window) for n in self.names}
            self.asset_returns[symbol] = RollingStd(self.vol_window)

    def weights(self, symbol: str) -> dict[str, float]:
        """Current weights of the strategies for ``symbol`` (sum 1)."""
        self._sym(symbol)
        n = self.n_returns.get(symbol, 0)
        if self.allocation == "static" or n < self.min_periods:
            return dict(self.static)
        epoch = (n - self.min_periods) // self.rebalance_bars
        hit = self.cached_weights.get(symbol)
        if hit is not None and hit[0] == epoch:
            return dict(hit[1])
        w = self._risk_parity(symbol)
        self.cached_weights[symbol] = (epoch, w)
        return dict(w)

    def _risk_parity(self, symbol: str) -> dict[str, float]:
        floor = self.vol_floor * self.asset_returns[symbol].std()
        inv = {}
        for n in self.names:
            s = max(self.returns[symbol][n].std(), floor)
            inv[n] = 1.0 / s if s > 0 else 0.0
        tot = sum(inv.values())
        if tot <= 0:
            return dict(self.static)
        return {n: v / tot for n, v in inv.items()}

    def contributions(self, symbol: str) -> dict[str, float]:
        """Each strategy's capped contribution ``c_i`` to the net target of ``symbol`` (fraction of capital)."""
        w = self.weights(symbol)
        t = self.targets[symbol]
        return {n: max(-self.caps[n], min(self.caps[n], w[n] * t[n])) for n in self.names}

    # ---------------------------------------------------------------------------------------------- events
    def _net(self, symbol: str, ts: int) -> StrategyTarget | None:
        c = self.contributions(symbol)
        self.last_contributions = c
        net = max(-self.max_gross, min(self.max_gross, math.fsum(c.values())))
        net = round(net, 12)
        last = self.emitted.get(symbol, 0.0)
        if net == last or (abs(net - last) < self.min_change and net != 0.0):
            return None
        self.emitted[symbol] = net
        tot = sum(abs(v) for v in c.values())
        conf = (sum(abs(c[n]) * self.confidence[symbol][n] for n in self.names) / tot) if tot > 0 else 0.0
        reason = ",".join(f"{n}:{v:+.3f}" for n, v in c.items() if v != 0.0)
        return StrategyTarget(self.name, symbol, ts, net, confidence=min(1.0, max(0.0, conf)), reason=reason[:200])

    def _take(self, symbol: str, intent: StrategyTarget | None, name: str) -> None:
        if intent is not None:
            self.targets[symbol][name] = float(intent.target)
            self.confidence[symbol][name] = float(intent.confidence)

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
        """Book the strategies' returns of the bar, run every strategy, return the netted intent (or None)."""
        self._sym(symbol)
        prev = self.prev_close.get(symbol)
        if prev is not None and prev > 0:
            r = float(close) / prev - 1.0
            self.asset_returns[symbol].push(r)
            self.n_returns[symbol] = self.n_returns.get(symbol, 0) + 1
            for n in self.names:
                self.returns[symbol][n].push(self.targets[symbol][n] * r)
        self.prev_close[symbol] = float(close)
        for s in self.strategies:
            self._take(symbol, s.on_bar(symbol, ts, close, features, score=score, bar=bar), s.name)
        return self._net(symbol, ts)

    def on_signal(self, signal: Signal) -> StrategyTarget | None:
        """Route a Telegram signal to the strategies that take signals; the netted intent of its symbol."""
        self._sym(signal.symbol)
        for s in self.strategies:
            if hasattr(s, "on_signal"):
                self._take(signal.symbol, s.on_signal(signal), s.name)
        return self._net(signal.symbol, signal.ts)


def default_portfolio(cfg: Any) -> Orchestrator:
    """The full mode's five strategies under one orchestrator, built from a pipeline configuration
    (``operators.pipeline.PipelineConfig``): the EMA trend with ``cfg.trend_entry``/``trend_exit``/``allow_short``,
    the ML score's edge rule with the costs of ``cfg.broker`` (:meth:`CostModel.from_broker`) and the label
    horizon of ``cfg.scorer`` (``horizon_bars``), z-score reversion, volatility breakout and the Telegram follower
    with their defaults, ``cfg.allocation``, and the orchestrator's discipline with ``cfg.orchestrator_args``.

    >>> from operators.pipeline import PipelineConfig
    >>> o = default_portfolio(PipelineConfig())
    >>> o.names, round(o.strategies[1].inner.hurdle * 1e4, 2)      # 1.5 x the 19 bps round trip
    (['trend', 'ml_score', 'zscore_mr', 'vol_breakout', 'tg_follow'], 28.5)
    """
    from operators.strategies import (
        EmaSpreadTrend,
        MLScoreThreshold,
        SignalFollower,
        VolatilityBreakout,
        ZScoreReversion,
    )
    from operators.strategies.costs import CostModel

    trend = EmaSpreadTrend(cfg.trend_entry, cfg.trend_exit, cfg.allow_short)
    ml = MLScoreThreshold(cost=CostModel.from_broker(cfg.broker), horizon_bars=max(1, int(cfg.scorer.horizon_bars)))
    return Orchestrator(
        [trend, ml, ZScoreReversion(), VolatilityBreakout(), SignalFollower()],
        allocation=cfg.allocation,
        **dict(getattr(cfg, "orchestrator_args", ())),
    )
