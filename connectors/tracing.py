"""Distributed tracing with OpenTelemetry, carried across Kafka in message headers.

- Spans are exported through OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; the service name comes from ``OTEL_SERVICE_NAME``
  (default ``levibot``). Other ``OTEL_*`` variables (headers, timeouts, sampler) work as the SDK documents.
- Without the ``opentelemetry`` packages (the optional extra ``levibot[tracing]``) or without an endpoint,
  every helper here is a no-op: :func:`span` yields ``None``, :func:`inject_headers` returns the headers
  unchanged and :func:`extract_context` returns ``None``. Tracing never changes what the flow computes.
- Trace context travels as W3C ``traceparent``/``tracestate`` Kafka headers (bytes values), so a producer
  (``levibot replay``, the signal ingest) and a consumer (the trading flow) share one trace per message.

>>> inject_headers([("k", b"v")]) == [("k", b"v")] or tracing_enabled()
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

try:  # the API is tiny and always safe to import; the SDK and exporter are needed only when configured
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.propagators.textmap import Getter, Setter

    _HAVE_OTEL = True
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    _HAVE_OTEL = False

_lock = threading.Lock()
_configured = False
_enabled = False


def _endpoint(env: Mapping[str, str]) -> str | None:
    return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def configure_tracing(
    service_name: str | None = None, env: Mapping[str, str] | None = None, exporter: Any | None = None
) -> bool:
    """Install a tracer provider exporting through OTLP/HTTP when an endpoint is configured; returns whether on.

    ``exporter`` replaces the OTLP exporter (tests pass an in-memory one). Safe to call more than once:
    only the first call that enables tracing installs a provider.
    """
    global _configured, _enabled
    e = os.environ if env is None else env
    with _lock:
        if _enabled:
            return True
        _configured = True
        if not _HAVE_OTEL or (exporter is None and not _endpoint(e)):
            return False
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError:
            log.warning("OTEL endpoint set but opentelemetry-sdk is not installed: tracing stays off")
            return False
        name = service_name or e.get("OTEL_SERVICE_NAME") or "levibot"
        provider = TracerProvider(
            resource=Resource.create({"service.name": name, "levibot.process": e.get("LEVIBOT_PROCESS_ID", "0")})
        )
        if exporter is None:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                log.warning("OTEL endpoint set but opentelemetry-exporter-otlp-proto-http is missing: tracing off")
                return False
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _enabled = True
        log.info("tracing: exporting spans of service %s", name)
        return True


def tracing_enabled() -> bool:
    """Whether spans are being exported."""
    return _enabled


def _tracer() -> Any:
    return trace.get_tracer("levibot")


@contextlib.contextmanager
def span(
    name: str, *, parent: Any | None = None, attributes: Mapping[str, Any] | None = None, kind: str = "internal"
) -> Iterator[Any]:
    """A span around the block (``None`` when tracing is off). ``parent`` is a context from :func:`extract_context`.

    ``kind``: internal, producer or consumer (Kafka messaging semantics).
    """
    if not (_HAVE_OTEL and _enabled):
        yield None
        return
    k = {"internal": trace.SpanKind.INTERNAL, "producer": trace.SpanKind.PRODUCER, "consumer": trace.SpanKind.CONSUMER}[
        kind
    ]
    with _tracer().start_as_current_span(name, context=parent, kind=k, attributes=dict(attributes or {})) as s:
        yield s


if _HAVE_OTEL:  # the propagator's carrier accessors (used only with the API installed)

    class _HeaderSetter(Setter[Headers]):
        def set(self, carrier: Headers, key: str, value: str) -> None:
            carrier.append((key, value.encode("ascii", "replace")))

    class _HeaderGetter(Getter[list[tuple[str, Any]]]):  # the carrier: list(headers)
        def get(self, carrier: Sequence[tuple[str, Any]], key: str) -> list[str] | None:
            vals = [
                v.decode("ascii", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
                for k, v in carrier
                if k.lower() == key.lower() and v is not None
            ]
            return vals or None

        def keys(self, carrier: Sequence[tuple[str, Any]]) -> list[str]:
            return [k for k, _ in carrier]


def inject_headers(headers: Sequence[tuple[str, bytes]] | None = None) -> Headers:
    """Kafka headers with the current trace context added (``traceparent``, ``tracestate``); a new list.

    With tracing off, or no active span, the headers come back unchanged.
    """
    out: Headers = list(headers or [])
    if not (_HAVE_OTEL and _enabled):
        return out
    out = [(k, v) for k, v in out if k.lower() not in ("traceparent", "tracestate")]
    propagate.inject(out, setter=_HeaderSetter())
    return out


def extract_context(headers: Sequence[tuple[str, Any]] | None) -> Any | None:
    """The trace context carried in Kafka headers (for ``span(parent=...)``), or ``None``.

    ``headers`` as confluent-kafka returns them: ``[(str, bytes)]`` or ``None``.
    """
    if not (_HAVE_OTEL and _enabled) or not headers:
        return None
    ctx = propagate.extract(list(headers), getter=_HeaderGetter())
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def attach(ctx: Any | None) -> Any | None:
    """Make ``ctx`` current (returns a token for :func:`detach`); no-op for ``None``."""
    if ctx is None or not _HAVE_OTEL:
        return None
    return otel_context.attach(ctx)


def detach(token: Any | None) -> None:
    """Undo :func:`attach`."""
    if token is not None and _HAVE_OTEL:
        otel_context.detach(token)


def _reset_for_tests() -> None:
    """Forget that tracing was configured (tests only; the global provider cannot be replaced twice)."""
    global _configured, _enabled
    with _lock:
        _configured = _enabled = False
