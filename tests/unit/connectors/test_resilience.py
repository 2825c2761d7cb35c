"""The sink resilience layer (connectors/resilience.py) in-process: breaker transitions and their reports, the
bounded on-disk spool (order, bound, survival across a restart), and a writer that fails for a while then recovers.

The real outages (PostgreSQL stopped, the broker restarted, a TCP proxy cutting connections) are in
tests/integration/faults/test_faults.py; here the store is a small in-memory writer whose failures the test switches on and off.
"""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from connectors.metrics import FlowMetrics
from connectors.resilience import (
    BreakerReporter,
    CircuitBreaker,
    ReduceOnlyOnOutage,
    ResilientWriter,
    RetryPolicy,
    Spool,
)
from schemas.events import Alert, Tick
from tests.support import wait_for

FAST = RetryPolicy(attempts=2, initial_s=0.01, max_s=0.02, jitter_s=0.0, probe_initial_s=0.02, probe_max_s=0.05)


def ticks(start: int, n: int) -> list[Tick]:
    return [
        Tick(
            symbol="BTC-USD",
            ts=1_700_000_000 * 10**9 + i,
            price=100.0 + i,
            qty=1.0,
            side="buy",
            trade_id=f"t{i}",
            venue="test",
        )
        for i in range(start, start + n)
    ]


class FlakyStore:
    """An idempotent 'store' keyed by trade id; ``down`` makes every write raise ConnectionError."""

    def __init__(self) -> None:
        self.rows: dict[str, Tick] = {}
        self.down = False
        self.calls = 0
        self.closed = False

    def write(self, events):
        self.calls += 1
        if self.down:
            raise ConnectionError("store down")
        for e in events:
            self.rows.setdefault(e.trade_id, e)
        return len(events)

    def close(self) -> None:
        self.closed = True


class ListSender:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, events) -> int:
        self.sent.extend(events)
        return len(events)


def test_breaker_reports_gauge_and_alerts_on_open_and_close_only():
    fm = FlowMetrics(registry=CollectorRegistry())
    sender = ListSender()
    b = BreakerReporter(fm, sender).register(CircuitBreaker("postgres.ticks"))
    gauge = lambda: fm.registry.get_sample_value("levibot_circuit_breaker_state", {"breaker": "postgres.ticks"})  # noqa: E731
    assert gauge() == 0
    b.open("connection refused")
    assert gauge() == 2
    b.half_open("probe")
    assert gauge() == 1
    b.open("probe failed")
    b.close("caught up")
    assert gauge() == 0
    kinds = [(a.kind, a.severity, a.labels["breaker"]) for a in sender.sent]
    assert kinds == [
        ("sink_circuit_open", "critical", "postgres.ticks"),
        ("sink_circuit_closed", "info", "postgres.ticks"),
    ]
    assert all(isinstance(a, Alert) for a in sender.sent) and "outage_s" in sender.sent[1].labels
    assert b.opens == 1


def test_a_failing_listener_never_breaks_the_breaker():
    b = CircuitBreaker("x", listeners=[lambda *a: 1 / 0])
    b.open("down")
    assert b.state == "open"


def test_spool_keeps_order_survives_a_restart_and_blocks_when_full(tmp_path):
    sp = Spool(tmp_path / "s", Tick, max_events=10)
    sp.put(ticks(0, 4))
    sp.put(ticks(4, 4))
    assert (len(sp), sp.events) == (2, 8)
    # a new process finds the batches in the same order
    again = Spool(tmp_path / "s", Tick, max_events=10)
    assert again.recovered == 2 and [e.trade_id for e in again.peek(0)[1]] == [f"t{i}" for i in range(4)]
    # full: the next put waits until a batch is popped
    done = threading.Event()
    blocked = []
    t = threading.Thread(target=lambda: (sp.put(ticks(8, 4), on_block=lambda: blocked.append(1)), done.set()))
    t.start()
    wait_for(lambda: blocked, 10.0, "the put to block on the full spool", interval_s=0.01)
    assert not done.is_set() and blocked == [1]
    path, _ = sp.peek(0)
    sp.pop(path)
    assert done.wait(5)
    assert sp.events == 8 and len(list((tmp_path / "s").glob("*.batch"))) == 2


