"""`levibot replay`: history (files or ClickHouse) into a Kafka topic at a chosen speed.

Ticks go out in event-time order (so per-key order holds on every partition), keyed by symbol,
stamped with the produce time as the Kafka timestamp (the event time is in the payload: topics
retain by Kafka time, so history stamped with its own time would be deleted at once). Rows that
could not be read become dead letters on ``dlq`` with their reason. Replaying the same input twice produces the same trade ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from tqdm import tqdm

from connectors.history import History, iter_tick_events
from connectors.kafka.sink import EventProducer
from schemas.events import DeadLetter, Tick
from schemas.time import TS_MIN_NS


@dataclass
class ReplayResult:
    """Counts of one replay: ticks produced, dead letters produced, per-symbol ticks, wall seconds."""

    produced: int = 0
    dead_letters: int = 0
    per_symbol: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Produced messages per wall second."""
        return self.produced / self.seconds if self.seconds > 0 else float("inf")


def rejects_to_dead_letters(history: History) -> list[DeadLetter]:
    """Dead letters for input rows rejected while reading files.

    ``source_topic`` is the pseudo-topic ``replay.files``; ``offset`` is the file row and the detail
    names the file. File rows carry no event time, so ``ts`` is the schema's minimum time.
    """
    out = []
    for src, row, reason in zip(
        history.rejects["source"], history.rejects["row"], history.rejects["reason"], strict=True
    ):
        raw = msgspec.json.encode({"source": src, "row": int(row)})
        out.append(
            DeadLetter(
                source_topic="replay.files",
                partition=-1,
                offset=int(row),
                key=None,
                error="validation",
                detail=f"{src}: row {int(row)}: {reason}",
                raw=raw,
                raw_size=len(raw),
                ts=TS_MIN_NS,
                stage="replay",
            )
        )
    return out


def replay(
    history: History,
    producer: EventProducer,
    dlq: EventProducer | None = None,
    *,
    speed: float = 0.0,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    pace_every: int = 256,
) -> ReplayResult:
    """Produce ``history`` to ``producer``'s topic.

    ``speed`` is the ratio of event time to wall time (1 = real time, 10 = ten times faster);
    0 means as fast as possible. ``clock`` and ``sleep`` are injected for tests.
    """
    res = ReplayResult()
    n = len(history.ticks)
    start_wall = clock()
    first_ts = int(history.ticks["ts"].iloc[0]) if n else 0
    bar = tqdm(total=n, unit="tick", unit_scale=True, desc=f"replay → {producer.topic}", disable=not progress)
    batch: list[Tick] = []
    for tick in iter_tick_events(history.ticks):
        batch.append(tick)
        if len(batch) >= pace_every:
            _send(producer, batch, res, bar)
            batch = []
            if speed > 0:
                due = start_wall + (tick.ts - first_ts) / 1e9 / speed
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
    if batch:
        _send(producer, batch, res, bar)
    producer.flush()
    res.per_symbol = {str(k): int(v) for k, v in history.ticks["symbol"].value_counts(sort=False).items()}
    if dlq is not None and len(history.rejects):
        res.dead_letters = dlq.send(rejects_to_dead_letters(history))
        dlq.flush()
    bar.close()
    res.seconds = clock() - start_wall
    return res


def _send(producer: EventProducer, batch: list[Tick], res: ReplayResult, bar: tqdm) -> None:
    producer.send(batch)
    res.produced += len(batch)
    bar.update(len(batch))
