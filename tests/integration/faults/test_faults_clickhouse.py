"""A real ClickHouse fault (issue 15 item 1), ``-m faults``: the embedded engine's disk fills up mid-run.

ClickHouse runs here embedded in the flow's process (chDB: no server, no socket), so neither a stopped server nor a TCP
proxy can stand between the flow and it; a ClickHouse server cannot run on this machine. The real fault of an embedded
engine is its disk: chDB's data directory sits on its own small tmpfs (``mount -t tmpfs``, the test runs as root),
and mid-run a ballast file fills that filesystem. Every insert then fails inside ClickHouse itself with
``Code: 243 NOT_ENOUGH_SPACE (Cannot reserve 1.00 MiB, not enough space)``; removing the ballast lifts the fault.

Checked through ``levibot run --live --venue sim --stores clickhouse`` on the real broker: while the disk is full the
flow keeps deciding (orders keep reaching Kafka), the ``clickhouse.*`` breakers open on the flow's own ``/metrics``
(``levibot_circuit_breaker_state`` = 2, what ``LevibotCircuitBreakerOpen`` reads; failed writes counted in
``levibot_sink_failures_total``) and a ``sink_circuit_open`` alert is on ``alerts``; after the ballast is removed the
breakers close (``sink_circuit_closed``), the spool empties, and every table holds each of the run's rows exactly once:
the ticks are exactly the produced ones, and orders, fills, risk decisions, features and scores equal by id what the
flow published on Kafka, with no duplicate row even without ``FINAL``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.history import iter_tick_events, load_history
from connectors.kafka.sink import EventProducer
from schemas.events import Alert, FeatureVector, Fill, Order, RiskDecision, Score
from tests.support import DATA, REPO, metrics, wait_for
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    TopicCounter,
    create_topics,
    drop_topics,
    flow_env,
    free_ports,
    new_prefix,
    read_events,
)

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

MAX_BARS = 1500  # per file, 8 ticks per bar -> 24,000 ticks
#: how long the disk stays full, s (at least; the flow decides on input produced during it)
FULL_S = float(os.environ.get("LEVIBOT_FAULT_CH_FULL_S") or 20)
TMPFS_MB = 192
#: ClickHouse table -> (id column, Kafka topic, event type, id attribute): the rows the flow also published
PUBLISHED = {
    "orders": ("order_id", "orders", Order, "order_id"),
    "fills": ("fill_id", "fills", Fill, "fill_id"),
    "risk_decisions": ("id", "risk.decisions", RiskDecision, "id"),
    "features": ("concat(symbol, toString(ts))", "features", FeatureVector, None),
    "scores": ("concat(symbol, toString(ts))", "scores", Score, None),
}


def breakers(m: dict[str, float]) -> dict[str, float]:
    return {
        k.split('breaker="', 1)[1].split('"', 1)[0]: v
        for k, v in m.items()
        if k.startswith("levibot_circuit_breaker_state{") and "clickhouse." in k
    }


def fill_disk(mount: Path) -> Path:
    """Write a ballast file until the filesystem is full (ENOSPC)."""
    ballast = mount / "ballast"
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError:
            pass
    return ballast


def clickhouse_query(path: Path, queries: list[str]) -> list[list]:
    """Rows of each query on the flow's embedded ClickHouse, in a child process (chDB opens one data path per process,
    and this test process may hold the session's)."""
    code = (
        "import json, sys; from connectors.clickhouse.client import connect; c = connect('chdb://' + sys.argv[1]); "
        "print(json.dumps([[list(r) for r in c.query(q).result_rows] for q in sys.argv[2:]], default=str))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path), *queries],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this fault needs a tmpfs of its own (mount -t tmpfs): run the faults tests as root", pytrace=False)
    mount = tmp_path / "chdisk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mount)], check=True, timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], timeout=30, check=False)