def test_writer_spools_through_an_outage_and_catches_up_exactly_once(tmp_path):
    store = FlakyStore()
    fm = FlowMetrics(registry=CollectorRegistry())
    sender = ListSender()
    breaker = BreakerReporter(fm, sender).register(CircuitBreaker("postgres.ticks"))
    w = ResilientWriter(
        store, breaker, Spool(tmp_path / "sp", Tick), policy=FAST, transient=(ConnectionError,), close_timeout_s=10
    )
    w.write(ticks(0, 5))
    assert len(store.rows) == 5 and breaker.state == "closed"
    store.down = True
    t0 = time.monotonic()
    for k in range(1, 6):  # the flow goes on: each write returns at once while the store is down
        w.write(ticks(k * 5, 5))
    assert time.monotonic() - t0 < 2.0
    assert breaker.state in ("open", "half_open") and len(store.rows) == 5 and w.spool.events == 25
    assert fm.registry.get_sample_value("levibot_circuit_breaker_state", {"breaker": "postgres.ticks"}) >= 1
    store.down = False
    wait_for(lambda: breaker.state == "closed", 10.0, "the breaker to close", interval_s=0.01)
    assert sorted(store.rows) == sorted(f"t{i}" for i in range(30)) and w.spool.events == 0
    assert not list((tmp_path / "sp").glob("*.batch"))
    w.write(ticks(30, 5))  # healthy again: written synchronously
    w.close()
    assert len(store.rows) == 35 and store.closed
    assert [a.kind for a in sender.sent] == ["sink_circuit_open", "sink_circuit_closed"]


def test_close_during_an_outage_leaves_the_spool_for_the_next_start(tmp_path):
    store = FlakyStore()
    store.down = True
    w = ResilientWriter(
        store,
        CircuitBreaker("clickhouse.ticks"),
        Spool(tmp_path / "sp", Tick),
        policy=FAST,
        transient=(ConnectionError,),
        close_timeout_s=0.5,
    )
    w.write(ticks(0, 3))
    w.close()
    assert len(list((tmp_path / "sp").glob("*.batch"))) == 1
    store.down = False
    w2 = ResilientWriter(
        store,
        CircuitBreaker("clickhouse.ticks"),
        Spool(tmp_path / "sp", Tick),
        policy=FAST,
        transient=(ConnectionError,),
        close_timeout_s=5,
    )
    w2.close()
    assert sorted(store.rows) == ["t0", "t1", "t2"]


def test_a_permanent_error_is_raised_never_swallowed(tmp_path):
    class Broken(FlakyStore):
        def write(self, events):
            if self.down:
                raise ConnectionError("down")
            raise ValueError("column type mismatch")

    store = Broken()
    store.down = True
    w = ResilientWriter(
        store,
        CircuitBreaker("postgres.orders"),
        Spool(tmp_path / "sp", Tick),
        policy=FAST,
        transient=(ConnectionError,),
        close_timeout_s=2,
    )
    w.write(ticks(0, 2))
    store.down = False
    wait_for(lambda: w._error is not None, 10.0, "the permanent error", interval_s=0.01)
    with pytest.raises(RuntimeError, match="failed permanently"):
        w.write(ticks(2, 2))


def test_reduce_only_is_sent_once_orders_stay_unpublishable(tmp_path):
    sender = ListSender()
    from operators.control.signing import sign, verify

    key = b"0123456789abcdef-test-key"
    hook = ReduceOnlyOnOutage(sender, lambda c: sign(c, key), after_s=0.2)
    b = hook.register(CircuitBreaker("kafka.orders"))
    b.open("unacknowledged")
    b.close("acknowledged")  # a short blip: nothing sent
    time.sleep(0.4)
    assert sender.sent == []
    b.open("unacknowledged")
    wait_for(lambda: sender.sent, 10.0, "the reduce-only command", interval_s=0.01)
    cmd = sender.sent[0]
    assert (cmd.action, cmd.scope, cmd.issuer) == ("reduce_only", "account:default", "levibot-flow")
    assert verify(cmd, {"default": key}).ok
