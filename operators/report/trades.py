"""Round-trip trades from fills: a trade runs from flat to flat in one symbol.

A fill that takes the position through zero (a flip) closes the running trade with the part that reaches zero
and opens a new one with the rest; the fill's fee is split in proportion to the quantities. A trade's P&L is
its cash flows (sells minus buys, quote) minus its fees, which is exact whatever the fills' average prices.
A position still open after the last fill is an *open* trade and is not counted among the round trips.

>>> fills = [dict(symbol="X", side="buy", qty=1.0, price=100.0, fee=0.1, ts=1),
...          dict(symbol="X", side="sell", qty=2.0, price=110.0, fee=0.2, ts=2),   # closes the long, opens a short
...          dict(symbol="X", side="buy", qty=1.0, price=105.0, fee=0.1, ts=3)]
>>> closed, still_open = round_trips(fills)
>>> [(t.side, round(t.pnl, 6), t.open_ts, t.close_ts) for t in closed], still_open
([('long', 9.8, 1, 2), ('short', 4.8, 2, 3)], [])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used (trades_from_positions)
    from numpy.typing import ArrayLike

__all__ = ["Trade", "round_trips", "trades_from_positions"]

_FLAT = 1e-9  # |position| below this fraction of the trade's largest |position| counts as flat


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip: ``side`` ``long``/``short``; ``open_ts``/``close_ts`` ns (``close_ts`` None while open);
    ``pnl`` net of fees and ``fees`` (quote); ``max_qty`` the largest |position| (base); ``fills`` how many
    fills took part; ``strategy`` of the opening fill's order ("" when unknown)."""

    symbol: str
    side: str
    open_ts: int
    close_ts: int | None
    pnl: float
    fees: float
    max_qty: float
    fills: int
    strategy: str = ""

    @property
    def holding_s(self) -> float:
        return ((self.close_ts or self.open_ts) - self.open_ts) / 1e9


def _get(f: Any, name: str, default: Any = None) -> Any:
    if isinstance(f, Mapping):
        return f.get(name, default)
    return getattr(f, name, default)


class _Open:
    __slots__ = ("sign", "open_ts", "cash", "fees", "max_qty", "fills", "strategy")

    def __init__(self, sign: float, ts: int, strategy: str) -> None:
        self.sign, self.open_ts, self.strategy = sign, ts, strategy
        self.cash = self.fees = self.max_qty = 0.0
        self.fills = 0


def round_trips(fills: Iterable[Any], strategy_of: Mapping[str, str] | None = None) -> tuple[list[Trade], list[Trade]]:
    """``(closed, open)`` round trips from ``fills`` (objects or mappings with ``symbol``, ``side``, ``qty`` > 0,
    ``price``, ``fee``, ``ts`` and optionally ``order_id``), taken in time order (stable). ``strategy_of`` maps
    an order id to its strategy. Open trades carry their P&L so far without the open position's value."""
    rows = sorted(fills, key=lambda f: int(_get(f, "ts")))
    pos: dict[str, float] = {}
    cur: dict[str, _Open] = {}
    closed: list[Trade] = []
    som = strategy_of or {}

    def close(sym: str, ts: int | None) -> None:
        o = cur.pop(sym)
        closed_or_open = Trade(
            sym,
            "long" if o.sign > 0 else "short",
            o.open_ts,
            ts,
            o.cash - o.fees,
            o.fees,
            o.max_qty,
            o.fills,
            o.strategy,
        )
        if ts is not None:
            closed.append(closed_or_open)
        else:
            still.append(closed_or_open)

    still: list[Trade] = []
    for f in rows:
        sym = str(_get(f, "symbol"))
        side = str(_get(f, "side"))
        qty = float(_get(f, "qty"))
        price = float(_get(f, "price"))
        fee = float(_get(f, "fee", 0.0) or 0.0)
        ts = int(_get(f, "ts"))
        strat = som.get(str(_get(f, "order_id", "")), "")
        q = qty if side == "buy" else -qty
        p = pos.get(sym, 0.0)
        while q != 0.0:
            if sym not in cur:
                cur[sym] = _Open(1.0 if q > 0 else -1.0, ts, strat)
                p = 0.0
            o = cur[sym]
            part = q
            if p != 0.0 and (p + q) * p < 0.0:  # through zero: this part only reaches flat
                part = -p
            share = abs(part) / qty if qty else 0.0
            o.cash -= part * price
            o.fees += fee * share
            o.fills += 1
            p += part
            q -= part
            o.max_qty = max(o.max_qty, abs(p))
            if abs(p) <= _FLAT * o.max_qty:
                p = 0.0
                close(sym, ts)
            if abs(q) <= _FLAT * qty:
                q = 0.0
        pos[sym] = p
    for sym in sorted(cur):
        close(sym, None)
    return closed, still


