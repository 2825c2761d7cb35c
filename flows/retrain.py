"""`levibot retrain`: the retraining service. It retrains on a schedule and whenever a model-drift alert
(kind ``model_drift``, raised by the flow's drift monitors) arrives on the `alerts` topic; a new model is
promoted only through the champion/challenger rule (``flows.training.train``), and running flows pick the
new champion up by themselves (hot reload).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError

from connectors.kafka.admin import ensure_topics, wait_ready
from connectors.kafka.config import consumer_config
from flows.settings import Settings
from flows.training import scheduled_retrain
from schemas.codec import DecodeError, decode
from schemas.events import Alert

log = logging.getLogger(__name__)

DRIFT_KIND = "model_drift"


def drift_requested(messages: list[Any]) -> int:
    """How many of ``messages`` (raw Kafka messages of the alerts topic) are model-drift alerts."""
    n = 0
    for m in messages:
        if m.error() is not None or m.value() is None:
            continue
        try:
            alert = decode(m.value(), Alert)
        except DecodeError:
            continue  # not ours to judge: the alert dispatcher dead-letters malformed alerts
        n += alert.kind == DRIFT_KIND
    return n


def retrain_loop(
    s: Settings,
    *,
    every_s: float = 7 * 86400,
    poll_s: float = 60.0,
    once: bool = False,
    retrain: Callable[..., dict | None] = scheduled_retrain,
    **train_kwargs: Any,
) -> list[dict]:
    """Check the schedule and the alerts every ``poll_s`` seconds; ``once`` returns after the first check.

    Offsets of the alerts topic are committed only after a retraining they asked for has finished, so a crash
    in the middle retrains again on restart rather than never.
    """
    wait_ready(s.kafka_bootstrap)
    ensure_topics(s.kafka_bootstrap, prefix=s.topic_prefix, names=["alerts"])
    conf = consumer_config(s.kafka_bootstrap, group_id=f"{s.topic_prefix}levibot-retrain")
    conf["auto.offset.reset"] = "earliest"  # a group without offsets starts at the oldest alert still kept
    conf["enable.auto.offset.store"] = True  # offsets of consumed alerts are committed after the check
    consumer = Consumer(conf)
    consumer.subscribe([s.topic("alerts")])
    results: list[dict] = []
    try:
        while True:
            deadline = time.monotonic() + (min(poll_s, 5.0) if once else poll_s)
            msgs: list[Any] = []
            while time.monotonic() < deadline:
                msgs.extend(
                    m
                    for m in consumer.consume(1000, 0.5)
                    if (err := m.error()) is None or err.code() != KafkaError._PARTITION_EOF
                )
            drifts = drift_requested(msgs)
            out = retrain(s.var_dir, every_s=every_s, drift_requested=drifts > 0, **train_kwargs)
            if out is not None:
                log.info("retrained (%s): %s", "drift" if drifts else "schedule", out)
                results.append(out)
            if msgs:
                consumer.commit(asynchronous=False)
            if once:
                return results
    finally:
        consumer.close()
