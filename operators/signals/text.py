"""Text normalisation before parsing: Unicode compatibility forms, dashes, markup and invisible characters.

* NFKC: styled letters and digits (``𝐁𝐓𝐂``, full-width ``ＢＴＣ``) become ASCII; no-break and thin spaces become
  spaces.
* Every dash-like character (``– — − ‐``) becomes ``-``; ``➖`` and Markdown markers (``* _ ` ~~``) become
  spaces.
* Zero-width characters and emoji variation selectors are removed; a keycap digit ``1️⃣`` becomes ``1)``.
* Runs of spaces and tabs collapse to one space; lines are stripped; line breaks are kept.

>>> normalize("𝐁𝐓𝐂/USDT  —  **Entry**: 27 350\u200b")
'BTC/USDT - Entry : 27 350'
>>> normalize("1\ufe0f\u20e3 0.35")
'1) 0.35'
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize", "MAX_TEXT_CHARS"]

#: Longer inputs are cut to this many characters (Telegram's own limit for a message with caption is 4096).
MAX_TEXT_CHARS = 8192

_TRANS: dict[int, str | None] = {ord(c): "-" for c in "‐‑‒–—―−﹣－"}
_TRANS.update({ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\ufe0e\ufe0f\u00ad"})
_TRANS.update({ord(c): " " for c in "*_`➖\t\r\f\v"})
_TRANS[ord("\u20e3")] = ")"
_SPACES = re.compile(r" {2,}")


def normalize(text: str) -> str:
    """Normalised copy of ``text`` (see the module rules); at most :data:`MAX_TEXT_CHARS` characters are read."""
    t = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).translate(_TRANS)
    lines = (_SPACES.sub(" ", line).strip() for line in t.split("\n"))
    return "\n".join(line for line in lines if line)
