"""Conservation under bad input on the real broker and PostgreSQL (issue 15 item 3, the live half).

Two runs of `levibot run --live --venue sim --until-end` over the same replayed history (BTC and ETH, 12,000 ticks):
a clean one, and one whose `ticks` topic holds thousands of bad messages between the valid ones, on both partitions:

* byte-level mutations of the real tick payloads (``tests.support.fuzz.mutate``; only those the decoder rejects:
  cut JSON, bytes that are not UTF-8, wrong types, out-of-range numbers, ...),
* schema-valid ticks the input policy refuses: an unknown symbol, a time far ahead of the stream, exact duplicates of
  valid ticks (same trade id),
* an empty value and oversized payloads.

Checked exactly: messages in the topic = ticks processed (stored in PostgreSQL) + dead letters (``dlq``); every dead
letter carries a reason and its own (partition, offset), each bad message has one, none of the valid ones has; and
the orders of the run with bad input are identical, by id and content, to the clean run's.
"""

from __future__ import annotations

import random
from collections import Counter

import psycopg
import pytest

from connectors.history import iter_tick_events, load_history
from connectors.kafka.sink import EventProducer
from connectors.kafka.source import iter_topic
from schemas.codec import DecodeError, decode, encode
from schemas.events import DeadLetter, Order, Tick
from tests.support import DATA
from tests.support.flowproc import (
    BAR_ARGS,
    create_topics,
    drop_topics,
    flow_env,
    new_prefix,
    read_events,
    run_ok,
    topic_count,
)
from tests.support.fuzz import mutate

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

MAX_BARS = 750  # per file: 2 x 750 x 8 = 12,000 valid ticks
BAD_EVERY = 3  # one bad message after every third valid tick: 4,000 bad messages
MAX_MESSAGE_BYTES = 64 * 1024


def bad_messages(valid: list[Tick], n: int, rng: random.Random) -> list[tuple[bytes, bytes | None, str]]:
    """``n`` bad messages as (key, value, what): mostly rejected mutations of valid payloads, plus the policy's cases
    (a ``duplicate_tick`` is a placeholder: :func:`produce` puts a copy of the preceding valid tick there)."""
    seeds = [encode(t) for t in valid[:500]]
    out: list[tuple[bytes, bytes | None, str]] = []
    while len(out) < n:
        k = len(out) % 20
        t = rng.choice(valid)
        if k == 0:
            out.append(
                (
                    t.symbol.encode(),
                    encode(
                        Tick(
                            symbol="DOGE-USD",
                            ts=t.ts,
                            price=0.07,
                            qty=1000.0,
                            side="buy",
                            trade_id=f"doge:{len(out)}",
                            venue="fuzz",
                        )
                    ),
                    "unknown_symbol",
                )
            )
        elif k == 1:
            out.append(
                (
                    t.symbol.encode(),
                    encode(
                        Tick(
                            symbol=t.symbol,
                            ts=4_000_000_000 * 10**9 + len(out),
                            price=t.price,
                            qty=t.qty,
                            side=t.side,
                            trade_id=f"future:{len(out)}",
                            venue="fuzz",
                        )
                    ),
                    "future_skew",
                )
            )
        elif k == 2:  # filled in by produce(): a copy of the valid tick just before it
            out.append((b"", None, "duplicate_tick"))
        elif k == 3 and len(out) % 200 == 3:
            out.append((t.symbol.encode(), b" " * (MAX_MESSAGE_BYTES + 1), "oversized"))
        elif k == 4 and len(out) % 400 == 4:
            out.append((t.symbol.encode(), b"", "empty"))
        else:
            raw = mutate(rng, rng.choice(seeds), seeds)
            try:
                decode(raw, Tick, max_bytes=MAX_MESSAGE_BYTES)
            except DecodeError as exc:
                out.append((t.symbol.encode(), raw, exc.reason))
    return out


