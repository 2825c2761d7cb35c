"""A small GRU over the last ``window`` feature vectors of a symbol, as a challenger to LightGBM.

Training (JAX + optax, CPU, one XLA thread, seeded) follows the procedure of :func:`~.lgbm.train_lightgbm`:
walk-forward CV with the purge gap, early stopping per fold on the fold's validation window (log-loss, in epochs),
calibration fitted on the pooled out-of-fold predictions, final refit on all rows for the median best epoch
count. Inference needs only numpy: the trained weights are plain arrays and the forward pass is written in numpy
(:func:`gru_logits`), checked against the JAX forward used in training (:func:`jax_logits`).

Input of one decision at row ``i`` of a symbol: the standardized model features of that symbol's rows
``i - window + 1 .. i`` (the rows it saw, in time order), zero vectors (= the training mean) before its first row.
The model object is stateless and shared; the :class:`~.scorer.Scorer` takes a per-symbol
:class:`SequenceStream` from :meth:`SequenceModel.stream`, which keeps the last ``window`` rows it scored
(picklable; a stream made at a hot swap inherits the previous stream's rows).

GRU cell (gates in the order update ``z``, reset ``r``, candidate ``n``; ``W`` (d, 3H), ``U`` (H, 3H))::

    z = sigmoid(x Wz + h Uz + bz);  r = sigmoid(x Wr + h Ur + br)
    n = tanh(x Wn + bn + r * (h Un + bhn));  h' = (1 - z) * n + z * h;  logit = h_T . w_out + b_out
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import Calibrator, fit_calibrator
from .lgbm import TrainConfig
from .metrics import summarize
from .psi import PsiReference
from .splits import walk_forward_splits

if TYPE_CHECKING:  # JAX is an optional extra, imported on first use (see _jax)
    from jax import Array
    from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "GruParams",
    "SequenceModel",
    "SequenceStream",
    "train_gru",
    "windows",
    "gru_logits",
    "jax_logits",
    "init_weights",
]

CLIP = 8.0  # standardized inputs are clipped to [-CLIP, CLIP] (a flash crash must not saturate the gates)
WEIGHTS = ("W", "U", "b", "bhn", "w_out", "b_out")


@dataclass(frozen=True)
class GruParams:
    """``window``: feature vectors per decision; ``hidden``: GRU units; AdamW ``learning_rate``,
    ``weight_decay``; ``batch_size`` rows; at most ``max_epochs`` epochs, early stopping after ``patience``
    epochs without a better validation log-loss; ``seed`` fixes initialisation and shuffling."""

    window: int = 16
    hidden: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-3
    batch_size: int = 512
    max_epochs: int = 30
    patience: int = 4
    seed: int = 7


# -- data ---------------------------------------------------------------------------------------------------------
def windows(Z: np.ndarray, groups: ArrayLike | None, window: int, dtype: DTypeLike = np.float32) -> np.ndarray:
    """(n, window, d) of ``dtype``: for each row ``i`` the rows of its group up to ``i`` (the group's rows in the order
    given, which must be time order), the last ``window`` of them, zero-padded in front.

    >>> windows(np.arange(6.).reshape(6, 1), ["a", "b", "a", "b", "a", "b"], 2)[:, :, 0].tolist()
    [[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [1.0, 3.0], [2.0, 4.0], [3.0, 5.0]]
    """
    Z = np.asarray(Z, dtype)
    n = Z.shape[0]
    g = np.zeros(n, np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    idx = np.full((n, window), -1, np.int64)
    for k in np.unique(g):
        pos = np.flatnonzero(g == k)
        j = np.arange(pos.size)[:, None] - (window - 1) + np.arange(window)[None, :]
        idx[pos] = np.where(j >= 0, pos[np.clip(j, 0, None)], -1)
    pad = np.vstack([np.zeros((1, Z.shape[1]), dtype), Z])
    return pad[idx + 1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gru_logits(w: dict[str, np.ndarray], Xw: np.ndarray) -> np.ndarray:
    """Numpy forward pass: logits (n,) of windows ``Xw`` (n, T, d), in ``Xw``'s float type."""
    Xw = np.asarray(Xw)
    dt = Xw.dtype if Xw.dtype in (np.float32, np.float64) else np.float64
    W, U, b, bhn = (np.asarray(w[k], dt) for k in ("W", "U", "b", "bhn"))
    H = U.shape[0]
    xp = Xw.astype(dt) @ W + b  # (n, T, 3H) input projections
    h = np.zeros((Xw.shape[0], H), dt)
    for t in range(Xw.shape[1]):
        hu = h @ U
        zr = _sigmoid(xp[:, t, : 2 * H] + hu[:, : 2 * H])
        z, r = zr[:, :H], zr[:, H:]
        nn = np.tanh(xp[:, t, 2 * H :] + r * (hu[:, 2 * H :] + bhn))
        h = (1.0 - z) * nn + z * h
    logits: np.ndarray = h @ np.asarray(w["w_out"], dt) + np.asarray(w["b_out"], dt)[0]
    return logits


def init_weights(d: int, p: GruParams) -> dict[str, np.ndarray]:
    """Glorot-uniform ``W``, orthogonal blocks of ``U``, zero biases, small output weights (seeded)."""
    rng = np.random.default_rng(p.seed)
    H = p.hidden
    lim = math.sqrt(6.0 / (d + H))
    U = np.hstack([np.linalg.qr(rng.normal(size=(H, H)))[0] for _ in range(3)])
    return {
        "W": rng.uniform(-lim, lim, (d, 3 * H)).astype(np.float32),
        "U": U.astype(np.float32),
        "b": np.zeros(3 * H, np.float32),
        "bhn": np.zeros(H, np.float32),
        "w_out": (rng.normal(size=H) * 0.1).astype(np.float32),
        "b_out": np.zeros(1, np.float32),
    }


# -- JAX ----------------------------------------------------------------------------------------------------------
def _jax() -> tuple[ModuleType, ModuleType]:
    """Import JAX on one XLA thread (a shared 2-core machine: as LightGBM's ``num_threads=1``); returns ``(jax,
    jax.numpy)``. The typed code calls it before its own ``import jax`` (then a lookup in ``sys.modules``)."""
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (
                flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            ).strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    return jax, jnp


def _jax_forward(w: dict[str, Array], Xw: Array) -> Array:
    _jax()
    import jax
    import jax.numpy as jnp

    H = w["U"].shape[0]
    xp = jnp.einsum("ntd,dk->tnk", Xw, w["W"]) + w["b"]  # time-major for the scan

    def cell(h: Array, x: Array) -> tuple[Array, None]:
        hu = h @ w["U"]
        zr = jax.nn.sigmoid(x[:, : 2 * H] + hu[:, : 2 * H])
        z, r = zr[:, :H], zr[:, H:]
        nn = jnp.tanh(x[:, 2 * H :] + r * (hu[:, 2 * H :] + w["bhn"]))
        return (1.0 - z) * nn + z * h, None

    h, _ = jax.lax.scan(cell, jnp.zeros((Xw.shape[0], H), Xw.dtype), xp)
    return h @ w["w_out"] + w["b_out"][0]


def jax_logits(w: dict[str, np.ndarray], Xw: np.ndarray) -> np.ndarray:
    """The JAX forward pass used in training (float32), jitted: logits (n,) of windows ``Xw`` (n, T, d)."""
    _jax()
    import jax.numpy as jnp

    return np.asarray(_fwd()({k: jnp.asarray(v) for k, v in w.items()}, jnp.asarray(Xw, jnp.float32)), np.float64)


_JIT: dict[Any, Any] = {}


def _fwd() -> Callable[[dict[str, Array], Array], Array]:
    _jax()
    import jax

    f = _JIT.get("forward")
    if f is None:
        f = _JIT["forward"] = jax.jit(_jax_forward)
    return f


def _bce(logits: Array, y: Array) -> Array:
    _jax()
    import jax.numpy as jnp

    return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits)


