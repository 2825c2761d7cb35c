"""Per-message ingest state for Telegram signals: allow-list, dedupe, edit versions, lifecycle references. Pure.

The signal ingest app (``flows/signal_ingest.py``) and the export replay (``levibot replay-telegram``) both call
:func:`ingest_message` for every message. It reads the state through a ``get(key)`` callable (a Faust table, or a
plain ``dict`` in the replay) and returns an :class:`IngestOutcome` holding the ``Signal`` to emit (or the reason to
dead-letter the message) and the state writes the caller must apply. It never does I/O and never reads a clock:
time comes from the message (Telegram's ``date``/``edit_date``, Unix seconds).

State keys (values are JSON-able dicts, so a Faust table with the ``json`` serializer can hold them):

``m|<chat>|<message id>``
    ``{"rev": <edit_date s, 0 for the original>, "version": <last Signal.version emitted, 0 = none>,
    "signal": <that Signal as builtins, or None>, "origin": <message id of the original open signal, or None>}``.
    A message whose ``rev`` is not newer than the stored one is a duplicate (Telegram redelivery or a stale edit).
``s|<chat>|<symbol>``
    ``{"message_id": <id>}``: the latest *open* signal for ``symbol`` in the chat, used to resolve a follow-up that
    names the symbol but is not a reply.

Lifecycle follow-ups find their original (``ref``) by, in order: the replied-to message (``reply_to_message``),
following a replied-to follow-up back to its origin; else the latest open signal of the symbol the follow-up names.

>>> allow = ChatAllowList.parse("-1001:0.8,@vip:0.5")
>>> state: dict = {}
>>> m = InboundMessage(chat_id=-1001, message_id=7, date_s=1_700_000_000, text="#SOL/USDT SHORT Entry 150 TP 140 SL 156")
>>> out = ingest_message(m, trust=allow.trust(-1001, None), get=state.get)
>>> out.status, out.signal.id, out.signal.version, out.signal.trust
('signal', 'tg:-1001:7', 1, 0.8)
>>> state.update(out.writes)
>>> ingest_message(m, trust=0.8, get=state.get).status  # Telegram delivered it again
'duplicate'
>>> up = InboundMessage(chat_id=-1001, message_id=9, date_s=1_700_000_100, text="SL to breakeven", reply_to_message_id=7)
>>> s = ingest_message(up, trust=0.8, get=state.get).signal
>>> s.kind, s.ref_id, s.stop
('update', 'tg:-1001:7', 150.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from schemas.events import Signal, TelegramMessage, TelegramUpdate
from schemas.time import NS_PER_S as _NS

from .convert import to_signal
from .parser import parse_message
from .results import LifecycleUpdate, ParseResult, Rejection, SignalDraft

__all__ = [
    "ChatAllowList",
    "InboundMessage",
    "IngestOutcome",
    "INGEST_REASONS",
    "inbound_from_update",
    "ingest_message",
    "message_key",
    "symbol_key",
]

#: Dead-letter reason codes of the ingest step (besides the parser's own ``REASON_CODES``).
INGEST_REASONS: dict[str, str] = {
    "chat_not_allowed": "the chat is not in the allow-list (LEVIBOT_TELEGRAM_CHATS)",
    "no_text": "the message has neither text nor caption (photo, sticker, service message)",
    "unsupported_update": "the update carries no message, channel post or edit of one",
    "unresolved_ref": "a follow-up whose original signal (or symbol/side) could not be found",
    "market_entry_unpriced": "a market entry without a written price: the ingest has no market price to use",
    "invalid_signal": "the parsed values do not make a valid Signal event",
}


@dataclass(frozen=True, slots=True)
class ChatAllowList:
    """Allowed chats and their trust weights (fraction in [0, 1]), keyed by numeric chat id (``"-1001234"``) or by
    lower-case ``@username``.

    >>> a = ChatAllowList.parse("-1001234:0.8, @Channel:0.5")
    >>> a.trust(-1001234, None), a.trust(-42, "channel"), a.trust(-42, None)
    (0.8, 0.5, None)
    """

    trust_by_key: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> ChatAllowList:
        """Parse ``"<chat>:<trust>,..."`` (``<chat>`` a numeric id or ``@username``; ``:<trust>`` optional, default
        0.5). Raises ``ValueError`` on a malformed entry or a trust outside [0, 1]."""
        out: dict[str, float] = {}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            chat, sep, weight = part.rpartition(":")
            if not sep:
                chat, weight = part, "0.5"
            chat = chat.strip()
            try:
                trust = float(weight)
            except ValueError:
                raise ValueError(f"chat allow-list entry {part!r}: trust {weight!r} is not a number") from None
            if not 0.0 <= trust <= 1.0:
                raise ValueError(f"chat allow-list entry {part!r}: trust must be in [0, 1]")
            if chat.startswith("@") and len(chat) > 1:
                out[chat.lower()] = trust
            else:
                try:
                    out[str(int(chat))] = trust
                except ValueError:
                    raise ValueError(
                        f"chat allow-list entry {part!r}: chat must be a numeric id or @username"
                    ) from None
        return cls(out)

    def trust(self, chat_id: int | str, username: str | None) -> float | None:
        """Trust weight of the chat, or None when it is not allowed (the numeric id wins over the username)."""
        t = self.trust_by_key.get(str(chat_id))
        if t is None and username:
            t = self.trust_by_key.get("@" + username.lstrip("@").lower())
        return t

    def __bool__(self) -> bool:
        return bool(self.trust_by_key)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message as the ingest needs it. ``date_s``/``edit_date_s`` Unix time, seconds (Telegram's unit);
    ``reply_to_message_id`` the message it answers, if any."""

    chat_id: int | str
    message_id: int
    date_s: int
    text: str | None
    edit_date_s: int | None = None
    username: str | None = None
    reply_to_message_id: int | None = None

    @property
    def revision(self) -> int:
        """0 for the original, the edit time (s) for an edit: larger means newer."""
        return int(self.edit_date_s or 0)

    @property
    def ts_ns(self) -> int:
        """Event time of this revision, ns UTC (the edit time for an edit)."""
        return int(self.edit_date_s or self.date_s) * _NS


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """``status``: ``signal`` (emit ``signal``), ``rejected`` (dead-letter with ``reason``/``detail``) or
    ``duplicate`` (drop). ``writes``: ``(key, value)`` state updates to apply, in order."""

    status: Literal["signal", "rejected", "duplicate"]
    signal: Signal | None = None
    reason: str = ""
    detail: str = ""
    writes: tuple[tuple[str, dict[str, Any]], ...] = ()


