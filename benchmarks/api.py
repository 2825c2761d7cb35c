"""Load benchmark of the operator API (issue 16): an open-loop load at a fixed rate (default 1,000 requests/s for
30 s) against ``/v1/status`` and ``/v1/positions`` of a real ``levibot api`` process on the real PostgreSQL (its own
database ``levibot_bench_api``: keys cannot be deleted, so they do not go into the shared one), and against a bare
FastAPI endpoint on the same uvicorn settings as the reference of the ratio.

Open loop: request ``i`` is due at ``start + i / rate`` and its latency is measured from that due time, so a
server that falls behind shows it in the percentiles (no coordinated omission). Errors: any answer but 200, and any
request that does not finish within 5 s.

    .venv/bin/python -m benchmarks.api [--rate 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
from fastapi import FastAPI
import uvicorn, sys
app = FastAPI()

@app.get("/bare")
def bare():
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", server_header=False,
            limit_concurrency=512)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


async def _load(url: str, headers: dict[str, str], rate: float, seconds: float) -> dict[str, float]:
    import aiohttp

    n = int(rate * seconds)
    lat = np.full(n, np.nan)
    errors = 0
    kinds: dict[str, int] = {}
    conn = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, headers=headers) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2

        async def one(i: int) -> None:
            nonlocal errors
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        kinds[f"http_{r.status}"] = kinds.get(f"http_{r.status}", 0) + 1
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors += 1
                kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                return
            lat[i] = loop.time() - due

        await asyncio.gather(*(one(i) for i in range(n)))
        wall = loop.time() - start
    ok = lat[~np.isnan(lat)]
    q = np.percentile(ok, [50, 95, 99]) * 1000 if ok.size else [np.nan] * 3
    return {"requests": float(n), "errors": float(errors), **{f"errors_{k}": float(v) for k, v in kinds.items()},
            "achieved_per_s": ok.size / wall,
            "p50_ms": float(q[0]), "p95_ms": float(q[1]), "p99_ms": float(q[2])}


def _bench_db(admin_dsn: str) -> str:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'levibot_bench_api'").fetchone() is None:
            conn.execute("CREATE DATABASE levibot_bench_api")
    d = conninfo_to_dict(admin_dsn)
    d["dbname"] = "levibot_bench_api"
    return make_conninfo(**d)


def run(rate: float = 1000.0, seconds: float = 30.0) -> dict[str, float]:
    """The three loads, one after the other; ``api_<endpoint>_<figure>`` and the p95 ratio to the bare endpoint."""
    from connectors.postgres.api import ApiDatabase
    from connectors.postgres.migrate import migrate
    from flows.settings import Settings
    from operators.api.keys import KeyHasher, make_token, parse_token

    s = Settings.from_env()
    dsn = _bench_db(s.pg_dsn)
    migrate(dsn)
    db = ApiDatabase(dsn, max_size=1).open()
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, sec = parse_token(tok)
    db.create_key(key_id=kid, name="bench", secret_hash=KeyHasher().hash(sec), scopes=["read"], tier="enterprise",
                  accounts=["*"], rate="100000000/minute", created_by="benchmarks.api", expires_at=None)
    db.close()
    api_port, bare_port = _port(), _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_API_")}
    env.update(LEVIBOT_PG_DSN=dsn, LEVIBOT_API_AUTH_RATE="1000000/minute", LEVIBOT_API_DB_POOL="16")
    procs = [subprocess.Popen([str(Path(sys.executable).parent / "levibot"), "api", "--port", str(api_port),
                               "--log-level", "warning"], cwd=ROOT, env=env),
             subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)], cwd=ROOT)]
    out: dict[str, float] = {}
    try:
        _wait_up(f"http://127.0.0.1:{api_port}/livez", procs[0])
        _wait_up(f"http://127.0.0.1:{bare_port}/bare", procs[1])
        h = {"X-API-Key": tok}
        for name, url, headers in (("bare", f"http://127.0.0.1:{bare_port}/bare", {}),
                                   ("status", f"http://127.0.0.1:{api_port}/v1/status", h),
                                   ("positions", f"http://127.0.0.1:{api_port}/v1/positions", h)):
            asyncio.run(_load(url, headers, min(rate, 50.0), 1.0))  # warm up: pools, the verified-key cache
            got = asyncio.run(_load(url, headers, rate, seconds))
            out.update({f"api_{name}_{k}": v for k, v in got.items()})
        for name in ("status", "positions"):
            out[f"api_{name}_p95_vs_bare"] = out[f"api_{name}_p95_ms"] / out["api_bare_p95_ms"]
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second (default 1000)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per endpoint (default 30)")
    args = ap.parse_args()
    res = run(args.rate, args.seconds)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
