"""Performance statistics of an equity curve: returns, Sharpe, Sortino, drawdown, CAGR, Calmar, turnover,
hit rate, VaR breaches with Kupiec's test; batch (:func:`summarize`) and streaming (:class:`EquityTracker`).

Pure and deterministic: numpy arrays in, plain Python floats out; no I/O, no clock. This module is the one home
of these statistics: the flow's summary, the report, the sweep and the walk-forward all call it.

**Along the last axis.** The curve statistics (returns, Sharpe, Sortino, volatility, drawdown, total return,
CAGR, Calmar, turnover) take one curve, shape ``(T,)``, and return a Python ``float``; or a stack of curves,
shape ``(..., T)`` (the sweep's ``(P, T)``: one row per parameter set), and return an array of shape ``(...)``,
each element the number the same function gives on that row alone, bit for bit.

Inputs and conventions
----------------------
* ``ts``: int64 ns since the Unix epoch (UTC), non-decreasing; ``equity``: account value in quote currency
  (e.g. USD) at each ``ts``, finite and strictly positive (a returns-based statistic is meaningless past
  ruin, so a non-positive mark raises ``ValueError``).
* **Period return** ``r_t = equity[t] / equity[t-1] - 1`` (simple return, fraction), ``t = 1 .. n-1``.
* **Annualisation** (crypto trades 24/7): ``periods_per_year = 365 * 86400 / period_s`` for bars of
  ``period_s`` seconds (30 min bars: 17,520). When not given, ``period_s`` is the median spacing of ``ts``.
* **Sharpe** = ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``; risk-free rate 0. NaN with fewer than
  2 returns or a zero standard deviation (a flat curve).
* **Sortino** = ``mean(r) / DD * sqrt(periods_per_year)`` with the downside deviation for target 0
  ``DD = sqrt(mean(min(r, 0)^2))`` (mean over *all* returns, divide by n). NaN when ``DD == 0`` (no losing
  period) or there are no returns.
* **Drawdown** at ``t`` = ``(peak_t - equity[t]) / peak_t`` with ``peak_t = max(equity[:t+1])``: a
  *positive* fraction in ``[0, 1)`` (0.23 = 23 % below the running peak). **Max drawdown** is its maximum.
  **Max drawdown duration** (s): the longest time from a peak to the mark that regains it (a mark ``>=`` the
  peak), or to the last mark when not regained.
* **Years** = ``(ts[-1] - ts[0]) / (365 * 86400 s)``. **Total return** = ``equity[-1] / equity[0] - 1``.
  **CAGR** = ``(equity[-1] / equity[0]) ** (1 / years) - 1`` (NaN when ``years == 0``; may be ``inf`` when a
  gain is compounded over a very short span). **Calmar** = ``CAGR / max drawdown`` (NaN when max drawdown is 0).
* **Turnover** (per year) = ``sum(|price * qty|)`` over fills ``/ mean(equity)`` (simple mean of the marks)
  ``/ years``: 12 means the average equity was traded twelve times a year.
* **Hit rate** = share of closed round-trip trades with realised P&L ``> 0`` (a zero P&L is not a hit);
  NaN without trades.
* **VaR breaches**: ``var_forecasts[i]`` is the VaR forecast (return sign, a loss is negative, as in
  ``operators.risk``) for return ``r[i]``; a breach is ``r < VaR`` (strictly); NaN forecasts (warm-up) are
  not counted. **Kupiec POF**: ``n`` forecasts, ``x`` breaches, expected rate ``p = 1 - alpha``, ``p̂ = x/n``,
  ``LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-p̂)^(n-x) p̂^x]`` (``0 ln 0 = 0``), χ²(1) under a correct VaR
  model; ``p_value = P(χ²(1) > LR) = erfc(sqrt(LR / 2))``.

Summary keys carry their unit in the suffix (``connectors.report`` formats by it): ``_frac`` a fraction
(0.05 = 5 %), ``_quote`` quote currency, ``_ns`` an epoch timestamp in ns (UTC), ``_s`` seconds,
``_per_year`` a rate per year; ``n_*`` counts; ``sharpe``, ``sortino``, ``calmar``, ``kupiec_lr`` and
``kupiec_p_value`` are plain numbers.

>>> ts = np.arange(4, dtype=np.int64) * 86_400 * 10**9            # daily marks
>>> s = summarize(ts, np.array([100.0, 110.0, 99.0, 120.0]), period_s=86_400)
>>> s["max_drawdown_frac"], round(s["total_return_frac"], 12), round(s["sharpe"], 4)
(0.1, 0.2, 8.5438)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from operators.risk.backtest import KupiecResult, kupiec_pof
from operators.risk.standard_normal import chi2_1_sf, norm_cdf, norm_ppf
from schemas.time import NS_PER_S

__all__ = [
    "NS_PER_S",
    "SECONDS_PER_YEAR",
    "KupiecResult",
    "EquityTracker",
    "periods_per_year",
    "infer_period_s",
    "period_returns",
    "sharpe",
    "sortino",
    "volatility",
    "drawdown_series",
    "max_drawdown",
    "max_drawdown_duration_s",
    "total_return",
    "span_years",
    "years_between",
    "annual_growth",
    "cagr",
    "calmar",
    "traded_notional",
    "turnover",
    "hit_rate",
    "var_breach_count",
    "chi2_1_sf",
    "kupiec_pof",
    "summarize",
    "rolling_sharpe_vol",
    "drawdown_periods",
    "calendar_returns",
    "skew_kurtosis",
    "win_loss",
    "probabilistic_sharpe",
    "expected_max_sharpe",
    "deflated_sharpe",
]

SECONDS_PER_YEAR = 365 * 86_400  # crypto: 24/7, 365-day year
NAN = float("nan")
# what a curve statistic returns: a float for one curve (T,), an ndarray (...) for a stack of curves (..., T)
FloatOrArray = Any
_REL_ZERO_STD = 1e-12  # std below this fraction of |mean| is rounding noise of a constant series: Sharpe NaN


# --------------------------------------------------------------------------------------------------- inputs


def _out(a: Any) -> FloatOrArray:
    """A 0-d result as a Python float, anything else as the array."""
    x = np.asarray(a, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _as_equity(equity: Any, *, stack: bool = True) -> np.ndarray:
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim == 0 or e.shape[-1] == 0 or (not stack and e.ndim != 1):
        raise ValueError(
            f"equity must be a non-empty {'array (..., T)' if stack else '1-d array'}, got shape {e.shape}"
        )
    if not np.all(np.isfinite(e)) or np.any(e <= 0.0):
        raise ValueError("equity must be finite and strictly positive")
    return e


def _as_ts(ts: Any, n: int) -> np.ndarray:
    t = np.asarray(ts, dtype=np.int64)
    if t.shape != (n,):
        raise ValueError(f"ts must have shape ({n},), got {t.shape}")
    if n > 1 and np.any(np.diff(t) < 0):
        raise ValueError("ts must be non-decreasing (event-time order)")
    return t


def _as_returns(returns: Any, *, stack: bool = True) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 0 or (not stack and r.ndim != 1):
        raise ValueError(f"returns must be {'an array (..., T)' if stack else '1-d'}, got shape {r.shape}")
    return r


# ------------------------------------------------------------------------------------------- annualisation


def periods_per_year(period_s: float) -> float:
    """Bars per (365-day, 24/7) year for bars of ``period_s`` seconds: ``365*86400/period_s``.

    >>> periods_per_year(86_400), periods_per_year(1800)
    (365.0, 17520.0)
    """
    if not period_s > 0 or not math.isfinite(period_s):
        raise ValueError(f"period_s must be positive and finite, got {period_s}")
    return SECONDS_PER_YEAR / float(period_s)


def infer_period_s(ts: Any) -> float:
    """Median spacing of ``ts`` (ns) in seconds; NaN with fewer than 2 marks or a zero median.

    >>> infer_period_s(np.array([0, 1800, 3600, 7200]) * NS_PER_S)
    1800.0
    """
    t = np.asarray(ts, dtype=np.int64)
    if t.size < 2:
        return NAN
    med = float(np.median(np.diff(t))) / NS_PER_S
    return med if med > 0 else NAN


# ------------------------------------------------------------------------------------------------- returns


def period_returns(equity: Any) -> np.ndarray:
    """Simple period returns ``equity[..., 1:] / equity[..., :-1] - 1`` (fractions, one fewer along the last axis).

    >>> period_returns([100.0, 110.0, 99.0]).round(12).tolist()
    [0.1, -0.1]
    """
    e = _as_equity(equity)
    r: np.ndarray = e[..., 1:] / e[..., :-1] - 1.0
    return r


def _sharpe_from_moments(n: int, mean: Any, std: Any, ppy: float) -> FloatOrArray:
    # shared by the batch function and the streaming tracker: the one Sharpe formula
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if n < 2:
        return _out(np.full(mean.shape, NAN))
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (std > 0) & ~(std <= _REL_ZERO_STD * np.abs(mean))
        return _out(np.where(ok, mean / std * math.sqrt(ppy), NAN))


def sharpe(returns: Any, periods_per_year: float) -> FloatOrArray:
    """Annualised Sharpe ratio ``mean(r)/std(r, ddof=1)*sqrt(periods_per_year)`` along the last axis, risk-free 0;
    NaN if undefined.

    >>> round(sharpe(np.array([0.01, -0.005, 0.02]), 365.0), 6)
    12.652578
    >>> sharpe(np.zeros(5), 365.0)
    nan
    >>> sharpe(np.array([[0.01, -0.005, 0.02], [0.0, 0.0, 0.0]]), 365.0).round(6).tolist()
    [12.652578, nan]
    """
    r = _as_returns(returns)
    n = r.shape[-1]
    if n < 2:
        return _out(np.full(r.shape[:-1], NAN))
    return _sharpe_from_moments(n, r.mean(axis=-1), r.std(axis=-1, ddof=1), periods_per_year)


def volatility(returns: Any, periods_per_year: float) -> FloatOrArray:
    """Annualised volatility ``std(r, ddof=1)*sqrt(periods_per_year)`` along the last axis (fraction); NaN with
    fewer than 2 returns.

    >>> round(volatility(np.array([0.01, -0.01]), 4.0), 6)
    0.028284
    """
    r = _as_returns(returns)
    if r.shape[-1] < 2:
        return _out(np.full(r.shape[:-1], NAN))
    return _out(r.std(axis=-1, ddof=1) * math.sqrt(periods_per_year))


def _sortino_from_moments(n: int, mean: Any, downside_sq_sum: Any, ppy: float) -> FloatOrArray:
    # a downside deviation below this fraction of |mean| is rounding noise (a "loss" of -2e-16 from dividing
    # equal equities), not a loss: NaN as without losses, the same rule as Sharpe's
    mean, dss = np.asarray(mean, dtype=np.float64), np.asarray(downside_sq_sum, dtype=np.float64)
    if n < 1:
        return _out(np.full(mean.shape, NAN))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.sqrt(dss / n)
        ok = (dss > 0) & ~(dd <= _REL_ZERO_STD * np.abs(mean))
        return _out(np.where(ok, mean / dd * math.sqrt(ppy), NAN))


def sortino(returns: Any, periods_per_year: float) -> FloatOrArray:
    """Annualised Sortino ratio ``mean(r)/sqrt(mean(min(r,0)^2))*sqrt(periods_per_year)`` along the last axis;
    NaN without losses.

    >>> round(sortino(np.array([0.02, -0.01, 0.01, -0.02]), 365.0), 6)
    0.0
    >>> round(sortino(np.array([0.03, -0.01]), 1.0), 6)
    1.414214
    """
    r = _as_returns(returns)
    n = r.shape[-1]
    if n == 0:
        return _out(np.full(r.shape[:-1], NAN))
    d = np.minimum(r, 0.0)
    return _sortino_from_moments(n, r.mean(axis=-1), np.vecdot(d, d), periods_per_year)


# ------------------------------------------------------------------------------------------------ drawdown


def peak_and_drawdown(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The running peak along the last axis and the drawdown below it, ``peak - values``, in the units of
    ``values`` (any finite numbers: a P&L may be negative). The fraction of the peak is :func:`drawdown_series`.

    >>> [a.tolist() for a in peak_and_drawdown([-1.0, 19.0, -21.0])]
    [[-1.0, 19.0, 19.0], [0.0, 0.0, 40.0]]
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"values must be a finite array (..., T), got shape {x.shape}")
    peak = np.maximum.accumulate(x, axis=-1)
    return peak, peak - x


def drawdown_series(equity: Any) -> np.ndarray:
    """Drawdown below the running peak along the last axis, ``(peak - equity) / peak``, positive fractions in
    ``[0, 1)``.

    >>> drawdown_series([100.0, 110.0, 99.0, 120.0]).tolist()
    [0.0, 0.0, 0.1, 0.0]
    """
    peak, below = peak_and_drawdown(_as_equity(equity))
    dd: np.ndarray = below / peak
    return dd


def max_drawdown(equity: Any) -> FloatOrArray:
    """Largest drawdown along the last axis as a positive fraction of the running peak (0.23 = 23 %).

    >>> max_drawdown([100.0, 110.0, 99.0, 120.0])
    0.1
    >>> max_drawdown([[100.0, 110.0, 99.0, 120.0], [100.0, 50.0, 60.0, 70.0]]).tolist()
    [0.1, 0.5]
    """
    return _out(drawdown_series(equity).max(axis=-1))


def max_drawdown_duration_s(ts: Any, equity: Any) -> float:
    """Longest time (s) from a peak to the mark regaining it (``>=`` peak), or to the last mark if not regained.

    >>> max_drawdown_duration_s(np.array([0, 10, 20, 30, 40]) * NS_PER_S, [100.0, 90.0, 95.0, 100.0, 99.0])
    30.0
    """
    e = _as_equity(equity, stack=False)
    t = _as_ts(ts, e.size)
    is_high = e >= np.maximum.accumulate(e)  # at (or tied with) the running peak
    last_high = np.maximum.accumulate(np.where(is_high, np.arange(e.size), 0))
    dur = t - t[last_high]  # under water: time since the last peak; at a peak: 0
    if e.size > 1:  # a peak right after under-water marks ends a spell: time since the previous peak
        rec = is_high[1:] & ~is_high[:-1]
        dur[1:] = np.where(rec, t[1:] - t[last_high[:-1]], dur[1:])
    return float(dur.max()) / NS_PER_S


# ----------------------------------------------------------------------------------------- growth & costs


def total_return(equity: Any) -> FloatOrArray:
    """``equity[..., -1] / equity[..., 0] - 1`` (fraction).

    >>> round(total_return([100.0, 90.0, 125.0]), 12)
    0.25
    """
    e = _as_equity(equity)
    return _out(e[..., -1] / e[..., 0] - 1.0)


def span_years(n_periods: int, period_s: float) -> float:
    """Span in 365-day years of ``n_periods`` bars of ``period_s`` seconds (a curve of T marks spans T - 1 bars).

    >>> span_years(730, 43_200)
    1.0
    """
    return n_periods * period_s / SECONDS_PER_YEAR


def years_between(ts_first_ns: int, ts_last_ns: int) -> float:
    """Span in 365-day years between two ns timestamps.

    >>> years_between(0, 365 * 86_400 * NS_PER_S)
    1.0
    """
    return (int(ts_last_ns) - int(ts_first_ns)) / NS_PER_S / SECONDS_PER_YEAR


def annual_growth(growth: Any, years: float) -> FloatOrArray:
    """Compound annual growth rate of a growth factor ``E_last/E_first`` over ``years``:
    ``growth^(1/years) - 1`` (fraction, computed as ``expm1(log(growth) / years)``); NaN for a zero span.

    >>> round(annual_growth(1.21, 2.0), 12)
    0.1
    """
    g = np.asarray(growth, dtype=np.float64)
    if not years > 0:
        return _out(np.full(g.shape, NAN))
    with np.errstate(over="ignore"):
        return _out(np.expm1(np.log(g) / years))


def cagr(ts: Any, equity: Any) -> FloatOrArray:
    """Compound annual growth rate ``(E_last/E_first)^(1/years) - 1`` along the last axis (fraction), ``years``
    from the first to the last ``ts``; NaN for a zero time span.

    >>> year = 365 * 86_400 * NS_PER_S
    >>> round(cagr(np.array([0, year, 2 * year]), [100.0, 130.0, 121.0]), 12)
    0.1
    """
    e = _as_equity(equity)
    t = _as_ts(ts, e.shape[-1])
    return annual_growth(e[..., -1] / e[..., 0], years_between(t[0], t[-1]))


def calmar(cagr_frac: Any, max_drawdown_frac: Any) -> FloatOrArray:
    """``CAGR / max drawdown`` (elementwise); NaN when the max drawdown is 0 or either input is NaN.

    >>> calmar(0.3, 0.15)
    2.0
    """
    c, m = np.asarray(cagr_frac, dtype=np.float64), np.asarray(max_drawdown_frac, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(m > 0, c / m, NAN))


def _get(fill: Any, name: str) -> Any:
    return fill[name] if isinstance(fill, Mapping) else getattr(fill, name)


def traded_notional(fills: Iterable[Any]) -> tuple[float, float]:
    """``(sum |price*qty|, sum fee)`` in quote currency over fills (mappings or objects with ``price``, ``qty``
    and optionally ``fee``; e.g. ``schemas.events.Fill``).

    >>> traded_notional([{"price": 100.0, "qty": 2.0, "fee": 0.1}, {"price": 50.0, "qty": -1.0}])
    (250.0, 0.1)
    """
    notional = 0.0
    fees = 0.0
    for f in fills:
        notional += abs(float(_get(f, "price")) * float(_get(f, "qty")))
        fee = f.get("fee", 0.0) if isinstance(f, Mapping) else getattr(f, "fee", 0.0)
        fees += float(fee or 0.0)
    return notional, fees


def turnover(notional_quote: Any, mean_equity_quote: Any, years: float) -> FloatOrArray:
    """Turnover per year: ``traded notional / mean equity / years`` (elementwise); NaN for a zero span or a mean
    equity that is not positive.

    >>> turnover(2_400.0, 100.0, 2.0)
    12.0
    """
    n, m = np.asarray(notional_quote, dtype=np.float64), np.asarray(mean_equity_quote, dtype=np.float64)
    if not years > 0:
        return _out(np.full(np.broadcast(n, m).shape, NAN))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(m > 0, n / m / years, NAN))


def hit_rate(trade_pnls: Sequence[float] | np.ndarray) -> float:
    """Share of closed round-trip trades with realised P&L ``> 0``; NaN without trades.

    >>> hit_rate([12.0, -3.0, 0.0, 5.0])
    0.5
    """
    p = np.asarray(trade_pnls, dtype=np.float64)
    if p.size == 0:
        return NAN
    return float(np.count_nonzero(p > 0.0) / p.size)


# ------------------------------------------------------------------------------------------ VaR backtest


def var_breach_count(returns: Any, var_forecasts: Any) -> tuple[int, int]:
    """``(n, breaches)``: forecasts that are not NaN, and how many of them a return fell strictly below.

    >>> var_breach_count([-0.03, 0.01, -0.02, -0.05], [-0.02, -0.02, -0.02, float("nan")])
    (3, 1)
    """
    r = _as_returns(returns, stack=False)
    v = np.asarray(var_forecasts, dtype=np.float64)
    if r.shape != v.shape:
        raise ValueError(f"returns {r.shape} and VaR forecasts {v.shape} differ in shape")
    ok = ~np.isnan(v)
    return int(ok.sum()), int(np.count_nonzero(r[ok] < v[ok]))


# ------------------------------------------------------------------------------------------- tear sheet


def rolling_sharpe_vol(returns: Any, window: int, periods_per_year: float) -> tuple[np.ndarray, np.ndarray]:
    """Trailing ``window``-period annualised Sharpe and volatility (same formulas as :func:`sharpe`, fractions for
    the volatility), one value per return; NaN until ``window`` returns are in and where the window is flat.

    >>> s, v = rolling_sharpe_vol(np.array([0.01, -0.005, 0.02, 0.0]), 3, 365.0)
    >>> round(float(s[2]), 6), bool(np.isnan(s[1])), round(float(v[3]), 6)
    (12.652578, True, 0.252735)
    """
    r = _as_returns(returns, stack=False)
    w = int(window)
    if w < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    shp = np.full(r.size, NAN)
    vol = np.full(r.size, NAN)
    if r.size < w:
        return shp, vol
    c1 = np.concatenate(([0.0], np.cumsum(r)))
    c2 = np.concatenate(([0.0], np.cumsum(r * r)))
    s1 = c1[w:] - c1[:-w]
    s2 = c2[w:] - c2[:-w]
    mean = s1 / w
    var = np.maximum(s2 - w * mean * mean, 0.0) / (w - 1)
    std = np.sqrt(var)
    # the Sharpe formula of :func:`sharpe` on each window's moments; a window whose moments from running sums
    # leave a standard deviation at rounding level (<= 1e-15) is flat
    shp[w - 1 :] = np.where(std > 1e-15, _sharpe_from_moments(w, mean, std, periods_per_year), NAN)
    vol[w - 1 :] = std * math.sqrt(periods_per_year)
    return shp, vol


def drawdown_periods(ts: Any, equity: Any, top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` deepest drawdown periods, deepest first: each a peak (``start_ts``, ns), its lowest mark
    (``trough_ts``), the mark that regains the peak (``end_ts``, None while under water), ``depth`` (positive
    fraction of the peak, as :func:`drawdown_series`) and ``duration_s`` (peak to recovery or to the last mark).

    >>> rows = drawdown_periods(np.arange(6) * NS_PER_S, [100.0, 90.0, 100.0, 80.0, 85.0, 99.0])
    >>> [(r["start_ts"] // NS_PER_S, r["trough_ts"] // NS_PER_S, r["end_ts"], r["depth"]) for r in rows]
    [(2, 3, None, 0.2), (0, 1, 2000000000, 0.1)]
    """
    e = _as_equity(equity, stack=False)
    t = _as_ts(ts, e.size)
    dd = drawdown_series(e)
    out: list[dict[str, Any]] = []
    i, n = 0, e.size
    while i < n:
        if dd[i] <= 0.0:
            i += 1
            continue
        start = i - 1  # the peak before the spell
        j = i
        while j < n and dd[j] > 0.0:
            j += 1
        trough = i + int(np.argmax(dd[i:j]))
        end = j if j < n else None
        out.append(
            {
                "start_ts": int(t[start]),
                "trough_ts": int(t[trough]),
                "end_ts": int(t[end]) if end is not None else None,
                "depth": float(dd[trough]),
                "duration_s": (int(t[end if end is not None else n - 1]) - int(t[start])) / NS_PER_S,
            }
        )
        i = j
    out.sort(key=lambda r: -r["depth"])
    return out[:top]


