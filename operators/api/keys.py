"""API key tokens and their slow hash.

A token is ``lvb_<key id>_<secret>``: the key id is 12 lowercase hex digits (public: it names the key in listings,
logs and the audit trail), the secret 43 URL-safe base64 characters (32 random bytes). Only the Argon2id hash of the
secret is stored (``api_keys.secret_hash``); the token is shown once, when the key is created.

Verifying a hash costs tens of milliseconds by design. :class:`VerifiedCache` remembers, in memory only, which
``(key id, hash, secret)`` triples verified, as a SHA-256 digest, so a key's later requests skip Argon2; whether the
key is still valid (revoked, expired) is checked on every request from the stored row.

>>> tok = make_token(bytes.fromhex("00112233aabb"), bytes(range(32)))
>>> tok[:17], len(tok)
('lvb_00112233aabb_', 60)
>>> parse_token(tok)[0]
'00112233aabb'
>>> parse_token("lvb_nothex000000_" + "A" * 43) is None, parse_token("Bearer x") is None
(True, True)
>>> h = KeyHasher(time_cost=1, memory_cost=8, parallelism=1)
>>> stored = h.hash(parse_token(tok)[1])
>>> stored.startswith("$argon2id$"), h.verify(stored, parse_token(tok)[1]), h.verify(stored, "A" * 43)
(True, True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["TOKEN_PREFIX", "KEY_ID_PATTERN", "make_token", "parse_token", "token_hint", "is_key_id", "KeyHasher",
           "VerifiedCache"]

TOKEN_PREFIX: Final = "lvb"
#: Key ids: 12 lowercase hex digits.
KEY_ID_PATTERN: Final = r"^[0-9a-f]{12}$"
_TOKEN_RE: Final = re.compile(r"^lvb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_KEY_ID_RE: Final = re.compile(KEY_ID_PATTERN)


def make_token(key_id: bytes, secret: bytes) -> str:
    """The token of a key: ``key_id`` (6 bytes) and ``secret`` (32 bytes), both from a CSPRNG chosen by the caller."""
    if len(key_id) != 6 or len(secret) != 32:
        raise ValueError("a key id is 6 bytes and a secret 32 bytes")
    return f"{TOKEN_PREFIX}_{key_id.hex()}_{base64.urlsafe_b64encode(secret).decode().rstrip('=')}"


def parse_token(text: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed token, else ``None`` (nothing about a malformed one is echoed)."""
    if not isinstance(text, str) or len(text) != 60:
        return None
    m = _TOKEN_RE.fullmatch(text)
    return None if m is None else (m.group(1), m.group(2))


def token_hint(text: str) -> str:
    """What may be logged of a presented credential: the key id of a well-formed token, else ``""``.

    >>> token_hint("lvb_00112233aabb_" + "A" * 43), token_hint("secret-password")
    ('00112233aabb', '')
    """
    got = parse_token(text)
    return got[0] if got else ""


def is_key_id(text: str) -> bool:
    return isinstance(text, str) and _KEY_ID_RE.fullmatch(text) is not None




class KeyHasher:
    """Argon2id hashing of key secrets (argon2-cffi). Defaults: argon2-cffi's (RFC 9106 low-memory profile:
    3 passes, 64 MiB, 4 lanes); ``memory_cost`` in KiB."""

    def __init__(self, *, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4) -> None:
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)

    def hash(self, secret: str) -> str:
        return self._ph.hash(secret)

    def verify(self, stored: str, secret: str) -> bool:
        """True when ``secret`` matches the stored hash; False on a mismatch or a malformed hash."""
        try:
            return self._ph.verify(stored, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


class VerifiedCache:
    """Bounded memory of verified ``(key id, stored hash, secret)`` triples, kept as an HMAC-SHA256 under a
    per-process random ``pepper`` (so a memory dump does not hold a fast hash of any secret)."""

    def __init__(self, pepper: bytes, max_entries: int = 4096) -> None:
        if len(pepper) < 16:
            raise ValueError("the pepper must be at least 16 random bytes")
        self._pepper = pepper
        self._max = max_entries
        self._seen: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, key_id: str, stored: str, secret: str) -> bytes:
        msg = "\x1f".join((key_id, stored, secret)).encode()
        return hmac.new(self._pepper, msg, hashlib.sha256).digest()

    def seen(self, key_id: str, stored: str, secret: str) -> bool:
        d = self._digest(key_id, stored, secret)
        with self._lock:
            if d in self._seen:
                self._seen.move_to_end(d)
                return True
            return False

    def add(self, key_id: str, stored: str, secret: str) -> None:
        d = self._digest(key_id, stored, secret)
        with self._lock:
            self._seen[d] = key_id
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)

    def forget(self, key_id: str) -> None:
        with self._lock:
            for d in [d for d, k in self._seen.items() if k == key_id]:
                del self._seen[d]
