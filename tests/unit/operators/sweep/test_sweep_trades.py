"""Sweep trades carry their fees: each round trip of a vectorised sweep gets the fees of its fills (a flip's fee
split by quantity, as the event-driven trade extraction does), and the trades' fees add up to the sweep's total."""

from __future__ import annotations

import numpy as np
import pytest

from operators.report.trades import round_trips, trades_from_positions
from operators.sweep import BarArrays, SimConfig, simulate, sweep_trend

NS = 1_000_000_000


def _hand_built():
    """Four position changes on one row: buy 10, add 5, flip to short 10, cover; fee 10 bps, no slippage."""
    cfg = SimConfig(
        capital=1000.0, fraction=1.0, max_position_frac=10.0, fee_bps=10.0, slippage_bps=0.0, min_notional=0.0
    )
    close = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    fp = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 100.0, np.nan])
    # targets (fractions of equity at each close): 1 -> 1.5 -> -1 -> 0
    tg = np.array([[1.0, 1.5, 1.5, -1.0, -1.0, 0.0, 0.0]])
    return simulate(tg, close, fp, cfg), cfg


def test_hand_built_sweep_fees_per_trade_add_up_to_the_total():
    r, _cfg = _hand_built()
    ts = np.arange(7) * 60 * NS
    assert r.position[0].tolist() == pytest.approx([0.0, 10.0, 14.985, 14.985, -9.98999, -9.98999, 0.0], rel=1e-3)
    fills = [  # the same fills, as the event-driven extraction sees them
        dict(
            symbol="X",
            side="buy" if d > 0 else "sell",
            qty=abs(d),
            price=100.0,
            fee=abs(d) * 100.0 * 1e-3,
            ts=int(ts[i]),
        )
        for i, d in enumerate(np.diff(np.concatenate([[0.0], r.position[0]])))
        if d != 0.0
    ]
    assert len(fills) == 4 and r.n_fills[0] == 4
    assert sum(f["fee"] for f in fills) == pytest.approx(r.fees[0], rel=1e-12)
    closed, _ = round_trips(fills)
    trades = r.trades(0, "X", ts, "sweep")
    assert [(t.side, t.open_ts, t.close_ts) for t in trades] == [(t.side, t.open_ts, t.close_ts) for t in closed]
    # per trade: the buy and the add, plus the part of the flip that reaches flat; the rest of the flip and the cover
    flip = fills[2]
    long_part = 14.985 / flip["qty"]
    assert [t.fees for t in trades] == pytest.approx(
        [fills[0]["fee"] + fills[1]["fee"] + flip["fee"] * long_part, flip["fee"] * (1 - long_part) + fills[3]["fee"]],
        rel=1e-3,
    )
    assert [t.fees for t in trades] == pytest.approx([t.fees for t in closed], rel=1e-12)
    assert sum(t.fees for t in trades) == pytest.approx(r.fees[0], rel=1e-12)
    assert [t.fills for t in trades] == [3, 2]


def test_open_trade_keeps_its_fees_and_without_fees_nothing_is_split():
    cfg = SimConfig(capital=1000.0, fraction=1.0, fee_bps=7.5, slippage_bps=5.0, min_notional=0.0)
    close = np.array([100.0, 101.0, 102.0, 103.0])
    r = simulate(np.array([[1.0, 1.0, 1.0, 1.0]]), close, np.array([100.0, 101.0, 102.0, np.nan]), cfg)
    ts = np.arange(4) * NS
    (t,) = r.trades(0, "X", ts)
    assert t.close_ts is None and t.fees == pytest.approx(r.fees[0], rel=1e-15) and t.fees > 0
    (u,) = trades_from_positions("X", ts, r.position[0], r.equity[0])
    assert u.fees == 0.0 and u.pnl == t.pnl
    with pytest.raises(ValueError):
        trades_from_positions("X", ts, r.position[0], r.equity[0], fees=[0.0])


def test_sweep_trades_fees_add_up_for_every_parameter_set_and_in_the_report():
    rng = np.random.default_rng(7)
    n = 3000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opn = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 0.0005, n))
    ts = 1_700_000_000 * NS + np.arange(n) * 1800 * NS
    bars = [
        BarArrays(
            "BTC-USD", ts, opn, np.maximum(opn, close) * 1.001, np.minimum(opn, close) * 0.999, close, np.ones(n), 1800
        )
    ]
    cfg = SimConfig(fee_bps=7.5, slippage_bps=2.0)
    res = sweep_trend(
        bars, np.array([0.0005, 0.001, 0.002, 0.004]), np.array([0.0, 0.0002, 0.0, 0.001]), cfg, allow_short=True
    )
    r = res.per_symbol["BTC-USD"]
    flips = 0
    for p in range(r.equity.shape[0]):
        tr = r.trades(p, "BTC-USD", bars[0].mark_ts)
        assert len(tr) > 5
        assert sum(t.fees for t in tr) == pytest.approx(r.fees[p], rel=1e-9)
        assert sum(t.fills for t in tr) >= r.n_fills[p]  # a flip counts in both trades
        assert all(t.fees > 0 for t in tr)
        flips += sum(t.fills for t in tr) - int(r.n_fills[p])
    assert flips > 0  # the short side makes flips, whose fees are split
    from flows.sweep import sweep_report

    sheet = sweep_report(res, bars, "test sweep", 0.1, cfg)
    best = int(np.nanargmax(np.nan_to_num(res.stats["sharpe"], nan=-np.inf)))
    trades = next(s for s in sheet.sections if s.key == "trades")
    tables = {t.key: t for t in trades.tables}
    assert all(row["fees"] > 0 for row in tables["largest_trades"].rows)
    closed = [t for t in r.trades(best, "BTC-USD", bars[0].mark_ts) if t.close_ts is not None]
    assert sum(row["fees"] for row in tables["by_side"].rows) == pytest.approx(sum(t.fees for t in closed), rel=1e-9)
