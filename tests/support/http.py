"""Local HTTP servers on 127.0.0.1 (``http.server`` in a thread) that play the outside world: a webhook receiver
and the Telegram Bot API host."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from connectors.webhooks import ALERT_ID_HEADER


class Receiver:
    """A webhook receiver on 127.0.0.1:``port``: records ``(path, headers, body)`` of every request; the first
    ``fail_first`` requests get ``fail_status``. ``stop()`` then ``start()`` keeps the port (down for a while)."""

    def __init__(self, port: int = 0, *, fail_first: int = 0, fail_status: int = 500) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = port
        self.start()

    def start(self) -> None:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rx._lock:
                    rx.requests.append((self.path, dict(self.headers.items()), body))
                    failing = rx.fail_first > 0
                    if failing:
                        rx.fail_first -= 1
                self.send_response(rx.fail_status if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self, path: str | None = None) -> list[str]:
        with self._lock:
            return [h.get(ALERT_ID_HEADER, "") for p, h, _ in self.requests if path is None or p == path]


class FakeBotApi:
    """A local Bot API host: records every call, answers ok."""

    def __init__(self) -> None:
        calls = self.calls = []

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append((self.path, body))
                out = json.dumps({"ok": True, "result": {"message_id": len(calls)}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