def calendar_returns(ts: Any, equity: Any, period: str = "month") -> list[tuple[int, int, float]]:
    """Compounded return of each calendar ``period`` (``"month"`` or ``"year"``, UTC) as ``(year, month, return)``
    (month 0 for years): the period's last mark over the previous period's last mark (the first mark for the first
    period), minus 1 — so the periods compound to the total return.

    >>> day = 86_400 * NS_PER_S
    >>> ts = np.array([0, 30 * day, 31 * day, 59 * day])          # 1970-01-01, -01-31, -02-01, -03-01
    >>> [(y, m, round(r, 6)) for y, m, r in calendar_returns(ts, [100.0, 110.0, 99.0, 121.0])]
    [(1970, 1, 0.1), (1970, 2, -0.1), (1970, 3, 0.222222)]
    """
    e = _as_equity(equity, stack=False)
    t = _as_ts(ts, e.size)
    if period not in ("month", "year"):
        raise ValueError(f"period must be 'month' or 'year', got {period!r}")
    d = t.astype("datetime64[ns]")
    key = d.astype("datetime64[M]" if period == "month" else "datetime64[Y]").astype(np.int64)
    last = np.flatnonzero(np.append(key[1:] != key[:-1], True))  # index of each period's last mark
    out = []
    prev = float(e[0])
    for i in last:
        k = int(key[i])
        year, month = (1970 + k // 12, k % 12 + 1) if period == "month" else (1970 + k, 0)
        out.append((year, month, float(e[i]) / prev - 1.0))
        prev = float(e[i])
    return out


def skew_kurtosis(returns: Any) -> tuple[float, float]:
    """Sample skewness and excess kurtosis of returns from population moments (``m3/m2^1.5``, ``m4/m2^2 - 3``);
    NaN with fewer than 3 returns or a flat series.

    >>> [round(x, 6) for x in skew_kurtosis(np.array([0.0, 0.0, 0.0, 1.0]))]
    [1.154701, -0.666667]
    """
    r = _as_returns(returns, stack=False)
    if r.size < 3:
        return NAN, NAN
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if not m2 > 0:
        return NAN, NAN
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2 - 3.0)


