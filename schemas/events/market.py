"""Market data: trades and bars."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from schemas.time import TS_MAX_NS, TS_MIN_NS

from .base import (
    _INF,
    _SEEN_NAMES,
    _SEEN_SYMBOLS,
    ID_PATTERN,
    NAME_PATTERN,
    Event,
    Price,
    Quantity,
    SchemaVersion1,
    Symbol,
    Timestamp,
    _id,
    _name,
    _nonneg,
    _pos,
    _symbol,
    _ts,
    _version,
)


class Tick(Event, tag="tick", frozen=True, kw_only=True):
    """One trade. ``ts`` ns UTC; ``price`` quote/base, finite > 0; ``qty`` base units, finite >= 0.

    ``trade_id`` is unique per (venue, symbol) and deterministic (replays re-emit the same id);
    ``side`` is the aggressor side; ``synthetic`` marks ticks generated from bars.
    """

    symbol: Symbol
    ts: Timestamp
    price: Price
    qty: Quantity
    side: Literal["buy", "sell", "unknown"]
    trade_id: Annotated[str, Meta(min_length=1, max_length=128, extra_json_schema={"pattern": ID_PATTERN})]
    venue: Annotated[str, Meta(min_length=1, max_length=64, extra_json_schema={"pattern": NAME_PATTERN})]
    synthetic: bool = False
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        # Inlined (hot path): one chained comparison per number, NaN fails all of them.
        if not 0.0 < self.price < _INF:
            raise ValueError(f"price must be finite and > 0, got {self.price!r}")
        if not 0.0 <= self.qty < _INF:
            raise ValueError(f"qty must be finite and >= 0, got {self.qty!r}")
        if not TS_MIN_NS <= self.ts < TS_MAX_NS:
            _ts(self.ts)
        if self.schema_version != 1:
            _version(1, self.schema_version)
        if self.symbol not in _SEEN_SYMBOLS:
            _symbol(self.symbol)
        if self.venue not in _SEEN_NAMES:
            _name(self.venue, "venue")
        tid = self.trade_id
        if not (0 < len(tid) <= 128 and tid.isascii() and tid.isprintable() and " " not in tid):
            _id(tid, "trade_id")


class Bar(Event, tag="bar", frozen=True, kw_only=True):
    """OHLCV bar. ``ts`` is the bar *open* time (ns UTC); the bar covers ``[ts, ts + resolution_s * 1e9)``.

    Prices in quote/base (finite > 0, ``low <= open, close <= high``, ``vwap`` within ``[low, high]`` up to float
    rounding); volumes in base units (finite >= 0; ``buy_volume + sell_volume <= volume``, the rest being
    unknown-side volume); ``trade_count`` >= 0. An empty bar (``trade_count == 0``, ``synthetic=True``) carries the
    previous close as all prices and as ``vwap``.
    """

    symbol: Symbol
    ts: Timestamp
    resolution_s: Annotated[int, Meta(gt=0, le=31 * 86_400, description="Bar length, seconds (max 31 days).")]
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity
    buy_volume: Quantity = 0.0
    sell_volume: Quantity = 0.0
    vwap: Price
    trade_count: Annotated[int, Meta(ge=0, description="Number of trades in the bar.")] = 0
    synthetic: bool = False
    schema_version: SchemaVersion1 = 1

    def __post_init__(self) -> None:
        lo, hi, vol, bv, sv = self.low, self.high, self.volume, self.buy_volume, self.sell_volume
        # fast path (bars are built by the million in the flow): every numeric rule in one chained test
        if (
            0.0 < lo <= self.open <= hi < _INF
            and lo <= self.close <= hi
            and lo - 1e-9 * hi <= self.vwap <= hi * (1 + 1e-9)
            and 0.0 <= bv < _INF
            and 0.0 <= sv < _INF
            and vol < _INF
            and bv + sv <= vol * (1 + 1e-9) + 1e-12
            and 0 < self.resolution_s <= 2_678_400
            and self.trade_count >= 0
            and self.schema_version == 1
        ):
            _ts(self.ts)
            _symbol(self.symbol)
            return
        self._explain()

    def _explain(self) -> None:
        """Slow path: find the first broken rule and raise it with a precise message."""
        for name in ("open", "high", "low", "close", "vwap"):
            _pos(name, getattr(self, name))
        for name in ("volume", "buy_volume", "sell_volume"):
            _nonneg(name, getattr(self, name))
        _ts(self.ts)
        _symbol(self.symbol)
        _version(1, self.schema_version)
        if not 0 < self.resolution_s <= 31 * 86_400:
            raise ValueError(f"resolution_s must be in (0, 2678400] seconds, got {self.resolution_s!r}")
        if self.trade_count < 0:
            raise ValueError(f"trade_count must be >= 0, got {self.trade_count!r}")
        lo, hi = self.low, self.high
        if not (lo <= self.open <= hi and lo <= self.close <= hi):
            raise ValueError(
                f"OHLC inconsistent: need low <= open, close <= high; got {self.open}, {hi}, {lo}, {self.close}"
            )
        tol = 1e-9 * hi
        if not lo - tol <= self.vwap <= hi + tol:
            raise ValueError(f"vwap {self.vwap} outside [low, high] = [{lo}, {hi}]")
        if self.buy_volume + self.sell_volume > self.volume * (1 + 1e-9) + 1e-12:
            raise ValueError(
                f"buy_volume + sell_volume ({self.buy_volume} + {self.sell_volume}) exceeds volume {self.volume}"
            )
