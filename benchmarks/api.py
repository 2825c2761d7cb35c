"""Load benchmark of the operator API (issue 16): an open-loop load at a fixed rate (default 1,000 requests/s for
30 s) against ``/v1/status`` and ``/v1/positions`` of a real ``levibot api`` service on the real PostgreSQL (its own
database ``levibot_bench_api``: keys cannot be deleted, so they do not go into the shared one; seeded once with 4
symbols' bars, 4,000 orders and fills, 200 risk decisions) with its quotas in the
real Redis (``LEVIBOT_API_RATE_STORAGE``, as a deployment with replicas runs it), and against a bare FastAPI endpoint
on the same uvicorn settings as the reference of the ratio.

The load generator is vegeta (``github.com/tsenart/vegeta/v12``, compiled Go, installed by ``make tools`` into
``var/tools/bin``): it sends request ``i`` at ``start + i / rate`` whatever the answers do (open loop; it adds
workers when answers are slow instead of waiting). Each result carries the moment it was sent, so the figures here
are measured from the moment each request was **due** (``start + seq / rate``): a generator or server that falls
behind shows it in the percentiles (no coordinated omission). Errors: any answer but 200 and any request without an
answer within 5 s. Also reported per endpoint: the rate vegeta actually sent at, and the server's CPU seconds per
request (``/proc``, the uvicorn processes and their workers).

    .venv/bin/python -m benchmarks.api [--rate 1000] [--seconds 30] [--workers 2] [--api-root DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import secrets
import shutil
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
            limit_concurrency=512, access_log=False)
"""
TIMEOUT_S = 5.0


