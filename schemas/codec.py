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

from collections.abc import Callable, Sequence
from operator import attrgetter
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
    "decode_tick_columns",
    "TICK_COLUMNS",
    "validate",
]

E = TypeVar("E", bound=Event)

#: Default largest accepted message, bytes (1 MiB, Kafka's default ``max.message.bytes`` is about that).
MAX_MESSAGE_BYTES: Final = 1 << 20

#: The fixed set of decode failure reason codes (also used as ``DeadLetter.error``).
REASONS: Final = frozenset({"oversized", "invalid_json", "validation", "unknown_schema_version", "wrong_type"})

#: Shared encoder (thread-safe, stateless). Floats are written with the shortest repr that round-trips exactly.
encoder: Final = msgspec.json.Encoder()

_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}  # event type -> its decoder (one type each)
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


def decoder(event_type: type[E]) -> msgspec.json.Decoder[E]:
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
    for i, raw in enumerate(raws):
        if type(raw) is bytes and len(raw) <= max_bytes:  # the usual case inline
            try:
                event = dec(raw)
                if not all_ascii:
                    _check_utf8(raw)
                append(event)
                continue
            except fail:
                pass
            except UnicodeError:
                pass
        res = _decode_one(raw, event_type, dec, max_bytes, all_ascii)
        if isinstance(res, DecodeError):
            bad.append((i, res))
        else:
            append(res)
    return good, bad


def _decode_one(
    raw: Any, event_type: type[E], dec: Callable[[bytes], E], max_bytes: int, all_ascii: bool
) -> E | DecodeError:
    """One payload of a poll: its event, or the :class:`DecodeError` that rejects it (what :func:`decode_many` does
    with each payload; ``all_ascii``: the whole poll is known to be ASCII)."""
    try:
        if len(raw) > max_bytes:
            return DecodeError("oversized", f"{len(raw)} bytes > limit {max_bytes}")
        event = dec(raw)
        if not all_ascii:
            _check_utf8(raw)
        return event
    except msgspec.DecodeError as exc:
        return _classify(raw, event_type, exc)
    except UnicodeError as exc:
        return _not_utf8(exc)
    except TypeError:
        if raw is None:
            return DecodeError("invalid_json", "empty payload (null message value)")
        return DecodeError("invalid_json", f"payload of type {type(raw).__name__} is not bytes")


#: The columns :func:`decode_tick_columns` returns, in this order (the fields of ``schemas.events.Tick``).
TICK_COLUMNS: Final = ("symbol", "ts", "price", "qty", "side", "trade_id", "venue", "synthetic")
_TICK_ROW: list[Any] = []  # [the decoder of the Tick fields without Tick's own checks], built at first use
_INF: Final = float("inf")


def _tick_row_decoder() -> Any:
    """A decoder of ``Tick``'s fields (the same names, types, constraints, defaults, tag and unknown-field rule)
    into a plain struct that skips ``Tick.__post_init__``: :func:`decode_tick_columns` runs those checks over the
    columns of a whole poll instead."""
    if not _TICK_ROW:
        from schemas.events import Tick

        cfg = Tick.__struct_config__
        fields = [
            (f.name, f.type) if f.default is msgspec.NODEFAULT else (f.name, f.type, f.default)
            for f in msgspec.structs.fields(Tick)
        ]
        row = msgspec.defstruct(
            "_TickRow",
            fields,
            tag=cfg.tag,
            tag_field=cfg.tag_field,
            forbid_unknown_fields=cfg.forbid_unknown_fields,
            rename=None,
            kw_only=True,
            gc=False,
        )
        _TICK_ROW.append(msgspec.json.Decoder(row))
    return _TICK_ROW[0]


