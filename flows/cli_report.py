"""`levibot report compare A.json B.json` and `levibot evaluate-strategies`: tear sheets side by side, and the
walk-forward evaluation of every strategy as a tear sheet. Registered from ``flows/cli.py`` with ``register(app)``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from flows.settings import REPO_ROOT

__all__ = ["register", "walkforward_report", "load_walkforward"]

WALKFORWARD = REPO_ROOT / "scripts" / "strategy_walkforward.py"


def load_walkforward() -> Any:
    """The walk-forward module (``scripts/strategy_walkforward.py``), imported by path."""
    spec = importlib.util.spec_from_file_location("levibot_walkforward", WALKFORWARD)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise FileNotFoundError(WALKFORWARD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def walkforward_report(res: dict[str, Any], headline: str = "portfolio_risk_parity", capital: float = 200_000.0) -> Any:
    """The tear sheet of a walk-forward result (``main()`` of the walk-forward script): the ``headline`` strategy's
    chained out-of-sample equity in every section, and every strategy's out-of-sample figures and curve in the
    section ``runs``."""
    from operators.report import Chart, Column, RunInputs, Series, Table, build_report, downsample_minmax

    curves = res["curves"]
    ts, eq = curves[headline]
    rows = []
    series = []
    for name, (t, e) in curves.items():
        row: dict[str, Any] = next((r for r in res["rows"] if r["strategy"] == name), {})
        rows.append(
            {
                "strategy": name.replace("_", " "),
                "ret": row.get("total_return_frac"),
                "cagr": row.get("cagr_frac"),
                "sharpe": row.get("sharpe"),
                "vol": row.get("volatility_ann_frac"),
                "mdd": row.get("max_drawdown_frac"),
                "calmar": row.get("calmar"),
                "psr": row.get("probabilistic_sharpe"),
                "dsr": row.get("deflated_sharpe"),
            }
        )
        x, y = downsample_minmax(np.asarray(t), np.asarray(e), 800)
        series.append(Series(name.replace("_", " "), x.tolist(), y.tolist()))
    table = Table(
        "strategies_out_of_sample",
        "Every strategy out of sample, after costs",
        (
            Column("strategy", "Strategy"),
            Column("ret", "Total return", "fraction"),
            Column("cagr", "Annual growth rate", "fraction"),
            Column("sharpe", "Sharpe ratio", "ratio"),
            Column("vol", "Volatility", "fraction"),
            Column("mdd", "Max drawdown", "fraction"),
            Column("calmar", "Calmar ratio", "ratio"),
            Column("psr", "Probability the Sharpe ratio is above 0", "probability"),
            Column("dsr", "Deflated Sharpe ratio", "probability"),
        ),
        rows,
        note=(
            "Test windows chained: each starts at the previous one's final equity. The deflated Sharpe "
            "ratio is the probability that the Sharpe ratio beats the best of "
            f"{res.get('trials', 'the')} configurations tried by luck alone (Bailey and López de "
            "Prado); above 0.95 the result survives the search."
        ),
    )
    chart = Chart(
        "strategies_equity",
        "Out-of-sample equity of every strategy",
        "time (UTC)",
        "equity (quote currency)",
        series,
        "Only test-window decisions are traded; a strategy above the others on every fold is robust, one "
        "that wins only in one stretch is not.",
        y_unit="quote",
    )
    inp = RunInputs(
        ts=ts,
        equity=eq,
        prices=res.get("prices", {}),
        capital=capital,
        tables=[table],
        charts=[chart],
        trades=[],
        info={
            "Folds": str(res.get("folds")),
            "Strategy in the headline": headline.replace("_", " "),
            "Run time": f"{res.get('seconds', 0):,.0f} s",
        },
    )
    return build_report(
        inp,
        title="LeviBot Stream — walk-forward evaluation of the strategies",
        kind="walkforward",
        subtitle="Out of sample: parameters chosen on each 180-day training window, traded on the "
        "following 90 days; next-bar-open fills, fees and slippage.",
    )


def register(app: Any) -> None:
    """Add ``report compare`` and ``evaluate-strategies`` to the ``levibot`` Typer app."""
    import typer

    report_app = typer.Typer(help="Tear sheets: compare two runs' JSON summaries.", no_args_is_help=True)
    app.add_typer(report_app, name="report")

    @report_app.command("compare")
    def compare(
        a: Path = typer.Argument(..., help="First report's JSON summary (e.g. var/reports/backtest.json)."),
        b: Path = typer.Argument(..., help="Second report's JSON summary."),
        headline_only: bool = typer.Option(False, "--headline", help="Only the headline metrics."),
        as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of text."),
    ) -> None:
        """Two runs' metrics in two columns with the difference (B minus A)."""
        from connectors.report import FORMAT, compare_summaries, render_comparison

        docs = []
        for p in (a, b):
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                typer.secho(f"error: cannot read {p}: {exc}", fg=typer.colors.RED, err=True)
                raise typer.Exit(2) from None
            if d.get("format") != FORMAT:
                typer.secho(
                    f'error: {p} is not a LeviBot report summary (no "format": "{FORMAT}")',
                    fg=typer.colors.RED,
                    err=True,
                )
                raise typer.Exit(2)
            docs.append(d)
        if as_json:
            typer.echo(json.dumps(compare_summaries(*docs), indent=1))
        else:
            typer.echo(render_comparison(docs[0], docs[1], str(a), str(b), headline_only=headline_only))

    @app.command("evaluate-strategies")
    def evaluate_strategies(
        max_bars: int | None = typer.Option(
            None, help="Use only the first N bars of each bundled symbol (at least 13,000 for one fold)."
        ),
        out: Path | None = typer.Option(None, help="Report directory (default <var>/reports)."),
    ) -> None:
        """Walk-forward (out-of-sample) test of every strategy and the portfolio, after costs; ends with a tear sheet."""
        from connectors.report import terminal_summary, write_report
        from flows.settings import Settings

        mod = load_walkforward()
        try:
            res = mod.main(max_bars=max_bars)
        except (ValueError, IndexError) as exc:
            typer.secho(f"error: walk-forward failed ({exc}); use more bars", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        if not res["folds"]:
            typer.secho("error: too few bars for one fold", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        rep = walkforward_report(res)
        html_path, json_path = write_report(rep, out or Settings.from_env().var_dir / "reports", "evaluate-strategies")
        typer.echo(terminal_summary(rep))
        typer.echo(f"\n  report   {html_path}\n  summary  {json_path}")
