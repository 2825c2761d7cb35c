"""Real faults on real services (issue 15 items 1-2), ``-m faults``, part of ``make test``.

These tests start their OWN Kafka broker and PostgreSQL server through ``scripts/services.sh`` (their own
``LEVIBOT_VAR`` and ports), because they stop and restart them: the shared services on 9092/55432 that other tests
use are never touched. Between the flow and that PostgreSQL sits a real TCP fault proxy (Toxiproxy, installed by
``scripts/install_tools.sh``) for latency and connection resets.

* PostgreSQL: a live run (``levibot run --live --venue sim --stores postgres``) through Toxiproxy gets latency, then
  connection resets, then the real server stopped for ``LEVIBOT_FAULT_PG_OUTAGE_S`` seconds (default 60, the
  issue's minute) and started again. The flow keeps deciding during the outage (orders keep reaching Kafka), the
  circuit breaker's gauge and alerts show it, and at the end every table's row count equals a clean run's.
  The log of that run is scanned for the secrets it was given.
* The broker: restarted (clean stop, ``LEVIBOT_FAULT_BROKER_DOWN_S`` seconds down, start) in the middle of a live
  run: the orders on the topic are identical by id to a clean run's, none missing, none duplicated.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from connectors.history import iter_tick_events, load_history
from connectors.kafka.sink import EventProducer
from schemas.events import Alert, Order
from tests.support import DATA, REPO, wait_for
from tests.support.flowproc import (
    BAR_ARGS,
    FlowProc,
    TopicCounter,
    create_topics,
    flow_env,
    free_ports,
    new_prefix,
    read_events,
    read_orders,
)
from tests.support.toxiproxy import Toxiproxy

#: what a wait treats as "not yet": the metrics endpoint not up, the tables not migrated, the server away
PG_NOT_YET = (OSError, psycopg.Error)

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]

OUTAGE_S = float(os.environ.get("LEVIBOT_FAULT_PG_OUTAGE_S") or 60)
BROKER_DOWN_S = float(os.environ.get("LEVIBOT_FAULT_BROKER_DOWN_S") or 10)
MAX_BARS = 4000  # per file, 8 ticks per bar -> 64,000 ticks, a few thousand orders
TABLES = ("ticks", "bars", "risk_decisions", "orders", "fills", "dead_letters", "audit")
#: secrets given to every flow run here; the log scan looks for each of them
SECRETS = {
    "LEVIBOT_CONTROL_KEY": "faults-control-key-" + uuid.uuid4().hex,
    "LEVIBOT_TELEGRAM_SECRET_TOKEN": "faults-telegram-token-" + uuid.uuid4().hex,
    "LEVIBOT_ALERT_WEBHOOK_SECRET": "faults-alert-hmac-" + uuid.uuid4().hex,
}


# -- own services ---------------------------------------------------------------------------------------------------
@dataclass
class Services:
    env: dict[str, str]
    var: Path
    bootstrap: str
    pg_port: int
    admin_dsn: str
    log: list[str] = field(default_factory=list)

    def run(self, action: str, what: str, timeout_s: float = 240) -> float:
        t0 = time.monotonic()
        res = subprocess.run(
            [str(REPO / "scripts" / "services.sh"), action, what],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        took = time.monotonic() - t0
        self.log.append(f"services.sh {action} {what}: rc {res.returncode} in {took:.1f}s")
        assert res.returncode == 0, f"services.sh {action} {what} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        return took

    def database(self) -> str:
        name = f"levibot_f_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        params = conninfo_to_dict(self.admin_dsn)
        params["dbname"] = name
        return make_conninfo(**params)


@pytest.fixture(scope="module")
def services():
    var = Path(tempfile.mkdtemp(prefix="levibot-faults-", dir="/tmp"))
    var.chmod(0o755)  # the postgres OS user must reach var/pg
    kafka_port, controller_port, pg_port = free_ports(3)
    env = {
        k: v for k, v in os.environ.items() if k not in ("LEVIBOT_KAFKA_BOOTSTRAP", "LEVIBOT_PG_DSN", "LEVIBOT_PG_DATA")
    }
    env.update(
        LEVIBOT_VAR=str(var),
        LEVIBOT_KAFKA_PORT=str(kafka_port),
        LEVIBOT_KAFKA_CONTROLLER_PORT=str(controller_port),
        LEVIBOT_PG_PORT=str(pg_port),
    )
    # the broker's jars: copied from the shared install when it has them (else Maven fetches them)
    shared_libs = Path(os.environ.get("LEVIBOT_VAR") or REPO / "var") / "kafka" / "libs"
    if (shared_libs / ".complete").exists():
        shutil.copytree(shared_libs, var / "kafka" / "libs")
    s = Services(
        env, var, f"127.0.0.1:{kafka_port}", pg_port, f"postgresql://levibot:levibot@127.0.0.1:{pg_port}/levibot"
    )
    try:
        s.run("up", "kafka")
        s.run("up", "postgres")
        yield s
    finally:
        for what in ("kafka", "postgres"):
            subprocess.run(
                [str(REPO / "scripts" / "services.sh"), "down", what],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(var, ignore_errors=True)


# -- helpers --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ticks():
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=MAX_BARS)
    return list(iter_tick_events(history.ticks))


def produce(bootstrap: str, topic: str, events: list) -> None:
    p = EventProducer(bootstrap, topic)
    p.send(events)
    p.flush(120)


def pg_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def breaker_states(port: int) -> dict[str, float]:
    """``levibot_circuit_breaker_state`` per breaker, scraped from the flow's own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("levibot_circuit_breaker_state{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('breaker="', 1)[1].split('"', 1)[0]] = float(value)
    return out


