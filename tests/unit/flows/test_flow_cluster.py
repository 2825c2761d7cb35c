"""The cluster's routing (flows.cluster): the state keys it chooses land where Bytewax really sends them, a
partition is read on the process that holds its state, and a recovery directory of the other key layout is refused
(symbols going where the producer puts them, on the real broker: tests/integration/flows/test_flow_cluster_live.py)."""

from __future__ import annotations

import threading

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.testing import cluster_main

from flows.cluster import (
    PLAIN,
    ROUTED,
    SLOTS,
    LocalPartitions,
    Routing,
    check_layout,
    siphash13,
    slotted,
    worker_of,
)

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD", "ADA-USD", "LTC-USD", "DOT-USD"]


def test_siphash13_matches_the_reference_vector():
    # SipHash-1-3 with zero keys of the empty input, as Rust's DefaultHasher::new().finish() gives it
    assert siphash13(b"") == 0xD1FBA762150C532C


def _bytewax_workers(keys: list[str], workers: int) -> dict[str, int]:
    """The worker each key's state is on in a real Bytewax run of ``workers`` workers (threads of this process)."""
    thread_worker: dict[int, int] = {}
    key_thread: dict[str, int] = {}

    class Part(StatelessSourcePartition):
        def __init__(self, worker: int) -> None:
            self.worker, self.done = worker, False

        def next_batch(self) -> list[str]:
            thread_worker[threading.get_ident()] = self.worker
            if self.done:
                raise StopIteration
            self.done = True
            return keys if self.worker == 0 else []

    class Source(DynamicSource):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> Part:
            return Part(worker_index)

    def seen(state: None, key: str) -> tuple[None, None]:
        key_thread[key] = threading.get_ident()
        return None, None

    flow = Dataflow("routing_probe")
    keyed = op.key_on("key", op.input("in", flow, Source()), lambda k: k)
    op.inspect("done", op.stateful_map("state", keyed, seen), lambda *_: None)
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return {k: thread_worker[key_thread[k]] for k in keys}


@pytest.mark.parametrize("workers", [2, 3])
def test_predicted_workers_are_where_bytewax_puts_the_state(workers):
    r = Routing(6)
    keys = SYMBOLS + [r.symbol_key(s) for s in SYMBOLS] + [r.partition_key("ticks", p) for p in range(6)]
    keys += [f"k{i}" for i in range(30)]
    actual = _bytewax_workers(keys, workers)
    assert len(set(actual.values())) == workers  # the premise: the keys are spread, the check can fail
    assert actual == {k: worker_of(k, workers) for k in keys}


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 6])
def test_a_partition_and_its_symbols_route_to_one_worker(workers):
    r = Routing(6)
    for s in SYMBOLS:
        p = r.partition_of(s)
        assert worker_of(r.symbol_key(s), workers) == worker_of(r.partition_key("ticks", p), workers), (s, p)
        assert r.name(r.symbol_key(s)) == s
    # the partitions are spread evenly: 6 over 2, 3 or 6 workers
    if 6 % workers == 0:
        homes = [worker_of(r.partition_key("ticks", p), workers) for p in range(6)]
        assert sorted(homes) == sorted(list(range(workers)) * (6 // workers))


def test_slotted_keys_are_stable_and_hash_to_their_slot():
    for name in SYMBOLS:
        for slot in range(SLOTS):
            k = slotted(name, slot)
            assert worker_of(k, SLOTS) == slot
            assert k == name or k.startswith(f"{name}~")


class _Parts:
    topic = "t"

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(6)]

    def build_part(self, step_id, for_part, resume_state):
        return (step_id, for_part, resume_state)


@pytest.mark.parametrize("processes", [2, 3, 5])
def test_each_partition_is_listed_by_exactly_the_process_of_its_key(processes):
    r = Routing(6)
    lists = [LocalPartitions(_Parts(), r, i, processes).list_parts() for i in range(processes)]
    assert sorted(p for ps in lists for p in ps) == [str(p) for p in range(6)]
    for i, ps in enumerate(lists):
        assert all(worker_of(r.partition_key("t", int(p)), processes) == i for p in ps)
    src = LocalPartitions(_Parts(), r, 0, processes)
    assert src.build_part("s", "3", 7) == ("s", "3", 7) and src.topic == "t"


def test_a_recovery_directory_of_the_other_layout_is_refused(tmp_path):
    fresh = tmp_path / "fresh"
    check_layout(fresh, ROUTED)
    check_layout(fresh, ROUTED)  # the same layout resumes
    with pytest.raises(ValueError, match="state-key layout"):
        check_layout(fresh, PLAIN)
    old = tmp_path / "old"  # snapshots from before the record: the plain layout
    old.mkdir()
    (old / "part-0.sqlite3").write_bytes(b"")
    with pytest.raises(ValueError, match="'plain' state-key layout"):
        check_layout(old, ROUTED)
    check_layout(old, PLAIN)
    assert (old / "key-layout").read_text().strip() == PLAIN


def test_routed_keys_on_two_workers_give_the_orders_of_one_plain_run():
    """The flow with the cluster's keys, run by 2 workers (threads of this process), against the plain keys in
    one worker: the same orders, fills and bars (the keys choose where state lives, never what it computes)."""
    from dataclasses import replace

    from bytewax.testing import run_main

    from connectors.history import load_history
    from connectors.history_source import HistorySource
    from connectors.memory import CollectSink
    from flows.trading import Outputs, build_trading_flow
    from operators.pipeline import PipelineConfig
    from operators.risk import RiskLimits
    from tests.support import DATA

    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=1500)
    cfg = PipelineConfig(
        base_resolution_s=300,
        bar_resolutions_s=(1800,),
        decision_resolution_s=1800,
        limits=RiskLimits(max_price_age_s=3600.0),
        symbols=("BTC-USD", "ETH-USD"),
    )

    def run(routing: Routing | None, workers: int) -> dict:
        got: dict[str, list] = {k: [] for k in ("orders", "fills", "bars")}
        flow = build_trading_flow(
            HistorySource(history.ticks, partitions=6, batch_size=700),
            Outputs(**{k: [CollectSink(v)] for k, v in got.items()}),
            replace(cfg),
            routing=routing,
        )
        if workers == 1:
            run_main(flow)
        else:
            cluster_main(flow, [], 0, worker_count_per_proc=workers)
        return {
            "orders": sorted(got["orders"], key=lambda o: o.order_id),
            "fills": sorted(got["fills"], key=lambda f: f.fill_id),
            "bars": sorted((b.symbol, b.resolution_s, b.ts, b.close, b.volume) for b in got["bars"]),
        }

    plain = run(None, 1)
    assert len(plain["orders"]) > 20
    assert run(Routing(6), 2) == plain
