"""Who may call what: key scopes (``read`` / ``trade`` / ``admin``) and tiers (``free`` / ``pro`` / ``enterprise``).

**Scopes** are ordered: ``admin`` implies ``trade``, which implies ``read``. Every route needs one scope.

**Tiers** set, per key: the request quota (a rate in the ``limits`` library's notation, e.g. ``"600/minute"``), the
route groups the key may call, the scopes a key of the tier may hold and how many accounts it may name. The defaults
(:data:`DEFAULT_TIERS`) can be replaced or extended with JSON in ``LEVIBOT_API_TIERS`` (:func:`parse_tiers`).

>>> grants(("trade",), "read"), grants(("read",), "trade"), grants(("admin",), "trade")
(True, False, True)
>>> t = DEFAULT_TIERS["free"]
>>> t.allows_group("book"), t.allows_group("control")
(True, False)
>>> denial(Principal("k1", ("read",), "free", ("default",)), "read", "control", DEFAULT_TIERS)
Denial(status=403, reason='tier', detail="tier 'free' does not include the 'control' endpoints")
>>> denial(Principal("k1", ("read",), "pro", ("default",)), "trade", "control", DEFAULT_TIERS).reason
'scope'
>>> denial(Principal("k1", ("trade",), "pro", ("default",)), "trade", "control", DEFAULT_TIERS) is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "SCOPES",
    "ROUTE_GROUPS",
    "Tier",
    "DEFAULT_TIERS",
    "Principal",
    "Denial",
    "grants",
    "normalise_scopes",
    "parse_rate",
    "parse_tiers",
    "denial",
    "check_accounts",
    "may_act_on",
]

#: Key scopes, weakest first; each implies the ones before it.
SCOPES: Final = ("read", "trade", "admin")
#: Route groups a tier may include: ``status``; ``book`` (positions, orders, fills); ``risk`` (risk decisions);
#: ``signals``; ``audit``; ``models`` (registry, calibration, drift); ``control`` (the write endpoints).
ROUTE_GROUPS: Final = ("status", "book", "risk", "signals", "audit", "models", "control")

_RANK: Final = {s: i for i, s in enumerate(SCOPES)}
_RATE_RE: Final = re.compile(
    r"^\s*([1-9][0-9]{0,8})\s*(?:/|per)\s*([1-9][0-9]{0,5})?\s*"
    r"(second|minute|hour|day)s?\s*$"
)
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def grants(scopes: Iterable[str], required: str) -> bool:
    """True when one of ``scopes`` is ``required`` or a stronger scope."""
    need = _RANK[required]
    return any(_RANK.get(s, -1) >= need for s in scopes)


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes sorted weakest first, duplicates removed; ``ValueError`` on an unknown scope.

    >>> normalise_scopes(["trade", "read", "trade"])
    ('read', 'trade')
    """
    out = set()
    for s in scopes:
        s = s.strip()
        if s not in _RANK:
            raise ValueError(f"unknown scope {s!r}; one of {', '.join(SCOPES)}")
        out.add(s)
    if not out:
        raise ValueError("a key needs at least one scope")
    return tuple(sorted(out, key=_RANK.__getitem__))


def parse_rate(text: str) -> tuple[int, int, str]:
    """``"600/minute"`` -> ``(600, 1, "minute")``; ``"10 per 2 seconds"`` -> ``(10, 2, "second")``.

    >>> parse_rate("10 per 2 seconds")
    (10, 2, 'second')
    """
    m = _RATE_RE.match(text)
    if m is None:
        raise ValueError(f"rate {text!r} is not '<count>/<unit>' (unit second, minute, hour or day)")
    return int(m.group(1)), int(m.group(2) or 1), m.group(3)


@dataclass(frozen=True, slots=True)
class Tier:
    """A key's plan: ``rate`` requests per window (``limits`` notation), route ``groups`` it may call, the
    ``scopes`` a key of this tier may hold, at most ``max_accounts`` accounts per key."""

    name: str
    rate: str
    groups: frozenset[str]
    scopes: tuple[str, ...] = SCOPES
    max_accounts: int = 1

    def __post_init__(self) -> None:
        if _NAME_RE.fullmatch(self.name) is None:
            raise ValueError(f"tier name {self.name!r} does not match {_NAME_RE.pattern}")
        parse_rate(self.rate)
        unknown = set(self.groups) - set(ROUTE_GROUPS)
        if unknown:
            raise ValueError(f"tier {self.name}: unknown route groups {sorted(unknown)}; one of {ROUTE_GROUPS}")
        normalise_scopes(self.scopes)
        if not 1 <= self.max_accounts <= 10_000:
            raise ValueError(f"tier {self.name}: max_accounts must be in [1, 10000], got {self.max_accounts}")

    def allows_group(self, group: str) -> bool:
        return group in self.groups


_READ_GROUPS: Final = frozenset(("status", "book", "risk", "signals", "audit", "models"))

