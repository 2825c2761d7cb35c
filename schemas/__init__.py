"""The contracts: event types (``events``), codec (``codec``), topic registry (``topics``), time helpers (``time``),
JSON Schema export (``export``) and SQL migrations (``migrations``, ``sql/``). See ``docs/schemas.md``."""
