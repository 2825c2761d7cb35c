"""`make rl-experiment`: the RL sizing experiment, walk-forward after costs against the rule-based sizing.

Protocol (the folds of ``scripts/strategy_walkforward.py``): rolling 180-day training windows, each followed by a
90-day test window; the test windows tile the history after the first 180 days, BTC and ETH 30-min bars. Per
fold, on the training window only: the features' mean and standard deviation, and a PPO policy
(:func:`operators.rl.ppo.train_ppo`) trained on both symbols' training rows (:mod:`operators.rl.market`:
observation = 12 standardized model features, the trend rule's target and the held position; action = a target
size in {−1, −½, 0, ½, 1}; reward after fees and slippage). On the test window the greedy policy chooses the
targets bar by bar from flat; they are simulated by the project's simulator (``operators.sweep.simulate``:
next-open fills, 7.5 bps fee + 1 bp slippage, 50 % of equity at full size, 100,000 quote per symbol), as are,
on the same bars, the rule-based sizing of the trend rule (``EmaSpreadTrend`` defaults, full size, the
project's fixed-fraction sizing) and buy-and-hold. Each fold's simulation starts from the capital; the per-bar
returns of the folds are chained. The whole walk-forward runs once per PPO seed (:data:`SEEDS`); the policy would
be shipped as an optional strategy only if it wins with every seed (:func:`run_seeds`).

Run: ``make rl-experiment`` = ``.venv/bin/python -m flows.rl_experiment [--updates 60] [--seeds 11,21,31]
[--out var/reports/rl_experiment.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from flows.settings import REPO_ROOT
from operators.features import CORE_V1, compute_features_array
from operators.models.dataset import DEFAULT_EXCLUDED
from operators.performance import period_returns, span_years, total_return, turnover
from operators.sweep import (
    SimConfig,
    combine_equity,
    ema_spread,
    equity_stats,
    next_open_fill_prices,
    simulate,
    trend_positions,
)
from operators.sweep.simulation import BarArrays

__all__ = ["load", "folds", "run", "run_seeds", "main"]

#: PPO seeds of the experiment: fold k of seed s trains with seed s + k
SEEDS = (11, 21, 31)

BARS_PER_DAY = 48
TRAIN, TEST = 180 * BARS_PER_DAY, 90 * BARS_PER_DAY
SIM = SimConfig()
FILES = [REPO_ROOT / "data/market/BTC-30m.csv.gz", REPO_ROOT / "data/market/ETH-30m.csv.gz"]


def _features(b) -> np.ndarray:
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


def load(max_bars: int | None = None):
    """Bars, model features (T, 12) and the trend rule's targets of each bundled symbol."""
    from flows.sweep import load_bar_arrays

    bars = load_bar_arrays(FILES, max_bars=max_bars)
    keep = [i for i, f in enumerate(CORE_V1.features) if f not in DEFAULT_EXCLUDED]
    feats = [_features(b)[:, keep] for b in bars]
    sigs = [trend_positions(ema_spread(b.close), [0.004], [0.001])[0] for b in bars]
    return bars, feats, sigs


def folds(bars: list[BarArrays]) -> list[list[tuple[int, int, int]]]:
    """Per fold, per symbol: (train start, test start, test end) row indices, cut by event time."""
    n = min(len(b) for b in bars)
    grid = bars[0].mark_ts
    tf = [
        (grid[s], grid[s + TRAIN], grid[min(s + TRAIN + TEST, n - 1)]) for s in range(0, n - TRAIN - BARS_PER_DAY, TEST)
    ]

    def rows(b: BarArrays, f: tuple[int, int, int]) -> tuple[int, int, int]:
        start, test, end = (int(np.searchsorted(b.mark_ts, t)) for t in f)
        return start, test, end

    return [[rows(b, f) for b in bars] for f in tf]


def _warm(F: np.ndarray, lo: int, hi: int) -> int:
    ok = np.flatnonzero(np.isfinite(F[lo:hi]).all(axis=1))
    return lo + int(ok[0]) if ok.size else hi


def _sim(tg: np.ndarray, b, lo: int, hi: int, acc: dict) -> tuple[np.ndarray, np.ndarray]:
    sb = b.slice(lo, hi)
    res = simulate(tg[None, :], sb.close, next_open_fill_prices(sb), SIM)
    acc["fills"] += int(res.n_fills[0])
    acc["fees"] += float(res.fees[0])
    acc["notional"] += float(res.traded_notional[0])
    return sb.mark_ts, res.equity


