"""XGBoost as a challenger to LightGBM: the same walk-forward CV with a purge gap, early stopping, calibration on
out-of-fold predictions and final refit (see :mod:`.lgbm`), and a model object with :class:`~.lgbm.BatchModel`'s
interface (``names``, ``calibrator``, ``reference``, ``info``, ``bind``, ``predict_raw``, ``predict``,
``predict_one``), so the registry, the champion/challenger rule and the :class:`~.scorer.Scorer` take it as they
take LightGBM.

``xgboost`` (the ``xgboost-cpu`` wheel) is imported only when a model is trained or loaded. The booster travels as
XGBoost's JSON bytes (deterministic: ``nthread=1``, fixed seed); the one-row hot path is the trees compiled
into a :class:`~.forest.CompiledForest` (:func:`compile_xgb`), as for LightGBM: XGBoost's own one-row predict
costs ~0.2 ms at the median and tens of ms at the tail on the shared VM.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import Calibrator, fit_calibrator
from .forest import CompiledForest, FlatForest
from .lgbm import TrainConfig
from .metrics import summarize
from .psi import PsiReference
from .splits import walk_forward_splits

if TYPE_CHECKING:
    import xgboost as xgb

__all__ = ["XgbParams", "XgbModel", "train_xgboost", "compile_xgb"]


@dataclass(frozen=True)
class XgbParams:
    """XGBoost knobs (see the XGBoost docs), chosen to match :class:`~.lgbm.LgbmParams`' capacity: shallow
    trees, a large minimum child weight, row/column subsampling, L2 = 10, 400 rounds at most, early stopping."""

    max_depth: int = 4
    learning_rate: float = 0.03
    min_child_weight: float = 100.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 10.0
    num_boost_round: int = 400
    early_stopping_rounds: int = 40
    nthread: int = 1
    seed: int = 7

    def xgb(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("num_boost_round", "early_stopping_rounds"):
            d.pop(k)
        d["eta"] = d.pop("learning_rate")
        d["lambda"] = d.pop("reg_lambda")
        d.update(objective="binary:logistic", eval_metric="logloss", tree_method="hist", verbosity=0)
        return d


def _train_one(
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray | None,
    yv: np.ndarray | None,
    p: XgbParams,
    rounds: int | None = None,
) -> xgb.Booster:
    import xgboost as xgb

    dtr = xgb.DMatrix(X, label=y, nthread=p.nthread)
    if Xv is None:
        return xgb.train(p.xgb(), dtr, num_boost_round=rounds or p.num_boost_round)
    dva = xgb.DMatrix(Xv, label=yv, nthread=p.nthread)
    return xgb.train(
        p.xgb(),
        dtr,
        num_boost_round=p.num_boost_round,
        evals=[(dva, "val")],
        early_stopping_rounds=p.early_stopping_rounds,
        verbose_eval=False,
    )


def _threshold(cond: float) -> float:
    """The float64 ``t`` with ``x <= t`` exactly when XGBoost's ``float32(x) < c`` (it compares features rounded
    to float32): below the midpoint between ``c`` and the float32 before it; at the midpoint itself x rounds to
    whichever of the two has an even mantissa (ties to even).

    >>> c = float(np.float32(0.1)); t = _threshold(c)
    >>> bool(np.float32(t) < np.float32(c)), bool(np.float32(np.nextafter(t, np.inf)) < np.float32(c))
    (True, False)
    """
    c = np.float32(cond)
    prev = np.nextafter(c, np.float32(-np.inf))
    mid = (float(prev) + float(c)) / 2.0  # exact in float64
    prev_even = int(prev.view(np.uint32)) % 2 == 0
    return mid if prev_even else float(np.nextafter(mid, -np.inf))


def compile_xgb(booster: xgb.Booster, X_probe: np.ndarray) -> FlatForest:
    """XGBoost's trees (``get_dump(dump_format="json")``) as a :class:`~.forest.FlatForest`, for the one-row hot
    path without XGBoost's per-call overhead. XGBoost sends ``x < c`` to ``yes``; the forest tests ``x <= t``, so
    ``t`` is set by :func:`_threshold` (XGBoost rounds features to float32); a missing value follows ``missing``.
    The base margin (``base_score``) becomes one extra single-leaf tree, measured on ``X_probe`` rows as XGBoost's
    margin minus the trees' sum."""
    import json

    feat: list[int] = []
    thr: list[float] = []
    left: list[int] = []
    right: list[int] = []
    val: list[float] = []
    nanl: list[bool] = []
    roots: list[int] = []
    depth = 0

    def leaf(v: float) -> int:
        i = len(feat)
        feat.append(0)
        thr.append(float("inf"))
        left.append(i)
        right.append(i)
        val.append(float(v))
        nanl.append(True)
        return i

    def build(node: dict[str, Any], d: int) -> int:
        nonlocal depth
        if "leaf" in node:
            depth = max(depth, d)
            return leaf(node["leaf"])
        i = leaf(0.0)
        f = node["split"]
        feat[i] = int(f[1:]) if isinstance(f, str) else int(f)
        thr[i] = _threshold(node["split_condition"])
        kids = {c["nodeid"]: c for c in node["children"]}
        yes, no = kids[node["yes"]], kids[node["no"]]
        nanl[i] = node.get("missing", node["yes"]) == node["yes"]
        li, ri = build(yes, d + 1), build(no, d + 1)
        left[i], right[i] = li, ri
        return i

    for t in booster.get_dump(dump_format="json"):
        roots.append(build(json.loads(t), 0))
    n_feat = int(booster.num_features())
    forest = FlatForest(
        np.asarray(feat, np.int64),
        np.asarray(thr, np.float64),
        np.asarray(left, np.int64),
        np.asarray(right, np.int64),
        np.asarray(val, np.float64),
        np.asarray(nanl, bool),
        np.asarray(roots, np.int64),
        depth,
        n_feat,
    )
    import xgboost as xgb

    probe = np.asarray(X_probe, np.float64)[:64]
    margin = booster.predict(xgb.DMatrix(probe, nthread=1), output_margin=True).astype(np.float64)
    bias = float(np.median(margin - forest.raw(probe)))
    roots.append(leaf(bias))
    return FlatForest(
        np.asarray(feat, np.int64),
        np.asarray(thr, np.float64),
        np.asarray(left, np.int64),
        np.asarray(right, np.int64),
        np.asarray(val, np.float64),
        np.asarray(nanl, bool),
        np.asarray(roots, np.int64),
        depth,
        n_feat,
    )


