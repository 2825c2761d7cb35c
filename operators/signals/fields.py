"""Field extraction: cut a normalised message into labelled sections and read side, entries, targets, stop, leverage.

A *label* starts a section (``Entry``, ``Buy zone``, ``TP1``, ``Target 2:``, ``🎯``, ``SL``, ``STOP-LOSS``,
``Stop Targets:``, ``Leverage``, ``Buy @``/``Long 27000`` ...). A section runs to the next label on the same line,
and on over the following lines while they hold only numbers (``1) 0.35``, ``0.36 - 0.37``); a line with words and
no label ends it. Other labels (``Profit``, ``Period``, ``Risk``, ``Note`` ...) end a section and are ignored.
The labels of the Spanish, Portuguese, Russian, Turkish, Vietnamese, Indonesian and French channels (``Entrada``,
``Alvos``, ``Стоп``, ``Kaldıraç``, ``Cắt lỗ``, ``Area beli``, ``Objectifs`` ...) count as well, and ``T1 :`` is a
target label. A target or stop label followed by ``hit``/``done`` reports a result and holds no prices.
Inside a section, leverage tokens (``10x``), percentages, timeframes (``4H``) and enumerators (``1)``, ``(2)``,
``3rd``, ``#4``) are removed before the numbers are read (:mod:`operators.signals.numbers`).

>>> segs = sections("#BTC/USDT LONG\\nEntry: 27,000 - 27,400\\nTargets:\\n1) 27,800\\n2) 28,500\\n"
...                 "SL: 26,500 (4H close)")
>>> [(s.field, s.body.strip()) for s in segs]
[('entry', '27,000 - 27,400'), ('target', '1) 27,800\\n2) 28,500'), ('stop', '26,500 (4H close)')]
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .numbers import find_number_spans, join_space_thousands

__all__ = [
    "Section",
    "sections",
    "section_numbers",
    "find_side",
    "find_side_hint",
    "find_leverage",
    "find_margin_mode",
    "extract_entries",
    "writes_comma_language",
    "side_of_word",
    "MARKET_RE",
]

_ENUM = r"(?:\s?\#?\d{1,2}\s?[:).=\]](?!\d)|\s?\#\d{1,2}(?!\d)|\d{1,2}(?![\d.,]))?"
# "Entry 2 - 0.35", "Target 1 - 0.2090": a singular label, an enumerator and a dash before the price.
_DASH_ENUM = r"\s?\d{1,2}\s?-(?=\s?\$?\.?\d)"
# Keywords of the Spanish, Portuguese, Russian, Turkish, Vietnamese, Indonesian and French channels (see
# docs/signals.md); they end with (?!\w), since their letters are not in [a-z].
_ENTRY_WORDS = (
    r"zona\sde\s(?:entrada|compra|venta|venda)|punto\sde\sentrada|precio\sde\sentrada|pre[çc]o\sde\sentrada"
    r"|entrada|точка\sвхода|зона\sвхода|вход|giriş(?:\s(?:bölgesi|fiyatı|seviyesi|aralığı))?"
    r"|vùng\svào\slệnh|điểm\svào(?:\slệnh)?|vào\slệnh|giá\svào|area\s(?:beli|jual|entry)|harga\s(?:masuk|beli|entry)"
    r"|(?:zone|point|prix)\sd['’]\s?entrée|entrée"
)
_TARGET_WORDS = r"objetivos?|alvos?|цели|цель|тейк(?:и|-профит)?|hedefler|hedef|mục\stiêu|chốt\slời|objectifs?"
_STOP_WORDS = r"стоп(?:[\s-]?лосс)?|zarar\s?(?:kes|durdur)|cắt\slỗ|dừng\slỗ"
_LEVERAGE_WORDS = r"apalancamiento|alavancagem|плечо|kaldıraç|đòn\sbẩy|margem|маржа|levier|marge"
_OTHER_WORDS = r"riesgo|risco|риск|lưu\sý|nota|примечание|ganancia|lucro|прибыль|kâr|lợi\snhuận|risque|remarque"
# The languages above write the decimal mark as a comma: "Entrada: 2,640" is 2.64 when no number has a point.
_COMMA_LANGUAGE_RE = re.compile(
    r"(?<!\w)(?=[^\W\d_])(?:" + "|".join((_ENTRY_WORDS, _TARGET_WORDS, _STOP_WORDS, _LEVERAGE_WORDS)) + r")(?!\w)",
    re.IGNORECASE,
)


def writes_comma_language(text: str) -> bool:
    """True if ``text`` uses a label of one of the other languages (all of them write decimal commas).

    >>> writes_comma_language("Entrada: 2,640"), writes_comma_language("Entry: 2,640")
    (True, False)
    """
    return _COMMA_LANGUAGE_RE.search(text) is not None


_SIDE_WORDS = r"лонг|шорт|largo|corto|compra|venta|venda|beli|jual|achat|vente"
_LABEL_RE = re.compile(
    # every label starts at a word or at 🎯: the prefix lets the engine skip the other positions fast
    r"(?:(?<!\w)(?=[^\W\d_])|(?=🎯))"
    r"(?:(?P<entry>\bentry"
    + _DASH_ENUM
    + r"|\b(?:entry\s?(?:zones?|prices?|points?|range|targets?|area|levels?)|entries|entry"
    r"|enter(?:\s(?:at|between|around|zone|price))?|(?:buy|sell)(?:ing)?\s?(?:zone|range|area|price|levels?)"
    r"|open(?:ing)?\s?price|accumulation\s?zone)(?![a-z])"
    + _ENUM
    + r"|\b(?:"
    + _ENTRY_WORDS
    + r")(?!\w)"
    + _ENUM
    + r")"
    r"|(?P<stop>\b(?:stop[\s-]?loss(?:es)?(?:\s?targets?)?|stop[\s-]?targets?|stop(?:\s?(?:price|level))?"
    r"|s\s?/\s?l|sl|invalidation)(?![a-z])" + _ENUM + r"|\b(?:" + _STOP_WORDS + r")(?!\w)" + _ENUM + r")"
    r"|(?P<target>(?:\b(?:target|tp|take[\s-]?profit)"
    + _DASH_ENUM
    + r"|\b(?:take[\s-]?profits?(?:\s?targets?)?|profit\s?targets?|targets?|tgts?|tps?|goals?"
    r"|exit\s?targets?)(?![a-z])|🎯"
    # "T1 : 0.168", "T2 - 0.172": T and a target number before a price
    r"|\bt(?=\d{1,2}\s?[:=\-]?\s?\$?\.?\d)"
    r"|\b(?:" + _TARGET_WORDS + r")(?!\w))" + _ENUM + r")"
    r"|(?P<leverage>\b(?:leverage|lev|margin(?:\s?mode)?)(?![a-z])|\b(?:" + _LEVERAGE_WORDS + r")(?!\w))"
    r"|(?P<other>\b(?:profit|period|duration|time\s?frame|timeframe|risk(?:\s?reward)?|r\s?:\s?r|rr|note|exchange"
    r"|capital|amount|volume|position\s?size|strategy|win\s?rate|roi|pnl)(?![a-z])|\b(?:" + _OTHER_WORDS + r")(?!\w))"
    # "Buy @ 6.42", "Long 27000", "Buy below : 0.49", "Buy $WLD at market"
    # and the same in the channels' languages: "лонг от 2300", "Beli $ADA di 0.37", "compra en 1.2"
    r"|(?P<dir>\b(?:buy|sell|long|short|" + _SIDE_WORDS + r")(?!\w)(?=(?:\s?[#$][a-z0-9]{2,15})?\s?"
    r"(?:(?:at|around|between|below|above|under|over|from|от|по|desde|de|em|en|à|a|di|dari|tại|ở)(?!\w))?"
    r"\s?[:@]?\s?\$?(?:\d|\.\d|cmp\b|market\b|now\b))))",
    re.IGNORECASE,
)
_TRAIL_RE = re.compile(r"\s?[:=@\-]?")
_CONT_WORDS = re.compile(
    r"\b(?:to|and|or|cmp|market|now|below|above|under|over|between|usdt|usd|zone|from|at|around|price|level|"
    r"x|k)\b|[a-z]{1,2}\b",
    re.IGNORECASE,
)
_WORD3 = re.compile(r"[a-z]{3,}", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")
# A target label after a preposition and with a target number refers to a target ("at target 2", "after TP1").
_REFERENCE = re.compile(
    r"(?<![^\W\d_])(?:at|after|on|until|before|from|once|when|reach(?:es|ing)?)\s?\Z", re.IGNORECASE
)
_REFERENCE_WINDOW = 12  # characters before the label to look at (the longest word and a space)
_TARGET_NUMBER = re.compile(r"\s?#?\d{1,2}(?![\d.,])")
# A target or stop label followed by a word saying it was hit reports a result ("Targets hit: 142").
_TALLY = re.compile(r"\s?(?:hit|hits|done|reached|achieved|smashed|triggered)\b", re.IGNORECASE)

_LEV_TOKEN = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)?\s?x(?![a-z0-9])|(?<![\w.])x\s?\d+(?:\.\d+)?(?![\d.])", re.IGNORECASE
)
# "5%", "-3 %", and the Turkish order "%3"
_PCT = re.compile(r"[+-]?\s?(\d+(?:[.,]\d+)?)\s?%|(?<![\d.,])[+-]?%\s?(\d+(?:[.,]\d+)?)")
_TIMEFRAME = re.compile(
    r"(?<![\w.])\d+\s?(?:h|hr|hrs|hours?|m|mins?|minutes?|d|days?|w|weeks?|months?)(?![a-z0-9])", re.IGNORECASE
)
_ENUMERATOR = re.compile(
    r"(?:(?<=\s)|^)\(?\d{1,2}\)(?=\s|$)|^\s?\d{1,2}\.\s|(?<![\w.])\d{1,2}(?:st|nd|rd|th)\b|\#\d{1,2}\b",
    re.MULTILINE | re.IGNORECASE,
)
_RANGE_SEP = re.compile(r"\s*(?:-|/|~|to|and|till|until|->)\s*", re.IGNORECASE)

MARKET_RE = re.compile(
    r"\b(?:cmp|market(?:\s?price)?|current(?:\s?market)?\s?price|now"
    r"|precio\s(?:de\s)?mercado|precio\sactual|a\smercado|pre[çc]o\s(?:atual|de\smercado)|por\s?рынку|по\sрынку"
    r"|рыночн\w*|piyasa(?:\sfiyatı\w*)?|giá\s(?:hiện\stại|thị\strường)|harga\s(?:sekarang|pasar)"
    r"|prix\s(?:du\smarché|actuel)|au\smarché)(?!\w)",
    re.IGNORECASE,
)
_BELOW_RE = re.compile(
    r"\b(?:below|under|beneath|por\sdebajo\sde|debajo\sde|abaixo\sde|ниже|altında|dưới|di\sbawah|en\sdessous\sde"
    r"|sous)(?!\w)|<",
    re.IGNORECASE,
)
_ABOVE_RE = re.compile(
    r"\b(?:above|over|breakout|break\s?above|por\sencima\sde|encima\sde|acima\sde|выше|üstünde|trên|di\satas"
    r"|au[\s-]dessus\sde)(?!\w)|>",
    re.IGNORECASE,
)

# LONG/SHORT and the channels' own words for them (Spanish largo/corto, Russian лонг/шорт), not in "long term",
# "a largo plazo"; buy/sell and compra/venta (es), compra/venda (pt), покупка/продажа (ru), beli/jual (id),
# achat/vente (fr).
_STRONG_SIDE = re.compile(
    r"(?<!\w)(long|short|largo|corto|лонг|шорт)(?!\w)(?!\s?-?\s?(?:terms?|plazo|prazo)\b)"
    r"(?!\s(?:as|time|ago|while|of)\b)",
    re.IGNORECASE,
)
_WEAK_SIDE = re.compile(
    r"(?<!\w)(buy|buying|sell|selling|compra|comprar|venta|vender|venda|покупка|продажа|beli|jual|achat|vente)(?!\w)",
    re.IGNORECASE,
)
# Matched case-insensitively like the patterns above (a regex, not a set of lower-case words: "BELİ" with a Turkish
# dotted capital matches "beli" but does not lower-case to it).
_LONG_WORD_RE = re.compile(r"long|largo|лонг", re.IGNORECASE)
_BUY_WORD_RE = re.compile(r"buy|buying|compra|comprar|покупка|beli|achat", re.IGNORECASE)


def side_of_word(word: str) -> str:
    """``long`` for a long or buy word (``long``, ``лонг``, ``compra``, ``beli`` ...), else ``short``.

    >>> side_of_word("Лонг"), side_of_word("BUY"), side_of_word("venta"), side_of_word("BELİ")
    ('long', 'long', 'short', 'long')
    """
    return "long" if _LONG_WORD_RE.fullmatch(word) or _BUY_WORD_RE.fullmatch(word) else "short"


_HINT_LONG = re.compile(r"🟢|📈|\bbullish\b", re.IGNORECASE)
_HINT_SHORT = re.compile(r"🔴|📉|\bbearish\b", re.IGNORECASE)

_LEV_RANGE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?x?\s?(?:-|to|/|~)\s?(\d+(?:\.\d+)?)\s?x(?![a-z0-9])", re.IGNORECASE
)
_LEV_SINGLE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?x(?![a-z0-9])|(?<![\w.])x\s?(\d+(?:\.\d+)?)(?![\d.])", re.IGNORECASE
)
# isolated / cross and the channels' words: aislado, isolada, izole, изолированная, isolé; cruzado, cruzada, кросс,
# çapraz, croisé
_ISOLATED = r"isolated|aislad[oa]|isolad[oa]|izole|изолированн\w*|isolée?"
_CROSS = r"cross(?:ed)?|cruzad[oa]|кросс|çapraz|croisée?"
_MARGIN = re.compile(
    rf"(?<!\w)({_ISOLATED}|{_CROSS})(?:\s?margin)?(?!\w)(?=\s?[(:\-]?\s?(?:\d|x\d|$|\)|\n|leverage|lev\b))",
    re.IGNORECASE,
)
_MARGIN_LABELLED = re.compile(
    rf"(?<!\w)(?:margin(?:\s?mode)?|leverage|lev|margem|маржа|apalancamiento|alavancagem|плечо|kaldıraç|levier"
    rf"|marge)(?!\w)"
    rf"\s?[:\-]?\s?({_ISOLATED}|{_CROSS})(?!\w)",
    re.IGNORECASE,
)
_ISOLATED_RE = re.compile(_ISOLATED, re.IGNORECASE)


@dataclass
class Section:
    """A labelled part of a message: ``field`` is ``entry``, ``dir`` (``Buy @ 1.2``, ``Long 27000``), ``target``,
    ``stop``, ``leverage`` or ``other``; ``label`` the label as written; ``body`` the text it governs."""

    field: str
    label: str
    body: str
    lines: list[str] = dataclasses.field(default_factory=list)  # (the module name: ``field`` is a field here)


def _is_continuation(line: str) -> bool:
    if not _HAS_DIGIT.search(line):
        return False
    rest = _CONT_WORDS.sub(" ", _PCT.sub(" ", _TIMEFRAME.sub(" ", _LEV_TOKEN.sub(" ", line))))
    return not _WORD3.search(rest)


def sections(text: str) -> list[Section]:
    """Labelled sections of a normalised message, in order (see the module docstring)."""
    out: list[Section] = []
    current: Section | None = None
    for line in text.split("\n"):
        labels = list(_LABEL_RE.finditer(line))
        if not labels:
            if current is not None and _is_continuation(line):
                current.body += "\n" + line
            else:
                current = None
            continue
        for i, m in enumerate(labels):
            end = labels[i + 1].start() if i + 1 < len(labels) else len(line)
            start = m.end()
            t = _TRAIL_RE.match(line, start, end)
            if t is not None and m.lastgroup != "dir":
                start = t.end()
            kind = m.lastgroup or "other"
            if kind in ("target", "stop") and _TALLY.match(line, m.end(), end):
                kind = "other"  # "142 targets hit", "Stop Target Hit": a report, not prices
            elif (
                kind == "target"
                and _REFERENCE.search(line, max(0, m.start() - _REFERENCE_WINDOW), m.start())
                and (any(c.isdigit() for c in m.group(0)) or _TARGET_NUMBER.match(line, m.end(), end))
            ):
                kind = "other"  # "close 50% at target 2", "move SL after TP1": names a target, holds no price
            out.append(Section(kind, m.group(0), line[start:end]))
        current = out[-1] if out[-1].field != "other" else None
    return out


_DASH_NUMBERED = re.compile(r"^\s?(\d{1,2})\s?-\s?(?=\$?\.?\d)")


def _strip_dash_numbers(body: str) -> str:
    """A list numbered ``1 - 15.42``, ``2 - 15.70`` on its own lines (two or more, numbered 1, 2, ... in order): the
    numbers and dashes are enumerators, not a range.

    >>> _strip_dash_numbers("\\n1 - 15.42\\n2 - 15.70"), _strip_dash_numbers("\\n10 - 12")
    ('\\n15.42\\n15.70', '\\n10 - 12')
    """
    if body.count("\n") < 2:
        return body  # the list needs two lines after the label line
    lines = body.split("\n")
    found = [(i, m) for i, line in enumerate(lines) if (m := _DASH_NUMBERED.match(line))]
    if len(found) < 2 or [int(m.group(1)) for _, m in found] != list(range(1, len(found) + 1)):
        return body
    for i, m in found:
        lines[i] = lines[i][m.end() :]
    return "\n".join(lines)


def clean_body(body: str) -> tuple[str, list[float]]:
    """``body`` without leverage tokens, percentages, timeframes and enumerators; and the percentages found."""
    body = _strip_dash_numbers(body)
    pcts = [float((a or b).replace(",", ".")) for a, b in _PCT.findall(body)]
    t = _LEV_TOKEN.sub(" ", body)
    t = _PCT.sub(" ", t)
    t = _TIMEFRAME.sub(" ", t)
    t = _ENUMERATOR.sub(" ", t)
    return join_space_thousands(t), pcts


def section_numbers(body: str, *, decimal_comma: bool = False) -> list[float]:
    """Prices written in a section body, in order.

    >>> section_numbers("1) 0,0345 (+5%) 2) 0,0360 10x", decimal_comma=True)
    [0.0345, 0.036]
    """
    cleaned, _ = clean_body(body)
    return [v for _, _, v in find_number_spans(cleaned, decimal_comma=decimal_comma)]


def extract_entries(secs: list[Section], *, decimal_comma: bool = False) -> tuple[str, list[float]]:
    """``(entry_type, entries)`` from the entry sections (see :data:`operators.signals.results.EntryType`).

    >>> extract_entries([Section("entry", "Entry", "27000 - 27400")])
    ('zone', [27000.0, 27400.0])
    >>> extract_entries([Section("dir", "Buy", " below 1.23")]), extract_entries([Section("entry", "Entry", "CMP")])
    (('below', [1.23]), ('market', []))
    """
    mode: str | None = None
    entries: list[float] = []
    with_numbers: list[tuple[str, list[tuple[int, int, float]]]] = []
    for s in secs:
        cleaned, _ = clean_body(s.body)
        spans = find_number_spans(cleaned, decimal_comma=decimal_comma)
        if MARKET_RE.search(cleaned):
            mode = "market"
        elif mode is None and spans and _BELOW_RE.search(cleaned[: spans[0][0]]):
            mode = "below"
        elif mode is None and spans and _ABOVE_RE.search(cleaned[: spans[0][0]]):
            mode = "above"
        if spans:
            with_numbers.append((cleaned, spans))
            entries.extend(v for _, _, v in spans)
    if mode is not None:
        return mode, entries
    if len(with_numbers) == 1 and len(entries) == 2:
        cleaned, spans = with_numbers[0]
        between = cleaned[spans[0][1] : spans[1][0]]
        if spans[0][1] != spans[1][0] and _RANGE_SEP.fullmatch(between):
            return "zone", sorted(entries)
    return "limit", entries


def find_side(text: str) -> tuple[str | None, bool]:
    """``(side, ambiguous)`` from side words: ``long``/``short`` decide (both present: ambiguous); otherwise the
    first ``buy``/``sell`` (a spot "Buy ... Sell targets" message is a long).

    >>> find_side("SHORT #ETH"), find_side("Buy 1.2 sell 1.5"), find_side("long or short?"), find_side("hi")
    (('short', False), ('long', False), (None, True), (None, False))
    """
    strong = {"long" if _LONG_WORD_RE.fullmatch(m.group(1)) else "short" for m in _STRONG_SIDE.finditer(text)}
    if len(strong) == 2:
        return None, True
    if strong:
        return strong.pop(), False
    m = _WEAK_SIDE.search(text)
    if m:
        return ("long" if _BUY_WORD_RE.fullmatch(m.group(1)) else "short"), False
    return None, False


def find_side_hint(text: str) -> str | None:
    """Side suggested by emoji/mood words only (🟢 📈 bullish / 🔴 📉 bearish); None if none or both."""
    lo, sh = bool(_HINT_LONG.search(text)), bool(_HINT_SHORT.search(text))
    if lo == sh:
        return None
    return "long" if lo else "short"


def find_leverage(text: str, lev_secs: list[Section]) -> tuple[float | None, float | None]:
    """``(leverage, leverage_max)``: the lowest leverage named and, for a range, its top (else None).

    >>> find_leverage("Isolated (5.0X)", []), find_leverage("Leverage: 10-20x", []), find_leverage("x10", [])
    ((5.0, None), (10.0, 20.0), (10.0, None))
    """
    values: list[float] = []
    spans: list[tuple[int, int]] = []
    for m in _LEV_RANGE.finditer(text):
        values += [float(m.group(1)), float(m.group(2))]
        spans.append(m.span())
    for m in _LEV_SINGLE.finditer(text):
        if any(s <= m.start() < e for s, e in spans):
            continue
        values.append(float(m.group(1) or m.group(2)))
    for s in lev_secs:
        cleaned = _MARGIN_WORDS.sub(" ", s.body)
        if not _LEV_SINGLE.search(cleaned):
            values += [v for _, _, v in find_number_spans(cleaned)][:2]
    values = [v for v in values if 0 < v <= 1000]
    if not values:
        return None, None
    lo, hi = min(values), max(values)
    return lo, (hi if hi != lo else None)


_MARGIN_WORDS = re.compile(rf"(?<!\w)(?:{_ISOLATED}|{_CROSS}|margin|mode)(?!\w)", re.IGNORECASE)


def find_margin_mode(text: str) -> str | None:
    """``isolated``/``cross`` when named next to a leverage (``cross 20x``, ``Isolated (5X)``, ``Margin: Cross``).

    >>> find_margin_mode("Leverage: cross 20x"), find_margin_mode("golden cross soon")
    ('cross', None)
    """
    m = _MARGIN.search(text) or _MARGIN_LABELLED.search(text)
    if m is None:
        return None
    return "isolated" if _ISOLATED_RE.fullmatch(m.group(1)) else "cross"
