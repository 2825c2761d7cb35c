"""Benchmarks of the Kafka edges (issue 6): Telegram parser throughput and alert dispatch throughput.

``python -m benchmarks.edges`` prints both results as JSON. Nothing here needs Kafka: the parser runs over the
labelled test set (``tests/support/data/telegram_messages.json``), the dispatcher sends signed alerts to a local aiohttp
receiver on 127.0.0.1 (rendering, HMAC signing, HTTP/1.1 keep-alive, the breaker and the retry loop all included).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from flows.settings import REPO_ROOT

MESSAGES = REPO_ROOT / "tests" / "support" / "data" / "telegram_messages.json"


def parser_throughput(rounds: int = 20, path: Path = MESSAGES) -> dict[str, Any]:
    """Messages/s of ``parse_message`` alone and of the whole ingest step (parse, ``to_signal``, state) over the
    test set, ``rounds`` passes; best pass of each."""
    from operators.signals import parse_message
    from operators.signals.lifecycle_state import InboundMessage, ingest_message

    texts = [c["text"] for c in json.loads(path.read_text())["cases"]]
    best_parse = best_ingest = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for t in texts:
            parse_message(t)
        best_parse = min(best_parse, time.perf_counter() - t0)
        state: dict = {}
        t0 = time.perf_counter()
        for i, t in enumerate(texts):
            out = ingest_message(
                InboundMessage(chat_id=-1001, message_id=i, date_s=1_700_000_000 + i, text=t), trust=0.5, get=state.get
            )
            state.update(out.writes)
        best_ingest = min(best_ingest, time.perf_counter() - t0)
    n = len(texts)
    return {
        "messages": n,
        "rounds": rounds,
        "parse_msgs_per_s": round(n / best_parse),
        "ingest_msgs_per_s": round(n / best_ingest),
        "parse_us_per_msg": round(best_parse / n * 1e6, 1),
    }


class _AioReceiver:
    """An aiohttp receiver in its own thread and loop on 127.0.0.1; counts requests and distinct alert ids."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            await request.read()
            self.count += 1
            self.ids.add(request.headers.get("X-Levibot-Alert-Id", ""))
            return web.Response(text="ok")

        async def main() -> None:
            app = web.Application()
            app.router.add_post("/hook", hook)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        asyncio.run(main())

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def alert_dispatch_throughput(n: int = 3000, max_in_flight: int = 16) -> dict[str, Any]:
    """Alerts/s delivered by one :class:`connectors.webhooks.WebhookSender` to a local receiver, each alert
    rendered (generic JSON), signed and posted; ``max_in_flight`` concurrent requests."""
    import aiohttp
    import msgspec

    from connectors.webhooks import WebhookSender
    from operators.alerts import Destination, render_payload
    from schemas.events import Alert

    rx = _AioReceiver()
    dest = Destination(name="bench", url=f"http://127.0.0.1:{rx.port}/hook")
    alerts = [
        Alert(
            id=f"b-{i}",
            severity="warning",
            kind="bench",
            message=f"benchmark alert {i}",
            labels={"symbol": "BTC-USDT"},
            dedupe_key=f"k{i}",
            ts=1_700_000_000_000_000_000 + i,
        )
        for i in range(n)
    ]

    async def go() -> float:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            s = WebhookSender(dest.name, dest.url, b"bench-key", session=session, max_in_flight=max_in_flight)
            t0 = time.perf_counter()
            res = await asyncio.gather(*(s.deliver(msgspec.json.encode(render_payload(a, dest)), a.id) for a in alerts))
            dt = time.perf_counter() - t0
            assert all(r.ok for r in res)
            return dt

    try:
        seconds = asyncio.run(go())
    finally:
        rx.close()
    return {
        "alerts": n,
        "max_in_flight": max_in_flight,
        "seconds": round(seconds, 3),
        "alerts_per_s": round(n / seconds),
        "received": rx.count,
        "distinct_ids": len(rx.ids),
    }


def webhook_give_up(rounds: int = 20, max_attempts: int = 3) -> dict[str, Any]:
    """Seconds a :class:`connectors.webhooks.WebhookSender` takes to give up on a destination where nobody listens
    (connection refused on 127.0.0.1): ``max_attempts`` attempts with the retry delays of 10-20 ms that
    ``tests/unit/connectors/test_webhooks.py`` uses, the breaker left closed; median and worst of ``rounds`` deliveries."""
    import socket
    import statistics

    import aiohttp

    from connectors.webhooks import BreakerPolicy, RetryPolicy, WebhookSender

    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def go() -> list[float]:
        out = []
        async with aiohttp.ClientSession() as session:
            for i in range(rounds):
                s = WebhookSender(
                    "bench",
                    f"http://127.0.0.1:{port}/hook",
                    b"bench-key",
                    session=session,
                    retry=RetryPolicy(max_attempts=max_attempts, base_delay_s=0.01, max_delay_s=0.02),
                    breaker=BreakerPolicy(failure_threshold=10),
                )
                r = await s.deliver(b"{}", f"g-{i}")
                assert not r.ok and r.attempts == max_attempts
                out.append(r.seconds)
        return out

    secs = asyncio.run(go())
    return {
        "rounds": rounds,
        "attempts": max_attempts,
        "give_up_s_p50": round(statistics.median(secs), 4),
        "give_up_s_max": round(max(secs), 4),
    }


#: tokens that a slow (quadratic or backtracking) parse step would choke on when a message repeats them
HOSTILE_TOKENS = (
    "TP1 ✅ ",
    "stop ",
    "SL to ",
    "стоп в ",
    "move SL a ",
    "1,",
    "#BTC/USDT ",
    "Entry 1 - 2\n",
    "at target 2 ",
    "T1 : 1 ",
    "Objetivo 1 alcanzado ",
    "Entrada 2,640 ",
    "🎯1 ✅",
)


def hostile_text(token: str, n_chars: int) -> str:
    """``token`` repeated to exactly ``n_chars`` characters."""
    return (token * (n_chars // len(token) + 1))[:n_chars]


def parser_scaling(small: int = 1024, large: int = 8192, repeats: int = 5) -> dict[str, Any]:
    """How ``parse_message`` scales with the length of a message that repeats one hostile token: per token the
    ratio of the best of ``repeats`` parses of ``large`` and of ``small`` characters (process CPU time). A linear
    parse gives about ``large / small`` (8); a quadratic step would give about 64."""
    from operators.signals import parse_message

    def best(text: str) -> float:
        runs = []
        for _ in range(repeats):
            t0 = time.process_time()
            parse_message(text)
            runs.append(time.process_time() - t0)
        return min(runs)

    ratios = {}
    for token in HOSTILE_TOKENS:
        lo, hi = best(hostile_text(token, small)), best(hostile_text(token, large))
        ratios[token.strip()] = round(hi / max(lo, 1e-9), 2)
    return {
        "length_ratio": large / small,
        "worst_time_ratio": max(ratios.values()),
        "worst_token": max(ratios, key=lambda k: ratios[k]),
        "time_ratio_per_token": ratios,
    }


def run_all() -> dict[str, Any]:
    """Every benchmark here (the dispatcher at 1 and 16 requests in flight, the give-up time of a dead
    destination)."""
    return {
        "parser": parser_throughput(),
        "parser_scaling": parser_scaling(),
        "alert_dispatch_serial": alert_dispatch_throughput(n=1000, max_in_flight=1),
        "alert_dispatch": alert_dispatch_throughput(),
        "webhook_give_up": webhook_give_up(),
    }


if __name__ == "__main__":
    print(json.dumps(run_all(), indent=2))
