"""Helpers for the flow integration tests: spawn `levibot` processes, prepare topics, read orders.

Every process is started with ``[sys.executable, "-m", "flows.cli", ...]`` in the repository, its
output going to a log file (never a pipe that could fill up), in its own session so that what is
left over can be killed by its own process group id. Every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from connectors.kafka.admin import delete_topics, ensure_topics
from connectors.kafka.source import iter_topic, list_partitions
from schemas.codec import decode
from schemas.events import Order
from schemas.topics import TOPICS
from tests.support import REPO

#: Bar settings of every flow run in these tests: 5-minute base bars, decisions on 30-minute bars
#: (the bundled history is 30-minute bars), which keeps a 1M-tick run to seconds of work.
BAR_ARGS = [
    "--base-resolution",
    "300",
    "--bar-resolutions",
    "1800",
    "--decision-resolution",
    "1800",
    # replayed 30-minute bars carry a trade every 225 s at most: an hour-old price is still current
    "--max-price-age",
    "3600",
]


def new_prefix(tag: str) -> str:
    return f"t{tag}{uuid.uuid4().hex[:8]}."


def create_topics(bootstrap: str, prefix: str) -> None:
    """Every registry topic under ``prefix`` (registry partitions), kept forever.

    Test-only deviation from the registry's topic configs (storage only, nothing the flow sees):
    replayed history carries its event time as the Kafka CreateTime timestamp (years ago), so with
    the registry's retention (7 days for ``ticks``, 30 for ``orders``) the broker deletes it at its
    next retention check (every 5 minutes here), in the middle of a test; ``retention.ms=-1`` keeps
    it. And time-based segment rolling on those timestamps starts a new segment for every 7 days of
    event time (hundreds of tiny segments per partition); a ``segment.ms`` of 100 years avoids that.
    See docs/operations.md, "Recovery, scale-out and backtest parity".
    """
    ensure_topics(bootstrap, prefix=prefix)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    configs = {"retention.ms": "-1", "segment.ms": str(100 * 365 * 86_400_000)}
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            f"{prefix}{name}",
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()
            ],
        )
        for name in TOPICS
    ]
    for fut in admin.incremental_alter_configs(resources).values():
        fut.result(30)


def drop_topics(bootstrap: str, prefixes: Iterable[str]) -> None:
    prefixes = tuple(prefixes)
    existing = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    delete_topics(bootstrap, [t for t in existing if t.startswith(prefixes)])


def watermarks(consumer: Consumer, tp: TopicPartition, *, patience_s: float = 30.0) -> tuple[int, int]:
    """(low, high) watermark of one partition. A topic created a moment ago, or a partition whose leadership is
    moving on a loaded broker, answers NOT_LEADER_FOR_PARTITION or a timeout for a while: retried for
    ``patience_s``, then the broker's error is raised."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def topic_count(bootstrap: str, topic: str) -> int:
    """Messages currently in ``topic`` (sum over partitions of high - low watermark); cheap to poll."""
    return sum(partition_counts(bootstrap, topic).values())