def decode_tick_columns(
    raws: Sequence[Any], *, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[dict[str, list[Any]], list[int], list[tuple[int, DecodeError]]]:
    """Decode a poll of ``Tick`` payloads into columns: ``(columns, kept, failures)``.

    ``columns`` maps each name of :data:`TICK_COLUMNS` to a list of the accepted ticks' values, in input order;
    ``kept`` is the index into ``raws`` of each accepted tick; ``failures`` are ``(index, DecodeError)`` as
    :func:`decode_many` gives them. It accepts and refuses exactly what ``decode_many(raws, Tick)`` does, with the
    same errors: each payload is parsed into a plain struct of the same fields and constraints (one C call, no
    ``Tick`` object), the checks of ``Tick.__post_init__`` run once over the columns (finite price and quantity,
    the symbol and venue names once per distinct name, the trade ids by one test of their concatenation), and a
    payload that fails any of it goes through :func:`decode_many`'s own path for its exact event or error."""
    from schemas.events.base import _SEEN_NAMES, _SEEN_SYMBOLS, _name, _symbol

    dec = _tick_row_decoder().decode
    try:
        all_ascii = b"".join(raws).isascii()
    except TypeError:
        all_ascii = False
    rows: list[msgspec.Struct] = []  # the row structs (their class is built at run time), Ticks after a redo
    kept: list[int] = []
    slow: list[int] = []  # payloads for the exact path
    try:  # the usual poll, ASCII and under the size limit: one C loop, no Python frame per payload
        if not all_ascii or (raws and max(map(len, raws)) > max_bytes):
            raise ValueError
        rows = list(map(dec, raws))
        kept = list(range(len(raws)))
    except (ValueError, msgspec.DecodeError):  # some payload is not: each on its own
        rows, kept = [], []
        append, keep = rows.append, kept.append
        for i, raw in enumerate(raws):
            if type(raw) is bytes and len(raw) <= max_bytes and (all_ascii or raw.isascii()):
                try:
                    append(dec(raw))
                    keep(i)
                    continue
                except msgspec.DecodeError:
                    pass
            slow.append(i)
    cols = {name: list(map(attrgetter(name), rows)) for name in TICK_COLUMNS}
    redo: set[int] = set()  # positions in rows whose ticks fail a check of Tick.__post_init__
    if rows:
        price, qty = cols["price"], cols["qty"]
        if max(price) == _INF or max(qty) == _INF:  # > 0 and >= 0 are the decoder's; JSON has no NaN
            redo.update(r for r in range(len(rows)) if price[r] == _INF or qty[r] == _INF)
        for name, seen, check in (
            ("symbol", _SEEN_SYMBOLS, _symbol),
            ("venue", _SEEN_NAMES, lambda v: _name(v, "venue")),
        ):
            col = cols[name]
            wrong = set()
            for v in dict.fromkeys(col):
                if v not in seen:
                    try:
                        check(v)
                    except ValueError:
                        wrong.add(v)
            if wrong:
                redo.update(r for r, v in enumerate(col) if v in wrong)
        tids = cols["trade_id"]
        joined = "".join(tids)  # lengths 1..128 are the decoder's; printable ASCII without space, all at once
        if not (joined.isascii() and joined.isprintable() and " " not in joined):
            redo.update(r for r, t in enumerate(tids) if not (t.isascii() and t.isprintable() and " " not in t))
    failures: list[tuple[int, DecodeError]] = []
    if not slow and not redo:
        return cols, kept, failures
    # the rare poll with a payload off the fast path: every such payload decoded exactly as decode_many does
    from schemas.events import Tick

    tick_dec = decoder(Tick).decode
    merged: dict[int, Any] = {i: row for r, (i, row) in enumerate(zip(kept, rows, strict=True)) if r not in redo}
    for i in sorted(set(slow) | {kept[r] for r in redo}):
        res = _decode_one(raws[i], Tick, tick_dec, max_bytes, all_ascii)
        if isinstance(res, DecodeError):
            failures.append((i, res))
        else:
            merged[i] = res
    kept = sorted(merged)
    rows = [merged[i] for i in kept]
    return {name: list(map(attrgetter(name), rows)) for name in TICK_COLUMNS}, kept, failures


def validate(event: E) -> E:
    """Fully validate an in-process event (patterns and lengths too, which construction does not check) by a
    round trip through JSON; returns an equal event or raises :class:`DecodeError`. Not for the hot path."""
    return decode(encode(event), type(event), max_bytes=1 << 62)
