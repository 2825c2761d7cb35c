"""`levibot sweep`: the vectorised parameter sweep over bar files, with a report.

Wiring only: bars from files (``connectors.files.read_bars``), the sweep from ``operators.sweep``, the report
from ``connectors.report``. The lead registers the command with ``register(app)`` from ``flows/cli.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from connectors.files import read_bars
from connectors.history import bar_resolution_s
from operators.sweep import BarArrays, SimConfig, SweepResult, param_grid, sweep_trend, sweep_zscore

__all__ = ["load_bar_arrays", "parse_axis", "run_sweep", "sweep_report", "write_sweep_report", "register"]


def load_bar_arrays(files: Sequence[Path], symbol: str | None = None, max_bars: int | None = None) -> list[BarArrays]:
    """One :class:`BarArrays` per symbol found in ``files`` (bar files), time-ordered."""
    out = []
    for f in files:
        frame = read_bars(f, symbol).frame
        for sym, g in frame.groupby("symbol", sort=True):
            g = g.sort_values("ts", kind="stable")
            if max_bars is not None:
                g = g.head(max_bars)
            out.append(BarArrays.from_columns(str(sym), g, bar_resolution_s(g["ts"].to_numpy())))
    return out


def parse_axis(text: str) -> list[float]:
    """``"a,b,c"`` (values) or ``"start:stop:n"`` (n evenly spaced values, both ends included).

    >>> parse_axis("1,2.5"), parse_axis("0:1:3")
    ([1.0, 2.5], [0.0, 0.5, 1.0])
    """
    if ":" in text:
        a, b, n = text.split(":")
        return [float(x) for x in np.linspace(float(a), float(b), int(n))]
    return [float(x) for x in text.split(",") if x.strip()]


def run_sweep(
    bars: Sequence[BarArrays],
    strategy: str = "trend",
    *,
    entries: Sequence[float] = (),
    exit_fracs: Sequence[float] = (),
    windows: Sequence[float] = (),
    cfg: SimConfig = SimConfig(),
    allow_short: bool = True,
) -> tuple[SweepResult, float]:
    """Run the sweep; returns the result and its wall time (s). ``trend``: ``entries`` × ``exit_fracs`` (exit =
    entry × fraction); ``zscore``: ``windows`` × ``entries`` (entry z) × ``exit_fracs`` (exit z = entry z × fraction)."""
    t0 = time.perf_counter()
    if strategy == "trend":
        g = param_grid(entry=entries, exit_frac=exit_fracs)
        res = sweep_trend(bars, g["entry"], g["entry"] * g["exit_frac"], cfg, allow_short)
    elif strategy == "zscore":
        g = param_grid(window=windows, entry_z=entries, exit_frac=exit_fracs)
        res = sweep_zscore(bars, g["window"], g["entry_z"], g["entry_z"] * g["exit_frac"], cfg, allow_short)
    else:
        raise ValueError("strategy must be 'trend' or 'zscore'")
    return res, time.perf_counter() - t0


def sweep_report(
    res: SweepResult, bars: Sequence[BarArrays], title: str, seconds: float, cfg: SimConfig = SimConfig(), top: int = 20
) -> Any:
    """The tear sheet of the best parameter set by in-sample Sharpe (``operators.report``), with the top rows."""
    from operators.report import Column, RunInputs, Table, build_report

    rows = res.rows("sharpe")
    best = int(np.nanargmax(np.nan_to_num(res.stats["sharpe"], nan=-np.inf)))
    prices, positions, trades, by_symbol = {}, {}, [], []
    for b in bars:
        r = res.per_symbol[b.symbol]
        mts = b.mark_ts
        prices[b.symbol] = (mts, b.close)
        positions[b.symbol] = (mts, r.position[best])
        tr = r.trades(best, b.symbol, mts, "sweep")  # with each trade's fees
        trades += tr
        by_symbol.append(
            {
                "symbol": b.symbol,
                "net": float(r.equity[best][-1] - cfg.capital),
                "fees": float(r.fees[best]),
                "traded": float(r.traded_notional[best]),
                "fills": int(r.n_fills[best]),
                "trades": sum(t.close_ts is not None for t in tr),
            }
        )
    names = list(res.params)
    cols = tuple(Column(k, k.replace("_", " "), "ratio") for k in names) + (
        Column("sharpe", "Sharpe ratio (annualised)", "ratio"),
        Column("total_return_frac", "Total return", "fraction"),
        Column("max_drawdown_frac", "Max drawdown", "fraction"),
        Column("n_fills", "Fills", "count"),
        Column("fees_quote", "Fees", "quote"),
        Column("hit_rate_frac", "Hit rate (position segments)", "fraction"),
    )
    table = Table(
        "parameter_sets",
        f"Top {min(top, len(rows))} of {len(rows):,} parameter sets by Sharpe ratio (in-sample)",
        cols,
        rows[:top],
        note="Ranked on the same data they were fitted to: expect worse out of sample.",
    )
    best_params = ", ".join(f"{k.replace('_', ' ')} {res.params[k][best]:.4g}" for k in names)
    inp = RunInputs(
        ts=res.ts,
        equity=res.equity[best],
        prices=prices,
        positions=positions,
        trades=trades,
        by_symbol=by_symbol,
        by_strategy=[
            {
                "strategy": "sweep (best set)",
                "closed": sum(t.pnl for t in trades if t.close_ts),
                "fees": sum(r["fees"] for r in by_symbol),
                "traded": sum(r["traded"] for r in by_symbol),
                "fills": sum(r["fills"] for r in by_symbol),
                "trades": sum(r["trades"] for r in by_symbol),
            }
        ],
        capital=cfg.capital * len(bars),
        tables=[table],
        info={
            "Best parameter set": best_params,
            "Parameter sets": f"{len(rows):,}",
            "Symbols": ", ".join(b.symbol for b in bars),
            "Sweep time": f"{seconds:,.2f} s",
        },
    )
    return build_report(
        inp,
        title=title,
        kind="sweep",
        subtitle="The best parameter set by in-sample Sharpe ratio; fills at the next bar's open with "
        "fees and slippage; trades measured from the marks, each with its fills' fees.",
    )


def write_sweep_report(
    res: SweepResult,
    out_dir: Path,
    title: str,
    seconds: float,
    top: int = 20,
    bars: Sequence[BarArrays] = (),
    cfg: SimConfig = SimConfig(),
    echo: Any = None,
) -> Path:
    """``sweep.html`` and ``sweep.json`` (the tear sheet of the best set, and every row) under ``out_dir``."""
    from connectors.report import terminal_summary, write_report

    rep = sweep_report(res, bars, title, seconds, cfg, top)
    html_path, _json_path = write_report(rep, out_dir, "sweep")
    if echo is not None:
        echo(terminal_summary(rep))
    return html_path


def register(app: Any) -> None:
    """Add the ``sweep`` command to the ``levibot`` Typer app."""
    import typer

    @app.command("sweep")
    def sweep(
        files: list[Path] = typer.Argument(None, help="Bar files (default: the bundled BTC and ETH bars)."),
        strategy: str = typer.Option("trend", help="trend (EMA-spread thresholds) or zscore (mean reversion)."),
        entries: str = typer.Option(
            "", help="Entry thresholds: 'a,b,c' or 'start:stop:n'. Default trend 0.002:0.02:10, zscore 1.5:3.5:5."
        ),
        exit_fracs: str = typer.Option("0:0.9:10", help="Exit threshold as a fraction of the entry."),
        windows: str = typer.Option("24,48,96,192", help="z-score windows in bars (zscore only)."),
        fee_bps: float = typer.Option(7.5, help="Fee, bps of traded notional."),
        slippage_bps: float = typer.Option(1.0, help="Slippage, bps of price, against each fill."),
        fraction: float = typer.Option(0.5, help="Position notional at full conviction, fraction of equity."),
        capital: float = typer.Option(100_000.0, help="Capital per symbol, quote currency."),
        long_only: bool = typer.Option(False, "--long-only", help="No short positions."),
        max_bars: int | None = typer.Option(None, help="Use only the first N bars of each symbol."),
        top: int = typer.Option(10, help="Rows to print."),
        out: Path | None = typer.Option(None, help="Report directory (default <var>/reports)."),
    ) -> None:
        """Vectorised backtest of many parameter sets at once (next-bar fills, fees, slippage), in-sample ranking."""
        from flows.cli import BUNDLED
        from flows.settings import Settings

        paths = files or BUNDLED
        for p in paths:
            if not p.exists():
                typer.secho(f"error: no such file: {p}", fg=typer.colors.RED, err=True)
                raise typer.Exit(2)
        bars = load_bar_arrays(paths, max_bars=max_bars)
        ent = parse_axis(entries or ("0.002:0.02:10" if strategy == "trend" else "1.5:3.5:5"))
        cfg = SimConfig(capital=capital, fraction=fraction, fee_bps=fee_bps, slippage_bps=slippage_bps)
        try:
            res, secs = run_sweep(
                bars,
                strategy,
                entries=ent,
                exit_fracs=parse_axis(exit_fracs),
                windows=parse_axis(windows),
                cfg=cfg,
                allow_short=not long_only,
            )
        except ValueError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        out_dir = out or Settings.from_env().var_dir / "reports"
        report = write_sweep_report(
            res, out_dir, f"LeviBot Stream — {strategy} sweep", secs, bars=bars, cfg=cfg, echo=typer.echo
        )
        n = res.equity.shape[0]
        typer.echo(
            f"\n{n} parameter sets x {len(bars)} symbols x {max(len(b) for b in bars):,} bars in {secs:.2f}s "
            "(in-sample ranking; `levibot evaluate-strategies` gives out-of-sample results)"
        )
        heads = [(k, k.replace("_", " "), "{:>14.4g}") for k in res.params] + [
            ("sharpe", "Sharpe", "{:>14.2f}"),
            ("total_return_frac", "total return", "{:>14.2%}"),
            ("max_drawdown_frac", "max drawdown", "{:>14.2%}"),
            ("n_fills", "fills", "{:>14,.0f}"),
            ("hit_rate_frac", "hit rate", "{:>14.2%}"),
        ]
        typer.echo("  ".join(f"{h:>14}" for _, h, _ in heads))
        for row in res.rows("sharpe", top):
            typer.echo("  ".join(fmt.format(row[k]) for k, _, fmt in heads))
        typer.echo(f"report {report}")
