"""The vectorised sweep: its pieces, and its agreement with the event-driven flow on the same strategy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from connectors.files import read_bars
from operators.features import CORE_V1, compute_features_array
from operators.strategies import EmaSpreadTrend, ZScoreReversion
from operators.sweep import (
    BarArrays,
    SimConfig,
    combine_equity,
    ema_spread,
    equity_stats,
    hysteresis_positions,
    next_open_fill_prices,
    param_grid,
    simulate,
    strategy_targets,
    sweep_trend,
    sweep_zscore,
    trend_positions,
    zscore_positions,
)
from tests.support import REPO

FILES = [REPO / "data" / "market" / "BTC-30m.csv.gz", REPO / "data" / "market" / "ETH-30m.csv.gz"]
N_BARS = 1500


def _bars(n: int = N_BARS) -> list[BarArrays]:
    out = []
    for f in FILES:
        df = read_bars(f).frame.head(n)
        out.append(BarArrays.from_columns(str(df["symbol"].iloc[0]), df, 1800))
    return out


def test_ema_spread_is_the_feature_bit_for_bit():
    b = _bars(800)[0]
    cols = dict(
        close=b.close,
        high=b.high,
        low=b.low,
        volume=b.volume,
        buy_volume=0 * b.volume,
        sell_volume=0 * b.volume,
        vwap=b.close,
        trade_count=0 * b.volume + 8,
    )
    ref = compute_features_array(cols, CORE_V1.with_resolution(1800))[:, CORE_V1.features.index("ema_spread")]
    got = ema_spread(b.close)
    assert np.array_equal(np.isnan(ref), np.isnan(got))
    assert np.array_equal(ref[~np.isnan(ref)], got[~np.isnan(got)])


def test_hysteresis_holds_between_events():
    up = np.array([[0, 1, 0, 0, 0, 0]], bool)
    dn = np.array([[0, 0, 0, 1, 0, 0]], bool)
    fl = np.array([[0, 0, 0, 0, 1, 0]], bool)
    assert hysteresis_positions(up, dn, fl).tolist() == [[0, 1, 1, -1, 0, 0]]


def test_trend_positions_equal_the_event_driven_strategy():
    b = _bars(1200)[0]
    spread = ema_spread(b.close)
    cols = dict(
        close=b.close,
        high=b.high,
        low=b.low,
        volume=b.volume,
        buy_volume=0 * b.volume,
        sell_volume=0 * b.volume,
        vwap=b.close,
        trade_count=0 * b.volume + 8,
    )
    feats = compute_features_array(cols, CORE_V1.with_resolution(1800))
    for entry, ex, short in ((0.01, 0.002, True), (0.004, 0.0, False)):
        vec = trend_positions(spread, np.array([entry]), np.array([ex]), allow_short=short)[0]
        ev = strategy_targets(EmaSpreadTrend(entry, ex, short), b, features=feats)
        assert np.array_equal(vec, ev)
        assert (vec != 0).any()


def test_zscore_positions_equal_the_event_driven_strategy():
    b = _bars(1200)[1]
    w, e, x = np.array([24, 48, 48]), np.array([2.0, 1.5, 2.5]), np.array([0.5, 0.0, 1.0])
    vec = zscore_positions(b.close, w, e, x)
    for i in range(3):
        ev = strategy_targets(ZScoreReversion(int(w[i]), e[i], x[i]), b)
        assert np.array_equal(vec[i], ev), i
        assert (vec[i] != 0).any()


def test_simulate_hand_computed_fees_and_slippage():
    # buy at bar 0's decision, fill at open[1] = 100 (+10 bps slippage = 100.1), fee 10 bps; sell at bar 2's
    # decision, fill at open[3] = 120 (-10 bps = 119.88)
    cfg = SimConfig(capital=1000.0, fraction=1.0, fee_bps=10.0, slippage_bps=10.0, min_notional=0.0)
    close = np.array([100.0, 110.0, 120.0, 125.0])
    fp = np.array([100.0, 105.0, 120.0, np.nan])
    r = simulate(np.array([[1.0, 1.0, 0.0, 0.0]]), close, fp, cfg)
    qty = 1.0 * 1000.0 / 100.0  # 10 units, sized at the decision close
    buy_px, sell_px = 100.0 * 1.001, 120.0 * 0.999
    cash1 = 1000.0 - qty * buy_px - qty * buy_px * 0.001
    cash2 = cash1 + qty * sell_px - qty * sell_px * 0.001
    assert r.equity[0].tolist() == pytest.approx([1000.0, cash1 + qty * 110.0, cash1 + qty * 120.0, cash2], rel=1e-13)
    assert r.position[0].tolist() == [0.0, 10.0, 10.0, 0.0]
    assert r.n_fills[0] == 2
    assert r.fees[0] == pytest.approx(qty * buy_px * 0.001 + qty * sell_px * 0.001, rel=1e-13)
    # a segment runs from the decision that opens it (its entry costs in) to the decision that ends it
    assert r.trade_pnls[0].tolist() == pytest.approx([cash1 + qty * 120.0 - 1000.0], rel=1e-12)


def test_simulate_min_notional_and_cap():
    cfg = SimConfig(capital=1000.0, fraction=2.0, max_position_frac=1.5, fee_bps=0, slippage_bps=0, min_notional=5.0)
    r = simulate(np.array([[1.0, 1.0, 1.0]]), np.array([100.0, 100.0, 100.0]), np.array([100.0, 100.0, np.nan]), cfg)
    assert r.position[0, 1] == 15.0  # 2 x equity capped at 1.5 x
    r = simulate(
        np.array([[0.001, 0.001]]), np.array([100.0, 100.0]), np.array([100.0, np.nan]), replace(cfg, fraction=1.0)
    )
    assert r.n_fills[0] == 0  # 1 quote < min_notional 5


def test_equity_stats_match_operators_performance():
    from operators.performance import summarize

    rng = np.random.default_rng(3)
    eq = 100 * np.cumprod(1 + rng.normal(0, 0.01, 500))
    ts = np.arange(500, dtype=np.int64) * 1800 * 10**9
    ref = summarize(ts, eq)
    got = equity_stats(eq[None, :], 1800)
    for k in ("sharpe", "max_drawdown_frac", "total_return_frac", "volatility_ann_frac", "cagr_frac", "calmar"):
        assert got[k][0] == pytest.approx(ref[k], rel=1e-9), k


def test_combine_equity_is_combine_marks():
    from operators.portfolio import combine_marks

    a = (np.array([1, 3]), np.array([[100.0, 110.0]]))
    b = (np.array([2, 3, 4]), np.array([[50.0, 40.0, 45.0]]))
    ts, eq = combine_equity([a, b])
    rts, req = combine_marks([("A", 1, 100.0), ("A", 3, 110.0), ("B", 2, 50.0), ("B", 3, 40.0), ("B", 4, 45.0)])
    assert ts.tolist() == rts.tolist() and eq[0].tolist() == req.tolist()


def test_sweep_grid_shapes_and_rows():
    bars = _bars(600)
    g = param_grid(entry=[0.004, 0.01], frac=[0.0, 0.5])
    res = sweep_trend(bars, g["entry"], g["entry"] * g["frac"])
    assert res.equity.shape[0] == 4 and res.stats["sharpe"].shape == (4,)
    rows = res.rows(top=2)
    assert len(rows) == 2 and rows[0]["sharpe"] >= rows[1]["sharpe"]
    z = sweep_zscore(bars, [24, 48], [2.0, 2.0], [0.5, 0.5])
    assert z.equity.shape == (2, res.equity.shape[1])
    with pytest.raises(ValueError):
        sweep_trend(bars, [0.01], [0.02])


@pytest.mark.parametrize("latency_s", [0.0, 0.05])
def test_sweep_agrees_with_event_driven_flow(latency_s):
    """Same strategy (EMA-spread trend), same bars: ``levibot backtest``'s flow (``run_history``: synthetic ticks ->
    1 s bars -> 30 min decision bars -> features -> strategy -> sizing -> the account stage with the simulated venue at fixed costs) and the vectorised path give
    the same trades and the same equity at every bar close. With ``latency_s = 0`` the broker fills at the next
    bar's open tick (the sweep's default fill price); with 50 ms it fills at the next bar's second synthetic tick,
    which the test passes as ``fill_price``. Tolerance: 1e-9 relative — the two paths do the same float operations
    in the same order (they agree bit for bit today), so any real difference (a missed trade, a different fill)
    is orders of magnitude larger."""
    from connectors.history import load_history
    from flows.embedded import EMBEDDED_PIPELINE, run_history
    from operators.pipeline import paper_broker_config
    from operators.synthetic import synthesize_ticks

    bars = _bars()
    history = load_history(FILES, ticks_per_bar=8, max_bars=N_BARS)
    for entry, ex in ((0.01, 0.002), (0.004, 0.001)):
        # one account per symbol (the sweep simulates each symbol on its own capital), the baseline's venue costs
        cfg = replace(
            EMBEDDED_PIPELINE,
            mode="baseline",
            models=False,
            trend_entry=entry,
            trend_exit=ex,
            accounts="per_symbol",
            broker=paper_broker_config(latency_s=latency_s),
        )
        res = run_history(history, None, cfg, progress=False)
        sc = SimConfig(
            capital=cfg.capital,
            fraction=cfg.fraction,
            max_position_frac=cfg.max_position_frac,
            min_notional=cfg.min_notional,
            fee_bps=cfg.broker.taker_fee_bps,
            slippage_bps=cfg.broker.half_spread_bps,
        )
        for b in bars:
            pos = trend_positions(ema_spread(b.close), np.array([entry]), np.array([ex]))
            if latency_s == 0:
                fp = next_open_fill_prices(b)
            else:
                tk = synthesize_ticks(
                    b.ts, b.open, b.high, b.low, b.close, b.volume, resolution_s=1800, n=8, symbol=b.symbol
                )
                fp = np.full(len(b), np.nan)
                fp[:-1] = tk.price.reshape(-1, 8)[1:, 1]
            sim = simulate(pos, b.close, fp, sc)
            marks = sorted((ts, eq) for s, ts, eq in res.marks if s == b.symbol)
            n = len(marks)
            assert n >= len(b) - 1
            assert [m[0] for m in marks] == b.mark_ts[:n].tolist()
            np.testing.assert_allclose([m[1] for m in marks], sim.equity[0, :n], rtol=1e-9, atol=0)
            fills = sorted((f for f in res.fills if f.symbol == b.symbol), key=lambda f: f.ts)
            assert len(fills) == int(sim.n_fills[0]) > 4
            q = np.cumsum([f.qty if f.side == "buy" else -f.qty for f in fills])
            held = sim.position[0][np.diff(sim.position[0], prepend=0.0) != 0]
            np.testing.assert_allclose(q, held, rtol=1e-9, atol=1e-12)
            assert sum(f.fee for f in fills) == pytest.approx(float(sim.fees[0]), rel=1e-9)


def test_levibot_sweep_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from flows.sweep import parse_axis, register

    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command, so Typer keeps sub-command names
        pass

    register(app)
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            *map(str, FILES),
            "--max-bars",
            "400",
            "--entries",
            "0.004,0.01",
            "--exit-fracs",
            "0,0.5",
            "--out",
            str(tmp_path),
            "--top",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "4 parameter sets x 2 symbols" in res.output
    assert (tmp_path / "sweep.html").exists() and (tmp_path / "sweep.json").exists()
    bad = CliRunner().invoke(app, ["sweep", "--strategy", "nope", "--max-bars", "100", "--out", str(tmp_path)])
    assert bad.exit_code == 2
    assert parse_axis("0:1:3") == [0.0, 0.5, 1.0]
