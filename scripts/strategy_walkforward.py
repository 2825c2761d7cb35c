"""Walk-forward (out-of-sample) results of each strategy and of the orchestrated portfolio, after costs, on the
bundled BTC and ETH 30-minute bars. Writes a markdown table (stdout) and JSON (var/reports/walkforward.json).

Protocol: rolling folds of a 180-day training window followed by a 90-day test window (test windows tile the
history after the first 180 days). For each fold and strategy the parameter set with the best Sharpe on the
training window (both symbols, after costs) is chosen from a small grid; it is then run on the test window only.
The strategies run causally from the start of the training window (so indicators are warm) but only test-window
decisions are traded; test segments are chained (each starts at the previous one's final equity).
Execution and costs: ``operators.sweep.simulate`` (the pipeline's model: next-bar-open fills, 7.5 bps fee,
1 bp slippage, 50 % of equity per position at full conviction, 100,000 quote per symbol).

* ML score: the project's models, retrained per fold on the training window only: the calibrated LightGBM
  (``operators.models.train_lightgbm``: inner walk-forward CV with a purge gap, isotonic calibration on
  out-of-fold predictions; registered, promoted and loaded back through ``connectors.model_registry``) and the
  online River model, blended by the streaming ``Scorer``'s log-loss weights (the ensemble score is traded).
  Label: the next 4 bars' log return > 0. River learns online from the training window's start; the fold's
  LightGBM is swapped in at the first test bar. Rule: ``MLScoreThreshold(rule="edge")`` with the move sizes
  ``E[r | r > 0]``, ``E[−r | r < 0]`` of the training window and the simulation's 17 bps round trip; the margin
  (0.5, 1, 2 or 4) is chosen per fold by the training-window Sharpe of the rule run on the inner CV's out-of-fold
  calibrated LightGBM scores (out-of-sample predictions inside the training window; the test window is not used);
  ``ml_score_threshold`` is the old fixed-threshold rule (0.55 / 0.45) on the same scores, for comparison.
* Telegram follower: no real signal history is bundled for these years, so signals come from a synthetic,
  rule-based "channel" (a 48-bar Donchian breakout posts an entry zone ±0.2 % around the close, three targets at
  1/2/3 ATR and a stop at 2 ATR; trust 0.7). It exercises the follower's mechanics end to end; it is not
  evidence about any real channel.
* Portfolio: one orchestrator per symbol over the five strategies (each with its fold's chosen parameters),
  risk parity (inverse 480-bar realised strategy volatility) and static equal weights, with the orchestrator's
  default cost discipline (hold, turnover budget, daily weights, 0.1 no-trade band); ``_old_rules``: the same
  portfolio with the rules before cost-aware decisions (weights every bar, 0.05 band, no hold, no budget).
* Buy and hold: long at full conviction (50 % of equity) through every test window, same costs.

Columns beyond the equity statistics: ``turnover_per_year`` (traded notional / starting capital / year),
``fees_frac_per_year`` (fees / starting capital / year; each fold's simulation starts at the capital) and fills.

Run: ``.venv/bin/python scripts/strategy_walkforward.py`` (3 to 9 minutes on the shared 2-core VM: the models
are trained per fold).
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.model_registry import ModelRegistry  # noqa: E402
from connectors.report import json_clean  # noqa: E402
from flows.sweep import load_bar_arrays  # noqa: E402
from operators.features import CORE_V1, compute_features_array  # noqa: E402
from operators.models import Scorer, ScorerConfig, TrainConfig, cross_validate, train_lightgbm  # noqa: E402
from operators.models.dataset import DEFAULT_EXCLUDED  # noqa: E402
from operators.orchestrator import Orchestrator  # noqa: E402
from operators.performance import (  # noqa: E402
    deflated_sharpe,
    period_returns,
    probabilistic_sharpe,
    span_years,
    turnover,
)
from operators.strategies import (  # noqa: E402
    EmaSpreadTrend,
    MLScoreThreshold,
    SignalFollower,
    VolatilityBreakout,
    ZScoreReversion,
)
from operators.strategies.costs import CostModel  # noqa: E402
from operators.sweep import SimConfig, combine_equity, equity_stats, next_open_fill_prices, simulate, strategy_targets  # noqa: E402
from schemas.events import Signal  # noqa: E402

BARS_PER_DAY = 48
TRAIN, TEST = 180 * BARS_PER_DAY, 90 * BARS_PER_DAY
CFG = SimConfig()
GRIDS = {
    "trend": [
        dict(entry=e, exit=e * f) for e, f in itertools.product([0.004, 0.007, 0.01, 0.015, 0.02], [0.0, 0.25, 0.5])
    ],
    "zscore_mr": [
        dict(window=w, entry_z=e, exit_z=x) for w, e, x in itertools.product([24, 48, 96], [2.0, 2.5, 3.0], [0.0, 0.5])
    ],
    "vol_breakout": [dict(window=w, k=k) for w, k in itertools.product([24, 48, 96], [1.5, 2.0, 3.0])],
    "ml_score": [dict(margin=m) for m in (0.5, 1.0, 2.0, 4.0)],
    "ml_score_threshold": [dict()],
    "tg_follow": [dict(zone_tolerance_bps=z) for z in (20.0, 50.0)],
}


HORIZON = 4  # label horizon of the ML score (bars)
COSTS = CostModel.from_sim(CFG.fee_bps, CFG.slippage_bps)  # what the simulation charges: 17 bps a round trip
#: the orchestrator's rules before cost-aware decisions (weights every bar, 0.05 band, no hold, no budget)
OLD_RULES = dict(rebalance_bars=1, min_change=0.05, min_hold_bars=0, turnover_per_year=None)


def make(name: str, p: dict, moves: tuple[float, float] | None = None):
    """Strategy ``name`` with parameters ``p``; ``moves``: the ML score's ``(m_up, m_down)`` (training window)."""
    if name == "trend":
        return EmaSpreadTrend(p["entry"], p["exit"], name="trend")
    if name == "zscore_mr":
        return ZScoreReversion(int(p["window"]), p["entry_z"], p["exit_z"])
    if name == "vol_breakout":
        return VolatilityBreakout(int(p["window"]), p["k"])
    if name == "ml_score":
        return MLScoreThreshold(
            rule="edge", cost=COSTS, margin=p.get("margin", 0.5), horizon_bars=HORIZON, move_stats=moves
        )
    if name == "ml_score_threshold":
        return MLScoreThreshold(0.55, 0.45, 0.52, 0.48, rule="threshold", name="ml_score")
    return SignalFollower(max_size=1.0, zone_tolerance_bps=p["zone_tolerance_bps"])