def _total(parts) -> np.ndarray:
    u, tot = combine_equity(parts)
    keep = u >= max(int(ts[0]) for ts, _ in parts)
    return tot[0][keep]


def run(max_bars: int | None = None, ppo=None, n_folds: int | None = None, data=None) -> dict:
    """The walk-forward (module doc) of one PPO seed; ``n_folds`` limits it to the first folds (tests); ``data``:
    :func:`load`'s result, to load once for several runs."""
    from operators.rl.market import make_market
    from operators.rl.ppo import PpoConfig, train_ppo

    t0 = time.perf_counter()
    cfg = ppo or PpoConfig()
    bars, feats, sigs = data if data is not None else load(max_bars)
    fl = folds(bars)[:n_folds]
    names = ["ppo_sizing", "trend_rule_sizing", "buy_and_hold"]
    rets: dict[str, list[np.ndarray]] = {k: [] for k in names}
    acc = {k: {"fills": 0, "fees": 0.0, "notional": 0.0} for k in names}
    per_fold = []
    for k, fold in enumerate(fl):
        tr_rows = [
            (F, s, b, _warm(F, f0, f1), f1) for F, s, b, (f0, f1, _) in zip(feats, sigs, bars, fold, strict=True)
        ]
        Xtr = np.vstack([F[w:f1] for F, _, _, w, f1 in tr_rows])
        mean, scale = np.nanmean(Xtr, axis=0), np.nanstd(Xtr, axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        market = make_market(
            [(F[w:f1], s[w:f1], b.close[w:f1]) for F, s, b, w, f1 in tr_rows],
            mean,
            scale,
            fraction=SIM.fraction,
            cost=(SIM.fee_bps + SIM.slippage_bps) / 1e4,
        )
        pol = train_ppo(market, replace(cfg, seed=cfg.seed + k))
        # in sample (the training window, greedy): tells a policy that learnt nothing from one that overfits
        ins: dict[str, list] = {"ppo_sizing": [], "trend_rule_sizing": []}
        scratch = {n: {"fills": 0, "fees": 0.0, "notional": 0.0} for n in ins}
        for j, (_F, s, b, w, f1) in enumerate(tr_rows):
            lo, hi = int(market.starts[j]), int(market.starts[j]) + (f1 - w)
            ins["ppo_sizing"].append(_sim(pol.run(market, lo, hi), b, w, f1, scratch["ppo_sizing"]))
            ins["trend_rule_sizing"].append(_sim(np.asarray(s[w:f1], float), b, w, f1, scratch["trend_rule_sizing"]))
        parts: dict[str, list] = {n: [] for n in names}
        for F, s, b, (_f0, f1, f2) in zip(feats, sigs, bars, fold, strict=True):
            test = make_market(
                [(F[f1:f2], s[f1:f2], b.close[f1:f2])],
                mean,
                scale,
                fraction=SIM.fraction,
                cost=(SIM.fee_bps + SIM.slippage_bps) / 1e4,
            )
            targets = {
                "ppo_sizing": pol.run(test, 0, f2 - f1),
                "trend_rule_sizing": s[f1:f2],
                "buy_and_hold": np.ones(f2 - f1),
            }
            for n, tg in targets.items():
                parts[n].append(_sim(np.asarray(tg, float), b, f1, f2, acc[n]))
        fold_row = {
            "test_start_ns": int(bars[0].mark_ts[fold[0][1]]),
            "train_seconds": round(pol.info["train_seconds"], 1),
            "train_reward_first_last": [
                pol.info["history"][0]["reward_per_step"],
                pol.info["history"][-1]["reward_per_step"],
            ],
        }
        for n, pts in ins.items():
            eq = _total(pts)
            fold_row[f"in_sample_{n}"] = total_return(eq)
        for n in names:
            eq = _total(parts[n])
            rets[n].append(period_returns(eq))
            fold_row[n] = total_return(eq)
        per_fold.append(fold_row)
    capital = SIM.capital * len(bars)
    table = {}
    for n in names:
        r = np.concatenate(rets[n])
        eq = capital * np.concatenate([[1.0], np.cumprod(1.0 + r)])
        st = {k2: float(v[0]) for k2, v in equity_stats(eq[None, :], 1800).items()}
        years = span_years(r.size, 1800)
        table[n] = {
            "total_return_frac": st["total_return_frac"],
            "sharpe": st["sharpe"],
            "max_drawdown_frac": st["max_drawdown_frac"],
            "volatility_ann_frac": st["volatility_ann_frac"],
            "turnover_per_year": turnover(acc[n]["notional"], capital, years),
            "fees_frac_per_year": turnover(acc[n]["fees"], capital, years),
            "fills": acc[n]["fills"],
            "folds_won_vs_rule": int(sum(f[n] > f["trend_rule_sizing"] for f in per_fold)),
        }
    p, rule, bh = table["ppo_sizing"], table["trend_rule_sizing"], table["buy_and_hold"]
    beats_rule = p["sharpe"] > rule["sharpe"]
    # shipped only if it wins out of sample: the bar for the portfolio (a positive Sharpe above
    # buy-and-hold's) and better than the rule-based sizing of the same signal
    wins = bool(beats_rule and p["sharpe"] > max(bh["sharpe"], 0.0) and p["total_return_frac"] > 0)
    why = (
        "wins"
        if wins
        else "does not win: "
        + ", ".join(
            x
            for x, bad in (
                ("Sharpe not above the rule-based sizing's", not beats_rule),
                ("Sharpe not positive and above buy-and-hold's", p["sharpe"] <= max(bh["sharpe"], 0.0)),
                ("loses money after costs", p["total_return_frac"] <= 0),
            )
            if bad
        )
    )
    return {
        "table": table,
        "folds": per_fold,
        "n_folds": len(fl),
        "ppo": cfg.__dict__,
        "decision": why,
        "ppo_beats_rule": bool(beats_rule),
        "ppo_wins": wins,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def run_seeds(seeds=SEEDS, max_bars: int | None = None, ppo=None, n_folds: int | None = None) -> dict:
    """:func:`run` for every seed on the same folds. The policy is shipped only if it wins with EVERY seed: a
    result that depends on the seed is not evidence of skill."""
    from operators.rl.ppo import PpoConfig

    t0 = time.perf_counter()
    data = load(max_bars)
    runs = {int(sd): run(ppo=replace(ppo or PpoConfig(), seed=int(sd)), n_folds=n_folds, data=data) for sd in seeds}
    first = runs[int(seeds[0])]
    table = {f"ppo_sizing_seed{sd}": r["table"]["ppo_sizing"] for sd, r in runs.items()}
    table["trend_rule_sizing"] = first["table"]["trend_rule_sizing"]
    table["buy_and_hold"] = first["table"]["buy_and_hold"]
    rets = [r["table"]["ppo_sizing"]["total_return_frac"] for r in runs.values()]
    wins = all(r["ppo_wins"] for r in runs.values())
    return {
        "table": table,
        "runs": runs,
        "n_folds": first["n_folds"],
        "seeds": [int(x) for x in seeds],
        "ppo_return_range": [min(rets), max(rets)],
        "ppo_wins_every_seed": wins,
        "decision": (
            "ship as an optional strategy"
            if wins
            else f"not shipped: wins with {sum(r['ppo_wins'] for r in runs.values())} of {len(runs)} seeds"
        ),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def render(r: dict) -> str:
    out = [
        "| sizing | return | Sharpe | max drawdown | turnover / yr | fees / yr | fills | folds beating the rule |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, t in r["table"].items():
        out.append(
            f"| {n} | {t['total_return_frac']:+.2%} | {t['sharpe']:.2f} | {t['max_drawdown_frac']:.2%} | "
            f"{t['turnover_per_year']:.1f}× | {t['fees_frac_per_year']:.2%} | {t['fills']} | "
            f"{t['folds_won_vs_rule']}/{r['n_folds']} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    from connectors.report import json_clean
    from operators.rl.ppo import PpoConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--updates", type=int, default=PpoConfig().updates, help="PPO updates per fold")
    ap.add_argument("--folds", type=int, default=None, help="only the first N folds")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="PPO seeds (fold k uses seed + k)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "reports" / "rl_experiment.json")
    a = ap.parse_args(argv)
    r = run_seeds([int(x) for x in a.seeds.split(",")], ppo=replace(PpoConfig(), updates=a.updates), n_folds=a.folds)
    print(render(r))
    print(json.dumps({k: v for k, v in r.items() if k not in ("table", "runs")}, default=str, indent=1))
    for sd, one in r["runs"].items():
        print(
            f"seed {sd}: {one['decision']}; per fold (in sample -> out of sample):",
            ", ".join(f"{f['in_sample_ppo_sizing']:+.1%} -> {f['ppo_sizing']:+.1%}" for f in one["folds"]),
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(json_clean(r), indent=1))
    return r


if __name__ == "__main__":
    main()
