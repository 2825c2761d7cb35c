"""JSON encoding and validated decoding of events — the hot path of every Kafka consumer.

Every failure is a :class:`DecodeError` with one reason code from :data:`REASONS`:

``oversized``
    the payload is larger than ``max_bytes`` (default :data:`MAX_MESSAGE_BYTES`, 1 MiB); not parsed at all.
``invalid_json``
    not JSON (syntax error, empty, or JSON extensions such as ``NaN``/``Infinity`` literals), or not UTF-8
    anywhere in the payload: a stray byte inside a string, a key or the value of an unknown field, a truncated
    multi-byte sequence, an overlong encoding, a UTF-16 surrogate encoded as UTF-8 (``ED A0 80``), or a ``str``
    payload holding a lone surrogate. A payload that is not UTF-8 is not JSON (RFC 8259 section 8.1), so it is
    rejected even where msgspec would skip the bad bytes (unknown fields); no ``UnicodeError`` ever escapes.
``wrong_type``
    valid JSON but not this event type: the top level is not an object, or its ``event`` tag names another type.
``unknown_schema_version``
    ``schema_version`` is an integer above the type's ``SCHEMA_VERSION`` (a newer producer). A *missing*
    ``schema_version`` means version 1; zero, negative or non-integer versions are ``validation`` errors.
``validation``
    types, ranges, patterns, lengths, finiteness (``1e999`` overflows to ``inf`` and is rejected) or cross-field
    invariants failed.

Successful decoding is one C call per message (``msgspec`` validates while parsing, and the finiteness checks
live in ``__post_init__``); classification of failures happens on the slow path only.

>>> from schemas.events import Tick
>>> raw = encode(Tick(symbol="BTCUSD", ts=1_700_000_000_000_000_000, price=1.5, qty=2.0, side="sell",
...                   trade_id="t1", venue="x"))
>>> decode(raw, Tick).price
1.5
>>> try:
...     decode(b'{"symbol": "BTCUSD"', Tick)
... except DecodeError as e:
...     e.reason
'invalid_json'
>>> try:
...     decode(raw.replace(b'"t1"', b'"t\\xff1"'), Tick)
... except DecodeError as e:
...     e.reason
'invalid_json'

Cost of the UTF-8 rule on the hot path: :func:`decode_many` checks a whole poll with one ``isascii()`` over the
joined payloads (tens of ns per message); only a batch holding non-ASCII bytes is checked message by message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeVar

import msgspec

from schemas.events import Event

__all__ = [
    "MAX_MESSAGE_BYTES",
    "REASONS",
    "DecodeError",
    "encoder",
    "encode",
    "decoder",
    "decode",
    "decode_many",
    "validate",
]

E = TypeVar("E", bound=Event)

#: Default largest accepted message, bytes (1 MiB, Kafka's default ``max.message.bytes`` is about that).
MAX_MESSAGE_BYTES: Final = 1 << 20

#: The fixed set of decode failure reason codes (also used as ``DeadLetter.error``).
REASONS: Final = frozenset({"oversized", "invalid_json", "validation", "unknown_schema_version", "wrong_type"})

#: Shared encoder (thread-safe, stateless). Floats are written with the shortest repr that round-trips exactly.
encoder: Final = msgspec.json.Encoder()

_DECODERS: dict[type, msgspec.json.Decoder] = {}
# Untyped decoder for classifying failures: floats stay text, so 1e999 (valid JSON syntax, out of float range)
# parses here and is reported as "validation", while NaN/Infinity literals (not JSON) stay "invalid_json".
_UNTYPED: Final = msgspec.json.Decoder(float_hook=str)


class DecodeError(ValueError):
    """A rejected payload: ``reason`` is one of :data:`REASONS`, ``detail`` human-readable text."""

    __slots__ = ("reason", "detail")

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown decode reason {reason!r}; expected one of {sorted(REASONS)}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (Bytewax state, multiprocessing)
        return (DecodeError, (self.reason, self.detail))


def encode(event: Event) -> bytes:
    """JSON bytes of ``event`` (with its ``event`` tag). Lossless: ``decode(encode(e), type(e)) == e``."""
    return encoder.encode(event)


def decoder(event_type: type[E]) -> msgspec.json.Decoder:
    """The cached, typed ``msgspec`` decoder for ``event_type``."""
    dec = _DECODERS.get(event_type)
    if dec is None:
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise TypeError(f"{event_type!r} is not an event type from schemas.events")
        dec = _DECODERS[event_type] = msgspec.json.Decoder(event_type)
    return dec


def _not_utf8(exc: UnicodeError) -> DecodeError:
    """The :class:`DecodeError` for a payload that is not UTF-8 (or a ``str`` holding a lone surrogate)."""
    what = "a lone surrogate in the text" if isinstance(exc, UnicodeEncodeError) else "not valid UTF-8"
    reason = getattr(exc, "reason", "") or str(exc)
    return DecodeError("invalid_json", f"{what}: {reason}")


def _check_utf8(raw: Any) -> None:
    """Raise ``UnicodeDecodeError`` unless the bytes of ``raw`` are UTF-8 (fast for ASCII; ``str`` passes)."""
    if isinstance(raw, str):
        return  # msgspec encodes it itself; a lone surrogate raises UnicodeEncodeError there
    b = raw.tobytes() if isinstance(raw, memoryview) else raw
    if not b.isascii():
        b.decode("utf-8")  # strict: rejects overlong forms, encoded surrogates and truncated sequences


def _classify(raw: Any, event_type: type[Event], exc: msgspec.DecodeError) -> DecodeError:
    """Turn a msgspec failure into a :class:`DecodeError` with the right reason (slow path)."""
    detail = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return DecodeError("invalid_json", detail or "not JSON")
    # msgspec validates while parsing, so the document may still be malformed further on: parse it untyped.
    try:
        obj = _UNTYPED.decode(raw)
        _check_utf8(raw)
    except msgspec.DecodeError as exc2:
        return DecodeError("invalid_json", str(exc2))
    except UnicodeError as exc2:
        return _not_utf8(exc2)
    if not isinstance(obj, dict):
        return DecodeError("wrong_type", f"expected a JSON object for {event_type.__name__}, got {type(obj).__name__}")
    cfg = event_type.__struct_config__
    tag = obj.get(cfg.tag_field) if cfg.tag_field else None
    if tag is not None and tag != cfg.tag:
        return DecodeError("wrong_type", f"payload is a {tag!r} event, expected {cfg.tag!r} ({event_type.__name__})")
    version = obj.get("schema_version")
    if type(version) is int and version > event_type.SCHEMA_VERSION:
        return DecodeError(
            "unknown_schema_version",
            f"{event_type.__name__} schema_version {version} is newer than supported {event_type.SCHEMA_VERSION}",
        )
    return DecodeError("validation", detail)


def decode(raw: bytes | bytearray | memoryview | str, event_type: type[E], *, max_bytes: int = MAX_MESSAGE_BYTES) -> E:
    """Decode and validate one JSON payload as ``event_type``; raise :class:`DecodeError` on any failure.

    ``max_bytes`` is the size limit in bytes (``str`` input is measured in characters).
    """
    if raw is None:
        raise DecodeError("invalid_json", "empty payload (null message value)")
    if len(raw) > max_bytes:
        raise DecodeError("oversized", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        event = decoder(event_type).decode(raw)
        _check_utf8(raw)  # msgspec skips unknown fields without looking at their bytes
        return event
    except msgspec.DecodeError as exc:
        raise _classify(raw, event_type, exc) from None
    except UnicodeError as exc:  # msgspec raises UnicodeDecodeError for bad bytes inside some strings
        raise _not_utf8(exc) from None


def decode_many(
    raws: Sequence[bytes | None], event_type: type[E], *, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[list[E], list[tuple[int, DecodeError]]]:
    """Decode a batch (e.g. one Kafka poll). Returns ``(events, failures)``: the good events in input order, and
    ``(index into raws, DecodeError)`` for every rejected payload. Never raises for bad payloads."""
    dec = decoder(event_type).decode
    good: list[E] = []
    bad: list[tuple[int, DecodeError]] = []
    append = good.append
    fail = msgspec.DecodeError
    try:  # one pass over the whole poll: an all-ASCII batch (the usual case) needs no check per message
        all_ascii = b"".join(raws).isascii()  # type: ignore[arg-type]
    except TypeError:  # a None (or a non-bytes value) in the batch
        all_ascii = False
    check = _check_utf8
    for i, raw in enumerate(raws):
        try:
            if len(raw) > max_bytes:  # type: ignore[arg-type]
                bad.append((i, DecodeError("oversized", f"{len(raw)} bytes > limit {max_bytes}")))  # type: ignore[arg-type]
                continue
            event = dec(raw)
            if not all_ascii:
                check(raw)
            append(event)
        except fail as exc:
            bad.append((i, _classify(raw, event_type, exc)))
        except UnicodeError as exc:
            bad.append((i, _not_utf8(exc)))
        except TypeError:
            if raw is None:
                bad.append((i, DecodeError("invalid_json", "empty payload (null message value)")))
            else:
                bad.append((i, DecodeError("invalid_json", f"payload of type {type(raw).__name__} is not bytes")))
    return good, bad


def validate(event: E) -> E:
    """Fully validate an in-process event (patterns and lengths too, which construction does not check) by a
    round trip through JSON; returns an equal event or raises :class:`DecodeError`. Not for the hot path."""
    return decode(encode(event), type(event), max_bytes=1 << 62)
