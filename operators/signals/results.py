"""What :func:`operators.signals.parse_message` returns: a signal draft, a lifecycle update or a rejection.

All three are frozen ``msgspec.Struct`` values tagged by ``type`` (``"signal"``, ``"lifecycle"``, ``"rejection"``),
so they compare by value and turn into plain dicts with :func:`summarize` (defaults left out). Prices are in quote
currency per base unit, as written in the message; leverage is a multiple; percentages are percent (5.0 = 5 %).

>>> d = SignalDraft(symbol="BTC-USDT", side="long", entries=(100.0,), stop=95.0)
>>> summarize(d)
{'type': 'signal', 'symbol': 'BTC-USDT', 'side': 'long', 'entries': [100.0], 'stop': 95.0}
>>> summarize(Rejection(reason="no_stop", message="no stop loss found"))
{'type': 'rejection', 'reason': 'no_stop'}
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "EntryType",
    "LifecycleAction",
    "LifecycleEvent",
    "LIFECYCLE_EVENTS",
    "REASON_CODES",
    "SignalDraft",
    "LifecycleUpdate",
    "Rejection",
    "ParseResult",
    "summarize",
]

#: How the entries are meant: ``limit`` discrete limit prices (in the order written); ``zone`` any price between
#: ``entries[0] <= entries[1]``; ``market`` enter now at the current market price ("CMP"; ``entries`` then hold the
#: extra/reference prices written next to it, possibly none); ``below``/``above`` enter once the price is at or
#: below / at or above ``entries[0]``.
EntryType = Literal["limit", "zone", "market", "below", "above"]

#: Maps one-to-one onto ``schemas.events.Signal.kind``.
LifecycleAction = Literal["update", "cancel", "close"]

#: Vocabulary of ``LifecycleUpdate.events``, in the canonical order they are listed in.
LIFECYCLE_EVENTS: tuple[str, ...] = (
    "entries_filled",
    "target_hit",
    "all_targets_hit",
    "stop_moved",
    "stop_to_breakeven",
    "stop_hit",
    "cancelled",
    "closed",
)
LifecycleEvent = Literal[
    "entries_filled",
    "target_hit",
    "all_targets_hit",
    "stop_moved",
    "stop_to_breakeven",
    "stop_hit",
    "cancelled",
    "closed",
]

#: Machine reason codes of a :class:`Rejection` (lowercase snake case, valid ``DeadLetter.error`` values).
REASON_CODES: dict[str, str] = {
    "no_signal": "chatter: no entry, target, stop or lifecycle wording",
    "no_symbol": "no instrument symbol found",
    "no_side": "no direction (long/short, buy/sell) found, or only an emoji hint the prices do not confirm",
    "no_entry": "no entry price and no market entry",
    "no_stop": "no stop loss",
    "stop_wrong_side": "stop not below all entries (long) / above all entries (short)",
    "targets_wrong_side": "a target not above all entries (long) / below all entries (short)",
    "ambiguous": "several symbols, both directions, or several different stop prices",
    "too_many_levels": "more than 10 entries or more than 20 targets (schema limits)",
}


class _Result(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type"):
    """Base of the three result types."""


class SignalDraft(_Result, tag="signal", frozen=True):
    """A new trading idea, validated (stop and targets on the right side of the entries).

    ``symbol`` in the normal form ``BASE-QUOTE`` (``BTC-USDT``); ``entries`` see :data:`EntryType`; ``targets``
    take-profit prices in the order written; ``stop`` the stop price (``None`` only when the stop is relative,
    ``stop_pct``, and there is no entry price to apply it to: market entry without a price); ``stop_pct`` the
    relative stop as written (percent of the entry, 5.0 = 5 %); ``leverage`` the lowest leverage the message
    names, ``leverage_max`` the top of a written range (``10-20x``); ``margin_mode`` isolated/cross when named.
    """

    symbol: str
    side: Literal["long", "short"]
    entry_type: EntryType = "limit"
    entries: tuple[float, ...] = ()
    targets: tuple[float, ...] = ()
    stop: float | None = None
    stop_pct: float | None = None
    leverage: float | None = None
    leverage_max: float | None = None
    margin_mode: Literal["isolated", "cross"] | None = None


class LifecycleUpdate(_Result, tag="lifecycle", frozen=True):
    """A follow-up about an earlier signal: targets hit, stop moved, entries filled, cancelled, closed.

    ``action`` is the ``Signal.kind`` it becomes: ``cancel`` if the message cancels; ``close`` if it reports an
    exit (closed, stopped out, all targets hit); otherwise ``update``. ``events`` lists what the message says, in
    :data:`LIFECYCLE_EVENTS` order. ``symbol``/``side`` when the message names them; ``target_hit`` the highest
    target number reported hit (1-based); ``stop`` a new stop price; ``close_fraction`` the share of the position
    to close (``close 50%`` -> 0.5; ``None`` = all).
    """

    action: LifecycleAction
    events: tuple[str, ...]
    symbol: str | None = None
    side: Literal["long", "short"] | None = None
    target_hit: int | None = None
    stop: float | None = None
    close_fraction: float | None = None


class Rejection(_Result, tag="rejection", frozen=True):
    """The message is not a usable signal: ``reason`` one of :data:`REASON_CODES`, ``message`` for humans."""

    reason: str
    message: str = ""


ParseResult = SignalDraft | LifecycleUpdate | Rejection


def summarize(result: ParseResult) -> dict[str, Any]:
    """Plain-dict form used by the test set and :mod:`operators.signals.accuracy`: all fields that differ from
    their defaults (tuples become lists); for a rejection only ``type`` and ``reason`` (the human text is free)."""
    if isinstance(result, Rejection):
        return {"type": "rejection", "reason": result.reason}
    out: dict[str, Any] = msgspec.to_builtins(result)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
