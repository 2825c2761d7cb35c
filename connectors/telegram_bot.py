"""The Bot API call the operator API's bot makes: ``sendMessage`` (answers to bot commands). ``api_url`` is
``https://api.telegram.org`` in production and a local HTTP server in the tests. The bot token is part of the URL
path by the Bot API's design: it is never logged here (errors name the method and the HTTP status only)."""

from __future__ import annotations

import logging

import httpx

__all__ = ["BotApi", "BotApiError"]

log = logging.getLogger("levibot.api")


class BotApiError(RuntimeError):
    pass


class BotApi:
    def __init__(self, api_url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._client = httpx.Client(timeout=timeout_s)

    def send_message(self, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
        """Send ``text`` (plain, at most 4096 characters) to ``chat_id``; :class:`BotApiError` when refused."""
        body: dict[str, object] = {"chat_id": chat_id, "text": text[:4096], "disable_web_page_preview": True}
        if reply_to:
            body["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
        try:
            r = self._client.post(f"{self._base}/sendMessage", json=body)
        except httpx.HTTPError as exc:
            raise BotApiError(f"sendMessage failed: {type(exc).__name__}") from None
        if r.status_code != 200 or not r.json().get("ok"):
            raise BotApiError(f"sendMessage answered HTTP {r.status_code}")

    def close(self) -> None:
        self._client.close()