def message_key(chat_id: int | str, message_id: int) -> str:
    """State key of one message: ``m|<chat>|<message id>``."""
    return f"m|{chat_id}|{int(message_id)}"


def symbol_key(chat_id: int | str, symbol: str) -> str:
    """State key of the latest open signal of ``symbol`` in a chat: ``s|<chat>|<symbol>``."""
    return f"s|{chat_id}|{symbol}"


def inbound_from_update(update: TelegramUpdate) -> InboundMessage | None:
    """The message an update carries (post, message or an edit of either), or None for other update types."""
    msg: TelegramMessage | None = update.any_message
    if msg is None:
        return None
    reply = msg.reply_to_message
    return InboundMessage(
        chat_id=msg.chat.id,
        message_id=msg.message_id,
        date_s=msg.date,
        edit_date_s=msg.edit_date,
        text=msg.text if msg.text is not None else msg.caption,
        username=msg.chat.username,
        reply_to_message_id=reply.message_id if reply is not None else None,
    )


def _load_signal(rec: Mapping[str, Any] | None) -> Signal | None:
    if not rec or rec.get("signal") is None:
        return None
    return msgspec.convert(rec["signal"], Signal)


def _resolve_ref(msg: InboundMessage, update: LifecycleUpdate, get: Callable[[str], Any]) -> Signal | None:
    """The original open signal a follow-up refers to (see the module docstring), or None."""
    chat = msg.chat_id
    if msg.reply_to_message_id is not None:
        rec = get(message_key(chat, msg.reply_to_message_id))
        if rec:
            origin = rec.get("origin")
            if origin is not None and origin != msg.reply_to_message_id:
                rec = get(message_key(chat, origin))
            sig = _load_signal(rec)
            if sig is not None and sig.kind == "open":
                return sig
    if update.symbol is not None:
        idx = get(symbol_key(chat, update.symbol))
        if idx:
            sig = _load_signal(get(message_key(chat, idx["message_id"])))
            if sig is not None and sig.kind == "open" and (update.side is None or update.side == sig.side):
                return sig
    return None


def ingest_message(
    msg: InboundMessage,
    *,
    trust: float | None,
    get: Callable[[str], Any],
    parse: Callable[[str], ParseResult] = parse_message,
) -> IngestOutcome:
    """Decide what one message becomes (see the module docstring). ``trust`` is the chat's weight from the
    allow-list (None = not allowed); ``get(key)`` reads the state (None when absent)."""
    if trust is None:
        return IngestOutcome("rejected", reason="chat_not_allowed", detail=f"chat {msg.chat_id} is not allow-listed")
    key = message_key(msg.chat_id, msg.message_id)
    rec: dict[str, Any] | None = get(key)
    if rec is not None and msg.revision <= int(rec.get("rev", 0)):
        return IngestOutcome("duplicate", detail=f"revision {msg.revision} <= seen {rec.get('rev', 0)}")
    prev_version = int(rec.get("version", 0)) if rec else 0
    # The message is now seen, whatever it turns out to be: a redelivery must not be dead-lettered twice.
    seen = {
        "rev": msg.revision,
        "version": prev_version,
        "signal": rec.get("signal") if rec else None,
        "origin": rec.get("origin") if rec else None,
    }
    if not msg.text or not msg.text.strip():
        return IngestOutcome(
            "rejected", reason="no_text", detail="message without text or caption", writes=((key, seen),)
        )
    result = parse(msg.text)
    if isinstance(result, Rejection):
        return IngestOutcome("rejected", reason=result.reason, detail=result.message, writes=((key, seen),))
    ref: Signal | None = None
    if isinstance(result, LifecycleUpdate):
        ref = _resolve_ref(msg, result, get)
    version = prev_version + 1
    try:
        signal = to_signal(
            result,
            chat_id=msg.chat_id,
            message_id=msg.message_id,
            version=version,
            ts_ns=msg.ts_ns,
            trust=trust,
            raw_text=msg.text,
            ref=ref,
        )
    except ValueError as exc:
        if isinstance(result, SignalDraft):
            reason = "market_entry_unpriced" if not result.entries else "invalid_signal"
        else:
            reason = "unresolved_ref"
        return IngestOutcome("rejected", reason=reason, detail=str(exc)[:4096], writes=((key, seen),))
    origin = msg.message_id if signal.kind == "open" else (ref.source_message_id if ref is not None else None)
    record = {"rev": msg.revision, "version": version, "signal": msgspec.to_builtins(signal), "origin": origin}
    writes: list[tuple[str, dict[str, Any]]] = [(key, record)]
    if signal.kind == "open":
        writes.append((symbol_key(msg.chat_id, signal.symbol), {"message_id": msg.message_id}))
    return IngestOutcome("signal", signal=signal, writes=tuple(writes))