def test_clickhouse_disk_full_mid_run_keeps_deciding_alerts_and_catches_up_exactly_once(
    kafka_bootstrap, small_disk, tmp_path
):
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=MAX_BARS)
    ticks = list(iter_tick_events(history.ticks))
    n = len(ticks)
    cut_a, cut_b = n // 3, 2 * n // 3
    prefix = new_prefix("fch")
    ch_path = (small_disk / "ch").resolve()
    (port,) = free_ports(1)
    env = flow_env(
        prefix=prefix,
        var=tmp_path / "var",
        LEVIBOT_CLICKHOUSE_DSN=f"chdb://{ch_path}",
        LEVIBOT_METRICS_PORT=str(port),
        LEVIBOT_SINK_CLOSE_TIMEOUT_S="60",
    )
    proc = None
    ingest = f'levibot_events_in_total{{stage="ingest",topic="{prefix}ticks"}}'
    try:
        create_topics(kafka_bootstrap, prefix)
        out = EventProducer(kafka_bootstrap, f"{prefix}ticks")
        proc = FlowProc(
            ["run", "--live", "--venue", "sim", "--stores", "clickhouse", *BAR_ARGS], env, tmp_path / "flow.log"
        )
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")

        # 1. healthy: the first third written, every clickhouse breaker closed
        out.send(ticks[:cut_a])
        out.flush(120)
        wait_for(
            lambda: metrics(port).get(ingest) == cut_a,
            180,
            "the first third consumed",
            procs=[proc],
            retry_on=(OSError,),
        )
        st = breakers(metrics(port))
        assert st and set(st.values()) == {0.0}, st

        # 2. the disk fills up: inserts fail inside ClickHouse, the flow keeps deciding, the breakers open
        ballast = fill_disk(small_disk)
        before = orders.count()
        t_full = time.monotonic()
        out.send(ticks[cut_a:cut_b])
        out.flush(120)
        wait_for(
            lambda: metrics(port).get(ingest) == cut_b,
            180,
            "the second third consumed on a full disk",
            procs=[proc],
            retry_on=(OSError,),
        )
        wait_for(
            lambda: orders.count() > before,
            120,
            "orders decided while ClickHouse cannot write",
            procs=[proc],
            retry_on=(OSError,),
        )
        m = wait_for(
            lambda: (lambda mm: mm if breakers(mm).get("clickhouse.ticks") == 2 else None)(metrics(port)),
            60,
            "clickhouse.ticks open on the full disk",
            procs=[proc],
            retry_on=(OSError,),
        )
        open_during = sorted(b for b, v in breakers(m).items() if v == 2)
        failures = {k: v for k, v in m.items() if k.startswith("levibot_sink_failures_total{") and "clickhouse." in k}
        assert failures.get('levibot_sink_failures_total{sink="clickhouse.ticks"}', 0) >= 1, failures
        spool = tmp_path / "var" / "spool" / "p0"
        assert any(spool.rglob("*.batch")), "nothing spooled while the disk was full"
        time.sleep(max(0.0, FULL_S - (time.monotonic() - t_full)))  # the disk stays full
        assert proc.running and breakers(metrics(port)).get("clickhouse.ticks") == 2, proc.tail()
        decided_while_full = orders.count() - before
        spooled = sum(1 for _ in spool.rglob("*.batch"))
        full_s = time.monotonic() - t_full

        # 3. the fault lifted: the rest of the input, the breakers close, the spool drains
        ballast.unlink()
        t_free = time.monotonic()
        out.send(ticks[cut_b:])
        out.flush(120)
        wait_for(lambda: metrics(port).get(ingest) == n, 180, "every tick consumed", procs=[proc], retry_on=(OSError,))
        wait_for(
            lambda: set(breakers(metrics(port)).values()) == {0.0},
            120,
            "every clickhouse breaker closed",
            procs=[proc],
            retry_on=(OSError,),
        )
        wait_for(lambda: not any(spool.rglob("*.batch")), 60, "the spool drained", procs=[proc], retry_on=(OSError,))
        caught_up_s = time.monotonic() - t_free
        # a clean stop: the last decisions of the tail go out to Kafka and ClickHouse alike (the sinks are flushed),
        # which is all the comparison below needs
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait_ok(120)
        orders.close()
        published = {
            t: read_events(kafka_bootstrap, f"{prefix}{topic}", typ) for t, (_, topic, typ, _) in PUBLISHED.items()
        }
        alerts = read_events(kafka_bootstrap, f"{prefix}alerts", Alert)
    finally:
        if proc is not None:
            proc.kill()
        drop_topics(kafka_bootstrap, [prefix])

    opened = [
        a for a in alerts if a.kind == "sink_circuit_open" and a.labels.get("breaker", "").startswith("clickhouse.")
    ]
    closed = [
        a for a in alerts if a.kind == "sink_circuit_closed" and a.labels.get("breaker", "").startswith("clickhouse.")
    ]
    assert opened and closed, [a.kind for a in alerts]
    assert {a.labels["breaker"] for a in opened} == {a.labels["breaker"] for a in closed}
    assert any("NOT_ENOUGH_SPACE" in a.message or "not enough space" in a.message for a in opened), opened[0].message

    queries = [
        "SELECT count(), uniqExact(trade_id) FROM levibot.ticks",
        "SELECT count() FROM levibot.ticks FINAL",
        "SELECT groupArray(trade_id) FROM levibot.ticks",
    ]
    for table, (key, *_rest) in PUBLISHED.items():
        queries += [
            f"SELECT count(), uniqExact({key}) FROM levibot.{table}",
            f"SELECT count() FROM levibot.{table} FINAL",
        ]
    queries += ["SELECT count(), uniqExact(symbol, resolution_s, ts) FROM levibot.bars"]
    res = clickhouse_query(ch_path, queries)
    ((tick_n, tick_distinct),) = res[0]
    assert (tick_n, tick_distinct, res[1][0][0]) == (n, n, n), (tick_n, tick_distinct, res[1])
    assert sorted(res[2][0][0]) == sorted(t.trade_id for t in ticks)
    got = {}
    for i, (table, (_key, _topic, _typ, attr)) in enumerate(PUBLISHED.items()):
        ((cnt, distinct),) = res[3 + 2 * i]
        final = res[4 + 2 * i][0][0]
        events = published[table]
        want = len({getattr(e, attr) for e in events}) if attr else len({(e.symbol, e.ts) for e in events})
        got[table] = (cnt, distinct, final, want)
        assert cnt == distinct == final == want, (table, cnt, distinct, final, want)
    bars_n, bars_distinct = res[-1][0]
    assert bars_n == bars_distinct > 0
    assert got["orders"][0] > 0 and decided_while_full > 0
    print(
        f"ClickHouse disk full {full_s:.1f}s: {decided_while_full} orders decided meanwhile; open: {open_during}; "
        f"{spooled} batches spooled; caught up {caught_up_s:.1f}s after the ballast was removed; rows {got}; "
        f"bars {bars_n}"
    )
