"""The Kafka source, sink and admin against the real broker: typed decoding, dead letters, no loss."""

from __future__ import annotations

import json

import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from connectors.kafka.admin import ensure_topics
from connectors.kafka.sink import EventProducer, KafkaEventSink, key_by_source_topic
from connectors.kafka.source import KafkaEventSource, iter_topic
from schemas.codec import decode, encode
from schemas.events import DeadLetter, Tick
from schemas.topics import TOPICS

pytestmark = pytest.mark.kafka

T0 = 1_700_000_000_000_000_000


def tick(i: int, sym: str = "BTC-USD") -> Tick:
    return Tick(
        symbol=sym,
        ts=T0 + i * 1_000_000,
        price=100.0 + i % 7,
        qty=0.5,
        side="buy",
        trade_id=f"test:{sym}:{i}",
        venue="test",
    )


def good_payload(i: int) -> bytes:
    return encode(tick(i))


def as_dict(i: int) -> dict:
    return json.loads(good_payload(i))


# Each malformed payload and the reason code it must be dead-lettered with.
MALFORMED: list[tuple[bytes, str]] = [
    (b"not json at all", "invalid_json"),
    (b'{"symbol": "BTC-USD", "ts": ', "invalid_json"),
    (json.dumps({**as_dict(1), "price": "abc"}).encode(), "validation"),
    (json.dumps({**as_dict(2), "ts": "yesterday"}).encode(), "validation"),
    (json.dumps({**as_dict(3), "price": 0}).encode().replace(b'"price": 0', b'"price": NaN'), "invalid_json"),
    (json.dumps({**as_dict(4), "price": 0}).encode().replace(b'"price": 0', b'"price": 1e999'), "validation"),
    (json.dumps({**as_dict(5), "qty": -1.0}).encode(), "validation"),
    (json.dumps({**as_dict(6), "symbol": "btc usd!"}).encode(), "validation"),
    (json.dumps({**as_dict(7), "schema_version": 99}).encode(), "unknown_schema_version"),
    (b"[1, 2, 3]", "wrong_type"),
    (b"{" + b'"pad": "' + b"x" * 70_000 + b'"}', "oversized"),
]


def test_ensure_topics_is_idempotent_and_follows_registry(kafka_bootstrap, topic_prefix):
    first = ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    assert set(first) == {f"{topic_prefix}{n}" for n in TOPICS} and set(first.values()) == {"created"}
    second = ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    assert set(second.values()) == {"exists"}
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    for name, spec in TOPICS.items():
        assert len(md.topics[f"{topic_prefix}{name}"].partitions) == spec.partitions


def test_malformed_payloads_go_to_dlq_and_nothing_is_lost(kafka_bootstrap, topic_prefix):
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["ticks", "dlq"], partitions={"ticks": 2})
    ticks_topic, dlq_topic = f"{topic_prefix}ticks", f"{topic_prefix}dlq"
    raw = EventProducer(kafka_bootstrap, ticks_topic)
    produced_good = 0
    expected_reasons: dict[int, str] = {}
    # interleave: good messages before, between and after every bad one, on both partitions
    for j, (payload, reason) in enumerate(MALFORMED):
        for k in range(20):
            raw.produce_raw(b"BTC-USD" if k % 2 else b"ETH-USD", good_payload(1000 * j + k))
            produced_good += 1
        raw.produce_raw(b"BTC-USD", payload)
        expected_reasons[j] = reason
    raw.produce_raw(None, b"")  # an empty value (tombstone-like) is malformed too
    raw.flush()
    produced = produced_good + len(MALFORMED) + 1

    flow = Dataflow("dlq-test")
    batches = op.input(
        "in",
        flow,
        KafkaEventSource(
            kafka_bootstrap, ticks_topic, Tick, batch_size=7, max_message_bytes=64 * 1024, stop_at_end=True
        ),
    )
    good: list = []
    op.output("good", op.flat_map("events", batches, lambda b: b.events), TestingSink(good))
    dead = op.filter("any_dead", op.map("dead", batches, lambda b: b.dead), bool)
    op.output("dlq", dead, KafkaEventSink(kafka_bootstrap, dlq_topic, key_fn=key_by_source_topic))
    run_main(flow)

    letters = [
        decode(m.value(), DeadLetter, max_bytes=1 << 22)
        for msgs in iter_topic(kafka_bootstrap, dlq_topic)
        for m in msgs
    ]
    assert len(good) + len(letters) == produced
    assert len(good) == produced_good
    assert {t.trade_id for t in good} == {tick(1000 * j + k).trade_id for j in range(len(MALFORMED)) for k in range(20)}
    got = sorted(d.error for d in letters)
    assert got == sorted(list(expected_reasons.values()) + ["invalid_json"])
    for d in letters:
        assert d.source_topic == ticks_topic and d.partition in (0, 1) and d.offset >= 0 and d.detail
        assert d.raw_size >= len(d.raw)
    oversized = next(d for d in letters if d.error == "oversized")
    assert oversized.raw_size > 64 * 1024


def test_source_resumes_from_snapshot_offset(kafka_bootstrap, topic_prefix):
    """A partition reader built with a resume state starts exactly there (what recovery relies on)."""
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["ticks"], partitions={"ticks": 1})
    topic = f"{topic_prefix}ticks"
    p = EventProducer(kafka_bootstrap, topic)
    p.send(tick(i) for i in range(100))
    p.flush()
    src = KafkaEventSource(kafka_bootstrap, topic, Tick, batch_size=1000, stop_at_end=True)
    assert src.list_parts() == ["0"]
    part = src.build_part("s", "0", 60)
    seen = []
    try:
        while True:
            for b in part.next_batch():
                seen.extend(b.events)
    except StopIteration:
        pass
    assert [t.trade_id for t in seen] == [tick(i).trade_id for i in range(60, 100)]
    assert part.snapshot() == 100
    part.close()


