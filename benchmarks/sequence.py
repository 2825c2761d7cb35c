"""GRU sequence challenger benchmarks: training time on the bundled history, and the cost of one decision.

Run: ``.venv/bin/python -m benchmarks.sequence`` (prints JSON; ``--quick`` trains on the first 30 % of the rows).

* ``training``: :func:`operators.models.sequence.train_gru` (walk-forward CV, isotonic, final refit) on the two
  years of BTC and ETH 30-min bars, beside :func:`train_lightgbm` on the same rows in the same run;
* ``forward``: one decision's model call, the numpy stream (:meth:`SequenceStream.predict_one`: project the new
  row, recurrence over the 16-row window) against the same window through the jitted JAX forward, called
  alternately row by row (wall and thread-CPU percentiles, µs);
* ``scoring``: the whole ``Scorer.score`` with the GRU as its batch member against LightGBM (the same rows,
  alternated), as :func:`benchmarks.models.scoring_latency` measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from flows.training import dataset
from operators.features import CORE_V1
from operators.models import Scorer, ScorerConfig, TrainConfig, features_frame, train_lightgbm
from operators.models.sequence import GruParams, _fwd, _jax, train_gru
from schemas.time import NS_PER_S as NS

SPEC = CORE_V1.with_resolution(1800)


def _pct(a, q) -> float:
    return round(float(np.percentile(np.asarray(a) / 1000.0, q)), 1)


def _stats(prefix: str, wall, cpu) -> dict:
    return {
        f"{prefix}_wall_us_p50": _pct(wall, 50),
        f"{prefix}_wall_us_p99": _pct(wall, 99),
        f"{prefix}_cpu_us_p50": _pct(cpu, 50),
        f"{prefix}_cpu_us_p99": _pct(cpu, 99),
    }


def training(frac: float = 1.0) -> tuple[dict, object, object, object]:
    ds, bars, spec = dataset()
    n = int(len(ds) * frac)
    cfg = TrainConfig(gap_ns=ds.horizon_ns + spec.resolution_s * NS)
    t0 = time.perf_counter()
    g = train_gru(ds.X[:n], ds.y[:n], ds.ts[:n], ds.names, cfg, groups=ds.symbol[:n])
    t1 = time.perf_counter()
    lg = train_lightgbm(ds.X[:n], ds.y[:n], ds.ts[:n], ds.names, cfg)
    t2 = time.perf_counter()
    return (
        {
            "rows": n,
            "gru_train_s": round(t1 - t0, 2),
            "lgbm_train_s": round(t2 - t1, 2),
            "gru_epochs": g.info["n_rounds"],
            "gru_fold_epochs": g.info["fold_best_epochs"],
            "gru_params": g.info["params"],
        },
        g,
        lg,
        bars,
    )


def forward(model, bars, n: int = 20_000) -> dict:
    """numpy stream vs jitted JAX forward of the same window, one decision each, alternated."""
    _, jnp = _jax()
    b = bars[bars.symbol == "BTC-USD"]
    f = features_frame(b, SPEC)
    X = f[list(model.names)].to_numpy(np.float64)[:n]
    w = {k: jnp.asarray(v) for k, v in model.weights.items()}
    fwd = _fwd()
    st = model.stream()
    Z = model.standardize(X).astype(np.float32)
    win = np.zeros((1, model.window, Z.shape[1]), np.float32)
    fwd(w, jnp.asarray(win)).block_until_ready()  # compile once
    nw, nc, jw, jc, diff = [], [], [], [], []
    for i in range(X.shape[0]):
        row = X[i].tolist()
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        p_np = st.predict_one(row)[0]
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        win = np.roll(win, -1, axis=1)
        win[0, -1] = Z[i]
        c2, w2 = time.thread_time_ns(), time.perf_counter_ns()
        z = float(fwd(w, jnp.asarray(win))[0])
        p_jx = 1.0 / (1.0 + np.exp(-z))
        w3, c3 = time.perf_counter_ns(), time.thread_time_ns()
        nw.append(w1 - w0)
        nc.append(c1 - c0)
        jw.append(w3 - w2)
        jc.append(c3 - c2)
        diff.append(abs(p_np - p_jx))
    out = {"decisions": int(X.shape[0]), "max_abs_diff_numpy_vs_jax": float(max(diff))}
    out.update(_stats("numpy", nw, nc))
    out.update(_stats("jax_jit", jw, jc))
    return out


def scoring(gru, lgbm, bars, n: int = 20_000) -> dict:
    """Scorer.score with the GRU vs with LightGBM as the batch member, one decision each, alternated."""
    b = bars[bars.symbol == "BTC-USD"]
    f = features_frame(b, SPEC)
    close = dict(zip((b.ts + SPEC.resolution_s * NS).tolist(), b.close.tolist(), strict=True))
    rows = [tuple(r) for r in f[list(SPEC.features)].itertuples(index=False)][:n]
    ts = f.ts.tolist()[:n]
    scs = {
        "gru": Scorer("BTC-USD", SPEC, batch=gru, batch_version="g", cfg=ScorerConfig()),
        "lgbm": Scorer("BTC-USD", SPEC, batch=lgbm, batch_version="l", cfg=ScorerConfig()),
    }
    wall: dict[str, list[int]] = {k: [] for k in scs}
    cpu: dict[str, list[int]] = {k: [] for k in scs}
    for r, t in zip(rows, ts, strict=True):
        for k, sc in scs.items():
            c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
            sc.score(r, t)
            w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            sc.learn(t, close[t])
            wall[k].append(w1 - w0)
            cpu[k].append(c1 - c0)
    out = {"decisions": len(rows)}
    for k in scs:
        out.update(_stats(f"score_{k}", wall[k], cpu[k]))
    return out


def main(quick: bool = False) -> dict:
    load0 = os.getloadavg()[0]
    tr, g, lg, bars = training(0.3 if quick else 1.0)
    n = 5000 if quick else 20_000
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_start": round(load0, 2),
            "load_avg_1m_end": round(os.getloadavg()[0], 2),
        },
        "defaults": GruParams().__dict__,
        "training": tr,
        "forward": forward(g, bars, n),
        "scoring": scoring(g, lg, bars, n),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(main(ap.parse_args().quick), indent=1))
