"""A clean stop on request: SIGINT or SIGTERM ends a live flow at the next poll of its Kafka sources.

Bytewax's ``cli_main`` has no stop hook of its own: a SIGINT becomes a ``KeyboardInterrupt`` inside whatever Python
code the worker runs at that moment (a source's poll, a sink's write), which Bytewax reports as a failed step and
the process exits 1 mid-batch; a SIGTERM kills the process outright (the default action), unflushed. Instead,
:func:`stop_on_signals` installs handlers that only set a process-wide event. Every
:class:`connectors.kafka.source.KafkaEventSource` partition checks it before each poll and then ends
(``StopIteration``), exactly as at the end of a bounded run: Bytewax finishes the epoch in flight, the sinks write and
flush what they hold and are closed, the last snapshot is taken (with recovery), and ``cli_main`` returns, so the
process exits 0. The latency of a stop is one poll timeout plus the work in flight (tens of milliseconds when idle).

A second signal while the stop is under way exits at once (status 128 + signal number, like the default action),
for an operator who does not want to wait for a stuck sink. In a cluster of several processes each process stops
reading on its own signal, and the dataflow ends when every process has stopped: signal all of them.

>>> stop_requested()
False
>>> request_stop("test")
True
>>> stop_requested(), stop_reason()
(True, 'test')
>>> clear_stop(); stop_requested()
False
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["StopSignals", "stop_on_signals", "request_stop", "stop_requested", "stop_reason", "clear_stop"]

log = logging.getLogger(__name__)

_STOP = threading.Event()
_REASON: list[str] = []
_LOCK = threading.Lock()


def request_stop(reason: str) -> bool:
    """Ask every Kafka source of this process to end at its next poll; ``reason`` is kept for the logs.
    Returns True for the first request, False when a stop was already requested."""
    with _LOCK:
        first = not _STOP.is_set()
        if first:
            _REASON[:] = [reason]
            _STOP.set()
    return first


def stop_requested() -> bool:
    """True once a stop was requested (cheap: read on every poll of every source partition)."""
    return _STOP.is_set()


def stop_reason() -> str | None:
    """What requested the stop (e.g. ``SIGTERM``), None while none was requested."""
    return _REASON[0] if _STOP.is_set() and _REASON else None


def clear_stop() -> None:
    """Forget a stop request (a new run in the same process, tests)."""
    with _LOCK:
        _STOP.clear()
        _REASON.clear()


class StopSignals:
    """The installed handlers; :meth:`restore` puts the previous ones back. ``requested``/``reason`` tell whether
    (and by what) a stop was asked for."""

    def __init__(self, signums: tuple[int, ...]) -> None:
        self.signums = signums
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not request_stop(name):
            log.warning("%s received again while stopping: exiting now, without waiting for the flow", name)
            logging.shutdown()
            os._exit(128 + signum)
        log.info(
            "%s received: stopping the flow at the next poll of its sources, then flushing its sinks "
            "(send it again to exit at once)",
            name,
        )

    def install(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for s in self.signums:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return stop_requested()

    @property
    def reason(self) -> str | None:
        return stop_reason()

    def __enter__(self) -> StopSignals:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.restore()


def stop_on_signals(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> StopSignals:
    """Install the stop handlers for ``signums`` (main thread only) after clearing any earlier request; returns the
    handle (also a context manager that restores the previous handlers)."""
    clear_stop()
    handle = StopSignals(signums).install()
    log.info(
        "%s stop this process cleanly: its sources end at their next poll and its sinks are flushed",
        " or ".join(signal.Signals(s).name for s in signums),
    )
    return handle
