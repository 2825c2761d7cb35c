"""Lifecycle phrases: follow-ups that report on an earlier signal.

Recognised (case-insensitive, on normalised text):

* ``target_hit``: ``TP1 ✅``, ``Target 2 hit``, ``Take-Profit target 3 achieved``, ``2nd target reached``;
  ``target_hit`` = the highest number reported.
* ``all_targets_hit``: ``All targets achieved``, ``all TPs hit``.
* ``entries_filled``: ``Entry 1 filled``, ``All entry targets achieved``, ``buy order triggered``, ``entered``.
* ``stop_moved`` / ``stop_to_breakeven``: ``Move SL to 27,100``, ``SL moved to entry``, ``SL to BE``,
  ``New stop loss: 1.23``, ``stop -> breakeven``.
* ``stop_hit``: ``Stop loss hit``, ``SL triggered``, ``stopped out``.
* ``cancelled``: ``Cancelled``, ``invalidated``, ``don't enter``, ``ignore this signal`` (not ``cancel if ...``).
* ``closed``: ``Close the trade``, ``closed``, ``close 50%`` (``close_fraction`` 0.5), ``close half`` (0.5),
  ``take partial profit``/``close partially`` (0.5); ``closed`` after ``candle`` or before ``below``/``above`` is a
  chart condition, not an exit.

The same events in Spanish, Portuguese, Russian, Turkish, Vietnamese, Indonesian and French wording
(``Objetivo 1 alcanzado``, ``Alvo 2 atingido``, ``стоп в безубыток``, ``Stop girişe çekildi``, ``dính SL``,
``kena SL``, ``signal annulé``; the table is in ``docs/signals.md``); short forms ``T1 ✅`` and ``🎯1 ✅``; ordinals
(``first target done``, ``вторая цель взята``); ``Entry target 1 ✅`` is Cornix's "entry filled", not a target.

``action``: ``cancel`` if cancelled; else ``close`` if stop hit, closed or all targets hit; else ``update``.

>>> detect_lifecycle("#BTC/USDT Objetivo 1 alcanzado ✅ Mover stop a entrada")
(('target_hit', 'stop_to_breakeven'), 1, None, None)

>>> detect_lifecycle("#BTC/USDT Take-Profit target 2 ✅ Profit: 45%. Move SL to entry")
(('target_hit', 'stop_to_breakeven'), 2, None, None)
>>> detect_lifecycle("ETH close 50% now"), detect_lifecycle("cancel if 4h candle closes below 1800")
((('closed',), None, None, 0.5), None)
"""

from __future__ import annotations

import re

from .numbers import parse_number
from .results import LIFECYCLE_EVENTS

__all__ = ["detect_lifecycle", "lifecycle_action"]

_HIT = (
    r"(?:hit|hits|reached|achieved|done|smashed|completed|touched|booked|secured|filled"
    r"|alcanzados?|alcanzadas?|logrados?|atingidos?|atingidas?|batidos?|alcançados?|достигнуты?|достигнута"
    r"|взяты?|взята|geldi|ulaşıldı|tamamlandı|tercapai|kena|đạt|atteints?|atteintes?|touchée?s?"
    r"|✅|🎯|💰|🔥|🚀|💸|✔)"
)
# Target words of the channels' languages: Spanish, Portuguese, Russian, Turkish, Vietnamese, French (Indonesian
# uses "target"); "T1" and "🎯1" are the short forms.
_TGT = (
    r"(?:tp|target|take[\s-]?profit(?:\s?target)?|objetivo|alvo|цель|тейк|hedef|mục\stiêu|objectif"
    r"|t(?=\s?\d)|🎯(?=\s?\d))"
)
# "first target done", "segundo objetivo", "вторая цель": an ordinal word before the target word
_ORDINALS = {
    w: i + 1
    for words in (
        "first second third fourth fifth sixth",
        "primer segundo tercer cuarto quinto sexto",
        "primero segundo tercero cuarto quinto sexto",
        "primera segunda tercera cuarta quinta sexta",
        "primeiro segundo terceiro quarto quinto sexto",
        "primeira segunda terceira quarta quinta sexta",
        "первая вторая третья четвертая пятая шестая",
        "первый второй третий четвертый пятый шестой",
        "premier deuxième troisième quatrième cinquième sixième",
    )
    for i, w in enumerate(words.split())
}
_ORD = "|".join(sorted(_ORDINALS, key=len, reverse=True))


