"""Versioned, incremental per-symbol features from bars; the batch path runs the same code (see docs/features.md)."""

from .core import CORE_V1, INPUT_COLUMNS, CoreFeatures, compute_features, compute_features_array
from .spec import PINNED_DEFINITIONS, FeatureSet

__all__ = [
    "CORE_V1",
    "INPUT_COLUMNS",
    "CoreFeatures",
    "FeatureSet",
    "PINNED_DEFINITIONS",
    "compute_features",
    "compute_features_array",
]
