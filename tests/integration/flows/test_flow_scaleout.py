"""Issue 3 item 8: the trading flow as a Bytewax cluster of 2 processes over the multi-partition
``ticks`` topic gives the same orders as 1 process over the same input."""

from __future__ import annotations

import logging

import psycopg
import pytest

from connectors.history import load_history
from connectors.kafka.sink import EventProducer
from flows.replay import replay
from tests.support import DATA
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    create_topics,
    drop_topics,
    flow_env,
    free_ports,
    new_prefix,
    partition_counts,
    read_orders,
    run_ok,
    wait_all_ok,
    wait_pg_idle,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

log = logging.getLogger(__name__)

MAX_BARS = 10_000
TICKS_PER_BAR = 15
RUN_TIMEOUT_S = 180


def test_two_processes_give_the_same_orders_as_one(kafka_bootstrap, pg_dsn, tmp_path):
    history = load_history(
        [DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=TICKS_PER_BAR, max_bars=MAX_BARS
    )
    one, two = new_prefix("s1"), new_prefix("s2")
    procs: list[FlowProc] = []
    try:
        for prefix in (one, two):
            create_topics(kafka_bootstrap, prefix)
            res = replay(history, EventProducer(kafka_bootstrap, f"{prefix}ticks"), progress=False)
            assert res.produced == len(history) == 2 * MAX_BARS * TICKS_PER_BAR
        # the premise: the input really is spread over several partitions of the registry's 6
        parts = partition_counts(kafka_bootstrap, f"{two}ticks")
        assert len(parts) == 6 and sum(1 for n in parts.values() if n) >= 2, parts

        run_ok(
            ["run", "--live", "--venue", "sim", "--until-end", "--stores", "none", *BAR_ARGS],
            flow_env(prefix=one, var=tmp_path / "one"),
            tmp_path / "one.log",
            RUN_TIMEOUT_S,
        )
        single = read_orders(kafka_bootstrap, f"{one}orders")
        assert len(single) > 20, "the input must produce a meaningful number of orders"
        assert len({o.order_id for o in single}) == len(single)

        p0, p1 = free_ports(2)
        addresses = f"127.0.0.1:{p0};127.0.0.1:{p1}"
        env = flow_env(prefix=two, var=tmp_path / "two", LEVIBOT_PG_DSN=pg_dsn)
        for pid in (0, 1):
            procs.append(
                FlowProc(
                    [
                        "run",
                        "--live",
                        "--venue",
                        "sim",
                        "--until-end",
                        "--stores",
                        "postgres",
                        *BAR_ARGS,
                        "--processes",
                        "2",
                        "--process-id",
                        str(pid),
                        "--addresses",
                        addresses,
                    ],
                    env,
                    tmp_path / f"two-{pid}.log",
                )
            )
        wait_all_ok(procs, RUN_TIMEOUT_S)
        cluster = read_orders(kafka_bootstrap, f"{two}orders")

        log.info("1 process: %d orders; 2 processes: %d orders", len(single), len(cluster))
        assert len({o.order_id for o in cluster}) == len(cluster), "a clean cluster run emits each order once"
        assert set(cluster) == set(single)
        with psycopg.connect(pg_dsn) as conn:
            n, distinct = conn.execute("SELECT count(*), count(DISTINCT order_id) FROM orders").fetchone()
            ids = {r[0] for r in conn.execute("SELECT order_id FROM orders")}
        assert n == distinct == len(single)
        assert ids == {o.order_id for o in single}
    finally:
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [one, two])
        wait_pg_idle(pg_dsn)  # so that the fixture can drop the database (see flowproc.wait_pg_idle)
