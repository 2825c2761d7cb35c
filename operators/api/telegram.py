"""Telegram for the operator API (pure): bot commands from allow-listed chats and users, with a confirmation step
for the commands that act, and the Mini App's ``initData`` signature.

**Bot commands** (``/status``, ``/positions``, ``/pnl``, ``/halt``, ``/resume``, ``/confirm <code>``, ``/help``):
:func:`parse_command` reads one Bot API update; :class:`TelegramAccess` decides who may send it: the chat must be in
``chats`` and the sender in ``users``, which maps each Telegram user id to the API key it acts as (so the key's
scopes and tier apply, and commands are issued and audited as ``api:<key id>``). ``/halt`` and ``/resume`` only
stage the command; :class:`Confirmations` hands back a one-time code that the same user in the same chat must send
with ``/confirm`` within ``ttl_s``.

**Mini App** ``initData`` (Telegram's "Validating data received via the Mini App"): the data-check string is every
field but ``hash``, sorted by key, as ``key=value`` lines; the secret key is HMAC-SHA256 of the bot token keyed with
the constant ``WebAppData``; ``hash`` must be HMAC-SHA256 of the data-check string under that secret, in hex.
:func:`validate_init_data` also bounds ``auth_date``'s age.

>>> token = "123456:TEST-token"
>>> data = sign_init_data(token, {"auth_date": "1000", "user": '{"id": 42, "first_name": "A"}'})
>>> validate_init_data(data, token, now_s=1100, max_age_s=3600).user_id
42
>>> validate_init_data(data, "654321:other", now_s=1100, max_age_s=3600)
Traceback (most recent call last):
...
operators.api.telegram.InitDataError: bad_signature: initData is not signed with this bot's token
>>> validate_init_data(data, token, now_s=99999, max_age_s=3600).user_id
Traceback (most recent call last):
...
operators.api.telegram.InitDataError: expired: initData is 98999 s old (max 3600)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "BotCommand",
    "parse_command",
    "TelegramAccess",
    "Confirmations",
    "Pending",
    "InitData",
    "InitDataError",
    "validate_init_data",
    "sign_init_data",
    "COMMANDS",
    "ACTING",
]

#: commands the bot answers; ACTING ones stage a control command that needs /confirm
COMMANDS: Final = ("status", "positions", "pnl", "halt", "resume", "confirm", "help", "start")
ACTING: Final = {"halt": "halt", "resume": "resume"}
_CMD: Final = re.compile(r"^/([a-z_]{1,32})(?:@[A-Za-z0-9_]{1,64})?(?:\s+(.*))?$", re.S)


@dataclass(frozen=True, slots=True)
class BotCommand:
    """One command message: ``chat_id``, ``user_id`` (None for channel posts), ``name`` without the slash,
    ``args`` (the rest of the text, stripped), ``message_id``."""

    chat_id: int
    user_id: int | None
    name: str
    args: str
    message_id: int


def parse_command(update: Mapping[str, Any]) -> BotCommand | None:
    """The command in a Bot API update (``message`` or ``edited_message`` whose text starts with ``/``), else None.

    >>> parse_command({"message": {"message_id": 5, "chat": {"id": -100}, "from": {"id": 7}, "text": "/halt@LeviBot  outage"}})
    BotCommand(chat_id=-100, user_id=7, name='halt', args='outage', message_id=5)
    >>> parse_command({"message": {"message_id": 5, "chat": {"id": 1}, "text": "BTC long 30000"}}) is None
    True
    """
    msg = update.get("message") or update.get("edited_message")
    if not isinstance(msg, Mapping):
        return None
    text = msg.get("text")
    chat = msg.get("chat")
    if not isinstance(text, str) or not isinstance(chat, Mapping) or not isinstance(chat.get("id"), int):
        return None
    m = _CMD.match(text.strip()[:4096])
    if m is None:
        return None
    sender = msg.get("from")
    uid = sender.get("id") if isinstance(sender, Mapping) and isinstance(sender.get("id"), int) else None
    mid_raw = msg.get("message_id")
    mid = mid_raw if isinstance(mid_raw, int) else 0
    return BotCommand(
        chat_id=int(chat["id"]), user_id=uid, name=m.group(1), args=(m.group(2) or "").strip(), message_id=mid
    )


@dataclass(frozen=True)
class TelegramAccess:
    """Who may use the bot and the Mini App: ``chats`` (bot commands only from these chat ids) and ``users``
    (Telegram user id -> the API key id it acts as).

    >>> a = TelegramAccess.parse("-100,42", '{"7": "00112233aabb"}')
    >>> a.key_for(-100, 7), a.key_for(-5, 7), a.key_for(-100, 8), a.user_key(7)
    ('00112233aabb', None, None, '00112233aabb')
    """

    chats: frozenset[int] = frozenset()
    users: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, chats: str, users: str) -> TelegramAccess:
        try:
            chat_ids = frozenset(int(c) for c in chats.replace(";", ",").split(",") if c.strip())
        except ValueError:
            raise ValueError("LEVIBOT_API_TELEGRAM_CHATS must be comma-separated integer chat ids") from None
        raw = json.loads(users) if users.strip() else {}
        if not isinstance(raw, dict):
            raise ValueError('LEVIBOT_API_TELEGRAM_USERS must be a JSON object {"<user id>": "<key id>"}')
        out: dict[int, str] = {}
        for k, v in raw.items():
            if (
                not re.fullmatch(r"-?[0-9]{1,20}", str(k))
                or not isinstance(v, str)
                or not re.fullmatch(r"[0-9a-f]{12}", v)
            ):
                raise ValueError(f"LEVIBOT_API_TELEGRAM_USERS: {k!r} -> {v!r} is not <user id> -> <12 hex key id>")
            out[int(k)] = v
        return cls(chat_ids, out)

    def user_key(self, user_id: int | None) -> str | None:
        return None if user_id is None else self.users.get(user_id)

    def key_for(self, chat_id: int, user_id: int | None) -> str | None:
        """The API key a command from ``user_id`` in ``chat_id`` acts as, None when either is not allowed."""
        return self.user_key(user_id) if chat_id in self.chats else None


@dataclass(frozen=True, slots=True)
class Pending:
    action: str
    scope: str
    reason: str
    chat_id: int
    user_id: int
    expires_s: float


class Confirmations:
    """Staged commands waiting for ``/confirm <code>`` (one per chat and user; in this process's memory).

    >>> c = Confirmations(ttl_s=60)
    >>> code = c.stage("halt", "account:default", "outage", chat_id=1, user_id=7, now_s=0)
    >>> c.take(code, chat_id=1, user_id=8, now_s=1) is None, c.take(code, chat_id=1, user_id=7, now_s=1).action
    (True, 'halt')
    >>> c.take(code, chat_id=1, user_id=7, now_s=2) is None  # used
    True
    """

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._pending: dict[tuple[int, int], tuple[str, Pending]] = {}
        self._lock = threading.Lock()

    def stage(self, action: str, scope: str, reason: str, *, chat_id: int, user_id: int, now_s: float) -> str:
        code = secrets.token_hex(3)
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if v[1].expires_s > now_s}
            self._pending[(chat_id, user_id)] = (
                code,
                Pending(action, scope, reason, chat_id, user_id, now_s + self.ttl_s),
            )
        return code

    def take(self, code: str, *, chat_id: int, user_id: int, now_s: float) -> Pending | None:
        """The staged command when ``code`` is the one given to this chat and user and has not expired (used
        once); None otherwise (a wrong code also drops the staged command)."""
        with self._lock:
            got = self._pending.pop((chat_id, user_id), None)
        if got is None or got[1].expires_s <= now_s or not hmac.compare_digest(got[0], code.strip().lower()):
            return None
        return got[1]


class InitDataError(ValueError):
    """Refused ``initData``: ``reason`` is a machine code (``malformed``, ``bad_signature``, ``expired``,
    ``no_user``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class InitData:
    user_id: int
    auth_date: int
    fields: Mapping[str, str]


def _secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def _check_string(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")


def sign_init_data(bot_token: str, fields: Mapping[str, str]) -> str:
    """``initData`` as Telegram would send it for ``fields`` (for tests and local tools)."""
    f = {k: v for k, v in fields.items() if k != "hash"}
    mac = hmac.new(_secret_key(bot_token), _check_string(f).encode(), hashlib.sha256).hexdigest()
    return urlencode({**f, "hash": mac})


def validate_init_data(raw: str, bot_token: str, *, now_s: int, max_age_s: int) -> InitData:
    """The user of a Mini App's ``initData`` when it is signed with ``bot_token`` and at most ``max_age_s``
    old; :class:`InitDataError` otherwise."""
    if not raw or len(raw) > 8192:
        raise InitDataError("malformed", "initData is empty or too long")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, max_num_fields=64)
    except ValueError:
        raise InitDataError("malformed", "initData is not a query string") from None
    fields = dict(pairs)
    if len(fields) != len(pairs) or "hash" not in fields:
        raise InitDataError("malformed", "initData needs one hash and no repeated field")
    want = hmac.new(_secret_key(bot_token), _check_string(fields).encode(), hashlib.sha256).hexdigest()
    if not bot_token or not hmac.compare_digest(want, fields["hash"].lower()):
        raise InitDataError("bad_signature", "initData is not signed with this bot's token")
    try:
        auth = int(fields.get("auth_date", ""))
    except ValueError:
        raise InitDataError("malformed", "auth_date is not a number") from None
    age = now_s - auth
    if age > max_age_s or age < -60:
        raise InitDataError("expired", f"initData is {age} s old (max {max_age_s})")
    try:
        user = json.loads(fields.get("user", ""))
        uid = user["id"]
        if not isinstance(uid, int):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InitDataError("no_user", "initData names no user") from None
    return InitData(uid, auth, fields)
