"""Accuracy of the parser on a labelled set: the share of messages whose parse equals the expectation exactly.

An expectation is the :func:`operators.signals.results.summarize` dict of the right answer (for a rejection only
``{"type": "rejection", "reason": ...}``); equality is exact (every field, floats compared with ``==``).

>>> accuracy([{"type": "rejection", "reason": "no_stop"}], [{"type": "rejection", "reason": "no_stop"}])
1.0
>>> r = evaluate([("hello", {"type": "rejection", "reason": "no_signal"}), ("hi", {"type": "signal"})])
>>> (r.total, r.correct, r.accuracy, r.failures[0][0])
(2, 1, 0.5, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .parser import parse_message
from .results import ParseResult, summarize

__all__ = ["accuracy", "evaluate", "AccuracyReport"]


def accuracy(actual: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]) -> float:
    """Fraction in [0, 1] of positions where ``actual[i] == expected[i]``; 1.0 for two empty sequences."""
    if len(actual) != len(expected):
        raise ValueError(f"{len(actual)} results for {len(expected)} expectations")
    if not expected:
        return 1.0
    return sum(1 for a, e in zip(actual, expected, strict=True) if dict(a) == dict(e)) / len(expected)


@dataclass(frozen=True)
class AccuracyReport:
    """``total`` messages, ``correct`` ones, ``accuracy`` = correct / total (fraction), ``failures`` as
    ``(index, actual summary, expected)``."""

    total: int
    correct: int
    accuracy: float
    failures: list[tuple[int, dict[str, Any], Mapping[str, Any]]] = field(default_factory=list)


def evaluate(
    cases: Iterable[tuple[str, Mapping[str, Any]]], parse: Callable[[str], ParseResult] = parse_message
) -> AccuracyReport:
    """Parse every ``(text, expected)`` case and compare :func:`summarize` of the result with ``expected``."""
    actual: list[dict[str, Any]] = []
    expected: list[Mapping[str, Any]] = []
    for text, exp in cases:
        actual.append(summarize(parse(text)))
        expected.append(exp)
    failures = [(i, a, e) for i, (a, e) in enumerate(zip(actual, expected, strict=True)) if a != dict(e)]
    total = len(expected)
    return AccuracyReport(total, total - len(failures), accuracy(actual, expected), failures)
