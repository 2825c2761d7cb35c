"""``parse_message``: one Telegram message text -> :class:`SignalDraft`, :class:`LifecycleUpdate` or
:class:`Rejection`. Pure and deterministic; never raises on any ``str``.

Steps: normalise the text (:mod:`.text`); cut it into labelled sections (:mod:`.fields`); read entries, targets,
stop, leverage; look for lifecycle phrases (:mod:`.lifecycle`). A message with entries *and* a stop is a new
signal even if it also says "move SL to entry after TP1"; otherwise a lifecycle phrase makes it a
:class:`LifecycleUpdate`; otherwise a message without any entry/target/stop label is chatter (``no_signal``); the
rest is validated as a signal, rejections checked in this order: ``no_symbol``/``ambiguous`` (symbol),
``no_side``/``ambiguous`` (side), ``no_entry``, ``no_stop``, ``ambiguous`` (several stops), ``too_many_levels``,
``stop_wrong_side``, ``targets_wrong_side``.

Relative stop (``Stoploss: 5%``): applied to the mean entry (long ``mean * (1 - 5/100)``, short ``* (1 + ...)``,
rounded to 12 significant digits); ``stop_pct`` keeps the written percentage. With a market entry and no written
price the stop stays None and ``to_signal(..., market_price=...)`` applies it.

>>> r = parse_message('''#BTC/USDT 🟢 LONG
... Entry: 27,000 - 27,400
... Targets: 27,800 - 28,500 - 29,000
... SL: 26,500
... Leverage: cross 10x''')
>>> (r.symbol, r.side, r.entry_type, r.entries, r.targets, r.stop, r.leverage, r.margin_mode)
('BTC-USDT', 'long', 'zone', (27000.0, 27400.0), (27800.0, 28500.0, 29000.0), 26500.0, 10.0, 'cross')
>>> summarize(parse_message("#ETH/USDT Target 2 ✅ move SL to entry"))
{'type': 'lifecycle', 'action': 'update', 'events': ['target_hit', 'stop_to_breakeven'], 'symbol': 'ETH-USDT', \
'target_hit': 2}
>>> parse_message("SOL LONG entry 150 tp 160").reason, parse_message("gm fam, market looks hot").reason
('no_stop', 'no_signal')
"""

from __future__ import annotations

from .convert import signal_id, to_signal
from .fields import (
    Section,
    clean_body,
    extract_entries,
    find_leverage,
    find_margin_mode,
    find_side,
    find_side_hint,
    section_numbers,
    sections,
    side_of_word,
    writes_comma_language,
)
from .lifecycle import detect_lifecycle, lifecycle_action
from .numbers import round_price, uses_decimal_comma
from .results import LifecycleUpdate, ParseResult, Rejection, SignalDraft, summarize
from .symbols import find_symbols
from .text import normalize
from .validate import MAX_ENTRIES, MAX_TARGETS, check_geometry

__all__ = ["parse_message", "to_signal", "signal_id", "summarize"]


def _symbol(text: str) -> tuple[str | None, Rejection | None]:
    syms = find_symbols(text)
    if len(syms) > 1:
        return None, Rejection(reason="ambiguous", message=f"several instruments named: {', '.join(syms)}")
    return (syms[0] if syms else None), None


def _split(secs: list[Section]) -> tuple[list[Section], list[Section], list[Section], list[Section]]:
    """Entry, target, stop and leverage sections; a ``dir`` section of the opposite direction after the first one
    (spot style "Buy 1.2 ... Sell 1.5 1.8") holds targets."""
    entry: list[Section] = []
    target: list[Section] = []
    stop: list[Section] = []
    lev: list[Section] = []
    first_dir: str | None = None
    for s in secs:
        f = s.field
        if f == "dir":
            d = side_of_word(s.label)
            if first_dir is None:
                first_dir = d
            if d != first_dir:
                target.append(s)
                continue
            entry.append(s)
        elif f == "entry":
            entry.append(s)
        elif f == "target":
            target.append(s)
        elif f == "stop":
            stop.append(s)
        elif f == "leverage":
            lev.append(s)
    return entry, target, stop, lev


