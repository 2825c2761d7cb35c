"""Background pollers of a process's metrics, each a daemon thread that polls every few seconds and never
raises: :class:`KafkaLagPoller` (consumer lag of the partitions the process reads) and :class:`RecoveryWatcher`
(Bytewax recovery snapshots and resumes)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from connectors.metrics.flow import FlowMetrics

log = logging.getLogger("connectors.metrics")  # one logger for the whole package, as before the split

__all__ = ["KafkaLagPoller", "RecoveryWatcher"]


# -- background pollers -------------------------------------------------------------------------------------------
class _Poller:
    def __init__(self, interval_s: float, name: str) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> _Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # a broken poll must not kill the process
                log.warning("metrics poller %s failed", self._thread.name, exc_info=True)
            self._stop.wait(self.interval_s)

    def poll_once(self) -> object:  # pragma: no cover - overridden
        raise NotImplementedError


class KafkaLagPoller(_Poller):
    """Sets ``levibot_kafka_consumer_lag_messages`` every ``interval_s`` s for the partitions this process reads.

    Bytewax keeps offsets in its recovery store, not in a consumer group, so the lag is the partition's high
    watermark minus the last ``next_offset`` that :meth:`FlowMetrics.observe_batch` saw.
    """

    def __init__(self, bootstrap: str, metrics: FlowMetrics, interval_s: float = 10.0) -> None:
        super().__init__(interval_s, "levibot-lag")
        self.bootstrap = bootstrap
        self.metrics = metrics
        self._consumer: Any = None

    def poll_once(self) -> dict[tuple[str, int], int]:
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": "levibot-lag-probe", "enable.auto.commit": False}
            )
        out: dict[tuple[str, int], int] = {}
        for topic, partition in self.metrics.read_positions():
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5.0)
            lag = self.metrics.set_consumer_lag(topic, partition, high)
            if lag is not None:
                out[(topic, partition)] = lag
        return out

    def stop(self) -> None:
        super().stop()
        if self._consumer is not None:
            self._consumer.close()


_READ_RECOVERY = """
import json, sqlite3, sys

out = {}
for part in sys.argv[1:]:
    con = sqlite3.connect(f"file:{part}?mode=ro", uri=True, timeout=5.0)
    try:
        epoch = con.execute("SELECT MAX(commit_epoch) FROM commits").fetchone()[0]
        exs = con.execute("SELECT COUNT(*) FROM exs").fetchone()[0]
    finally:
        con.close()
    out[part] = [epoch, exs]
print(json.dumps(out))
"""


class RecoveryWatcher(_Poller):
    """Follows Bytewax's recovery partitions (SQLite, read-only) and exports snapshot and resume counts.

    ``commits.commit_epoch`` is the latest committed snapshot epoch of a partition; ``exs`` holds one row per
    execution of the dataflow (a resume after a crash adds one).
    """

    def __init__(self, directory: Path, metrics: FlowMetrics, interval_s: float = 5.0) -> None:
        super().__init__(interval_s, "levibot-recovery")
        self.directory = Path(directory)
        self.metrics = metrics
        self._epochs: dict[str, int] = {}
        self._executions: int | None = None

    def _read(self) -> dict[str, tuple[int | None, int]]:
        """``{partition file: (latest commit epoch, executions)}``, read in a **separate process**: Bytewax writes
        these files with its own bundled SQLite, and a second SQLite library in the same process releases the
        writer's POSIX locks when it closes the file, which can corrupt the database (sqlite.org/howtocorrupt.html,
        "multiple copies of SQLite linked into the same application")."""
        parts = [str(p) for p in sorted(self.directory.glob("part-*.sqlite3"))]
        if not parts:
            return {}
        res = subprocess.run(
            [sys.executable, "-c", _READ_RECOVERY, *parts], capture_output=True, text=True, timeout=30, check=False
        )
        if res.returncode != 0:
            raise RuntimeError(f"reading the recovery partitions failed: {res.stderr.strip()[-500:]}")
        return {Path(k).name: (v[0], v[1]) for k, v in json.loads(res.stdout).items()}

    def poll_once(self) -> None:
        m = self.metrics.m
        executions = 0
        for part, (epoch, exs) in sorted(self._read().items()):
            executions = max(executions, exs)
            if epoch is None:
                continue
            prev = self._epochs.get(part)
            if prev is not None and epoch > prev:
                m.recovery_snapshots_total.inc(epoch - prev)
            self._epochs[part] = epoch
            m.recovery_committed_epoch.set(max(self._epochs.values()))
        if self._executions is None:
            self._executions = executions
            if executions > 1:
                m.recovery_resumes_total.inc(executions - 1)
        elif executions > self._executions:
            m.recovery_resumes_total.inc(executions - self._executions)
            self._executions = executions
