"""Routing of the trading flow in a cluster: each Kafka partition's ticks stay on the process that reads them.

Bytewax sends every item of a keyed stateful step to the worker ``hash(key) % workers`` (Rust's default hasher,
SipHash-1-3 with zero keys, over the key's bytes and a final ``0xff``; the workers in index order), and spreads the
partitions of a source over the workers that list them. Left alone, a partition is read on one worker, its
``split`` state lives on another and each of its symbols' signal stage on a third: most ticks are pickled and sent
between processes twice.

:class:`Routing` chooses the keys instead. Every partition and every symbol gets a *slot* in ``0 .. SLOTS-1``: a
partition ``p`` the slot ``p % SLOTS``, a symbol the slot of the partition the Kafka producer sends it to (the
client's default partitioner: CRC-32 of the key modulo the partition count). A key is the plain name when that
already hashes to its slot modulo ``SLOTS``, else the name with ``~n`` appended for the smallest ``n`` that does.
With ``N`` workers and ``N`` dividing ``SLOTS`` (1, 2, 3, 4, 6, 12), ``hash(key) % N == slot % N``: a partition's
split state and its symbols' signal stages are on the same worker, and :class:`LocalPartitions` makes that
process the one that reads the partition (it lists only the partitions whose split key routes to it). For other
worker counts the flow is just as correct (the keys do not depend on ``N``) and exchanges more.

The keys never depend on timing or on the worker count, so a cluster resumes from a snapshot with another
number of processes (Bytewax moves each key's state to its new worker). One process uses the plain names (no
routing); a snapshot taken with one layout cannot be resumed with the other (``check_layout`` refuses it).
"""

from __future__ import annotations

import os
import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource

#: slots of the key layout: the worker counts that keep every partition's ticks local divide it
SLOTS = 12
#: the key layouts a recovery directory may hold
PLAIN, ROUTED = "plain", f"routed-{SLOTS}"

_M = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M


def siphash13(data: bytes) -> int:
    """SipHash-1-3 with keys (0, 0) of ``data`` (what Rust's ``DefaultHasher::new()`` computes)."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def rnd(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
        v0 = (v0 + v1) & _M
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _M
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _M
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _M
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        (m,) = struct.unpack_from("<Q", data, i)
        v3 ^= m
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
        v0 ^= m
    last = (n & 0xFF) << 56
    for i, c in enumerate(data[full:]):
        last |= c << (8 * i)
    v3 ^= last
    v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        v0, v1, v2, v3 = rnd(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


@lru_cache(maxsize=1 << 16)
def key_hash(key: str) -> int:
    """The hash Bytewax routes a state key by (a Rust ``String``'s ``Hash``: its bytes, then ``0xff``)."""
    return siphash13(key.encode() + b"\xff")


def worker_of(key: str, workers: int) -> int:
    """The worker (0-based) that holds ``key``'s state in a stateful step of a flow run by ``workers`` workers."""
    return key_hash(key) % workers


@lru_cache(maxsize=1 << 16)
def slotted(name: str, slot: int) -> str:
    """``name``, or ``name~n`` for the smallest ``n`` >= 1, whose hash is ``slot`` modulo :data:`SLOTS`."""
    if key_hash(name) % SLOTS == slot:
        return name
    n = 1
    while key_hash(f"{name}~{n}") % SLOTS != slot:
        n += 1
    return f"{name}~{n}"


def producer_partition(key: str, partitions: int) -> int:
    """The partition the Kafka client's default partitioner (``consistent_random``) sends a message keyed ``key``
    to: CRC-32 of the key modulo the partition count."""
    return zlib.crc32(key.encode()) % partitions


class Routing:
    """The state keys of the routed layout for a ticks topic of ``partitions`` partitions (see the module doc)."""

    layout = ROUTED

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"the ticks topic needs at least one partition, got {partitions}")
        self.partitions = partitions
        self._keys: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def partition_key(self, topic: str, partition: int) -> str:
        """The ``split`` step's key of a partition."""
        return slotted(f"{topic}/{partition}", partition % SLOTS)

    def partition_of(self, symbol: str) -> int:
        """The partition of the ticks topic the producer sends ``symbol``'s ticks to (keyed by the symbol)."""
        return producer_partition(symbol, self.partitions)

    def symbol_key(self, symbol: str) -> str:
        """The signal stage's key of a symbol: it routes like the key of the partition the symbol is produced to."""
        key = self._keys.get(symbol)
        if key is None:
            key = self._keys[symbol] = slotted(symbol, producer_partition(symbol, self.partitions) % SLOTS)
            self._names[key] = symbol
        return key

    def name(self, key: str) -> str:
        """The symbol a key of :meth:`symbol_key` stands for."""
        return self._names.get(key) or key.rsplit("~", 1)[0]


class LocalPartitions(FixedPartitionedSource):
    """A partitioned source of which this process lists only the partitions whose ``split`` key routes to its
    worker (one worker per process: worker ``process_id`` of ``processes``), so each partition is read where its
    state is. Every process must use the same ``routing``."""

    def __init__(self, source: Any, routing: Routing, process_id: int, processes: int) -> None:
        self.source = source
        self.routing = routing
        self.process_id = process_id
        self.processes = processes
        self.topic = getattr(source, "topic", "ticks")

    def list_parts(self) -> list[str]:
        r, n = self.routing, self.processes
        return [
            p for p in self.source.list_parts() if worker_of(r.partition_key(self.topic, int(p)), n) == self.process_id
        ]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
        return self.source.build_part(step_id, for_part, resume_state)

    def __getattr__(self, name: str) -> Any:  # the wrapped source's settings (``topic``, ``bootstrap``, ...)
        return getattr(self.__dict__["source"], name)


LAYOUT_FILE = "key-layout"


def check_layout(directory: Path, layout: str) -> None:
    """Record the key layout of the snapshots in a recovery directory, or refuse (``ValueError``) to resume
    snapshots of another layout: their state would sit under keys the flow no longer uses. A directory with
    snapshots and no record holds the plain layout (before routing existed)."""
    marker = directory / LAYOUT_FILE
    if marker.exists():
        found = marker.read_text().strip()
    elif any(directory.glob("part-*.sqlite3")):
        found = PLAIN
    else:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{LAYOUT_FILE}.{os.getpid()}"
        tmp.write_text(layout + "\n")
        tmp.replace(marker)
        return
    if found != layout:
        raise ValueError(
            f"the snapshots in {directory} use the {found!r} state-key layout and this run uses {layout!r} "
            f"(one process uses {PLAIN!r}, a cluster {ROUTED!r}): resume with the same kind of run, or recover "
            "from Kafka into a fresh recovery directory"
        )
    if not marker.exists():
        marker.write_text(layout + "\n")
