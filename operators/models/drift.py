"""Drift detection: ADWIN on each model's errors, PSI of the features against the training window.

Both produce :class:`schemas.events.Alert` objects (``kind="model_drift"``) and :class:`RetrainRequest` items.

* **Errors**: per model, ``river.drift.ADWIN(delta)`` receives the squared error ``(p - y)^2`` (Brier term, in
  [0, 1]) of every resolved prediction. A detected change where the recent mean error is *higher* than before
  is a degradation: warning alert + retrain request. A change towards smaller errors is logged as ``info`` only.
* **Features**: the last ``psi_window`` model-feature rows are compared with the training window's deciles every
  ``psi_every`` rows; ``max PSI > psi_threshold`` (default 0.25, "significant shift") raises an alert and a
  retrain request, naming the worst features.

Alerts are deduplicated per (symbol, source, model/feature) with a cooldown in event time; ids are a pure
function of the cause (replays re-emit the same ids).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from river.drift import ADWIN

from operators.ids import stable_id
from schemas.events import Alert
from schemas.time import NS_PER_S as NS

from .psi import PsiReference

__all__ = ["DriftMonitor", "RetrainRequest"]


@dataclass(frozen=True)
class RetrainRequest:
    """Ask the training job for a new challenger. ``reason``: ``model_drift`` | ``feature_drift`` | ``schedule``;
    ``ts``: event time (ns) of the cause; ``detail``: human text."""

    symbol: str
    ts: int
    reason: str
    detail: str
    model: str | None = None


class DriftMonitor:
    """Per-symbol drift state (picklable). ``cooldown_s``: min event time between alerts of one key (s)."""

    def __init__(
        self,
        symbol: str,
        *,
        delta: float = 0.002,
        psi_threshold: float = 0.25,
        psi_window: int = 500,
        psi_every: int = 250,
        cooldown_s: float = 6 * 3600,
        reference: PsiReference | None = None,
    ) -> None:
        self.symbol = symbol
        self.delta = delta
        self.psi_threshold = psi_threshold
        self.psi_every = psi_every
        self.cooldown_ns = int(cooldown_s * NS)
        self.adwin: dict[str, ADWIN] = {}
        self.reference = reference
        self._rows: deque[Sequence[float] | np.ndarray] = deque(maxlen=psi_window)
        self._since_psi = 0
        self._last_alert: dict[str, int] = {}
        self.last_psi: dict[str, float] = {}
        self.detections: dict[str, int] = {}
        self.requests: list[RetrainRequest] = []

    def set_reference(self, reference: PsiReference | None) -> None:
        """New training window (after a model swap): restart the feature window."""
        self.reference = reference
        self._rows.clear()
        self._since_psi = 0

    def reset_model(self, model: str) -> None:
        """Forget a model's error history (new version under the same name)."""
        self.adwin.pop(model, None)

    def _alert(
        self, key: str, ts: int, severity: Literal["info", "warning", "critical"], message: str, labels: dict[str, str]
    ) -> Alert | None:
        last = self._last_alert.get(key)
        if last is not None and ts - last < self.cooldown_ns:
            return None
        self._last_alert[key] = ts
        return Alert(
            id=stable_id("alert", "model_drift", key, ts),
            severity=severity,
            kind="model_drift",
            message=message[:4096],
            labels={k: v[:256] for k, v in labels.items()},
            dedupe_key=key,
            ts=ts,
        )

    def update_error(self, model: str, y: float, p: float, ts: int) -> list[Alert]:
        """Fold one resolved prediction of ``model`` (label 0/1, probability, decision time ns)."""
        a = self.adwin.get(model)
        if a is None:
            a = self.adwin[model] = ADWIN(delta=self.delta)
        before = a.estimation
        a.update((p - y) ** 2)
        if not a.drift_detected:
            return []
        self.detections[model] = self.detections.get(model, 0) + 1
        worse = a.estimation > before
        key = f"model_drift:{self.symbol}:adwin:{model}"
        msg = (
            f"ADWIN: mean squared error of {model} on {self.symbol} changed from {before:.4f} to "
            f"{a.estimation:.4f} ({'worse' if worse else 'better'})"
        )
        al = self._alert(
            key,
            ts,
            "warning" if worse else "info",
            msg,
            {"symbol": self.symbol, "model": model, "source": "adwin", "direction": "worse" if worse else "better"},
        )
        if worse and al is not None:  # one request per alert window
            self.requests.append(RetrainRequest(self.symbol, ts, "model_drift", msg, model))
        return [al] if al is not None else []

    def observe_features(self, row: Sequence[float] | np.ndarray, ts: int) -> list[Alert]:
        """Add one model-feature row (ns decision time); every ``psi_every`` rows compare with the reference."""
        if self.reference is None:
            return []
        self._rows.append(row)
        self._since_psi += 1
        window = self._rows.maxlen
        assert window is not None  # built with maxlen=psi_window
        if self._since_psi < self.psi_every or len(self._rows) < window:
            return []
        self._since_psi = 0
        self.last_psi = self.reference.compute(np.asarray(self._rows))
        worst = sorted(self.last_psi.items(), key=lambda kv: -kv[1])
        if not worst or worst[0][1] <= self.psi_threshold:
            return []
        over = [f"{n}={v:.2f}" for n, v in worst if v > self.psi_threshold]
        msg = f"PSI of features on {self.symbol} vs the training window above {self.psi_threshold}: {', '.join(over)}"
        al = self._alert(
            f"model_drift:{self.symbol}:psi",
            ts,
            "warning",
            msg,
            {"symbol": self.symbol, "source": "psi", "feature": worst[0][0], "psi": f"{worst[0][1]:.4f}"},
        )
        if al is not None:  # one request per alert window
            self.requests.append(RetrainRequest(self.symbol, ts, "feature_drift", msg))
            return [al]
        return []