def trades_from_positions(
    symbol: str,
    ts: ArrayLike,
    position: ArrayLike,
    equity: ArrayLike,
    strategy: str = "",
    fees: ArrayLike | None = None,
) -> list[Trade]:
    """Round trips of a position series sampled at marks (vectorised backtests that keep no fills): a trade opens
    at the first mark holding a position after a flat one and closes at the first mark that is flat again (or that
    holds the opposite side: a flip closes one trade and opens the next there). Its P&L is the symbol's equity at
    the close minus its equity at the mark before the open (quote; costs included). A position still held at the
    last mark is an open trade (``close_ts`` None).

    ``fees`` (optional, one per mark): the fee of the fill that changed the position to ``position[i]`` (quote, 0
    where it did not change). Each trade then carries the fees of its fills and their count (``fills``); a flip's
    fee is split between the trade it closes and the one it opens in proportion to the quantities (as
    :func:`round_trips` splits a fill), so the trades' fees add up to the total. Without ``fees`` they are 0.

    >>> t = trades_from_positions("X", [1, 2, 3, 4, 5], [0.0, 1.0, 1.0, -1.0, 0.0], [100.0, 101.0, 103.0, 102.0, 104.0],
    ...                           fees=[0.0, 0.1, 0.0, 0.2, 0.1])
    >>> [(x.side, x.open_ts, x.close_ts, x.pnl, round(x.fees, 12), x.fills) for x in t]
    [('long', 2, 4, 2.0, 0.2, 2), ('short', 4, 5, 2.0, 0.2, 2)]
    """
    import numpy as np

    t = np.asarray(ts, dtype=np.int64)
    q = np.asarray(position, dtype=np.float64)
    e = np.asarray(equity, dtype=np.float64)
    fee = np.zeros(t.size) if fees is None else np.asarray(fees, dtype=np.float64)
    if fee.shape != t.shape:
        raise ValueError("fees must have one value per mark")
    counted = fees is not None
    out: list[Trade] = []
    sign = np.sign(q)
    start = None  # index of the opening mark
    base = 0.0
    peak = 0.0
    paid = 0.0  # fees of the running trade's fills
    n = 0  # and their count
    for i in range(t.size):
        s_prev = sign[i - 1] if i else 0.0
        q_prev = float(q[i - 1]) if i else 0.0
        changed = float(q[i]) != q_prev
        flipped = False
        opening_fee = float(fee[i]) if changed else 0.0  # what is left of this mark's fill for a trade opening here
        if start is not None and sign[i] != s_prev:  # flat again or flipped: close
            part = opening_fee
            if sign[i] != 0.0:  # a flip: the part of the fill that reaches flat
                part = opening_fee * abs(q_prev) / (abs(q_prev) + abs(float(q[i])))
            out.append(
                Trade(
                    symbol,
                    "long" if s_prev > 0 else "short",
                    int(t[start]),
                    int(t[i]),
                    float(e[i] - base),
                    paid + part,
                    peak,
                    n + (1 if counted and changed else 0),
                    strategy,
                )
            )
            opening_fee -= part
            start, flipped = None, True
            paid, n = 0.0, 0
        elif start is not None and changed:  # scaling in or out of the running trade
            paid += opening_fee
            n += 1 if counted else 0
            opening_fee = 0.0
        if start is None and sign[i] != 0.0:
            start = i
            base = float(e[i]) if flipped or not i else float(e[i - 1])
            peak = 0.0
            paid, n = opening_fee, (1 if counted and changed else 0)
        if start is not None:
            peak = max(peak, abs(float(q[i])))
    if start is not None:
        out.append(
            Trade(
                symbol,
                "long" if sign[start] > 0 else "short",
                int(t[start]),
                None,
                float(e[-1] - base),
                paid,
                peak,
                n,
                strategy,
            )
        )
    return out
