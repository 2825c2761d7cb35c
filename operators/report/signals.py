"""What became of a run's Telegram signals: how many the flow received, how many parsed, why the rest were
rejected, and the outcome of each parsed one. Pure: the flow's collected events in, counts out.

*Received* are the messages the flow read from the ``signals`` topic: the *parsed* ones (valid ``Signal`` events)
plus the *rejected* ones (the dead letters of that topic, counted by their reason code). The outcome of a parsed
signal is what the signal follower (``operators.strategies.SignalFollower``, the full pipeline's fifth strategy)
made of it, found by replaying the parsed signals and the decision bars through a follower of the same settings,
exactly as the signal stage feeds it (each signal at the first decision bar at or after its time, before that
bar): the follower's state depends on nothing else, so the replay reaches the same state. The other strategies
and the orchestrator's netting do not change what the follower does; whether its target change became an order
is the risk section's story (the orders carry the orchestrator's name).

Outcomes (``OUTCOMES``): an ``open`` signal is *entered* (its entry zone traded: the follower took the position),
*waiting for its entry zone* at the end, *expired before entry*, *stopped before entry*, *ignored (trust below
the follower's minimum)*, an *edit of an earlier signal*; a follow-up (``update``, ``cancel``, ``close``) *changed
the position*, was *applied without a position change*, or found *no matching idea*; any signal can be a
*duplicate* (the same message and revision seen before) or *after the last decision* (no decision bar applied it
before the run ended). *Acted on* counts the signals that moved the follower's position: entered, or changed it.

>>> from schemas.events import Bar, Signal
>>> T = 1_700_000_000_000_000_000
>>> sig = Signal(id="s1", source_chat="@ch", source_message_id=1, symbol="BTC-USD", side="long",
...              entries=[100.0], targets=[110.0], stop=90.0, trust=0.6, ts=T)
>>> bars = [Bar(symbol="BTC-USD", ts=T + i * 60 * 10**9, resolution_s=60, open=p, high=p, low=p, close=p, volume=1.0,
...             vwap=p, trade_count=1) for i, p in enumerate([105.0, 100.0, 112.0])]
>>> s = signal_summary([sig], {"validation": 2}, bars, 60)
>>> s["received"], s["parsed"], s["rejected"], s["acted_on"], s["outcomes"]
(3, 1, {'validation': 2}, 1, {'entered': 1})
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from schemas.time import NS_PER_S as NS

__all__ = ["OUTCOMES", "ACTED", "signal_summary", "signal_outcomes"]

#: outcome key -> label (the order of the report's table)
OUTCOMES = {
    "entered": "entered (the follower took the position)",
    "changed": "changed the position (a follow-up or an edit)",
    "waiting": "waiting for its entry zone at the end",
    "expired": "expired before entry",
    "stopped": "stopped before entry",
    "low_trust": "ignored: trust below the follower's minimum",
    "applied": "applied without a position change",
    "edit": "edit of an earlier signal, no position change",
    "no_idea": "follow-up without a matching idea",
    "duplicate": "duplicate (the same message and revision)",
    "after_end": "after the last decision (not applied before the run ended)",
    "not_used": "not used (the pipeline mode takes no signals)",
}
#: the outcomes that moved the follower's position
ACTED = ("entered", "changed")


def _get(o: Any, name: str, default: Any = None) -> Any:
    return o.get(name, default) if isinstance(o, Mapping) else getattr(o, name, default)


def signal_outcomes(
    signals: Sequence[Any], bars: Iterable[Any], decision_resolution_s: int, follower: Any | None = None
) -> list[str]:
    """The outcome key (``OUTCOMES``) of each of ``signals`` (``Signal`` events, arrival order), replayed with the
    decision bars (``Bar`` events or mappings of any resolution: those of ``decision_resolution_s`` are used; a
    bar's decision is at its close, ``ts + resolution``; a repeated bar, e.g. a revision, counts once) through
    ``follower`` (default a ``SignalFollower()`` with its defaults, as the full pipeline builds it)."""
    if follower is None:
        from operators.strategies import SignalFollower

        follower = SignalFollower()
    res = int(decision_resolution_s)
    closes: dict[str, dict[int, Any]] = {}
    for b in bars:
        if int(_get(b, "resolution_s")) != res:
            continue
        end = int(_get(b, "ts")) + res * NS
        closes.setdefault(str(_get(b, "symbol")), {}).setdefault(end, b)  # the first emission: the decided bar
    pending: dict[str, list[tuple[int, int]]] = {}  # symbol -> [(ts, arrival)], sorted
    for i, sg in enumerate(signals):
        bisect.insort(pending.setdefault(sg.symbol, []), (int(sg.ts), i))
    out = ["after_end"] * len(signals)
    f = follower
    for sym in sorted(pending):
        queue = pending[sym]
        waiting: dict[str, int] = {}  # idea id -> index of its open signal, while pending
        for end in sorted(closes.get(sym, {})):
            bar = closes[sym][end]
            while queue and queue[0][0] <= end:
                _, i = queue.pop(0)
                out[i] = _apply(f, signals[i], waiting, i)
            f.on_bar(sym, end, float(_get(bar, "close")), None, bar=bar)
            for idea_id, i in list(waiting.items()):
                idea = f.ideas.get(idea_id)
                if idea is not None and idea.status == "open":
                    out[i] = "entered"
                elif idea is None or idea.status == "done":
                    out[i] = "expired" if end - int(signals[i].ts) > f.entry_ttl_ns else "stopped"
                else:
                    continue
                del waiting[idea_id]
    return out


def _apply(f: Any, sig: Any, waiting: dict[str, int], i: int) -> str:
    """Feed one signal to the follower; its outcome so far."""
    if (sig.id, sig.version) in f.seen:
        f.on_signal(sig)  # (ignored by the follower: idempotent)
        return "duplicate"
    if sig.kind == "open":
        if sig.id in f.ideas:
            return "changed" if f.on_signal(sig) is not None else "edit"
        if sig.trust < f.min_trust:
            f.on_signal(sig)
            return "low_trust"
        f.on_signal(sig)
        idea = f.ideas.get(sig.id)
        if idea is not None and idea.status == "open":
            return "entered"
        if idea is None or idea.status == "done":
            return "stopped"
        waiting[sig.id] = i
        return "waiting"
    found = f._find(sig)  # the follower's own rule: by ref_id, else the latest idea of the chat and symbol
    if found is None:
        f.on_signal(sig)
        return "no_idea"
    changed = f.on_signal(sig) is not None
    if found.id in waiting and found.status == "done":  # a cancel or close of a pending idea
        del waiting[found.id]
    return "changed" if changed else "applied"


def signal_summary(
    parsed: Sequence[Any],
    rejected: Mapping[str, int],
    bars: Iterable[Any] = (),
    decision_resolution_s: int = 0,
    *,
    follower: Any | None = None,
    applied: bool = True,
) -> dict[str, Any]:
    """The report's ``signals`` input: ``{"received", "parsed", "rejected": {reason: n}, "acted_on", "outcomes":
    {outcome key: n}}`` from the parsed ``Signal`` events (arrival order), the rejections by reason and the
    decision bars (see :func:`signal_outcomes`). ``applied=False``: the pipeline never applied signals (its
    baseline mode), every parsed one is ``not_used``."""
    rej = {str(k): int(v) for k, v in rejected.items() if int(v)}
    if applied and parsed:
        kinds = signal_outcomes(parsed, bars, decision_resolution_s, follower)
    else:
        kinds = ["not_used"] * len(parsed)
    counts = Counter(kinds)
    return {
        "received": len(parsed) + sum(rej.values()),
        "parsed": len(parsed),
        "rejected": rej,
        "acted_on": sum(counts[k] for k in ACTED),
        "outcomes": {k: counts[k] for k in OUTCOMES if counts[k]},
    }
