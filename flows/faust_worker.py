"""Running a Faust app as this process's worker (shared by the signal-ingest and alert-dispatch apps)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any


async def producer_knows(app: Any, topic: str) -> None:
    """Wait until the app's Kafka producer has metadata for ``topic``.

    A Faust table with ``use_partitioner=True`` picks the changelog partition synchronously from the producer's
    metadata when a key is set. A producer that fetched its metadata before the changelog topic existed knows
    nothing of it until its next refresh (minutes), and the set fails inside Faust with a ``TypeError``; this asks
    the broker once, up front (aiokafka's ``partitions_for`` waits for the topic's metadata).
    """
    await app.producer._ensure_producer().partitions_for(topic)


def run_worker(app: Any, loglevel: str = "info") -> None:
    """Run ``app`` in this process until SIGINT/SIGTERM (a Faust worker owns the event loop; exits the process)."""
    import faust

    faust.Worker(app, loglevel=loglevel).execute_from_commandline()


def main_for(run: Callable[..., None]) -> None:
    """``python -m`` entry point of an app module: log to stderr, level from ``LEVIBOT_LOGLEVEL``."""
    logging.basicConfig(level=logging.INFO)
    run(loglevel=os.environ.get("LEVIBOT_LOGLEVEL", "info"))
