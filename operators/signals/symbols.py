"""Symbol detection and the normal form ``BASE-QUOTE``.

Normal form: upper-case base and quote joined by ``-`` (``BTC-USDT``, ``1000PEPE-USDT``, ``ETH-BTC``), valid under
``schemas.events.SYMBOL_PATTERN``. A symbol written without a quote (``#SOL``, ``$SOL``, ``SOL LONG``) gets the
default quote ``USDT`` (the perpetual-futures quote these channels trade); ``PERP`` and a TradingView ``.P`` suffix
mean the USDT perpetual. The venue's own spelling is ``base + quote`` (:func:`venue_symbol`).

Forms recognised, strongest first (a message naming two different instruments in these forms is ``ambiguous``):

* pairs ``BTC/USDT``, ``Lit/Usdt``, ``BTC-USDT``, ``#ETH USDT``, ``#ETH/BTC``; glued ``BTCUSDT``, ``1000PEPEUSDT``,
  ``BTCUSDT.P``; hashtags ``#BTC``; cashtags ``$SOL``; labels ``Coin: LINK``, ``Pair: ARB/USDT``, ``Pair: BTCUSDT``;
  a base starts with a letter, a multiplier of 3+ digits (``1000PEPE``) or 1-2 digits before 3 letters (``1INCH``);
* only when none of those occurs: an upper-case ticker right before or after a side word (``SOL LONG``,
  ``Short ETH``), or a ticker in any case that opens the message before a side word (``eth long``).

>>> normalize_symbol("#btc", "usdt"), normalize_symbol("1000pepe"), normalize_symbol("ETH", "PERP")
('BTC-USDT', '1000PEPE-USDT', 'ETH-USDT')
>>> [find_symbols(t) for t in ("#BTC/USDT long", "Lit/Usdt", "#ETH USDT", "$SOL 🚀", "BTCUSDT.P short", "SOL LONG")]
[['BTC-USDT'], ['LIT-USDT'], ['ETH-USDT'], ['SOL-USDT'], ['BTC-USDT'], ['SOL-USDT']]
>>> find_symbols("#BTC/USDT and #ETH/USDT")
['BTC-USDT', 'ETH-USDT']
>>> [find_symbols(t) for t in ("#1INCH/USDT", "Pair: BTCUSDT", "#GMT/USDT", "#GMT")]
[['1INCH-USDT'], ['BTC-USDT'], ['GMT-USDT'], []]
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_QUOTE", "QUOTES", "normalize_symbol", "find_symbols", "venue_symbol", "split_symbol"]

DEFAULT_QUOTE = "USDT"
#: Quote currencies recognised after a separator (``BTC/USDT``, ``ETH/BTC``).
QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY", "PERP")
#: Quotes recognised glued to the base (``BTCUSDT``): stablecoins only (``WBTC`` is not ``W/BTC``).
_GLUED_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD")

#: Words that look like tickers in hashtags/cashtags/side phrases but are not instruments.
STOPWORDS = frozenset(
    """LONG SHORT BUY SELL SPOT FUTURES FUTURE FUTURESSIGNAL SIGNAL SIGNALS VIP FREE UPDATE UPDATES BINANCE BYBIT OKX
    KUCOIN BITGET MEXC GATE GATEIO HUOBI HTX BINGX NEW ALERT SCALP SCALPING SWING TRADE TRADING PUMP CRYPTO TP SL ENTRY
    ENTRIES TARGET TARGETS STOP STOPLOSS DCA MARGIN CROSS ISOLATED LEVERAGE LEV BREAKING NEWS PREMIUM RESULT RESULTS
    PROFIT PROFITS CMP NOW SETUP CALL CALLS ALTCOIN ALTCOINS ALTS USDT USDC BUSD USD TUSD FDUSD EUR PERP MID HIGH LOW
    RISK NOTE ZONE AND THE FOR WITH MARKET PRICE DONE HIT CLOSED CLOSE CANCEL CANCELLED CANCELED OPEN ORDER ORDERS
    ACTIVE POSITION IMPORTANT ATTENTION TG TA NFA DYOR SIGNALALERT GEM GEMS TODAY TRADES BULLISH BEARISH MOON AT OR
    ALL IN TO OF ON IS IT BE BE AM PM UTC GMT""".split()
)

_Q = "|".join(QUOTES)
_GQ = "|".join(_GLUED_QUOTES)
# A base: letters/digits with at least one letter; a leading number either a multiplier prefix (1000PEPE) or one
# or two digits before at least three letters (1INCH).
_BASE = r"(?:\d{3,}[A-Za-z][A-Za-z0-9]{1,16}|\d{1,2}[A-Za-z]{3}[A-Za-z0-9]{0,14}|[A-Za-z][A-Za-z0-9]{0,19})"
_PAIR_RE = re.compile(rf"(?<![^\W_])[#$]?({_BASE})\s?[/\-]\s?({_Q})(?![^\W_])", re.IGNORECASE)
_GLUED_RE = re.compile(rf"(?<![^\W_])[#$]?({_BASE}?)({_GQ})(?:\.P|PERP)?(?![^\W_])", re.IGNORECASE)
_HASH_QUOTE_RE = re.compile(rf"[#$]({_BASE})\s({_Q})(?![^\W_])", re.IGNORECASE)
_TAG_RE = re.compile(rf"[#$]({_BASE})(?![^\W_]|/)")
_LABEL_RE = re.compile(
    rf"\b(?:coin|pair|symbol|asset|ticker|token|currency|instrument|moneda|moeda|par|монета|пара|koin)"
    rf"\s?[:=\-]\s?[#$]?({_BASE})(?:\s?[/\-]\s?({_Q}))?"
    rf"(?![^\W_])",
    re.IGNORECASE,
)
_SIDE = r"(?:long|short|buy|sell)"
_BARE_BEFORE_RE = re.compile(rf"(?<![^\W_]|[#$])([A-Z][A-Z0-9]{{1,9}})\s?[:(\-]?\s?(?i:{_SIDE})(?![^\W\d_])")
_LEADING_RE = re.compile(rf"\A\s?([A-Za-z][A-Za-z0-9]{{1,9}})\s?[:(\-]?\s?(?i:{_SIDE})(?![^\W\d_])")
_BARE_AFTER_RE = re.compile(rf"(?<![^\W\d_])(?i:{_SIDE})\s?[:\-]?\s?([A-Z][A-Z0-9]{{1,9}})(?![^\W_]|/)")


def normalize_symbol(base: str, quote: str | None = None) -> str:
    """``BASE-QUOTE`` in upper case; ``quote`` None or ``PERP`` means :data:`DEFAULT_QUOTE`; ``#``/``$`` dropped."""
    b = base.strip().lstrip("#$").upper()
    q = (quote or DEFAULT_QUOTE).strip().upper()
    if q == "PERP":
        q = DEFAULT_QUOTE
    return f"{b}-{q}"


