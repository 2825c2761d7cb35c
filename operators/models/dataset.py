"""Labels and the point-in-time training-set builder (pure: frames in, frames out).

Time conventions (all int ns UTC):

* a bar frame has ``ts`` = window **start** (as :mod:`operators.bars` and ``connectors.files.read_bars``);
  its close is known at ``ts + resolution`` (the window end);
* a feature row's ``ts`` is the window **end** of the bar it was computed on (as ``FeatureVector.ts`` in the
  stream): the time from which the values are known;
* the decision time ``t`` of a training row is the feature time; its label looks at the first close known at
  or after ``t + horizon`` (``horizon = horizon_bars * resolution``), never later than ``t + max_wait``.

Label: ``r = ln(close(t + horizon) / close(t))``; with ``threshold = 0`` the label is ``1 if r > 0 else 0``; with a
threshold ``k > 0`` (log-return units) it is 1 if ``r > k``, 0 if ``r < -k`` and the row is dropped in between.
The streaming :class:`operators.models.scorer.Scorer` resolves labels with exactly this rule.

Guards against look-ahead (:class:`LookAheadError`): the join is backward as-of (a feature stamped after ``t`` can
never be used at ``t``) and is re-checked row by row; with ``audit=True`` every feature value is recomputed from
the bars known at its time through the streaming feature code (which can only see the past) and must agree, so a
column shifted into the future (or stamped earlier than it was known) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from operators.bars import aggregate_ticks
from operators.features import FeatureSet, compute_features_array
from operators.synthetic import synthesize_ticks
from schemas.time import NS_PER_S as NS

__all__ = [
    "LookAheadError",
    "TrainingSet",
    "replay_bars",
    "features_frame",
    "forward_labels",
    "build_training_set",
    "audit_point_in_time",
    "label_of",
    "DEFAULT_EXCLUDED",
]

#: features that are artefacts of synthetic ticks on the bundled bars (docs/data.md): not for models by default
DEFAULT_EXCLUDED: tuple[str, ...] = ("ofi", "log_trades")


class LookAheadError(ValueError):
    """A training row would use information from after its decision time."""


def label_of(r: float, threshold: float) -> float:
    """Label of one forward log return: 1.0, 0.0 or NaN (inside the dead band of a positive threshold)."""
    if threshold <= 0.0:
        return 1.0 if r > 0.0 else 0.0
    if r > threshold:
        return 1.0
    if r < -threshold:
        return 0.0
    return float("nan")


def replay_bars(
    ts_ns: ArrayLike,
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    *,
    resolution_s: int,
    symbol: str,
    ticks_per_bar: int = 8,
) -> pd.DataFrame:
    """The bars the stream builds when the history is replayed: OHLCV bars -> synthetic ticks -> bars.

    Uses :func:`operators.synthetic.synthesize_ticks` and :func:`operators.bars.aggregate_ticks` (the offline
    twin of the streaming aggregator), so vwap, buy/sell volume and trade count are those the flow sees.
    Returns a frame with ``symbol, ts`` (window start, ns) and the bar columns.
    """
    t = synthesize_ticks(
        np.asarray(ts_ns, np.int64),
        open_,
        high,
        low,
        close,
        volume,
        resolution_s=resolution_s,
        n=ticks_per_bar,
        symbol=symbol,
    )
    cols = aggregate_ticks(t.ts, t.price, t.qty, t.side, resolution_s=resolution_s, symbol=symbol, synthetic=True)
    df = pd.DataFrame({k: v for k, v in cols.items() if np.ndim(v) == 1})
    df.insert(0, "symbol", symbol)
    df["resolution_s"] = int(resolution_s)
    return df


def features_frame(bars: pd.DataFrame, spec: FeatureSet) -> pd.DataFrame:
    """Features of one or several symbols' bars (frame with ``symbol, ts`` = window start and bar columns).

    Runs the streaming feature code (:func:`compute_features_array`) per symbol in time order; returns
    ``symbol, ts`` (window END, ns) and one column per feature, warm-up rows dropped.
    """
    out = []
    res_ns = spec.resolution_s * NS
    for sym, g in bars.groupby("symbol", sort=True):
        g = g.sort_values("ts", kind="stable")
        vals = compute_features_array({c: g[c].to_numpy() for c in g.columns}, spec)
        f = pd.DataFrame(vals, columns=list(spec.features))
        f.insert(0, "ts", g["ts"].to_numpy(np.int64) + res_ns)
        f.insert(0, "symbol", sym)
        out.append(f[np.isfinite(vals).all(axis=1)])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["symbol", "ts", *spec.features])


def forward_labels(
    bars: pd.DataFrame,
    *,
    resolution_s: int,
    horizon_bars: int = 1,
    threshold: float = 0.0,
    max_wait_bars: int | None = None,
) -> pd.DataFrame:
    """Labels at every bar end ``t``: ``symbol, ts (= t), label_ts, fwd_ret, label`` (see the module doc).

    ``label_ts`` is the time the label becomes known (the close used). Rows without a close within
    ``max_wait_bars`` (default ``2 * horizon_bars``) after ``t + horizon`` are dropped, as are dead-band rows.
    """
    res_ns = int(resolution_s) * NS
    h_ns = int(horizon_bars) * res_ns
    wait_ns = (2 * horizon_bars if max_wait_bars is None else max_wait_bars) * res_ns
    out = []
    for sym, g in bars.groupby("symbol", sort=True):
        end = g["ts"].to_numpy(np.int64) + res_ns
        order = np.argsort(end, kind="stable")
        end = end[order]
        close = g["close"].to_numpy(np.float64)[order]
        j = np.searchsorted(end, end + h_ns, side="left")
        ok = j < end.size
        jj = np.where(ok, j, 0)
        ok &= (end[jj] - (end + h_ns)) <= wait_ns
        r = np.where(ok, np.log(close[jj] / close), np.nan)
        if threshold <= 0:
            lab = np.where(r > 0, 1.0, 0.0)
        else:
            lab = np.where(r > threshold, 1.0, np.where(r < -threshold, 0.0, np.nan))
        lab = np.where(ok, lab, np.nan)
        f = pd.DataFrame({"symbol": sym, "ts": end, "label_ts": np.where(ok, end[jj], -1), "fwd_ret": r, "label": lab})
        out.append(f[np.isfinite(f["label"])])
    labelled: pd.DataFrame = pd.concat(out, ignore_index=True)
    return labelled


def audit_point_in_time(
    features: pd.DataFrame, bars: pd.DataFrame, spec: FeatureSet, *, rtol: float = 1e-9, atol: float = 1e-12
) -> None:
    """Raise :class:`LookAheadError` unless every feature value equals the value computable at its time.

    The reference is the streaming feature code run over the bars in time order; at the row stamped ``t`` it
    has seen only bars whose window ended at or before ``t``. A mismatch means the value was taken from
    another time (e.g. shifted into the future, or stamped earlier than it was known) or from other code.
    """
    ref = features_frame(bars, spec)
    cols = [c for c in spec.features if c in features.columns]
    m = features[["symbol", "ts", *cols]].merge(
        ref[["symbol", "ts", *cols]], on=["symbol", "ts"], how="left", suffixes=("", "__ref"), validate="one_to_one"
    )
    missing = m[cols[0] + "__ref"].isna() if cols else pd.Series(False, index=m.index)
    if missing.any():
        r = m[missing].iloc[0]
        raise LookAheadError(
            f"{int(missing.sum())} feature rows have no value computable from the bars at their "
            f"time (first: {r['symbol']} ts={int(r['ts'])}): stamped before the data existed?"
        )
    bad = []
    for c in cols:
        a, b = m[c].to_numpy(float), m[c + "__ref"].to_numpy(float)
        if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            bad.append(c)
    if bad:
        raise LookAheadError(
            f"features {bad} differ from the values computable from the bars known at their "
            f"time: shifted into the future (look-ahead) or computed by other code"
        )


@dataclass
class TrainingSet:
    """Rows in time order: ``X`` (n, k) features, ``y`` (n,) 0/1 labels, ``ts`` decision times (ns),
    ``label_ts`` times the labels became known (ns), ``symbol`` (n,), ``fwd_ret`` log returns, ``names``."""

    X: np.ndarray
    y: np.ndarray
    ts: np.ndarray
    label_ts: np.ndarray
    symbol: np.ndarray
    fwd_ret: np.ndarray
    names: tuple[str, ...]
    horizon_ns: int

    def __len__(self) -> int:
        return int(self.y.size)

    def subset(self, idx: np.ndarray) -> TrainingSet:
        return TrainingSet(
            self.X[idx],
            self.y[idx],
            self.ts[idx],
            self.label_ts[idx],
            self.symbol[idx],
            self.fwd_ret[idx],
            self.names,
            self.horizon_ns,
        )


def build_training_set(
    features: pd.DataFrame,
    bars: pd.DataFrame,
    spec: FeatureSet,
    *,
    horizon_bars: int = 1,
    threshold: float = 0.0,
    use: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = DEFAULT_EXCLUDED,
    audit: bool = True,
    max_wait_bars: int | None = None,
) -> TrainingSet:
    """Join the features known at ``t`` with the label at ``t + horizon`` (point in time).

    ``features``: ``symbol, ts`` (time the values are known, ns) and feature columns, e.g. from
    :func:`features_frame` or the offline store; ``bars``: the symbols' bars (``ts`` = window start) giving the
    closes. ``use``: model features (default: the spec's minus ``exclude``). Decision times are the label grid
    (bar ends); each takes the newest feature row stamped ``<= t`` of its symbol, no older than one bar.
    Raises :class:`LookAheadError` on any row whose features are stamped after ``t`` or whose label is known
    at or before ``t``, and (``audit=True``) when a value differs from the one computable at its time.
    """
    names = tuple(use) if use is not None else tuple(f for f in spec.features if f not in exclude)
    miss = [n for n in names if n not in features.columns]
    if miss:
        raise KeyError(f"features frame lacks {miss}")
    if audit:
        audit_point_in_time(features, bars, spec)
    res_ns = spec.resolution_s * NS
    labels = forward_labels(
        bars,
        resolution_s=spec.resolution_s,
        horizon_bars=horizon_bars,
        threshold=threshold,
        max_wait_bars=max_wait_bars,
    )
    f = features[["symbol", "ts", *names]].rename(columns={"ts": "feature_ts"})
    f = f.sort_values(["feature_ts"], kind="stable")
    labels = labels.sort_values(["ts"], kind="stable")
    f["feature_ts"] = f["feature_ts"].astype(np.int64)
    labels["ts"] = labels["ts"].astype(np.int64)
    j = pd.merge_asof(
        labels,
        f,
        left_on="ts",
        right_on="feature_ts",
        by="symbol",
        direction="backward",
        tolerance=res_ns - 1,
        allow_exact_matches=True,
    )
    j = j.dropna(subset=["feature_ts", *names])
    j["feature_ts"] = j["feature_ts"].astype(np.int64)
    if (j["feature_ts"] > j["ts"]).any():
        raise LookAheadError("a feature stamped after its decision time was joined")
    if (j["label_ts"] <= j["ts"]).any():
        raise LookAheadError("a label known at or before its decision time")
    j = j.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    return TrainingSet(
        X=j[list(names)].to_numpy(np.float64),
        y=j["label"].to_numpy(np.float64),
        ts=j["ts"].to_numpy(np.int64),
        label_ts=j["label_ts"].to_numpy(np.int64),
        symbol=j["symbol"].to_numpy(object),
        fwd_ret=j["fwd_ret"].to_numpy(np.float64),
        names=names,
        horizon_ns=horizon_bars * res_ns,
    )
