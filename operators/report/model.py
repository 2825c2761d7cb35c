"""The report model: what a tear sheet holds, independent of how it is drawn.

A :class:`Report` is a title, a headline of :class:`Metric` s and a list of :class:`Section` s; a section holds
metrics, :class:`Table` s, :class:`Chart` s and notes (plain sentences). Every number carries a human label and a
:data:`UNITS` unit, so renderers format it without guessing from a key; keys are stable snake_case machine names
(documented in ``docs/reports.md``) that carry no unit suffix.

Chart data are plain lists: x values are ns timestamps (UTC) when ``x_kind == "time"``, numbers or category
labels otherwise. Long series are thinned with :func:`downsample_minmax` by the builder, so a renderer never
receives more than a few thousand points per series.

>>> m = Metric("total_return", "Total return", 0.125, "fraction")
>>> m.as_dict()
{'key': 'total_return', 'label': 'Total return', 'value': 0.125, 'unit': 'fraction', 'note': ''}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["UNITS", "Metric", "Column", "Table", "Series", "Chart", "Section", "Report", "downsample_minmax"]

#: units a value can carry: ``fraction`` (0.05 = 5 %), ``quote`` (quote currency, e.g. USD), ``count``,
#: ``ratio`` (a plain number such as Sharpe), ``seconds`` (a duration), ``per_year`` (a rate per year),
#: ``timestamp`` (ns since the epoch, UTC), ``probability`` (in [0, 1]), ``nats`` (log-loss), ``bps``, ``text``
UNITS = (
    "fraction",
    "quote",
    "count",
    "ratio",
    "seconds",
    "per_year",
    "timestamp",
    "probability",
    "nats",
    "bps",
    "text",
)


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; one of {UNITS}")


@dataclass(frozen=True)
class Metric:
    """One number: stable ``key``, human ``label``, ``value`` (None or NaN = not available), ``unit`` from
    :data:`UNITS`, an optional one-line ``note`` (how it is defined or why it is missing)."""

    key: str
    label: str
    value: Any
    unit: str = "ratio"
    note: str = ""

    def __post_init__(self) -> None:
        _check_unit(self.unit)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` into the rows, ``label`` shown, ``unit`` for its cells."""

    key: str
    label: str
    unit: str = "text"

    def __post_init__(self) -> None:
        _check_unit(self.unit)


@dataclass(frozen=True)
class Table:
    """``rows``: dicts keyed by the columns' keys (a missing key is an empty cell)."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "note": self.note,
            "columns": [asdict(c) for c in self.columns],
            "rows": self.rows,
        }


@dataclass(frozen=True)
class Series:
    """One trace. ``kind``: ``line``, ``area`` (filled to zero), ``bar``, ``markers``; ``z`` only for heatmaps
    (rows of values, ``y`` the row labels); ``color`` an optional CSS colour."""

    name: str
    x: list[Any]
    y: list[Any]
    kind: str = "line"
    color: str = ""
    z: list[list[Any]] | None = None


@dataclass(frozen=True)
class Chart:
    """A chart: ``title``; axis titles with their units (``x_title``, ``y_title``); ``y_unit`` from :data:`UNITS`
    (``fraction`` axes are shown in %); ``x_kind`` ``time`` / ``number`` / ``category``; ``kind`` ``xy`` or
    ``heatmap``; ``reading``: one sentence on how to read it."""

    key: str
    title: str
    x_title: str
    y_title: str
    series: list[Series]
    reading: str
    y_unit: str = "ratio"
    x_kind: str = "time"
    kind: str = "xy"

    def points(self) -> int:
        """Data points over all series (heatmap cells count once each)."""
        return sum(sum(len(r) for r in s.z) if s.z is not None else len(s.y) for s in self.series)


@dataclass
class Section:
    """``key`` (stable, e.g. ``drawdown``), ``title``, ``reading`` (what the section tells a trader), its
    metrics, tables, charts and notes (sentences such as "No Telegram signals in this run")."""

    key: str
    title: str
    reading: str = ""
    metrics: list[Metric] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """A whole tear sheet. ``kind``: ``run``, ``backtest``, ``sweep``, ``walkforward``; ``period``: first and
    last mark (ns) or None; ``headline``: the metrics shown first (and compared by ``levibot report compare``);
    ``info``: label -> text about the run (data, settings) shown under the title."""

    title: str
    kind: str
    period: tuple[int, int] | None
    headline: list[Metric]
    sections: list[Section]
    subtitle: str = ""
    info: dict[str, str] = field(default_factory=dict)

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def metrics(self) -> dict[str, Metric]:
        """Every metric by key: the headline's, then each section's (``section.key`` prefixed when a section's key
        repeats a headline key)."""
        out = {m.key: m for m in self.headline}
        for s in self.sections:
            for m in s.metrics:
                out.setdefault(m.key, m)
        return out


def downsample_minmax(x: Any, y: Any, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of ``(x, y)`` in their original order: the first and last points plus, for
    each of ``(max_points - 2) // 2`` equal index buckets, the points holding the bucket's min and max of ``y``
    (NaN ignored), so spikes survive. Series no longer than ``max_points`` are returned unchanged.

    >>> xs, ys = downsample_minmax(np.arange(10), np.array([0., 5, 1, 1, 9, 2, 1, -3, 1, 0]), max_points=6)
    >>> xs.tolist(), ys.tolist()
    ([0, 4, 5, 7, 9], [0.0, 9.0, 2.0, -3.0, 0.0])
    """
    xa = np.asarray(x)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or ya.ndim != 1:
        raise ValueError(f"x {xa.shape} and y {ya.shape} must be 1-d of the same length")
    if max_points < 4:
        raise ValueError(f"max_points must be >= 4, got {max_points}")
    n = ya.size
    if n <= max_points:
        return xa, ya
    nb = (max_points - 2) // 2
    k = -(-n // nb)
    idx = np.minimum(np.arange(nb * k), n - 1).reshape(nb, k)
    vals = ya[idx]
    lo = np.where(np.isnan(vals), np.inf, vals).argmin(axis=1)
    hi = np.where(np.isnan(vals), -np.inf, vals).argmax(axis=1)
    starts = np.arange(nb) * k
    keep = np.unique(np.concatenate(([0, n - 1], np.minimum(starts + lo, n - 1), np.minimum(starts + hi, n - 1))))
    return xa[keep], ya[keep]