def settle(dsn: str, n_ticks: int, proc: FlowProc, timeout_s: float = 180, quiet_s: float = 3.0) -> dict[str, int]:
    """Wait until every tick is stored and no table has changed for ``quiet_s`` seconds; the counts."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.running, f"the flow exited ({proc.proc.returncode}):\n{proc.tail()}"
        try:
            c = pg_counts(dsn)
        except psycopg.Error:  # not migrated yet, or the server is away
            c = None
        if c != last:
            last, since = c, time.monotonic()
        elif c is not None and c["ticks"] == n_ticks and time.monotonic() - since >= quiet_s:
            return c
        assert time.monotonic() < deadline, f"not settled after {timeout_s}s: {c} (want {n_ticks} ticks)\n{proc.tail()}"
        time.sleep(0.5)


def stop_flow(proc: FlowProc, timeout_s: float = 90) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait_ok(timeout_s)


def live_args(stores: str) -> list[str]:
    return ["run", "--live", "--venue", "sim", "--stores", stores, *BAR_ARGS]


def env_for(services: Services, prefix: str, var: Path, **extra: str) -> dict[str, str]:
    return flow_env(prefix=prefix, var=var, LEVIBOT_KAFKA_BOOTSTRAP=services.bootstrap, **SECRETS, **extra)


@dataclass
class Reference:
    counts: dict[str, int]
    orders: list[Order]
    seconds: float


@pytest.fixture(scope="module")
def reference(services, ticks, tmp_path_factory) -> Reference:
    """A clean tailing live run over all the ticks into PostgreSQL, stopped by SIGTERM once everything is stored."""
    tmp = tmp_path_factory.mktemp("reference")
    prefix = new_prefix("fref")
    create_topics(services.bootstrap, prefix)
    produce(services.bootstrap, f"{prefix}ticks", ticks)
    dsn = services.database()
    t0 = time.monotonic()
    proc = FlowProc(live_args("postgres"), env_for(services, prefix, tmp / "var", LEVIBOT_PG_DSN=dsn), tmp / "ref.log")
    try:
        counts = settle(dsn, len(ticks), proc)
        stop_flow(proc)
    finally:
        proc.kill()
    orders = read_orders(services.bootstrap, f"{prefix}orders")
    assert counts["orders"] == len(orders) > 100 and len({o.order_id for o in orders}) == len(orders)
    return Reference(counts, orders, time.monotonic() - t0)


# -- the tests ------------------------------------------------------------------------------------------------------
def test_postgres_latency_resets_and_a_real_outage_lose_nothing_and_double_nothing(
    services, ticks, reference, tmp_path
):
    prefix = new_prefix("fpg")
    create_topics(services.bootstrap, prefix)
    dsn = services.database()
    toxi = Toxiproxy(tmp_path / "toxiproxy.log")
    proc = None
    try:
        proxied = make_conninfo(dsn, port=str(toxi.proxy("pg", services.pg_port)))
        assert proxied != dsn
        (metrics_port,) = free_ports(1)
        env = env_for(
            services,
            prefix,
            tmp_path / "var",
            LEVIBOT_PG_DSN=proxied,
            LEVIBOT_METRICS_PORT=str(metrics_port),
            LEVIBOT_SINK_CLOSE_TIMEOUT_S="60",
        )
        n = len(ticks)
        cut_a, cut_b, cut_c = n // 4, n // 2, 3 * n // 4
        proc = FlowProc(live_args("postgres"), env, tmp_path / "flow.log")
        orders = TopicCounter(services.bootstrap, f"{prefix}orders")

        # 1. latency: 150 ms (+-50) on every PostgreSQL answer; writes are slower, nothing fails
        toxi.add_toxic("pg", "slow", "latency", latency=150, jitter=50)
        produce(services.bootstrap, f"{prefix}ticks", ticks[:cut_a])
        wait_for(
            lambda: pg_counts(dsn)["ticks"] == cut_a,
            120,
            "the first quarter stored through the latency",
            procs=[proc],
            retry_on=PG_NOT_YET,
        )
        toxi.remove_toxic("pg", "slow")
        assert set(breaker_states(metrics_port).values()) == {0.0}, "latency alone must not open a breaker"

        # 2. connection resets by the proxy: the ticks breaker opens, then closes when the resets stop
        toxi.add_toxic("pg", "reset", "reset_peer", timeout=0)
        produce(services.bootstrap, f"{prefix}ticks", ticks[cut_a:cut_b])
        wait_for(
            lambda: breaker_states(metrics_port).get("postgres.ticks", 0) > 0,
            60,
            "the postgres.ticks breaker to open on resets",
            procs=[proc],
            retry_on=PG_NOT_YET,
        )
        toxi.remove_toxic("pg", "reset")
        wait_for(
            lambda: pg_counts(dsn)["ticks"] == cut_b,
            60,
            "the reset-time ticks caught up",
            procs=[proc],
            retry_on=PG_NOT_YET,
        )
        wait_for(
            lambda: breaker_states(metrics_port).get("postgres.ticks") == 0,
            60,
            "the breaker closed",
            procs=[proc],
            retry_on=PG_NOT_YET,
        )

        # 3. the real server stopped for OUTAGE_S: the flow keeps deciding, the breaker is open
        before = orders.count()
        t_down = time.monotonic()
        services.run("down", "postgres")
        produce(services.bootstrap, f"{prefix}ticks", ticks[cut_b:cut_c])
        wait_for(
            lambda: orders.count() > before,
            60,
            "orders decided while PostgreSQL is down",
            procs=[proc],
            retry_on=PG_NOT_YET,
        )
        states = wait_for(
            lambda: (lambda st: st if st.get("postgres.ticks") == 2 else None)(breaker_states(metrics_port)),
            30,
            "postgres.ticks open during the outage",
            procs=[proc],
            retry_on=PG_NOT_YET,
        )
        decided_during_outage = orders.count() - before
        open_during = sorted(b for b, v in states.items() if v > 0)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
        outage = time.monotonic() - t_down
        assert proc.running, proc.tail()
        services.run("up", "postgres")
        t_up = time.monotonic()
        produce(services.bootstrap, f"{prefix}ticks", ticks[cut_c:])
        counts = settle(dsn, n, proc)
        caught_up_s = time.monotonic() - t_up
        assert set(breaker_states(metrics_port).values()) == {0.0}
        stop_flow(proc)
        orders.close()
        got_orders = read_orders(services.bootstrap, f"{prefix}orders")
        alerts = read_events(services.bootstrap, f"{prefix}alerts", Alert)
        log_text = (tmp_path / "flow.log").read_text(errors="replace")
    finally:
        toxi.close()
        if proc is not None:
            proc.kill()

    print(
        f"PostgreSQL outage {outage:.1f}s: {decided_during_outage} orders decided meanwhile; breakers open: "
        f"{open_during}; caught up {caught_up_s:.1f}s after the restart; counts {counts}; reference {reference.counts}"
        f" ({reference.seconds:.1f}s)"
    )
    assert decided_during_outage > 0
    # nothing lost, nothing doubled: every table as in the clean run, orders identical by id
    assert counts == reference.counts
    assert sorted(o.order_id for o in got_orders) == sorted(o.order_id for o in reference.orders)
    assert set(got_orders) == set(reference.orders)
    # alerted: open and closed, for the ticks table at least (the resets and the outage: two outages)
    pg_alerts = [(a.kind, a.labels["breaker"]) for a in alerts if a.labels.get("breaker", "").startswith("postgres.")]
    assert pg_alerts.count(("sink_circuit_open", "postgres.ticks")) >= 2, pg_alerts
    assert pg_alerts.count(("sink_circuit_closed", "postgres.ticks")) >= 2, pg_alerts
    assert "circuit breaker postgres.ticks OPEN" in log_text and "circuit breaker postgres.ticks CLOSED" in log_text
    assert "Traceback" not in log_text
    # the log of a full live run shows none of the secrets it was given
    for name, value in SECRETS.items():
        assert value not in log_text, f"{name} appears in the flow's log"


def test_broker_restart_mid_run_gives_the_clean_runs_orders_exactly_once(services, ticks, reference, tmp_path):
    prefix = new_prefix("fbk")
    create_topics(services.bootstrap, prefix)
    produce(services.bootstrap, f"{prefix}ticks", ticks)
    R = len(reference.orders)
    proc = FlowProc(live_args("none"), env_for(services, prefix, tmp_path / "var"), tmp_path / "flow.log")
    orders = TopicCounter(services.bootstrap, f"{prefix}orders")
    try:
        wait_for(
            lambda: orders.count() >= R // 4,
            120,
            "a quarter of the orders",
            procs=[proc],
            retry_on=PG_NOT_YET,
            interval_s=0.05,
        )
        at_stop = orders.count()
        t0 = time.monotonic()
        services.run("down", "kafka")
        time.sleep(max(0.0, BROKER_DOWN_S - (time.monotonic() - t0)))
        assert proc.running, f"the flow exited while the broker was down:\n{proc.tail()}"
        services.run("up", "kafka")
        down_s = time.monotonic() - t0
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + 180
        while True:  # every order published and nothing more for 3 s
            assert proc.running, proc.tail()
            c = orders.count()
            if c != last:
                last, since = c, time.monotonic()
            elif c >= R and time.monotonic() - since >= 3:
                break
            assert time.monotonic() < deadline, f"{c} of {R} orders after the restart:\n{proc.tail()}"
            time.sleep(0.3)
        stop_flow(proc)
        got = read_orders(services.bootstrap, f"{prefix}orders")
        alerts = read_events(services.bootstrap, f"{prefix}alerts", Alert)
        log_text = (tmp_path / "flow.log").read_text(errors="replace")
    finally:
        orders.close()
        proc.kill()
    ids = [o.order_id for o in got]
    kafka_open = sorted({a.labels["breaker"] for a in alerts if a.kind == "sink_circuit_open"})
    print(
        f"broker down {down_s:.1f}s after {at_stop} of {R} orders; {len(got)} orders on the topic; breakers that "
        f"opened: {kafka_open}"
    )
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicated orders"
    assert set(ids) == {o.order_id for o in reference.orders}, "orders missing or extra"
    assert set(got) == set(reference.orders)
    # the lag poller logs its failed watermark reads with a traceback while the broker is away; nothing else may
    assert "panicked" not in log_text and "DeliveryError" not in log_text
    # the outage was seen and told: a Kafka sink's breaker opened (and closed), its alert delivered after the restart
    assert kafka_open and all(b.startswith("kafka.") for b in kafka_open), log_text[-3000:]
    assert "CLOSED after" in log_text
