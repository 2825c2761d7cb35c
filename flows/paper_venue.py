"""`levibot paper-venue`: the paper venue as its own process, between the `orders`/`order.cancels`/`ticks` topics
and `execution.reports` (docs/execution.md, "The paper venue").

It reads every partition of `orders` and `order.cancels` from the beginning and `ticks` from the beginning
(``from_beginning``) or from their end, in arrival order, hands them to :class:`operators.execution.paper_venue.PaperVenue`, and publishes
what it reports (keyed by account, idempotent producer, every delivery checked). On start it rebuilds itself from
its own earlier reports (sequence numbers, client ids already seen, positions and cash), so a restart neither
executes an order twice nor reuses a report id; orders that were working when it stopped are reported cancelled
(reason ``venue_restart``). SIGINT/SIGTERM stop it cleanly.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from connectors.kafka.admin import ensure_topics, wait_ready
from connectors.kafka.config import consumer_config
from connectors.kafka.decode import decode_messages
from connectors.kafka.sink import EventProducer, key_by_source_topic
from connectors.kafka.source import consume_ready, iter_topic, list_partitions
from connectors.shutdown import stop_on_signals, stop_requested
from flows.settings import Settings
from operators.execution.paper_venue import PaperVenue
from schemas.codec import decode_many
from schemas.events import CancelRequest, ExecutionReport, Order, Tick
from schemas.time import TS_MIN_NS

log = logging.getLogger(__name__)


def _restore(venue: PaperVenue, s: Settings) -> int:
    """Fold this venue's earlier reports back in (the topic read to its current end)."""
    reports: list[ExecutionReport] = []
    for msgs in iter_topic(s.kafka_bootstrap, s.topic("execution.reports"), timeout_s=10.0):
        events, _failures = decode_many([m.value() for m in msgs], ExecutionReport)
        reports.extend(events)
    return venue.restore(reports)


def run_paper_venue(
    s: Settings,
    venue: PaperVenue,
    *,
    from_beginning: bool = True,
    idle_exit_s: float | None = None,
    phantom_after_fills: int | None = None,
    phantom_qty: float = 0.0,
    phantom_symbol: str | None = None,
) -> dict[str, int]:
    """Run until stopped (or idle for ``idle_exit_s`` seconds); returns counts. ``phantom_*``: test hook that
    books ``phantom_qty`` into the venue's own position after that many fills, unreported."""
    stop = stop_on_signals()
    wait_ready(s.kafka_bootstrap)
    ensure_topics(s.kafka_bootstrap, prefix=s.topic_prefix)
    restored = _restore(venue, s)
    out = EventProducer(s.kafka_bootstrap, s.topic("execution.reports"), key_fn=lambda r: r.account.encode())
    dlq = EventProducer(s.kafka_bootstrap, s.topic("dlq"), key_fn=key_by_source_topic)
    orphans = venue.orphan_cancels()
    # and a positions snapshot at once, so the account reconciles at the venue's start: dated at the venue's last
    # trade, or (a venue that has traded nothing) at the start of the time range, before any market data; never
    # the wall clock, which would hold the account's reports until the market data reached it (report_hold.py)
    out.send(orphans + [venue.snapshot(venue.last_ts or TS_MIN_NS)])
    out.flush()
    log.info(
        "paper venue %r for account %r: %d earlier reports restored (next seq %d, %d working orders reported "
        "cancelled), %d symbols",
        venue.name,
        venue.account,
        restored,
        venue.seq,
        len(orphans),
        len(venue.symbols),
    )
    orders_t, ticks_t, cancels_t = s.topic("orders"), s.topic("ticks"), s.topic("order.cancels")
    c = Consumer(consumer_config(s.kafka_bootstrap, eof=False))
    c.assign(
        [
            TopicPartition(t, p, OFFSET_BEGINNING)
            for t in (orders_t, cancels_t)
            for p in list_partitions(s.kafka_bootstrap, t)
        ]
        + [
            TopicPartition(ticks_t, p, OFFSET_BEGINNING if from_beginning else OFFSET_END)
            for p in list_partitions(s.kafka_bootstrap, ticks_t)
        ]
    )
    counts = {"orders": 0, "cancels": 0, "ticks": 0, "reports": 0, "dead": 0, "restored": restored}
    last_msg = time.monotonic()
    fills = 0
    try:
        while not stop_requested():
            msgs = consume_ready(c, 2000, 0.1)
            good = [m for m in msgs if m.error() is None]
            for m in msgs:
                err = m.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    if err.fatal():
                        raise RuntimeError(f"fatal Kafka error: {err}")
                    log.warning("transient Kafka error: %s", err)
            if not good:
                if idle_exit_s is not None and time.monotonic() - last_msg > idle_exit_s:
                    break
                continue
            last_msg = time.monotonic()
            reports: list[ExecutionReport] = []
            i = 0
            while i < len(good):  # runs of one topic, in arrival order
                j = i
                topic = good[i].topic()
                while j < len(good) and good[j].topic() == topic:
                    j += 1
                run = good[i:j]
                typ: Any = Order if topic == orders_t else CancelRequest if topic == cancels_t else Tick
                events, dead = decode_messages(run, typ, max_bytes=s.max_message_bytes)
                if dead:
                    counts["dead"] += dlq.send(dead)
                if typ is Order:
                    counts["orders"] += len(events)
                    for o in events:
                        reports.extend(venue.submit(o))
                elif typ is CancelRequest:
                    counts["cancels"] += len(events)
                    for q in events:
                        reports.extend(venue.on_cancel_request(q))
                else:
                    counts["ticks"] += len(events)
                    got = venue.on_ticks(events)
                    reports.extend(got)
                    fills += sum(r.kind in ("fill", "partial_fill") for r in got)
                    if phantom_after_fills is not None and fills >= phantom_after_fills and phantom_symbol:
                        venue.phantom[phantom_symbol] = venue.phantom.get(phantom_symbol, 0.0) + phantom_qty
                        log.warning(
                            "test hook: %s %+g booked into the venue's position without a report",
                            phantom_symbol,
                            phantom_qty,
                        )
                        phantom_after_fills = None
                i = j
            if reports:
                counts["reports"] += out.send(reports)
                out.flush()
            dlq.flush()
    finally:
        final = venue.snapshot(venue.last_ts or TS_MIN_NS)
        out.send([final])
        counts["reports"] += 1
        out.flush()
        dlq.flush()
        c.close()
        stop.restore()
    log.info("paper venue stopped (%s): %s", stop.reason or "idle", counts)
    return counts


__all__ = ["run_paper_venue"]