#: The product plan's tiers. ``free``: status and the book, read only, one account, 60 requests a minute; ``pro``:
#: every read group and control, up to 5 accounts, 600 a minute; ``enterprise``: everything, 100 accounts,
#: 6000 a minute.
DEFAULT_TIERS: Final[Mapping[str, Tier]] = {
    "free": Tier("free", "60/minute", frozenset(("status", "book")), ("read",), 1),
    "pro": Tier("pro", "600/minute", _READ_GROUPS | {"control"}, SCOPES, 5),
    "enterprise": Tier("enterprise", "6000/minute", frozenset(ROUTE_GROUPS), SCOPES, 100),
}


def parse_tiers(text: str, base: Mapping[str, Tier] = DEFAULT_TIERS) -> dict[str, Tier]:
    """Tiers from JSON ``{"name": {"rate": ..., "groups": [...], "scopes": [...], "max_accounts": n}}``; a
    named tier replaces the default of that name field by field, a new name adds a tier. Empty text: ``base``.

    >>> t = parse_tiers('{"free": {"rate": "5/second"}, "desk": {"rate": "1/second", "groups": ["status"]}}')
    >>> t["free"].rate, sorted(t["free"].groups), t["desk"].scopes
    ('5/second', ['book', 'status'], ('read', 'trade', 'admin'))
    """
    out = dict(base)
    if not text.strip():
        return out
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"LEVIBOT_API_TIERS is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("LEVIBOT_API_TIERS must be a JSON object of tiers")
    for name, spec in raw.items():
        if not isinstance(spec, dict) or set(spec) - {"rate", "groups", "scopes", "max_accounts"}:
            raise ValueError(f"tier {name!r}: expected an object with rate, groups, scopes, max_accounts")
        old = out.get(name)
        if old is None and ("rate" not in spec or "groups" not in spec):
            raise ValueError(f"new tier {name!r} needs rate and groups")
        out[name] = Tier(
            name=name,
            rate=str(spec.get("rate", old.rate if old else "")),
            groups=frozenset(spec["groups"]) if "groups" in spec else old.groups,  # type: ignore[union-attr]
            scopes=normalise_scopes(spec["scopes"]) if "scopes" in spec else (old.scopes if old else SCOPES),
            max_accounts=int(spec.get("max_accounts", old.max_accounts if old else 1)),
        )
    return out


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated key: ``key_id``, its ``scopes``, ``tier`` name and the ``accounts`` it may act on
    (``("*",)``: any). ``rate`` overrides the tier's quota for this key when not empty."""

    key_id: str
    scopes: tuple[str, ...]
    tier: str
    accounts: tuple[str, ...] = ("default",)
    rate: str = ""
    name: str = field(default="", compare=False)

    @property
    def actor(self) -> str:
        """The name written as ``issuer`` of its control commands and ``actor`` of its audit rows."""
        return f"api:{self.key_id}"


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request is refused: HTTP ``status`` (401, 403, 429, ...), a ``reason`` code and text."""

    status: int
    reason: str
    detail: str


def denial(p: Principal, required: str, group: str, tiers: Mapping[str, Tier]) -> Denial | None:
    """``None`` when ``p`` may call a route of ``group`` needing scope ``required``, else the 403 to answer."""
    tier = tiers.get(p.tier)
    if tier is None:
        return Denial(403, "tier", f"tier {p.tier!r} is not configured")
    if not tier.allows_group(group):
        return Denial(403, "tier", f"tier {tier.name!r} does not include the {group!r} endpoints")
    if not grants(p.scopes, required) or not grants(tier.scopes, required):
        return Denial(403, "scope", f"this endpoint needs the {required!r} scope")
    return None


def check_accounts(accounts: Iterable[str], tier: Tier) -> tuple[str, ...]:
    """The accounts of a new key, checked against its tier's ``max_accounts``. ``*`` (every account) is allowed
    alone and only in tiers of at least 100 accounts.

    >>> check_accounts(["default"], DEFAULT_TIERS["free"])
    ('default',)
    >>> check_accounts(["a", "b"], DEFAULT_TIERS["free"])
    Traceback (most recent call last):
    ...
    ValueError: tier 'free' allows at most 1 account(s) per key, got 2
    """
    out: list[str] = []
    for a in accounts:
        a = a.strip()
        if not a:
            continue
        if a != "*" and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,63}", a) is None:
            raise ValueError(f"account name {a!r} is not a machine name")
        if a not in out:
            out.append(a)
    if not out:
        raise ValueError("a key needs at least one account")
    if "*" in out and (len(out) > 1 or tier.max_accounts < 100):
        raise ValueError(f"'*' (every account) is for tiers of at least 100 accounts, not {tier.name!r}")
    if len(out) > tier.max_accounts:
        raise ValueError(f"tier {tier.name!r} allows at most {tier.max_accounts} account(s) per key, got {len(out)}")
    return tuple(out)


def may_act_on(p: Principal, account: str) -> bool:
    """True when ``p`` may send commands for ``account``.

    >>> may_act_on(Principal("k", ("trade",), "pro", ("default",)), "other")
    False
    """
    return "*" in p.accounts or account in p.accounts
