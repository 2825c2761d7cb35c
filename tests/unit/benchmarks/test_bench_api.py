"""The API load benchmark's measuring side (benchmarks/api.py): latencies from the moment each request was due, and
vegeta (installed by `make tools`) driving a local HTTP server at a fixed rate, errors counted by kind."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks.api import attack, summarise, vegeta_path


def test_latency_counts_from_the_due_time():
    # 1,000/s: request 0 sent 5 ms late (the schedule starts at 0), the others on time, each answered in 1 ms
    rows = [
        (0, 5_000_000, 200, 1_000_000, ""),
        (1, 1_000_000, 200, 1_000_000, ""),
        (2, 2_000_000, 200, 1_000_000, ""),
        (3, 3_000_000, 500, 1_000_000, ""),
        (4, 4_000_000, 0, 5_000_000_000, "Get: context deadline exceeded (Client.Timeout exceeded)"),
    ]
    got = summarise(rows, 1000.0)
    assert got["requests"] == 5 and got["errors"] == 2
    assert got["errors_http_500"] == 1 and got["errors_timeout"] == 1
    assert got["max_ms"] == pytest.approx(6.0)  # 5 ms late + 1 ms answer: lateness is not hidden
    assert got["p50_ms"] == pytest.approx(1.0) and got["sent_p95_ms"] == pytest.approx(1.0)


def test_vegeta_drives_a_server_at_a_fixed_rate():
    vegeta_path()  # installed by `make tools` (scripts/install_tools.sh)
    seen = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-API-Key"))
            code = 503 if len(seen) % 4 == 0 else 200
            body = b'{"ok": true}'
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        got = attack(f"http://127.0.0.1:{srv.server_address[1]}/x", {"X-API-Key": "k"}, 100.0, 2.0)
    finally:
        srv.shutdown()
        srv.server_close()
    assert got["requests"] == 200 and len(seen) == 200 and set(seen) == {"k"}
    assert got["errors"] == got["errors_http_503"] == 50
    assert 90 <= got["sent_per_s"] <= 110
    assert got["p95_ms"] >= got["p50_ms"] > 0
