"""The Bot API call the operator API's bot makes: ``sendMessage`` (answers to bot commands). ``api_url`` is
``https://api.telegram.org`` in production and a local HTTP server in the tests.

The bot token is part of the URL path by the Bot API's design, so the request goes through ``urllib`` (which logs
nothing) rather than an HTTP client that logs each URL at INFO; errors here name the method and the HTTP status
only, never the URL."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

__all__ = ["BotApi", "BotApiError"]

log = logging.getLogger("levibot.api")


class BotApiError(RuntimeError):
    pass


class BotApi:
    def __init__(self, api_url: str, token: str, *, timeout_s: float = 10.0) -> None:
        if not api_url.startswith(("https://", "http://")):
            raise ValueError("the Bot API URL must be http(s)")
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self.timeout_s = timeout_s

    def send_message(self, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
        """Send ``text`` (plain, at most 4096 characters) to ``chat_id``; :class:`BotApiError` when refused."""
        body: dict[str, object] = {"chat_id": chat_id, "text": text[:4096], "disable_web_page_preview": True}
        if reply_to:
            body["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
        req = urllib.request.Request(
            f"{self._base}/sendMessage",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:  # (http(s) checked above)
                ok = r.status == 200 and json.loads(r.read() or b"{}").get("ok") is True
                status = r.status
        except urllib.error.HTTPError as exc:
            raise BotApiError(f"sendMessage answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BotApiError(f"sendMessage failed: {type(exc).__name__}") from None
        if not ok:
            raise BotApiError(f"sendMessage answered HTTP {status} without ok")

    def close(self) -> None:
        pass
