"""Wiring of the model layer: feature store build, training with champion/challenger, evaluation, schedule.

CLI (added to ``levibot`` by :func:`register`)::

    levibot features build [--source FILE ...] [--resolution 1800]
    levibot train [--horizon 1] [--search-budget 0] [--holdout 0.2]
    levibot evaluate-models [--folds 4] [--out docs/models.md]

History files are OHLCV bars (default: the bundled BTC and ETH 30-min bars); they go through the same operator
code as a replay through the flow (bars -> synthetic ticks -> bars -> features), see docs/models.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from flows.settings import REPO_ROOT, Settings
from operators.features import CORE_V1, FeatureSet
from operators.models import (
    BatchModel,
    PromotionRule,
    Scorer,
    ScorerConfig,
    TrainConfig,
    TrainingSet,
    build_training_set,
    features_frame,
    promotion_decision,
    replay_bars,
    retrain_due,
    summarize,
    train_lightgbm,
    walk_forward_splits,
)
from schemas.time import NS_PER_S as NS

if TYPE_CHECKING:  # the registry and the challengers are imported where they are used
    from connectors.model_registry import TrainedModel

__all__ = [
    "DEFAULT_SOURCES",
    "load_bars",
    "features_build",
    "dataset",
    "train",
    "evaluate",
    "scheduled_retrain",
    "register",
]

DEFAULT_SOURCES = [REPO_ROOT / "data" / "market" / "BTC-30m.csv.gz", REPO_ROOT / "data" / "market" / "ETH-30m.csv.gz"]


def load_bars(
    sources: Sequence[str | Path] | None = None, *, resolution_s: int = 1800, ticks_per_bar: int = 8
) -> pd.DataFrame:
    """Bars of every history file as the stream builds them on replay (``symbol, ts`` = window start, ...)."""
    from connectors.files import read_bars

    frames = []
    for src in sources or DEFAULT_SOURCES:
        b = read_bars(src).frame
        for sym, g in b.groupby("symbol", sort=True):
            frames.append(
                replay_bars(
                    g.ts,
                    g.open,
                    g.high,
                    g.low,
                    g.close,
                    g.volume,
                    resolution_s=resolution_s,
                    symbol=str(sym),
                    ticks_per_bar=ticks_per_bar,
                )
            )
    return pd.concat(frames, ignore_index=True)


def features_build(
    dsn: str,
    *,
    database: str = "levibot",
    sources: Sequence[str | Path] | None = None,
    resolution_s: int = 1800,
    migrate: bool = True,
) -> dict[str, Any]:
    """Compute the offline features of the history files and write them to the ClickHouse store."""
    from connectors.clickhouse.client import connect
    from connectors.clickhouse.migrate import migrate as ch_migrate
    from connectors.feature_store import store_name, write_features

    t0 = time.perf_counter()
    spec = CORE_V1.with_resolution(resolution_s)
    client = connect(dsn)
    if migrate:
        ch_migrate(client, database)
    bars = load_bars(sources, resolution_s=resolution_s)
    feats = features_frame(bars, spec)
    n = write_features(client, feats, spec, database=database)
    return {
        "feature_set": store_name(spec),
        "spec": spec.id,
        "rows": n,
        "symbols": sorted(feats["symbol"].unique().tolist()),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def dataset(
    sources: Sequence[str | Path] | None = None,
    *,
    resolution_s: int = 1800,
    horizon_bars: int = 1,
    threshold: float = 0.0,
    dsn: str | None = None,
    database: str = "levibot",
    bars: pd.DataFrame | None = None,
) -> tuple[TrainingSet, pd.DataFrame, FeatureSet]:
    """Point-in-time training set; features from the ClickHouse store when ``dsn`` is given (audited against
    the bars), else computed from the bars by the same code."""
    spec = CORE_V1.with_resolution(resolution_s)
    bars = load_bars(sources, resolution_s=resolution_s) if bars is None else bars
    if dsn:
        from connectors.clickhouse.client import connect
        from connectors.feature_store import read_features

        feats = read_features(connect(dsn), spec, database=database)
        if feats.empty:
            raise RuntimeError("the feature store is empty: run `levibot features build` first")
        ds = build_training_set(feats, bars, spec, horizon_bars=horizon_bars, threshold=threshold, audit=True)
    else:
        ds = build_training_set(
            features_frame(bars, spec), bars, spec, horizon_bars=horizon_bars, threshold=threshold, audit=False
        )  # computed here by the causal code itself
    return ds, bars, spec


def _predict(model: Any, ds: TrainingSet, idx: np.ndarray) -> np.ndarray:
    """Calibrated P(up) of rows ``idx``; a sequence model (``model.sequence``) reads each row's window from the
    rows of its symbol before it in ``ds``."""
    if getattr(model, "sequence", False):
        return model.predict(ds.X, groups=ds.symbol)[idx]
    return model.predict(ds.X[idx])


def _baseline(y_train: np.ndarray, n: int) -> np.ndarray:
    return np.full(n, float(np.clip(y_train.mean(), 1e-6, 1 - 1e-6)))


def train(
    var_dir: str | Path,
    *,
    sources: Sequence[str | Path] | None = None,
    resolution_s: int = 1800,
    horizon_bars: int = 1,
    threshold: float = 0.0,
    holdout_frac: float = 0.2,
    search_budget_s: float = 0.0,
    calibration: str = "isotonic",
    n_splits: int = 4,
    dsn: str | None = None,
    database: str = "levibot",
    rule: PromotionRule = PromotionRule(),
    ds: TrainingSet | None = None,
    spec: FeatureSet | None = None,
    model_kind: str = "lightgbm",
) -> dict[str, Any]:
    """Train a challenger on all rows before the holdout (minus the gap), register it under ``<var>/models`` and
    promote it if it beats the champion (or the baseline) on the later holdout. Returns a summary.

    ``model_kind``: ``"lightgbm"``, ``"xgboost"`` or ``"gru"`` (same CV, gap, calibration, registry and promotion
    rule)."""
    from connectors.model_registry import ModelRegistry

    t0 = time.perf_counter()
    if ds is None:
        ds, _, spec = dataset(
            sources,
            resolution_s=resolution_s,
            horizon_bars=horizon_bars,
            threshold=threshold,
            dsn=dsn,
            database=database,
        )
    assert spec is not None
    t_data = time.perf_counter() - t0
    gap = ds.horizon_ns + spec.resolution_s * NS
    uts = np.unique(ds.ts)
    h_start = int(uts[int(len(uts) * (1 - holdout_frac))])
    tr = np.flatnonzero(ds.ts < h_start - gap)
    ho = np.flatnonzero(ds.ts >= h_start)
    cfg = TrainConfig(n_splits=n_splits, gap_ns=gap, calibration=calibration, search_budget_s=search_budget_s)
    t1 = time.perf_counter()
    info = {"feature_set": spec.id, "horizon_bars": horizon_bars, "threshold": threshold}
    if model_kind == "lightgbm":
        model: TrainedModel = train_lightgbm(ds.X[tr], ds.y[tr], ds.ts[tr], ds.names, cfg, info=info)
    elif model_kind == "xgboost":
        from operators.models.xgb import train_xgboost

        model = train_xgboost(ds.X[tr], ds.y[tr], ds.ts[tr], ds.names, cfg, info=info)
    elif model_kind == "gru":
        from operators.models.sequence import train_gru

        model = train_gru(ds.X[tr], ds.y[tr], ds.ts[tr], ds.names, cfg, groups=ds.symbol[tr], info=info)
    else:
        raise ValueError(f"model_kind must be 'lightgbm', 'xgboost' or 'gru', got {model_kind!r}")
    t_train = time.perf_counter() - t1
    yh = ds.y[ho]
    m_ch = summarize(yh, _predict(model, ds, ho))
    m_base = summarize(yh, _baseline(ds.y[tr], ho.size))
    reg = ModelRegistry(Path(var_dir) / "models")
    champ_meta = reg.champion()
    m_champ = None
    if (
        champ_meta is not None
        and champ_meta["names"] == list(ds.names)
        and champ_meta["feature_set"] == spec.id
        and champ_meta["horizon_ns"] == ds.horizon_ns
    ):
        m_champ = summarize(yh, _predict(reg.load(champ_meta["version"]), ds, ho))
    promote, reason = promotion_decision(m_ch, m_champ, m_base, rule)
    metrics = {
        "cv_calibrated": model.info["cv_calibrated"],
        "holdout": m_ch,
        "holdout_baseline": m_base,
        "holdout_champion": m_champ,
        "holdout_start_ns": h_start,
    }
    version = reg.register(
        model,
        feature_set=spec.id,
        feature_set_version=spec.version,
        horizon_ns=ds.horizon_ns,
        metrics=metrics,
        extra={"threshold": threshold, "model_kind": model_kind},
    )
    if promote:
        reg.promote(version, reason)
    else:
        reg.set_status(version, "challenger", reason)
    return {
        "version": version,
        "promoted": promote,
        "reason": reason,
        "rows_train": int(tr.size),
        "rows_holdout": int(ho.size),
        "n_rounds": model.info["n_rounds"],
        "holdout": m_ch,
        "holdout_baseline": m_base,
        "holdout_champion": m_champ,
        "data_seconds": round(t_data, 2),
        "train_seconds": round(t_train, 2),
        "total_seconds": round(time.perf_counter() - t0, 2),
    }


def evaluate(
    *,
    sources: Sequence[str | Path] | None = None,
    resolution_s: int = 1800,
    horizon_bars: int = 1,
    threshold: float = 0.0,
    n_folds: int = 4,
    min_train_frac: float = 0.4,
    calibration: str = "isotonic",
    scorer_cfg: ScorerConfig | None = None,
    ds: TrainingSet | None = None,
    bars: pd.DataFrame | None = None,
    spec: FeatureSet | None = None,
    challengers: Sequence[str] = (),
) -> dict[str, Any]:
    """Walk-forward out-of-sample evaluation, run through the streaming :class:`Scorer`.

    The time range after the first ``min_train_frac`` is cut into ``n_folds`` test windows. For window k a
    LightGBM model is trained (with its own inner walk-forward CV and OOF calibration) on every row before the
    window minus the gap; one Scorer per symbol runs over the whole history in time order, its batch model
    hot-swapped at each window start, River learning online from delayed labels from the first bar on. Only
    predictions inside the test windows are scored. Baseline: the training rows' up frequency as a constant.

    ``challengers`` (``"xgboost"``, ``"gru"``): batch models trained on the same rows with the same CV, gap and
    calibration (:func:`operators.models.xgb.train_xgboost`, :func:`operators.models.sequence.train_gru`), scored
    on the same test rows (the GRU's windows reach back into the rows before the window); a challenger earns a place in
    the ensemble only if its out-of-sample log-loss beats LightGBM's (the ``keep`` entry of the result).
    """
    if ds is None or bars is None or spec is None:
        ds, bars, spec = dataset(sources, resolution_s=resolution_s, horizon_bars=horizon_bars, threshold=threshold)
    gap = ds.horizon_ns + spec.resolution_s * NS
    cfg = scorer_cfg or ScorerConfig(horizon_bars=horizon_bars, threshold=threshold)
    t0 = time.perf_counter()
    folds = walk_forward_splits(ds.ts, n_folds, gap, min_train_frac=min_train_frac)
    unknown = set(challengers) - {"xgboost", "gru"}
    if unknown:
        raise ValueError(f"unknown challengers {sorted(unknown)}; known: xgboost, gru")
    models: list[tuple[int, int, BatchModel, float]] = []
    train_s = []
    extra: dict[str, list[pd.DataFrame]] = {c: [] for c in challengers}
    extra_s: dict[str, list[float]] = {c: [] for c in challengers}
    for tr, te in folds:
        t1 = time.perf_counter()
        m = train_lightgbm(ds.X[tr], ds.y[tr], ds.ts[tr], ds.names, TrainConfig(gap_ns=gap, calibration=calibration))
        train_s.append(time.perf_counter() - t1)
        models.append((int(ds.ts[te].min()), int(ds.ts[te].max()), m, float(ds.y[tr].mean())))
        for c in challengers:
            t1 = time.perf_counter()
            mc: TrainedModel
            if c == "gru":
                from operators.models.sequence import train_gru

                mc = train_gru(
                    ds.X[tr],
                    ds.y[tr],
                    ds.ts[tr],
                    ds.names,
                    TrainConfig(gap_ns=gap, calibration=calibration),
                    groups=ds.symbol[tr],
                )
            else:
                from operators.models.xgb import train_xgboost

                mc = train_xgboost(
                    ds.X[tr], ds.y[tr], ds.ts[tr], ds.names, TrainConfig(gap_ns=gap, calibration=calibration)
                )
            extra_s[c].append(time.perf_counter() - t1)
            extra[c].append(pd.DataFrame({"symbol": ds.symbol[te], "ts": ds.ts[te], c: _predict(mc, ds, te)}))
    # stream every symbol through a Scorer
    res_ns = spec.resolution_s * NS
    feats = features_frame(bars, spec)
    rows: list[tuple] = []
    for sym, g in feats.groupby("symbol", sort=True):
        gb = bars[bars["symbol"] == sym]
        close = dict(zip((gb["ts"].to_numpy(np.int64) + res_ns).tolist(), gb["close"].tolist(), strict=True))
        sc = Scorer(str(sym), spec, cfg=cfg, names=ds.names)
        F = g[list(spec.features)].to_numpy(np.float64)
        T = g["ts"].to_numpy(np.int64)
        k = -1
        for i in range(T.size):
            ts = int(T[i])
            while k + 1 < len(models) and ts >= models[k + 1][0]:
                k += 1
                sc.swap_batch(models[k][2], f"fold{k}")
            raw, cal, ens, _ = sc.score(tuple(F[i].tolist()), ts)
            sc.learn(ts, close[ts])
            if k >= 0 and ts <= models[k][1]:
                rows.append((sym, ts, raw["lgbm"], cal, raw["river"], ens, models[k][3]))
    pred = pd.DataFrame(rows, columns=["symbol", "ts", "lgbm_raw", "lgbm", "river", "ensemble", "baseline"])
    lab = pd.DataFrame({"symbol": ds.symbol, "ts": ds.ts, "y": ds.y})
    pred = pred.merge(lab, on=["symbol", "ts"], how="inner")
    for c in challengers:
        pred = pred.merge(pd.concat(extra[c], ignore_index=True), on=["symbol", "ts"], how="inner")
    table: dict[str, dict[str, dict[str, float]]] = {}
    cols = ("baseline", "lgbm_raw", "lgbm", "river", "ensemble", *challengers)
    for scope, g in [("pooled", pred), *list(pred.groupby("symbol", sort=True))]:
        table[str(scope)] = {c: summarize(g["y"].to_numpy(), g[c].to_numpy()) for c in cols}
    keep = {c: bool(table["pooled"][c]["log_loss"] < table["pooled"]["lgbm"]["log_loss"]) for c in challengers}
    return {
        "table": table,
        "n_test": len(pred),
        "folds": n_folds,
        "horizon_bars": horizon_bars,
        "threshold": threshold,
        "resolution_s": spec.resolution_s,
        "feature_set": spec.id,
        "features": list(ds.names),
        "train_seconds_per_fold": [round(s, 2) for s in train_s],
        "challengers": {
            c: {"keep": keep[c], "train_seconds_per_fold": [round(x, 2) for x in extra_s[c]]} for c in challengers
        },
        "test_start_ns": models[0][0],
        "test_end_ns": models[-1][1],
        "seconds": round(time.perf_counter() - t0, 2),
    }


def render_table(result: dict[str, Any]) -> str:
    """Markdown table of :func:`evaluate`'s result."""
    names = {
        "baseline": "base rate (constant)",
        "lgbm_raw": "LightGBM, uncalibrated",
        "lgbm": "LightGBM, isotonic",
        "river": "River logistic (online)",
        "ensemble": "ensemble (log-loss weights)",
        "xgboost": "XGBoost, isotonic (challenger)",
        "gru": "GRU (sequence), isotonic (challenger)",
    }
    out = ["| data | model | n | log-loss | AUC | Brier | ECE |", "|---|---|---|---|---|---|---|"]
    for scope, t in result["table"].items():
        for k, m in t.items():
            out.append(
                f"| {scope} | {names[k]} | {m['n']} | {m['log_loss']:.4f} | {m['auc']:.4f} | "
                f"{m['brier']:.4f} | {m['ece']:.4f} |"
            )
    return "\n".join(out)


def scheduled_retrain(
    var_dir: str | Path,
    *,
    every_s: float = 7 * 86400,
    now_ns: int | None = None,
    drift_requested: bool = False,
    **train_kwargs: Any,
) -> dict[str, Any] | None:
    """Run :func:`train` when due (``every_s`` since the newest registered model, or a drift request).

    The new model becomes champion only through the champion/challenger rule. Returns the train summary or
    None when not due. A scheduler (cron, the flow's retrain-request consumer) calls this.
    """
    import datetime as dt

    from connectors.model_registry import ModelRegistry

    reg = ModelRegistry(Path(var_dir) / "models")
    vs = reg.versions()
    last = int(dt.datetime.fromisoformat(vs[-1]["created_at"]).timestamp() * NS) if vs else None
    now = time.time_ns() if now_ns is None else now_ns
    if not retrain_due(now, last, every_s, drift_requested=drift_requested):
        return None
    return train(var_dir, **train_kwargs)


# -- CLI -------------------------------------------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    """Add ``features build``, ``train`` and ``evaluate-models`` to the ``levibot`` app."""
    features_app = typer.Typer(help="The offline feature store (ClickHouse).", no_args_is_help=True)
    app.add_typer(features_app, name="features")

    @features_app.command("build")
    def features_build_cmd(
        source: list[Path] = typer.Option(None, help="OHLCV history files (default: the bundled BTC/ETH bars)."),
        resolution: int = typer.Option(1800, help="Bar resolution of the features, s."),
        database: str = typer.Option("levibot", help="ClickHouse database."),
    ) -> None:
        """Compute features from history through the stream's operator code into ClickHouse."""
        s = Settings.from_env()
        typer.echo(
            json.dumps(
                features_build(
                    s.clickhouse_dsn_resolved, database=database, sources=source or None, resolution_s=resolution
                )
            )
        )

    @app.command("train")
    def train_cmd(
        source: list[Path] = typer.Option(None, help="OHLCV history files (default: the bundled BTC/ETH bars)."),
        resolution: int = typer.Option(1800, help="Bar resolution, s."),
        horizon: int = typer.Option(1, help="Label horizon, bars."),
        threshold: float = typer.Option(0.0, help="Label dead band, log return (0 = sign)."),
        holdout: float = typer.Option(0.2, help="Fraction of the time range kept as the later holdout."),
        search_budget: float = typer.Option(0.0, help="Hyperparameter search time budget, s (0 = off)."),
        calibration: str = typer.Option("isotonic", help="isotonic | platt | identity"),
        from_store: bool = typer.Option(False, help="Read features from the ClickHouse store (audited)."),
        model: str = typer.Option("lightgbm", help="lightgbm | xgboost | gru (challengers; extra 'challengers')."),
    ) -> None:
        """Train a LightGBM (or XGBoost, GRU) challenger, register it, promote it if it wins on the holdout."""
        s = Settings.from_env()
        out = train(
            s.var_dir,
            sources=source or None,
            resolution_s=resolution,
            horizon_bars=horizon,
            threshold=threshold,
            holdout_frac=holdout,
            search_budget_s=search_budget,
            calibration=calibration,
            dsn=s.clickhouse_dsn_resolved if from_store else None,
            model_kind=model,
        )
        typer.echo(json.dumps(out, indent=1, default=str))

    @app.command("evaluate-models")
    def evaluate_cmd(
        source: list[Path] = typer.Option(None, help="OHLCV history files (default: the bundled BTC/ETH bars)."),
        resolution: int = typer.Option(1800, help="Bar resolution, s."),
        horizon: int = typer.Option(1, help="Label horizon, bars."),
        threshold: float = typer.Option(0.0, help="Label dead band, log return."),
        folds: int = typer.Option(4, help="Walk-forward test windows."),
        out: Path = typer.Option(None, help="Also write the result as JSON here."),
        challenger: list[str] = typer.Option(None, help="Also evaluate a challenger batch model: xgboost, gru."),
    ) -> None:
        """Walk-forward out-of-sample AUC, log-loss, Brier, ECE of LightGBM, River, ensemble vs base rate."""
        r = evaluate(
            sources=source or None,
            resolution_s=resolution,
            horizon_bars=horizon,
            threshold=threshold,
            n_folds=folds,
            challengers=tuple(challenger or ()),
        )
        typer.echo(render_table(r))
        typer.echo(json.dumps({k: v for k, v in r.items() if k != "table"}, default=str))
        if out is not None:
            out.write_text(json.dumps(r, indent=1, default=str))
