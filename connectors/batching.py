"""Helpers shared by the Bytewax sinks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def flatten(items: Iterable[Any]) -> list[Any]:
    """Dataflow items are single events or lists of events (a batch); return one flat list."""
    out: list[Any] = []
    for it in items:
        if isinstance(it, list):
            out.extend(it)
        else:
            out.append(it)
    return out