class XgbModel:
    """A trained, calibrated XGBoost model over ``names``; picklable (the booster travels as JSON bytes)."""

    kind = "xgboost"

    def __init__(
        self,
        raw: bytes,
        names: tuple[str, ...],
        calibrator: Calibrator,
        reference: PsiReference,
        info: dict[str, Any],
        forest: FlatForest,
    ) -> None:
        self.raw = bytes(raw)
        self.names = tuple(names)
        self.calibrator = calibrator
        self.reference = reference
        self.info = info
        self.input_index: np.ndarray | None = None
        self._booster: xgb.Booster | None = None
        self.forest = forest
        self.compiled = CompiledForest(forest)

    @property
    def booster(self) -> xgb.Booster:
        if self._booster is None:
            import xgboost as xgb

            b = xgb.Booster(params={"nthread": 1})
            b.load_model(bytearray(self.raw))
            self._booster = b
        return self._booster

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_booster"] = None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)

    def bind(self, feature_set_names: tuple[str, ...] | list[str]) -> XgbModel:
        """Map model features to positions in the stream's feature tuple; returns self."""
        pos = {n: i for i, n in enumerate(feature_set_names)}
        self.input_index = np.asarray([pos[n] for n in self.names], np.int64)
        return self

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated P(up) of rows ``X`` (n, len(names))."""
        return np.asarray(self.booster.inplace_predict(np.asarray(X, np.float64)), np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(up) of rows ``X`` (n, len(names))."""
        return self.calibrator.predict(self.predict_raw(X))

    def predict_one(self, row: Sequence[float]) -> tuple[float, float]:
        """(raw, calibrated) P(up) of one row of model features (``names`` order), compiled path."""
        p = self.compiled.proba_one(row)
        return p, self.calibrator.predict_one(p)


def train_xgboost(
    X: np.ndarray,
    y: np.ndarray,
    ts: np.ndarray,
    names: tuple[str, ...],
    cfg: TrainConfig,
    params: XgbParams = XgbParams(),
    *,
    info: dict[str, Any] | None = None,
) -> XgbModel:
    """Walk-forward CV (``cfg.n_splits`` folds, ``cfg.gap_ns`` purge, ``cfg.min_train_frac``) with early stopping,
    ``cfg.calibration`` fitted on the out-of-fold predictions, final model on all rows with the median best
    round count — the procedure of :func:`~.lgbm.train_lightgbm`. ``ts``: decision times (ns) of the rows."""
    t0 = time.perf_counter()
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    oof = np.full(y.size, np.nan)
    iters, fm = [], []
    for tr, va in walk_forward_splits(ts, cfg.n_splits, cfg.gap_ns, min_train_frac=cfg.min_train_frac):
        b = _train_one(X[tr], y[tr], X[va], y[va], params)
        bi = max(int(b.best_iteration) + 1, 1)
        oof[va] = b.predict(__import__("xgboost").DMatrix(X[va], nthread=params.nthread), iteration_range=(0, bi))
        iters.append(bi)
        fm.append(summarize(y[va], oof[va]))
    m = np.isfinite(oof)
    calib = fit_calibrator(cfg.calibration, oof[m], y[m])
    n_rounds = int(np.median(iters))
    final = _train_one(X, y, None, None, replace(params, num_boost_round=max(n_rounds, 1)))
    meta = {
        "model": "xgboost",
        "params": asdict(params),
        "n_rounds": n_rounds,
        "fold_best_iters": iters,
        "cv_raw": summarize(y[m], oof[m]),
        "cv_calibrated": summarize(y[m], calib.predict(oof[m])),
        "cv_folds": fm,
        "calibration": cfg.calibration,
        "n_rows": int(y.size),
        "train_start_ns": int(np.min(ts)),
        "train_end_ns": int(np.max(ts)),
        "gap_ns": int(cfg.gap_ns),
        "train_seconds": time.perf_counter() - t0,
        **(info or {}),
    }
    return XgbModel(
        bytes(final.save_raw("json")), names, calib, PsiReference.fit(X, names), meta, compile_xgb(final, X)
    )
