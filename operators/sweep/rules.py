"""The strategy rules of the sweep, vectorised: the wanted position (a fraction of equity in [-1, 1]) of every
parameter set at every bar close, as a (P, T) array for :func:`operators.sweep.simulation.simulate`.

Positions of the two rules (hysteresis: enter beyond ``entry``, leave inside ``exit``, otherwise hold):

* trend (:func:`trend_positions`): the ``ema_spread`` feature (EMA12 - EMA26) / close of ``operators.features``
  (same numbers: :func:`ema_spread`), the rule of ``operators.strategies.EmaSpreadTrend``;
* mean reversion (:func:`zscore_positions`): rolling z-score of the close, the rule of
  ``operators.strategies.ZScoreReversion`` (without its optional stop).

Any other strategy of ``operators.strategies`` (event-driven, one bar at a time) gives its targets through
:func:`strategy_targets`.

>>> import numpy as np
>>> trend_positions(np.array([np.nan, 0.02, 0.005, 0.0, -0.03]), np.array([0.01]), np.array([0.002])).tolist()
[[0.0, 1.0, 1.0, 0.0, -1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from operators.features.core import PARAMS_V1
from operators.sweep.simulation import BarArrays

__all__ = [
    "hysteresis_positions",
    "trend_positions",
    "ema_spread",
    "rolling_zscore_array",
    "zscore_positions",
    "strategy_targets",
]


def hysteresis_positions(long_on: np.ndarray, short_on: np.ndarray, flat_on: np.ndarray) -> np.ndarray:
    """(P, T) positions from event masks: a bar with ``long_on`` sets +1, else ``short_on`` −1, else ``flat_on`` 0,
    else the previous position is held (0 before any event).

    >>> hysteresis_positions(np.array([[0, 1, 0, 0]], bool), np.array([[0, 0, 0, 1]], bool),
    ...                      np.array([[1, 0, 0, 0]], bool)).tolist()
    [[0.0, 1.0, 1.0, -1.0]]
    """
    code: np.ndarray = np.full(long_on.shape, np.nan)
    code[flat_on] = 0.0
    code[short_on] = -1.0
    code[long_on] = 1.0
    T = code.shape[1]
    idx = np.where(np.isnan(code), -1, np.arange(T))
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(code, np.maximum(idx, 0), axis=1)
    out[idx < 0] = 0.0
    return out


def trend_positions(spread: ArrayLike, entry: ArrayLike, exit: ArrayLike, allow_short: bool = True) -> np.ndarray:
    """``EmaSpreadTrend`` for every (entry, exit) pair: long when ``spread > entry``, short when ``< −entry`` (flat
    when shorts are off), flat when ``|spread| < exit``; ``spread`` (T,) fraction of price, NaN = not warm."""
    s = np.asarray(spread, dtype=np.float64)[None, :]
    e = np.asarray(entry, dtype=np.float64)[:, None]
    x = np.asarray(exit, dtype=np.float64)[:, None]
    up = s > e
    dn = (s < -e) & ~up
    flat = (np.abs(s) < x) & ~up & ~dn
    if not allow_short:
        flat |= dn
        dn = np.zeros_like(dn)
    return hysteresis_positions(up, dn, flat)


def ema_spread(close: np.ndarray, params: Mapping[str, Any] = PARAMS_V1) -> np.ndarray:
    """The ``ema_spread`` feature of ``operators.features`` (core v1) over closes, NaN until the whole feature vector
    is warm (so the same bars decide as in the pipeline); bit-identical to ``compute_features_array``'s column
    (same arithmetic: EMA with ``alpha = 2/(n+1)`` seeded by the ``math.fsum`` SMA of the first n closes).

    >>> ema_spread(np.linspace(100.0, 130.0, 31))[24:27].round(6).tolist()
    [nan, 0.056, 0.055556]
    """
    c = np.asarray(close, dtype=np.float64).tolist()
    out = np.full(len(c), np.nan)
    fast, slow = int(params["ema_fast"]), int(params["ema_slow"])
    warm = max(
        slow - 1,
        int(params["rv_window"]),
        int(params["skew_window"]),
        int(params["rsi_period"]),
        int(params["volz_window"]) - 1,
    )

    def ema(n: int) -> list[float]:
        a = 2.0 / (n + 1)
        b = 1.0 - a
        vals: list[float] = [math.nan] * len(c)  # read only from index n - 1 on, where it is set
        if len(c) < n:
            return vals
        v = math.fsum(c[:n]) / n
        vals[n - 1] = v
        for i in range(n, len(c)):
            v = a * c[i] + b * v
            vals[i] = v
        return vals

    ef, es = ema(fast), ema(slow)
    for i in range(warm, len(c)):
        out[i] = (ef[i] - es[i]) / c[i]
    return out


def rolling_zscore_array(close: np.ndarray, window: int) -> np.ndarray:
    """``(close − SMA) / SD`` (ddof = 1) over the last ``window`` closes including the current one; NaN before the
    window is full or where SD = 0. The numbers of ``ZScoreReversion`` up to float rounding (1e-12 relative).

    >>> rolling_zscore_array(np.array([10.0, 10.0, 7.0, 8.5]), 3).round(4).tolist()
    [nan, nan, -1.1547, 0.0]
    """
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.size, np.nan)
    if c.size < window:
        return out
    w = np.lib.stride_tricks.sliding_window_view(c, window)
    m = w.mean(axis=1)
    sd = np.sqrt(((w - m[:, None]) ** 2).sum(axis=1) / (window - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (c[window - 1 :] - m) / sd, np.nan)
    out[window - 1 :] = z
    return out


def zscore_positions(
    close: np.ndarray, window: np.ndarray, entry_z: np.ndarray, exit_z: np.ndarray, allow_short: bool = True
) -> np.ndarray:
    """``ZScoreReversion`` for every (window, entry_z, exit_z): long when ``z <= −entry_z``, short when
    ``z >= entry_z``, flat when ``|z| <= exit_z``, else hold."""
    window = np.asarray(window).astype(np.int64)
    P = window.size
    out = np.zeros((P, np.asarray(close).size))
    for w in np.unique(window):
        rows = np.nonzero(window == w)[0]
        z = rolling_zscore_array(close, int(w))[None, :]
        e = np.asarray(entry_z, dtype=np.float64)[rows][:, None]
        x = np.asarray(exit_z, dtype=np.float64)[rows][:, None]
        up = z <= -e
        dn = (z >= e) & ~up
        flat = (np.abs(z) <= x) & ~up & ~dn
        if not allow_short:
            flat |= dn
            dn = np.zeros_like(dn)
        out[rows] = hysteresis_positions(up, dn, flat)
    return out


def strategy_targets(
    strategy: Any,
    bars: BarArrays,
    features: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    signals: Sequence[Any] = (),
) -> np.ndarray:
    """Run an event-driven strategy (any of ``operators.strategies``, or an ``Orchestrator``) over ``bars`` and
    return its wanted position after each bar close (T,), for :func:`simulate`. ``features`` (T, F) rows (NaN row
    = not warm: None is passed), ``scores`` (T,) probabilities (NaN = none), ``signals``: ``Signal`` events, each
    delivered (``on_signal``) before the first bar closing after its ``ts``."""
    T = len(bars)
    out = np.zeros(T)
    cur = 0.0
    sigs = sorted(signals, key=lambda s: s.ts)
    j = 0
    mts = bars.mark_ts.tolist()
    closes = bars.close.tolist()

    class _B:
        __slots__ = ("open", "high", "low", "close", "volume")
        open: float
        high: float
        low: float
        close: float
        volume: float

    bar = _B()
    for t in range(T):
        while j < len(sigs) and sigs[j].ts <= mts[t]:
            it = strategy.on_signal(sigs[j]) if hasattr(strategy, "on_signal") else None
            if it is not None:
                cur = it.target
            j += 1
        bar.open, bar.high, bar.low = bars.open[t], bars.high[t], bars.low[t]
        bar.close, bar.volume = closes[t], bars.volume[t]
        fv = None
        if features is not None and not np.isnan(features[t]).any():
            fv = features[t].tolist()
        sc = None if scores is None or scores[t] != scores[t] else float(scores[t])
        it = strategy.on_bar(bars.symbol, mts[t], closes[t], fv, score=sc, bar=bar)
        if it is not None:
            cur = it.target
        out[t] = cur
    return out
