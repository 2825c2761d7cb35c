"""Telegram at the edge: the webhook's secret-token check and the Telegram Desktop export reader.

* :func:`secret_token_ok` compares the ``X-Telegram-Bot-Api-Secret-Token`` header with the configured secret
  (``LEVIBOT_TELEGRAM_SECRET_TOKEN``, the ``secret_token`` given to ``setWebhook``) in constant time.
* :func:`read_desktop_export` reads a Telegram Desktop "Export chat history" ``result.json`` (machine-readable JSON
  format) into :class:`operators.signals.lifecycle_state.InboundMessage` values in message-time order.

Chat ids in an export are bare (``1234567890``); the Bot API writes channels and supergroups as ``-100<id>`` and
basic groups as ``-<id>``. :func:`bot_api_chat_id` does that conversion so replayed signals get the same ids
(``tg:<chat>:<message id>``) as live ones.

>>> secret_token_ok("s3cret", "s3cret"), secret_token_ok(None, "s3cret"), secret_token_ok("s3cret", "")
(True, False, False)
>>> bot_api_chat_id(1234567890, "public_channel"), bot_api_chat_id(42, "private_group"), bot_api_chat_id(7, "personal_chat")
(-1001234567890, -42, 7)
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operators.signals.lifecycle_state import InboundMessage

__all__ = [
    "SECRET_HEADER",
    "secret_token_ok",
    "bot_api_chat_id",
    "export_text",
    "DesktopExport",
    "read_desktop_export",
]

#: Header Telegram sets on every webhook request when ``setWebhook`` was given a ``secret_token``.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

_CHANNEL_TYPES = {"public_channel", "private_channel", "public_supergroup", "private_supergroup"}


def secret_token_ok(received: str | None, expected: str) -> bool:
    """True when ``received`` equals the non-empty ``expected`` secret (constant-time; an unset secret refuses all)."""
    if not expected or received is None:
        return False
    return hmac.compare_digest(received.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def bot_api_chat_id(export_id: int, chat_type: str) -> int:
    """The Bot API chat id for an export's bare ``id`` and ``type``."""
    i = int(export_id)
    if i < 0:
        return i
    if chat_type in _CHANNEL_TYPES:
        return -(10**12 + i)
    if chat_type == "private_group":
        return -i
    return i


def export_text(text: Any) -> str:
    """Plain text of an export message: ``text`` is a string or a list of strings and ``{"type", "text"}`` parts."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in text)
    return ""


@dataclass
class DesktopExport:
    """An export: ``chat_id`` (Bot API form), ``name``, ``chat_type``, ``username`` if known, ``messages`` in
    message-time order (``date_s`` then id), and ``skipped`` counts by reason (``service``, ``no_date``)."""

    chat_id: int
    name: str
    chat_type: str
    username: str | None
    messages: list[InboundMessage]
    skipped: dict[str, int] = field(default_factory=dict)


def _unix(m: dict[str, Any], key: str) -> int | None:
    v = m.get(f"{key}_unixtime")
    if v not in (None, ""):
        return int(v)
    iso = m.get(key)
    if not iso:
        return None
    import datetime as dt

    # Exports written before 2021 only carry local-time ISO strings; they are read as UTC (documented).
    return int(dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC).timestamp())


def read_desktop_export(path: str | Path, *, chat_id: int | None = None) -> DesktopExport:
    """Read ``result.json`` (one chat's export). ``chat_id`` overrides the id taken from the file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if "messages" not in data:
        raise ValueError(f"{path}: not a single-chat Telegram Desktop export (no 'messages')")
    ctype = str(data.get("type", "public_channel"))
    cid = chat_id if chat_id is not None else bot_api_chat_id(int(data["id"]), ctype)
    username = None
    skipped: dict[str, int] = {}
    out: list[InboundMessage] = []
    for m in data["messages"]:
        if m.get("type") != "message":
            skipped["service"] = skipped.get("service", 0) + 1
            continue
        date = _unix(m, "date")
        if date is None:
            skipped["no_date"] = skipped.get("no_date", 0) + 1
            continue
        out.append(
            InboundMessage(
                chat_id=cid,
                message_id=int(m["id"]),
                date_s=date,
                text=export_text(m.get("text")),
                username=username,
                reply_to_message_id=int(m["reply_to_message_id"]) if m.get("reply_to_message_id") else None,
            )
        )
    out.sort(key=lambda x: (x.date_s, x.message_id))
    return DesktopExport(cid, str(data.get("name", "")), ctype, username, out, skipped)


def iter_texts(export: DesktopExport) -> Iterator[str]:
    """The message texts of an export, in order (for benchmarks and quick looks)."""
    for m in export.messages:
        if m.text:
            yield m.text
