"""TWAP and VWAP slicing of an approved parent order into child orders scheduled in event time.

A parent ``Order`` (quantity ``Q`` base units, decided at ``start`` ns) is cut into children over the horizon
``[start, start + horizon_s)``: child ``i`` is released at ``start + i * slice_s`` (ns, integer arithmetic) for
``i = 0 .. n-1`` with ``n = ceil(horizon_s / slice_s)``; the last slice may be shorter than ``slice_s``.

* **TWAP**: every slice gets weight proportional to its length (equal weights for equal slices).
* **VWAP**: slice ``i`` covering ``[a, b)`` gets weight ``Σ_b share_b * overlap([a, b), bucket b) / bucket_s``
  from a :class:`VolumeProfile`: the share of daily volume traded in each time-of-day bucket (UTC), learned
  from history, so the child follows the volume the market usually trades then. All-zero weights fall back to
  TWAP.

Quantities: with ``lot`` > 0 the child sizes are whole lots (largest-remainder rounding of ``Q * weight``,
then the remainder of ``Q`` that is not a whole lot goes to the last child); children below ``min_child_qty``
are merged into the following one. **Exact sum**: the last child absorbs the float rounding so that
``math.fsum(child.qty) == Q`` holds exactly (checked by construction, tested). Children with zero size are
dropped. Child ids are ``stable_id("chd", parent.order_id, i)``: deterministic, so a replay or a recovery
re-emits the same ids and consumers of ``orders`` can deduplicate by ``order_id`` (the contract). Children are
market orders (``IOC``) carrying ``parent_id = parent.order_id``, the parent's side, strategy, symbol and
``reduce_only``, and ``ts`` = their release time.

Release in event time: hand all children to a broker that fills an order at the first tick at or after its
``ts`` + latency (:class:`operators.execution.SimBroker`), or hold them in
a :class:`ChildQueue` and publish each once the stream's event time reaches its ``ts``.

>>> from schemas.events import Order
>>> p = Order(order_id="ord-1", strategy="trend", symbol="BTC-USD", side="buy", qty=1.0, type="market",
...           ts=1_700_000_000_000_000_000)
>>> kids = twap_children(p, horizon_s=1800, slice_s=600)
>>> [k.qty for k in kids], [(k.ts - p.ts) // 10**9 for k in kids]
([0.3333333333333333, 0.3333333333333333, 0.33333333333333337], [0, 600, 1200])
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from operators.ids import stable_id
from schemas.events import Order
from schemas.time import NS_PER_S as NS

__all__ = ["VolumeProfile", "slice_weights", "split_quantity", "twap_children", "vwap_children", "ChildQueue"]

DAY_S = 86_400


@dataclass(frozen=True)
class VolumeProfile:
    """Share of a day's volume per time-of-day bucket (UTC). ``bucket_s`` seconds divide a day; ``shares``
    has ``86400 / bucket_s`` entries, each >= 0, summing to 1 (fractions).

    >>> prof = VolumeProfile.learn([0, 1800 * NS, 86_400 * NS], [1.0, 3.0, 1.0], bucket_s=1800)
    >>> prof.shares[:2], len(prof.shares)
    ((0.4, 0.6), 48)
    """

    bucket_s: int
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.bucket_s <= 0 or DAY_S % self.bucket_s:
            raise ValueError("bucket_s must divide a day (86400 s)")
        if len(self.shares) != DAY_S // self.bucket_s:
            raise ValueError(f"need {DAY_S // self.bucket_s} shares")
        if any(not (s >= 0 and math.isfinite(s)) for s in self.shares) or abs(math.fsum(self.shares) - 1) > 1e-9:
            raise ValueError("shares must be finite, >= 0 and sum to 1")

    @classmethod
    def flat(cls, bucket_s: int = 1800) -> VolumeProfile:
        """The uniform profile (VWAP with it is TWAP)."""
        n = DAY_S // bucket_s
        return cls(bucket_s, tuple([1.0 / n] * n))

    @classmethod
    def learn(cls, ts_ns: Any, volume: Any, bucket_s: int = 1800, *, smoothing: float = 0.0) -> VolumeProfile:
        """Learn from history: bars (or trades) at ``ts_ns`` (int ns UTC; a bar counts in the bucket of its open
        time) with ``volume`` (base units). ``share_b = (V_b + smoothing * mean V) / Σ (...)`` where ``V_b`` is
        the total volume in bucket ``b``; ``smoothing`` (>= 0) keeps rarely traded buckets above zero."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        v = np.asarray(volume, dtype=np.float64)
        if ts.shape != v.shape or ts.size == 0:
            raise ValueError("need equal-length, non-empty ts and volume")
        if not np.isfinite(v).all() or (v < 0).any():
            raise ValueError("volume must be finite and >= 0")
        n = DAY_S // bucket_s
        b = ((ts // NS) % DAY_S) // bucket_s
        tot = np.bincount(b, weights=v, minlength=n)
        tot = tot + smoothing * tot.mean()
        s = tot.sum()
        if s <= 0:
            return cls.flat(bucket_s)
        shares = tot / s
        return cls(bucket_s, tuple(float(x) for x in shares))

    def weight(self, a_ns: int, b_ns: int) -> float:
        """Expected share of a day's volume traded in ``[a_ns, b_ns)`` (ns UTC), from the bucket shares."""
        w = 0.0
        bs = self.bucket_s * NS
        t = a_ns
        while t < b_ns:
            k = t // bs
            end = min(b_ns, (k + 1) * bs)
            w += self.shares[int(k % len(self.shares))] * (end - t) / bs
            t = end
        return w


def slice_weights(
    start_ns: int, horizon_s: float, slice_s: float, profile: VolumeProfile | None = None
) -> tuple[list[int], list[float]]:
    """Release times (ns) and normalised weights of the slices of ``[start, start + horizon)``.

    >>> slice_weights(0, 90, 60)
    ([0, 60000000000], [0.6666666666666666, 0.3333333333333333])
    """
    if profile is None:  # the weights depend on the lengths only: computed once per (horizon, slice)
        key = (horizon_s, slice_s)
        hit = _TWAP_WEIGHTS.get(key)
        if hit is None:
            _, w0 = _slice_weights(0, horizon_s, slice_s, None)
            hit = (round(slice_s * NS), tuple(w0))
            if len(_TWAP_WEIGHTS) < 1024:
                _TWAP_WEIGHTS[key] = hit
        s_ns, w = hit
        return [start_ns + i * s_ns for i in range(len(w))], list(w)
    return _slice_weights(start_ns, horizon_s, slice_s, profile)


#: (horizon_s, slice_s) -> (slice length ns, TWAP weights): what _slice_weights gives for any start
_TWAP_WEIGHTS: dict[tuple[float, float], tuple[int, tuple[float, ...]]] = {}


def _slice_weights(
    start_ns: int, horizon_s: float, slice_s: float, profile: VolumeProfile | None
) -> tuple[list[int], list[float]]:
    if horizon_s <= 0 or slice_s <= 0:
        raise ValueError("horizon_s and slice_s must be > 0")
    h_ns, s_ns = round(horizon_s * NS), round(slice_s * NS)
    n = -(-h_ns // s_ns)
    times = [start_ns + i * s_ns for i in range(n)]
    ends = times[1:] + [start_ns + h_ns]
    raw = [float(e - t) for t, e in zip(times, ends, strict=True)]
    if profile is not None:
        pw = [profile.weight(t, e) for t, e in zip(times, ends, strict=True)]
        if math.fsum(pw) > 0:
            raw = pw
    tot = math.fsum(raw)
    return times, [r / tot for r in raw]


def split_quantity(qty: float, weights: Sequence[float], lot: float = 0.0, min_child_qty: float = 0.0) -> list[float]:
    """Split ``qty`` (base units) by ``weights`` (sum 1) so that ``math.fsum(result) == qty`` exactly.

    Zero entries stay in place (so indices match the slices); see the module docstring for lots and minimum size.

    >>> split_quantity(1.0, [0.5, 0.25, 0.25], lot=0.3)
    [0.3, 0.3, 0.4]
    >>> import math; q = split_quantity(0.7, [1 / 3] * 3); math.fsum(q) == 0.7
    True
    """
    if not (qty > 0 and math.isfinite(qty)):
        raise ValueError("qty must be finite and > 0")
    n = len(weights)
    if n == 0:
        raise ValueError("need at least one weight")
    if lot > 0:
        units = math.floor(qty / lot + 1e-9)
        exact = [units * w for w in weights]
        counts = [math.floor(x) for x in exact]
        order = sorted(range(n), key=lambda i: (-(exact[i] - counts[i]), i))
        for i in order[: units - sum(counts)]:
            counts[i] += 1
        out = [c * lot for c in counts]
    else:
        out = [qty * w for w in weights]
    if min_child_qty > 0:  # merge small children forward (the last one collects what is left)
        carry = 0.0
        for i in range(n - 1):
            if 0 < out[i] + carry < min_child_qty or (carry and out[i] == 0):
                carry += out[i]
                out[i] = 0.0
            else:
                out[i] += carry
                carry = 0.0
        out[-1] += carry
    # the last non-empty child absorbs the rest, nudged by ulps until the exact sum holds
    last = max((i for i in range(n) if out[i] > 0), default=n - 1)
    out[last] = 0.0
    rest = qty - math.fsum(out)
    if rest <= 0:  # lots rounded past the total (cannot happen with floor); put everything in one child
        out = [0.0] * n
        rest = qty
    out[last] = rest
    others = [i for i in range(n) if i != last and out[i] > 0]
    for attempt in range(8):
        for _ in range(64):
            err = math.fsum(out) - qty
            if err == 0:
                return out
            out[last] = math.nextafter(out[last], -math.inf if err > 0 else math.inf)
        if not others:
            break
        # no value of the last child reaches the exact sum (the others sum to an odd multiple of half an ulp of
        # the total, which round-half-even never lands on): move another child by one ulp and try again
        j = others[attempt % len(others)]
        out[j] = math.nextafter(out[j], 0.0)
        out[last] = qty - math.fsum(out[i] for i in range(n) if i != last)
    raise ArithmeticError("could not make the children sum exactly to the parent")  # pragma: no cover


def _children(parent: Order, times: list[int], qtys: list[float]) -> list[Order]:
    out = []
    for i, (t, q) in enumerate(zip(times, qtys, strict=True)):
        if q <= 0:
            continue
        out.append(
            Order(
                order_id=stable_id("chd", parent.order_id, i),
                parent_id=parent.order_id,
                strategy=parent.strategy,
                symbol=parent.symbol,
                side=parent.side,
                qty=q,
                type="market",
                tif="IOC",
                ts=t,
                reduce_only=parent.reduce_only,
            )
        )
    return out


def twap_children(
    parent: Order,
    horizon_s: float,
    slice_s: float,
    *,
    start_ns: int | None = None,
    lot: float = 0.0,
    min_child_qty: float = 0.0,
) -> list[Order]:
    """TWAP children of ``parent`` over ``horizon_s`` seconds from ``start_ns`` (default ``parent.ts``)."""
    start = parent.ts if start_ns is None else start_ns
    times, w = slice_weights(start, horizon_s, slice_s)
    return _children(parent, times, split_quantity(parent.qty, w, lot, min_child_qty))


def vwap_children(
    parent: Order,
    profile: VolumeProfile,
    horizon_s: float,
    slice_s: float,
    *,
    start_ns: int | None = None,
    lot: float = 0.0,
    min_child_qty: float = 0.0,
) -> list[Order]:
    """VWAP children of ``parent``: like :func:`twap_children` with weights from ``profile``.

    >>> from schemas.events import Order
    >>> prof = VolumeProfile(43_200, (0.75, 0.25))            # 75 % of the volume in the first half-day
    >>> p = Order(order_id="o", strategy="s", symbol="ETH-USD", side="sell", qty=4.0, type="market",
    ...           ts=1_700_006_400_000_000_000)                # 00:00 UTC
    >>> [k.qty for k in vwap_children(p, prof, horizon_s=86_400, slice_s=43_200)]
    [3.0, 1.0]
    """
    start = parent.ts if start_ns is None else start_ns
    times, w = slice_weights(start, horizon_s, slice_s, profile)
    return _children(parent, times, split_quantity(parent.qty, w, lot, min_child_qty))


class ChildQueue:
    """Children waiting for their release time; pop them as event time advances. Picklable, bounded by the
    children pushed and not yet released.

    >>> from schemas.events import Order
    >>> p = Order(order_id="o", strategy="s", symbol="BTC-USD", side="buy", qty=2.0, type="market", ts=10**18)
    >>> q = ChildQueue(); q.push(twap_children(p, 120, 60))
    >>> [c.qty for c in q.pop_due(10**18)], len(q), [c.qty for c in q.pop_due(10**18 + 60 * NS)]
    ([1.0], 1, [1.0])
    """

    def __init__(self) -> None:
        self.heap: list[tuple[int, str, Order]] = []

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, children: Sequence[Order]) -> None:
        """Add children (a re-pushed ``order_id`` is ignored)."""
        ids = {oid for _, oid, _ in self.heap}
        for c in children:
            if c.order_id not in ids:
                heapq.heappush(self.heap, (c.ts, c.order_id, c))
                ids.add(c.order_id)

    def pop_due(self, now_ns: int) -> list[Order]:
        """Children with ``ts <= now_ns`` in (ts, order_id) order."""
        out = []
        while self.heap and self.heap[0][0] <= now_ns:
            out.append(heapq.heappop(self.heap)[2])
        return out

    def cancel_parent(self, parent_id: str) -> int:
        """Drop the unreleased children of ``parent_id``; returns how many."""
        keep = [x for x in self.heap if x[2].parent_id != parent_id]
        n = len(self.heap) - len(keep)
        heapq.heapify(keep)
        self.heap = keep
        return n
