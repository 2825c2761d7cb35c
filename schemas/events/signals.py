"""Trading signals from Telegram, feature vectors and model scores."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .base import (
    _INF,
    Event,
    Id,
    Name,
    Price,
    Probability,
    SchemaVersion1,
    Symbol,
    Text,
    Timestamp,
    _finite,
    _pos,
    _symbol,
    _ts,
    _unit,
    _version,
)


class Signal(Event, tag="signal", frozen=True, kw_only=True):
    """A trading signal parsed from a Telegram message.

    ``id`` is deterministic from the source (chat, message); an *edit* of the message keeps ``id`` and bumps
    ``version`` (>= 1). ``kind``: ``open`` (a new idea; needs >= 1 entry), ``update`` (new stop/targets/entries),
    ``cancel`` (withdraw an unfilled idea), ``close`` (exit, ``close_fraction`` of the position, None = all).
    Follow-up messages carry their own ``id`` and point at the original with ``ref_id`` (None when the ingest could
    not resolve it; consumers then match by source chat and symbol). Prices in quote/base, finite > 0;
    ``leverage`` a multiple (0, 1000]; ``trust`` a fraction in [0, 1] (source reliability); ``ts`` ns UTC of the
    message (or of the edit); ``raw_text`` the message text (max 4096 chars).
    """

    id: Id
    source_chat: Annotated[str, Meta(min_length=1, max_length=128, description="Telegram chat id or @username.")]
    source_message_id: Annotated[int, Meta(ge=0)]
    version: Annotated[int, Meta(ge=1, description="Message revision; edits bump it.")] = 1
    symbol: Symbol
    side: Literal["long", "short"]
    kind: Literal["open", "update", "cancel", "close"] = "open"
    entries: Annotated[list[Price], Meta(max_length=10, description="Entry prices (1..10 for kind=open).")] = []
    targets: Annotated[list[Price], Meta(max_length=20, description="Take-profit prices (0..20).")] = []
    stop: Price | None = None
    leverage: Annotated[float, Meta(gt=0, le=1000, description="Leverage multiple.")] | None = None
    ref_id: Id | None = None
    close_fraction: Annotated[float, Meta(gt=0, le=1, description="Fraction of position to close.")] | None = None
    trust: Probability = 0.5
    ts: Timestamp
    raw_text: Text = ""
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if self.version < 1:
            raise ValueError(f"version must be >= 1, got {self.version!r}")
        if self.kind == "open" and not self.entries:
            raise ValueError("a signal of kind 'open' needs at least one entry price")
        if len(self.entries) > 10 or len(self.targets) > 20:
            raise ValueError("at most 10 entries and 20 targets")
        for p in self.entries:
            _pos("entries[]", p)
        for p in self.targets:
            _pos("targets[]", p)
        if self.stop is not None:
            _pos("stop", self.stop)
        if self.leverage is not None and not 0.0 < self.leverage <= 1000.0:
            raise ValueError(f"leverage must be in (0, 1000], got {self.leverage!r}")
        if self.close_fraction is not None and not 0.0 < self.close_fraction <= 1.0:
            raise ValueError(f"close_fraction must be in (0, 1], got {self.close_fraction!r}")
        _unit("trust", self.trust)


FEATURES_MAX = 512


class FeatureVector(Event, tag="feature_vector", frozen=True, kw_only=True):
    """Features of one symbol at the end of a window. ``ts`` is the window *end* (ns UTC).

    ``names[i]`` labels ``values[i]`` (same length, 1..512, unique names); values are finite — a feature that
    cannot be computed yet (warm-up) means no vector is emitted. ``feature_set_version`` bumps whenever the
    feature code changes meaning. Units are per feature (documented in the feature set).
    """

    symbol: Symbol
    ts: Timestamp
    feature_set: Name
    feature_set_version: Annotated[int, Meta(ge=1)]
    names: Annotated[list[Name], Meta(min_length=1, max_length=FEATURES_MAX)]
    values: Annotated[list[float], Meta(min_length=1, max_length=FEATURES_MAX)]
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if self.feature_set_version < 1:
            raise ValueError(f"feature_set_version must be >= 1, got {self.feature_set_version!r}")
        n = len(self.names)
        if n != len(self.values):
            raise ValueError(f"names ({n}) and values ({len(self.values)}) differ in length")
        if not 1 <= n <= FEATURES_MAX:
            raise ValueError(f"a feature vector holds 1..{FEATURES_MAX} features, got {n}")
        if len(set(self.names)) != n:
            raise ValueError("feature names must be unique")
        if not -_INF < sum(self.values) < _INF:  # fast path; a finite sum can still overflow, so then check each
            for name, v in zip(self.names, self.values, strict=True):
                _finite(f"values[{name}]", v)

    def as_dict(self) -> dict[str, float]:
        """``{name: value}``."""
        return dict(zip(self.names, self.values, strict=True))


class Score(Event, tag="score", frozen=True, kw_only=True):
    """Model output for one symbol at ``ts`` (ns UTC, the window end of the features scored).

    All probabilities are P(up-move over the model's label horizon), fractions in [0, 1]: ``raw`` per model,
    ``calibrated`` after calibration, ``ensemble`` the blend. ``uncertainty`` in [0, 1] (spread of the members'
    probabilities). ``model_versions`` maps model name to version string (max 32 models).
    """

    symbol: Symbol
    ts: Timestamp
    model_versions: Annotated[dict[Name, Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=32)]
    raw: Annotated[dict[Name, Probability], Meta(max_length=32)]
    calibrated: Probability
    ensemble: Probability
    uncertainty: Probability = 0.0
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        for name, p in self.raw.items():
            _unit(f"raw[{name}]", p)
        _unit("calibrated", self.calibrated)
        _unit("ensemble", self.ensemble)
        _unit("uncertainty", self.uncertainty)