_EULER_GAMMA = 0.5772156649015329


def probabilistic_sharpe(returns: Any, benchmark_sr: float = 0.0) -> float:
    """Probabilistic Sharpe ratio (Bailey and López de Prado, 2012): the probability that the true per-period
    Sharpe ratio exceeds ``benchmark_sr`` (per period, not annualised), given the sample's Sharpe ratio ``s``, its
    length ``T``, skewness ``g3`` and (non-excess) kurtosis ``g4``:
    ``Phi((s - benchmark) * sqrt(T - 1) / sqrt(1 - g3 s + (g4 - 1) / 4 s^2))``. NaN with fewer than 3 returns or
    a flat series.

    >>> r = np.array([0.01, -0.005, 0.02, 0.0, 0.012, -0.008, 0.004])
    >>> round(probabilistic_sharpe(r), 4)
    0.8821
    """
    r = _as_returns(returns, stack=False)
    if r.size < 3:
        return NAN
    sd = float(r.std(ddof=1))
    if not sd > 0:
        return NAN
    s = float(r.mean()) / sd
    g3, ex = skew_kurtosis(r)
    if g3 != g3:
        return NAN
    den = 1.0 - g3 * s + (ex + 3.0 - 1.0) / 4.0 * s * s
    if not den > 0:
        return NAN
    return norm_cdf((s - benchmark_sr) * math.sqrt(r.size - 1) / math.sqrt(den))


