"""The scoring stage of one symbol: batch (LightGBM) + online (River) models, calibration, ensemble, drift.

The pipeline calls, per decision bar of the symbol (times are the bar's window END in ns, as ``FeatureVector.ts``):

* ``learn(ts, close)`` with the bar's close: records the price, resolves every pending prediction whose horizon
  has elapsed (label = sign, or thresholded size, of ``ln(close_now / close_then)`` — the same rule as the
  offline builder), trains River, updates rolling metrics, ensemble weights and drift detectors; returns alerts;
* ``score(features, ts)`` once features are warm: ``(raw, calibrated, ensemble, uncertainty)`` — ``raw`` maps
  model name to its uncalibrated P(up) (``"lgbm"``, ``"river"``), ``calibrated`` is the primary model's
  calibrated P(up) (LightGBM; River when no batch model is loaded), ``ensemble`` the log-loss-weighted blend
  of the calibrated members, ``uncertainty`` their weighted spread (see :mod:`.ensemble`).

Order within one bar does not matter (``learn`` then ``score`` or the reverse). Predictions wait in
``pending`` (in the state: a restored scorer resolves them as if nothing happened). The object is picklable;
with ``ScorerConfig.pickle_model=False`` the batch model is left out of the pickle and re-attached by
:meth:`maybe_swap` from a model source (the registry watcher), which keeps snapshots small.

Hot swap: :meth:`maybe_swap` compares ``source.version`` (a cheap, cached check) with the loaded version and swaps
in ``source.model`` when they differ; the ensemble and ADWIN state of the batch member restart.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from operators.features import FeatureSet
from schemas.events import Alert, Score
from schemas.time import NS_PER_S as NS

from .dataset import DEFAULT_EXCLUDED, label_of
from .drift import DriftMonitor, RetrainRequest
from .ensemble import LogLossWeights
from .lgbm import BatchModel
from .metrics import RollingMetrics
from .online import OnlineModel

__all__ = ["Scorer", "ScorerConfig", "ModelSource", "ScoreResult"]

ScoreResult = tuple[dict[str, float], float, float, float]


class ModelSource(Protocol):
    """What :meth:`Scorer.maybe_swap` needs: the champion's version (cheap) and the loaded model."""

    @property
    def version(self) -> str | None: ...

    @property
    def model(self) -> BatchModel | None: ...

    def model_at(self, version: str) -> BatchModel | None:
        """The model of one registered version (for a pin), None when unusable."""
        ...


@dataclass(frozen=True)
class ScorerConfig:
    """``horizon_bars``: label horizon in decision bars; ``threshold``: dead band of the label (log return);
    ``max_wait_bars``: a label is dropped if no close arrives within this many bars after the horizon (default
    2 * horizon); ``half_life``/``eta``: ensemble (labels, dimensionless); ``metrics_window``: labels;
    ``adwin_delta``: ADWIN confidence; ``psi_*``: see :class:`DriftMonitor`; ``alert_cooldown_s``: s."""

    horizon_bars: int = 1
    threshold: float = 0.0
    max_wait_bars: int | None = None
    half_life: float = 500.0
    eta: float = 1.0
    metrics_window: int = 1000
    adwin_delta: float = 0.002
    psi_threshold: float = 0.25
    psi_window: int = 500
    psi_every: int = 250
    alert_cooldown_s: float = 6 * 3600
    online_lr: float = 0.005
    online_l2: float = 1e-4
    exclude: tuple[str, ...] = DEFAULT_EXCLUDED
    pickle_model: bool = True


class _Pending:
    __slots__ = ("ts", "close", "row", "cal", "ens")

    def __init__(self, ts: int, close: float | None, row: list[float], cal: dict[str, float], ens: float) -> None:
        self.ts, self.close, self.row, self.cal, self.ens = ts, close, row, cal, ens

    def __getstate__(self) -> tuple[int, float | None, list[float], dict[str, float], float]:
        return (self.ts, self.close, self.row, self.cal, self.ens)

    def __setstate__(self, s: tuple[int, float | None, list[float], dict[str, float], float]) -> None:
        self.ts, self.close, self.row, self.cal, self.ens = s


