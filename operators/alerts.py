"""Alert routing, throttling and payload rendering. Pure: no I/O, no clock (time is the alert's event time).

* :func:`route` picks the destinations of an alert by severity (at least the destination's ``min_severity``) and
  kind (``fnmatch`` patterns, ``*`` = all; ``exclude_kinds`` win).
* :func:`throttle` deduplicates and rate-limits by the alert's ``dedupe_key`` in event time: at most
  ``max_per_window`` alerts per key per ``window_s`` seconds (the window opens at the first admitted alert's ``ts``);
  an alert of *higher* severity than any admitted in the window always passes (escalation). An alert id already
  delivered is a ``duplicate``; an id already admitted but not yet delivered passes again (a redelivery after a
  crash must not be lost).
* :func:`render_payload` builds the JSON body for a destination format: ``json`` (every field), ``slack``
  (``{"text": ...}``) or ``telegram`` (``sendMessage``: ``{"chat_id": ..., "text": ...}``).

>>> from schemas.events import Alert
>>> a = Alert(id="a1", severity="critical", kind="risk.kill_switch", message="drawdown 12%", dedupe_key="dd",
...           ts=1_700_000_000_000_000_000)
>>> routing = AlertRouting.from_dict({"destinations": [
...     {"name": "ops", "url": "http://127.0.0.1:9/h", "min_severity": "warning"},
...     {"name": "chat", "url": "http://127.0.0.1:9/t", "format": "telegram", "chat_id": "-100", "kinds": ["drift*"]}]})
>>> [d.name for d in route(a, routing.destinations)]
['ops']
>>> d, rec = throttle(a, None, routing.throttle); d
'send'
>>> b = Alert(id="a2", severity="critical", kind="risk.kill_switch", message="again", dedupe_key="dd",
...           ts=1_700_000_010_000_000_000)
>>> throttle(b, rec, routing.throttle)[0]
'rate_limited'
>>> render_payload(a, routing.destinations[1])["text"]
'🔴 CRITICAL risk.kill_switch: drawdown 12%'
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from schemas.events import Alert

__all__ = [
    "SEVERITY_RANK",
    "FORMATS",
    "Destination",
    "ThrottlePolicy",
    "AlertRouting",
    "ThrottleDecision",
    "route",
    "throttle",
    "mark_done",
    "render_payload",
]

#: Severity order (higher = more urgent).
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
#: Payload formats a destination can take.
FORMATS = ("json", "slack", "telegram")
_EMOJI = {"info": "🔵", "warning": "🟠", "critical": "🔴"}
#: How many recently delivered alert ids are remembered per dedupe key.
DONE_IDS_KEPT = 64

Format = Literal["json", "slack", "telegram"]
ThrottleDecision = Literal["send", "duplicate", "rate_limited"]


@dataclass(frozen=True, slots=True)
class Destination:
    """One webhook. ``url`` the endpoint; ``format`` the payload shape; ``min_severity`` the lowest severity sent;
    ``kinds``/``exclude_kinds`` ``fnmatch`` patterns on ``Alert.kind``; ``chat_id`` for the ``telegram`` format;
    ``key_env`` the environment variable holding the HMAC signing key (never the key itself); ``timeout_s`` the
    per-request timeout, seconds."""

    name: str
    url: str
    format: Format = "json"
    min_severity: str = "info"
    kinds: tuple[str, ...] = ("*",)
    exclude_kinds: tuple[str, ...] = ()
    chat_id: str | None = None
    key_env: str = "LEVIBOT_WEBHOOK_SIGNING_KEY"
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"destination {self.name!r}: format must be one of {FORMATS}, got {self.format!r}")
        if self.min_severity not in SEVERITY_RANK:
            raise ValueError(f"destination {self.name!r}: unknown min_severity {self.min_severity!r}")
        if self.format == "telegram" and not self.chat_id:
            raise ValueError(f"destination {self.name!r}: the telegram format needs chat_id")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"destination {self.name!r}: url must be http(s)")
        if not 0 < self.timeout_s <= 300:
            raise ValueError(f"destination {self.name!r}: timeout_s must be in (0, 300] seconds")

    def accepts(self, alert: Alert) -> bool:
        """True when the alert's severity and kind match this destination."""
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity]:
            return False
        if any(fnmatchcase(alert.kind, p) for p in self.exclude_kinds):
            return False
        return any(fnmatchcase(alert.kind, p) for p in self.kinds)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """At most ``max_per_window`` alerts per dedupe key per ``window_s`` seconds of event time (escalations pass)."""

    window_s: float = 300.0
    max_per_window: int = 1

    def __post_init__(self) -> None:
        if self.window_s < 0 or self.max_per_window < 1:
            raise ValueError("throttle: window_s must be >= 0 seconds and max_per_window >= 1")


