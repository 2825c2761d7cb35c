"""The live flow (`levibot run --live`, a real subprocess) against the real broker and PostgreSQL:

* poison bytes (payloads that are not UTF-8) between valid ticks land in ``dlq`` as ``invalid_json`` with their
  Kafka partition and offset, and every valid tick is processed (stored): the flow used to crash on them;
* SIGTERM and SIGINT stop the flow within seconds with exit code 0 and a log line saying so (SIGINT used to end in a
  Bytewax panic and exit 1, SIGTERM in an unflushed death by signal), idle or busy;
* its /metrics endpoint binds 127.0.0.1 unless ``LEVIBOT_METRICS_HOST`` says otherwise (it used to bind 0.0.0.0).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from connectors.history import load_history
from connectors.kafka.sink import EventProducer
from flows.replay import replay
from schemas.codec import encode
from schemas.events import DeadLetter, Tick
from tests.support import DATA, wait_for
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    TopicCounter,
    create_topics,
    drop_topics,
    flow_env,
    free_ports,
    listening_addresses,
    new_prefix,
    read_events,
    read_located,
    run_ok,
)

pytestmark = [pytest.mark.kafka]

T0 = 1_700_000_000 * 10**9
STOP_WITHIN_S = 10.0


def tick(sym: str, i: int) -> Tick:
    return Tick(
        symbol=sym,
        ts=T0 + i * 10**9,
        price=100.0 + (i % 13) * 0.5,
        qty=0.1 + (i % 3) * 0.05,
        side="buy" if i % 2 else "sell",
        trade_id=f"rel:{sym}:{i}",
        venue="test",
    )


def poison_payloads() -> list[bytes]:
    """Tick payloads with bytes that are not UTF-8 at different places (each decodes as nothing)."""
    base = encode(tick("BTC-USD", 10**6))
    out = [
        base.replace(b'"venue":"test"', b'"venue":"te\xffst"'),  # in a string
        base.replace(b'"qty":', b'"q\xfety":'),  # in a key
        base.replace(b'"trade_id":"rel:', b'"trade_id":"rel\xe2\x82:'),  # truncated 3-byte sequence
        base.replace(b'"venue":"test"', b'"venue":"t\xc0\xafst"'),  # overlong '/'
        base.replace(b'"venue":"test"', b'"venue":"t\xed\xa0\x80st"'),  # surrogate encoded as UTF-8
        base[:-1] + b',"note":"\xff"}',  # in an unknown field
    ]
    for p in out:
        with pytest.raises(UnicodeDecodeError):
            p.decode("utf-8")
    return out


def produce_with_poison(bootstrap: str, topic: str, n_per_symbol: int) -> tuple[list[Tick], list[bytes]]:
    """Valid ticks of two symbols (keyed by symbol, in event-time order), a poison payload between them every
    ``n_per_symbol // 7`` ticks. Returns (valid ticks, poison payloads) as produced."""
    prod = EventProducer(bootstrap, topic)
    poison = poison_payloads()
    valid: list[Tick] = []
    step = max(1, n_per_symbol // (len(poison) + 1))
    k = 0
    for i in range(n_per_symbol):
        for sym in ("BTC-USD", "ETH-USD"):
            t = tick(sym, i)
            prod.produce_raw(sym.encode(), encode(t))
            valid.append(t)
        if i and i % step == 0 and k < len(poison):
            prod.produce_raw(b"BTC-USD" if k % 2 else b"ETH-USD", poison[k])
            k += 1
    assert k == len(poison)
    prod.flush(30)
    return valid, poison


def located_poison(bootstrap: str, topic: str, poison: list[bytes]) -> dict[bytes, tuple[int, int]]:
    """Where each poison payload sits in ``topic``: payload -> (partition, offset), read back from the broker."""
    from connectors.kafka.source import iter_topic

    where = {
        m.value(): (m.partition(), m.offset())
        for msgs in iter_topic(bootstrap, topic, timeout_s=30)
        for m in msgs
        if m.value() in poison
    }
    assert set(where) == set(poison)
    return where


@pytest.mark.postgres
def test_poison_bytes_are_dead_lettered_and_every_valid_tick_is_stored(kafka_bootstrap, pg_dsn, tmp_path):
    prefix = new_prefix("poison")
    try:
        create_topics(kafka_bootstrap, prefix)
        ticks_topic = f"{prefix}ticks"
        valid, poison = produce_with_poison(kafka_bootstrap, ticks_topic, 700)
        where = located_poison(kafka_bootstrap, ticks_topic, poison)
        env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_PG_DSN=pg_dsn)
        run_ok(
            ["run", "--live", "--venue", "sim", "--until-end", "--stores", "postgres", *BAR_ARGS],
            env,
            tmp_path / "flow.log",
            180,
        )
        log_text = (tmp_path / "flow.log").read_text(errors="replace")
        dead = read_located(kafka_bootstrap, f"{prefix}dlq", DeadLetter)
    finally:
        drop_topics(kafka_bootstrap, [prefix])

    assert "Traceback" not in log_text and "UnicodeDecodeError" not in log_text
    # every poison message is in dlq once, as invalid_json, with its own partition and offset and its bytes
    letters = [d for _, _, d in dead]
    assert sorted((d.partition, d.offset) for d in letters) == sorted(where.values())
    for d in letters:
        assert (d.source_topic, d.error, d.stage) == (ticks_topic, "invalid_json", "decode")
        assert where[d.raw] == (d.partition, d.offset) and d.raw_size == len(d.raw) and "UTF-8" in d.detail
    # every valid tick was processed: all of them, and nothing else, in PostgreSQL; the dead letters too
    with psycopg.connect(pg_dsn) as conn:
        stored = conn.execute("SELECT trade_id FROM ticks").fetchall()
        pg_dead = conn.execute("SELECT source_partition, source_offset, error FROM dead_letters").fetchall()
    assert sorted(r[0] for r in stored) == sorted(t.trade_id for t in valid)
    assert sorted(pg_dead) == sorted((p, o, "invalid_json") for p, o in where.values())


