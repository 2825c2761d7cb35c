"""How event fields map onto store columns: by name, except where a column name would clash with SQL.

Both store writers match table columns to event fields by name; this table lists the few columns
whose names differ (``column -> event field``), per event type.
"""

from __future__ import annotations

from msgspec import Struct

from schemas.events import DeadLetter, Order

COLUMN_RENAMES: dict[type, dict[str, str]] = {
    DeadLetter: {"source_partition": "partition", "source_offset": "offset", "msg_key": "key"},
    Order: {"order_type": "type"},
}


def field_for_column(event_type: type[Struct], column: str) -> str | None:
    """The event field that fills ``column``, or None when the event has none (column default applies)."""
    field = COLUMN_RENAMES.get(event_type, {}).get(column, column)
    return field if field in event_type.__struct_fields__ else None
