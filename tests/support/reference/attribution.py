"""[Reference: operators/.../attribution.py as of commit ae8e5c8, kept verbatim but for absolute imports; see __init__.py.] P&L and fees of one account split among the strategies that asked for its positions.

The orchestrator sends the account one target per symbol, the sum of its strategies' contributions, so every order
carries the orchestrator's name and the ledger alone cannot say which strategy earned what. The account keeps, per
symbol, each strategy's share of the last target it traded on (``contribution / target``; shares sum to 1 and may be
negative when strategies disagree). Between two marks the symbol's P&L is

``ΔP&L = position x mark (now) - position x mark (last mark) + cash flows of the fills in between``

(a fill of ``q`` signed base units at ``price`` with ``fee`` is a cash flow of ``-q x price - fee``), and it is split
by the shares in force over that interval; each fill's fee is split by the shares at the fill. A symbol without
contributions (one strategy, no orchestrator) belongs to the strategy named on its intents. Telescoping makes the
split exact: the strategies' P&L sums to the account's P&L (final equity minus initial cash) up to rounding.
Quote currency throughout; pure and picklable.

>>> a = StrategyAttribution()
>>> shares = {"BTC-USD": {"trend": 0.75, "mean_reversion": 0.25}}
>>> a.on_fill("BTC-USD", 2.0, 100.0, 0.4, shares["BTC-USD"])      # buy 2 at 100, fee 0.4
>>> a.mark({"BTC-USD": 110.0}, {"BTC-USD": 2.0}, shares)           # marked at 110: +20 - 0.4
>>> {k: round(v, 6) for k, v in a.pnl.items()}, {k: round(v, 6) for k, v in a.fees.items()}
({'trend': 14.7, 'mean_reversion': 4.9}, {'trend': 0.3, 'mean_reversion': 0.1})
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["StrategyAttribution", "UNATTRIBUTED"]

#: where P&L goes when a symbol has no strategy shares yet (a fill before any intent named its strategies)
UNATTRIBUTED = "unattributed"
_NONE = {UNATTRIBUTED: 1.0}  # the shares of a symbol without any (never modified)


class StrategyAttribution:
    """Running split of the account's P&L (``pnl``) and fees (``fees``) by strategy, quote currency."""

    __slots__ = ("pnl", "fees", "_value", "_flow")

    def __init__(self) -> None:
        self.pnl: dict[str, float] = {}
        self.fees: dict[str, float] = {}
        self._value: dict[str, float] = {}  # symbol -> position x mark at the last mark
        self._flow: dict[str, float] = {}  # symbol -> cash flow of its fills since the last mark

    def on_fill(
        self, symbol: str, signed_qty: float, price: float, fee: float, shares: Mapping[str, float] | None
    ) -> None:
        """A fill of ``signed_qty`` (base units, + buy) at ``price`` paying ``fee``, under ``shares``."""
        flow = self._flow
        flow[symbol] = flow.get(symbol, 0.0) - signed_qty * price - fee
        fees = self.fees
        for k, w in (shares or _NONE).items():
            fees[k] = fees.get(k, 0.0) + fee * w

    def _deltas(self, marks: Mapping[str, float], positions: Mapping[str, float]) -> dict[str, float]:
        """Each symbol's P&L since the last mark, in symbol order (so the strategies' sums do not depend on the
        order of a set, which changes with the interpreter's string hashing from one process to the next)."""
        out = {}
        value, flow = self._value, self._flow
        syms = {s for s, q in positions.items() if q != 0.0}
        syms.update(value)
        syms.update(flow)
        for sym in sorted(syms):
            q = positions.get(sym, 0.0)
            v = q * marks[sym] if q != 0.0 else 0.0
            out[sym] = v - value.get(sym, 0.0) + flow.get(sym, 0.0)
        return out

    def mark(
        self, marks: Mapping[str, float], positions: Mapping[str, float], shares: Mapping[str, Mapping[str, float]]
    ) -> None:
        """Book each symbol's P&L since the last mark (``positions`` signed base units, ``marks`` quote/base) to
        the strategies by the shares in force until now."""
        for sym, d in self._deltas(marks, positions).items():
            if d != 0.0:
                for k, w in (shares.get(sym) or {UNATTRIBUTED: 1.0}).items():
                    self.pnl[k] = self.pnl.get(k, 0.0) + d * w
            q = positions.get(sym, 0.0)
            if q != 0.0:
                self._value[sym] = q * marks[sym]
            else:
                self._value.pop(sym, None)
        self._flow.clear()

    def result(
        self, marks: Mapping[str, float], positions: Mapping[str, float], shares: Mapping[str, Mapping[str, float]]
    ) -> dict[str, dict[str, float]]:
        """Per strategy: ``net_pnl`` (fees included) and ``fees`` up to ``marks``, without booking anything."""
        pnl = dict(self.pnl)
        for sym, d in self._deltas(marks, positions).items():
            for k, w in (shares.get(sym) or {UNATTRIBUTED: 1.0}).items():
                pnl[k] = pnl.get(k, 0.0) + d * w
        return {
            k: {"net_pnl": pnl.get(k, 0.0), "fees": self.fees.get(k, 0.0)} for k in sorted(set(pnl) | set(self.fees))
        }
