"""Quix Streams against the project on the same Kafka job: ticks from a Kafka topic in, 1 s bars, results to a
Kafka topic out.

* Project: the live trading flow as ``benchmarks.flow.kafka_flow_vs_bare`` builds it (``KafkaEventSource`` in
  columns -> the whole decision path of ``build_trading_flow`` with the live configuration: 1 s, 1 min and 5 min
  bars, features, models, strategies, risk, execution -> ``KafkaEventSink`` of orders), stopping at the end of
  the topic. Timed around ``run_main``: start-up and partition assignment included.
* Quix Streams (its own venv, ``scripts/quix_job.py``): JSON ticks -> per-symbol 1 s tumbling window on event
  time (open, high, low, close, volume) -> bars to an output topic; the bars only, no decision. Timed from its
  first message to the end (the consumer-group join left out, which favours the peer); its whole
  ``Application.run`` is reported beside it.

Both read the same topic (6 partitions, keyed by symbol) filled once before the rounds.
"""

from __future__ import annotations

import time
import uuid

from benchmarks.flow import LIVE_CFG, _produce, dense_ticks, universe
from benchmarks.peers import venv
from benchmarks.peers.common import alternate


def project_job(bootstrap: str, ticks_topic: str, orders_topic: str, cfg) -> tuple[float, int]:
    """The project's side once: seconds of ``run_main`` over the whole topic, and the orders it produced."""
    from bytewax.testing import run_main

    from connectors.kafka.sink import KafkaEventSink
    from connectors.kafka.source import KafkaEventSource
    from flows.trading import Outputs, build_trading_flow
    from schemas.events import Tick

    got: list = []
    flow = build_trading_flow(
        KafkaEventSource(bootstrap, ticks_topic, Tick, batch_size=5000, stop_at_end=True, columnar=True),
        Outputs(orders=[KafkaEventSink(bootstrap, orders_topic)]),
        cfg,
        on_orders=lambda e: got.extend(e.orders),
    )
    t = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - t, len(got)


def run(bootstrap: str, n_ticks: int = 200_000, per_bar: int = 3600, rounds: int = 3) -> dict[str, float]:
    """Medians of ``rounds`` alternated runs on ``n_ticks`` ticks (``per_bar`` ticks per 30-min source bar:
    3,600 = 2 ticks/s per symbol) and ``quix_ratio`` = Quix seconds / project seconds."""
    from connectors.kafka.admin import delete_topics, ensure_topics

    venv.ensure("quix")
    ticks = dense_ticks(per_bar, max(1, n_ticks // (2 * per_bar)))
    cfg = universe(LIVE_CFG, ticks)
    prefix = f"benchpeer{uuid.uuid4().hex[:6]}."
    ensure_topics(bootstrap, prefix=prefix, names=["ticks", "orders"])
    outs: list[str] = []
    walls: list[float] = []
    bars: list[int] = []
    orders: list[int] = []
    try:
        _produce(bootstrap, f"{prefix}ticks", ticks)

        def ours() -> float:
            secs, n = project_job(bootstrap, f"{prefix}ticks", f"{prefix}orders", cfg)
            orders.append(n)
            return secs

        def peer() -> float:
            out = f"{prefix}bars{len(outs)}"
            outs.append(out)
            got = venv.run_script(
                "quix",
                "quix_job.py",
                ["--bootstrap", bootstrap, "--topic", f"{prefix}ticks", "--out", out, "--count", str(len(ticks))],
            )
            if got["messages"] != len(ticks):
                raise RuntimeError(f"quix saw {got['messages']} of {len(ticks)} ticks")
            walls.append(got["wall_s"])
            bars.append(got["bars"])
            return float(got["from_first_s"])

        res = alternate("quix", ours, peer, rounds)
    finally:
        delete_topics(bootstrap, [f"{prefix}ticks", f"{prefix}orders", *outs])
    res.update(
        {
            "quix_ticks": float(len(ticks)),
            "quix_project_ticks_per_s": len(ticks) / res["quix_project_s"],
            "quix_peer_ticks_per_s": len(ticks) / res["quix_peer_s"],
            "quix_peer_whole_run_s": sorted(walls)[len(walls) // 2],
            "quix_peer_bars": float(bars[-1]),
            "quix_project_orders": float(orders[-1]),
        }
    )
    res["quix_ratio_whole_run"] = res["quix_peer_whole_run_s"] / res["quix_project_s"]
    res.update(venv.install_stats("quix"))
    return res
