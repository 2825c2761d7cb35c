#!/usr/bin/env python3
"""How the gate's VaR model is chosen: filtered historical simulation (FHS) decays tried on the first 40 % of the
bundled 30-minute BTC and ETH history (the training part), the best one then scored once on the remaining 60 %.

    .venv/bin/python scripts/var_model_selection.py [--window 1000] [--data data/market]

Each decay gets, per part, Kupiec's test and Christoffersen's independence and conditional-coverage tests at 95 %
and 99 % for both assets; the decay chosen is the one whose smallest training p-value is largest. Prints the
markdown tables of docs/risk.md ("Choosing the VaR model").
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from operators.risk.backtest import christoffersen, kupiec_pof, rolling_forecasts
from scripts.risk_backtest import ASSETS, load_log_returns

ALPHAS = (0.95, 0.99)
DECAYS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.94)
TRAIN = 0.4


def scores(
    r: np.ndarray, window: int, method: str, lam: float | None, part: str
) -> list[tuple[float, float, float, float]]:
    """(breach rate, Kupiec p, Christoffersen independence p, conditional coverage p) per α, on one part."""
    split = int(TRAIN * r.size)
    out = []
    for a in ALPHAS:
        v, _ = rolling_forecasts(r, window, a, method, lam)
        hits = r[window:] < v
        hits = hits[: split - window] if part == "train" else hits[split - window :]
        k, ch = kupiec_pof(hits.size, int(hits.sum()), a), christoffersen(hits, a)
        out.append((float(hits.mean()), k.p_value, ch.p_ind, ch.p_cc))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=1000, help="residual window, bars (default 1000)")
    ap.add_argument(
        "--data", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1] / "data" / "market"
    )
    args = ap.parse_args()
    rets = {a: load_log_returns(args.data, a)[0] for a in ASSETS}

    def row(name: str, res: dict[str, list]) -> str:
        cells = []
        for asset in ASSETS:
            for rate, kp, ip, cp in res[asset]:
                cells.append(f"{100 * rate:.2f} % · {kp:.2g} / {ip:.2g} / {cp:.2g}")
        worst = min(min(x[1:]) for asset in ASSETS for x in res[asset])
        return f"| {name} | " + " | ".join(cells) + f" | {worst:.2g} |"

    head = (
        "| model | " + " | ".join(f"{asset} {a:.0%}" for asset in ASSETS for a in ALPHAS) + " | smallest p |\n"
        "|---|" + "---|" * (len(ASSETS) * len(ALPHAS)) + "---:|"
    )
    print("Training part (first 40 %): breach rate · Kupiec / independence / conditional coverage p-values\n")
    print(head)
    train = {}
    for lam in DECAYS:
        res = {asset: scores(r, args.window, "fhs", lam, "train") for asset, r in rets.items()}
        train[lam] = min(min(x[1:]) for asset in ASSETS for x in res[asset])
        print(row(f"FHS λ = {lam}", res))
    best = max(DECAYS, key=lambda lam: train[lam])
    print(f"\nChosen on the training part: λ = {best}. Test part (last 60 %), scored once:\n")
    print(head)
    print(row(f"FHS λ = {best}", {asset: scores(r, args.window, "fhs", best, "test") for asset, r in rets.items()}))
    for method in ("historical", "gaussian", "ewma"):
        print(row(method, {asset: scores(r, args.window, method, None, "test") for asset, r in rets.items()}))


if __name__ == "__main__":
    main()
