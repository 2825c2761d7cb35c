"""The cluster's routing (flows.cluster) on the real broker: symbols are on the partition the routing expects (the
routing itself: tests/unit/flows/test_flow_cluster.py)."""

from __future__ import annotations

import pytest

from connectors.kafka.sink import EventProducer
from flows.cluster import (
    Routing,
)
from schemas.events import Tick
from tests.support.flowproc import create_topics, drop_topics, new_prefix, read_located

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD", "ADA-USD", "LTC-USD", "DOT-USD"]


@pytest.mark.kafka
def test_symbols_are_on_the_partition_the_routing_expects(kafka_bootstrap):
    prefix = new_prefix("route")
    try:
        create_topics(kafka_bootstrap, prefix)
        prod = EventProducer(kafka_bootstrap, f"{prefix}ticks")
        ticks = [
            Tick(
                symbol=s,
                ts=1_700_000_000_000_000_000 + i,
                price=1.0,
                qty=1.0,
                side="buy",
                trade_id=f"t{i}",
                venue="test",
            )
            for i, s in enumerate(SYMBOLS * 3)
        ]
        prod.send(ticks)
        prod.close()
        located = read_located(kafka_bootstrap, f"{prefix}ticks", Tick)
        assert len(located) == len(ticks)
        r = Routing(6)
        got = {t.symbol: p for p, _, t in located}
        assert len(set(got.values())) > 1  # the premise: the symbols are on several partitions
        assert got == {s: r.partition_of(s) for s in SYMBOLS}
    finally:
        drop_topics(kafka_bootstrap, [prefix])
