"""Model-layer benchmarks: scoring latency per decision, decisions/s, training time on the bundled history (LightGBM,
and the XGBoost and GRU challengers when their packages are installed).

Run: ``.venv/bin/python -m benchmarks.models`` (prints JSON). Each function returns a dict.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from flows.training import dataset, load_bars
from operators.features import CORE_V1
from operators.models import Scorer, ScorerConfig, TrainConfig, features_frame, train_lightgbm
from schemas.time import NS_PER_S as NS

SPEC = CORE_V1.with_resolution(1800)


def training_time() -> dict:
    """Wall time (s) of feature building and of LightGBM training (walk-forward CV + calibration + final model,
    no hyperparameter search) on the two years of BTC and ETH 30-min bars."""
    t0 = time.perf_counter()
    ds, bars, spec = dataset()
    t1 = time.perf_counter()
    m = train_lightgbm(ds.X, ds.y, ds.ts, ds.names, TrainConfig(gap_ns=ds.horizon_ns + spec.resolution_s * NS))
    t2 = time.perf_counter()
    return {
        "rows": len(ds),
        "features": len(ds.names),
        "data_s": round(t1 - t0, 2),
        "train_s": round(t2 - t1, 2),
        "trees": m.forest.n_trees,
        "cv_auc": round(m.info["cv_calibrated"]["auc"], 4),
        "_model": m,
        "_bars": bars,
    }


def scoring_latency(model=None, bars=None, n: int = 20_000) -> dict:
    """Scorer.score on one row (LightGBM compiled + calibration + River + ensemble + PSI window), and
    Scorer.learn, per decision: wall-clock and thread-CPU percentiles (us); decisions/s = score + learn."""
    if bars is None:
        bars = load_bars()
    b = bars[bars.symbol == "BTC-USD"]
    f = features_frame(b, SPEC)
    close = dict(zip((b.ts + SPEC.resolution_s * NS).tolist(), b.close.tolist(), strict=True))
    sc = Scorer("BTC-USD", SPEC, batch=model, batch_version="bench" if model is not None else None, cfg=ScorerConfig())
    rows = [tuple(r) for r in f[list(SPEC.features)].itertuples(index=False)][:n]
    ts = f.ts.tolist()[:n]
    wall, cpu, learn = [], [], []
    t_start = time.perf_counter()
    for r, t in zip(rows, ts, strict=True):
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        sc.score(r, t)
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        sc.learn(t, close[t])
        w2 = time.perf_counter_ns()
        wall.append(w1 - w0)
        cpu.append(c1 - c0)
        learn.append(w2 - w1)
    total = time.perf_counter() - t_start
    pct = lambda a, q: round(float(np.percentile(np.asarray(a) / 1000, q)), 1)  # noqa: E731
    return {
        "decisions": len(rows),
        "with_lightgbm": model is not None,
        "score_wall_us_p50": pct(wall, 50),
        "score_wall_us_p99": pct(wall, 99),
        "score_cpu_us_p50": pct(cpu, 50),
        "score_cpu_us_p99": pct(cpu, 99),
        "learn_wall_us_p50": pct(learn, 50),
        "learn_wall_us_p99": pct(learn, 99),
        "decisions_per_s": round(len(rows) / total),
    }


def xgboost_challenger(bars, n: int = 20_000) -> dict:
    """The XGBoost challenger (``operators.models.xgb``): training time with the same CV and calibration, and the
    Scorer's per-decision latency with it as the batch model (keys prefixed ``xgb_``). Empty when xgboost-cpu
    is not installed."""
    try:
        import xgboost  # noqa: F401
    except ImportError:
        return {}
    from operators.models.xgb import train_xgboost

    ds, _, spec = dataset(bars=bars)
    t0 = time.perf_counter()
    m = train_xgboost(ds.X, ds.y, ds.ts, ds.names, TrainConfig(gap_ns=ds.horizon_ns + spec.resolution_s * NS))
    out = {"xgb_train_s": round(time.perf_counter() - t0, 2), "xgb_trees": m.forest.n_trees - 1}
    lat = scoring_latency(m, bars, n)
    out.update({f"xgb_{k}": v for k, v in lat.items() if k.startswith("score_")})
    return out


def gru_challenger(bars, n: int = 20_000) -> dict:
    """The GRU sequence challenger (``operators.models.sequence``): training time with the same CV and calibration,
    and the Scorer's per-decision latency with it as the batch model (keys prefixed ``gru_``; the numpy forward
    against the jitted JAX one is in ``benchmarks/sequence.py``). Empty when jax/optax are not installed."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        return {}
    from operators.models.sequence import train_gru

    ds, _, spec = dataset(bars=bars)
    t0 = time.perf_counter()
    m = train_gru(
        ds.X, ds.y, ds.ts, ds.names, TrainConfig(gap_ns=ds.horizon_ns + spec.resolution_s * NS), groups=ds.symbol
    )
    out = {"gru_train_s": round(time.perf_counter() - t0, 2), "gru_epochs": m.info["n_rounds"]}
    lat = scoring_latency(m, bars, n)
    out.update({f"gru_{k}": v for k, v in lat.items() if k.startswith("score_")})
    return out


def main() -> dict:
    tr = training_time()
    bars = tr["_bars"]
    lat = scoring_latency(tr.pop("_model"), tr.pop("_bars"))
    xgb = xgboost_challenger(bars)
    tr.update({k: v for k, v in xgb.items() if k in ("xgb_train_s", "xgb_trees")})
    lat.update({k: v for k, v in xgb.items() if k.startswith("xgb_score")})
    gru = gru_challenger(bars)
    tr.update({k: v for k, v in gru.items() if k in ("gru_train_s", "gru_epochs")})
    lat.update({k: v for k, v in gru.items() if k.startswith("gru_score")})
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "training": tr,
        "scoring": lat,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
