"""The columnar tick decoder (``schemas.codec.decode_tick_columns``, ``connectors.kafka.decode.decode_tick_batch``)
accepts and refuses exactly what the per-message decoder does, with the same values, errors and dead letters:
checked on recorded ticks, hand-made hostile payloads and byte-level mutations of both, in polls of mixed
sizes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from connectors.history import iter_tick_events, load_history
from connectors.kafka.decode import decode_messages, decode_tick_batch
from operators.messages import TickBatch
from schemas.codec import TICK_COLUMNS, decode_many, decode_tick_columns, encode
from schemas.events import Tick
from tests.support import DATA
from tests.support.fuzz import mutate

GOOD = Tick(symbol="BTCUSD", ts=1_700_000_000_000_000_000, price=1.5, qty=2.0, side="sell", trade_id="t1", venue="x")
HOSTILE = [
    encode(GOOD).replace(b"1.5", b"1e999"),  # price overflows to inf: Tick.__post_init__ refuses it
    encode(GOOD).replace(b'"qty":2.0', b'"qty":1e400'),
    encode(GOOD).replace(b'"BTCUSD"', b'"btc usd"'),  # symbol pattern
    encode(GOOD).replace(b'"BTCUSD"', b'"NEWSYM"'),  # a valid symbol never seen before
    encode(GOOD).replace(b'"x"', b'"-bad"'),  # venue pattern
    encode(GOOD).replace(b'"t1"', b'"t 1"'),  # a space in the trade id
    encode(GOOD).replace(b'"t1"', b'"t\\u00e91"'),  # not ASCII (escaped)
    encode(GOOD).replace(b'"t1"', b'"t\\u00011"'),  # not printable
    encode(GOOD).replace(b'"t1"', b'"t\xc3\xa91"'),  # not ASCII (raw UTF-8)
    encode(GOOD).replace(b'"t1"', b'"t\xff1"'),  # not UTF-8
    encode(GOOD).replace(b'"sell"', b'"hold"'),
    encode(GOOD).replace(b'"tick"', b'"bar"'),
    encode(GOOD)[:-1] + b',"schema_version":2}',
    encode(GOOD)[:-1] + b',"extra":"\xff"}',  # an unknown field with a byte that is not UTF-8
    b"",
    b"[]",
    b"null",
    b'{"symbol":"BTCUSD"',
    b"x" * 300,  # over the poll's limit below
    None,
]


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=40)
    return [encode(t) for t in iter_tick_events(history.ticks)][:300] + [encode(GOOD)]


def _polls(seeds: list[bytes]) -> list[list]:
    rng = random.Random(7)
    pool = seeds + [h for h in HOSTILE if h is not None]
    polls: list[list] = [seeds[:50], HOSTILE, [encode(GOOD)] * 3]
    for _ in range(300):
        n = rng.choice([1, 2, 5, 20, 100])
        poll = []
        for _ in range(n):
            r = rng.random()
            if r < 0.6:
                poll.append(rng.choice(seeds))
            elif r < 0.75:
                poll.append(rng.choice(HOSTILE))
            else:
                poll.append(mutate(rng, rng.choice(pool), pool))
        polls.append(poll)
    return polls


def test_columns_equal_the_per_message_decoder(seeds: list[bytes]) -> None:
    refused = accepted = 0
    for poll in _polls(seeds):
        events, failures = decode_many(poll, Tick, max_bytes=256)
        cols, kept, col_failures = decode_tick_columns(poll, max_bytes=256)
        assert [(i, e.reason, e.detail) for i, e in col_failures] == [(i, e.reason, e.detail) for i, e in failures]
        assert kept == [i for i in range(len(poll)) if i not in {j for j, _ in failures}]
        for name in TICK_COLUMNS:
            assert cols[name] == [getattr(e, name) for e in events], name
            assert [type(v) for v in cols[name]] == [type(getattr(e, name)) for e in events], name
        refused += len(failures)
        accepted += len(events)
    assert refused > 1000 and accepted > 3000  # both paths are exercised


class _Msg:
    """What the decoder reads of a confluent-kafka message."""

    def __init__(self, value: bytes | None, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes:
        return b"k"

    def topic(self) -> str:
        return "ticks"

    def partition(self) -> int:
        return 3

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


def test_batch_equals_ticks_then_columns(seeds: list[bytes]) -> None:
    offset = 1000
    for poll in _polls(seeds):
        msgs = [_Msg(v, offset + i) for i, v in enumerate(poll)]
        offset += len(poll)
        events, dead = decode_messages(msgs, Tick, max_bytes=256)
        bad = {d.offset for d in dead}
        want = TickBatch.from_ticks(events, [m.offset() for m in msgs if m.offset() not in bad])
        got, got_dead = decode_tick_batch(msgs, max_bytes=256)
        assert got_dead == dead
        assert got.symbols == want.symbols
        for name in ("codes", "ts", "price", "qty", "side", "synthetic", "trade_id", "venue", "offsets"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert np.array_equal(a, b), name
        assert got.events() == events
