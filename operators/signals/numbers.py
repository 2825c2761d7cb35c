"""Prices as channels write them: comma decimals, thousands separators, ``$`` signs, ``k`` suffixes.

Rules (see ``docs/signals.md``):

* ``.`` and ``,`` both present: the *last* one is the decimal mark, the other groups thousands
  (``27,350.5`` -> 27350.5, ``1.234,5`` -> 1234.5).
* only commas, in 3-digit groups after a 1-3 digit head that is not ``0`` (``27,350``, ``1,250,000``): thousands,
  unless the message uses decimal commas elsewhere (``decimal_comma=True``: some number such as ``0,0345``,
  ``1,5`` or ``1234,567`` cannot be a thousands group, and no number has a decimal point), then ``1,234`` -> 1.234.
* one comma otherwise (``0,0345``, ``1,5``): decimal mark.
* several commas that are not thousands groups (``1.2,1.3,1.4``): a list.
* a space (or no-break/thin space) between a 1-2 digit group and a 3-digit group is a thousands separator
  (``27 350`` -> 27350); a no-break/thin space also after a 3-digit group.
* ``k`` right after a number multiplies by 1000 (``27.5k`` -> 27500); a leading ``$`` is ignored.

>>> parse_number("0,0345"), parse_number("27,350.5"), parse_number("1.234,5"), parse_number("27,350")
(0.0345, 27350.5, 1234.5, 27350.0)
>>> parse_number("1,234", decimal_comma=True), parse_number("$1.2k"), parse_number("abc")
(1.234, 1200.0, None)
>>> find_numbers("Targets: 1.2,1.3,1.4 | 27 350 - $0,5")
[1.2, 1.3, 1.4, 27350.0, 0.5]
"""

from __future__ import annotations

import re

__all__ = [
    "NUMBER_RE",
    "parse_number",
    "split_number_token",
    "find_numbers",
    "find_number_spans",
    "join_space_thousands",
    "uses_decimal_comma",
    "round_price",
]

#: One number token: digits with inner ``.``/``,`` groups (or a leading ``.5``), an optional ``k`` suffix. Not
#: preceded by a letter, digit, ``_`` or ``.``; not followed by a letter, digit, ``_`` or ``%``.
NUMBER_RE = re.compile(r"(?<![A-Za-z0-9_.])\$?((?:\d+(?:[.,]\d+)*|\.\d+))(k)?(?![A-Za-z0-9_%])", re.IGNORECASE)

_THOUSANDS_COMMA = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_THOUSANDS_DOT_DECIMAL_COMMA = re.compile(r"\d{1,3}(?:\.\d{3})+,\d+")
_SIMPLE_COMMA = re.compile(r"\d+,\d+")
_DOT_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_SPACE_THOUSANDS = re.compile(
    r"(?<![\d.,])(\d{1,2}) (\d{3})(?![\d])|(?<![\d.,])(\d{1,3})[\u00a0\u202f\u2009](\d{3})(?![\d])"
)
_UNAMBIGUOUS_DECIMAL_COMMA = re.compile(r"(?<![\d.,])(?:0,\d+|\d{4,},\d+|\d+,(?:\d{1,2}|\d{4,}))(?![\d.,])")
_UNAMBIGUOUS_DECIMAL_DOT = re.compile(r"(?<![\d.,])\d+\.\d+(?![\d,])")


def round_price(x: float) -> float:
    """Round a computed price to 12 significant digits (removes float noise such as ``94.99999999999999``).

    >>> round_price(100 * (1 - 0.05)), round_price(0.1 + 0.2)
    (95.0, 0.3)
    """
    return float(f"{x:.12g}")


def uses_decimal_comma(text: str, *, hint: bool = False) -> bool:
    """True if ``text`` writes no number with a decimal point and either some number with a decimal comma that cannot
    be a thousands group (``0,0345``, ``1,5``) or ``hint`` is set (the caller knows the message is written in a
    language whose decimal mark is the comma).

    >>> uses_decimal_comma("Entry 0,0345 SL 0,031 TP 0,040"), uses_decimal_comma("27,350 and 1.5")
    (True, False)
    >>> uses_decimal_comma("2,640 - 2,690"), uses_decimal_comma("2,640 - 2,690", hint=True)
    (False, True)
    """
    if _UNAMBIGUOUS_DECIMAL_DOT.search(text):
        return False
    return hint or bool(_UNAMBIGUOUS_DECIMAL_COMMA.search(text))


def split_number_token(token: str, *, decimal_comma: bool = False) -> list[float]:
    """The number(s) in one token of digits, dots and commas (no sign, no ``$``, no suffix); [] if none.

    >>> split_number_token("1.2,1.3,1.4"), split_number_token("0,345"), split_number_token("1,250,000")
    ([1.2, 1.3, 1.4], [0.345], [1250000.0])
    """
    if "," not in token:
        if token.count(".") <= 1:
            return [float(token)] if _DOT_NUMBER.fullmatch(token) else []
        return []
    if "." in token and _THOUSANDS_DOT_DECIMAL_COMMA.fullmatch(token):
        return [float(token.replace(".", "").replace(",", "."))]
    if _THOUSANDS_COMMA.fullmatch(token) and not token.startswith("0,"):
        if decimal_comma and token.count(",") == 1 and "." not in token:
            return [float(token.replace(",", "."))]
        return [float(token.replace(",", ""))]
    if _SIMPLE_COMMA.fullmatch(token):
        return [float(token.replace(",", "."))]
    out: list[float] = []
    for part in token.split(","):
        if _DOT_NUMBER.fullmatch(part):
            out.append(float(part))
    return out


def parse_number(text: str, *, decimal_comma: bool = False) -> float | None:
    """The single number written in ``text`` (e.g. ``"$27,350.5"``), or None if it is not exactly one number.

    >>> parse_number("27 350"), parse_number("1.2,1.3")
    (27350.0, None)
    """
    found = find_numbers(text.strip(), decimal_comma=decimal_comma)
    return found[0] if len(found) == 1 else None


def join_space_thousands(text: str) -> str:
    """Remove spaces used as thousands separators (``27 350`` -> ``27350``), see the module rules.

    >>> join_space_thousands("Entry 27 350 - 27 100, TP 28\u202f000")
    'Entry 27350 - 27100, TP 28000'
    """
    return _SPACE_THOUSANDS.sub(lambda m: (m.group(1) or m.group(3)) + (m.group(2) or m.group(4)), text)


def find_number_spans(text: str, *, decimal_comma: bool = False) -> list[tuple[int, int, float]]:
    """``(start, end, value)`` of every number in ``text`` (already joined for space thousands), in order; a
    comma-separated list token yields one entry per value with the token's span."""
    out: list[tuple[int, int, float]] = []
    for m in NUMBER_RE.finditer(text):
        values = split_number_token(m.group(1), decimal_comma=decimal_comma)
        mult = 1000.0 if m.group(2) else 1.0
        for v in values:
            out.append((m.start(), m.end(), round_price(v * mult) if mult != 1.0 else v))
    return out


def find_numbers(text: str, *, decimal_comma: bool = False) -> list[float]:
    """Every number in ``text`` in order (space thousands joined first)."""
    return [v for _, _, v in find_number_spans(join_space_thousands(text), decimal_comma=decimal_comma)]
