"""Prometheus metrics of LeviBot Stream: every ``levibot_*`` metric, and the hooks the flows call.

Four jobs, one module each, every name importable from ``connectors.metrics`` itself:

* :mod:`connectors.metrics.catalogue`: all metrics declared once in :data:`METRIC_SPECS` (name, type, labels,
  unit in the help text), and :class:`LevibotMetrics`, which builds them on a registry;
* :mod:`connectors.metrics.flow`: :class:`FlowMetrics` turns what the flow already produces (input batches,
  pipeline outputs, dead letters, sink writes) into observations; :func:`metered_sink` times a sink's writes;
* :mod:`connectors.metrics.server`: :func:`start_metrics_server` serves ``/metrics``;
* :mod:`connectors.metrics.pollers`: background threads that poll the Kafka consumer lag and Bytewax's recovery
  store.

Multi-process clusters
----------------------
A Bytewax cluster is N independent OS processes (``levibot run --live --processes N --process-id i``).
Each process keeps its own registry and serves its own HTTP endpoint; Prometheus scrapes every process
as a separate target and aggregates with ``sum()``. prometheus-client's *multiprocess mode* is **not**
used: it exists for pre-forked web servers sharing one port, while our processes are peers that may
run on different hosts.

- Several processes on one host: process ``i`` listens on ``base_port + i``
  (:func:`metrics_port_for`), so ports never collide; list each port as a scrape target.
- One process per pod or container (k8s StatefulSet, docker-compose): every process uses the same
  base port on its own address; the scrape target (``instance``, ``pod``) tells them apart.

The endpoint binds 127.0.0.1 unless configured (``LEVIBOT_METRICS_HOST``): a process on a shared host is not
reachable from the network by accident. Containers set ``LEVIBOT_METRICS_HOST=0.0.0.0`` (docker-compose.yml, k8s/).

Every process also exports ``levibot_process_info{process="<id>",processes="<n>"} 1`` so that a series
can be joined to its cluster index (``* on(instance) group_left(process) levibot_process_info``);
the process id is deliberately *not* a label on every metric.

Cardinality: labels only take values from bounded sets (stages, registry topics, reason codes,
symbols, strategies, models, sink names). Free text never becomes a label.

>>> from prometheus_client import CollectorRegistry
>>> m = FlowMetrics(registry=CollectorRegistry())
>>> m.observe_sink("postgres.orders", 0.012, ok=True, rows=3)
>>> m.registry.get_sample_value("levibot_sink_rows_total", {"sink": "postgres.orders"})
3.0
"""

from __future__ import annotations

from connectors.metrics.catalogue import (
    BATCH_BUCKETS,
    BREAKER_STATES,
    LATENCY_BUCKETS,
    LATENCY_STAGES,
    METRIC_NAMES,
    METRIC_SPECS,
    PORTFOLIO,
    PROBABILITY_BUCKETS,
    SLIPPAGE_BUCKETS,
    LevibotMetrics,
    MetricSpec,
    default_metrics,
    exposed_series_names,
)
from connectors.metrics.flow import FlowMetrics, metered_sink
from connectors.metrics.pollers import KafkaLagPoller, RecoveryWatcher
from connectors.metrics.server import (
    DEFAULT_METRICS_HOST,
    metrics_host,
    metrics_port_for,
    serve_metrics,
    start_metrics_server,
)

__all__ = [
    "LATENCY_BUCKETS",
    "PROBABILITY_BUCKETS",
    "BATCH_BUCKETS",
    "SLIPPAGE_BUCKETS",
    "LATENCY_STAGES",
    "BREAKER_STATES",
    "PORTFOLIO",
    "MetricSpec",
    "METRIC_SPECS",
    "METRIC_NAMES",
    "exposed_series_names",
    "LevibotMetrics",
    "default_metrics",
    "FlowMetrics",
    "metered_sink",
    "KafkaLagPoller",
    "RecoveryWatcher",
    "DEFAULT_METRICS_HOST",
    "metrics_host",
    "metrics_port_for",
    "serve_metrics",
    "start_metrics_server",
]
