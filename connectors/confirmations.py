"""Staged Telegram commands in Redis, shared by every API replica: ``/halt`` staged on one replica can be
confirmed through another (the API's Service spreads requests over its replicas). The same interface as
:class:`operators.api.telegram.Confirmations`, which stays the store when no Redis is configured.

One key per chat and user (``levibot-api:tg-confirm:<chat>:<user>``) holding the code and the command, with the
confirmation window as its expiry; ``take`` reads and deletes it in one step (``GETDEL``), so a code works once."""

from __future__ import annotations

import hmac
import json
import secrets

import redis

from operators.api.telegram import Pending

__all__ = ["RedisConfirmations"]


class RedisConfirmations:
    def __init__(self, url: str, *, ttl_s: float = 60.0, namespace: str = "levibot-api") -> None:
        self.ttl_s = ttl_s
        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._ns = namespace

    def _key(self, chat_id: int, user_id: int) -> str:
        return f"{self._ns}:tg-confirm:{chat_id}:{user_id}"

    def stage(self, action: str, scope: str, reason: str, *, chat_id: int, user_id: int, now_s: float) -> str:
        code = secrets.token_hex(3)
        value = json.dumps(
            {"code": code, "action": action, "scope": scope, "reason": reason, "expires_s": now_s + self.ttl_s}
        )
        self._r.set(self._key(chat_id, user_id), value, px=int(self.ttl_s * 1000))
        return code

    def take(self, code: str, *, chat_id: int, user_id: int, now_s: float) -> Pending | None:
        raw = self._r.getdel(self._key(chat_id, user_id))
        if raw is None:
            return None
        d = json.loads(raw)
        if d["expires_s"] <= now_s or not hmac.compare_digest(d["code"], code.strip().lower()):
            return None
        return Pending(d["action"], d["scope"], d["reason"], chat_id, user_id, d["expires_s"])