def _fit(
    Xw: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None, p: GruParams, epochs: int | None = None
) -> tuple[dict[str, np.ndarray], int, list[float]]:
    """Train from :func:`init_weights`; with a validation set, early stopping (returns the best epoch's weights
    and its 1-based epoch number), else exactly ``epochs`` epochs. Returns (weights, epochs, val log-losses)."""
    _jax()
    import jax
    import jax.numpy as jnp
    import optax

    key = ("step", p.learning_rate, p.weight_decay)
    opt = optax.adamw(p.learning_rate, weight_decay=p.weight_decay)
    step = _JIT.get(key)
    if step is None:

        def loss(w: dict[str, Array], xb: Array, yb: Array) -> Array:
            return _bce(_jax_forward(w, xb), yb)

        def _step(w: dict[str, Array], s: Any, xb: Array, yb: Array) -> tuple[dict[str, Array], Any, Array]:
            lv, g = jax.value_and_grad(loss)(w, xb, yb)
            upd, s = opt.update(g, s, w)
            return optax.apply_updates(w, upd), s, lv

        step = _JIT[key] = jax.jit(_step)
    fwd = _fwd()
    w = {k: jnp.asarray(v) for k, v in init_weights(Xw.shape[2], p).items()}
    s = opt.init(w)
    rng = np.random.default_rng(p.seed + 1)
    n = Xw.shape[0]
    bs = min(p.batch_size, n)
    Xj = jnp.asarray(Xw, jnp.float32)
    yj = jnp.asarray(y, jnp.float32)
    Xvj = None if Xv is None else jnp.asarray(Xv, jnp.float32)
    n_ep = epochs if Xv is None else p.max_epochs
    best, best_w, best_ep, hist = math.inf, w, 0, []
    for ep in range(1, (n_ep or 1) + 1):
        perm = rng.permutation(n)
        for i in range(0, n - bs + 1, bs):
            b = jnp.asarray(perm[i : i + bs])
            w, s, _ = step(w, s, Xj[b], yj[b])
        if Xvj is None:
            continue
        assert yv is not None  # given with Xv
        pv = np.asarray(jax.nn.sigmoid(fwd(w, Xvj)), np.float64)
        ll = float(summarize(yv, np.clip(pv, 1e-6, 1 - 1e-6))["log_loss"])
        hist.append(ll)
        if ll < best - 1e-6:
            best, best_w, best_ep = ll, w, ep
        elif ep - best_ep >= p.patience:
            break
    out = best_w if Xv is not None else w
    return {k: np.asarray(v, np.float32) for k, v in out.items()}, (best_ep if Xv is not None else n_ep or 1), hist


