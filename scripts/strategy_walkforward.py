"""Walk-forward (out-of-sample) results of each strategy and of the orchestrated portfolio, after costs, on the
bundled BTC and ETH 30-minute bars. Writes a markdown table (stdout) and JSON (var/reports/walkforward.json).

Protocol: rolling folds of a 180-day training window followed by a 90-day test window (test windows tile the
history after the first 180 days). For each fold and strategy the parameter set with the best Sharpe on the
training window (both symbols, after costs) is chosen from a small grid; it is then run on the test window only.
The strategies run causally from the start of the training window (so indicators are warm) but only test-window
decisions are traded; test segments are chained (each starts at the previous one's final equity).
Execution and costs: ``operators.sweep.simulate`` (the pipeline's model: next-bar-open fills, 7.5 bps fee,
1 bp slippage, 50 % of equity per position at full conviction, 100,000 quote per symbol).

* ML score: a logistic regression on the 14 core features (standardised on the training window, L2 = 1),
  label = next 4 bars' return > 0, fitted per fold on the training window only; thresholds fixed (0.55 / 0.45,
  exit band 0.48-0.52: not tuned).
* Telegram follower: no real signal history is bundled for these years, so signals come from a synthetic,
  rule-based "channel" (a 48-bar Donchian breakout posts an entry zone ±0.2 % around the close, three targets at
  1/2/3 ATR and a stop at 2 ATR; trust 0.7). It exercises the follower's mechanics end to end; it is not
  evidence about any real channel.
* Portfolio: one orchestrator per symbol over the five strategies (each with its fold's chosen parameters),
  risk parity (inverse 480-bar realised strategy volatility) and static equal weights.

Run: ``.venv/bin/python scripts/strategy_walkforward.py`` (about a minute or two).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.report import json_clean  # noqa: E402
from flows.sweep import load_bar_arrays  # noqa: E402
from operators.features import CORE_V1, compute_features_array  # noqa: E402
from operators.orchestrator import Orchestrator  # noqa: E402
from operators.strategies import (EmaSpreadTrend, MLScoreThreshold, SignalFollower, VolatilityBreakout,  # noqa: E402
                                  ZScoreReversion)
from operators.sweep import SimConfig, combine_equity, equity_stats, next_open_fill_prices, simulate, strategy_targets  # noqa: E402
from schemas.events import Signal  # noqa: E402

BARS_PER_DAY = 48
TRAIN, TEST = 180 * BARS_PER_DAY, 90 * BARS_PER_DAY
CFG = SimConfig()
GRIDS = {
    "trend": [dict(entry=e, exit=e * f) for e, f in itertools.product([0.004, 0.007, 0.01, 0.015, 0.02], [0.0, 0.25, 0.5])],
    "zscore_mr": [dict(window=w, entry_z=e, exit_z=x) for w, e, x in itertools.product([24, 48, 96], [2.0, 2.5, 3.0], [0.0, 0.5])],
    "vol_breakout": [dict(window=w, k=k) for w, k in itertools.product([24, 48, 96], [1.5, 2.0, 3.0])],
    "ml_score": [dict()],
    "tg_follow": [dict(zone_tolerance_bps=z) for z in (20.0, 50.0)],
}


def make(name: str, p: dict):
    if name == "trend":
        return EmaSpreadTrend(p["entry"], p["exit"], name="trend")
    if name == "zscore_mr":
        return ZScoreReversion(int(p["window"]), p["entry_z"], p["exit_z"])
    if name == "vol_breakout":
        return VolatilityBreakout(int(p["window"]), p["k"])
    if name == "ml_score":
        return MLScoreThreshold(0.55, 0.45, 0.52, 0.48)
    return SignalFollower(max_size=1.0, zone_tolerance_bps=p["zone_tolerance_bps"])


def features(b) -> np.ndarray:
    cols = dict(close=b.close, high=b.high, low=b.low, volume=b.volume, buy_volume=0 * b.volume,
                sell_volume=0 * b.volume, vwap=(b.high + b.low + b.close) / 3, trade_count=0 * b.volume + 8)
    return compute_features_array(cols, CORE_V1.with_resolution(b.resolution_s))


def synthetic_signals(b, window: int = 48) -> list[Signal]:
    """Rule-based stand-in for a Telegram channel (see the module docstring). Causal: posted after the bar close."""
    out = []
    c, h, lo = b.close, b.high, b.low
    tr = np.maximum(h[1:], c[:-1]) - np.minimum(lo[1:], c[:-1])
    last = -10**9
    for t in range(window + 1, len(b)):
        hi, lw = h[t - window:t].max(), lo[t - window:t].min()
        atr = tr[t - window:t].mean()
        side = "long" if c[t] > hi else "short" if c[t] < lw else None
        if side is None or t - last < window or atr <= 0:
            continue
        last = t
        sgn = 1 if side == "long" else -1
        out.append(Signal(id=f"syn-{b.symbol}-{t}", source_chat="@synthetic", source_message_id=t, symbol=b.symbol,
                          side=side, entries=[float(c[t] * 0.998), float(c[t] * 1.002)],
                          targets=[float(c[t] + sgn * k * atr) for k in (1, 2, 3)],
                          stop=float(c[t] - sgn * 2 * atr), trust=0.7, ts=int(b.mark_ts[t]) + 10**9))
    return out


def fit_logit(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 25) -> np.ndarray:
    """Newton-Raphson logistic regression with an intercept and an L2 penalty (not on the intercept)."""
    Xb = np.hstack([np.ones((len(X), 1)), X])
    w = np.zeros(Xb.shape[1])
    reg = np.full(Xb.shape[1], l2)
    reg[0] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-Xb @ w))
        g = Xb.T @ (p - y) + reg * w
        H = (Xb * (p * (1 - p))[:, None]).T @ Xb + np.diag(reg)
        w -= np.linalg.solve(H, g)
    return w


def ml_scores(F: np.ndarray, close: np.ndarray, tr: slice, te: slice, horizon: int = 4) -> np.ndarray:
    """Scores for the test window from a model fitted on the training window only (labels inside it)."""
    fwd = np.full(len(close), np.nan)
    fwd[:-horizon] = close[horizon:] / close[:-horizon] - 1
    idx = np.arange(tr.start, tr.stop - horizon)
    ok = idx[~np.isnan(F[idx]).any(axis=1)]
    mu, sd = F[ok].mean(axis=0), F[ok].std(axis=0) + 1e-12
    w = fit_logit((F[ok] - mu) / sd, (fwd[ok] > 0).astype(float))
    s = np.full(len(close), np.nan)
    Xt = (F[te] - mu) / sd
    s[te] = 1 / (1 + np.exp(-(w[0] + Xt @ w[1:])))
    return s


def targets_for(strat, b, F, sigs, lo: int, hi: int, scores=None) -> np.ndarray:
    sb = b.slice(lo, hi)
    ss = [s for s in sigs if b.mark_ts[lo] <= s.ts <= b.mark_ts[hi - 1]]
    return strategy_targets(strat, sb, F[lo:hi], None if scores is None else scores[lo:hi], ss)


def sim_window(tg: np.ndarray, b, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(mark ts, equity) of one symbol over bars [lo, hi)."""
    sb = b.slice(lo, hi)
    return sb.mark_ts, simulate(tg[None, :], sb.close, next_open_fill_prices(sb), CFG).equity


