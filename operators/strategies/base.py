"""The strategy interface: one call per closed feature bar, returning a target position or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StrategyTarget:
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


@runtime_checkable
class Strategy(Protocol):
    """The one strategy interface. ``on_bar`` sees every closed bar of the strategy's resolution: ``ts`` its close
    (event time, ns), ``close`` (quote/base), the feature values (None until warm), and two keywords a strategy may
    ignore: ``score``, the model's calibrated probability of an up move (fraction in [0, 1], or None), and ``bar``,
    the closed bar itself (``open``, ``high``, ``low``, ``close``, ``volume``; or None)."""

    name: str

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
        """Return a new :class:`StrategyTarget` when the wanted position changes, else None."""
        ...