def test_missing_topic_error_is_clear(kafka_bootstrap, topic_prefix):
    src = KafkaEventSource(kafka_bootstrap, f"{topic_prefix}does-not-exist", Tick)
    with pytest.raises(RuntimeError, match="levibot topics create"):
        src.list_parts()


def test_bytes_that_are_not_utf8_are_dead_lettered_with_their_offsets(kafka_bootstrap, topic_prefix):
    """Poison pills: one invalid UTF-8 byte inside a JSON string used to raise UnicodeDecodeError out of the source
    and crash the flow. Each lands in dlq as invalid_json with its own partition and offset; every valid tick
    around them (in the same polls) comes through."""
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["ticks", "dlq"], partitions={"ticks": 2})
    ticks_topic, dlq_topic = f"{topic_prefix}ticks", f"{topic_prefix}dlq"
    base = good_payload(999_999)
    poison = [
        base.replace(b'"venue":"test"', b'"venue":"te\xffst"'),  # stray byte in a string
        base.replace(b'"symbol":', b'"sym\xffbol":'),  # in a key
        base.replace(b'"venue":"test"', b'"venue":"test\xe2\x82"'),  # truncated before the quote
        base.replace(b'"venue":"test"', b'"venue":"\xf0\x9f\x98test"'),  # truncated 4-byte sequence
        base.replace(b'"venue":"test"', b'"venue":"t\xc0\xafest"'),  # overlong '/'
        base.replace(b'"venue":"test"', b'"venue":"t\xed\xa0\x80est"'),  # surrogate encoded as UTF-8
        base[:-1] + b',"comment":"caf\xe9"}',  # latin-1 in an unknown field
    ]
    assert all(p != base for p in poison)
    raw = EventProducer(kafka_bootstrap, ticks_topic)
    good_ids = []
    for j, p in enumerate(poison):
        for k in range(30):
            t = tick(100 * j + k, "ETH-USD" if k % 2 else "BTC-USD")
            raw.produce_raw(t.symbol.encode(), encode(t))
            good_ids.append(t.trade_id)
        raw.produce_raw(b"BTC-USD" if j % 2 else b"ETH-USD", p)
    raw.flush()
    where = {
        m.value(): (m.partition(), m.offset())
        for msgs in iter_topic(kafka_bootstrap, ticks_topic)
        for m in msgs
        if m.value() in poison
    }
    assert len(where) == len(poison) and {p for p, _ in where.values()} == {0, 1}

    flow = Dataflow("poison-test")
    batches = op.input(
        "in", flow, KafkaEventSource(kafka_bootstrap, ticks_topic, Tick, batch_size=25, stop_at_end=True)
    )
    good: list = []
    op.output("good", op.flat_map("events", batches, lambda b: b.events), TestingSink(good))
    dead = op.filter("any_dead", op.map("dead", batches, lambda b: b.dead), bool)
    op.output("dlq", dead, KafkaEventSink(kafka_bootstrap, dlq_topic, key_fn=key_by_source_topic))
    run_main(flow)

    assert sorted(t.trade_id for t in good) == sorted(good_ids)
    letters = [
        (m.key(), decode(m.value(), DeadLetter)) for msgs in iter_topic(kafka_bootstrap, dlq_topic) for m in msgs
    ]
    assert len(letters) == len(poison)
    for key, d in letters:
        assert key == ticks_topic.encode()
        assert (d.source_topic, d.error, d.stage) == (ticks_topic, "invalid_json", "decode")
        assert (d.partition, d.offset) == where[d.raw] and d.raw_size == len(d.raw) and "UTF-8" in d.detail


def test_dead_letters_stay_valid_whatever_the_message_metadata():
    """A producer chooses the timestamp and the key: a far-future or missing timestamp and an oversized key must
    still give a valid dead letter (an invalid one would raise inside the source and stop the flow)."""
    from connectors.kafka.decode import DEAD_LETTER_KEY_MAX_BYTES, dead_letter, decode_messages
    from schemas.codec import DecodeError
    from schemas.time import TS_MAX_NS, TS_MIN_NS

    class Msg:
        def __init__(self, value, key, ts_ms, offset):
            self._v, self._k, self._ts, self._o = value, key, ts_ms, offset

        def value(self):
            return self._v

        def key(self):
            return self._k

        def timestamp(self):
            return (1, self._ts)

        def topic(self):
            return "ticks"

        def partition(self):
            return 0

        def offset(self):
            return self._o

    msgs = [
        Msg(b'{"venue":"\xff"}', b"k" * 100_000, 2**62, 0),
        Msg(b"{", None, -1, 1),
        Msg(None, b"", 0, 2),
        Msg(good_payload(1), b"BTC-USD", 4_102_444_800_000 + 1, 3),
    ]
    events, dead = decode_messages(msgs, Tick, max_bytes=1 << 20)
    assert [t.trade_id for t in events] == [tick(1).trade_id]
    assert [(d.offset, d.error) for d in dead] == [(0, "invalid_json"), (1, "invalid_json"), (2, "invalid_json")]
    assert dead[0].ts == TS_MAX_NS - 1 and dead[1].ts == TS_MIN_NS and len(dead[0].key) == DEAD_LETTER_KEY_MAX_BYTES
    for d in dead:
        assert decode(encode(d), DeadLetter) == d  # valid through the full validation
    assert dead_letter(msgs[0], DecodeError("invalid_json", "x" * 10_000)).detail == "x" * 4096
