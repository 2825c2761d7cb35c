"""Telegram signal parser (operators.signals): the labelled message set, numbers, symbols, conversion to Signal,
and property tests (round trip of generated signals in several channel formats; no exception on any text)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.edges import HOSTILE_TOKENS, hostile_text
from operators.signals import (
    REASON_CODES,
    LifecycleUpdate,
    Rejection,
    SignalDraft,
    accuracy,
    evaluate,
    find_numbers,
    find_symbols,
    normalize_symbol,
    parse_message,
    parse_number,
    signal_id,
    summarize,
    to_signal,
    venue_symbol,
)
from schemas.codec import decode, encode, validate
from schemas.events import REASON_CODE_PATTERN, SYMBOL_PATTERN, Signal
from tests.support import TEST_DATA

DATA = TEST_DATA / "telegram_messages.json"
CASES = json.loads(DATA.read_text(encoding="utf-8"))["cases"]
TS = 1_700_000_000_000_000_000
SYMBOL_RE = re.compile(SYMBOL_PATTERN)


# ---------------------------------------------------------------------------------------------------------------
# The labelled message set


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_message_parses_as_expected(case):
    assert summarize(parse_message(case["text"])) == case["expected"]


def test_message_set_size_and_mix():
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert len({c["text"] for c in CASES}) == len(CASES)
    kinds = Counter(c["category"] for c in CASES)
    assert kinds["signal"] >= 30 and kinds["lifecycle"] >= 15 and kinds["rejection"] >= 10 and kinds["chatter"] >= 8
    reasons = {c["expected"]["reason"] for c in CASES if c["expected"]["type"] == "rejection"}
    assert {
        "no_signal",
        "no_stop",
        "stop_wrong_side",
        "targets_wrong_side",
        "no_symbol",
        "no_side",
        "no_entry",
        "ambiguous",
    } <= reasons
    assert reasons <= set(REASON_CODES)
    entry_types = {c["expected"].get("entry_type", "limit") for c in CASES if c["expected"]["type"] == "signal"}
    assert entry_types == {"limit", "zone", "market", "below", "above"}


def test_accuracy_on_message_set_is_total():
    report = evaluate((c["text"], c["expected"]) for c in CASES)
    assert (report.total, report.correct, report.accuracy, report.failures) == (len(CASES), len(CASES), 1.0, [])


def test_accuracy_counts_a_wrong_expectation():
    cases = [(c["text"], c["expected"]) for c in CASES[:4]]
    wrong = dict(cases[0][1], type="lifecycle")
    report = evaluate([(cases[0][0], wrong)] + cases[1:])
    assert report.correct == 3 and report.accuracy == 0.75 and report.failures[0][0] == 0
    assert accuracy([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 3}]) == 0.5
    with pytest.raises(ValueError):
        accuracy([{}], [])


def test_expected_signals_become_valid_signal_events():
    for i, c in enumerate(CASES):
        r = parse_message(c["text"])
        if isinstance(r, SignalDraft):
            s = to_signal(
                r,
                chat_id=-100123,
                message_id=i + 1,
                version=1,
                ts_ns=TS,
                trust=0.7,
                raw_text=c["text"],
                market_price=1.0 if not r.entries else None,
            )
            assert decode(encode(validate(s)), Signal) == s
            assert SYMBOL_RE.fullmatch(s.symbol)
        elif isinstance(r, Rejection):
            assert re.fullmatch(REASON_CODE_PATTERN, r.reason) and r.message


# ---------------------------------------------------------------------------------------------------------------
# Numbers and symbols


@pytest.mark.parametrize(
    "text, value",
    [
        ("0,0345", 0.0345),
        ("27,350.5", 27350.5),
        ("27 350", 27350.0),
        ("$27,350", 27350.0),
        ("1.234,5", 1234.5),
        ("1,250,000", 1250000.0),
        ("0.001120", 0.00112),
        (".5", 0.5),
        ("27.5k", 27500.0),
        ("$0,5", 0.5),
        ("26.8K", 26800.0),
        ("1,5", 1.5),
        ("100", 100.0),
        ("25.400,50", 25400.5),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2,1.3", "10x", "5%", "TP1", "1000PEPE", "4H"])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


def test_find_numbers_lists_and_decimal_comma():
    assert find_numbers("1.2,1.3,1.4") == [1.2, 1.3, 1.4]
    assert find_numbers("0.5 - 0.6 | 0.7 / 0.8") == [0.5, 0.6, 0.7, 0.8]
    assert find_numbers("1,234") == [1234.0]
    assert find_numbers("1,234", decimal_comma=True) == [1.234]
    # a message that writes decimal commas elsewhere reads "1,250" as 1.25
    r = parse_message("#ADA/USDT LONG\nEntry 1,250\nTP 1,3\nSL 1,2")
    assert (r.entries, r.targets, r.stop) == ((1.25,), (1.3,), 1.2)


@pytest.mark.parametrize(
    "text, symbol",
    [
        ("#BTC/USDT", "BTC-USDT"),
        ("BTCUSDT", "BTC-USDT"),
        ("Lit/Usdt", "LIT-USDT"),
        ("#ETH USDT", "ETH-USDT"),
        ("$SOL", "SOL-USDT"),
        ("1000PEPE/USDT", "1000PEPE-USDT"),
        ("#1000PEPEUSDT", "1000PEPE-USDT"),
        ("BTCUSDT.P", "BTC-USDT"),
        ("ETH/BTC", "ETH-BTC"),
        ("btc-usd", "BTC-USD"),
        ("Coin: #LINK", "LINK-USDT"),
        ("Pair: ARB/USDT", "ARB-USDT"),
        ("SOL LONG", "SOL-USDT"),
        ("short AVAX", "AVAX-USDT"),
        ("#XRP", "XRP-USDT"),
        ("ETHUSDTPERP", "ETH-USDT"),
        ("#Binance #Futures #DOGE", "DOGE-USDT"),
        ("#1INCH", "1INCH-USDT"),
        ("$1INCH", "1INCH-USDT"),
        ("1INCHUSDT.P", "1INCH-USDT"),
        ("Pair: BTCUSDT", "BTC-USDT"),
        ("Moeda: #SOL/USDT", "SOL-USDT"),
        ("#GMT/USDT", "GMT-USDT"),
        ("1000SATS-PERP", "1000SATS-USDT"),
    ],
)
def test_symbol_forms(text, symbol):
    assert find_symbols(text) == [symbol]
    assert SYMBOL_RE.fullmatch(symbol)


@pytest.mark.parametrize(
    "text", ["hello world", "S/L 5", "#1 signal", "USDT", "TP/SL", "#VIP #Signal", "#1st", "#GMT", "#4H", "LONG/USDT"]
)
def test_not_symbols(text):
    assert find_symbols(text) == []


def test_symbol_normal_form_helpers():
    assert normalize_symbol("eth", "perp") == "ETH-USDT"
    assert venue_symbol("1000PEPE-USDT") == "1000PEPEUSDT"


# ---------------------------------------------------------------------------------------------------------------
# Parser details beyond the message set


def test_leverage_forms():
    base = "#BTC/USDT LONG\nEntry 100\nTP 110\nSL 95\n"
    for lev, expected in [
        ("10x", (10.0, None)),
        ("x10", (10.0, None)),
        ("Isolated (5.0X)", (5.0, None)),
        ("cross 20x", (20.0, None)),
        ("Lev 4x", (4.0, None)),
        ("Leverage: 10-20x", (10.0, 20.0)),
        ("Leverage: 10x - 20x", (10.0, 20.0)),
        ("Leverage: 7", (7.0, None)),
        ("", (None, None)),
    ]:
        r = parse_message(base + lev)
        assert (r.leverage, r.leverage_max) == expected, lev


def test_relative_stop_applied_to_mean_entry_and_at_market():
    r = parse_message("#BTC/USDT LONG\nEntry 100 - 110\nTP 120\nSL 10%")
    assert (r.entry_type, r.stop, r.stop_pct) == ("zone", 94.5, 10.0)
    m = parse_message("#BTC/USDT SHORT\nEntry: CMP\nTP 90\nStoploss: 4%")
    assert (m.entry_type, m.entries, m.stop, m.stop_pct) == ("market", (), None, 4.0)
    s = to_signal(m, chat_id=1, message_id=2, version=1, ts_ns=TS, trust=0.5, market_price=100.0)
    assert (s.entries, s.stop) == ([100.0], 104.0)
    with pytest.raises(ValueError, match="market_price"):
        to_signal(m, chat_id=1, message_id=2, version=1, ts_ns=TS, trust=0.5)


@pytest.mark.parametrize(
    "text, side",
    [
        ("#SOL/USDT LARGO", "long"),
        ("#SOL/USDT ШОРТ", "short"),
        ("VENTA #SOL/USDT", "short"),
        ("COMPRA #SOL/USDT", "long"),
        ("BELI #SOL/USDT", "long"),
        ("VENTE #SOL/USDT", "short"),
        ("#SOL/USDT compra a largo plazo", "long"),
        ("#SOL/USDT venta a corto plazo", "short"),
    ],
)
def test_side_words_of_other_languages(text, side):
    r = parse_message(text + "\nEntrada: 100\nStop: " + ("95" if side == "long" else "105"))
    assert isinstance(r, SignalDraft) and r.side == side, r


def test_dash_numbered_lists_and_ranges():
    lst = parse_message("#LINK/USDT SHORT\nEntry:\n1 - 15.42\n2 - 15.70\nTargets:\n1 - 15.05\n2 - 14.70\nSL 16.05")
    assert (lst.entry_type, lst.entries, lst.targets) == ("limit", (15.42, 15.7), (15.05, 14.7))
    # one line "10 - 12" is a zone, and a list not numbered 1, 2, ... keeps its numbers
    zone = parse_message("#LINK/USDT LONG\nEntry:\n10 - 12\nTP 14\nSL 9")
    assert (zone.entry_type, zone.entries) == ("zone", (10.0, 12.0))
    odd = parse_message("#LINK/USDT LONG\nEntry:\n3 - 4.5\n5 - 6.5\nSL 2")
    assert odd.entries == (3.0, 4.5, 5.0, 6.5)


def test_tallies_and_result_posts_are_not_prices():
    assert parse_message("142 targets hit and only 21 stopped trades this month").reason == "no_signal"
    assert parse_message("#ETH/USDT Stop Target Hit ⛔").events == ("stop_hit",)
    assert parse_message("#ETH/USDT Entry target 1 ✅").events == ("entries_filled",)


def test_follow_ups_in_other_languages():
    cases = {
        "Objetivo 2 alcanzado, cerramos el 50%": (("target_hit", "closed"), 2, None, 0.5),
        "вторая цель взята, стоп в безубыток": (("target_hit", "stop_to_breakeven"), 2, None, None),
        "Hedef 1 ✅ Stop 0,0015 seviyesine çekildi": (("target_hit", "stop_moved"), 1, 0.0015, None),
        "Đạt mục tiêu 3 ✅": (("target_hit",), 3, None, None),
        "TP1 tercapai, kena SL di sisa posisi": (("target_hit", "stop_hit"), 1, None, None),
        "Objectif 1 atteint ! Stop au point d'entrée": (("target_hit", "stop_to_breakeven"), 1, None, None),
        "took profit on half, rest rides": (("closed",), None, None, 0.5),
    }
    for text, (events, hit, stop, fraction) in cases.items():
        r = parse_message(text)
        assert isinstance(r, LifecycleUpdate), (text, r)
        assert (r.events, r.target_hit, r.stop, r.close_fraction) == (events, hit, stop, fraction), text


@pytest.mark.parametrize("odd", ["İ", "ı", "ſ", "\u212a"])
def test_case_folding_letters_never_raise_nor_make_invalid_symbols(odd):
    """Case-insensitive patterns match these letters ("fırst" matches "first", "BELİ" matches "beli") though they
    do not lower-case to the same word, and "LİNK" upper-cases to no valid symbol."""
    words = [
        "first target hit",
        "second objetivo alcanzado",
        "BELI #SOL/USDT entry 10 sl 9",
        "long",
        "short",
        "#LINK/USDT long entry 10 sl 9",
        "$sol long entry 10 sl 9",
        "Pair: LINKUSDT long entry 10 sl 9",
        "isolated 10x",
        "stop to breakeven",
        "close half",
        "KAS short entry 10 sl 11",
    ]
    for w in words:
        for ch in "iIsSkK":
            text = w.replace(ch, odd, 1)
            r = parse_message(text)
            _check_invariants(r)
            if isinstance(r, SignalDraft) and text.upper().startswith("BEL"):
                assert r.side == "long", text


def test_full_signal_with_lifecycle_wording_stays_a_signal():
    text = "#SOL/USDT LONG\nEntry 20\nTP 21 / 22\nSL 19\nAfter TP1 hit move SL to entry"
    assert isinstance(parse_message(text), SignalDraft)
    assert isinstance(parse_message("#SOL/USDT TP1 hit, move SL to entry"), LifecycleUpdate)


# ---------------------------------------------------------------------------------------------------------------
# Conversion to schemas.events.Signal


def test_signal_id_is_deterministic_and_edits_bump_version():
    text = "#ETH/USDT SHORT\nEntry 1900\nTP 1850\nSL 1950"
    edited = "#ETH/USDT SHORT\nEntry 1900\nTP 1850 / 1800\nSL 1950"
    a = to_signal(parse_message(text), chat_id=-1001, message_id=55, version=1, ts_ns=TS, trust=0.9, raw_text=text)
    b = to_signal(
        parse_message(edited), chat_id=-1001, message_id=55, version=2, ts_ns=TS + 10**9, trust=0.9, raw_text=edited
    )
    other = to_signal(parse_message(text), chat_id=-1001, message_id=56, version=1, ts_ns=TS, trust=0.9)
    assert a.id == b.id == signal_id(-1001, 55) == "tg:-1001:55" != other.id
    assert (a.version, b.version, a.targets, b.targets) == (1, 2, [1850.0], [1850.0, 1800.0])
    assert (a.kind, a.source_chat, a.source_message_id, a.trust, a.raw_text) == ("open", "-1001", 55, 0.9, text)


def test_lifecycle_updates_become_signal_updates():
    orig = to_signal(
        parse_message("#BTC/USDT LONG\nEntry 100 - 110\nTP 120\nSL 95"),
        chat_id=-7,
        message_id=1,
        version=1,
        ts_ns=TS,
        trust=0.6,
    )
    kw = dict(chat_id=-7, version=1, ts_ns=TS + 1, trust=0.6, ref=orig)
    be = to_signal(parse_message("TP1 ✅ move SL to entry"), message_id=2, **kw)
    assert (be.kind, be.ref_id, be.symbol, be.side, be.stop, be.entries) == (
        "update",
        orig.id,
        "BTC-USDT",
        "long",
        105.0,
        [],
    )
    moved = to_signal(parse_message("#BTC/USDT move stop to 101"), message_id=3, **kw)
    assert (moved.kind, moved.stop) == ("update", 101.0)
    half = to_signal(parse_message("close 50% of BTC/USDT"), message_id=4, **kw)
    assert (half.kind, half.close_fraction) == ("close", 0.5)
    cancel = to_signal(parse_message("#BTC/USDT cancelled"), message_id=5, **kw)
    assert (cancel.kind, cancel.close_fraction, cancel.stop) == ("cancel", None, None)
    with pytest.raises(ValueError):  # no symbol/side in the message and no original to take them from
        to_signal(parse_message("TP1 hit"), chat_id=-7, message_id=6, version=1, ts_ns=TS, trust=0.6)
    with pytest.raises(ValueError):  # names another instrument than the original
        to_signal(parse_message("#ETH/USDT TP1 hit"), message_id=7, **kw)
    with pytest.raises(ValueError):
        to_signal(parse_message("hello"), chat_id=-7, message_id=8, version=1, ts_ns=TS, trust=0.6)


# ---------------------------------------------------------------------------------------------------------------
# Property tests

BASES = st.sampled_from(["BTC", "ETH", "SOL", "LINK", "1000PEPE", "ARB", "INJ", "XRP", "DOGE", "APT", "OP"])


@st.composite
def well_formed(draw):
    """A valid signal: side, 1-3 entries, 1-5 targets and a stop on the right sides, prices with 0-6 decimals."""
    side = draw(st.sampled_from(["long", "short"]))
    decimals = draw(st.integers(0, 6))
    scale = 10**decimals
    n_entries = draw(st.integers(1, 3))
    n_targets = draw(st.integers(1, 5))
    # integer "ticks" well apart so formatting never merges or reorders them
    base = draw(st.integers(1000, 9_000_000)) if decimals else draw(st.integers(200, 90_000))
    step = max(1, base // 200)
    entries = [base + i * step for i in range(n_entries)]
    if side == "short":
        entries = entries[::-1]
    lo, hi = min(entries), max(entries)
    if side == "long":
        targets = [hi + (i + 1) * step for i in range(n_targets)]
        stop = lo - step
    else:
        targets = [lo - (i + 1) * step for i in range(n_targets)]
        stop = hi + step
    lev = draw(st.one_of(st.none(), st.integers(1, 125)))
    to_f = lambda t: float(f"{t / scale:.{decimals}f}")  # noqa: E731
    return dict(
        base=draw(BASES),
        side=side,
        decimals=decimals,
        entries=[to_f(e) for e in entries],
        targets=[to_f(t) for t in targets],
        stop=to_f(stop),
        leverage=lev,
    )


def _fmt(x: float, decimals: int, style: str) -> str:
    s = f"{x:,.{decimals}f}" if style == "thousands" else f"{x:.{decimals}f}"
    if style == "comma":
        s = s.replace(".", ",")
    return s


def render(sig: dict, template: int, style: str) -> str:
    d = sig["decimals"]
    f = lambda x: _fmt(x, d, style)  # noqa: E731
    sym, side = sig["base"], sig["side"]
    ent, tps, stop = [f(x) for x in sig["entries"]], [f(x) for x in sig["targets"]], f(sig["stop"])
    lev = sig["leverage"]
    if template == 0:  # Cornix
        lines = [f"#{sym}/USDT", f"Signal Type: Regular ({side.title()})"]
        if lev:
            lines.append(f"Leverage: Cross ({lev}X)")
        lines += ["Entry Targets:"] + [f"{i}) {e}" for i, e in enumerate(ent, 1)]
        lines += ["Take-Profit Targets:"] + [f"{i}) {t}" for i, t in enumerate(tps, 1)]
        lines += ["Stop Targets:", f"1) {stop}"]
        return "\n".join(lines)
    if template == 1:  # numbered labels
        lines = [f"{sym}/USDT {side.upper()}" + (f" {lev}x" if lev else "")]
        lines += [f"Entry {i}: {e}" for i, e in enumerate(ent, 1)]
        lines += [f"TP{i}: {t}" for i, t in enumerate(tps, 1)]
        return "\n".join(lines + [f"SL: {stop}"])
    if template == 2:  # one line with pipes
        return (
            f"${sym} {side} "
            + (f"x{lev} " if lev else "")
            + "| Entry "
            + " , ".join(ent)
            + " | Targets "
            + " - ".join(tps)
            + f" | Stop-loss {stop}"
        )
    # emoji style
    lines = [f"{'🟢' if side == 'long' else '🔴'} #{sym}USDT {side.upper()}"]
    lines += ["Entries: " + " ; ".join(ent)] + [f"🎯 {t}" for t in tps] + [f"❌ STOP-LOSS: {stop}"]
    if lev:
        lines.append(f"Lev {lev}x")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sig=well_formed(), template=st.integers(0, 3), style=st.sampled_from(["plain", "thousands", "comma"]))
def test_generated_signals_round_trip(sig, template, style):
    if style == "comma" and sig["decimals"] == 3 and max(sig["entries"] + sig["targets"] + [sig["stop"]]) < 1000:
        style = "plain"  # "1,234" alone is read as thousands unless the message shows decimal commas elsewhere
    text = render(sig, template, style)
    r = parse_message(text)
    assert isinstance(r, SignalDraft), (text, r)
    entries = tuple(sig["entries"])  # separated by newlines, commas or ';': discrete limit prices, not a zone
    assert (r.symbol, r.side, r.entries, r.targets, r.stop) == (
        f"{sig['base']}-USDT",
        sig["side"],
        entries,
        tuple(sig["targets"]),
        sig["stop"],
    ), text
    assert r.entry_type == "limit", text
    assert r.leverage == (float(sig["leverage"]) if sig["leverage"] else None), text


@settings(max_examples=1500, deadline=None)
@given(text=st.text(max_size=400))
def test_never_raises_on_arbitrary_text(text):
    r = parse_message(text)
    assert isinstance(r, (SignalDraft, LifecycleUpdate, Rejection))
    _check_invariants(r)


SIGNALISH = st.lists(
    st.sampled_from(
        [
            "#BTC/USDT",
            "LONG",
            "SHORT",
            "Entry",
            ":",
            "TP1",
            "Targets",
            "SL",
            "Stop",
            "10x",
            "x5",
            "-",
            "/",
            "|",
            ",",
            "\n",
            " ",
            "CMP",
            "below",
            "above",
            "0,0345",
            "27,350.5",
            "27 350",
            "1.5",
            "$",
            "🎯",
            "✅",
            "1)",
            "hit",
            "move SL to",
            "entry",
            "cancelled",
            "close 50%",
            "5%",
            "🟢",
            "🔴",
            "Leverage: 10-20x",
            "Isolated (5.0X)",
            "1000PEPE/USDT",
            "$SOL",
            "Lit/Usdt",
            "to",
            "k",
            "9",
            # the channel-corpus vocabulary (other languages, short forms, letters that case-fold oddly)
            "#1INCH",
            "Pair: BTCUSDT",
            "лонг",
            "от",
            "Вход:",
            "Стоп:",
            "Entrada:",
            "Alvos:",
            "Hedef 1",
            "Cắt lỗ:",
            "Entrée :",
            "T1 :",
            "🎯1",
            "first",
            "вторая",
            "alcanzado",
            "tercapai",
            "girişe",
            "çekildi",
            "%3",
            "2,640",
            "1 - 15.42\n2 - 15.70",
            "at target 2",
            "booked 50%",
            "Closing",
            "безубыток",
            "hủy",
            "BELİ",
            "fırst",
            "ſ",
            "İ",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(SIGNALISH, st.lists(st.one_of(SIGNALISH, st.text(max_size=8)), max_size=6).map(" ".join)))
def test_signal_like_noise_gives_consistent_results(text):
    r = parse_message(text)
    assert parse_message(text) == r  # deterministic
    _check_invariants(r)


def _check_invariants(r):
    if isinstance(r, SignalDraft):
        assert SYMBOL_RE.fullmatch(r.symbol)
        assert r.entries or r.entry_type == "market"
        assert r.stop is not None or r.stop_pct is not None
        prices = list(r.entries) + list(r.targets) + ([r.stop] if r.stop is not None else [])
        assert all(0 < p < math.inf for p in prices)
        if r.entries and r.stop is not None:
            if r.side == "long":
                assert r.stop < min(r.entries) and all(t > max(r.entries) for t in r.targets)
            else:
                assert r.stop > max(r.entries) and all(t < min(r.entries) for t in r.targets)
        assert len(r.entries) <= 10 and len(r.targets) <= 20
        if r.leverage is not None:
            assert 0 < r.leverage <= 1000
    elif isinstance(r, LifecycleUpdate):
        assert r.events and r.action in ("update", "cancel", "close")
        assert r.symbol is None or SYMBOL_RE.fullmatch(r.symbol)
    else:
        assert r.reason in REASON_CODES


# ---------------------------------------------------------------------------------------------------------------
# Cost on hostile input


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_long_messages_of_repeated_hostile_tokens_get_an_answer(token):
    """A message that repeats a token a slow parse step would choke on (quadratic or backtracking) gets an answer,
    the same twice, at 1,024 and at 65,536 characters: a hang fails on the suite's timeout. How the parse time
    grows with the length is measured in `benchmarks/edges.py` (``parser_scaling``, docs/performance.md), not
    asserted here."""
    for n in (1024, 65_536):
        text = hostile_text(token, n)
        first = parse_message(text)
        assert isinstance(first, SignalDraft | Rejection | LifecycleUpdate), (token, n, first)
        assert parse_message(text) == first