# -- model --------------------------------------------------------------------------------------------------------
class SequenceModel:
    """A trained, calibrated GRU over ``names``; numpy weights only (picklable, no JAX needed to load it).

    Batch: :meth:`predict` / :meth:`predict_raw` take rows ``X`` (n, len(names)) and their ``groups`` (symbols;
    None = one series) in time order within each group. One decision: :meth:`stream` -> :class:`SequenceStream`.
    """

    kind = "gru"
    sequence = True

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        mean: np.ndarray,
        scale: np.ndarray,
        window: int,
        names: tuple[str, ...],
        calibrator: Calibrator,
        reference: PsiReference,
        info: dict[str, Any],
    ) -> None:
        self.weights = {k: np.asarray(weights[k], np.float32) for k in WEIGHTS}
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.window = int(window)
        self.names = tuple(names)
        self.calibrator = calibrator
        self.reference = reference
        self.info = info
        self.input_index: np.ndarray | None = None
        self._prepare()

    def _prepare(self) -> None:
        # one-row path, rewritten with sigmoid(a) = (1 + tanh(a/2)) / 2: the z and r columns of W, b, U are
        # halved (t = tanh(x' + h U') gives both gates), U's candidate block and b_hn are halved too so that
        # r (h Un + bhn) = (1 + t_r)(h Un' + bhn'); h' = h + (1 - z)(n - h) with 1 - z = 0.5 - 0.5 t_z
        w = {k: v.astype(np.float64) for k, v in self.weights.items()}
        H = w["U"].shape[0]
        half = np.r_[np.full(2 * H, 0.5), np.ones(H)]
        self._H = H
        self._W, self._b = w["W"] * half, w["b"] * half
        self._U = w["U"] * 0.5
        self._bhn = w["bhn"] * 0.5
        self._wout, self._bout = w["w_out"], float(w["b_out"][0])
        self._inv = 1.0 / self.scale
        self._xp0 = self._b.copy()  # projection of a zero (padding) vector

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._prepare()

    def bind(self, feature_set_names: tuple[str, ...] | list[str]) -> SequenceModel:
        pos = {n: i for i, n in enumerate(feature_set_names)}
        self.input_index = np.asarray([pos[n] for n in self.names], np.int64)
        return self

    def standardize(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, np.float64) - self.mean) * self._inv
        return np.clip(np.nan_to_num(Z, nan=0.0), -CLIP, CLIP)

    def predict_raw(self, X: np.ndarray, groups: ArrayLike | None = None) -> np.ndarray:
        """Uncalibrated P(up) of rows ``X`` given their ``groups`` (numpy forward, float64)."""
        Xw = windows(self.standardize(X), groups, self.window, np.float64)
        p: np.ndarray = 1.0 / (1.0 + np.exp(-gru_logits(self.weights, Xw)))
        return p

    def predict(self, X: np.ndarray, groups: ArrayLike | None = None) -> np.ndarray:
        """Calibrated P(up) of rows ``X`` given their ``groups``."""
        return self.calibrator.predict(self.predict_raw(X, groups))

    def stream(self, previous: Any = None) -> SequenceStream:
        """A per-symbol scoring state; ``previous`` (the stream this one replaces at a hot swap) hands over its
        raw rows so the new model's first windows are full."""
        s = SequenceStream(self)
        if isinstance(previous, SequenceStream):
            for row in previous.rows:
                s.push(row)
        return s

    # one decision: the recurrence over the window of precomputed input projections
    def _project(self, row: Sequence[float]) -> np.ndarray:
        z = (np.asarray(row, np.float64) - self.mean) * self._inv
        z = np.clip(np.where(z == z, z, 0.0), -CLIP, CLIP)
        xp: np.ndarray = z @ self._W + self._b
        return xp

    def _proba(self, xps: Sequence[np.ndarray]) -> float:
        H, H2, U, bhn, tanh = self._H, 2 * self._H, self._U, self._bhn, np.tanh
        h = np.zeros(H)
        for x in xps:
            hu = h @ U
            t = tanh(x[:H2] + hu[:H2])
            h += (0.5 - 0.5 * t[:H]) * (tanh(x[H2:] + (1.0 + t[H:]) * (hu[H2:] + bhn)) - h)
        return 1.0 / (1.0 + math.exp(-(float(h @ self._wout) + self._bout)))


