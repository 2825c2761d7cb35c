"""Signing and verifying :class:`~schemas.events.ControlCommand` with HMAC-SHA256.

**Canonical form** (:func:`canonical_bytes`): a JSON object holding the ``event`` tag (``"control_command"``) and
every field of the command except ``signature`` — ``id, issuer, scope, action, parameters, reason, ts, key_id,
schema_version`` — with keys sorted by code point at every level (so ``parameters`` too), no whitespace, strings as
UTF-8 (not ``\\u`` escapes, except for control characters), integers as integers and floats in msgspec's form
(shortest round-tripping digits, ``.0`` on whole numbers, exponents without ``+``: ``1.0``, ``0.00001``, ``1e-7``,
``1e16``). This is ``msgspec.json.encode(..., order="sorted")`` of that object; it is not RFC 8785 (JCS prints
``1.0`` as ``1``), so an external signer must reproduce exactly these bytes or send through ``levibot control``.

**Signature**: lowercase hex HMAC-SHA256 of the canonical bytes under the key named by ``key_id``. Because
``key_id`` is inside the signed bytes, a signature cannot be moved to another key id.

**Keys** are bytes. A key given as text (``LEVIBOT_CONTROL_KEY``) is its UTF-8 bytes, or, after a ``hex:`` prefix,
the hex-decoded bytes (:func:`parse_key`); at least :data:`MIN_KEY_BYTES` bytes. Key rotation: the verifier holds a
mapping ``key_id -> key`` with every key currently valid (the new one and the one being retired), senders switch to
the new id, and the old id is removed once no command signed with it matters any more.

>>> from schemas.events import ControlCommand
>>> cmd = ControlCommand(id="cmd-1", issuer="alice", scope="account:default", action="halt",
...                      reason="exchange outage", ts=1_700_000_000_000_000_000)
>>> canonical_bytes(cmd)[:60]
b'{"action":"halt","event":"control_command","id":"cmd-1","iss'
>>> signed = sign(cmd, b"0123456789abcdef-secret")
>>> len(signed.signature), signed.signature == signed.signature.lower()
(64, True)
>>> verify(signed, {"default": b"0123456789abcdef-secret"})
Verdict(ok=True, reason='ok', detail='')
>>> verify(cmd, {"default": b"0123456789abcdef-secret"}).reason
'unsigned'
>>> verify(signed, {"other": b"0123456789abcdef-secret"}).reason
'unknown_key'
>>> import msgspec
>>> verify(msgspec.structs.replace(signed, action="resume"), {"default": b"0123456789abcdef-secret"}).reason
'bad_signature'
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import msgspec

from schemas.events import NAME_PATTERN, ControlCommand

__all__ = [
    "SIGNATURE_REASONS",
    "MIN_KEY_BYTES",
    "Verdict",
    "canonical_bytes",
    "canonical_parameters",
    "signature_of",
    "sign",
    "verify",
    "parse_key",
    "parse_keyring",
    "keyring",
]

#: Reason codes of a failed verification (also the ``DeadLetter.error`` of a rejected command).
SIGNATURE_REASONS: Final = ("unsigned", "unknown_key", "bad_signature")
#: Shortest key accepted from configuration, bytes (HMAC-SHA256 keys should be 32 random bytes).
MIN_KEY_BYTES: Final = 16

_TAG: Final = "control_command"
_FIELDS: Final = tuple(f for f in ControlCommand.__struct_fields__ if f != "signature")
_NAME_RE: Final = re.compile(NAME_PATTERN)
_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Result of :func:`verify`: ``ok``; ``reason`` ``"ok"`` or one of :data:`SIGNATURE_REASONS`; ``detail`` text
    for a human (never contains key material)."""

    ok: bool
    reason: str
    detail: str = ""


def canonical_bytes(cmd: ControlCommand) -> bytes:
    """The bytes that are signed: every field except ``signature``, plus the event tag, as sorted compact JSON."""
    obj = {name: getattr(cmd, name) for name in _FIELDS}
    obj["event"] = _TAG
    return msgspec.json.encode(obj, order="sorted")


def canonical_parameters(parameters: Mapping[str, object]) -> bytes:
    """Sorted compact JSON of a command's ``parameters`` (the input of ``AuditEvent.parameters_digest``).

    >>> canonical_parameters({"value": 1.5, "name": "max_leverage"})
    b'{"name":"max_leverage","value":1.5}'
    """
    return msgspec.json.encode(dict(parameters), order="sorted")


