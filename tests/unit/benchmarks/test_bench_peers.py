"""The peers benchmark (benchmarks/peers/) at tiny sizes, so its code cannot rot.

The peers' venvs are too heavy for `make test` to build (measured: vectorbt about 830 MB and 12 minutes,
nautilus-trader about 680 MB and 4-5 minutes, quixstreams about 120 MB and 5 minutes on this loaded machine;
docs/performance.md, "Peers"), so these tests always run the project's side of each comparison and the comparison
code on real results, and run the peer itself only where `make bench BENCH_ARGS='--suite peers'` has already built
its venv. Speed is never asserted here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.peers import nautilus, venv
from benchmarks.peers import vectorbt as pv
from flows.cli import BUNDLED


def test_venv_marker_names_its_pins(tmp_path, monkeypatch):
    monkeypatch.setattr(venv, "ROOT", tmp_path)
    monkeypatch.setitem(venv.PINS, "demo", ("demo==1.0",))
    assert not venv.is_ready("demo")
    (tmp_path / "demo" / "bin").mkdir(parents=True)
    (tmp_path / "demo" / "bin" / "python").write_text("")
    (tmp_path / "demo" / ".pins").write_text(json.dumps({"pins": ["demo==1.0"], "install_s": 12.5, "size_mb": 3.0}))
    assert venv.is_ready("demo")
    assert venv.install_stats("demo") == {"demo_install_s": 12.5, "demo_venv_mb": 3.0}
    monkeypatch.setitem(venv.PINS, "demo", ("demo==2.0",))  # other pins: built again on next use
    assert not venv.is_ready("demo")
    with pytest.raises(KeyError, match="unknown peer"):
        venv.ensure("nosuchpeer")


def test_sweep_grids_and_the_equality_check():
    from flows.sweep import load_bar_arrays
    from operators.sweep import SimConfig, sweep_trend

    for n in (100, 1000):
        g = pv.grid(n)
        assert g["entry"].size == n and (g["exit"] <= g["entry"]).all()
    bars = load_bar_arrays(BUNDLED, max_bars=400)
    g = pv.grid(100)
    ours = sweep_trend(bars, g["entry"], g["exit"], SimConfig())
    symbols = [b.symbol for b in bars]
    same = {}
    for i, s in enumerate(symbols):
        same[f"equity{i}"] = ours.per_symbol[s].equity.copy()
        same[f"fills{i}"] = ours.per_symbol[s].n_fills.copy()
    assert sum(int(v.sum()) for k, v in same.items() if k.startswith("fills")) > 0
    assert pv.compare(ours, same, symbols)["max_rel_equity_diff"] == 0.0
    off = dict(same)
    off["equity1"] = same["equity1"] * (1 + 1e-7)  # beyond the 1e-9 tolerance
    with pytest.raises(AssertionError, match="differ on ETH-USD"):
        pv.compare(ours, off, symbols)
    off = dict(same)
    off["fills0"] = same["fills0"] + (np.arange(100) == 7)
    with pytest.raises(AssertionError, match="fill counts differ for 1 sets"):
        pv.compare(ours, off, symbols)


def test_vectorbt_peer_gives_equal_results_when_its_venv_exists():
    if not venv.is_ready("vectorbt"):
        return  # built by `make bench BENCH_ARGS='--suite peers'` only (too heavy for `make test`)
    got = pv.run(n_sets=100, rounds=1, max_bars=300)  # raises if any equity or fill count differs
    assert got["vectorbt_100_max_rel_equity_diff"] <= pv.RTOL
    assert got["vectorbt_100_project_s"] > 0 and got["vectorbt_100_peer_s"] > 0


def test_backtest_peer_inputs_and_the_project_side(tmp_path):
    from connectors.history import load_history
    from flows.embedded import run_history

    history = load_history(BUNDLED, ticks_per_bar=8, max_bars=120)
    cfg = nautilus.baseline_config()
    names, n_bars = nautilus._write_inputs(tmp_path / "in.npz", history, BUNDLED, cfg, 120)
    assert names == ["BTC-USD", "ETH-USD"] and n_bars == 240
    with np.load(tmp_path / "in.npz") as z:
        assert z["tick_ts0"].size == z["tick_ts1"].size == 120 * 8
        assert z["bar_close0"].size == 120
        # the first tick of each bar is at its open time, at its open price (where the project's broker fills)
        np.testing.assert_array_equal(z["tick_ts0"][::8], z["bar_ts0"])
        np.testing.assert_array_equal(z["tick_px0"][::8], z["bar_open0"])
        assert tuple(z["params"][:2]) == (cfg.trend_entry, cfg.trend_exit)
    res = run_history(history, None, cfg, progress=False)
    summary = nautilus._project_summary(res)
    assert set(summary) == {"BTC-USD", "ETH-USD"}
    assert sum(v["fills"] for v in summary.values()) == len(res.fills)
    for s, row in summary.items():
        last = max((ts, eq) for a, ts, eq in res.marks if a == s)
        assert row["final_equity"] == last[1]


def test_nautilus_peer_trades_like_the_project_when_its_venv_exists():
    if not venv.is_ready("nautilus"):
        return  # built by `make bench BENCH_ARGS='--suite peers'` only (too heavy for `make test`)
    got = nautilus.run(rounds=1, max_bars=600, symbol_counts=(1,))
    # same rule, same ticks, same decisions: as many orders as the project's fills (one per order; Nautilus may
    # split an order into several fills); the equity differs by the 1 bp half-spread the project's broker charges
    # and Nautilus's default fill model does not
    assert got["nautilus_1sym_BTC-USD_peer_ticks_orders"] == got["nautilus_1sym_BTC-USD_project_fills"] > 0
    assert got["nautilus_1sym_BTC-USD_peer_bars_orders"] == got["nautilus_1sym_BTC-USD_project_fills"]
    ours, theirs = (
        got["nautilus_1sym_BTC-USD_project_final_equity"],
        got["nautilus_1sym_BTC-USD_peer_ticks_final_equity"],
    )
    assert theirs == pytest.approx(ours, rel=1e-3)