class TopicCounter:
    """Polls the message count of one topic with one long-lived consumer (for progress checks)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._c = Consumer({"bootstrap.servers": bootstrap, "group.id": "levibot-tests-watermarks"})
        self._tps = [TopicPartition(topic, p) for p in list_partitions(bootstrap, topic)]

    def _marks(self, tp: TopicPartition) -> tuple[int, int]:
        return watermarks(self._c, tp)

    def count(self) -> int:
        total = 0
        for tp in self._tps:
            lo, hi = self._marks(tp)
            total += hi - lo
        return total

    def highs(self) -> dict[int, int]:
        """High watermark (next offset) per partition."""
        return {tp.partition: self._marks(tp)[1] for tp in self._tps}

    def close(self) -> None:
        self._c.close()


def partition_counts(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "levibot-tests-watermarks"})
    try:
        out = {}
        for p in list_partitions(bootstrap, topic):
            lo, hi = watermarks(c, TopicPartition(topic, p))
            out[p] = hi - lo
        return out
    finally:
        c.close()


def read_events(bootstrap: str, topic: str, typ: type) -> list:
    """Every message of a topic, decoded as ``typ``, in no particular cross-partition order."""
    return [decode(m.value(), typ) for msgs in iter_topic(bootstrap, topic, timeout_s=30) for m in msgs]


def read_located(bootstrap: str, topic: str, typ: type) -> list[tuple[int, int, object]]:
    """Every message of a topic as ``(partition, offset, decoded event)``."""
    return [
        (m.partition(), m.offset(), decode(m.value(), typ))
        for msgs in iter_topic(bootstrap, topic, timeout_s=30)
        for m in msgs
    ]


def read_orders(bootstrap: str, topic: str) -> list[Order]:
    """Every message of an orders topic, decoded."""
    return read_events(bootstrap, topic, Order)


def read_orders_file(path: Path) -> list[Order]:
    return [decode(line, Order) for line in path.read_bytes().splitlines() if line.strip()]


#: Ports handed out by :func:`free_ports`: below the kernel's ephemeral range (32768-60999 here), so that no outgoing
#: connection of any process can take one between the moment it is picked and the moment a server binds it, and
#: split into one slice per pytest-xdist worker, so that two workers never pick the same one.
PORT_RANGE = (20000, 32000)
PORT_SLICES = 16


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that nothing is bound to now, from this process's slice of
    :data:`PORT_RANGE` (pytest-xdist worker ``gwK`` gets slice ``K + 1``, a run without workers slice 0)."""
    import random

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    width = (PORT_RANGE[1] - PORT_RANGE[0]) // PORT_SLICES
    lo = PORT_RANGE[0] + (index % PORT_SLICES) * width
    candidates = list(range(lo, lo + width))
    random.SystemRandom().shuffle(candidates)
    out: list[int] = []
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))  # no SO_REUSEADDR: a port still in TIME_WAIT is not free either
            except OSError:
                continue
        out.append(port)
        if len(out) == n:
            return out
    raise RuntimeError(f"fewer than {n} free ports in {lo}-{lo + width - 1}")


def free_port() -> int:
    """One port of :func:`free_ports`."""
    return free_ports(1)[0]


#: The control key of every flow run of these tests: a live flow refuses to start without one (flows/live.py), so the
#: harness passes it explicitly; a test that signs its own commands passes its own ``LEVIBOT_CONTROL_KEY``.
TEST_CONTROL_KEY = "levibot-tests-control-key-" + uuid.uuid4().hex


def flow_env(*, prefix: str, var: Path, **extra: str) -> dict[str, str]:
    """The environment of a `levibot` subprocess: this one plus the test's prefix, var dir, the test control key and
    extras."""
    env = dict(os.environ)
    for k in ("LEVIBOT_PG_DSN", "LEVIBOT_CLICKHOUSE_DSN"):
        env.pop(k, None)
    # no /metrics endpoint: the default port (9464) is one per host, and concurrent runs would collide on it
    env.update(
        LEVIBOT_TOPIC_PREFIX=prefix,
        LEVIBOT_VAR=str(var),
        LEVIBOT_METRICS_PORT="0",
        PYTHONUNBUFFERED="1",
        LEVIBOT_CONTROL_KEY=TEST_CONTROL_KEY,
    )
    env.update(extra)
    return env


class FlowProc:
    """One `levibot` subprocess with its log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(log, "ab")  # noqa: SIM115 - the log stays open for the child process, closed when it stops
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=REPO,
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def wait_ok(self, timeout_s: float) -> float:
        """Wait for a clean exit (rc 0) within ``timeout_s``; returns the wall seconds the process ran."""
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"`levibot {' '.join(self.args)}` still running after {timeout_s}s; log {self.log}:\n{self.tail()}"
            ) from None
        finally:
            self._fh.close()
        if rc != 0:
            raise AssertionError(f"`levibot {' '.join(self.args)}` exited with {rc}; log {self.log}:\n{self.tail()}")
        return self.elapsed()

    def kill9(self) -> int:
        """SIGKILL this very process (the flow runs in it: Bytewax workers are its threads); returns its rc."""
        os.kill(self.pid, signal.SIGKILL)
        rc = self.proc.wait(timeout=30)
        self._fh.close()
        return rc

    def kill(self) -> None:
        """Kill whatever is left of this process and its process group (used in ``finally``)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if not self._fh.closed:
            self._fh.close()


