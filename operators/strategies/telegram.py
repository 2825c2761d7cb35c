"""Telegram-signal follower: trade parsed signals (entry zone, targets, stop, updates, cancels, closes)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.events import Signal

from .api import bar_range
from .base import StrategyTarget


@dataclass(slots=True)
class Idea:
    """One followed signal. ``side`` +1 long / −1 short; ``zone`` (low, high) entry prices (quote/base);
    ``targets`` in profit order; ``stop`` price or None; ``size`` fraction of capital at full size (trust-scaled);
    ``remaining`` fraction of ``size`` still held (1 after entry, lowered by take-profits and closes);
    ``status``: ``pending`` (waiting for the zone), ``open``, ``done``."""

    id: str
    symbol: str
    source_chat: str
    side: float
    zone: tuple[float, float]
    targets: list[float]
    stop: float | None
    size: float
    created_ts: int
    version: int = 1
    status: str = "pending"
    remaining: float = 0.0
    hit: int = 0
    tp_fractions: list[float] = field(default_factory=list)


class SignalFollower:
    """Follow Telegram signals (``schemas.events.Signal``) for any number of symbols.

    **Entry.** An ``open`` signal creates a pending idea with an entry zone: ``[min(entries), max(entries)]``
    widened by ``zone_tolerance_bps`` on each side (basis points of price; a single entry price becomes a zone
    of ± that tolerance). The idea is entered (a market order through the pipeline) at the first bar whose range
    ``[low, high]`` touches the zone, or immediately on the signal when the last close is inside it. A pending
    idea expires after ``entry_ttl_s`` seconds (event time) and is dropped if its stop trades before entry.

    **Size.** ``size = max_size * trust`` (fraction of the strategy's capital); signals with
    ``trust < min_trust`` are ignored. The strategy's target is the sum over its open ideas on the symbol of
    ``side * size * remaining``, clipped to ±``max_size``.

    **Exits.** Per bar, the stop is checked before the targets (conservative when one bar spans both): a long
    stops out when ``low <= stop`` (short: ``high >= stop``). Target ``i`` is hit when ``high >= targets[i]``
    (short: ``low <=``) and closes ``tp_fractions[i]`` of the original size; by default the fractions are equal
    (``1/n`` each) and the last target closes the rest. With ``breakeven_after_tp`` the stop moves to the middle
    of the entry zone after the first target.

    **Follow-ups.** ``update`` (new entries/targets/stop; empty lists keep the old ones), ``cancel`` (withdraws
    a pending idea; an open one is closed only when ``close_on_cancel``) and ``close`` (``close_fraction`` of what
    is held, None = all) find their idea by ``ref_id``, else the latest idea of the same source chat and symbol.
    An edit of the original message (same ``id``, higher ``version``) acts as an update; a repeated
    ``(id, version)`` is ignored (idempotent replays).

    Confidence of an intent = the idea's trust. State is bounded (finished ideas are dropped; the last 4,096
    signal keys are remembered for deduplication) and picklable.

    >>> from schemas.events import Signal
    >>> T = 1_700_000_000_000_000_000
    >>> f = SignalFollower(max_size=1.0, zone_tolerance_bps=0.0)
    >>> sig = Signal(id="s1", source_chat="@ch", source_message_id=1, symbol="BTC-USD", side="long",
    ...              entries=[100.0, 102.0], targets=[110.0, 120.0], stop=95.0, trust=0.5, ts=T)
    >>> f.on_signal(sig) is None                          # no price seen yet: pending
    True
    >>> f.on_bar("BTC-USD", T + 1, 101.0, None).target    # close inside the zone: enter, half size (trust)
    0.5
    >>> f.on_bar("BTC-USD", T + 2, 111.0, None).target    # first target: close half of it
    0.25
    >>> f.on_bar("BTC-USD", T + 3, 94.0, None).target     # stop
    0.0
    """

    def __init__(
        self,
        max_size: float = 1.0,
        min_trust: float = 0.2,
        zone_tolerance_bps: float = 10.0,
        entry_ttl_s: float = 86_400.0,
        tp_fractions: Sequence[float] | None = None,
        breakeven_after_tp: bool = False,
        close_on_cancel: bool = False,
        name: str = "tg_follow",
    ) -> None:
        if not 0.0 < max_size <= 1.0 or not 0.0 <= min_trust <= 1.0 or zone_tolerance_bps < 0 or entry_ttl_s <= 0:
            raise ValueError("need 0 < max_size <= 1, 0 <= min_trust <= 1, zone_tolerance_bps >= 0, entry_ttl_s > 0")
        if tp_fractions is not None and (any(x <= 0 for x in tp_fractions) or sum(tp_fractions) > 1 + 1e-12):
            raise ValueError("tp_fractions must be positive and sum to at most 1")
        self.name = name
        self.max_size, self.min_trust = max_size, min_trust
        self.zone_tolerance_bps, self.entry_ttl_ns = zone_tolerance_bps, int(entry_ttl_s * 1e9)
        self.tp_fractions = list(tp_fractions) if tp_fractions is not None else None
        self.breakeven_after_tp = breakeven_after_tp
        self.close_on_cancel = close_on_cancel
        self.ideas: dict[str, Idea] = {}
        self.target: dict[str, float] = {}
        self.last_close: dict[str, float] = {}
        self.seen: deque[tuple[str, int]] = deque(maxlen=4096)  # (signal id, version)

    # ------------------------------------------------------------------------------------------------ helpers
    def _zone(self, entries: Sequence[float]) -> tuple[float, float]:
        tol = self.zone_tolerance_bps / 1e4
        return min(entries) * (1 - tol), max(entries) * (1 + tol)

    def _fractions(self, n: int) -> list[float]:
        if n == 0:
            return []
        if self.tp_fractions is not None:
            fr = (self.tp_fractions + [0.0] * n)[:n]
        else:
            fr = [1.0 / n] * n
        fr[-1] = max(0.0, 1.0 - sum(fr[:-1]))  # the last target closes the rest
        return fr

    def _find(self, sig: Signal) -> Idea | None:
        if sig.ref_id is not None and sig.ref_id in self.ideas:
            return self.ideas[sig.ref_id]
        if sig.ref_id is not None:
            return None
        cands = [i for i in self.ideas.values() if i.source_chat == sig.source_chat and i.symbol == sig.symbol]
        return max(cands, key=lambda i: i.created_ts) if cands else None

    def _emit(self, symbol: str, ts: int, reason: str, trust: float) -> StrategyTarget | None:
        tot = sum(
            i.side * i.size * i.remaining for i in self.ideas.values() if i.symbol == symbol and i.status == "open"
        )
        want = float(max(-self.max_size, min(self.max_size, round(float(tot), 12))))
        for k in [k for k, i in self.ideas.items() if i.status == "done"]:
            del self.ideas[k]
        if want == self.target.get(symbol, 0.0):
            return None
        self.target[symbol] = want
        return StrategyTarget(self.name, symbol, ts, want, confidence=trust, reason=reason[:120])

    def _apply_update(self, idea: Idea, sig: Signal) -> None:
        if sig.entries and idea.status == "pending":
            idea.zone = self._zone(sig.entries)
        if sig.targets:
            idea.targets = sorted(sig.targets, reverse=idea.side < 0)
            idea.tp_fractions = self._fractions(len(idea.targets))
            idea.hit = min(idea.hit, len(idea.targets))
        if sig.stop is not None:
            idea.stop = sig.stop

    # ------------------------------------------------------------------------------------------------ events
    def on_signal(self, signal: Signal) -> StrategyTarget | None:
        """Apply one signal; an intent when the wanted position of its symbol changes."""
        key = (signal.id, signal.version)
        if key in self.seen:
            return None
        self.seen.append(key)
        sym, ts = signal.symbol, signal.ts
        if signal.kind == "open":
            old = self.ideas.get(signal.id)
            if old is not None:  # an edit of the original message
                if signal.version > old.version:
                    old.version = signal.version
                    self._apply_update(old, signal)
                return self._emit(sym, ts, f"edit:{signal.id}", signal.trust)
            if signal.trust < self.min_trust:
                return None
            side = 1.0 if signal.side == "long" else -1.0
            new = Idea(
                signal.id,
                sym,
                signal.source_chat,
                side,
                self._zone(signal.entries),
                sorted(signal.targets, reverse=side < 0),
                signal.stop,
                self.max_size * signal.trust,
                ts,
                version=signal.version,
            )
            new.tp_fractions = self._fractions(len(new.targets))
            self.ideas[signal.id] = new
            last = self.last_close.get(sym)
            if last is not None and new.zone[0] <= last <= new.zone[1]:
                new.status, new.remaining = "open", 1.0
                return self._emit(sym, ts, f"enter:{signal.id}", signal.trust)
            return None
        idea = self._find(signal)
        if idea is None:
            return None
        if signal.kind == "update":
            self._apply_update(idea, signal)
            return self._emit(sym, ts, f"update:{idea.id}", signal.trust)
        if signal.kind == "cancel":
            if idea.status == "pending" or self.close_on_cancel:
                idea.status, idea.remaining = "done", 0.0
            return self._emit(sym, ts, f"cancel:{idea.id}", signal.trust)
        # close
        if idea.status == "pending":
            idea.status = "done"
        else:
            frac = 1.0 if signal.close_fraction is None else signal.close_fraction
            idea.remaining = max(0.0, idea.remaining * (1.0 - frac))
            if idea.remaining <= 1e-12:
                idea.status, idea.remaining = "done", 0.0
        return self._emit(sym, ts, f"close:{idea.id}", signal.trust)

    def on_bar(
        self,
        symbol: str,
        ts: int,
        close: float,
        features: Sequence[float] | None,
        *,
        score: float | None = None,
        bar: Any = None,
    ) -> StrategyTarget | None:
        """Check entries, stops and targets of ``symbol``'s ideas against this bar's range."""
        close = float(close)
        self.last_close[symbol] = close
        high, low = bar_range(close, bar)
        reasons: list[str] = []
        trust = 0.0
        for idea in list(self.ideas.values()):
            if idea.symbol != symbol:
                continue
            long = idea.side > 0
            if idea.status == "pending":
                if ts - idea.created_ts > self.entry_ttl_ns:
                    idea.status = "done"
                    reasons.append(f"expire:{idea.id}")
                elif idea.stop is not None and (low <= idea.stop if long else high >= idea.stop):
                    idea.status = "done"
                    reasons.append(f"stop_before_entry:{idea.id}")
                elif low <= idea.zone[1] and high >= idea.zone[0]:
                    idea.status, idea.remaining = "open", 1.0
                    reasons.append(f"enter:{idea.id}")
                    trust = max(trust, idea.size / self.max_size)
                continue
            if idea.status != "open":
                continue
            if idea.stop is not None and (low <= idea.stop if long else high >= idea.stop):
                idea.status, idea.remaining = "done", 0.0
                reasons.append(f"stop:{idea.id}")
                continue
            while idea.hit < len(idea.targets):
                tgt = idea.targets[idea.hit]
                if not (high >= tgt if long else low <= tgt):
                    break
                idea.remaining = max(0.0, idea.remaining - idea.tp_fractions[idea.hit])
                idea.hit += 1
                reasons.append(f"tp{idea.hit}:{idea.id}")
                if self.breakeven_after_tp:
                    idea.stop = 0.5 * (idea.zone[0] + idea.zone[1])
            if idea.remaining <= 1e-12:
                idea.status, idea.remaining = "done", 0.0
            trust = max(trust, idea.size / self.max_size)
        if not reasons:
            return None
        return self._emit(symbol, ts, ",".join(reasons), trust)