def move_stats(close: np.ndarray, tr: slice, horizon: int = HORIZON) -> tuple[float, float]:
    """``(E[r | r > 0], E[−r | r < 0])`` of the ``horizon``-bar simple return, from the training window only."""
    c = close[tr]
    r = c[horizon:] / c[:-horizon] - 1
    return float(r[r > 0].mean()), float(-r[r < 0].mean())


def features(b) -> np.ndarray:
    cols = dict(
        close=b.close,
        high=b.high,
        low=b.low,
        volume=b.volume,
        buy_volume=0 * b.volume,
        sell_volume=0 * b.volume,
        vwap=(b.high + b.low + b.close) / 3,
        trade_count=0 * b.volume + 8,
    )
    return compute_features_array(cols, CORE_V1.with_resolution(b.resolution_s))


def synthetic_signals(b, window: int = 48) -> list[Signal]:
    """Rule-based stand-in for a Telegram channel (see the module docstring). Causal: posted after the bar close."""
    out = []
    c, h, lo = b.close, b.high, b.low
    tr = np.maximum(h[1:], c[:-1]) - np.minimum(lo[1:], c[:-1])
    last = -(10**9)
    for t in range(window + 1, len(b)):
        hi, lw = h[t - window : t].max(), lo[t - window : t].min()
        atr = tr[t - window : t].mean()
        side = "long" if c[t] > hi else "short" if c[t] < lw else None
        if side is None or t - last < window or atr <= 0:
            continue
        last = t
        sgn = 1 if side == "long" else -1
        out.append(
            Signal(
                id=f"syn-{b.symbol}-{t}",
                source_chat="@synthetic",
                source_message_id=t,
                symbol=b.symbol,
                side=side,
                entries=[float(c[t] * 0.998), float(c[t] * 1.002)],
                targets=[float(c[t] + sgn * k * atr) for k in (1, 2, 3)],
                stop=float(c[t] - sgn * 2 * atr),
                trust=0.7,
                ts=int(b.mark_ts[t]) + 10**9,
            )
        )
    return out


