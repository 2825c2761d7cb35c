"""What a live run's tear sheet needs, collected in this process while the flow runs (``flows/live.py``).

:class:`LiveRunCollector` hands out in-memory sinks for the flow's outputs: orders, fills, risk decisions,
equity marks, the accounts' closing figures, model scores, alerts, dead letters, the parsed signals read from
``signals`` and the decision bars (only the decision resolution is kept, the base bars are dropped at once). At
the end of the run ``flows.reporting.live_inputs`` turns them into the report's inputs. Memory grows with the run
(every order, fill and decision is kept, as in an embedded run); one process of a cluster sees its own share.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.batching import flatten

__all__ = ["LiveRunCollector"]


class _Part(StatelessSinkPartition[Any]):
    def __init__(self, write: Callable[[list], None]) -> None:
        self._write = write

    def write_batch(self, items: list[Any]) -> None:
        self._write(flatten(items))


class _Sink(DynamicSink[Any]):
    def __init__(self, write: Callable[[list], None]) -> None:
        self._write = write

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
        return _Part(self._write)


class LiveRunCollector:
    """The outputs of one live process, for its tear sheet. ``decision_resolution_s``: the bars kept;
    ``signals_topic``: the topic whose dead letters are the rejected signals."""

    KINDS = ("orders", "fills", "decisions", "marks", "accounts", "scores", "alerts", "dead", "signals", "bars")

    def __init__(self, decision_resolution_s: int, signals_topic: str) -> None:
        self.resolution_s = int(decision_resolution_s)
        self.signals_topic = signals_topic
        self._lock = threading.Lock()
        self.events: dict[str, list] = {k: [] for k in self.KINDS}
        self.dead_counts: Counter = Counter()  # (stage, error) -> n, every dead letter
        self.signal_rejections: Counter = Counter()  # reason -> n, dead letters of the signals topic

    def sink(self, kind: str) -> DynamicSink:
        """The sink that collects ``kind`` (one of :attr:`KINDS`)."""
        if kind not in self.KINDS:
            raise ValueError(f"unknown output {kind!r}")
        into = self.events[kind]
        if kind == "bars":
            res = self.resolution_s

            def write(items: list) -> None:  # (bar rows: revisions of a bar after a late tick are dropped)
                keep = [b for b in items if b.resolution_s == res and not getattr(b, "revision", 0)]
                if keep:
                    with self._lock:
                        into.extend(keep)
        elif kind == "dead":

            def write(items: list) -> None:
                with self._lock:
                    for d in items:
                        self.dead_counts[(str(d.stage), str(d.error))] += 1
                        if d.source_topic == self.signals_topic:
                            self.signal_rejections[str(d.error)] += 1
                    into.extend(items)
        else:

            def write(items: list) -> None:
                with self._lock:
                    into.extend(items)

        return _Sink(write)

    def attach(self, outputs: Any) -> None:
        """Add a collecting sink to every output of ``outputs`` (a ``flows.trading.Outputs``) it keeps (the bars
        from ``bar_rows``: rows, no validated events)."""
        for kind in self.KINDS:
            getattr(outputs, "bar_rows" if kind == "bars" else kind).append(self.sink(kind))
