"""JSON Schema (draft 2020-12) of every event type, for external producers. Pure: returns text, writes nothing
(``scripts/export_jsonschema.py`` writes ``schemas/jsonschema/<event tag>.json``).

Finiteness and cross-field rules (OHLC order, limit price for limit orders, ...) live in ``__post_init__`` and are
stated in each type's description, not in the schema. The ``event`` tag is optional on decode, so it is not
listed as required.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import msgspec

from schemas.events import EVENT_TYPES, Event

__all__ = ["SCHEMA_DIALECT", "schema_filename", "event_schema", "json_schemas"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_filename(event_type: type[Event]) -> str:
    """``<event tag>.json``, e.g. ``tick.json``, ``risk_decision.json``."""
    return f"{event_type.__struct_config__.tag}.json"


_NEWLINE_GUARD = "(?!\n)"


def _plain_patterns(node: Any) -> None:
    """Drop the ``(?!\\n)`` guard the enforced patterns carry for Python's ``$`` (meaningless in ECMA regex)."""
    if isinstance(node, dict):
        pat = node.get("pattern")
        if isinstance(pat, str) and pat.endswith(_NEWLINE_GUARD):
            node["pattern"] = pat[: -len(_NEWLINE_GUARD)]
        for v in node.values():
            _plain_patterns(v)
    elif isinstance(node, list):
        for v in node:
            _plain_patterns(v)


def event_schema(event_type: type[Event]) -> dict[str, Any]:
    """The JSON Schema document of one event type."""
    from schemas.topics import topic_for_event  # local: topics imports events only, no cycle, but keep it lazy

    body = msgspec.json.schema(event_type)
    tag_field = event_type.__struct_config__.tag_field
    definition = body["$defs"][event_type.__name__]
    if tag_field and tag_field in definition.get("required", []):
        definition["required"] = [f for f in definition["required"] if f != tag_field]
    for d in body["$defs"].values():  # docstrings arrive with their source indentation
        if "description" in d:
            d["description"] = inspect.cleandoc(d["description"])
    _plain_patterns(body)
    doc: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"levibot/{schema_filename(event_type)}",
        "title": event_type.__name__,
        "x-schema-version": event_type.SCHEMA_VERSION,
    }
    try:
        doc["x-topic"] = topic_for_event(event_type).name
    except KeyError:
        pass
    doc.update(body)
    return doc


def json_schemas() -> dict[str, str]:
    """``{filename: file text}`` for every event type; deterministic (sorted keys, trailing newline)."""
    return {
        schema_filename(t): json.dumps(event_schema(t), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for t in EVENT_TYPES
    }