def _ordinal(word: str) -> int:
    """The number of an ordinal the pattern matched, compared as the pattern compares (case-insensitively: "fırst"
    with a dotless i matches "first" but does not lower-case to it)."""
    return next(n for w, n in _ORDINALS.items() if re.fullmatch(w, word, re.IGNORECASE))


_BEEN = r"(?:is\s?|are\s?|was\s?|were\s?|has\s?been\s?|have\s?been\s?|got\s?|just\s?)*"
_N = r"\d+(?:[.,]\d+)*(?:\s\d{3})?"

# The patterns below start at a word (or at 🎯): this prefix lets the regex engine skip every other position fast.
_AT_WORD = r"(?:(?<!\w)(?=\w)|(?=🎯))"
_AT_LETTER = r"(?<![^\W\d_])(?=[^\W\d_])"
# Not "Entry target 1 ✅" (Cornix: an entry order filled).
_TARGET_HIT = re.compile(
    _AT_WORD + rf"(?:(?<![\w])(?<!entry\s)(?<!entry)(?:{_TGT})\s?#?\s?(\d{{1,2}})(?!\d)\s?[:!.]?\s?{_BEEN}{_HIT}"
    rf"|(?<![\d.])(\d{{1,2}})(?:st|nd|rd|th)\s?(?:target|tp|take[\s-]?profit)\s?{_BEEN}{_HIT}"
    # "Đạt mục tiêu 1": the verb first
    rf"|(?<!\w)(?:đạt|chạm)\s?(?:{_TGT})\s?(\d{{1,2}})(?!\d)"
    rf"|(?<!\w)(?P<ord>{_ORD})\s?(?:{_TGT}|goal)\s?{_BEEN}{_HIT})",
    re.IGNORECASE,
)
_ALL_TARGETS = re.compile(
    _AT_LETTER + rf"(?:\ball\s?(?:the\s?)?(?:take[\s-]?profit\s?)?(?:targets?|tps?)"
    rf"|(?<!\w)(?:todos\s?(?:los\s?|os\s?)?(?:objetivos|alvos|targets|tps)|все\s?цели|tüm\s?hedefler"
    rf"|semua\s?target|tất\s?cả\s?(?:mục\stiêu|tp)|tous\s?les\s?objectifs)(?!\w))\s?{_BEEN}{_HIT}",
    re.IGNORECASE,
)
_ENTRIES_FILLED = re.compile(
    _AT_LETTER + r"(?:(?<![a-z])(?:all\s?)?(?:entry|entries|buy\s?orders?|sell\s?orders?|limit\s?orders?|orders?)"
    r"(?:\s?(?:targets?|orders?|zone|points?|prices?))?\s?#?\s?(?:\d{1,2}\s?)?"
    + _BEEN
    + r"(?:filled|triggered|activated|executed|hit|reached|achieved|done|✅)"
    r"|\b(?:entered|position\s?opened|trade\s?(?:is\s?)?(?:active|activated|opened|triggered))\b)",
    re.IGNORECASE,
)
_STOP = r"(?:stop[\s-]?loss|stoploss|stop|sl|s/l|invalidation|стоп(?:[\s-]?лосс)?)"
_BE_WORDS = (
    r"(?:break[\s-]?even|b\.?e\.?(?![a-z])|entry(?:\s?(?:price|point|level|zone))?|entries|cost"
    r"|(?:(?:el|la|o|a)\s)?(?:pre[cç]io\sde\s|punto\sde\s|pre[çc]o\sde\s)?entrada|безубыток|вход"
    r"|điểm\svào|(?:(?:le|au)\s)?(?:point|prix)\sd['’]\s?entrée|entrée)"
)
_BE = rf"(?P<be>{_BE_WORDS})"
_TO = r"(?:(?:to|at|a|para|no|na|en|на|в|về|lên|xuống|ke|au|à)(?!\w)|@|:|=|->|→|➡)"
_FOR = r"(?:\s?(?:for|on|of|in)\s?[#$]?[a-z0-9]+(?:/[a-z]+)?)?"
# breakeven words, a price, or both; the lookahead keeps the engine from stopping at "SL to" with neither
_WHERE = rf"(?={_BE_WORDS}|\s?\(?\s?\$?\d)(?:{_BE})?\s?\(?\s?\$?(?P<n>{_N})?"
_STOP_MOVED = tuple(
    re.compile(_AT_LETTER + "(?:" + p + ")", re.IGNORECASE)
    for p in (
        rf"(?<!\w)(?:mov(?:e|ed|ing)|shift(?:ed)?|set|trail(?:ed|ing)?|adjust(?:ed)?|rais(?:e|ed)|lower(?:ed)?"
        rf"|updat(?:e|ed)|chang(?:e|ed)|bring|put|mover|movemos|mueve|movido|mova|movam|subir|subimos|sube"
        rf"|переносим|перенесли|переставляем|двигаем|dời|kéo|pindahkan|pindah|naikkan|geser)"
        rf"\s?(?:the\s?|your\s?|our\s?|el\s?|o\s?)?{_STOP}{_FOR}\s?{_TO}?\s?{_WHERE}",
        rf"(?<!\w)(?:new|nuevo|novo|новый|nouveau)\s?{_STOP}{_FOR}\s?(?:is\s?|at\s?|:|=|@|->)?\s?{_WHERE}",
        rf"(?<![a-z]){_STOP}\s?(?:is\s?|has\s?been\s?)?(?:now\s?)?"
        rf"(?:moved|shifted|updated|changed|trailed|raised|lowered|movido|перенесли|переносим|переставили|pindah"
        rf"|dipindah(?:kan)?|geser|digeser)?\s?"
        rf"(?:(?:to|now\s?at|a|para|no|na|на|в|về|ke|au|à)(?!\w)|->|→|➡)\s?{_WHERE}",
        # "stop at entry", "stop at breakeven" (a price after "at" alone may just restate the stop)
        rf"(?<![a-z]){_STOP}\s?(?:at|@)\s?{_BE}(?P<n>)",
        # Turkish: the place (dative) before the verb, "Stop girişe çekildi", "Stop 0,0015 seviyesine çekildi"
        rf"(?<!\w){_STOP}\s?(?:(?P<be>girişe|giriş\s?seviyesine|maliyete)"
        rf"|(?P<n>{_N})\s?(?:seviyesine|['’]?[ey]e|['’]?[ay]a))\s?(?:çek|taşı)\w*",
    )
)
_STOP_HIT = re.compile(
    _AT_LETTER + rf"(?:(?<![a-z]){_STOP}(?:\s?targets?)?\s?{_BEEN}"
    rf"(?:hit|triggered|reached|taken|touched|touché|tocado|alcanzado|atingido"
    rf"|acionado|сработал|oldu|❌|🛑)|\bstopped\s?out\b"
    rf"|(?<!\w)(?:stopad[oa]s?|выбило\s?(?:по\s?)?стоп\w*|dính\s?sl|kena\s?(?:sl|stop(?:\s?loss)?))(?!\w))",
    re.IGNORECASE,
)
_CANCELLED = re.compile(
    _AT_LETTER + r"\b(?:cancel(?:l?ed|ling|ing)?|invalidated|void(?:ed)?|not\s?valid(?:\s?anymore)?"
    r"|don'?t\s?(?:enter|open)"
    r"|do\s?not\s?(?:enter|open)|ignore\s?(?:this|the|previous|that|above)"
    r"|cancelad[oa]s?|anulad[oa]s?|отмена|отменен[аоы]?|отменяем|iptal|hủy|dibatalkan|batal|annulée?s?)(?!\w)"
    r"(?!\s?(?:the\s?)?(?:trade\s?|signal\s?|order\s?|setup\s?|idea\s?)?(?:if|when|below|above|on|in\s?case)\b)",
    re.IGNORECASE,
)
# Closing words of the channels' languages (close / closed); a closing or profit-taking verb before a share ("cerramos
# el 50%", "realizem 50%", "booked 50%", "amankan profit 50%", "took profit on half") is a partial close.
_CLOSE_WORDS = (
    r"cerrad[oa]s?|cerramos|encerrad[oa]s?|fechad[oa]s?|fechamos|закрываем|закрыли|закрыт[аоы]?"
    r"|kapatıldı|kapattık|kapatın|đóng\s?lệnh|tutup\s?posisi|ditutup|clôturée?s?|fermée?s?"
    r"|(?:fech(?:em|ar|e)|cerr(?:ar|emos)|cierr(?:en|a)|clôtur(?:ez|er|ons))\s?(?:a\s|la\s|el\s|o\s)?"
    r"(?:opera[çc][ãa]o|operaci[óo]n|posi[çc][ãa]o|posici[óo]n|position|trade)"
)
_CLOSED = re.compile(
    _AT_LETTER + r"(?:(?<!\w)(?:realiz(?:ar|em|e|amos)|cerrar|cerramos|cierren|fechar|fechem|закрыть|закрываем|kapat"
    r"|đóng(?:\s?lệnh)?|tutup|book(?:ed|ing)?|secur(?:e|ed|ing)|t(?:ook|aking)\s?profits?|amankan(?:\s?profit)?"
    r"|clôturer|clôturez|sécuris(?:e|er|ons|ez))\s?(?:on\s|of\s|el\s|la\s|o\s|a\s)?"
    r"(?:(?P<pct2>\d+(?:[.,]\d+)?)\s?%|(?P<half3>half|la\smitad|a\smetade|metade|la\smoitié|moitié|половин[уа]))"
    r"|(?<!\w)(?:" + _CLOSE_WORDS + r")(?!\w)"
    r"|\b(?:clos(?:e|ing)|exit(?:ing)?)\s?(?:the\s?|this\s?|our\s?|your\s?|all\s?|a\s?)?"
    r"(?:[#$][a-z0-9]{2,15}(?:/[a-z]{3,5})?\s?)?"
    r"(?:(?P<pct>\d+(?:[.,]\d+)?)\s?%|(?P<half>half|partial(?:ly)?)|trade|position|signal|it\b|now|manually|here"
    r"|early|rest|remaining|in\s?(?:profit|loss)|at\s?(?:entry|breakeven|market|cmp|profit|loss|\$?\d)|\$?\d)"
    r"|(?<!candle\s)(?<!candles\s)\b(?:closed|exited)\b(?!\s?(?:below|above|under|over)\b)"
    r"|\b(?:take|book|secure)\s?(?P<half2>partial|some)\s?profits?)",
    re.IGNORECASE,
)


