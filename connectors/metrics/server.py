"""The ``/metrics`` endpoint of a process: one HTTP server per process, GET only, bound to loopback unless
configured (``LEVIBOT_METRICS_HOST``); process ``i`` of a cluster on one host listens on ``base_port + i``.

>>> metrics_port_for(9100, 2), metrics_port_for(0, 2)
(9102, 0)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from connectors.metrics.catalogue import _metrics_for, default_metrics

log = logging.getLogger("connectors.metrics")  # one logger for the whole package, as before the split

__all__ = ["metrics_port_for", "DEFAULT_METRICS_HOST", "metrics_host", "serve_metrics", "start_metrics_server"]


def metrics_port_for(base_port: int, process_id: int = 0) -> int:
    """Port of process ``process_id`` on a shared host: ``base_port + process_id`` (0 keeps metrics off)."""
    return 0 if base_port <= 0 else base_port + process_id


#: Address the /metrics endpoint binds when none is given and ``LEVIBOT_METRICS_HOST`` is unset: loopback only.
DEFAULT_METRICS_HOST = "127.0.0.1"


def metrics_host(addr: str | None = None) -> str:
    """The bind address: ``addr`` if given, else ``LEVIBOT_METRICS_HOST``, else :data:`DEFAULT_METRICS_HOST`.

    >>> metrics_host("0.0.0.0")
    '0.0.0.0'
    """
    return addr or os.environ.get("LEVIBOT_METRICS_HOST") or DEFAULT_METRICS_HOST


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr per scrape
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


_WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _get_only(app: _WsgiApp) -> _WsgiApp:
    """Wrap the exposition app: only GET without a request body. Anything else is answered at once (405, or
    413 for a body) without reading a byte of it, so no client can make the endpoint buffer data."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET"), ("Content-Length", "0")])
            return [b""]
        length = environ.get("CONTENT_LENGTH") or "0"
        if length.strip() not in ("", "0") or environ.get("HTTP_TRANSFER_ENCODING"):
            start_response("413 Content Too Large", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    return wrapped


def serve_metrics(port: int, addr: str, registry: CollectorRegistry) -> tuple[WSGIServer, threading.Thread]:
    """``/metrics`` of ``registry`` on ``addr:port`` in a daemon thread: GET only, no request body (see
    :func:`_get_only`); returns the server (``.server_port`` is the bound port) and its thread."""
    server_cls: type = _ThreadingWSGIServer
    if ":" in addr:  # an IPv6 address
        server_cls = type("_ThreadingWSGIServer6", (_ThreadingWSGIServer,), {"address_family": socket.AF_INET6})
    server: WSGIServer = make_server(
        addr, port, _get_only(make_wsgi_app(registry)), server_cls, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="levibot-metrics", daemon=True)
    thread.start()
    return server, thread


def start_metrics_server(
    port: int,
    *,
    process_id: int = 0,
    processes: int = 1,
    addr: str | None = None,
    registry: CollectorRegistry | None = None,
) -> int:
    """Serve ``/metrics`` for this process on ``metrics_port_for(port, process_id)``; returns the port (0 = off).

    Binds ``addr``, by default :func:`metrics_host` (``LEVIBOT_METRICS_HOST``, else 127.0.0.1: never all
    interfaces unless configured). Also sets ``levibot_process_info``. Call once per process, before the flow starts.
    """
    addr = metrics_host(addr)
    actual = metrics_port_for(port, process_id)
    m = default_metrics() if registry is None else _metrics_for(registry)
    m.process_info.labels(process=str(process_id), processes=str(processes)).set(1)
    if actual:
        serve_metrics(actual, addr, m.registry)
        log.info("metrics on http://%s:%d/metrics (process %d of %d)", addr, actual, process_id, processes)
    return actual