def start_live(prefix: str, tmp_path: Path, name: str) -> FlowProc:
    return FlowProc(
        ["run", "--live", "--venue", "sim", "--stores", "none", *BAR_ARGS],
        flow_env(prefix=prefix, var=tmp_path / name),
        tmp_path / f"{name}.log",
    )


def stop_and_check(proc: FlowProc, sig: signal.Signals) -> float:
    """Send ``sig`` to the flow process; assert a clean exit (0) within STOP_WITHIN_S and the log line. Returns the
    seconds the stop took."""
    t0 = time.monotonic()
    os.kill(proc.pid, sig)
    try:
        rc = proc.proc.wait(timeout=STOP_WITHIN_S)
    except Exception:
        raise AssertionError(f"still running {STOP_WITHIN_S}s after {sig.name}:\n{proc.tail()}") from None
    took = time.monotonic() - t0
    text = proc.log.read_text(errors="replace")
    assert rc == 0, f"exit code {rc} after {sig.name}:\n{proc.tail()}"
    assert f"{sig.name} received: stopping the flow" in text
    assert f"live flow stopped on {sig.name}" in text
    assert "Traceback" not in text and "panicked" not in text
    return took


def test_sigterm_stops_the_idle_live_flow_cleanly(kafka_bootstrap, tmp_path):
    """Idle, tailing its topics after it has processed everything: SIGTERM ends it at the next poll, exit 0, and
    what it wrote before is in Kafka (the dead letter of a poison message is the observable output here)."""
    prefix = new_prefix("term")
    proc = None
    try:
        create_topics(kafka_bootstrap, prefix)
        _, poison = produce_with_poison(kafka_bootstrap, f"{prefix}ticks", 70)
        proc = start_live(prefix, tmp_path, "term")
        dlq = TopicCounter(kafka_bootstrap, f"{prefix}dlq")
        try:
            wait_for(
                lambda: dlq.count() >= len(poison),
                90,
                "the dead letters of the poison messages",
                procs=[proc],
                interval_s=0.2,
            )
        finally:
            dlq.close()
        time.sleep(1.0)  # well into idle polling
        stop_and_check(proc, signal.SIGTERM)
        dead = read_events(kafka_bootstrap, f"{prefix}dlq", DeadLetter)
    finally:
        if proc is not None:
            proc.kill()
        drop_topics(kafka_bootstrap, [prefix])
    assert sorted(d.raw for d in dead) == sorted(poison) and {d.error for d in dead} == {"invalid_json"}


@pytest.mark.slow
def test_sigint_stops_the_busy_live_flow_cleanly(kafka_bootstrap, tmp_path):
    """Busy, in the middle of a backlog of bundled history: SIGINT (Ctrl-C) ends it within seconds, exit 0, and
    the features it emitted before the stop are flushed to Kafka."""
    prefix = new_prefix("int")
    proc = None
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8)
    try:
        create_topics(kafka_bootstrap, prefix)
        res = replay(history, EventProducer(kafka_bootstrap, f"{prefix}ticks"), progress=False)
        assert res.produced == len(history) > 500_000
        proc = start_live(prefix, tmp_path, "int")
        features = TopicCounter(kafka_bootstrap, f"{prefix}features")
        try:
            wait_for(lambda: features.count() > 0, 120, "the first features", procs=[proc], interval_s=0.2)
            stop_and_check(proc, signal.SIGINT)
            after = features.count()
        finally:
            features.close()
    finally:
        if proc is not None:
            proc.kill()
        drop_topics(kafka_bootstrap, [prefix])
    assert after > 0


def test_live_metrics_endpoint_binds_loopback_unless_configured(kafka_bootstrap, tmp_path):
    """`levibot run --live` with a metrics port: by default the socket is bound to 127.0.0.1 (and answers there);
    LEVIBOT_METRICS_HOST=0.0.0.0 (what docker-compose.yml and k8s/ set) binds all interfaces."""
    import urllib.request

    prefix = new_prefix("bind")
    procs: list[FlowProc] = []
    default_port, wide_port = free_ports(2)
    try:
        create_topics(kafka_bootstrap, prefix)
        for name, port, host in (("default", default_port, None), ("wide", wide_port, "0.0.0.0")):
            env = flow_env(prefix=prefix, var=tmp_path / name, LEVIBOT_METRICS_PORT=str(port))
            env.pop("LEVIBOT_METRICS_HOST", None)
            if host:
                env["LEVIBOT_METRICS_HOST"] = host
            procs.append(FlowProc(["run", "--live", "--stores", "none", *BAR_ARGS], env, tmp_path / f"{name}.log"))
        for proc, port in zip(procs, (default_port, wide_port), strict=True):
            wait_for(
                lambda: bool(listening_addresses(port)),  # noqa: B023 - called within this iteration
                90,
                f"a listener on port {port}",
                procs=[proc],
                interval_s=0.2,
            )
        assert listening_addresses(default_port) == {"127.0.0.1"}
        assert listening_addresses(wide_port) == {"0.0.0.0"}
        with urllib.request.urlopen(f"http://127.0.0.1:{default_port}/metrics", timeout=5) as r:
            assert r.status == 200 and b"levibot_process_info" in r.read()
        for proc in procs:
            stop_and_check(proc, signal.SIGTERM)
    finally:
        for proc in procs:
            proc.kill()
        drop_topics(kafka_bootstrap, [prefix])