MODEL_NAMES = tuple(f for f in CORE_V1.features if f not in DEFAULT_EXCLUDED)  # the Scorer's default features


def train_fold_model(feats, bars, fold, registry: ModelRegistry):
    """The project's batch model for one fold: LightGBM with its inner walk-forward CV and isotonic calibration on
    out-of-fold predictions (:func:`operators.models.train_lightgbm`), trained on both symbols' rows of the
    training window whose label (next ``HORIZON`` bars up) lies inside it, registered, promoted and loaded back
    through the registry as the flow's model watcher would."""
    idx = [CORE_V1.features.index(n) for n in MODEL_NAMES]
    X, y, ts, where = [], [], [], []
    for k, (F, b, (f0, f1, _)) in enumerate(zip(feats, bars, fold, strict=True)):
        t = np.arange(f0, f1 - HORIZON)
        ok = t[np.isfinite(F[t]).all(axis=1)]
        X.append(F[ok][:, idx])
        y.append((np.log(b.close[ok + HORIZON] / b.close[ok]) > 0).astype(float))
        ts.append(b.mark_ts[ok])
        where.append(np.stack([np.full(ok.size, k), ok], axis=1))
    X, y, ts, where = np.vstack(X), np.concatenate(y), np.concatenate(ts), np.vstack(where)
    order = np.argsort(ts, kind="stable")
    X, y, ts, where = X[order], y[order], ts[order], where[order]
    res_ns = bars[0].resolution_s * 1_000_000_000
    gap = (HORIZON + 1) * res_ns
    cfg = TrainConfig(gap_ns=gap, calibration="isotonic")
    model = train_lightgbm(X, y, ts, MODEL_NAMES, cfg, info={"horizon_bars": HORIZON})
    spec = CORE_V1.with_resolution(bars[0].resolution_s)
    version = registry.register(
        model,
        feature_set=spec.id,
        feature_set_version=spec.version,
        horizon_ns=HORIZON * res_ns,
        metrics={"cv_calibrated": model.info["cv_calibrated"]},
    )
    registry.promote(version, "walk-forward fold")
    # the inner CV's out-of-fold predictions (the same, deterministic, that the calibrator was fitted on), as
    # calibrated scores per symbol: out-of-sample scores inside the training window, to choose the ML margin
    oof = cross_validate(X, y, ts, cfg).oof
    oof_scores = [np.full(len(b), np.nan) for b in bars]
    m = np.isfinite(oof)
    cal = model.calibrator.predict(oof[m])
    for (k, t), p in zip(where[m], cal, strict=True):
        oof_scores[int(k)][int(t)] = p
    return registry.load(version), version, oof_scores


def model_scores(F: np.ndarray, b, f0: int, f1: int, f2: int, model, version: str) -> np.ndarray:
    """The ensemble score (calibrated LightGBM + online River, log-loss weights) of every test bar, through the
    flow's :class:`~operators.models.Scorer`: River learns online from the delayed labels from the start of the
    training window; the fold's LightGBM is swapped in at the first test bar (as ``levibot evaluate-models``
    does), so the ensemble weights see only out-of-sample LightGBM predictions. NaN outside the test window."""
    sc = Scorer(
        b.symbol, CORE_V1.with_resolution(b.resolution_s), cfg=ScorerConfig(horizon_bars=HORIZON), names=MODEL_NAMES
    )
    out = np.full(len(b), np.nan)
    mts = b.mark_ts.tolist()
    closes = b.close.tolist()
    for t in range(f0, f2):
        if t == f1:
            sc.swap_batch(model, version)
        row = F[t]
        if np.isfinite(row).all():
            ens = sc.score(tuple(row.tolist()), mts[t])[2]
            if t >= f1:
                out[t] = ens
        sc.learn(mts[t], closes[t])
    return out


def targets_for(strat, b, F, sigs, lo: int, hi: int, scores=None) -> np.ndarray:
    sb = b.slice(lo, hi)
    ss = [s for s in sigs if b.mark_ts[lo] <= s.ts <= b.mark_ts[hi - 1]]
    return strategy_targets(strat, sb, F[lo:hi], None if scores is None else scores[lo:hi], ss)


