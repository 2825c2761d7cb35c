"""LightGBM training: walk-forward CV with a gap, early stopping, optional time-boxed search, OOF calibration.

:func:`train_lightgbm` returns a :class:`BatchModel`: the booster (kept as its text dump so the object pickles
and hashes deterministically), a compiled :class:`~operators.models.forest.FlatForest` for the hot path, the
calibrator fitted on out-of-fold predictions, the PSI reference of the training window and the CV metrics.

Procedure (no row of a validation fold, nor any row whose label overlaps it, ever trains the model that
predicts it):

1. ``n_splits`` expanding walk-forward folds on time with ``gap_ns >= horizon`` (purge);
2. per fold: train with early stopping on the fold's validation window (log-loss, ``early_stopping_rounds``);
   the out-of-fold (OOF) predictions are those of the fold model on its validation window;
3. calibrator (isotonic or Platt) fitted on all OOF predictions (which are out of sample);
4. final model on all rows with the median best iteration count of the folds.

Hyperparameter search (``search_budget_s > 0``): Optuna TPE over the main parameters, objective = mean fold
validation log-loss, stopped by the time budget; falls back to the defaults when Optuna is not installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import Calibrator, IdentityCalibrator, IsotonicCalibrator, PlattCalibrator, fit_calibrator
from .forest import CompiledForest, FlatForest
from .metrics import summarize
from .psi import PsiReference
from .splits import walk_forward_splits

if TYPE_CHECKING:
    import lightgbm as lgb
    import optuna

__all__ = ["LgbmParams", "TrainConfig", "BatchModel", "train_lightgbm", "cross_validate"]


@dataclass(frozen=True)
class LgbmParams:
    """LightGBM knobs (see LightGBM docs); ``num_threads=1`` by default: stable timing on shared machines."""

    num_leaves: int = 15
    max_depth: int = 6
    learning_rate: float = 0.03
    min_child_samples: int = 400
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 10.0
    num_boost_round: int = 400
    early_stopping_rounds: int = 40
    num_threads: int = 1
    seed: int = 7

    def lgb(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("num_boost_round", "early_stopping_rounds"):
            d.pop(k)
        d.update(
            objective="binary",
            metric="binary_logloss",
            verbose=-1,
            deterministic=True,
            force_col_wise=True,
            min_data_in_bin=20,
        )
        return d


@dataclass(frozen=True)
class TrainConfig:
    """``gap_ns``: purge between train and validation (>= label horizon, ns); ``calibration``: isotonic|platt|identity;
    ``search_budget_s``: hyperparameter search time (s), 0 = off; ``search_max_trials``: cap on trials."""

    params: LgbmParams = field(default_factory=LgbmParams)
    n_splits: int = 4
    gap_ns: int = 0
    min_train_frac: float = 0.4
    calibration: str = "isotonic"
    search_budget_s: float = 0.0
    search_max_trials: int = 50


@dataclass
class CVResult:
    oof: np.ndarray  # raw OOF probabilities, NaN outside validation windows
    best_iters: list[int]
    fold_metrics: list[dict[str, float]]
    mean_logloss: float


def _train_one(
    X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None, p: LgbmParams
) -> lgb.Booster:
    import lightgbm as lgb

    dtr = lgb.Dataset(X, y, free_raw_data=True)
    cbs: list[Callable[..., Any]] = []
    valid: list[lgb.Dataset] = []
    if Xv is not None:
        valid = [lgb.Dataset(Xv, yv, reference=dtr)]
        cbs = [lgb.early_stopping(p.early_stopping_rounds, verbose=False)]
    return lgb.train(p.lgb(), dtr, num_boost_round=p.num_boost_round, valid_sets=valid, callbacks=cbs)


def cross_validate(
    X: np.ndarray, y: np.ndarray, ts: np.ndarray, cfg: TrainConfig, params: LgbmParams | None = None
) -> CVResult:
    """Walk-forward CV (see the module doc); returns OOF raw probabilities and per-fold results."""
    p = params or cfg.params
    oof = np.full(y.size, np.nan)
    iters, fm = [], []
    for tr, va in walk_forward_splits(ts, cfg.n_splits, cfg.gap_ns, min_train_frac=cfg.min_train_frac):
        b = _train_one(X[tr], y[tr], X[va], y[va], p)
        bi = max(int(b.best_iteration or b.current_iteration()), 1)
        oof[va] = b.predict(X[va], num_iteration=bi, num_threads=p.num_threads)
        iters.append(bi)
        fm.append(summarize(y[va], oof[va]))
    return CVResult(oof, iters, fm, float(np.mean([m["log_loss"] for m in fm])))


def _search(X: np.ndarray, y: np.ndarray, ts: np.ndarray, cfg: TrainConfig) -> tuple[LgbmParams, dict[str, Any]]:
    try:
        import optuna
    except ImportError:  # optional dependency
        return cfg.params, {"search": "skipped: optuna not installed"}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = cfg.params

    def objective(trial: optuna.Trial) -> float:
        p = replace(
            base,
            num_leaves=trial.suggest_int("num_leaves", 4, 63, log=True),
            max_depth=trial.suggest_int("max_depth", 2, 8),
            learning_rate=trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 50, 2000, log=True),
            feature_fraction=trial.suggest_float("feature_fraction", 0.4, 1.0),
            lambda_l2=trial.suggest_float("lambda_l2", 1e-2, 100.0, log=True),
        )
        return cross_validate(X, y, ts, cfg, p).mean_logloss

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=base.seed))
    study.enqueue_trial(
        {
            k: getattr(base, k)
            for k in ("num_leaves", "max_depth", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2")
        }
    )
    study.optimize(objective, n_trials=cfg.search_max_trials, timeout=cfg.search_budget_s)
    return replace(base, **study.best_params), {
        "search_trials": len(study.trials),
        "search_best_logloss": study.best_value,
    }


class BatchModel:
    """A trained, calibrated LightGBM model over ``names`` (ordered model features).

    ``input_index``: positions of ``names`` inside a feature-set tuple (set by :meth:`bind`), so
    :meth:`predict_one` takes the full tuple the stream produces. Picklable (the booster travels as text).
    """

    def __init__(
        self,
        model_str: str,
        names: tuple[str, ...],
        calibrator: Calibrator,
        reference: PsiReference,
        info: dict[str, Any],
    ) -> None:
        self.model_str = model_str
        self.names = tuple(names)
        self.calibrator = calibrator
        self.reference = reference
        self.info = info
        self.input_index: np.ndarray | None = None
        self._booster: lgb.Booster | None = None
        self.forest, self.compiled = self._compile()

    def _compile(self) -> tuple[FlatForest, CompiledForest]:
        f = FlatForest.from_dump(self.booster.dump_model())
        return f, CompiledForest(f)

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.model_str)
        return self._booster

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_booster"] = None
        d["forest"] = None
        d["compiled"] = None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self.forest, self.compiled = self._compile()

    def bind(self, feature_set_names: tuple[str, ...] | list[str]) -> BatchModel:
        """Map model features to positions in the stream's feature tuple; returns self."""
        pos = {n: i for i, n in enumerate(feature_set_names)}
        self.input_index = np.asarray([pos[n] for n in self.names], np.int64)
        return self

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated P(up) of rows ``X`` (n, len(names)) by LightGBM's batched predict."""
        # dense rows in, a dense array out (np.asarray: the same object; the stubs also allow sparse and list)
        return np.asarray(self.booster.predict(np.asarray(X, np.float64), num_threads=1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(up) of rows ``X`` (n, len(names))."""
        return self.calibrator.predict(self.predict_raw(X))

    def predict_one(self, row: Sequence[float]) -> tuple[float, float]:
        """(raw, calibrated) P(up) of one row of model features (list of floats, ``names`` order), compiled path."""
        p = self.compiled.proba_one(row)
        return p, self.calibrator.predict_one(p)


def train_lightgbm(
    X: np.ndarray,
    y: np.ndarray,
    ts: np.ndarray,
    names: tuple[str, ...],
    cfg: TrainConfig,
    *,
    info: dict[str, Any] | None = None,
) -> BatchModel:
    """Train, cross-validate and calibrate (module doc). ``ts``: decision times (ns) of the rows."""
    t0 = time.perf_counter()
    sinfo: dict[str, Any]
    params, sinfo = (cfg.params, {})
    if cfg.search_budget_s > 0:
        params, sinfo = _search(X, y, ts, cfg)
    cv = cross_validate(X, y, ts, cfg, params)
    m = np.isfinite(cv.oof)
    calib = fit_calibrator(cfg.calibration, cv.oof[m], y[m])
    n_rounds = int(np.median(cv.best_iters))
    final = _train_one(X, y, None, None, replace(params, num_boost_round=max(n_rounds, 1)))
    oof_cal = calib.predict(cv.oof[m])
    meta = {
        "params": asdict(params),
        "n_rounds": n_rounds,
        "fold_best_iters": cv.best_iters,
        "cv_raw": summarize(y[m], cv.oof[m]),
        "cv_calibrated": summarize(y[m], oof_cal),
        "cv_folds": cv.fold_metrics,
        "calibration": cfg.calibration,
        "n_rows": int(y.size),
        "train_start_ns": int(ts.min()),
        "train_end_ns": int(ts.max()),
        "gap_ns": int(cfg.gap_ns),
        "train_seconds": time.perf_counter() - t0,
        **sinfo,
        **(info or {}),
    }
    return BatchModel(final.model_to_string(), names, calib, PsiReference.fit(X, names), meta)


# re-exported for type checks of pickled calibrators
_CALIBRATORS = (IsotonicCalibrator, PlattCalibrator, IdentityCalibrator)