def expected_max_sharpe(n_trials: int, var_sr: float) -> float:
    """Expected largest of ``n_trials`` Sharpe ratios drawn with variance ``var_sr`` around a true value of 0
    (the False Strategy theorem, Bailey and López de Prado, 2014):
    ``sqrt(var) * ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``, ``gamma`` Euler-Mascheroni.
    0 for one trial.

    >>> round(expected_max_sharpe(100, 1.0), 4)
    2.5306
    """
    if n_trials < 1 or not var_sr >= 0:
        raise ValueError("n_trials must be >= 1 and var_sr >= 0")
    if n_trials == 1:
        return 0.0
    g = _EULER_GAMMA
    return math.sqrt(var_sr) * ((1 - g) * norm_ppf(1 - 1 / n_trials) + g * norm_ppf(1 - 1 / (n_trials * math.e)))


def deflated_sharpe(returns: Any, n_trials: int, var_sr: float) -> float:
    """Deflated Sharpe ratio: :func:`probabilistic_sharpe` against the Sharpe ratio the best of ``n_trials``
    configurations would show by luck alone (:func:`expected_max_sharpe`; ``var_sr`` the variance of the trials'
    per-period Sharpe ratios). Above 0.95: the result survives the number of configurations tried."""
    return probabilistic_sharpe(returns, expected_max_sharpe(n_trials, var_sr))


