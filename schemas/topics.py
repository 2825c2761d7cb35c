"""Topic registry: every Kafka topic of the system with its key, event type, partitions and retention.

>>> topic("ticks").event_type.__name__
'Tick'
>>> topic("ticks").name_with_prefix("ci-42.")
'ci-42.ticks'
>>> topic("orders").kafka_config()["cleanup.policy"]
'delete'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.events import (
    Alert,
    AuditEvent,
    CancelRequest,
    ControlCommand,
    DeadLetter,
    Event,
    ExecutionReport,
    FeatureVector,
    Fill,
    Order,
    RiskDecision,
    Score,
    Signal,
    TelegramUpdate,
    Tick,
)

__all__ = ["TopicSpec", "TOPICS", "topic", "topic_for_event", "DAY_MS"]

#: One day in milliseconds (Kafka's retention unit).
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic. ``retention_ms``: how long Kafka keeps messages, ms (-1 = forever); ``max_message_bytes``: largest
    accepted message, bytes; ``partitions``: default partition count (one broker in tests, replication is set at
    creation time by the admin tool). ``key`` describes the message key (UTF-8 bytes)."""

    name: str
    key: str
    event_type: type[Event]
    description: str
    partitions: int = 3
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    retention_ms: int = 7 * DAY_MS
    max_message_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"{self.name}: partitions must be >= 1")
        if self.retention_ms < -1 or self.retention_ms == 0:
            raise ValueError(f"{self.name}: retention_ms must be -1 (forever) or > 0")

    def name_with_prefix(self, prefix: str = "") -> str:
        """Full topic name: ``prefix`` prepended verbatim (include your own separator, e.g. ``"ci-42."``)."""
        return f"{prefix}{self.name}"

    def kafka_config(self) -> dict[str, str]:
        """Topic-level Kafka config for creation (all values strings, as the admin API wants)."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(self.max_message_bytes),
            "message.timestamp.type": "CreateTime",
        }


_SPECS = (
    TopicSpec(
        name="ticks",
        key="symbol",
        event_type=Tick,
        description="Market trades from the exchange feed or the replay tool.",
        partitions=6,
        retention_ms=7 * DAY_MS,
    ),
    TopicSpec(
        name="telegram.updates",
        key="chat id (decimal string)",
        event_type=TelegramUpdate,
        description="Raw Telegram Bot API updates, forwarded verbatim by the webhook receiver.",
        partitions=3,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="signals",
        key="symbol",
        event_type=Signal,
        description="Trading signals parsed from Telegram messages (edits bump the signal's version).",
        partitions=3,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="features",
        key="symbol",
        event_type=FeatureVector,
        description="Versioned feature vectors per symbol and window end, for the offline store.",
        partitions=6,
        retention_ms=3 * DAY_MS,
    ),
    TopicSpec(
        name="scores",
        key="symbol",
        event_type=Score,
        description="Model scores: per-model, calibrated and ensemble probabilities.",
        partitions=6,
        retention_ms=3 * DAY_MS,
    ),
    TopicSpec(
        name="risk.decisions",
        key="symbol",
        event_type=RiskDecision,
        description="Risk-gate verdicts on order intents, with reasons and the VaR/CVaR snapshot.",
        partitions=3,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="orders",
        key="symbol",
        event_type=Order,
        description="Orders to the execution venue; consumers dedupe by order_id.",
        partitions=3,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="fills",
        key="symbol",
        event_type=Fill,
        description="Executions from the paper broker or the executor.",
        partitions=3,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="order.cancels",
        key="symbol",
        event_type=CancelRequest,
        description="The account's requests to cancel working orders at a remote venue (a halt, a reduce-only).",
        partitions=6,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="execution.reports",
        key="account",
        event_type=ExecutionReport,
        description="What the venue says: acks, partial fills, fills, cancels, rejects, positions snapshots.",
        partitions=1,
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        name="control",
        key="scope/slot (ControlCommand.compaction_key)",
        event_type=ControlCommand,
        description="Signed operator commands (halt, reduce-only, resume, limits, strategies, model pins).",
        partitions=1,
        cleanup_policy="compact",
        retention_ms=-1,
    ),
    TopicSpec(
        name="audit",
        key="scope",
        event_type=AuditEvent,
        description="Who did what and with which result: applied, refused and denied commands and requests.",
        partitions=1,
        retention_ms=-1,
    ),
    TopicSpec(
        name="alerts",
        key="alert kind",
        event_type=Alert,
        description="Operational and trading alerts for the dispatcher.",
        partitions=1,
        retention_ms=7 * DAY_MS,
    ),
    TopicSpec(
        name="dlq",
        key="source topic",
        event_type=DeadLetter,
        description="Rejected inputs with reason codes and the raw payload (truncated to 256 KiB).",
        partitions=1,
        retention_ms=30 * DAY_MS,
        # raw (<= 256 KiB) is base64 in JSON (x4/3) plus detail and key: 1 MiB is ample; keep the broker default.
    ),
)

#: Registry name -> spec, in the order of the topics table (docs/topics.md).
TOPICS: dict[str, TopicSpec] = {s.name: s for s in _SPECS}


def topic(name: str) -> TopicSpec:
    """The spec of registry topic ``name`` (without prefix); ``KeyError`` lists the known names."""
    try:
        return TOPICS[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known: {', '.join(TOPICS)}") from None


def topic_for_event(event_type: type[Event]) -> TopicSpec:
    """The topic carrying ``event_type`` (each event type has exactly one topic; Bar has none: bars stay
    inside the flow and go to the stores)."""
    for spec in _SPECS:
        if spec.event_type is event_type:
            return spec
    raise KeyError(f"no topic carries {event_type.__name__}")
