"""Raw Telegram Bot API updates, decoded leniently: only the fields the signal ingest needs are typed."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from .base import Event, SchemaVersion1, _Record, _version

TgText = Annotated[str, Meta(max_length=8192)]


class TelegramChat(_Record, frozen=True, kw_only=True):
    """Telegram ``Chat``: ``id`` is the numeric chat id (channels are negative, e.g. -1001234567890)."""

    id: int
    type: Annotated[str, Meta(max_length=32)] = "private"
    title: Annotated[str, Meta(max_length=256)] | None = None
    username: Annotated[str, Meta(max_length=64)] | None = None


class TelegramMessage(_Record, frozen=True, kw_only=True):
    """Telegram ``Message``: ``date`` and ``edit_date`` are Unix time in *seconds* (Telegram's unit)."""

    message_id: int
    date: int
    chat: TelegramChat
    text: TgText | None = None
    caption: TgText | None = None
    edit_date: int | None = None
    reply_to_message: TelegramMessage | None = None


class TelegramUpdate(Event, tag="telegram_update", frozen=True, kw_only=True):
    """A raw Telegram Bot API ``Update`` as received by the webhook (forwarded verbatim; Telegram sends no
    ``event`` tag or ``schema_version``, both optional on decode). Fields not listed here are ignored."""

    update_id: Annotated[int, Meta(ge=0)]
    message: TelegramMessage | None = None
    edited_message: TelegramMessage | None = None
    channel_post: TelegramMessage | None = None
    edited_channel_post: TelegramMessage | None = None
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        _version(1, self.schema_version)

    @property
    def any_message(self) -> TelegramMessage | None:
        """The message this update carries, whichever of the four slots it is in."""
        return self.message or self.edited_message or self.channel_post or self.edited_channel_post