def vegeta_path() -> str:
    """The vegeta binary: ``$LEVIBOT_TOOLS/bin``, ``$LEVIBOT_VAR/tools/bin``, ``./var/tools/bin`` or the PATH."""
    var = Path(os.environ.get("LEVIBOT_VAR", ROOT / "var"))
    for d in (os.environ.get("LEVIBOT_TOOLS"), var / "tools", ROOT / "var" / "tools"):
        if d and (Path(d) / "bin" / "vegeta").is_file():
            return str(Path(d) / "bin" / "vegeta")
    found = shutil.which("vegeta")
    if found:
        return found
    raise RuntimeError("vegeta not found: run `make tools` (installs it into var/tools/bin)")


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
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (uvicorn's worker processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, IndexError, ValueError):
            continue
    return total


def summarise(rows: list[tuple[int, int, int, int, str]], rate: float) -> dict[str, float]:
    """Figures of vegeta's results ``(seq, sent_ns, code, latency_ns, error)``: latency from the moment each request
    was due (the schedule's start + seq / rate), errors by kind, the achieved answer rate."""
    if not rows:
        return {"requests": 0.0, "errors": 0.0}
    seq = np.array([r[0] for r in rows], dtype=np.int64)
    sent = np.array([r[1] for r in rows], dtype=np.int64)
    code = np.array([r[2] for r in rows], dtype=np.int64)
    lat = np.array([r[3] for r in rows], dtype=np.int64)
    # vegeta never sends a request before it is due: the schedule's start is the earliest one consistent with
    # every send (a late first request would otherwise shift every due time)
    offsets = (seq * (1e9 / rate)).astype(np.int64)
    start = int((sent - offsets).min())
    due = start + offsets
    from_due = (sent + lat - due) / 1e6  # ms
    ok = (code == 200) & np.array([not r[4] for r in rows])
    kinds: dict[str, int] = {}
    for r, good in zip(rows, ok, strict=True):
        if not good:
            k = (
                f"http_{r[2]}"
                if r[2]
                else ("timeout" if "timeout" in r[4].lower() or "deadline" in r[4].lower() else "connection")
            )
            kinds[k] = kinds.get(k, 0) + 1
    wall_s = (int((sent + lat).max()) - start) / 1e9
    send_s = (int(sent.max()) - int(sent.min())) / 1e9
    q = np.percentile(from_due[ok], [50, 95, 99]) if ok.any() else [float("nan")] * 3
    own = np.percentile(lat[ok] / 1e6, [50, 95, 99]) if ok.any() else [float("nan")] * 3
    return {
        "requests": float(len(rows)),
        "errors": float((~ok).sum()),
        **{f"errors_{k}": float(v) for k, v in sorted(kinds.items())},
        "sent_per_s": (len(rows) - 1) / send_s if send_s > 0 else float("nan"),
        "achieved_per_s": float(ok.sum()) / wall_s if wall_s > 0 else float("nan"),
        "p50_ms": float(q[0]),
        "p95_ms": float(q[1]),
        "p99_ms": float(q[2]),
        "max_ms": float(from_due[ok].max()) if ok.any() else float("nan"),
        "sent_p95_ms": float(own[1]),
    }


def attack(
    url: str,
    headers: dict[str, str],
    rate: float,
    seconds: float,
    server_pid: int | None = None,
) -> dict[str, float]:
    """One vegeta run at ``rate`` for ``seconds`` against ``GET url``; :func:`summarise` figures plus
    ``server_cpu_ms_per_req`` when ``server_pid`` is given."""
    veg = vegeta_path()
    target = f"GET {url}\n" + "".join(f"{k}: {v}\n" for k, v in headers.items())
    cpu0 = _tree_cpu_s(server_pid) if server_pid else 0.0
    att = subprocess.Popen(
        [
            veg,
            "attack",
            f"-rate={rate:g}/1s",
            f"-duration={seconds:g}s",
            f"-timeout={TIMEOUT_S:g}s",
            "-workers=32",
            "-max-body=0",
            "-http2=false",
            "-redirects=-1",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    enc = subprocess.Popen([veg, "encode", "--to", "csv"], stdin=att.stdout, stdout=subprocess.PIPE)
    assert att.stdin is not None and att.stdout is not None
    att.stdin.write(target.encode())
    att.stdin.close()
    att.stdout.close()
    out, _ = enc.communicate()
    att.wait()
    cpu1 = _tree_cpu_s(server_pid) if server_pid else 0.0
    rows = []
    # csv columns: timestamp (ns), code, latency (ns), bytes out, bytes in, error, body, attack, seq, method, url,
    # headers
    for r in csv.reader(io.StringIO(out.decode())):
        rows.append((int(r[8]), int(r[0]), int(r[1]), int(r[2]), r[5]))
    got = summarise(rows, rate)
    if server_pid:
        got["server_cpu_ms_per_req"] = (cpu1 - cpu0) * 1000 / max(1, len(rows))
    return got


def _bench_db(admin_dsn: str) -> str:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'levibot_bench_api'").fetchone() is None:
            conn.execute("CREATE DATABASE levibot_bench_api")
    d = conninfo_to_dict(admin_dsn)
    d["dbname"] = "levibot_bench_api"
    return make_conninfo(**d)


SEED_SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD")


def _seed(dsn: str, n_bars: int = 2000, n_fills: int = 4000, n_decisions: int = 200) -> None:
    """Give the endpoints something to read (once per database): ``n_bars`` one-minute bars per symbol, ``n_fills``
    orders and fills spread over the symbols, ``n_decisions`` risk decisions (deterministic random walk)."""
    import psycopg

    rng = np.random.default_rng(16)
    t0, step = 1_800_000_000_000_000_000, 60_000_000_000
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM fills").fetchone()[0] > 0:
            return
        with conn.transaction(), conn.cursor() as cur:
            closes = {}
            for k, sym in enumerate(SEED_SYMBOLS):
                px = (100.0 * (k + 1)) * np.exp(np.cumsum(rng.normal(0, 0.002, n_bars)))
                closes[sym] = px
                cur.executemany(
                    "INSERT INTO bars (symbol, resolution_s, ts, ts_ns, open, high, low, close, volume, "
                    "vwap) VALUES (%s, 60, to_timestamp(%s / 1e9), %s, %s, %s, %s, %s, 1, %s)",
                    [
                        (
                            sym,
                            t0 + i * step,
                            t0 + i * step,
                            float(c),
                            float(c) * 1.001,
                            float(c) * 0.999,
                            float(c),
                            float(c),
                        )
                        for i, c in enumerate(px)
                    ],
                )
            orders, fills = [], []
            for i in range(n_fills):
                sym = SEED_SYMBOLS[i % len(SEED_SYMBOLS)]
                bar = int(i * n_bars / n_fills)
                ts = t0 + bar * step + 1
                side = "buy" if rng.random() < 0.55 else "sell"
                qty, price = float(rng.uniform(0.01, 1.0)), float(closes[sym][bar])
                orders.append((f"bo{i}", "trend" if i % 2 else "meanrev", sym, side, qty, ts, ts))
                fills.append((f"bf{i}", f"bo{i}", sym, side, price, qty, price * qty * 1e-4, ts, ts))
            cur.executemany(
                "INSERT INTO orders (order_id, strategy, symbol, side, qty, order_type, tif, ts, ts_ns) "
                "VALUES (%s, %s, %s, %s, %s, 'market', 'IOC', to_timestamp(%s / 1e9), %s)",
                orders,
            )
            cur.executemany(
                "INSERT INTO fills (fill_id, order_id, symbol, side, price, qty, fee, liquidity, ts, "
                "ts_ns) VALUES (%s, %s, %s, %s, %s, %s, %s, 'taker', to_timestamp(%s / 1e9), %s)",
                fills,
            )
            cur.executemany(
                "INSERT INTO risk_decisions (id, intent_id, symbol, strategy, side, action, "
                "requested_qty, approved_qty, reasons, var, cvar, portfolio, ts, ts_ns) VALUES (%s, %s, "
                "'BTC-USD', 'trend', 'buy', 'approved', 1, 1, '{}', 0.01, 0.02, %s, "
                "to_timestamp(%s / 1e9), %s)",
                [
                    (
                        f"bd{i}",
                        f"bi{i}",
                        json.dumps({"equity": 100_000.0, "drawdown": 0.01}),
                        t0 + i * step * 10,
                        t0 + i * step * 10,
                    )
                    for i in range(n_decisions)
                ],
            )


def _redis_url() -> str:
    url = os.environ.get("LEVIBOT_API_RATE_STORAGE", "")
    if url.startswith("redis"):
        return url
    return f"redis://127.0.0.1:{os.environ.get('LEVIBOT_REDIS_PORT', '56379')}/0"


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def run(
    rate: float = 1000.0,
    seconds: float = 30.0,
    workers: int = 2,
    api_root: str | None = None,
) -> dict[str, float]:
    """The three loads, one after the other; ``api_<endpoint>_<figure>`` and the p95 ratio to the bare endpoint."""
    from connectors.postgres.api import ApiDatabase
    from connectors.postgres.migrate import migrate
    from flows.settings import Settings
    from operators.api.keys import KeyHasher, make_token, parse_token

    s = Settings.from_env()
    dsn = _bench_db(s.pg_dsn)
    migrate(dsn)
    _seed(dsn)
    db = ApiDatabase(dsn, max_size=1).open()
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, sec = parse_token(tok)  # type: ignore[misc]
    db.create_key(
        key_id=kid,
        name="bench",
        secret_hash=KeyHasher().hash(sec),
        scopes=["read"],
        tier="enterprise",
        accounts=["*"],
        rate="100000000/minute",
        created_by="benchmarks.api",
        expires_at=None,
    )
    db.close()
    api_port, bare_port = _port(), _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_API_")}
    env.update(LEVIBOT_PG_DSN=dsn, LEVIBOT_API_AUTH_RATE="1000000/minute", LEVIBOT_API_RATE_STORAGE=_redis_url())
    root = Path(api_root).resolve() if api_root else ROOT
    if api_root:  # another checkout's API (a before/after comparison): its modules first on the path
        env["PYTHONPATH"] = str(root)
    cmd = [
        sys.executable,
        "-c",
        "from flows.cli import app; app()",
        "api",
        "--port",
        str(api_port),
        "--log-level",
        "warning",
    ] + (["--workers", str(workers)] if workers > 1 else [])
    procs = [
        subprocess.Popen(cmd, cwd=root, env=env),
        subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)], cwd=ROOT),
    ]
    out: dict[str, float] = {
        "api_rate": rate,
        "api_seconds": seconds,
        "api_workers": float(workers),
        "api_load_average_1m": os.getloadavg()[0],
    }
    try:
        _wait_up(f"http://127.0.0.1:{api_port}/livez", procs[0])
        _wait_up(f"http://127.0.0.1:{bare_port}/bare", procs[1])
        h = {"X-API-Key": tok}
        for name, url, headers, pid in (
            ("bare", f"http://127.0.0.1:{bare_port}/bare", {}, procs[1].pid),
            ("status", f"http://127.0.0.1:{api_port}/v1/status", h, procs[0].pid),
            ("positions", f"http://127.0.0.1:{api_port}/v1/positions", h, procs[0].pid),
        ):
            attack(url, headers, min(rate, 100.0), 2.0)  # warm up: pools, every worker's verified-key cache
            got = attack(url, headers, rate, seconds, pid)
            out.update({f"api_{name}_{k}": v for k, v in got.items()})
        for name in ("status", "positions"):
            out[f"api_{name}_p95_vs_bare"] = out[f"api_{name}_p95_ms"] / out["api_bare_p95_ms"]
        out["api_load_average_1m_after"] = os.getloadavg()[0]
    finally:
        _stop(procs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second (default 1000)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per endpoint (default 30)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of the API (default 2)")
    ap.add_argument(
        "--api-root",
        default=None,
        help="run the API from this checkout instead (e.g. `git archive` "
        "of an older commit, for a before/after comparison; --workers 1 unless it has the option)",
    )
    args = ap.parse_args()
    res = run(args.rate, args.seconds, args.workers, args.api_root)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
