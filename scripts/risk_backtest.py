#!/usr/bin/env python3
"""Rolling VaR backtest on the bundled BTC and ETH 30-minute bars; prints the markdown table of docs/risk.md.

    .venv/bin/python scripts/risk_backtest.py [--window 1000] [--data data/market]

Returns: log returns of consecutive closes, ``ln(close_t / close_{t-1})``. Every estimator forecasts period t
from data before t only (operators.risk.backtest); breaches are returns strictly below the VaR forecast;
Kupiec's proportion-of-failures test gives the p-value.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from operators.risk import METHODS, var_backtest

ASSETS = ("BTC", "ETH")
ALPHAS = (0.95, 0.99)


def load_log_returns(data: pathlib.Path, asset: str) -> tuple[np.ndarray, str, str]:
    """Log returns of ``<asset>.close`` and the first/last bar dates."""
    df = pd.read_csv(data / f"{asset}-30m.csv.gz")
    close = df[f"{asset}.close"].to_numpy(float)
    return np.diff(np.log(close)), str(df["Date"].iloc[0]), str(df["Date"].iloc[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=1000, help="estimation window, bars (default 1000)")
    ap.add_argument(
        "--data", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1] / "data" / "market"
    )
    args = ap.parse_args()
    print(
        "| asset | estimator | α | forecasts | breaches | breach rate | expected | Kupiec LR | p-value "
        "| mean VaR | mean CVaR |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    spans = []
    for asset in ASSETS:
        r, first, last = load_log_returns(args.data, asset)
        spans.append(f"{asset} {first} .. {last}")
        for method in METHODS:
            for a in ALPHAS:
                b = var_backtest(r, args.window, a, method)
                pv = f"{b.p_value:.3g}" if b.p_value >= 1e-300 else "< 1e-300"
                print(
                    f"| {asset} | {method} | {a:.2f} | {b.n} | {b.breaches} | {100 * b.rate:.2f} % "
                    f"| {100 * b.expected:.0f} % | {b.lr:.2f} | {pv} | {100 * b.mean_var:.3f} % "
                    f"| {100 * b.mean_cvar:.3f} % |"
                )
    print(
        f"\nwindow = {args.window} bars; data {'; '.join(spans)} (30-minute bars); returns ln(close_t/close_t-1);"
        f" VaR/CVaR in return sign, percent of position value per bar."
    )


if __name__ == "__main__":
    main()
