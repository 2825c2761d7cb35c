"""In-process sink: collects what a flow emits into a Python list (embedded runs, reports, tests)."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.batching import flatten


class _Part(StatelessSinkPartition[Any]):
    def __init__(self, into: list) -> None:
        self._into = into

    def write_batch(self, items: list[Any]) -> None:
        self._into.extend(flatten(items))


class CollectSink(DynamicSink[Any]):
    """Append every event (lists are flattened) to ``into``; single-process runs only."""

    def __init__(self, into: list) -> None:
        self.into = into

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
        return _Part(self.into)
