"""ASGI middleware of the API: a request id, request size limits, security headers.

Size limits are checked before any route runs: a query string over ``max_query_bytes`` is 414, a declared
``Content-Length`` over ``max_body_bytes`` is 413 at once, and a body that grows past it while being read (chunked
uploads) is cut off with 413. Each refusal is a denial in the audit table. Every answer carries ``X-Request-Id``,
``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread

__all__ = ["GuardMiddleware"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class GuardMiddleware:
    def __init__(
        self,
        app: Any,
        *,
        max_body_bytes: int,
        max_query_bytes: int,
        on_refused: Callable[[Scope, str, int, str], None] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_query = max_query_bytes
        self.on_refused = on_refused

    async def _refuse(self, scope: Scope, send: Send, status: int, reason: str, detail: str) -> None:
        rid = scope["state"]["request_id"]
        if self.on_refused is not None:
            await to_thread.run_sync(self.on_refused, scope, reason, status, detail)
        body = json.dumps({"error": reason, "detail": detail, "request_id": rid}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", rid.encode()),
                    (b"cache-control", b"no-store"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = f"req-{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = rid
        if len(scope.get("query_string", b"")) > self.max_query:
            await self._refuse(scope, send, 414, "query_too_long", f"query string over {self.max_query} bytes")
            return
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared is not None and (declared < 0 or declared > self.max_body):
            await self._refuse(scope, send, 413, "body_too_large", f"request body over {self.max_body} bytes")
            return

        seen = 0
        overflow = False

        async def guarded_receive() -> Message:
            nonlocal seen, overflow
            if overflow:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    overflow = True  # the app sees a disconnect; its answer is replaced by the 413 below
                    return {"type": "http.disconnect"}
            return msg

        async def tagged_send(msg: Message) -> None:
            if overflow:
                if msg["type"] == "http.response.start":
                    await self._refuse(scope, send, 413, "body_too_large", f"request body over {self.max_body} bytes")
                return
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                headers += [
                    (b"x-request-id", rid.encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ]
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, guarded_receive, tagged_send)