class SequenceStream:
    """The last ``window`` rows one symbol's :class:`~.scorer.Scorer` scored, and the model scoring them; has the
    batch-model interface the Scorer uses (``names``, ``reference``, ``info``, ``calibrator``,
    ``predict_one``). Each :meth:`predict_one` call appends its row (one call per decision bar)."""

    sequence = True

    def __init__(self, model: SequenceModel) -> None:
        self.model = model
        self.rows: deque[tuple[float, ...]] = deque(maxlen=model.window)
        self._xp: deque[np.ndarray] = deque(maxlen=model.window)

    names = property(lambda self: self.model.names)
    reference = property(lambda self: self.model.reference)
    info = property(lambda self: self.model.info)
    calibrator = property(lambda self: self.model.calibrator)
    kind = property(lambda self: self.model.kind)

    def push(self, row: Sequence[float]) -> None:
        self.rows.append(tuple(float(v) for v in row))
        self._xp.append(self.model._project(row))

    def predict_one(self, row: Sequence[float]) -> tuple[float, float]:
        """(raw, calibrated) P(up) after appending ``row`` (model features, ``names`` order)."""
        self.push(row)
        m = self.model
        xp: Sequence[np.ndarray] = self._xp
        if len(xp) < m.window:
            xp = [m._xp0] * (m.window - len(xp)) + list(xp)
        p = m._proba(xp)
        return p, m.calibrator.predict_one(p)

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "rows": list(self.rows)}

    def __setstate__(self, d: dict[str, Any]) -> None:
        SequenceStream.__init__(self, d["model"])
        for r in d["rows"]:
            self.push(r)


def train_gru(
    X: np.ndarray,
    y: np.ndarray,
    ts: np.ndarray,
    names: tuple[str, ...],
    cfg: TrainConfig,
    params: GruParams = GruParams(),
    *,
    groups: ArrayLike | None = None,
    info: dict[str, Any] | None = None,
) -> SequenceModel:
    """Walk-forward CV (``cfg.n_splits``, ``cfg.gap_ns`` purge, ``cfg.min_train_frac``) with early stopping in
    epochs, ``cfg.calibration`` on the out-of-fold predictions, final model on all rows for the median best epoch
    count (the procedure of :func:`~.lgbm.train_lightgbm`). Rows in time order within each of ``groups``
    (symbols); standardization from these rows only."""
    t0 = time.perf_counter()
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    mean = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    Z = np.clip(np.nan_to_num((X - mean) / scale, nan=0.0), -CLIP, CLIP)
    Xw = windows(Z, groups, params.window)
    oof = np.full(y.size, np.nan)
    epochs, fm, curves = [], [], []
    for tr, va in walk_forward_splits(ts, cfg.n_splits, cfg.gap_ns, min_train_frac=cfg.min_train_frac):
        w, ep, hist = _fit(Xw[tr], y[tr], Xw[va], y[va], params)
        oof[va] = 1.0 / (1.0 + np.exp(-gru_logits(w, Xw[va].astype(np.float64))))
        epochs.append(ep)
        curves.append([round(v, 5) for v in hist])
        fm.append(summarize(y[va], oof[va]))
    m = np.isfinite(oof)
    calib = fit_calibrator(cfg.calibration, oof[m], y[m])
    n_ep = max(int(np.median(epochs)), 1)
    w, _, _ = _fit(Xw, y, None, None, params, epochs=n_ep)
    meta = {
        "model": "gru",
        "params": asdict(params),
        "n_rounds": n_ep,
        "fold_best_epochs": epochs,
        "fold_val_logloss": curves,
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
    return SequenceModel(w, mean, scale, params.window, names, calib, PsiReference.fit(X, names), meta)
