"""Inputs a flow test builds by hand."""

from __future__ import annotations

from connectors.history_source import HistorySource
from connectors.kafka.source import EventBatch


class ListSource(HistorySource):
    """Hand-made EventBatches (one partition) for routing tests."""

    def __init__(self, batches: list[EventBatch]) -> None:
        self.batches = batches

    def list_parts(self):
        return ["0"]

    def build_part(self, step_id, for_part, resume_state):
        from bytewax.inputs import StatefulSourcePartition

        batches = self.batches

        class P(StatefulSourcePartition):
            i = 0

            def next_batch(self):
                if self.i >= len(batches):
                    raise StopIteration()
                self.i += 1
                return [batches[self.i - 1]]

            def snapshot(self):
                return self.i

        return P()
