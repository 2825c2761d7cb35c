"""Console sessions and CSRF tokens (pure): what the ``levibot_session`` cookie holds and how it is checked.

A session is stateless and signed: ``v1.<key id>.<expiry s>.<nonce>.<mac>`` with ``mac`` = HMAC-SHA256 under the
deployment's session secret (``LEVIBOT_API_SESSION_SECRET``; shared by every replica) of the other fields. It names
the API key that logged in. Nothing else is trusted from it: the key's row (revoked, expired, scopes, tier) is read
again on every request, so revoking the key ends its sessions at once.

CSRF: every form carries a token bound to the session (HMAC of ``csrf`` and the session's nonce), compared in
constant time; the login form, before any session, uses a double-submit token (a random cookie that the form must
repeat).

>>> secret = b"s" * 32
>>> tok = issue_session(secret, "00112233aabb", now_s=1000, ttl_s=60, nonce="n1")
>>> verify_session(secret, tok, now_s=1030)
Session(key_id='00112233aabb', expires_s=1060, nonce='n1')
>>> verify_session(secret, tok, now_s=1061) is None, verify_session(b"x" * 32, tok, now_s=1030) is None
(True, True)
>>> s = verify_session(secret, tok, now_s=1030)
>>> check_csrf(secret, s, csrf_token(secret, s)), check_csrf(secret, s, "forged")
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["Session", "issue_session", "verify_session", "csrf_token", "check_csrf", "new_nonce"]

_KEY_ID: Final = re.compile(r"^[0-9a-f]{12}$")
_NONCE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires_s: int
    nonce: str


def _mac(secret: bytes, msg: str) -> str:
    d = hmac.new(secret, msg.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def issue_session(secret: bytes, key_id: str, *, now_s: int, ttl_s: int, nonce: str | None = None) -> str:
    """The cookie value of a new session of ``key_id`` valid ``ttl_s`` seconds from ``now_s``."""
    if _KEY_ID.fullmatch(key_id) is None:
        raise ValueError("key id must be 12 lowercase hex digits")
    n = nonce or new_nonce()
    if _NONCE.fullmatch(n) is None:
        raise ValueError("bad nonce")
    body = f"v1.{key_id}.{int(now_s) + int(ttl_s)}.{n}"
    return f"{body}.{_mac(secret, body)}"


def verify_session(secret: bytes, token: str | None, *, now_s: int) -> Session | None:
    """The session in ``token`` when its signature is good and it has not expired, else None."""
    if not token or len(token) > 256:
        return None
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != "v1":
        return None
    _, key_id, exp, nonce, mac = parts
    if _KEY_ID.fullmatch(key_id) is None or not exp.isdigit() or _NONCE.fullmatch(nonce) is None:
        return None
    if not hmac.compare_digest(mac, _mac(secret, ".".join(parts[:4]))):
        return None
    if int(exp) <= now_s:
        return None
    return Session(key_id, int(exp), nonce)


def csrf_token(secret: bytes, session: Session) -> str:
    """The CSRF token of every form of ``session``."""
    return _mac(secret, f"csrf.{session.key_id}.{session.nonce}")


def check_csrf(secret: bytes, session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(str(token), csrf_token(secret, session))
