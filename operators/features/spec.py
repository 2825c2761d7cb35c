"""Feature-set specification: name, version, ordered features, bar resolution, parameters, stable hashes.

``definition_hash`` covers everything that defines the numbers except the bar resolution (name, version,
feature names, parameters); ``hash`` adds the resolution and identifies the produced data set. Published
(name, version) pairs are pinned in :data:`PINNED_DEFINITIONS`; :meth:`FeatureSet.verify` fails when a
definition changed without a version bump (tests call it). Changing a formula in code also requires a version
bump; the golden-value test in ``tests/unit/operators/test_operators_features.py`` catches that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeatureSet", "PINNED_DEFINITIONS"]


@dataclass(frozen=True)
class FeatureSet:
    """Versioned spec. ``resolution_s``: bar length (s) the features are computed on; ``params``: JSON-able."""

    name: str
    version: int
    features: tuple[str, ...]
    resolution_s: int
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def _canonical(self, with_resolution: bool) -> str:
        d: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "features": list(self.features),
            "params": self.params,
        }
        if with_resolution:
            d["resolution_s"] = self.resolution_s
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def definition_hash(self) -> str:
        """16 hex chars of SHA-256 over name, version, features and params (not the resolution)."""
        return hashlib.sha256(self._canonical(False).encode()).hexdigest()[:16]

    @property
    def hash(self) -> str:
        """16 hex chars of SHA-256 over the definition and the bar resolution."""
        return hashlib.sha256(self._canonical(True).encode()).hexdigest()[:16]

    @property
    def id(self) -> str:
        """Readable identity, e.g. ``core@1/1800s#<hash>``."""
        return f"{self.name}@{self.version}/{self.resolution_s}s#{self.hash}"

    def verify(self) -> None:
        """Raise ``ValueError`` if (name, version) is pinned with another definition hash."""
        pinned = PINNED_DEFINITIONS.get((self.name, self.version))
        if pinned is not None and pinned != self.definition_hash:
            raise ValueError(
                f"feature set {self.name}@{self.version} changed (hash {self.definition_hash}, "
                f"pinned {pinned}): bump the version"
            )

    def with_resolution(self, resolution_s: int) -> FeatureSet:
        """Same definition on bars of another resolution (s)."""
        return FeatureSet(self.name, self.version, self.features, int(resolution_s), dict(self.params))


#: (name, version) -> definition_hash of every published feature set; never edit an entry, add a new version
PINNED_DEFINITIONS: dict[tuple[str, int], str] = {}