@dataclass(frozen=True, slots=True)
class AlertRouting:
    """Destinations and the throttle policy, from the JSON config (see ``docs/alerts.md``)."""

    destinations: tuple[Destination, ...] = ()
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> AlertRouting:
        """Build from the parsed JSON config; unknown keys in a destination raise ``ValueError``."""
        dests = []
        names: set[str] = set()
        for d in cfg.get("destinations", []):
            d = dict(d)
            for k in ("kinds", "exclude_kinds"):
                if k in d:
                    d[k] = tuple(d[k])
            if "chat_id" in d and d["chat_id"] is not None:
                d["chat_id"] = str(d["chat_id"])
            try:
                dest = Destination(**d)
            except TypeError as exc:
                raise ValueError(f"alert destination {d.get('name')!r}: {exc}") from None
            if dest.name in names:
                raise ValueError(f"duplicate alert destination name {dest.name!r}")
            names.add(dest.name)
            dests.append(dest)
        th = cfg.get("throttle", {})
        return cls(tuple(dests), ThrottlePolicy(**th))


def route(alert: Alert, destinations: Sequence[Destination]) -> list[Destination]:
    """The destinations that take ``alert``, in configuration order."""
    return [d for d in destinations if d.accepts(alert)]


def throttle(
    alert: Alert,
    record: Mapping[str, Any] | None,
    policy: ThrottlePolicy,
    pending: Collection[str] = (),
) -> tuple[ThrottleDecision, dict[str, Any]]:
    """Decide ``send`` / ``duplicate`` / ``rate_limited`` for ``alert`` given its dedupe key's ``record`` (None when
    new) and return the updated record: ``{"start": ns, "admitted": [ids], "sev": rank, "done": [ids],
    "suppressed": n}``. ``pending``: ids the caller is delivering right now (a copy of one of them is a
    duplicate, not a redelivery after a crash). Pure; the caller stores the record under ``alert.dedupe_key``."""
    rec: dict[str, Any] = (
        {k: (list(v) if isinstance(v, list) else v) for k, v in record.items()}
        if record
        else {"start": None, "admitted": [], "sev": -1, "done": [], "suppressed": 0}
    )
    if alert.id in rec["done"] or alert.id in pending:
        return "duplicate", rec
    if alert.id in rec["admitted"]:
        return "send", rec
    rank = SEVERITY_RANK[alert.severity]
    window_ns = int(policy.window_s * 1e9)
    if rec["start"] is None or alert.ts >= rec["start"] + window_ns:
        rec.update(start=alert.ts, admitted=[alert.id], sev=rank)
        return "send", rec
    if len(rec["admitted"]) < policy.max_per_window or rank > rec["sev"]:
        rec["admitted"].append(alert.id)
        rec["sev"] = max(rec["sev"], rank)
        return "send", rec
    rec["suppressed"] = int(rec.get("suppressed", 0)) + 1
    return "rate_limited", rec


def mark_done(record: Mapping[str, Any], alert_id: str) -> dict[str, Any]:
    """The record after ``alert_id`` was delivered (or dead-lettered): later copies of it are duplicates. Keeps the
    last :data:`DONE_IDS_KEPT` ids."""
    rec = {k: (list(v) if isinstance(v, list) else v) for k, v in record.items()}
    done = [i for i in rec.get("done", []) if i != alert_id] + [alert_id]
    rec["done"] = done[-DONE_IDS_KEPT:]
    return rec


def _iso(ts_ns: int) -> str:
    return _dt.datetime.fromtimestamp(ts_ns / 1e9, tz=_dt.UTC).isoformat().replace("+00:00", "Z")


def _text(alert: Alert) -> str:
    head = f"{_EMOJI.get(alert.severity, '')} {alert.severity.upper()} {alert.kind}: {alert.message}".strip()
    if alert.labels:
        head += "\n" + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    return head


def render_payload(alert: Alert, dest: Destination) -> dict[str, Any]:
    """The JSON object sent to ``dest`` for ``alert`` (see the module docstring). ``ts`` ns UTC; ``time`` ISO 8601.

    Telegram's ``sendMessage`` caps ``text`` at 4096 characters; Slack's at 40 000."""
    if dest.format == "slack":
        return {"text": _text(alert)[:40_000]}
    if dest.format == "telegram":
        return {"chat_id": dest.chat_id, "text": _text(alert)[:4096], "disable_web_page_preview": True}
    return {
        "id": alert.id,
        "severity": alert.severity,
        "kind": alert.kind,
        "message": alert.message,
        "labels": dict(alert.labels),
        "dedupe_key": alert.dedupe_key,
        "ts": alert.ts,
        "time": _iso(alert.ts),
    }