def sim_window(tg: np.ndarray, b, lo: int, hi: int, costs: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mark ts, equity) of one symbol over bars [lo, hi); adds fills, fees and traded notional to ``costs``."""
    sb = b.slice(lo, hi)
    res = simulate(tg[None, :], sb.close, next_open_fill_prices(sb), CFG)
    if costs is not None:
        costs["fills"] += int(res.n_fills[0])
        costs["fees"] += float(res.fees[0])
        costs["notional"] += float(res.traded_notional[0])
    return sb.mark_ts, res.equity


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
    bars = load_bar_arrays(
        [ROOT / "data/market/BTC-30m.csv.gz", ROOT / "data/market/ETH-30m.csv.gz"], max_bars=max_bars
    )
    n = min(len(b) for b in bars)
    feats = [features(b) for b in bars]
    sigs = [synthetic_signals(b) for b in bars]
    # fold bounds in event time (from the first symbol's bar grid), cut per symbol by time (their gaps differ)
    grid = bars[0].mark_ts
    tfolds = [
        (grid[s], grid[s + TRAIN], grid[min(s + TRAIN + TEST, n - 1)]) for s in range(0, n - TRAIN - BARS_PER_DAY, TEST)
    ]
    folds = [[tuple(int(np.searchsorted(b.mark_ts, t)) for t in tf) for b in bars] for tf in tfolds]
    names = list(GRIDS)
    members = [k for k in names if k != "ml_score_threshold"]  # the portfolio's five strategies
    portfolios = ["portfolio_risk_parity", "portfolio_static", "portfolio_risk_parity_old_rules", "buy_and_hold"]
    oos: dict[str, list[np.ndarray]] = {k: [] for k in names + portfolios}
    costs = {k: {"fills": 0, "fees": 0.0, "notional": 0.0} for k in oos}
    oos_ts: dict[str, list[np.ndarray]] = {k: [] for k in oos}
    chosen: dict[str, list] = {k: [] for k in names}
    trial_srs: list[float] = []  # the training-window Sharpe ratio of every configuration tried, every fold
    registry = ModelRegistry(Path(tempfile.mkdtemp(prefix="wf-models-")))
    fold_models: list[dict] = []
    for fold in folds:
        model, version, oof_scores = train_fold_model(feats, bars, fold, registry)
        scores = [
            model_scores(F, b, f0, f1, f2, model, version) for F, b, (f0, f1, f2) in zip(feats, bars, fold, strict=True)
        ]
        fold_models.append(
            {
                "version": version,
                "n_rounds": model.info["n_rounds"],
                "cv_calibrated": model.info["cv_calibrated"],
                "train_end_ns": model.info["train_end_ns"],
                "test_start_ns": int(tfolds[len(fold_models)][1]),
            }
        )
        moves = [move_stats(b.close, slice(f0, f1)) for b, (f0, f1, _) in zip(bars, fold, strict=True)]
        best_p = {}
        for name in names:
            best, bp = -np.inf, None
            for p in GRIDS[name]:
                if name == "ml_score_threshold":
                    bp = p
                    break
                if name == "ml_score":  # on the training window's out-of-fold LightGBM scores
                    eqs = [
                        sim_window(targets_for(make(name, p, mv), b, F, sg, f0, f1, scores=oo), b, f0, f1)
                        for b, F, sg, mv, oo, (f0, f1, _) in zip(
                            bars, feats, sigs, moves, oof_scores, fold, strict=True
                        )
                    ]
                else:
                    eqs = [
                        sim_window(targets_for(make(name, p), b, F, sg, f0, f1), b, f0, f1)
                        for b, F, sg, (f0, f1, _) in zip(bars, feats, sigs, fold, strict=True)
                    ]
                sr = sharpe_of(eqs)
                if name == "ml_score" and sr != sr:
                    sr = 0.0  # a margin that never trades is a valid choice: flat, Sharpe 0
                if sr == sr:
                    trial_srs.append(sr)  # every configuration tried, for the deflated Sharpe ratio
                if sr == sr and sr > best:
                    best, bp = sr, p
            best_p[name] = bp if bp is not None else GRIDS[name][0]
            chosen[name].append(best_p[name])
        for name in names + portfolios:
            seg = []
            for b, F, sg, sc, mv, (f0, f1, f2) in zip(bars, feats, sigs, scores, moves, fold, strict=True):
                if name == "buy_and_hold":  # long at full conviction (50 % of equity) from the first test bar
                    seg.append(sim_window(np.ones(f2 - f1), b, f1, f2, costs[name]))
                    continue
                if name.startswith("portfolio"):
                    rules = OLD_RULES if name.endswith("old_rules") else {}
                    strat = Orchestrator(
                        [make(k, best_p[k], mv) for k in members],
                        allocation="static" if name == "portfolio_static" else "risk_parity",
                        **rules,
                    )
                else:
                    strat = make(name, best_p[name], mv)
                tg = targets_for(strat, b, F, sg, f0, f2, scores=sc)  # warm on the training window
                seg.append(sim_window(tg[f1 - f0 :], b, f1, f2, costs[name]))
            seg_ts, seg_eq = total_ts(seg)
            oos[name].append(seg_eq)
            oos_ts[name].append(seg_ts)
    rows = []
    curves = {}
    period_rets: dict[str, np.ndarray] = {}
    for name, segs in oos.items():
        r = np.concatenate([period_returns(s) for s in segs])
        eq = 2 * CFG.capital * np.concatenate([[1.0], np.cumprod(1 + r)])
        st = {k: float(v[0]) for k, v in equity_stats(eq[None, :], 1800).items()}
        years = span_years(r.size, 1800)
        c = costs[name]  # each fold's simulation starts from CFG.capital per symbol: per-year figures of that capital
        st.update(
            fills=c["fills"],
            fees_frac_per_year=turnover(c["fees"], 2 * CFG.capital, years),  # fees a year per unit of capital
            turnover_per_year=turnover(c["notional"], 2 * CFG.capital, years),
        )
        rows.append({"strategy": name, **st})
        period_rets[name] = r
        curves[name] = (np.concatenate([oos_ts[name][0][:1]] + [t[1:] for t in oos_ts[name]]), eq)
    # probabilistic Sharpe (vs 0) and deflated Sharpe: against what the best of every configuration tried would
    # show by luck (each grid point of each strategy is a trial, and each portfolio rule; buy-and-hold is not); the
    # trials' Sharpe variance from the training-window Sharpe ratios of every grid point of every fold (annualised
    # there, per bar here)
    n_trials = sum(len(g) for g in GRIDS.values()) + sum(p.startswith("portfolio") for p in portfolios)
    per_bar = np.asarray(trial_srs) / np.sqrt(365 * BARS_PER_DAY)
    var_sr = float(np.var(per_bar, ddof=1)) if per_bar.size > 1 else 0.0
    for row in rows:
        x = period_rets[row["strategy"]]
        row["probabilistic_sharpe"] = probabilistic_sharpe(x)
        row["deflated_sharpe"] = deflated_sharpe(x, n_trials, var_sr)
    out = {
        "folds": len(folds),
        "test_start_ts_ns": int(tfolds[0][1]),
        "test_end_ts_ns": int(tfolds[-1][2]),
        "rows": rows,
        "chosen": chosen,
        "models": fold_models,
        "seconds": time.time() - t0,
        "curves": curves,
        "trials": n_trials,
        "trials_sharpe_var": var_sr,
        "prices": {b.symbol: (b.mark_ts, b.close) for b in bars},
    }
    return out


if __name__ == "__main__":
    res = main()
    print(
        f"{res['folds']} folds, out-of-sample from {np.datetime64(res['test_start_ts_ns'], 'ns')} to "
        f"{np.datetime64(res['test_end_ts_ns'], 'ns')}, {res['seconds']:.0f}s\n"
    )
    print(
        "| strategy | total return | CAGR | Sharpe | ann. vol | max drawdown | Calmar | turnover/yr | fees/yr | fills |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        print(
            f"| {r['strategy']} | {r['total_return_frac']:.1%} | {r['cagr_frac']:.1%} | {r['sharpe']:.2f} | "
            f"{r['volatility_ann_frac']:.1%} | {r['max_drawdown_frac']:.1%} | {r['calmar']:.2f} | "
            f"{r['turnover_per_year']:.1f}× | {r['fees_frac_per_year']:.2%} | {r['fills']:,} |"
        )
    print("\nchosen parameters per fold:")
    for k, v in res["chosen"].items():
        print(f"  {k}: {v}")
    out = ROOT / "var" / "reports" / "walkforward.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_clean({k: v for k, v in res.items() if k not in ("curves", "prices")}), indent=1))
