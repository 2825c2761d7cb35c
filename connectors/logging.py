"""Structured logs: one JSON object per line, with correlation ids, ready for Loki, Elasticsearch or CloudWatch.

Correlation ids travel in :mod:`contextvars`, so they follow the code that handles one tick batch, one
signal or one order without being passed around:

>>> import io, json, logging
>>> buf = io.StringIO()
>>> configure_logging(json=True, stream=buf, level=logging.INFO)
>>> with correlation(batch_id="ticks/3@1200", order_id="ord-1f2e"):
...     logging.getLogger("levibot.test").info("order sent", extra={"qty": 0.5})
>>> rec = json.loads(buf.getvalue())
>>> rec["msg"], rec["batch_id"], rec["order_id"], rec["qty"]
('order sent', 'ticks/3@1200', 'ord-1f2e', 0.5)

Fields of every record: ``ts`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``msg``, the process id (``pid``)
and cluster index (``process``, from ``LEVIBOT_PROCESS_ID``), the correlation ids that are set (``batch_id``,
``signal_id``, ``order_id``, ``trace_id``, ``span_id``), anything passed in ``extra=``, and ``exc`` with the
traceback of an exception. The trace and span ids come from OpenTelemetry when a span is active (see
``connectors.tracing``), so a log line can be found from its trace and the other way round.
"""

from __future__ import annotations

import contextlib
import contextvars
import json as _json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

#: Correlation ids that can be set with :func:`correlation`.
CORRELATION_FIELDS = ("batch_id", "signal_id", "order_id")

_ctx: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"levibot_{name}", default=None) for name in CORRELATION_FIELDS
}

# attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)).keys()) | {"message", "asctime"}


def batch_id(topic: str, partition: int, next_offset: int) -> str:
    """Deterministic id of an input batch: ``topic/partition@next_offset`` (unique per poll, stable on replay)."""
    return f"{topic}/{partition}@{next_offset}"


@contextlib.contextmanager
def correlation(**ids: str | None) -> Iterator[None]:
    """Set correlation ids (``batch_id``, ``signal_id``, ``order_id``) for the code inside the block."""
    unknown = set(ids) - set(CORRELATION_FIELDS)
    if unknown:
        raise ValueError(f"unknown correlation ids {sorted(unknown)}; known: {', '.join(CORRELATION_FIELDS)}")
    tokens = [(_ctx[k], _ctx[k].set(v)) for k, v in ids.items()]
    try:
        yield
    finally:
        for var, tok in reversed(tokens):
            var.reset(tok)


def current_correlation() -> dict[str, str]:
    """The correlation ids set in the current context."""
    return {k: v for k, var in _ctx.items() if (v := var.get()) is not None}


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:
        return {}
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (see the module docstring for the fields)."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process if process is not None else os.environ.get("LEVIBOT_PROCESS_ID", "0")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
            "process": self.process,
        }
        out.update(current_correlation())
        out.update(_trace_ids())
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = _jsonable(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the correlation ids appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = current_correlation()
        return line + "".join(f" {k}={v}" for k, v in ids.items()) if ids else line


def configure_logging(json: bool = False, level: int | str | None = None, stream: TextIO | None = None) -> None:
    """Configure the root logger: JSON lines (``json=True``, for containers) or text; replaces earlier handlers.

    ``level`` defaults to ``LEVIBOT_LOG_LEVEL`` or INFO; ``stream`` to stderr.
    """
    lvl = level if level is not None else os.environ.get("LEVIBOT_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(lvl)


def json_logs_from_env(env: dict[str, str] | None = None) -> bool:
    """``LEVIBOT_LOG_FORMAT=json`` selects JSON logs (the container images set it)."""
    e = os.environ if env is None else env
    return e.get("LEVIBOT_LOG_FORMAT", "text").lower() == "json"
