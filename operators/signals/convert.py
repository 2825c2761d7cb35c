"""Parse results -> ``schemas.events.Signal``.

``id`` is ``tg:<chat>:<message id>`` (:func:`signal_id`): the same for every edit of a message, which bumps
``version`` instead. Mapping:

* :class:`SignalDraft` -> ``kind="open"`` with its entries, targets, stop, leverage. A market entry without a written
  price needs ``market_price`` (the caller's last trade price), which becomes the single entry; a relative stop
  (``stop_pct``) is then applied to it. ``entry_type``, ``leverage_max``, ``margin_mode`` and ``stop_pct`` have no
  field in ``Signal`` and are not carried.
* :class:`LifecycleUpdate` -> ``kind=action`` (``update``/``cancel``/``close``), ``ref_id`` the original's id when
  ``ref`` (the original ``Signal``, resolved by the caller) is given. ``symbol``/``side`` come from the message or
  else from ``ref``. ``stop`` the new stop; "stop to breakeven" becomes the mean of ``ref.entries``. ``close_fraction``
  as parsed (None = all). Entries and targets stay empty (= unchanged). Which target was hit has no field in
  ``Signal``.

A :class:`Rejection`, or an update whose symbol/side/breakeven cannot be resolved, raises ``ValueError`` (the caller
dead-letters it).

>>> from operators.signals import parse_message
>>> d = parse_message("#SOL/USDT SHORT Entry 150 TP 140 SL 156")
>>> s = to_signal(d, chat_id=-1001, message_id=7, version=2, ts_ns=1_700_000_000_000_000_000, trust=0.8)
>>> (s.id, s.version, s.kind, s.symbol, s.side, s.entries, s.targets, s.stop)
('tg:-1001:7', 2, 'open', 'SOL-USDT', 'short', [150.0], [140.0], 156.0)
>>> u = to_signal(parse_message("SL to breakeven"), chat_id=-1001, message_id=9, version=1,
...               ts_ns=1_700_000_100_000_000_000, trust=0.8, ref=s)
>>> (u.id, u.kind, u.ref_id, u.symbol, u.side, u.stop)
('tg:-1001:9', 'update', 'tg:-1001:7', 'SOL-USDT', 'short', 150.0)
"""

from __future__ import annotations

from schemas.events import Signal

from .numbers import round_price
from .results import LifecycleUpdate, ParseResult, Rejection, SignalDraft

__all__ = ["signal_id", "to_signal"]

_RAW_MAX = 4096


def signal_id(chat_id: int | str, message_id: int) -> str:
    """Deterministic id of the signal from a Telegram message: ``tg:<chat>:<message id>``.

    >>> signal_id(-1001234567890, 42), signal_id("@vipsignals", 3)
    ('tg:-1001234567890:42', 'tg:@vipsignals:3')
    """
    chat = str(chat_id).replace(" ", "")
    return f"tg:{chat}:{int(message_id)}"


def to_signal(
    result: ParseResult,
    *,
    chat_id: int | str,
    message_id: int,
    version: int,
    ts_ns: int,
    trust: float,
    raw_text: str = "",
    ref: Signal | None = None,
    market_price: float | None = None,
) -> Signal:
    """The ``Signal`` event for a parsed message (see the module docstring); ``ts_ns`` ns UTC of the message or edit;
    ``trust`` the chat's weight in [0, 1]; ``raw_text`` cut to 4096 chars."""
    common = dict(
        id=signal_id(chat_id, message_id),
        source_chat=str(chat_id),
        source_message_id=int(message_id),
        version=version,
        ts=ts_ns,
        trust=trust,
        raw_text=raw_text[:_RAW_MAX],
    )
    if isinstance(result, Rejection):
        raise ValueError(f"rejected message ({result.reason}) has no Signal")
    if isinstance(result, SignalDraft):
        entries = list(result.entries)
        stop = result.stop
        if not entries:
            if market_price is None:
                raise ValueError("market entry without a written price needs market_price")
            entries = [float(market_price)]
        if stop is None and result.stop_pct is not None:
            ref_px = sum(entries) / len(entries)
            k = 1 - result.stop_pct / 100 if result.side == "long" else 1 + result.stop_pct / 100
            stop = round_price(ref_px * k)
        return Signal(
            symbol=result.symbol,
            side=result.side,
            kind="open",
            entries=entries,
            targets=list(result.targets),
            stop=stop,
            leverage=result.leverage,
            **common,  # type: ignore[arg-type]
        )
    if isinstance(result, LifecycleUpdate):
        symbol = result.symbol or (ref.symbol if ref is not None else None)
        side = result.side or (ref.side if ref is not None else None)
        if symbol is None or side is None:
            raise ValueError("lifecycle update without symbol/side and without the original signal (ref)")
        if ref is not None and (ref.symbol != symbol or ref.side != side):
            raise ValueError(f"update for {symbol} {side} does not match the original {ref.symbol} {ref.side}")
        stop = result.stop
        if stop is None and "stop_to_breakeven" in result.events:
            if ref is None or not ref.entries:
                raise ValueError("stop to breakeven needs the original signal's entries (ref)")
            stop = round_price(sum(ref.entries) / len(ref.entries))
        return Signal(
            symbol=symbol,
            side=side,
            kind=result.action,
            stop=stop,
            ref_id=ref.id if ref is not None else None,
            close_fraction=result.close_fraction if result.action == "close" else None,
            **common,  # type: ignore[arg-type]
        )
    raise TypeError(f"not a parse result: {type(result).__name__}")
