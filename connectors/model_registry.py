"""File-based model registry under ``<var>/models``: versions, metadata, champion/challenger status, hot reload.

Layout::

    <root>/
      registry.json          index: every version's metadata (atomic rewrite under a lock)
      CHAMPION               the champion's version string, one line (atomic replace): the cheap hot-reload check
      .lock                  fcntl lock serialising writers
      <version>/model.pkl    the pickled operators.models.BatchModel
      <version>/meta.json    its metadata (same as in the index)

Metadata per version: ``version, feature_set`` (id with hash), ``feature_set_version, names, horizon_ns,
train_start_ns, train_end_ns, metrics`` (cv / holdout), ``content_hash`` (SHA-256 of model.pkl, verified on
load), ``created_at`` (ISO-8601 UTC), ``status`` (``challenger`` | ``champion`` | ``retired``), ``promotion``.

Every write goes to a temporary file in the same directory, is fsync'ed and renamed over the target
(``os.replace``), so a reader sees the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import pickle
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operators.models import BatchModel
from operators.models.sequence import SequenceModel
from operators.models.xgb import XgbModel

#: what a registry version holds: a LightGBM, XGBoost or GRU model (the same batch-model interface)
TrainedModel = BatchModel | XgbModel | SequenceModel

__all__ = ["ModelRegistry", "ChampionWatcher", "atomic_write_bytes"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class ModelRegistry:
    """Registry rooted at ``root`` (e.g. ``Settings.var_dir / "models"``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # -- low level ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _index(self) -> dict[str, Any]:
        p = self.root / "registry.json"
        return json.loads(p.read_text()) if p.exists() else {"versions": {}}

    def _save_index(self, idx: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / "registry.json", json.dumps(idx, indent=1, sort_keys=True).encode())
        for v, meta in idx["versions"].items():
            atomic_write_bytes(self.root / v / "meta.json", json.dumps(meta, indent=1, sort_keys=True).encode())

    # -- queries --------------------------------------------------------------------------------------------------
    def versions(self) -> list[dict[str, Any]]:
        """Metadata of every version, oldest first."""
        return sorted(self._index()["versions"].values(), key=lambda m: (m["created_at"], m["version"]))

    def get(self, version: str) -> dict[str, Any]:
        """Metadata of one version (KeyError if unknown)."""
        return self._index()["versions"][version]

    def latest_champion_version(self) -> str | None:
        """The champion's version from the one-line ``CHAMPION`` file (one small read; None if none)."""
        try:
            return (self.root / "CHAMPION").read_text().strip() or None
        except FileNotFoundError:
            return None

    def champion(self) -> dict[str, Any] | None:
        """The champion's metadata, or None."""
        v = self.latest_champion_version()
        return self.get(v) if v else None

    def load(self, version: str) -> TrainedModel:
        """Load a version's model, verifying its content hash."""
        data = (self.root / version / "model.pkl").read_bytes()
        want = self.get(version)["content_hash"]
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise RuntimeError(f"model {version}: content hash {got[:12]} != registered {want[:12]} (corrupt file?)")
        obj = pickle.loads(data)  # our own artefact, integrity-checked above
        if not isinstance(obj, (BatchModel, XgbModel, SequenceModel)):
            raise TypeError(f"model {version} is a {type(obj).__name__}, not a BatchModel, XgbModel or SequenceModel")
        return obj

    # -- changes --------------------------------------------------------------------------------------------------
    def register(
        self,
        model: TrainedModel,
        *,
        feature_set: str,
        feature_set_version: int,
        horizon_ns: int,
        metrics: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Store a new model as ``challenger``; returns its version (``<UTC stamp>-<hash8>``)."""
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        h = hashlib.sha256(data).hexdigest()
        now = dt.datetime.now(dt.UTC)
        version = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{h[:8]}"
        meta = {
            "version": version,
            "feature_set": feature_set,
            "feature_set_version": int(feature_set_version),
            "names": list(model.names),
            "horizon_ns": int(horizon_ns),
            "train_start_ns": int(model.info.get("train_start_ns", 0)),
            "train_end_ns": int(model.info.get("train_end_ns", 0)),
            "metrics": metrics,
            "content_hash": h,
            "created_at": now.isoformat(),
            "status": "challenger",
            "promotion": None,
            **(extra or {}),
        }
        with self._locked():
            atomic_write_bytes(self.root / version / "model.pkl", data)
            idx = self._index()
            idx["versions"][version] = meta
            self._save_index(idx)
        return version

    def set_status(self, version: str, status: str, note: str | None = None) -> None:
        """Mark a version ``challenger`` or ``retired`` (use :meth:`promote` for ``champion``)."""
        if status not in ("challenger", "retired"):
            raise ValueError("status must be challenger or retired; use promote()")
        with self._locked():
            idx = self._index()
            idx["versions"][version]["status"] = status
            if note:
                idx["versions"][version]["promotion"] = note
            if status == "retired" and self.latest_champion_version() == version:
                (self.root / "CHAMPION").unlink(missing_ok=True)
            self._save_index(idx)

    def promote(self, version: str, reason: str) -> str | None:
        """Make ``version`` the champion (the previous one is retired); returns the previous champion."""
        with self._locked():
            idx = self._index()
            if version not in idx["versions"]:
                raise KeyError(version)
            prev = self.latest_champion_version()
            if prev and prev in idx["versions"] and prev != version:
                idx["versions"][prev]["status"] = "retired"
            idx["versions"][version]["status"] = "champion"
            idx["versions"][version]["promotion"] = reason
            idx["versions"][version]["promoted_at"] = dt.datetime.now(dt.UTC).isoformat()
            self._save_index(idx)
            atomic_write_bytes(self.root / "CHAMPION", (version + "\n").encode())
        return prev


@dataclass
class _Loaded:
    version: str
    model: TrainedModel


class ChampionWatcher:
    """A :class:`operators.models.ModelSource` over a registry: the pipeline calls ``scorer.maybe_swap(watcher)``.

    ``version`` re-reads the ``CHAMPION`` file at most every ``poll_s`` seconds (monotonic clock), so checking it on
    every decision is cheap; ``model`` loads (once per version, shared by every symbol of the process) and binds
    the model to ``feature_names`` (the stream's feature tuple order).
    """

    def __init__(
        self, registry: ModelRegistry | str | Path, poll_s: float = 5.0, feature_set: str | None = None
    ) -> None:
        self.registry = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
        self.poll_s = poll_s
        # only champions trained on this feature set (``FeatureSet.id``: name, version, resolution hash) are used
        self.feature_set = feature_set
        self._checked = -1e18
        self._version: str | None = None
        self._loaded: _Loaded | None = None

    @property
    def version(self) -> str | None:
        now = time.monotonic()
        if now - self._checked >= self.poll_s:
            self._checked = now
            v = self.registry.latest_champion_version()
            if (
                v is not None
                and self.feature_set is not None
                and self.registry.get(v).get("feature_set") != self.feature_set
            ):
                v = None  # a champion for other bars: never apply it to these features
            self._version = v
        return self._version

    @property
    def model(self) -> TrainedModel | None:
        v = self._version if self._version is not None else self.version
        if v is None:
            return None
        if self._loaded is None or self._loaded.version != v:
            self._loaded = _Loaded(v, self.registry.load(v))
        return self._loaded.model

    def usable(self, version: str) -> bool:
        """True when ``version`` is registered and was trained on this watcher's feature set (what a pin may
        name)."""
        try:
            meta = self.registry.get(version)
        except KeyError:
            return False
        return self.feature_set is None or meta.get("feature_set") == self.feature_set

    def model_at(self, version: str) -> TrainedModel | None:
        """The model of a pinned ``version`` (loaded once, like the champion's); None when it is not
        :meth:`usable` here."""
        if not self.usable(version):
            return None
        if self._loaded is None or self._loaded.version != version:
            self._loaded = _Loaded(version, self.registry.load(version))
        return self._loaded.model

    def __getstate__(self) -> dict[str, Any]:  # travels with flow config: no cached model
        return {"registry": self.registry, "poll_s": self.poll_s, "feature_set": self.feature_set}

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__init__(d["registry"], d["poll_s"], d.get("feature_set"))  # type: ignore[misc]
