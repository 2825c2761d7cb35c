"""The ``core`` feature set: 14 features per symbol from a stream of bars, incremental and batch from one code path.

Every number is computed by :class:`CoreFeatures`; :func:`compute_features` runs that same object over the
rows of a history, so training and serving cannot disagree (the outputs are bit-identical). Formulas,
units and conventions: ``docs/features.md``. Inputs per bar: ``close, high, low`` (quote currency),
``volume, buy_volume, sell_volume`` (base units), ``vwap`` (quote currency), ``trade_count``.

Rolling windows keep the last ``n`` values in a ring buffer and recompute their statistic exactly
(``math.fsum``, two-pass central moments) on every bar: O(n) with n <= 26, constant in history length, no
drift from running sums, deterministic after a snapshot/restore.

Example:

>>> from collections import namedtuple
>>> B = namedtuple("B", "ts resolution_s high low close volume buy_volume sell_volume vwap trade_count")
>>> f = CoreFeatures(CORE_V1.with_resolution(60))
>>> out = [f.update(B(i * 60_000_000_000, 60, 101 + i % 3, 99 - i % 2, 100 + (i % 5), 10 + i % 4,
...                   6, 4, 100, 7)) for i in range(30)]
>>> out[24] is None, len(out[25])
(True, 14)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from .spec import PINNED_DEFINITIONS, FeatureSet

__all__ = ["CORE_V1", "CoreFeatures", "compute_features", "compute_features_array", "INPUT_COLUMNS"]

FEATURES_V1: tuple[str, ...] = (
    "ret_1",  # log return over 1 bar
    "ret_5",  # log return over 5 bars
    "ret_15",  # log return over 15 bars
    "rv_20",  # std (ddof=1) of the last 20 one-bar log returns, per bar
    "ewma_vol",  # RiskMetrics EWMA volatility of one-bar log returns, per bar
    "rsi_14",  # Wilder RSI, 0..100
    "ema_spread",  # (EMA12 - EMA26) / close, fraction
    "vwap_dist_20",  # close / rolling VWAP(20 bars) - 1, fraction
    "hl_range",  # (high - low) / close, fraction
    "close_pos",  # (close - low) / (high - low), 0..1 (0.5 when high == low)
    "vol_z_20",  # (volume - mean20) / std20 (ddof=1), dimensionless
    "ofi",  # (buy_volume - sell_volume) / (buy_volume + sell_volume), -1..1
    "log_trades",  # log(1 + trade_count)
    "skew_20",  # adjusted Fisher-Pearson skewness of the last 20 one-bar log returns
)

PARAMS_V1: dict[str, Any] = {
    "ret_horizons": [1, 5, 15],
    "rv_window": 20,
    "rv_ddof": 1,
    "ewma_lambda": 0.94,
    "ewma_seed": "first_squared_return",
    "rsi_period": 14,
    "rsi_seed": "sma_of_first_period_changes",
    "ema_fast": 12,
    "ema_slow": 26,
    "ema_seed": "sma_of_first_period_closes",
    "vwap_window": 20,
    "volz_window": 20,
    "volz_ddof": 1,
    "skew_window": 20,
}

#: the default spec at 60 s bars; use ``CORE_V1.with_resolution(s)`` for other bar lengths
CORE_V1 = FeatureSet("core", 1, FEATURES_V1, 60, PARAMS_V1)
PINNED_DEFINITIONS[("core", 1)] = "b96e9013d4475c90"  # never edit: a changed definition is a new version

#: columns the batch function needs
INPUT_COLUMNS = ("close", "high", "low", "volume", "buy_volume", "sell_volume", "vwap", "trade_count")

_NAN = float("nan")


def _std(xs: deque[float], ddof: int) -> tuple[float, float]:
    """(mean, std with ``ddof``) of the buffer, two-pass with exactly rounded sums."""
    n = len(xs)
    m = math.fsum(xs) / n
    ss = math.fsum([(x - m) * (x - m) for x in xs])
    return m, math.sqrt(ss / (n - ddof))


def _skew(xs: deque[float]) -> float:
    """Adjusted Fisher-Pearson sample skewness G1 (as pandas ``rolling().skew()``); 0 if the variance is 0."""
    n = len(xs)
    m = math.fsum(xs) / n
    d = [x - m for x in xs]
    m2 = math.fsum([x * x for x in d]) / n
    if m2 <= 0.0:
        return 0.0
    m3 = math.fsum([x * x * x for x in d]) / n
    m2_15: float = m2**1.5  # (typeshed: float ** float is Any, it may be complex for a negative base)
    return math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2_15


class _Ema:
    """EMA with ``alpha = 2 / (period + 1)`` seeded by the SMA of the first ``period`` values (TA-Lib convention)."""

    __slots__ = ("period", "alpha", "value", "_seed")

    def __init__(self, period: int) -> None:
        self.period = period
        self.alpha = 2.0 / (period + 1)
        self.value: float | None = None
        self._seed: list[float] = []

    def update(self, x: float) -> float | None:
        if self.value is None:
            self._seed.append(x)
            if len(self._seed) == self.period:
                self.value = math.fsum(self._seed) / self.period
                self._seed = []
            return self.value
        self.value = self.alpha * x + (1.0 - self.alpha) * self.value
        return self.value

    def __getstate__(self) -> tuple[int, float, float | None, list[float]]:
        return (self.period, self.alpha, self.value, self._seed)

    def __setstate__(self, s: tuple[int, float, float | None, list[float]]) -> None:
        self.period, self.alpha, self.value, self._seed = s


class _WilderRsi:
    """Wilder RSI over price changes: seed = mean of the first ``period`` gains/losses, then
    ``avg = (avg * (period - 1) + x) / period`` (TA-Lib convention). 50 when there was no change at all."""

    __slots__ = ("period", "gain", "loss", "_sg", "_sl")

    def __init__(self, period: int) -> None:
        self.period = period
        self.gain: float | None = None
        self.loss: float | None = None
        self._sg: list[float] = []
        self._sl: list[float] = []

    def update(self, change: float) -> float | None:
        g = change if change > 0 else 0.0
        lo = -change if change < 0 else 0.0
        p = self.period
        if self.gain is None:
            self._sg.append(g)
            self._sl.append(lo)
            if len(self._sg) < p:
                return None
            gain = self.gain = math.fsum(self._sg) / p
            loss = self.loss = math.fsum(self._sl) / p
            self._sg, self._sl = [], []
        else:
            assert self.loss is not None  # set together with gain
            gain = self.gain = (self.gain * (p - 1) + g) / p
            loss = self.loss = (self.loss * (p - 1) + lo) / p
        tot = gain + loss
        return 50.0 if tot == 0.0 else 100.0 * (gain / tot)  # <= 100 exactly

    def __getstate__(self) -> tuple[int, float | None, float | None, list[float], list[float]]:
        return (self.period, self.gain, self.loss, self._sg, self._sl)

    def __setstate__(self, s: tuple[int, float | None, float | None, list[float], list[float]]) -> None:
        self.period, self.gain, self.loss, self._sg, self._sl = s


class CoreFeatures:
    """Incremental ``core`` features of ONE symbol; ``update(bar)`` once per closed bar, in time order.

    Returns a tuple of floats in ``spec.features`` order once every feature is defined (from the 26th bar:
    the slow EMA needs 26 closes), ``None`` before. Bars with ``revision > 0``, with another
    ``resolution_s`` than the spec, or not newer than the last bar are skipped (counted in ``skipped``)
    and return ``None``. State: a few floats and ring buffers of <= 21 values; picklable.
    """

    def __init__(self, spec: FeatureSet = CORE_V1) -> None:
        if spec.name != "core" or spec.version != 1:
            raise ValueError(f"CoreFeatures implements core@1, got {spec.name}@{spec.version}")
        spec.verify()
        p = spec.params
        self.spec = spec
        self.n_bars = 0
        self.skipped = 0
        self.last_ts: int | None = None
        hmax = max(p["ret_horizons"])
        self._horizons = tuple(p["ret_horizons"])
        self._closes: deque[float] = deque(maxlen=hmax + 1)
        self._rets: deque[float] = deque(maxlen=max(p["rv_window"], p["skew_window"]))
        self._rv_n = p["rv_window"]
        self._rv_ddof = p["rv_ddof"]
        self._sk_n = p["skew_window"]
        self._lam = p["ewma_lambda"]
        self._ewvar: float | None = None
        self._rsi = _WilderRsi(p["rsi_period"])
        self._rsi_last: float | None = None
        self._ema_f = _Ema(p["ema_fast"])
        self._ema_s = _Ema(p["ema_slow"])
        self._pv: deque[float] = deque(maxlen=p["vwap_window"])
        self._vv: deque[float] = deque(maxlen=p["vwap_window"])
        self._vol: deque[float] = deque(maxlen=p["volz_window"])
        self._vz_ddof = p["volz_ddof"]

    @property
    def warm(self) -> bool:
        """True once every feature is defined."""
        return (
            self._ema_s.value is not None
            and len(self._rets) >= max(self._rv_n, self._sk_n)
            and self._rsi_last is not None
            and len(self._vol) == self._vol.maxlen
        )

    def update(self, bar: Any) -> tuple[float, ...] | None:
        """Fold one Bar-like object; the feature values (spec order) or ``None`` until warm / if skipped."""
        if (
            getattr(bar, "revision", 0)
            or getattr(bar, "resolution_s", self.spec.resolution_s) != self.spec.resolution_s
            or (self.last_ts is not None and bar.ts <= self.last_ts)
        ):
            self.skipped += 1
            return None
        self.last_ts = bar.ts
        row = self.step(
            bar.close, bar.high, bar.low, bar.volume, bar.buy_volume, bar.sell_volume, bar.vwap, bar.trade_count
        )
        return row if self.warm else None

    def step(
        self,
        close: float,
        high: float,
        low: float,
        volume: float,
        buy_volume: float,
        sell_volume: float,
        vwap: float,
        trade_count: float,
    ) -> tuple[float, ...]:
        """Fold one bar given as numbers (no ordering checks); every feature value, NaN where not yet defined."""
        self.n_bars += 1
        nan = _NAN
        closes = self._closes
        prev = closes[-1] if closes else None
        closes.append(close)
        nc = len(closes)
        lc = math.log(close)
        r = [lc - math.log(closes[-1 - h]) if nc > h else nan for h in self._horizons]
        rets = self._rets
        if prev is not None:
            r1 = r[0]
            rets.append(r1)
            self._ewvar = r1 * r1 if self._ewvar is None else self._lam * self._ewvar + (1.0 - self._lam) * r1 * r1
            self._rsi_last = self._rsi.update(close - prev)
        nr = len(rets)
        if nr >= self._rv_n:
            buf = rets if nr == self._rv_n else deque(list(rets)[-self._rv_n :])
            rv = _std(buf, self._rv_ddof)[1]
        else:
            rv = nan
        if nr >= self._sk_n:
            sk = _skew(rets if nr == self._sk_n else deque(list(rets)[-self._sk_n :]))
        else:
            sk = nan
        ewv = math.sqrt(self._ewvar) if self._ewvar is not None else nan
        rsi = self._rsi_last if self._rsi_last is not None else nan
        ef = self._ema_f.update(close)
        es = self._ema_s.update(close)
        spread = (ef - es) / close if ef is not None and es is not None else nan
        self._pv.append(vwap * volume)
        self._vv.append(volume)
        if len(self._vv) == self._vv.maxlen:
            sv = math.fsum(self._vv)
            vwap_dist = close / (math.fsum(self._pv) / sv) - 1.0 if sv > 0 else 0.0
        else:
            vwap_dist = nan
        rng = high - low
        hl = rng / close
        pos = (close - low) / rng if rng > 0 else 0.5
        self._vol.append(volume)
        if len(self._vol) == self._vol.maxlen:
            m, sd = _std(self._vol, self._vz_ddof)
            vz = (volume - m) / sd if sd > 0 else 0.0
        else:
            vz = nan
        bs = buy_volume + sell_volume
        ofi = (buy_volume - sell_volume) / bs if bs > 0 else 0.0
        return (r[0], r[1], r[2], rv, ewv, rsi, spread, vwap_dist, hl, pos, vz, ofi, math.log1p(trade_count), sk)


def compute_features_array(cols: Mapping[str, Any], spec: FeatureSet = CORE_V1) -> np.ndarray:
    """Batch features over one symbol's time-ordered bars given as columns (:data:`INPUT_COLUMNS`).

    Runs :class:`CoreFeatures` row by row; returns float64 ``(n_bars, n_features)``, rows before warm-up NaN
    (exactly where ``update`` returns ``None``).
    """
    missing = [c for c in INPUT_COLUMNS if c not in cols]
    if missing:
        raise KeyError(f"missing bar columns: {missing}")
    arrs = [np.asarray(cols[c], dtype=np.float64).tolist() for c in INPUT_COLUMNS]
    f = CoreFeatures(spec)
    nfeat = len(spec.features)
    out = np.full((len(arrs[0]), nfeat), np.nan)
    step = f.step
    for i, row in enumerate(zip(*arrs, strict=True)):
        v = step(*row)
        if f.warm:
            out[i] = v
    return out


def compute_features(bars: Any, spec: FeatureSet = CORE_V1) -> Any:
    """:func:`compute_features_array` for a pandas DataFrame; returns a DataFrame on the same index."""
    import pandas as pd

    return pd.DataFrame(compute_features_array(bars, spec), index=bars.index, columns=list(spec.features))
