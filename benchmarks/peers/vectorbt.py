"""vectorbt against the project's vectorised sweep: the EMA-spread trend rule for 100 and 1,000 parameter sets over
the bundled BTC and ETH 30-minute bars, results compared for equality.

* Project: ``operators.sweep.sweep_trend`` (the ``ema_spread`` feature, positions of every set, the simulation,
  the portfolio sum and its statistics). Timed around the call, file loading excluded.
* vectorbt (its own venv, ``scripts/vectorbt_job.py``): the same ``ema_spread`` (EMA12 and EMA26 seeded by the
  simple mean of their first closes, as the project's features; NaN until the project's feature vector is warm,
  bar 25), then ``Portfolio.from_order_func`` with a Numba order function per parameter set that applies the same
  hysteresis rule at each bar close and sizes the order as the project does (target = position x 0.5 x equity at
  the close / close, capped at 1 x equity, skipped below 10 quote), filled at the next bar's open with 1 bp
  slippage and a 7.5 bp fee. Timed inside, from the spread to the value matrix (Numba compilation excluded: one
  untimed warm-up run on a few bars first).

Equality: every parameter set's equity at every bar close and its number of fills, per symbol, within a
relative 1e-9 (the two do the same float operations in an order that can differ); the benchmark raises if any
differ.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.peers import venv
from benchmarks.peers.common import alternate
from operators.sweep import SimConfig, param_grid, sweep_trend

RTOL = 1e-9


def grid(n: int) -> dict[str, np.ndarray]:
    """100 sets: 10 entry thresholds (0.2 %..2 % of price) x 10 exit fractions (0..0.9 of the entry), the sweep
    benchmark's grid; 1,000 sets: 40 x 25 over the same ranges."""
    a, b = {100: (10, 10), 1000: (40, 25)}[n]
    g = param_grid(entry=np.linspace(0.002, 0.02, a), frac=np.linspace(0.0, 0.9, b))
    return {"entry": g["entry"], "exit": g["entry"] * g["frac"]}


def _write_inputs(path: Path, bars: list, g: dict[str, np.ndarray], cfg: SimConfig) -> None:
    arrays = {"entry": g["entry"], "exit": g["exit"]}
    for i, b in enumerate(bars):
        arrays[f"open{i}"] = b.open
        arrays[f"close{i}"] = b.close
    arrays["cfg"] = np.array(
        [cfg.capital, cfg.fraction, cfg.max_position_frac, cfg.min_notional, cfg.fee_bps, cfg.slippage_bps]
    )
    np.savez(path, **arrays)


def compare(ours, theirs: dict[str, np.ndarray], symbols: list[str]) -> dict[str, float]:
    """Largest relative equity difference and fill-count mismatches over every set, symbol and bar; raises if any
    equity differs by more than :data:`RTOL` or any fill count differs."""
    worst = 0.0
    for i, sym in enumerate(symbols):
        mine = ours.per_symbol[sym]
        eq, fills = theirs[f"equity{i}"], theirs[f"fills{i}"]
        if eq.shape != mine.equity.shape:
            raise AssertionError(f"vectorbt equity shape {eq.shape} != project {mine.equity.shape} ({sym})")
        rel = float(np.max(np.abs(eq - mine.equity) / np.abs(mine.equity)))
        worst = max(worst, rel)
        bad = np.nonzero(fills != mine.n_fills)[0]
        if bad.size or rel > RTOL:
            raise AssertionError(
                f"vectorbt and the project differ on {sym}: largest relative equity difference {rel:.3g} "
                f"(tolerance {RTOL:g}), fill counts differ for {bad.size} sets (first: set {bad[:5].tolist()})"
            )
    return {"max_rel_equity_diff": worst}


def run(n_sets: int = 100, rounds: int = 3, max_bars: int | None = None) -> dict[str, float]:
    """Medians of ``rounds`` alternated runs of the ``n_sets`` sweep and ``vectorbt_<n>_ratio`` = vectorbt
    seconds / project seconds; the results must be equal (else AssertionError)."""
    from flows.cli import BUNDLED
    from flows.sweep import load_bar_arrays

    bars = load_bar_arrays(BUNDLED, max_bars=max_bars)
    symbols = [b.symbol for b in bars]
    g = grid(n_sets)
    cfg = SimConfig()
    venv.ensure("vectorbt")
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="peer-vbt-") as d:
        inp, res_path = Path(d) / "in.npz", Path(d) / "out.npz"
        _write_inputs(inp, bars, g, cfg)

        def ours() -> float:
            t = time.perf_counter()
            out["ours"] = sweep_trend(bars, g["entry"], g["exit"], cfg)
            return time.perf_counter() - t

        def peer() -> float:
            got = venv.run_script("vectorbt", "vectorbt_job.py", [str(inp), str(res_path), str(len(bars))])
            out["version"] = got["version"]
            return float(got["seconds"])

        tag = f"vectorbt_{n_sets}"
        res = alternate(tag, ours, peer, rounds)
        with np.load(res_path) as z:
            theirs = {k: z[k] for k in z.files}
    same = compare(out["ours"], theirs, symbols)
    res[f"{tag}_max_rel_equity_diff"] = same["max_rel_equity_diff"]
    res[f"{tag}_bars"] = float(sum(len(b) for b in bars))
    res[f"{tag}_fills"] = float(sum(int(r.n_fills.sum()) for r in out["ours"].per_symbol.values()))
    res.update(venv.install_stats("vectorbt"))
    return res
