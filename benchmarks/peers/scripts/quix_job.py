"""Peer side of the Kafka -> 1 s bars -> Kafka job, run inside the quixstreams venv (no project imports).

Reads the project's JSON ticks from ``--topic`` (keyed by symbol), folds them per symbol into 1 s tumbling
windows on the tick's event time (open, high, low, close, volume: the bare Bytewax fold's bar), and produces each
closed window to ``--out``. Stops once it has processed ``--count`` input messages. Prints one JSON line: wall seconds of
``Application.run`` and seconds from the first message processed to the end (the consumer-group join excluded),
messages seen and bars produced.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from quixstreams import Application


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, required=True)
    a = ap.parse_args()
    seen = [0, 0.0]  # messages, monotonic time of the first
    bars = [0]

    def on_tick(v: dict) -> None:
        if seen[0] == 0:
            seen[1] = time.monotonic()
        seen[0] += 1
        if seen[0] == a.count:
            app.stop()  # after this message: the job has seen the whole topic

    def init(v: dict) -> list:
        return [v["price"], v["price"], v["price"], v["price"], v["qty"]]

    def reduce(acc: list, v: dict) -> list:
        p = v["price"]
        if p > acc[1]:
            acc[1] = p
        if p < acc[2]:
            acc[2] = p
        acc[3] = p
        acc[4] += v["qty"]
        return acc

    def count_bar(v: dict) -> None:
        bars[0] += 1

    with tempfile.TemporaryDirectory() as state:
        app = Application(
            broker_address=a.bootstrap,
            consumer_group=f"peer-quix-{time.time_ns()}",
            auto_offset_reset="earliest",
            state_dir=state,
            use_changelog_topics=False,
            auto_create_topics=True,
        )
        tin = app.topic(
            a.topic,
            value_deserializer="json",
            key_deserializer="str",
            timestamp_extractor=lambda value, headers, ts, ts_type: value["ts"] // 1_000_000,
        )
        tout = app.topic(a.out, value_serializer="json", key_serializer="str")
        sdf = app.dataframe(tin)
        sdf = sdf.update(on_tick)
        sdf = sdf.tumbling_window(duration_ms=1000).reduce(reduce, init).final()
        sdf = sdf.update(count_bar)
        sdf.to_topic(tout)
        t0 = time.monotonic()
        app.run(timeout=60.0, collect=False)
        t1 = time.monotonic()
    print(
        json.dumps(
            {
                "wall_s": t1 - t0,
                "from_first_s": t1 - seen[1] if seen[0] else float("nan"),
                "messages": seen[0],
                "bars": bars[0],
            }
        )
    )


if __name__ == "__main__":
    main()
