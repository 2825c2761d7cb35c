"""NautilusTrader's ``BacktestEngine`` against the project's event-driven backtest: the EMA-spread trend rule on
the same synthetic ticks and on the same 30-minute bars, for one instrument (BTC) and for both (BTC and ETH, one
account each).

* Project, event-driven baseline: ``flows.embedded.run_history`` (the ``levibot backtest`` flow: ticks -> 5 min
  and 30 min bars -> features -> the one EMA-spread strategy -> fixed-fraction sizing -> the account stage with the
  simulated venue), ``mode="baseline"``, no models, one account per symbol, fills at the next bar's open tick with
  a 1 bp half-spread and a 7.5 bp fee: the configuration the vectorised sweep is checked against. The project turns
  bars into ticks (8 per bar) to backtest them, so on bars the project side is this same run.
* Project, full default path: ``run_history`` with the pipeline of ``make run`` (five strategies under the
  orchestrator, River and LightGBM models, the VaR gate, TWAP) and no store.
* NautilusTrader (its own venv, ``scripts/nautilus_job.py``): the rule as a ``Strategy``, on the ticks (its own
  30-minute time bars) and on the bars (``bar_execution``).

All timed inside the process around the run itself (history loading, engine set-up and imports not timed); the
sides rotate (project baseline, Nautilus on ticks, Nautilus on bars, project full path, ...). Ratios are Nautilus
seconds / project seconds over the same bars (above 1: the project is faster per bar).

Fills and final equity of both sides are reported side by side (not asserted equal: the fill models differ, see
docs/performance.md).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.peers import venv
from benchmarks.peers.common import rotate


def baseline_config():
    """The event-driven baseline: one EMA-spread strategy, one account per symbol, fills at the next open tick."""
    from flows.embedded import EMBEDDED_PIPELINE
    from operators.pipeline import paper_broker_config

    return replace(
        EMBEDDED_PIPELINE,
        mode="baseline",
        models=False,
        accounts="per_symbol",
        broker=paper_broker_config(latency_s=0.0),
    )


def _write_inputs(path: Path, history, files: list, cfg, max_bars: int | None) -> tuple[list[str], int]:
    from flows.sweep import load_bar_arrays

    bars = {}
    for f in files:
        for b in load_bar_arrays([f], max_bars=max_bars):
            bars[b.symbol] = b
    t = history.ticks
    names = sorted(bars)
    arrays: dict[str, np.ndarray] = {
        "names": np.array(names),
        "params": np.array(
            [
                cfg.trend_entry,
                cfg.trend_exit,
                cfg.capital,
                cfg.fraction,
                cfg.max_position_frac,
                cfg.min_notional,
                cfg.broker.taker_fee_bps,
            ]
        ),
    }
    for k, sym in enumerate(names):
        g = t[t["symbol"] == sym]
        arrays[f"tick_ts{k}"] = g["ts"].to_numpy(np.int64)
        arrays[f"tick_px{k}"] = g["price"].to_numpy(np.float64)
        arrays[f"tick_qty{k}"] = g["qty"].to_numpy(np.float64)
        arrays[f"tick_side{k}"] = np.where(g["side"].to_numpy() == "buy", 1, 2).astype(np.uint8)
        b = bars[sym]
        arrays[f"bar_ts{k}"] = b.ts
        for c in ("open", "high", "low", "close", "volume"):
            arrays[f"bar_{c}{k}"] = getattr(b, c)
    np.savez(path, **arrays)
    return names, sum(len(b) for b in bars.values())


def _project_summary(res) -> dict[str, dict[str, float]]:
    """Fills and final equity per account of an in-process run (accounts named after their symbol when per symbol)."""
    out: dict[str, dict[str, float]] = {}
    last: dict[str, tuple[int, float]] = {}
    for acct, ts, eq in res.marks:
        if acct not in last or ts >= last[acct][0]:
            last[acct] = (ts, eq)
    for acct, (_, eq) in last.items():
        out[acct] = {"final_equity": float(eq), "fills": 0.0, "fees": 0.0}
    for f in res.fills:
        key = f.symbol if f.symbol in out else next(iter(out), f.symbol)
        row = out.setdefault(key, {"final_equity": float("nan"), "fills": 0.0, "fees": 0.0})
        row["fills"] += 1
        row["fees"] += float(f.fee)
    return out


def run(rounds: int = 2, max_bars: int | None = None, symbol_counts: tuple[int, ...] = (1, 2)) -> dict[str, float]:
    """Rotated runs for one instrument (BTC) and both; per count ``n``: ``nautilus_<n>sym_ticks_ratio`` (Nautilus on
    ticks / project baseline), ``..._bars_ratio`` (Nautilus on bars / project baseline), ``..._full_ratio``
    (Nautilus on ticks / the project's full default path), bars, microseconds per bar, fills and final equity."""
    from connectors.history import load_history
    from flows.cli import BUNDLED
    from flows.embedded import EMBEDDED_PIPELINE, run_history

    venv.ensure("nautilus")
    base = baseline_config()
    res_all: dict[str, float] = {}
    for n in symbol_counts:
        files = BUNDLED[:n]
        history = load_history(files, ticks_per_bar=8, max_bars=max_bars)
        tag = f"nautilus_{n}sym"
        keep: dict = {}
        with tempfile.TemporaryDirectory(prefix="peer-nautilus-") as d:
            inp = Path(d) / "in.npz"
            names, n_bars = _write_inputs(inp, history, files, base, max_bars)

            def project(cfg, key):
                def go() -> float:
                    r = run_history(history, None, cfg, progress=False)  # noqa: B023 - called within this iteration
                    keep[key] = r  # noqa: B023 - called within this iteration
                    return r.seconds

                return go

            def peer(mode):
                def go() -> float:
                    fills = Path(d) / f"fills-{mode}.json"
                    got = venv.run_script(
                        "nautilus",
                        "nautilus_job.py",
                        [str(inp), "--mode", mode, "--symbols", str(n), "--fills-out", str(fills)],  # noqa: B023 - called within this iteration
                    )
                    keep[mode] = got  # noqa: B023 - called within this iteration
                    keep[f"{mode}_fills"] = json.loads(fills.read_text())  # noqa: B023 - called within this iteration
                    return float(got["seconds"])

                return go

            res = rotate(
                tag,
                {
                    "project_baseline": project(base, "baseline"),
                    "peer_ticks": peer("ticks"),
                    "peer_bars": peer("bars"),
                    "project_full": project(EMBEDDED_PIPELINE, "full"),
                },
                rounds,
            )
        res[f"{tag}_bars"] = float(n_bars)
        res[f"{tag}_ticks"] = float(len(history))
        res[f"{tag}_ticks_ratio"] = res[f"{tag}_peer_ticks_s"] / res[f"{tag}_project_baseline_s"]
        res[f"{tag}_bars_ratio"] = res[f"{tag}_peer_bars_s"] / res[f"{tag}_project_baseline_s"]
        res[f"{tag}_full_ratio"] = res[f"{tag}_peer_ticks_s"] / res[f"{tag}_project_full_s"]
        for side in ("project_baseline", "peer_ticks", "peer_bars", "project_full"):
            res[f"{tag}_{side}_us_per_bar"] = res[f"{tag}_{side}_s"] / n_bars * 1e6
        base_sum = _project_summary(keep["baseline"])
        full_sum = _project_summary(keep["full"])
        for s in names:
            res[f"{tag}_{s}_project_fills"] = base_sum.get(s, {}).get("fills", float("nan"))
            res[f"{tag}_{s}_project_final_equity"] = base_sum.get(s, {}).get("final_equity", float("nan"))
            for mode in ("ticks", "bars"):
                row = keep[mode]["symbols"][s]
                res[f"{tag}_{s}_peer_{mode}_orders"] = float(row["orders"])
                res[f"{tag}_{s}_peer_{mode}_fills"] = float(row["fills"])
                res[f"{tag}_{s}_peer_{mode}_final_equity"] = float(row["final_equity"])
                res[f"{tag}_{s}_peer_{mode}_account_equity"] = float(row["account_equity"])
                res[f"{tag}_{s}_peer_{mode}_bars"] = float(row["bars"])
        res[f"{tag}_full_fills"] = float(sum(v["fills"] for v in full_sum.values()))
        res[f"{tag}_full_final_equity"] = float(sum(v["final_equity"] for v in full_sum.values()))
        # where the two sides' fills first part: the first fills of BTC on ticks (time, signed quantity, price)
        keep_first = keep["ticks_fills"].get(names[0], [])[:3]
        mine = sorted((f for f in keep["baseline"].fills if f.symbol == names[0]), key=lambda f: f.ts)[:3]
        first = {
            "peer_ticks": keep_first,
            "project": [(int(f.ts), f.qty if f.side == "buy" else -f.qty, float(f.price)) for f in mine],
        }
        print(f"  {tag} first fills of {names[0]} (ns, signed qty, price): {json.dumps(first)}", file=sys.stderr)
        res_all.update(res)
    res_all.update(venv.install_stats("nautilus"))
    return res_all