def total_ts(parts) -> tuple[np.ndarray, np.ndarray]:
    """Portfolio ``(mark ts, equity)``: sum over symbols on the union of their mark times, from the first time every
    symbol has a mark (so a symbol whose window starts one bar later does not show up as a jump)."""
    u, tot = combine_equity(parts)
    keep = u >= max(int(ts[0]) for ts, _ in parts)
    return u[keep], tot[0][keep]


def total(parts) -> np.ndarray:
    """Portfolio equity of :func:`total_ts`."""
    return total_ts(parts)[1]


def sharpe_of(parts) -> float:
    return float(equity_stats(total(parts)[None, :], 1800)["sharpe"][0])


def main(max_bars: int | None = None) -> dict:
    """The walk-forward over the bundled bars (the first ``max_bars`` of each symbol when given). The result's
    ``curves`` hold each strategy's chained out-of-sample equity ``(ts ns, equity quote)``."""
    t0 = time.time()
    bars = load_bar_arrays([ROOT / "data/market/BTC-30m.csv.gz", ROOT / "data/market/ETH-30m.csv.gz"], max_bars=max_bars)
    n = min(len(b) for b in bars)
    feats = [features(b) for b in bars]
    sigs = [synthetic_signals(b) for b in bars]
    # fold bounds in event time (from the first symbol's bar grid), cut per symbol by time (their gaps differ)
    grid = bars[0].mark_ts
    tfolds = [(grid[s], grid[s + TRAIN], grid[min(s + TRAIN + TEST, n - 1)])
              for s in range(0, n - TRAIN - BARS_PER_DAY, TEST)]
    folds = [[tuple(int(np.searchsorted(b.mark_ts, t)) for t in tf) for b in bars] for tf in tfolds]
    names = list(GRIDS)
    oos: dict[str, list[np.ndarray]] = {k: [] for k in names + ["portfolio_risk_parity", "portfolio_static"]}
    oos_ts: dict[str, list[np.ndarray]] = {k: [] for k in oos}
    chosen: dict[str, list] = {k: [] for k in names}
    for fold in folds:
        scores = [ml_scores(F, b.close, slice(f0, f1), slice(f1, f2)) for F, b, (f0, f1, f2) in zip(feats, bars, fold)]
        best_p = {}
        for name in names:
            best, bp = -np.inf, None
            for p in GRIDS[name]:
                if name == "ml_score":
                    bp = p
                    break
                eqs = [sim_window(targets_for(make(name, p), b, F, sg, f0, f1), b, f0, f1)
                       for b, F, sg, (f0, f1, _) in zip(bars, feats, sigs, fold)]
                sr = sharpe_of(eqs)
                if sr == sr and sr > best:
                    best, bp = sr, p
            best_p[name] = bp if bp is not None else GRIDS[name][0]
            chosen[name].append(best_p[name])
        for name in names + ["portfolio_risk_parity", "portfolio_static"]:
            seg = []
            for b, F, sg, sc, (f0, f1, f2) in zip(bars, feats, sigs, scores, fold):
                if name.startswith("portfolio"):
                    strat = Orchestrator([make(k, best_p[k]) for k in names],
                                         allocation="risk_parity" if name.endswith("parity") else "static")
                else:
                    strat = make(name, best_p[name])
                tg = targets_for(strat, b, F, sg, f0, f2, scores=sc)   # warm on the training window
                seg.append(sim_window(tg[f1 - f0:], b, f1, f2))
            seg_ts, seg_eq = total_ts(seg)
            oos[name].append(seg_eq)
            oos_ts[name].append(seg_ts)
    rows = []
    curves = {}
    for name, segs in oos.items():
        r = np.concatenate([s[1:] / s[:-1] - 1 for s in segs])
        eq = 2 * CFG.capital * np.concatenate([[1.0], np.cumprod(1 + r)])
        st = {k: float(v[0]) for k, v in equity_stats(eq[None, :], 1800).items()}
        rows.append({"strategy": name, **st})
        curves[name] = (np.concatenate([oos_ts[name][0][:1]] + [t[1:] for t in oos_ts[name]]), eq)
    out = {"folds": len(folds), "test_start_ts_ns": int(tfolds[0][1]), "test_end_ts_ns": int(tfolds[-1][2]),
           "rows": rows, "chosen": chosen, "seconds": time.time() - t0, "curves": curves,
           "prices": {b.symbol: (b.mark_ts, b.close) for b in bars}}
    return out


if __name__ == "__main__":
    res = main()
    print(f"{res['folds']} folds, out-of-sample from {np.datetime64(res['test_start_ts_ns'], 'ns')} to "
          f"{np.datetime64(res['test_end_ts_ns'], 'ns')}, {res['seconds']:.0f}s\n")
    print("| strategy | total return | CAGR | Sharpe | ann. vol | max drawdown | Calmar |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        print(f"| {r['strategy']} | {r['total_return_frac']:.1%} | {r['cagr_frac']:.1%} | {r['sharpe']:.2f} | "
              f"{r['volatility_ann_frac']:.1%} | {r['max_drawdown_frac']:.1%} | {r['calmar']:.2f} |")
    print("\nchosen parameters per fold:")
    for k, v in res["chosen"].items():
        print(f"  {k}: {v}")
    out = ROOT / "var" / "reports" / "walkforward.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_clean({k: v for k, v in res.items() if k not in ("curves", "prices")}), indent=1))
