"""Sweep benchmark: 100 parameter sets of the EMA-spread trend over the two years of bundled BTC and ETH
30-minute bars, vectorised (``operators.sweep``) versus the event-driven backtest (``flows.embedded.run_history``,
the ``levibot backtest`` path) of the same sets.

The event-driven side is too slow to run 100 times in a benchmark (about half a minute per set on the
reference machine), so it runs ``event_sets`` of the 100 sets (default 2) on the full history and the time
for 100 is extrapolated linearly (the cost per set does not depend on the parameters beyond the few orders;
said plainly in the output as ``event_driven_measured_sets``). The vectorised time is the best of ``repeats``
full sweeps of all 100 sets, including the ``ema_spread`` feature computation, excluding file loading.

Run: ``python -m benchmarks.sweep`` (prints a JSON dict).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np

from connectors.history import load_history
from flows.cli import BUNDLED
from flows.embedded import EMBEDDED_PIPELINE, run_history
from flows.sweep import load_bar_arrays
from operators.pipeline import paper_broker_config
from operators.sweep import SimConfig, param_grid, sweep_trend


def grid_100() -> dict[str, np.ndarray]:
    """10 entry thresholds (0.2 %..2 % of price) x 10 exit fractions (0..0.9 of the entry)."""
    g = param_grid(entry=np.linspace(0.002, 0.02, 10), frac=np.linspace(0.0, 0.9, 10))
    return {"entry": g["entry"], "exit": g["entry"] * g["frac"]}


def vectorised(repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds for the 100-set sweep over both symbols' full history."""
    bars = load_bar_arrays(BUNDLED)
    g = grid_100()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        sweep_trend(bars, g["entry"], g["exit"], SimConfig())
        best = min(best, time.perf_counter() - t0)
    return {"sweep_sets": 100.0, "sweep_bars": float(sum(len(b) for b in bars)), "sweep_100_sets_s": best}


def event_driven(event_sets: int = 2) -> dict[str, float]:
    """Seconds per set of the event-driven backtest (ticks -> bars -> features -> strategy -> broker), measured on
    ``event_sets`` sets spread over the grid, and the linear extrapolation to 100."""
    history = load_history(BUNDLED, ticks_per_bar=8)
    g = grid_100()
    picks = np.linspace(0, 99, event_sets).round().astype(int)
    secs = []
    for i in picks:
        cfg = replace(
            EMBEDDED_PIPELINE,
            mode="baseline",
            models=False,
            accounts="per_symbol",
            trend_entry=float(g["entry"][i]),
            trend_exit=float(g["exit"][i]),
            broker=paper_broker_config(latency_s=0.0),
        )
        t0 = time.perf_counter()
        run_history(history, None, cfg, progress=False)
        secs.append(time.perf_counter() - t0)
    per = float(np.mean(secs))
    return {
        "event_driven_measured_sets": float(event_sets),
        "event_driven_ticks": float(len(history)),
        "event_driven_s_per_set": per,
        "event_driven_100_sets_s_extrapolated": per * 100,
    }


def run(event_sets: int = 2, repeats: int = 3) -> dict[str, float]:
    """Both sides and the ratio (event-driven / vectorised; target >= 50) and the sweep target (< 2 s)."""
    res = vectorised(repeats)
    res.update(event_driven(event_sets))
    res["sweep_speedup_x"] = res["event_driven_100_sets_s_extrapolated"] / res["sweep_100_sets_s"]
    return res


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(), indent=2))
