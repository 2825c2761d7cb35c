"""The columnar Kafka source (``KafkaEventSource(..., columnar=True)``: each poll's ticks as one ``TickBatch``)
feeds the trading flow exactly what the object source feeds it: the same orders, bars and dead letters from the
same topic, a poison message and a late tick included."""

from __future__ import annotations

import pytest
from bytewax.testing import run_main

from connectors.history import iter_tick_events, load_history
from connectors.kafka.admin import ensure_topics
from connectors.kafka.sink import EventProducer
from connectors.kafka.source import KafkaEventSource
from connectors.memory import CollectSink
from flows.trading import Outputs, build_trading_flow
from operators.pipeline import PipelineConfig
from operators.risk import RiskLimits
from schemas.events import Tick
from tests.support import DATA

pytestmark = [pytest.mark.kafka]

CFG = PipelineConfig(
    base_resolution_s=300,
    bar_resolutions_s=(1800,),
    decision_resolution_s=1800,
    limits=RiskLimits(max_price_age_s=3600.0),
)


def test_columnar_kafka_batches_equal_tick_objects(kafka_bootstrap, topic_prefix):
    from confluent_kafka import Producer

    topic = f"{topic_prefix}ticks"
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["ticks"], partitions={"ticks": 2})
    h = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=1500)
    ticks = list(iter_tick_events(h.ticks))
    ticks[9000] = Tick(
        **{**{f: getattr(ticks[9000], f) for f in Tick.__struct_fields__}, "ts": ticks[9000].ts - 3600 * 10**9}
    )  # late for the 300 s bars
    prod = EventProducer(kafka_bootstrap, topic)
    prod.send(ticks)
    prod.flush()
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(topic, key=b"BTC-USD", value=b"{not json")
    p.flush()

    def run(columnar: bool) -> dict:
        got = {k: [] for k in ("orders", "bars", "dead")}
        src = KafkaEventSource(kafka_bootstrap, topic, Tick, batch_size=1700, stop_at_end=True, columnar=columnar)
        run_main(build_trading_flow(src, Outputs(**{k: [CollectSink(v)] for k, v in got.items()}), CFG))
        return {
            "orders": sorted(got["orders"], key=lambda o: o.order_id),
            "bars": sorted((b.symbol, b.resolution_s, b.ts, b.close, b.volume) for b in got["bars"]),
            "dead": sorted((d.error, d.partition, d.offset) for d in got["dead"]),
        }

    cols, objs = run(True), run(False)
    assert len(cols["orders"]) > 5 and {d[0] for d in cols["dead"]} == {"invalid_json", "late_tick"}
    assert cols == objs
    with pytest.raises(ValueError, match="columnar"):
        KafkaEventSource(kafka_bootstrap, topic, dict, columnar=True)
