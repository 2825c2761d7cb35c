"""Deterministic ids: a pure function of what caused the event, so a replay or a recovery re-emits
the very same id and every downstream consumer can deduplicate by it."""

from __future__ import annotations

import hashlib


def stable_id(prefix: str, *parts: object) -> str:
    """``prefix-<20 hex chars>`` from a BLAKE2b digest of the parts (their ``str``), e.g. order ids.

    >>> stable_id("ord", "trend", "BTC-USD", 1_700_000_000_000_000_000)
    'ord-86c406e137d25d0c9ea1'
    """
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=10)
    return f"{prefix}-{h.hexdigest()}"