def parse_message(text: str) -> ParseResult:
    """Parse one message (see the module docstring for the rules and the order of the checks)."""
    norm = normalize(text if isinstance(text, str) else "")
    if not norm:
        return Rejection(reason="no_signal", message="empty message")
    dc = uses_decimal_comma(norm, hint=writes_comma_language(norm))
    secs = sections(norm)
    entry_secs, target_secs, stop_secs, lev_secs = _split(secs)
    entry_type, entries = extract_entries(entry_secs, decimal_comma=dc)
    has_entry = bool(entries) or entry_type == "market"
    stops: list[float] = []
    stop_pcts: list[float] = []
    for s in stop_secs:
        nums = section_numbers(s.body, decimal_comma=dc)
        stops += nums
        if not nums:
            stop_pcts += clean_body(s.body)[1]
    has_stop = bool(stops or stop_pcts)

    if not (has_entry and has_stop):
        life = detect_lifecycle(norm, decimal_comma=dc)
        if life is not None:
            events, target_hit, new_stop, fraction = life
            symbol, bad = _symbol(norm)
            if bad is not None:
                return bad
            side, ambiguous = find_side(norm)
            return LifecycleUpdate(
                action=lifecycle_action(events),  # type: ignore[arg-type]
                events=events,
                symbol=symbol,
                side=None if ambiguous else side,  # type: ignore[arg-type]
                target_hit=target_hit,
                stop=new_stop,
                close_fraction=fraction,
            )
    if not (has_entry or has_stop or any(section_numbers(s.body, decimal_comma=dc) for s in target_secs)):
        return Rejection(reason="no_signal", message="no entry, target or stop price and no lifecycle wording")

    symbol, bad = _symbol(norm)
    if bad is not None:
        return bad
    if symbol is None:
        return Rejection(reason="no_symbol", message="no instrument symbol found")
    side, ambiguous = find_side(norm)
    if ambiguous:
        return Rejection(reason="ambiguous", message="both long and short named")
    targets = [v for s in target_secs for v in section_numbers(s.body, decimal_comma=dc)]
    if side is None:
        hint = find_side_hint(norm)
        if hint is not None and stops and (entries or targets):
            ref = entries or targets
            confirmed = "long" if stops[0] < min(ref) else "short" if stops[0] > max(ref) else None
            side = hint if confirmed == hint else None
        if side is None:
            return Rejection(reason="no_side", message="no direction (long/short, buy/sell) found")
    if not has_entry:
        return Rejection(reason="no_entry", message="no entry price and no market entry")
    if not has_stop:
        return Rejection(reason="no_stop", message="no stop loss")
    distinct = sorted(set(stops))
    if len(distinct) > 1:
        return Rejection(reason="ambiguous", message=f"several stop prices: {distinct}")
    stop_pct: float | None = None
    stop: float | None = distinct[0] if distinct else None
    if stop is None:
        stop_pct = abs(stop_pcts[0])
        if not 0.0 < stop_pct < 100.0:
            return Rejection(reason="no_stop", message=f"relative stop {stop_pct}% is not a usable percentage")
        if entries:
            mid = sum(entries) / len(entries)
            stop = round_price(mid * (1 - stop_pct / 100) if side == "long" else mid * (1 + stop_pct / 100))
    if len(entries) > MAX_ENTRIES or len(targets) > MAX_TARGETS:
        return Rejection(reason="too_many_levels", message=f"{len(entries)} entries, {len(targets)} targets")
    if any(v <= 0 for v in entries + targets) or (stop is not None and stop <= 0):
        return Rejection(reason="ambiguous", message="a price of zero")
    bad_geo = check_geometry(side, entries, targets, stop)
    if bad_geo is not None:
        return Rejection(reason=bad_geo[0], message=bad_geo[1])
    leverage, leverage_max = find_leverage(norm, lev_secs)
    return SignalDraft(
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        entry_type=entry_type,  # type: ignore[arg-type]
        entries=tuple(entries),
        targets=tuple(targets),
        stop=stop,
        stop_pct=stop_pct,
        leverage=leverage,
        leverage_max=leverage_max,
        margin_mode=find_margin_mode(norm),  # type: ignore[arg-type]
    )