class Scorer:
    """Scoring state of ONE symbol (picklable; the pipeline keeps it in its per-symbol state)."""

    def __init__(
        self,
        symbol: str,
        spec: FeatureSet,
        *,
        batch: BatchModel | None = None,
        batch_version: str | None = None,
        cfg: ScorerConfig = ScorerConfig(),
        names: Sequence[str] | None = None,
    ) -> None:
        self.symbol = symbol
        self.spec = spec
        self.cfg = cfg
        self.names = (
            tuple(names)
            if names is not None
            else (batch.names if batch is not None else tuple(f for f in spec.features if f not in cfg.exclude))
        )
        pos = {n: i for i, n in enumerate(spec.features)}
        self._index = [pos[n] for n in self.names]
        self.res_ns = spec.resolution_s * NS
        self.horizon_ns = cfg.horizon_bars * self.res_ns
        self.wait_ns = (2 * cfg.horizon_bars if cfg.max_wait_bars is None else cfg.max_wait_bars) * self.res_ns
        self.online = OnlineModel(self.names, cfg.online_lr, cfg.online_l2)
        self.weights = LogLossWeights(cfg.half_life, cfg.eta)
        self.metrics: dict[str, RollingMetrics] = {}
        self.drift = DriftMonitor(
            symbol,
            delta=cfg.adwin_delta,
            psi_threshold=cfg.psi_threshold,
            psi_window=cfg.psi_window,
            psi_every=cfg.psi_every,
            cooldown_s=cfg.alert_cooldown_s,
        )
        self.pending: deque[_Pending] = deque()
        self._closes: deque[tuple[int, float]] = deque(maxlen=8)
        self.batch: BatchModel | None = None
        self.batch_version: str | None = None
        self.alerts: list[Alert] = []
        self.n_scored = 0
        self.n_resolved = 0
        self.n_expired = 0
        if batch is not None:
            self.swap_batch(batch, batch_version or "unversioned")

    # -- models ---------------------------------------------------------------------------------------------------
    def swap_batch(self, model: BatchModel | None, version: str | None) -> None:
        """Replace the batch model (None removes it); its ensemble weight and ADWIN history restart."""
        if model is not None and tuple(model.names) != self.names:
            raise ValueError(f"model features {model.names} differ from the scorer's {self.names}")
        changed = version != self.batch_version
        if model is not None and hasattr(model, "stream"):  # a sequence model: this symbol's own window state
            model = model.stream(self.batch)
        self.batch = model
        self.batch_version = version if model is not None else None
        if changed:
            self.weights.reset("lgbm")
            self.drift.reset_model("lgbm")
            self.drift.set_reference(model.reference if model is not None else None)
            self.metrics.pop("lgbm", None)

    def maybe_swap(self, source: ModelSource, pinned: str | None = None) -> bool:
        """Load the source's model if its version differs from ours (or ours was left out of a pickle). With
        ``pinned`` (an operator's ``pin_model``), that version instead of the champion, for as long as it is
        pinned (``source.model_at(pinned)``; a version the source cannot serve leaves the model as it is)."""
        v = pinned if pinned is not None else source.version
        if v is None or (v == self.batch_version and self.batch is not None):
            return False
        m = source.model_at(v) if pinned is not None else source.model
        if m is None:
            return False
        self.swap_batch(m, v)
        return True

    @property
    def model_versions(self) -> dict[str, str]:
        """Model name -> version string, for ``Score.model_versions``."""
        d = {"river": f"river-{self.online.n_learned}"}
        if self.batch_version is not None:
            d["lgbm"] = self.batch_version
        return d

    # -- hot path -------------------------------------------------------------------------------------------------
    def score(self, features: Sequence[float], ts: int) -> ScoreResult:
        """Score one feature tuple (spec order) at decision time ``ts`` (ns); see the module doc."""
        row = [features[i] for i in self._index]
        raw: dict[str, float] = {}
        cal: dict[str, float] = {}
        b = self.batch
        if b is not None:
            r, c = b.predict_one(row)
            raw["lgbm"], cal["lgbm"] = r, c
        po = self.online.predict_one(row)
        raw["river"] = cal["river"] = po
        ens, unc, _ = self.weights.blend(cal)
        calibrated = cal.get("lgbm", po)
        if not self.pending or self.pending[-1].ts < ts:
            close = self._closes[-1][1] if self._closes and self._closes[-1][0] == ts else None
            self.pending.append(_Pending(ts, close, row, cal, ens))
        self.n_scored += 1
        if self.drift.reference is not None:
            self.alerts.extend(self.drift.observe_features(row, ts))
        return raw, calibrated, ens, unc

    def learn(self, ts: int, close: float) -> list[Alert]:
        """The close (quote currency) of the decision bar ending at ``ts`` (ns): resolve matured predictions.

        Returns the alerts raised since the last call (also drift alerts raised while scoring).
        """
        self._closes.append((ts, float(close)))
        pend = self.pending
        if pend and pend[-1].ts == ts and pend[-1].close is None:
            pend[-1].close = float(close)
        while pend and pend[0].ts + self.horizon_ns <= ts:
            p = pend.popleft()
            if p.close is None or ts - (p.ts + self.horizon_ns) > self.wait_ns:
                self.n_expired += 1
                continue
            y = label_of(math.log(close / p.close), self.cfg.threshold)
            if y != y:  # dead band
                continue
            self._resolve(p, y)
        out, self.alerts = self.alerts, []
        return out

    def _resolve(self, p: _Pending, y: float) -> None:
        self.n_resolved += 1
        self.online.learn_one(p.row, y)
        self.weights.update(y, p.cal)
        probs = dict(p.cal)
        probs["ensemble"] = p.ens
        for name, q in probs.items():
            m = self.metrics.get(name)
            if m is None:
                m = self.metrics[name] = RollingMetrics(self.cfg.metrics_window)
            m.update(y, q)
            self.alerts.extend(self.drift.update_error(name, y, q, p.ts))

    # -- helpers --------------------------------------------------------------------------------------------------
    def take_retrain_requests(self) -> list[RetrainRequest]:
        """Retrain requests raised since the last call (drift); the caller forwards them to the training job."""
        out, self.drift.requests = self.drift.requests, []
        return out

    def score_event(self, ts: int, result: ScoreResult) -> Score:
        """A ``schemas.events.Score`` of a :meth:`score` result."""
        raw, calibrated, ens, unc = result
        return Score(
            symbol=self.symbol,
            ts=ts,
            model_versions=self.model_versions,
            raw=dict(raw),
            calibrated=calibrated,
            ensemble=ens,
            uncertainty=unc,
        )

    def rolling_metrics(self) -> dict[str, dict[str, float]]:
        """Per model (and ``ensemble``): log-loss, AUC, Brier, ECE over the last ``metrics_window`` labels."""
        return {n: m.snapshot() for n, m in self.metrics.items()}

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if not self.cfg.pickle_model:
            d["batch"] = None  # re-attached by maybe_swap(source); batch_version says which
        return d
