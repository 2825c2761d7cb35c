"""Telegram trading-signal parsing: pure, deterministic, I/O-free (see ``docs/signals.md``).

:func:`parse_message` turns a message text into a :class:`SignalDraft` (a new idea), a :class:`LifecycleUpdate`
(target hit, stop moved, filled, cancelled, closed) or a :class:`Rejection` (reason code + human text);
:func:`to_signal` turns a draft or update into a ``schemas.events.Signal`` with a deterministic id.

>>> parse_message("$SOL long 10x | Entry 150-152 | TP 158/165 | SL 146").entries
(150.0, 152.0)
"""

from .accuracy import AccuracyReport, accuracy, evaluate
from .convert import signal_id, to_signal
from .numbers import find_numbers, parse_number
from .parser import parse_message
from .results import (
    LIFECYCLE_EVENTS,
    REASON_CODES,
    LifecycleUpdate,
    ParseResult,
    Rejection,
    SignalDraft,
    summarize,
)
from .symbols import find_symbols, normalize_symbol, venue_symbol

__all__ = [
    "AccuracyReport",
    "LIFECYCLE_EVENTS",
    "REASON_CODES",
    "LifecycleUpdate",
    "ParseResult",
    "Rejection",
    "SignalDraft",
    "accuracy",
    "evaluate",
    "find_numbers",
    "find_symbols",
    "normalize_symbol",
    "parse_message",
    "parse_number",
    "signal_id",
    "summarize",
    "to_signal",
    "venue_symbol",
]
