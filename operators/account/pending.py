"""``PendingTicks``: one symbol's trades waiting in the account stage for the venue, as flat typed arrays.

The account feeds the venue a symbol's trades only once its clock reaches the next decision time (every symbol of
the account must have progressed that far, see :mod:`operators.account.stage`), so until then each of the symbol's
batches waits. With many symbols trading a tick or two per batch, a queue of one object per batch (its columns as
numpy arrays) cost about 650 bytes per waiting trade in memory and as many objects in every snapshot; here a trade
costs 32 bytes (its key, time, price and quantity in four ``array`` columns) plus 8 for the end of its batch, and the
queue pickles as a few byte strings however many batches wait.

The batches stay the units the venue is fed in (``ends``: each batch's end, cumulative row count), so the account
makes the same venue calls with the same rows as before.

>>> import numpy as np
>>> from types import SimpleNamespace as Cols
>>> q = PendingTicks()
>>> q.add(Cols(keys=np.array([5, 6]), ts=np.array([5, 6]), price=np.array([1.0, 1.5]), qty=np.array([2.0, 1.0])))
>>> q.add(Cols(keys=np.array([9]), ts=np.array([9]), price=np.array([1.25]), qty=np.array([3.0])))
>>> len(q), q.ends.tolist(), q.keys.tolist(), q.qty.tolist()
(3, [2, 3], [5, 6, 9], [2.0, 1.0, 3.0])
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["PendingTicks"]


class PendingTicks:
    """A symbol's waiting trades (stream order): ``keys``, ``ts`` (int64 ns), ``price``, ``qty`` (float64) as
    ``array`` columns; ``ends[c]`` the row after batch ``c``; ``i`` the next row to feed, ``c`` the batch it is in.

    The account reads and advances ``i`` and ``c`` itself (its hot loop) and calls :meth:`compact` after feeding."""

    __slots__ = ("keys", "ts", "price", "qty", "ends", "i", "c")

    #: rows fed before the consumed prefix is dropped (when it is also at least half of the queue)
    COMPACT_AT = 4096

    def __init__(self) -> None:
        self.keys, self.ts = array("q"), array("q")
        self.price, self.qty = array("d"), array("d")
        self.ends = array("q")
        self.i = 0
        self.c = 0

    def __len__(self) -> int:
        """Rows not fed yet."""
        return len(self.keys) - self.i

    def add(self, cols: Any) -> None:
        """Append a batch (a :class:`~operators.messages.TickColumns` with at least one trade)."""
        self.keys.frombytes(np.ascontiguousarray(cols.keys, np.int64).tobytes())
        self.ts.frombytes(np.ascontiguousarray(cols.ts, np.int64).tobytes())
        self.price.frombytes(np.ascontiguousarray(cols.price, np.float64).tobytes())
        self.qty.frombytes(np.ascontiguousarray(cols.qty, np.float64).tobytes())
        self.ends.append(len(self.keys))

    def compact(self) -> None:
        """Drop what was fed: all of it when the queue is empty, else the prefix once it is large."""
        i = self.i
        if not i:
            return
        n = len(self.keys)
        if i == n:
            self.keys, self.ts = array("q"), array("q")
            self.price, self.qty = array("d"), array("d")
            self.ends = array("q")
            self.i = self.c = 0
        elif i >= self.COMPACT_AT and 2 * i >= n:
            for a in (self.keys, self.ts, self.price, self.qty):
                del a[:i]
            c = self.c
            self.ends = array("q", [e - i for e in self.ends[c:]])
            self.i, self.c = 0, 0

    @classmethod
    def of_chunks(cls, chunks: Iterable[Any]) -> PendingTicks:
        """The queue of a stage pickled before this class: its per-batch chunks (``_Chunk``, or ``[columns, next
        row]``) in order, with the rows already fed left out of the first."""
        q = cls()
        first = True
        for ch in chunks:
            cols, i = (ch.cols, ch.i) if hasattr(ch, "cols") else (ch[0], ch[1])
            q.add(cols)
            if first:
                q.i = i
                first = False
        return q

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.keys, self.ts, self.price, self.qty, self.ends, self.i, self.c)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.keys, self.ts, self.price, self.qty, self.ends, self.i, self.c = s
