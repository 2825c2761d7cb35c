"""API key tokens and their slow hash.

A token is ``lvb_<key id>_<secret>``: the key id is 12 lowercase hex digits (public: it names the key in listings,
logs and the audit trail), the secret 43 URL-safe base64 characters (32 random bytes). Only the Argon2id hash of the
secret is stored (``api_keys.secret_hash``); the token is shown once, when the key is created.

Verifying a hash costs tens of milliseconds by design. :class:`VerifiedCache` remembers, in memory only, which
``(key id, hash, secret)`` triples verified, as a SHA-256 digest, so a key's later requests skip Argon2; whether the
key is still valid (revoked, expired) is checked on every request from the key's row. :class:`KeyRowCache` holds
those rows in memory between requests; the API drops a row the moment PostgreSQL notifies a change of it (revocation)
and uses no cached row at all while it is not listening (``connectors.postgres.api.KeyChangeListener``).

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
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "TOKEN_PREFIX",
    "KEY_ID_PATTERN",
    "make_token",
    "parse_token",
    "token_hint",
    "is_key_id",
    "KeyHasher",
    "VerifiedCache",
    "KeyRowCache",
]

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


class KeyRowCache:
    """Key rows (``api_keys``) kept in memory between requests, each at most ``ttl_s`` seconds.

    Served only while ``enabled``: the API enables it while its listener on PostgreSQL's change notifications is
    connected (a row that changes is dropped at once: :meth:`drop`), and disables it (clearing everything) when that
    connection is lost, so no cached row outlives a revocation it could not hear about. ``ttl_s`` bounds any other
    staleness. Every drop or clear bumps a generation counter: a row read from the database is stored
    (:meth:`put`) only if no change arrived since the read began (:meth:`generation` taken before it), so a
    revocation that lands while a request is reading the old row cannot be overwritten by it.

    >>> c = KeyRowCache(ttl_s=30, clock=lambda: 0.0)
    >>> c.set_enabled(True); g = c.generation(); c.put("k", "row", g), c.get("k")
    (True, 'row')
    >>> g = c.generation(); c.drop("k"); c.put("k", "stale row", g), c.get("k")
    (False, None)
    """

    def __init__(
        self, ttl_s: float = 30.0, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = float(ttl_s)
        self._max = max_entries
        self._clock = clock
        self._rows: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._gen = 0
        self._enabled = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._enabled and self.ttl_s > 0

    def set_enabled(self, on: bool) -> None:
        """Serve cached rows (``on``) or not; either way everything cached so far is dropped."""
        with self._lock:
            self._enabled = bool(on)
            self._rows.clear()
            self._gen += 1

    def generation(self) -> int:
        with self._lock:
            return self._gen

    def get(self, key_id: str) -> Any | None:
        """The cached row of ``key_id`` (None: not cached, too old, or the cache is not enabled)."""
        with self._lock:
            if not (self._enabled and self.ttl_s > 0):
                return None
            hit = self._rows.get(key_id)
            if hit is None:
                return None
            if self._clock() - hit[0] >= self.ttl_s:
                del self._rows[key_id]
                return None
            return hit[1]

    def put(self, key_id: str, row: Any, generation: int) -> bool:
        """Store ``row`` read after :meth:`generation` returned ``generation``; False (not stored) when a change or
        a clear came in between, or the cache is not enabled."""
        with self._lock:
            if not (self._enabled and self.ttl_s > 0) or generation != self._gen:
                return False
            self._rows[key_id] = (self._clock(), row)
            self._rows.move_to_end(key_id)
            while len(self._rows) > self._max:
                self._rows.popitem(last=False)
            return True

    def drop(self, key_id: str) -> None:
        """A change of ``key_id`` was notified: forget its row (and refuse rows read before now)."""
        with self._lock:
            self._rows.pop(key_id, None)
            self._gen += 1

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._gen += 1
