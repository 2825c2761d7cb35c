"""Running a Faust app as this process's worker (shared by the signal-ingest and alert-dispatch apps)."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable


def run_worker(app: Any, loglevel: str = "info") -> None:
    """Run ``app`` in this process until SIGINT/SIGTERM (a Faust worker owns the event loop; exits the process)."""
    import faust

    faust.Worker(app, loglevel=loglevel).execute_from_commandline()


def main_for(run: Callable[..., None]) -> None:
    """``python -m`` entry point of an app module: log to stderr, level from ``LEVIBOT_LOGLEVEL``."""
    logging.basicConfig(level=logging.INFO)
    run(loglevel=os.environ.get("LEVIBOT_LOGLEVEL", "info"))