def produce(bootstrap: str, topic: str, valid: list[Tick], bad: list[tuple[bytes, bytes | None, str]]) -> None:
    p = EventProducer(bootstrap, topic)
    j = 0
    for i, t in enumerate(valid):
        p.produce_raw(t.symbol.encode(), encode(t))
        if bad and i % BAD_EVERY == BAD_EVERY - 1 and j < len(bad):
            key, value, what = bad[j]
            if what == "duplicate_tick":
                key, value = t.symbol.encode(), encode(t)
            p.produce_raw(key, value)
            j += 1
    assert j == len(bad) or not bad
    p.flush(120)


def run_flow(bootstrap: str, prefix: str, tmp_path, name: str, pg_dsn: str | None) -> list[Order]:
    extra = {"LEVIBOT_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES)}
    if pg_dsn:
        extra["LEVIBOT_PG_DSN"] = pg_dsn
    env = flow_env(prefix=prefix, var=tmp_path / name, **extra)
    run_ok(
        ["run", "--live", "--venue", "sim", "--until-end", "--stores", "postgres" if pg_dsn else "none", *BAR_ARGS],
        env,
        tmp_path / f"{name}.log",
        300,
    )
    return read_events(bootstrap, f"{prefix}orders", Order)


def test_thousands_of_bad_messages_are_conserved_and_change_no_order(kafka_bootstrap, pg_dsn, tmp_path):
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=MAX_BARS)
    valid = list(iter_tick_events(history.ticks))
    bad = bad_messages(valid, len(valid) // BAD_EVERY, random.Random(15))
    clean, dirty = new_prefix("consc"), new_prefix("consd")
    try:
        for prefix in (clean, dirty):
            create_topics(kafka_bootstrap, prefix)
        produce(kafka_bootstrap, f"{clean}ticks", valid, [])
        produce(kafka_bootstrap, f"{dirty}ticks", valid, bad)
        clean_orders = run_flow(kafka_bootstrap, clean, tmp_path, "clean", None)
        dirty_orders = run_flow(kafka_bootstrap, dirty, tmp_path, "dirty", pg_dsn)
        n_in = topic_count(kafka_bootstrap, f"{dirty}ticks")
        located = [
            (m.partition(), m.offset(), m.value())
            for msgs in iter_topic(kafka_bootstrap, f"{dirty}ticks", timeout_s=30)
            for m in msgs
        ]
        dead = read_events(kafka_bootstrap, f"{dirty}dlq", DeadLetter)
    finally:
        drop_topics(kafka_bootstrap, [clean, dirty])
    with psycopg.connect(pg_dsn) as conn:
        # the ticks table records every decoded tick, the ones the input policy refused too (they are also in dlq):
        # processed = the stored ticks the policy accepted
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT trade_id) FROM ticks WHERE trade_id NOT LIKE 'doge:%%' "
            "AND trade_id NOT LIKE 'future:%%'"
        ).fetchone()
        pg_dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]

    # in = processed + dead-lettered, exactly
    assert n_in == len(valid) + len(bad) == len(located)
    assert stored == (len(valid), len(valid))
    assert len(dead) == len(bad) == pg_dead, (len(dead), len(bad), pg_dead)
    assert n_in == stored[0] + len(dead)
    # a reason on every dead letter, one per bad message, at its own coordinates
    assert all(d.error and d.source_topic == f"{dirty}ticks" for d in dead)
    coords = Counter((d.partition, d.offset) for d in dead)
    assert max(coords.values()) == 1
    valid_payloads = Counter(encode(t) for t in valid)
    first_of: dict[bytes, tuple[int, int]] = {}
    for p, o, v in sorted(located, key=lambda x: (x[0], x[1])):
        if v in valid_payloads and v not in first_of:
            first_of[v] = (p, o)
    for p, o, v in located:  # the first copy of every valid tick was processed, never dead-lettered
        if v in first_of and first_of[v] == (p, o):
            assert (p, o) not in coords, (p, o)
    want = Counter("invalid_json" if w == "empty" else w for _, _, w in bad)
    got = Counter(d.error for d in dead)
    assert got == want, (got, want)
    assert len(want) >= 6, want  # the bad input really is of many kinds
    # the valid ticks give the same orders as the clean run
    assert clean_orders, "the clean run gave no orders"
    assert sorted(encode(o) for o in dirty_orders) == sorted(encode(o) for o in clean_orders)
