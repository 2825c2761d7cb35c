"""Views of the model registry for the operator API (pure): a model's calibration curve and metrics, the drift
alerts of the alerts topic.

>>> class Iso:
...     kind = "isotonic"
...     def predict(self, p):
...         return [min(1.0, 0.1 + x) for x in p]
>>> class M:
...     calibrator = Iso()
>>> v = calibration_view("v1", {"metrics": {"cv_calibrated": {"ece": 0.01}}}, M(), points=3)
>>> v["method"], v["curve"], v["cv_calibrated"]
('isotonic', [{'raw': 0.0, 'calibrated': 0.1}, {'raw': 0.5, 'calibrated': 0.6}, {'raw': 1.0, 'calibrated': 1.0}], {'ece': 0.01})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.codec import DecodeError, decode
from schemas.events import Alert
from schemas.time import iso

__all__ = ["calibration_view", "drift_alerts", "model_row", "DRIFT_KINDS"]

#: Alert kinds the drift monitors raise (operators/models/drift.py: ADWIN on errors and feature PSI both use it).
DRIFT_KINDS = frozenset({"model_drift", "feature_drift"})


def model_row(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A registry entry for the API: JSON-safe metadata (everything but nothing large is added)."""
    return dict(meta)


def calibration_view(version: str, meta: Mapping[str, Any], model: Any, *, points: int = 21) -> dict[str, Any]:
    """The calibrator of ``model`` on ``points`` raw probabilities from 0 to 1, and the metrics the training stored
    (``cv_raw``, ``cv_calibrated`` from the model's info when the registry's metadata lacks them, ``holdout``)."""
    cal = getattr(model, "calibrator", None)
    grid = [i / (points - 1) for i in range(points)]
    if cal is None:
        method, ys = "none", grid
    else:
        method = str(getattr(cal, "kind", type(cal).__name__))
        ys = [float(y) for y in cal.predict(grid)]
    metrics = dict(meta.get("metrics") or {})
    info = getattr(model, "info", {}) or {}
    return {
        "version": version,
        "method": method,
        "curve": [{"raw": x, "calibrated": y} for x, y in zip(grid, ys, strict=True)],
        "cv_raw": dict(metrics.get("cv_raw") or info.get("cv_raw") or {}),
        "cv_calibrated": dict(metrics.get("cv_calibrated") or info.get("cv_calibrated") or {}),
        "holdout": dict(metrics.get("holdout") or {}),
    }


def drift_alerts(values: Iterable[bytes | None], *, symbol: str | None = None) -> list[dict[str, Any]]:
    """The drift alerts among raw alerts-topic values, newest first; payloads that are not alerts are skipped
    (the flow dead-letters those itself).

    >>> raw = b'{"event":"alert","id":"a1","severity":"warning","kind":"model_drift","message":"m",'
    >>> raw += b'"dedupe_key":"model_drift:BTC-USD:psi","ts":1800000000000000000}'
    >>> [a["id"] for a in drift_alerts([raw, b"junk"])], drift_alerts([raw], symbol="ETH-USD")
    (['a1'], [])
    """
    out: list[dict[str, Any]] = []
    for v in values:
        if v is None:
            continue
        try:
            a = decode(v, Alert)
        except DecodeError:
            continue
        if a.kind not in DRIFT_KINDS:
            continue
        if symbol is not None and a.labels.get("symbol") != symbol and f":{symbol}:" not in a.dedupe_key:
            continue
        out.append(
            {
                "id": a.id,
                "severity": a.severity,
                "kind": a.kind,
                "message": a.message,
                "labels": dict(a.labels),
                "dedupe_key": a.dedupe_key,
                "ts_ns": a.ts,
                "time": iso(a.ts),
            }
        )
    out.sort(key=lambda a: (a["ts_ns"], a["id"]), reverse=True)
    return out
