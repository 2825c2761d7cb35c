"""Poison bytes: a payload that is not UTF-8 is ``invalid_json`` for ``decode`` and ``decode_many``, wherever the bad
bytes sit, and no ``UnicodeError`` ever escapes the codec (it used to crash the live flow)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import DecodeError, decode, decode_many, encode
from schemas.events import Signal, Tick

TS = 1_700_000_000_000_000_000
TICK = Tick(symbol="BTCUSD", ts=TS, price=37000.5, qty=0.25, side="buy", trade_id="t-42", venue="binance")
SIGNAL = Signal(
    id="tg:-1001:7",
    source_chat="-1001",
    source_message_id=7,
    symbol="BTC-USDT",
    side="long",
    entries=[27000.0],
    targets=[28000.0],
    stop=26500.0,
    ts=TS,
    raw_text="BTC long, entry 27000",
)
TICK_RAW, SIGNAL_RAW = encode(TICK), encode(SIGNAL)

Mutation = Callable[[bytes], bytes]


def in_value(field: str, bad: bytes) -> Mutation:
    """``bad`` inserted in the middle of the string value of ``field``."""

    def mutate(raw: bytes) -> bytes:
        head = f'"{field}":"'.encode()
        i = raw.index(head) + len(head)
        j = raw.index(b'"', i)
        mid = (i + j) // 2
        return raw[:mid] + bad + raw[mid:]

    return mutate


def in_key(field: str, bad: bytes) -> Mutation:
    """``bad`` inside the name of the (known) key ``field``."""
    return lambda raw: raw.replace(
        f'"{field}":'.encode(), f'"{field[:2]}'.encode() + bad + f'{field[2:]}":'.encode(), 1
    )


def extra_field(key: bytes, value: bytes) -> Mutation:
    """An unknown field appended to the object (msgspec skips its bytes unless told otherwise)."""
    return lambda raw: raw[:-1] + b',"' + key + b'":"' + value + b'"}'


# (name, mutation) pairs applied to both a Tick and a Signal payload
CASES: list[tuple[str, Mutation]] = [
    ("stray 0xff in a string", in_value("symbol", b"\xff")),
    ("stray 0xfe in a string", in_value("side", b"\xfe")),
    ("lone continuation byte", in_value("symbol", b"\x80")),
    ("0xff in a known key", in_key("ts", b"\xff")),
    ("0xc3 in a known key", in_key("symbol", b"\xc3")),
    ("0xff in an unknown key", extra_field(b"x\xffy", b"1")),
    ("0xff in an unknown field's value", extra_field(b"note", b"a\xffb")),
    ("truncated 2-byte sequence", in_value("symbol", b"\xc3")),
    ("truncated 3-byte sequence", in_value("symbol", b"\xe2\x82")),
    ("truncated 4-byte sequence", in_value("symbol", b"\xf0\x9f\x98")),
    (
        "truncated sequence before the closing quote",
        lambda raw: raw.replace(b'"buy"', b'"buy\xe2\x82"').replace(b'"long"', b'"long\xe2\x82"'),
    ),
    ("truncated sequence in an unknown field", extra_field(b"note", b"ok\xf0\x9f")),
    ("overlong '/' (C0 AF)", in_value("symbol", b"\xc0\xaf")),
    ("overlong NUL (C0 80)", in_value("symbol", b"\xc0\x80")),
    ("overlong 3-byte (E0 80 AF)", in_value("symbol", b"\xe0\x80\xaf")),
    ("overlong 4-byte (F0 80 80 AF)", in_value("symbol", b"\xf0\x80\x80\xaf")),
    ("lone high surrogate as UTF-8 (ED A0 80)", in_value("symbol", b"\xed\xa0\x80")),
    ("lone low surrogate as UTF-8 (ED BF BF)", in_value("symbol", b"\xed\xbf\xbf")),
    ("surrogate pair as CESU-8", in_value("symbol", b"\xed\xa0\xbd\xed\xb8\x80")),
    ("surrogate in an unknown field (ED A0 80)", extra_field(b"note", b"\xed\xa0\x80")),
    ("above U+10FFFF (F4 90 80 80)", in_value("symbol", b"\xf4\x90\x80\x80")),
    ("0xf5 lead byte", in_value("symbol", b"\xf5\x80\x80\x80")),
    ("latin-1 text", in_value("symbol", "é".encode("latin-1"))),
]
SIGNAL_ONLY: list[tuple[str, Mutation]] = [
    ("0xff in free text", in_value("raw_text", b"\xff")),
    ("valid emoji then a surrogate in free text", in_value("raw_text", "✅".encode() + b"\xed\xa0\x80")),
    ("truncated sequence in free text", in_value("raw_text", b"\xe2\x9c")),
]

PAYLOADS = [pytest.param(mut(TICK_RAW), Tick, id=f"tick: {name}") for name, mut in CASES] + [
    pytest.param(mut(SIGNAL_RAW), Signal, id=f"signal: {name}") for name, mut in CASES + SIGNAL_ONLY
]


def test_the_mutations_change_the_payloads_and_break_utf8() -> None:  # guards the cases below
    for p in PAYLOADS:
        raw, _typ = p.values
        assert raw not in (TICK_RAW, SIGNAL_RAW), p.id
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")


@pytest.mark.parametrize(("raw", "event_type"), PAYLOADS)
def test_decode_rejects_non_utf8_as_invalid_json(raw: bytes, event_type: type) -> None:
    with pytest.raises(DecodeError) as info:
        decode(raw, event_type)
    assert info.value.reason == "invalid_json" and info.value.detail
    # the same bytes offered as the other event type are still invalid_json (not wrong_type or validation)
    other = Signal if event_type is Tick else Tick
    with pytest.raises(DecodeError) as info:
        decode(raw, other)
    assert info.value.reason == "invalid_json"
    # bytearray and memoryview inputs take the same path
    for view in (bytearray(raw), memoryview(raw)):
        with pytest.raises(DecodeError) as info:
            decode(view, event_type)
        assert info.value.reason == "invalid_json"


@pytest.mark.parametrize(("raw", "event_type"), PAYLOADS)
def test_decode_many_keeps_the_good_ones_around_a_poison_payload(raw: bytes, event_type: type) -> None:
    good = TICK_RAW if event_type is Tick else SIGNAL_RAW
    events, failures = decode_many([good, raw, good, None, good], event_type)
    assert events == [decode(good, event_type)] * 3
    assert [(i, e.reason) for i, e in failures] == [(1, "invalid_json"), (3, "invalid_json")]
    assert "UTF-8" in failures[0][1].detail or "malformed" in failures[0][1].detail


def test_valid_non_ascii_text_is_still_accepted() -> None:
    """The UTF-8 rule must not reject real UTF-8: emoji, Cyrillic and CJK in a signal's text, alone and in a batch
    (a non-ASCII batch is checked message by message)."""
    texts = ["TP1 hit ✅ move SL to entry", "Лонг BTC, вход 27000", "比特币 做多 🚀🚀", "\u00e9\u00e8 \U0010fffd"]
    raws = [
        encode(
            Signal(
                id=f"tg:-1001:{i}",
                source_chat="-1001",
                source_message_id=i,
                symbol="BTC-USDT",
                side="long",
                entries=[27000.0],
                ts=TS,
                raw_text=t,
            )
        )
        for i, t in enumerate(texts)
    ]
    assert all(not r.isascii() for r in raws)
    assert [decode(r, Signal).raw_text for r in raws] == texts
    events, failures = decode_many([TICK_RAW] + raws, Signal)
    assert [e.raw_text for e in events] == texts and [(i, e.reason) for i, e in failures] == [(0, "wrong_type")]
    # an unknown field holding valid UTF-8 is skipped as before
    assert decode(extra_field(b"note", "ça va 👍".encode())(TICK_RAW), Tick) == TICK


def test_str_payload_with_a_lone_surrogate_is_invalid_json() -> None:
    text = SIGNAL_RAW.decode().replace("BTC long", "BTC \ud800 long")
    with pytest.raises(DecodeError) as info:
        decode(text, Signal)
    assert info.value.reason == "invalid_json" and "surrogate" in info.value.detail
    assert decode(SIGNAL_RAW.decode(), Signal) == SIGNAL


@given(pos=st.integers(min_value=0, max_value=len(TICK_RAW)), byte=st.integers(min_value=0x80, max_value=0xFF))
def test_any_high_byte_anywhere_in_an_ascii_payload_is_invalid_json(pos: int, byte: int) -> None:
    """One byte >= 0x80 among ASCII is never UTF-8; inside a string, a key, a number or between tokens, the
    answer is always ``invalid_json`` and never an exception of another type."""
    raw = TICK_RAW[:pos] + bytes([byte]) + TICK_RAW[pos:]
    for typ in (Tick, Signal):
        with pytest.raises(DecodeError) as info:
            decode(raw, typ)
        assert info.value.reason == "invalid_json"
        _events, failures = decode_many([raw, TICK_RAW], typ)
        assert next((i, e.reason) for i, e in failures) == (0, "invalid_json")