def signature_of(cmd: ControlCommand, key: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of :func:`canonical_bytes` under ``key`` (the ``signature`` field is ignored)."""
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise ValueError("a signing key must be non-empty bytes")
    return hmac.new(bytes(key), canonical_bytes(cmd), hashlib.sha256).hexdigest()


def sign(cmd: ControlCommand, key: bytes, *, key_id: str | None = None) -> ControlCommand:
    """A copy of ``cmd`` signed with ``key`` (``key_id``, when given, replaces the command's before signing)."""
    if key_id is not None and key_id != cmd.key_id:
        if _NAME_RE.fullmatch(key_id) is None:
            raise ValueError(f"key_id {key_id!r} does not match {NAME_PATTERN}")
        cmd = msgspec.structs.replace(cmd, key_id=key_id)
    return msgspec.structs.replace(cmd, signature=signature_of(cmd, key))


def verify(cmd: ControlCommand, keys: Mapping[str, bytes]) -> Verdict:
    """Check ``cmd.signature`` against the key named ``cmd.key_id`` in ``keys`` (constant-time comparison).

    ``unsigned``: empty signature; ``unknown_key``: ``key_id`` not in ``keys`` (or its key is empty);
    ``bad_signature``: anything else that does not match (wrong key, any changed field, malformed hex)."""
    if not cmd.signature:
        return Verdict(False, "unsigned", "the command carries no signature")
    key = keys.get(cmd.key_id)
    if not key:
        return Verdict(False, "unknown_key", f"no verification key with id {cmd.key_id!r}")
    want = signature_of(cmd, key).encode()
    got = cmd.signature.encode("utf-8", "replace")
    if not hmac.compare_digest(want, got):
        shape = "" if _HEX_RE.fullmatch(cmd.signature) else " (not 64 lowercase hex digits)"
        return Verdict(False, "bad_signature", f"signature does not match key {cmd.key_id!r}{shape}")
    return Verdict(True, "ok")


def parse_key(text: str) -> bytes:
    """Key bytes from configuration text: ``hex:<hex digits>`` is hex-decoded, anything else is taken as its UTF-8
    bytes (surrounding whitespace is part of neither). Raises ``ValueError`` (without echoing the key) when the key is
    empty, shorter than :data:`MIN_KEY_BYTES` bytes or bad hex.

    >>> parse_key("hex:" + "ab" * 16) == bytes([0xab]) * 16
    True
    >>> parse_key("correct horse battery staple")
    b'correct horse battery staple'
    >>> parse_key("short")
    Traceback (most recent call last):
    ...
    ValueError: control key too short: 5 bytes, need at least 16
    """
    text = text.strip()
    if text.startswith("hex:"):
        try:
            key = bytes.fromhex(text[4:])
        except ValueError:
            raise ValueError("control key after 'hex:' is not valid hex") from None
    else:
        key = text.encode("utf-8")
    if not key:
        raise ValueError("control key is empty")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"control key too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}")
    return key


def parse_keyring(text: str) -> dict[str, bytes]:
    """``key_id=key`` pairs separated by commas (each key in :func:`parse_key` form; a raw-text key therefore
    cannot contain a comma — use ``hex:`` for arbitrary bytes).

    >>> sorted(parse_keyring("old=hex:" + "00" * 16 + ", new=another-sixteen-bytes"))
    ['new', 'old']
    """
    out: dict[str, bytes] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, key = part.partition("=")
        kid = kid.strip()
        if not sep or _NAME_RE.fullmatch(kid) is None:
            raise ValueError(
                f"keyring entry {kid[:64]!r}...: expected key_id=key with a key id matching {NAME_PATTERN}"
            )
        if kid in out:
            raise ValueError(f"key id {kid!r} appears twice in the keyring")
        try:
            out[kid] = parse_key(key)
        except ValueError as exc:
            raise ValueError(f"key {kid!r}: {exc}") from None
    return out


def keyring(signing_key: str, signing_key_id: str = "default", verify_keys: str = "") -> dict[str, bytes]:
    """Every key valid for verification: ``verify_keys`` (:func:`parse_keyring`) plus the signing key under
    ``signing_key_id`` (when ``signing_key`` is not empty). A key id given twice with different keys is an error.

    >>> sorted(keyring("sixteen-byte-key!", "k2", "k1=hex:" + "11" * 16))
    ['k1', 'k2']
    """
    keys = parse_keyring(verify_keys)
    if signing_key.strip():
        if _NAME_RE.fullmatch(signing_key_id) is None:
            raise ValueError(f"control key id {signing_key_id!r} does not match {NAME_PATTERN}")
        key = parse_key(signing_key)
        if keys.get(signing_key_id, key) != key:
            raise ValueError(f"key id {signing_key_id!r} has two different keys")
        keys[signing_key_id] = key
    return keys
