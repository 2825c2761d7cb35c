"""Soak and load (issue 15 item 6; `make soak`, not part of `make test`).

1. **Soak**: `levibot run --live --venue sim --stores none` on the local broker while this script produces ticks of
   BTC-USD and ETH-USD at a fixed rate in real time (event time = wall time), for ``SOAK_MINUTES`` (default 30).
   Every ``SOAK_SAMPLE_S`` seconds it records the flow's resident memory (``VmRSS``), its consumer lag and its
   decision latency (``levibot_stage_latency_seconds{stage="decision"}``: p50/p99 from the histogram buckets of the
   interval and of the whole run), read from the flow's own ``/metrics``.
2. **Webhook load**: `levibot ingest-signals` on 127.0.0.1 gets ``SOAK_WEBHOOK_RATE`` (default 1,000) requests per
   second for ``SOAK_WEBHOOK_S`` (default 30) seconds, each a distinct Telegram update with the secret token; then
   every update answered 200 must be on ``telegram.updates`` exactly once.

Writes ``<LEVIBOT_VAR>/soak/<UTC time>/``: ``samples.csv``, ``summary.json``, ``soak.html`` (plotly chart: RSS, lag,
decision latency over time), and the processes' logs. Exit status 1 when an accepted webhook update is missing or
doubled, or when the flow dies.

    make soak                      # 30 minutes
    SOAK_MINUTES=3 make soak       # a quick check
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.kafka.admin import delete_topics, ensure_topics  # noqa: E402
from connectors.kafka.sink import EventProducer  # noqa: E402
from connectors.kafka.source import iter_topic  # noqa: E402
from flows.settings import Settings  # noqa: E402
from schemas.events import Tick  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES") or 30)
RATE = float(os.environ.get("SOAK_TICKS_PER_S") or 200)
SAMPLE_S = float(os.environ.get("SOAK_SAMPLE_S") or 10)
WEBHOOK_RATE = float(os.environ.get("SOAK_WEBHOOK_RATE") or 1000)
WEBHOOK_S = float(os.environ.get("SOAK_WEBHOOK_S") or 30)
SYMBOLS = ("BTC-USD", "ETH-USD")
#: bars of the soaked flow: 1 s base bars, decisions on 5 s bars (the strategies warm up within minutes, so a short
#: soak measures decisions too); override with SOAK_FLOW_ARGS
FLOW_ARGS = (
    os.environ.get("SOAK_FLOW_ARGS") or "--base-resolution 1 --bar-resolutions 5 --decision-resolution 5"
).split()
#: the risk gate's min_history (returns before any risk-increasing order, default 100) is set to this by a signed
#: `levibot control set-limit` at the start, so that orders (and their decision latency) need not wait for 100
#: returns; SOAK_MIN_HISTORY=0 keeps the default (see docs/reliability.md: not yet shown to bring orders sooner)
MIN_HISTORY = int(os.environ.get("SOAK_MIN_HISTORY") or 10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def parse(text: str, stage: str = "decision") -> tuple[float, dict[float, float]]:
    """(summed consumer lag, cumulative buckets of ``stage``'s latency histogram: upper bound s -> count)."""
    lag, buckets = 0.0, {}
    for line in text.splitlines():
        if line.startswith("levibot_kafka_consumer_lag_messages{"):
            lag += float(line.rsplit(" ", 1)[1])
        elif line.startswith("levibot_stage_latency_seconds_bucket{") and f'stage="{stage}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[math.inf if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return lag, buckets


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile (seconds) of cumulative histogram buckets, linear within a bucket (as PromQL does)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total, rank, lo, below = buckets[bounds[-1]], q * buckets[bounds[-1]], 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if math.isinf(b):
                return lo
            return lo + (b - lo) * ((rank - below) / (c - below) if c > below else 0.0)
        lo, below = b, c
    return lo if total else None


def delta(now: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {b: now[b] - before.get(b, 0.0) for b in now}


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def soak(s: Settings, out: Path, env: dict[str, str]) -> dict:
    port = free_port()
    flow = start(
        ["run", "--live", "--venue", "sim", "--stores", "none", *FLOW_ARGS],
        dict(env, LEVIBOT_METRICS_PORT=str(port)),
        out / "flow.log",
    )
    producer = EventProducer(s.kafka_bootstrap, s.topic("ticks"))
    if MIN_HISTORY:
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "control",
                "set-limit",
                "min_history",
                str(MIN_HISTORY),
                "--reason",
                "soak: orders within minutes",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if res.returncode != 0:
            raise SystemExit(f"set-limit min_history failed: {res.stderr[-2000:]}")
    rng = random.Random(42)
    price = {"BTC-USD": 30_000.0, "ETH-USD": 2_000.0}
    rows: list[dict] = []
    first_buckets: dict[float, float] = {}
    prev_buckets: dict[float, float] = {}
    prev_bars: dict[float, float] = {}
    t0 = time.monotonic()
    end = t0 + MINUTES * 60
    next_sample = t0 + SAMPLE_S
    sent = 0
    try:
        while time.monotonic() < end:
            if flow.poll() is not None:
                raise SystemExit(f"the flow exited with {flow.returncode}: see {out / 'flow.log'}")
            due = int((time.monotonic() - t0) * RATE)
            now_ns = time.time_ns()
            batch = []
            while sent < due:
                sym = SYMBOLS[sent % 2]
                # noise on a slow sine trend (5-minute period): trends the strategies trade, so orders (and their
                # decision latency) keep coming
                phase = 2 * math.pi * (time.monotonic() - t0) / 300
                price[sym] *= math.exp(0.00005 * math.sin(phase) + rng.gauss(0, 0.0002))
                batch.append(
                    Tick(
                        symbol=sym,
                        ts=now_ns,
                        price=round(price[sym], 2),
                        qty=round(rng.uniform(0.01, 1), 4),
                        side="buy" if rng.random() < 0.5 else "sell",
                        trade_id=f"soak:{sent}",
                        venue="soak",
                    )
                )
                sent += 1
            if batch:
                producer.send(batch)
            if time.monotonic() >= next_sample:
                next_sample += SAMPLE_S
                try:
                    text = scrape(port)
                except OSError:
                    continue  # the endpoint is not up yet
                lag, buckets = parse(text)
                bars = parse(text, "tick_to_bar")[1]
                d_bars = delta(bars, prev_bars)
                prev_bars = bars
                if not first_buckets:
                    first_buckets = dict(buckets)
                d = delta(buckets, prev_buckets)
                prev_buckets = buckets
                rows.append(
                    {
                        "t_s": round(time.monotonic() - t0, 1),
                        "rss_mib": round(rss_kib(flow.pid) / 1024, 1),
                        "lag_messages": lag,
                        "decisions": d.get(math.inf, 0.0),
                        "decision_p50_s": quantile(d, 0.5),
                        "decision_p99_s": quantile(d, 0.99),
                        "tick_to_bar_p99_s": quantile(d_bars, 0.99),
                        "ticks_sent": sent,
                    }
                )
                print(f"soak {rows[-1]}", flush=True)
            time.sleep(0.02)
        producer.flush(60)
    finally:
        stop(flow)
    with (out / "samples.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rss = [r["rss_mib"] for r in rows]
    settled = rows[len(rows) // 10 :] or rows  # after the first tenth (imports, model warm-up)
    whole = prev_buckets
    third = rows[-max(2, len(rows) // 3) :]  # the slope at the end: does memory level off?
    slope = (third[-1]["rss_mib"] - third[0]["rss_mib"]) / max(1e-9, (third[-1]["t_s"] - third[0]["t_s"]) / 600)
    return {
        "minutes": MINUTES,
        "ticks_per_s": RATE,
        "ticks_sent": sent,
        "samples": len(rows),
        "rss_mib_first": rss[0],
        "rss_mib_after_first_tenth": settled[0]["rss_mib"],
        "rss_mib_last": rss[-1],
        "rss_mib_max": max(rss),
        "rss_growth_mib_after_first_tenth": round(rss[-1] - settled[0]["rss_mib"], 1),
        "rss_mib_per_10_min_last_third": round(slope, 1),
        "lag_max_messages": max(r["lag_messages"] for r in rows),
        "lag_max_after_first_tenth": max(r["lag_messages"] for r in settled),
        "decisions": whole.get(math.inf, 0.0),
        "decision_p50_s": quantile(whole, 0.5),
        "decision_p99_s": quantile(whole, 0.99),
        "tick_to_bar_p99_s": quantile(prev_bars, 0.99),
        "flow_args": " ".join(FLOW_ARGS),
        "min_history": MIN_HISTORY or "default",
    }


def update(i: int, chat: int) -> bytes:
    return json.dumps(
        {
            "update_id": i,
            "channel_post": {
                "message_id": i,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "channel", "title": "soak"},
                "text": f"market comment {i}",
            },
        }
    ).encode()


async def hammer(url: str, secret: str, chat: int, rate: float, seconds: float) -> tuple[Counter, list[int], float]:
    import aiohttp

    n = int(rate * seconds)
    statuses: Counter = Counter()
    accepted: list[int] = []
    sem = asyncio.Semaphore(256)
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:

        async def one(i: int) -> None:
            async with sem:
                try:
                    async with http.post(
                        url, data=update(i, chat), headers=headers, timeout=aiohttp.ClientTimeout(total=30)
                    ) as r:
                        await r.read()
                        statuses[r.status] += 1
                        if r.status == 200:
                            accepted.append(i)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    statuses[type(exc).__name__] += 1

        t0 = time.monotonic()
        tasks = []
        for i in range(1, n + 1):  # open loop: request i is due at t0 + i / rate, whatever the answers do
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        sent_in = time.monotonic() - t0
        await asyncio.gather(*tasks)
    return statuses, accepted, sent_in


def webhook_load(s: Settings, out: Path, env: dict[str, str]) -> dict:
    port, secret, chat = free_port(), uuid.uuid4().hex, -1001234567890
    app = start(
        ["ingest-signals"],
        dict(
            env,
            LEVIBOT_TELEGRAM_SECRET_TOKEN=secret,
            LEVIBOT_SIGNAL_WEB_PORT=str(port),
            LEVIBOT_TELEGRAM_CHATS=f"{chat}:0.5",
        ),
        out / "ingest.log",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if app.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"ingest-signals did not start: see {out / 'ingest.log'}") from None
                time.sleep(0.3)
        t0 = time.monotonic()
        statuses, accepted, sent_in = asyncio.run(
            hammer(f"http://127.0.0.1:{port}/telegram/webhook", secret, chat, WEBHOOK_RATE, WEBHOOK_S)
        )
        took = time.monotonic() - t0
    finally:
        stop(app)
    on_topic = Counter(
        json.loads(m.value())["update_id"]
        for msgs in iter_topic(s.kafka_bootstrap, s.topic("telegram.updates"), timeout_s=30)
        for m in msgs
    )
    missing = [i for i in accepted if on_topic[i] == 0]
    doubled = [i for i, c in on_topic.items() if c > 1]
    return {
        "rate_wanted_per_s": WEBHOOK_RATE,
        "seconds": WEBHOOK_S,
        "requests": sum(statuses.values()),
        "sent_in_s": round(sent_in, 2),
        "all_answered_in_s": round(took, 2),
        "answers": {str(k): v for k, v in statuses.items()},
        "accepted": len(accepted),
        "on_topic": sum(on_topic.values()),
        "accepted_missing": len(missing),
        "duplicated_on_topic": len(doubled),
        "on_topic_not_accepted": len(set(on_topic) - set(accepted)),
    }


def chart(out: Path, rows: list[dict]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    t = [r["t_s"] / 60 for r in rows]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        subplot_titles=("resident memory of the flow (MiB)", "consumer lag (messages)", "decision latency (s)"),
    )
    fig.add_trace(go.Scatter(x=t, y=[r["rss_mib"] for r in rows], name="RSS"), row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=[r["lag_messages"] for r in rows], name="lag"), row=2, col=1)
    fig.add_trace(go.Scatter(x=t, y=[r["decision_p50_s"] for r in rows], name="decision p50"), row=3, col=1)
    fig.add_trace(go.Scatter(x=t, y=[r["decision_p99_s"] for r in rows], name="decision p99"), row=3, col=1)
    fig.add_trace(go.Scatter(x=t, y=[r["tick_to_bar_p99_s"] for r in rows], name="tick to bar p99"), row=3, col=1)
    fig.update_xaxes(title_text="minutes", row=3, col=1)
    fig.update_layout(height=900, title=f"levibot soak: {RATE:g} ticks/s for {MINUTES:g} min")
    fig.write_html(out / "soak.html", include_plotlyjs=True)


def svg_chart(rows: list[dict], path: Path, title: str) -> None:
    """A small dependency-free SVG of RSS (MiB) and consumer lag (messages) over time, for docs/."""
    w, h, pad = 720, 170, 44
    t = [r["t_s"] / 60 for r in rows]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{2 * h + 30}" font-family="sans-serif" '
        f'font-size="11"><text x="{pad}" y="14" font-size="13">{title}</text>'
    ]
    for k, (key, label, colour) in enumerate(
        (
            ("rss_mib", "resident memory of the flow, MiB", "#1f77b4"),
            ("lag_messages", "consumer lag, messages", "#d62728"),
        )
    ):
        ys = [r[key] or 0.0 for r in rows]
        lo, hi = (0.0 if key == "lag_messages" else min(ys)), max(ys)
        hi = hi if hi > lo else lo + 1
        top = 24 + k * (h + 4)

        def xy(x: float, y: float) -> str:
            return (
                f"{pad + (w - 2 * pad) * (x - t[0]) / max(1e-9, t[-1] - t[0]):.1f},"
                f"{top + h - 20 - (h - 40) * (y - lo) / (hi - lo):.1f}"  # noqa: B023 - called within this iteration
            )

        parts.append(f'<rect x="{pad}" y="{top}" width="{w - 2 * pad}" height="{h - 20}" fill="none" stroke="#ccc"/>')
        parts.append(f'<text x="{pad + 4}" y="{top + 12}">{label}</text>')
        parts.append(f'<text x="2" y="{top + 20}">{hi:.0f}</text><text x="2" y="{top + h - 20}">{lo:.0f}</text>')
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
            + " ".join(xy(x, y) for x, y in zip(t, ys, strict=True))
            + '"/>'
        )
    parts.append(
        f'<text x="{pad}" y="{2 * h + 24}">0 min</text><text x="{w - pad - 40}" y="{2 * h + 24}">'
        f"{t[-1]:.0f} min</text></svg>"
    )
    path.write_text("\n".join(parts) + "\n")


def main() -> int:
    base = Settings.from_env()
    prefix = f"soak{uuid.uuid4().hex[:8]}."
    out = base.var_dir / "soak" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LEVIBOT_PG_DSN", "LEVIBOT_CLICKHOUSE_DSN")}
    env.update(
        LEVIBOT_TOPIC_PREFIX=prefix,
        LEVIBOT_VAR=str(out / "var"),
        PYTHONUNBUFFERED="1",
        LEVIBOT_CONTROL_KEY=os.environ.get("LEVIBOT_CONTROL_KEY") or uuid.uuid4().hex,
    )
    s = Settings.from_env(env)
    ensure_topics(s.kafka_bootstrap, prefix=prefix)
    try:
        soak_summary = soak(s, out, env)
        with (out / "samples.csv").open() as f:
            rows = [{k: (float(v) if v not in ("", "None") else None) for k, v in r.items()} for r in csv.DictReader(f)]
        chart(out, rows)
        svg_chart(rows, out / "soak.svg", f"levibot soak: {RATE:g} ticks/s for {MINUTES:g} min")
        web = webhook_load(s, out, env) if WEBHOOK_S > 0 else {"skipped": True}
    finally:
        delete_topics(s.kafka_bootstrap, [t for t in _topics(s.kafka_bootstrap) if t.startswith(prefix)])
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        "soak": soak_summary,
        "webhook": web,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"soak: {out / 'summary.json'}, chart {out / 'soak.html'}")
    return 1 if web.get("accepted_missing") or web.get("duplicated_on_topic") else 0


def _topics(bootstrap: str) -> list[str]:
    from confluent_kafka.admin import AdminClient

    return list(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


if __name__ == "__main__":
    raise SystemExit(main())