def venue_symbol(symbol: str) -> str:
    """Exchange spelling of a normal-form symbol: ``BTC-USDT`` -> ``BTCUSDT``."""
    return symbol.replace("-", "")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``("BTC", "USDT")`` from ``"BTC-USDT"``."""
    base, _, quote = symbol.partition("-")
    return base, quote


def _ok(base: str) -> bool:
    b = base.upper()
    # ASCII only: the case-insensitive patterns also match "İ", "ı", "ſ" and the Kelvin sign; "LİNK" is no symbol
    return 1 <= len(b) <= 20 and b.isascii() and b not in STOPWORDS and not b.isdigit()


#: Stop words that still cannot be the base of an explicit pair: quotes and signal vocabulary (``GMT/USDT`` is an
#: instrument although ``GMT`` alone is a time zone).
_PAIR_STOPWORDS = frozenset(
    "USDT USDC BUSD USD TUSD FDUSD EUR PERP LONG SHORT BUY SELL TP SL ENTRY STOP TARGET".split()
)


def _ok_pair(base: str) -> bool:
    b = base.upper()
    return 1 <= len(b) <= 20 and b.isascii() and b not in _PAIR_STOPWORDS and not b.isdigit()


def _labelled(base: str, quote: str | None) -> str | None:
    """``Pair: BTCUSDT`` names BTC-USDT: a labelled base without a separate quote may end in a glued quote."""
    if quote is None:
        upper = base.upper()
        glued = next((q for q in _GLUED_QUOTES if upper.endswith(q) and len(upper) > len(q) + 1), None)
        if glued:
            return _glued(base[: -len(glued)], glued)
    return normalize_symbol(base, quote) if _ok(base) else None


def _glued(tok: str, quote: str) -> str | None:
    return normalize_symbol(tok, quote) if len(tok) >= 2 and _ok(tok) else None


def find_symbols(text: str) -> list[str]:
    """Distinct instruments named in ``text`` (normal form, in order of first appearance); see the module rules.

    Only the strongest form class found is used: explicit pairs/hashtags/cashtags/labels, else bare tickers next to a
    side word.
    """
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []

    def add(pos: int, end: int, sym: str | None) -> None:
        if sym is None:
            return
        if any(s <= pos < e or s < end <= e for s, e in taken):
            return
        taken.append((pos, end))
        found.append((pos, sym))

    for m in _LABEL_RE.finditer(text):
        add(m.start(1), m.end(), _labelled(m.group(1), m.group(2)))
    for m in _PAIR_RE.finditer(text):
        if _ok_pair(m.group(1)):
            add(m.start(), m.end(), normalize_symbol(m.group(1), m.group(2)))
    for m in _HASH_QUOTE_RE.finditer(text):
        if _ok_pair(m.group(1)):
            add(m.start(), m.end(), normalize_symbol(m.group(1), m.group(2)))
    for m in _GLUED_RE.finditer(text):
        add(m.start(), m.end(), _glued(m.group(1), m.group(2)))
    for m in _TAG_RE.finditer(text):
        tag = m.group(1)
        upper = tag.upper()
        glued = next((q for q in _GLUED_QUOTES if upper.endswith(q) and len(upper) > len(q)), None)
        if glued:
            add(m.start(), m.end(), _glued(tag[: -len(glued)], glued))
        elif _ok(tag):
            add(m.start(), m.end(), normalize_symbol(tag))
    if not found:
        for rx in (_BARE_BEFORE_RE, _BARE_AFTER_RE, _LEADING_RE):
            for m in rx.finditer(text):
                if _ok(m.group(1)):
                    add(m.start(1), m.end(1), normalize_symbol(m.group(1)))
    found.sort()
    out: list[str] = []
    for _, sym in found:
        if sym not in out:
            out.append(sym)
    return out
