"""The strategy interface: one call per closed feature bar, returning a target position or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True, slots=True)
class Intent:
    """What a strategy wants: hold ``target`` (fraction of its capital, -1..1, sign = direction) in ``symbol``.

    ``ts``: event time of the decision (ns, the close of the bar that caused it); ``confidence``: 0..1;
    ``reason``: short text kept with the risk decision.
    """

    strategy: str
    symbol: str
    ts: int
    target: float
    confidence: float = 1.0
    reason: str = ""


class Strategy(Protocol):
    """``on_bar`` sees every closed bar of the strategy's resolution with its feature values (None until warm)."""

    name: str

    def on_bar(self, symbol: str, ts: int, close: float, features: Sequence[float] | None) -> Intent | None:
        """Return a new intent when the wanted position changes, else None."""
        ...
