"""Models of the scoring stage (pure, no I/O): labels and point-in-time training sets, walk-forward LightGBM with
calibration, River online learning, a log-loss-weighted ensemble, drift detection and the per-symbol
:class:`Scorer` the pipeline calls. See docs/models.md."""

from .calibration import IsotonicCalibrator, PlattCalibrator, fit_calibrator
from .dataset import (
    DEFAULT_EXCLUDED,
    LookAheadError,
    TrainingSet,
    audit_point_in_time,
    build_training_set,
    features_frame,
    forward_labels,
    label_of,
    replay_bars,
)
from .drift import DriftMonitor, RetrainRequest
from .ensemble import LogLossWeights
from .forest import FlatForest
from .lgbm import BatchModel, LgbmParams, TrainConfig, cross_validate, train_lightgbm
from .lifecycle import PromotionRule, promotion_decision, retrain_due
from .metrics import RollingMetrics, auc, brier, ece, log_loss, summarize
from .online import OnlineModel
from .psi import PsiReference, psi
from .scorer import ModelSource, Scorer, ScorerConfig
from .splits import walk_forward_splits

__all__ = [
    "BatchModel",
    "DEFAULT_EXCLUDED",
    "DriftMonitor",
    "FlatForest",
    "IsotonicCalibrator",
    "LgbmParams",
    "LogLossWeights",
    "LookAheadError",
    "ModelSource",
    "OnlineModel",
    "PlattCalibrator",
    "PromotionRule",
    "PsiReference",
    "RetrainRequest",
    "RollingMetrics",
    "Scorer",
    "ScorerConfig",
    "TrainConfig",
    "TrainingSet",
    "audit_point_in_time",
    "auc",
    "brier",
    "build_training_set",
    "cross_validate",
    "ece",
    "features_frame",
    "fit_calibrator",
    "forward_labels",
    "label_of",
    "log_loss",
    "promotion_decision",
    "psi",
    "replay_bars",
    "retrain_due",
    "summarize",
    "train_lightgbm",
    "walk_forward_splits",
]