def wait_all_ok(procs: list[FlowProc], timeout_s: float) -> None:
    """Wait for every process of a cluster to exit cleanly; fail at once when one of them fails.

    A Bytewax cluster whose peer died waits for it forever, so the survivors are killed right away.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        failed = [p for p in procs if p.proc.poll() not in (None, 0)]
        if failed:
            for p in procs:
                p.kill()
            p = failed[0]
            raise AssertionError(
                f"`levibot {' '.join(p.args)}` exited with {p.proc.returncode}; log {p.log}:\n{p.tail()}"
            )
        if all(p.proc.poll() == 0 for p in procs):
            for p in procs:
                p.kill()  # closes the log files
            return
        if time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise AssertionError(
                f"cluster still running after {timeout_s}s; logs: {[str(p.log) for p in procs]}\n"
                + "\n".join(p.tail(10) for p in procs)
            )
        time.sleep(0.2)


def run_ok(args: list[str], env: dict[str, str], log: Path, timeout_s: float) -> float:
    """Run one `levibot` command to a clean end; returns its wall seconds."""
    p = FlowProc(args, env, log)
    try:
        return p.wait_ok(timeout_s)
    finally:
        p.kill()


def chdb_query(path: Path, *queries: str, timeout_s: float = 120) -> list[list[list]]:
    """Run queries on an embedded ClickHouse data path in a separate process; the rows of each.

    chDB allows one data path per process, and the pytest process may already hold the session's
    (``chdb_path`` fixture), so each flow run's store is read from a short-lived subprocess.
    """
    code = (
        "import json, sys\nfrom connectors.clickhouse.client import connect\n"
        "c = connect(sys.argv[1])\n"
        "print(json.dumps([[list(r) for r in c.query(q).result_rows] for q in sys.argv[2:]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, f"chdb://{path}", *queries],
        cwd=REPO,
        capture_output=True,
        timeout=timeout_s,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"chDB queries failed ({out.returncode}): {queries}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_pg_idle(dsn: str, timeout_s: float = 120.0) -> list:
    """Wait until no other backend (e.g. an autovacuum worker) is connected to ``dsn``'s database.

    The ``pg_dsn`` fixture drops its database WITH (FORCE), which a non-superuser cannot do while an
    autovacuum worker (started by the million rows a flow run inserts) is in it. So autovacuum is
    switched off for the database's tables and the running worker is waited for. Returns what was
    still connected at the timeout (empty when idle).
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        # no new autovacuum work for the launcher to start in this database
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND pg_has_role(c.relowner, 'USAGE') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET (autovacuum_enabled = false)").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )
    deadline = time.monotonic() + timeout_s
    others: list = []
    while time.monotonic() < deadline:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            others = conn.execute(
                "SELECT pid, backend_type FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        if not others:
            return []
        time.sleep(0.5)
    return others


def listening_addresses(port: int) -> set[str]:
    """The local addresses that TCP sockets in LISTEN state are bound to on ``port`` (any process on this host),
    read from the kernel's tables (``/proc/net/tcp``, ``/proc/net/tcp6``): e.g. ``{"127.0.0.1"}`` or
    ``{"0.0.0.0"}``, IPv6 ones as ``"::"``, ``"::1"``... (IPv4-mapped IPv6 addresses as their IPv4 form)."""
    import ipaddress

    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port or len(addr_hex) != width:
                continue
            # the kernel prints each 32-bit word in host (little-endian) byte order
            raw = b"".join(bytes.fromhex(addr_hex[i : i + 8])[::-1] for i in range(0, width, 8))
            ip = ipaddress.ip_address(raw)
            mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 (Java's IPv4 sockets) is 127.0.0.1
            found.add(str(mapped or ip))
    return found