def win_loss(trade_pnls: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Average winning and losing trade (quote; the loss negative), their ratio, the profit factor (gross wins
    over gross losses) and the expectancy (mean P&L per trade); NaN where undefined.

    >>> win_loss([12.0, -3.0, 0.0, 6.0])
    {'avg_win': 9.0, 'avg_loss': -3.0, 'win_loss_ratio': 3.0, 'profit_factor': 6.0, 'expectancy': 3.75}
    """
    p = np.asarray(trade_pnls, dtype=np.float64)
    wins, losses = p[p > 0.0], p[p < 0.0]
    aw = float(wins.mean()) if wins.size else NAN
    al = float(losses.mean()) if losses.size else NAN
    return {
        "avg_win": aw,
        "avg_loss": al,
        "win_loss_ratio": aw / -al if wins.size and losses.size else NAN,
        "profit_factor": float(wins.sum() / -losses.sum()) if losses.size else NAN,
        "expectancy": float(p.mean()) if p.size else NAN,
    }


# ------------------------------------------------------------------------------------------------ summary


def summarize(
    ts: Any,
    equity: Any,
    *,
    period_s: float | None = None,
    fills: Iterable[Any] | None = None,
    trade_pnls: Sequence[float] | np.ndarray | None = None,
    var_forecasts: Any = None,
    var_alpha: float = 0.99,
) -> dict[str, float | int]:
    """All statistics of one equity curve as a flat dict of Python ``int``/``float`` (NaN where undefined).

    ``period_s``: bar period in seconds (default: the median spacing of ``ts``). ``fills``: see
    :func:`traded_notional`. ``trade_pnls``: realised P&L (quote) of each closed round trip. ``var_forecasts``:
    one VaR forecast per return (length ``len(equity) - 1``, return sign, NaN = none) at confidence ``var_alpha``.

    Keys: ``start_ts_ns``, ``end_ts_ns``, ``n_marks``, ``period_s``, ``periods_per_year``, ``years``,
    ``start_equity_quote``, ``end_equity_quote``, ``peak_equity_quote``, ``total_return_frac``, ``cagr_frac``,
    ``mean_return_frac`` (per period), ``volatility_ann_frac`` (``std(r, ddof=1)*sqrt(ppy)``), ``sharpe``,
    ``sortino``, ``max_drawdown_frac``, ``max_drawdown_duration_s``, ``calmar``, ``n_fills``,
    ``traded_notional_quote``, ``fees_quote``, ``turnover_per_year``, ``n_trades``, ``hit_rate_frac``,
    ``var_confidence_frac``, ``n_var_forecasts``, ``n_var_breaches``, ``var_breach_rate_frac``,
    ``var_expected_rate_frac``, ``kupiec_lr``, ``kupiec_p_value``.

    >>> s = summarize(np.array([0, 1, 2]) * NS_PER_S, [100.0, 100.0, 100.0])
    >>> s["sharpe"], s["max_drawdown_frac"], s["period_s"]
    (nan, 0.0, 1.0)
    """
    e = _as_equity(equity, stack=False)
    t = _as_ts(ts, e.size)
    p_s = float(period_s) if period_s is not None else infer_period_s(t)
    ppy = periods_per_year(p_s) if p_s == p_s else NAN
    r = period_returns(e)
    years = years_between(t[0], t[-1])
    mdd = max_drawdown(e)
    growth = cagr(t, e)

    fill_list = list(fills) if fills is not None else []
    notional, fees = traded_notional(fill_list)
    pnls = np.asarray(trade_pnls if trade_pnls is not None else [], dtype=np.float64)

    if var_forecasts is not None:
        n_var, n_breach = var_breach_count(r, var_forecasts)
    else:
        n_var, n_breach = 0, 0
    k = kupiec_pof(n_var, n_breach, var_alpha) if n_var > 0 else KupiecResult(NAN, NAN)

    return {
        "start_ts_ns": int(t[0]),
        "end_ts_ns": int(t[-1]),
        "n_marks": int(e.size),
        "period_s": p_s,
        "periods_per_year": ppy,
        "years": float(years),
        "start_equity_quote": float(e[0]),
        "end_equity_quote": float(e[-1]),
        "peak_equity_quote": float(e.max()),
        "total_return_frac": total_return(e),
        "cagr_frac": growth,
        "mean_return_frac": float(r.mean()) if r.size else NAN,
        "volatility_ann_frac": volatility(r, ppy),
        "sharpe": sharpe(r, ppy) if ppy == ppy else NAN,
        "sortino": sortino(r, ppy) if ppy == ppy else NAN,
        "max_drawdown_frac": mdd,
        "max_drawdown_duration_s": max_drawdown_duration_s(t, e),
        "calmar": calmar(growth, mdd),
        "n_fills": len(fill_list),
        "traded_notional_quote": notional,
        "fees_quote": fees,
        "turnover_per_year": turnover(notional, float(e.mean()), years),
        "n_trades": int(pnls.size),
        "hit_rate_frac": hit_rate(pnls),
        "var_confidence_frac": float(var_alpha),
        "n_var_forecasts": n_var,
        "n_var_breaches": n_breach,
        "var_breach_rate_frac": n_breach / n_var if n_var else NAN,
        "var_expected_rate_frac": 1.0 - float(var_alpha),
        "kupiec_lr": k.lr,
        "kupiec_p_value": k.p_value,
    }


# ---------------------------------------------------------------------------------------------- streaming


class EquityTracker:
    """Incremental equity statistics over ``(ts, equity)`` marks in event-time order (pure, picklable).

    Keeps the running peak, current and max drawdown (same definitions as the batch functions), the longest
    drawdown duration, and Welford's running mean and ``M2 = sum((r - mean)^2)`` of period returns plus the
    sum of squared downside returns, so that :meth:`sharpe` and :meth:`sortino` equal :func:`sharpe` /
    :func:`sortino` on the same marks (to rounding). State is O(1).

    >>> tr = EquityTracker()
    >>> for i, e in enumerate([100.0, 110.0, 99.0, 120.0]):
    ...     _ = tr.update(i * 86_400 * NS_PER_S, e)
    >>> tr.max_drawdown, tr.n_returns, round(tr.sharpe(365.0), 4)
    (0.1, 3, 8.5438)
    """

    __slots__ = (
        "first_ts",
        "last_ts",
        "first_equity",
        "last_equity",
        "peak",
        "peak_ts",
        "drawdown",
        "max_drawdown",
        "max_drawdown_duration_ns",
        "n_returns",
        "mean",
        "m2",
        "downside_sq_sum",
    )

    def __init__(self) -> None:
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.first_equity = NAN
        self.last_equity = NAN
        self.peak = NAN
        self.peak_ts: int | None = None
        self.drawdown = 0.0  # current, positive fraction
        self.max_drawdown = 0.0  # positive fraction
        self.max_drawdown_duration_ns = 0
        self.n_returns = 0
        self.mean = 0.0  # of period returns
        self.m2 = 0.0  # sum of squared deviations from the running mean
        self.downside_sq_sum = 0.0  # sum of min(r, 0)^2

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def update(self, ts: int, equity: float) -> float:
        """Add a mark (``ts`` ns, ``equity`` quote, > 0); returns the current drawdown (fraction)."""
        ts = int(ts)
        e = float(equity)
        if not (math.isfinite(e) and e > 0.0):
            raise ValueError(f"equity must be finite and strictly positive, got {equity}")
        if self.last_ts is None:
            self.first_ts = self.last_ts = self.peak_ts = ts
            self.first_equity = self.last_equity = self.peak = e
            return 0.0
        if ts < self.last_ts:
            raise ValueError(f"mark at {ts} ns is before the previous one at {self.last_ts} ns")
        r = e / self.last_equity - 1.0
        self.n_returns += 1
        delta = r - self.mean
        self.mean += delta / self.n_returns
        self.m2 += delta * (r - self.mean)
        if r < 0.0:
            self.downside_sq_sum += r * r
        assert self.peak_ts is not None
        if e >= self.peak:  # a new (or regained) peak ends any drawdown spell
            if self.last_equity < self.peak:
                self.max_drawdown_duration_ns = max(self.max_drawdown_duration_ns, ts - self.peak_ts)
            self.peak, self.peak_ts, self.drawdown = e, ts, 0.0
        else:
            self.drawdown = (self.peak - e) / self.peak
            self.max_drawdown = max(self.max_drawdown, self.drawdown)
            self.max_drawdown_duration_ns = max(self.max_drawdown_duration_ns, ts - self.peak_ts)
        self.last_ts, self.last_equity = ts, e
        return self.drawdown

    @property
    def n_marks(self) -> int:
        """Marks seen."""
        return 0 if self.last_ts is None else self.n_returns + 1

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1) of period returns (fraction); NaN with fewer than 2 returns."""
        return math.sqrt(self.m2 / (self.n_returns - 1)) if self.n_returns >= 2 else NAN

    @property
    def total_return(self) -> float:
        """``last / first - 1`` (fraction); NaN before the first mark."""
        return self.last_equity / self.first_equity - 1.0

    def sharpe(self, periods_per_year: float) -> float:
        """Annualised Sharpe so far (same convention as :func:`sharpe`)."""
        return float(_sharpe_from_moments(self.n_returns, self.mean, self.std, periods_per_year))

    def sortino(self, periods_per_year: float) -> float:
        """Annualised Sortino so far (same convention as :func:`sortino`)."""
        return float(_sortino_from_moments(self.n_returns, self.mean, self.downside_sq_sum, periods_per_year))