def detect_lifecycle(
    text: str, *, decimal_comma: bool = False
) -> tuple[tuple[str, ...], int | None, float | None, float | None] | None:
    """``(events, target_hit, stop, close_fraction)`` for a lifecycle message, None if no phrase matches."""
    events: set[str] = set()
    target_hit: int | None = None
    stop: float | None = None
    fraction: float | None = None
    for m in _TARGET_HIT.finditer(text):
        n = _ordinal(m.group("ord")) if m.group("ord") else int(m.group(1) or m.group(2) or m.group(3))
        if n >= 1:
            events.add("target_hit")
            target_hit = max(target_hit or 0, n)
    if _ALL_TARGETS.search(text):
        events.add("all_targets_hit")
    if _ENTRIES_FILLED.search(text):
        events.add("entries_filled")
    for m in (m for rx in _STOP_MOVED for m in rx.finditer(text)):
        if m.group("be"):
            events.add("stop_to_breakeven")
        if m.group("n"):
            v = parse_number(m.group("n"), decimal_comma=decimal_comma)
            if v is not None and v > 0:
                events.add("stop_moved")
                stop = v
    if _STOP_HIT.search(text):
        events.add("stop_hit")
    if _CANCELLED.search(text):
        events.add("cancelled")
    for m in _CLOSED.finditer(text):
        events.add("closed")
        pct = m.group("pct") or m.group("pct2")
        if pct:
            p = float(pct.replace(",", ".")) / 100.0
            if 0.0 < p < 1.0:
                fraction = p
        elif m.group("half") or m.group("half2") or m.group("half3"):
            fraction = 0.5
    if not events:
        return None
    ordered = tuple(e for e in LIFECYCLE_EVENTS if e in events)
    return ordered, target_hit, stop, fraction


def lifecycle_action(events: tuple[str, ...]) -> str:
    """``cancel``, ``close`` or ``update`` for a set of lifecycle events (see the module docstring).

    >>> lifecycle_action(("target_hit",)), lifecycle_action(("stop_hit",)), lifecycle_action(("cancelled",))
    ('update', 'close', 'cancel')
    """
    if "cancelled" in events:
        return "cancel"
    if {"stop_hit", "closed", "all_targets_hit"} & set(events):
        return "close"
    return "update"
