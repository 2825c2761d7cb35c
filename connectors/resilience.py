"""One resilience layer for every sink: a bounded buffer, retries with exponential backoff and jitter (tenacity), a
circuit breaker with a state metric, and an alert when a breaker opens and when it closes.

Store sinks (PostgreSQL, ClickHouse) go through :class:`ResilientWriter`:

- **closed** (healthy): a batch is written synchronously, with ``RetryPolicy.attempts`` quick attempts (exponential
  backoff with jitter). This is the path of every normal run, so what a Bytewax snapshot covers is in the store, as
  before.
- A batch whose attempts all fail with a *transient* error (the store is unreachable) **opens** the breaker. The batch,
  and every later one while the breaker is not closed, goes into the :class:`Spool`: a bounded FIFO kept in memory
  and, one file per batch, on disk (``<var>/spool/<sink>/w<worker>/``), so a crash during an outage loses nothing:
  the next start writes the files first. ``write`` returns at once: the flow keeps deciding.
- A drain thread probes the store (**half_open**) with exponential backoff and jitter between probes and, once a
  probe succeeds, writes the spool in order (the writes are idempotent, so a batch written twice is a no-op) and
  **closes** the breaker when the spool is empty.
- A full spool blocks ``write`` (back-pressure: the flow stalls, it never drops). A permanent (non-transient) error is
  never swallowed: it is raised by the next ``write`` or ``close``, which stops the flow.
- ``close`` waits up to ``close_timeout_s`` for the spool to drain; what is left stays on disk for the next start.

The Kafka sink (``connectors.kafka.sink``) uses the same :class:`CircuitBreaker`; there the bounded buffer is
librdkafka's queue and a batch is not acknowledged to Bytewax before the broker has it.

:class:`BreakerReporter` is the listener the live flow attaches to every breaker: it sets
``levibot_circuit_breaker_state{breaker=...}``, logs, and publishes an ``Alert`` (kinds ``sink_circuit_open`` and
``sink_circuit_closed``) on the ``alerts`` topic. :class:`ReduceOnlyOnOutage` sends a signed ``reduce_only`` command
when orders cannot be published for longer than a bound, :class:`ReportSilenceWatchdog` when orders sent to a remote
venue get no execution report within a bound (the logic: ``operators.watchdog``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

log = logging.getLogger(__name__)

#: Listener of breaker transitions: ``(breaker name, old state, new state, detail)``.
BreakerListener = Callable[[str, str, str, str], None]
STATES = ("closed", "half_open", "open")


class CircuitBreaker:
    """State of one sink's circuit: ``closed`` (healthy), ``open`` (failing, writes are buffered), ``half_open``
    (a probe write is in flight). Listeners are told every transition; a listener that raises is logged, never
    allowed to break the sink.

    >>> seen = []
    >>> b = CircuitBreaker("postgres.ticks", listeners=[lambda n, o, s, d: seen.append((o, s))])
    >>> b.open("connection refused"); b.half_open("probe"); b.close("caught up")
    >>> seen
    [('closed', 'open'), ('open', 'half_open'), ('half_open', 'closed')]
    >>> b.opens
    1
    """

    def __init__(
        self, name: str, *, listeners: Iterable[BreakerListener] = (), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self._listeners = list(listeners)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "closed"
        self.opened_at: float | None = None  # clock() when it last left closed
        self.opens = 0  # closed -> open transitions (outages)

    @property
    def state(self) -> str:
        return self._state

    def add_listener(self, fn: BreakerListener) -> None:
        self._listeners.append(fn)

    def open_for_s(self) -> float:
        """Seconds since the breaker last left ``closed`` (0 while closed)."""
        at = self.opened_at
        return 0.0 if at is None or self._state == "closed" else self._clock() - at

    def open(self, detail: str = "") -> None:
        self._set("open", detail)

    def half_open(self, detail: str = "") -> None:
        self._set("half_open", detail)

    def close(self, detail: str = "") -> None:
        self._set("closed", detail)

    def _set(self, new: str, detail: str) -> None:
        with self._lock:
            old = self._state
            if old == new:
                return
            self._state = new
            if old == "closed":
                self.opened_at = self._clock()
                self.opens += 1
        for fn in list(self._listeners):
            try:
                fn(self.name, old, new, detail)
            except Exception:  # reporting must never break a sink
                log.exception("circuit breaker listener failed for %s (%s -> %s)", self.name, old, new)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one sink, seconds. While closed, a batch gets ``attempts`` tries with exponential backoff from
    ``initial_s`` up to ``max_s`` (plus up to ``jitter_s`` of random jitter); while open, probes are spaced the same
    way from ``probe_initial_s`` up to ``probe_max_s``."""

    attempts: int = 3
    initial_s: float = 0.1
    max_s: float = 1.0
    jitter_s: float = 0.1
    probe_initial_s: float = 0.5
    probe_max_s: float = 5.0

    def closed_wait(self) -> Any:
        return wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s, jitter=self.jitter_s)

    def probe_wait(self) -> Any:
        return wait_exponential_jitter(
            multiplier=self.probe_initial_s, max=self.probe_max_s, jitter=max(self.jitter_s, self.probe_initial_s / 2)
        )


class Spool:
    """Bounded FIFO of event batches, in memory and one file per batch on disk (JSON list of the events).

    ``put`` blocks while the spool holds ``max_events`` events or more (a single batch always fits into an empty
    spool). Files left by a previous process are loaded, in order, when the spool is created. A file is written to
    ``*.tmp`` and renamed, so a crash mid-write leaves no half batch (the batch was not acknowledged to Bytewax, which
    re-emits it after recovery)."""

    def __init__(self, directory: Path, event_type: type, *, max_events: int = 1_000_000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self._enc = msgspec.json.Encoder()
        self._dec = msgspec.json.Decoder(list[event_type])  # type: ignore[valid-type]
        self._cond = threading.Condition()
        self._batches: deque[tuple[Path, list[Any]]] = deque()
        self.events = 0
        self._seq = 0
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        for path in sorted(self.directory.glob("*.batch")):
            batch = self._dec.decode(path.read_bytes())
            self._batches.append((path, batch))
            self.events += len(batch)
            self._seq = max(self._seq, int(path.name.split("-", 1)[0]) + 1)
        self.recovered = len(self._batches)

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def empty(self) -> bool:
        return not self._batches

    def put(self, events: Sequence[Any], *, on_block: Callable[[], None] | None = None) -> None:
        """Append one batch; blocks (back-pressure) while the spool is full."""
        batch = list(events)
        with self._cond:
            blocked = False
            while self._batches and self.events + len(batch) > self.max_events:
                if not blocked and on_block is not None:
                    on_block()
                blocked = True
                self._cond.wait(1.0)
            path = self.directory / f"{self._seq:012d}-{len(batch)}.batch"
            self._seq += 1
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(self._enc.encode(batch))
            os.replace(tmp, path)
            self._batches.append((path, batch))
            self.events += len(batch)
            self._cond.notify_all()

    def peek(self, timeout_s: float) -> tuple[Path, list[Any]] | None:
        """The oldest batch (left in place), waiting up to ``timeout_s`` for one."""
        with self._cond:
            if not self._batches:
                self._cond.wait(timeout_s)
            return self._batches[0] if self._batches else None

    def pop(self, path: Path) -> None:
        """Remove the oldest batch (written to the store)."""
        with self._cond:
            if self._batches and self._batches[0][0] == path:
                _, batch = self._batches.popleft()
                self.events -= len(batch)
                path.unlink(missing_ok=True)
            self._cond.notify_all()

    def wait_empty(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._batches:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return True


class ResilientWriter:
    """Wraps a store writer (``write(events)``, ``close()``) with retries, a breaker and a :class:`Spool`; see the
    module docstring. ``transient`` are the exception types that mean "the store is unreachable, try again"."""

    def __init__(
        self,
        writer: Any,
        breaker: CircuitBreaker,
        spool: Spool,
        *,
        policy: RetryPolicy = RetryPolicy(),
        transient: tuple[type[BaseException], ...] = (OSError,),
        close_timeout_s: float = 30.0,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._writer = writer
        self._on_failure = on_failure  # called with the breaker's name for every failed write (batch or probe)
        self.breaker = breaker
        self.spool = spool
        self.policy = policy
        self.transient = transient
        self.close_timeout_s = close_timeout_s
        self._lock = threading.Lock()  # one write at a time on the writer's connection
        self._error: BaseException | None = None
        self._closing = threading.Event()
        self._abort = threading.Event()
        self.spooled_batches = 0
        if spool.recovered:
            log.warning(
                "sink %s: %d batches (%d events) left in %s by a previous run; writing them first",
                breaker.name,
                spool.recovered,
                spool.events,
                spool.directory,
            )
        self._thread = threading.Thread(target=self._drain_loop, name=f"levibot-drain-{breaker.name}", daemon=True)
        self._thread.start()

    # -- the flow's side -------------------------------------------------------------------------------------------
    def write(self, events: Sequence[Any]) -> None:
        """Write ``events`` now when healthy, else spool them; raises a permanent failure seen before."""
        self._raise_pending()
        if not events:
            return
        if self.breaker.state == "closed" and self.spool.empty:
            try:
                with self._lock:
                    Retrying(
                        stop=stop_after_attempt(self.policy.attempts),
                        wait=self.policy.closed_wait(),
                        retry=retry_if_exception_type(self.transient),
                        reraise=True,
                    )(self._writer.write, events)
                return
            except self.transient as exc:
                self._failed()
                self.breaker.open(f"{type(exc).__name__}: {_short(exc)}")
        self.spooled_batches += 1
        self.spool.put(
            events,
            on_block=lambda: log.error(
                "sink %s: spool full (%d events in %s): the flow waits for the store",
                self.breaker.name,
                self.spool.events,
                self.spool.directory,
            ),
        )

    def close(self) -> None:
        """Drain the spool (up to ``close_timeout_s``), stop the drain thread, close the writer."""
        self._closing.set()
        drained = self.spool.wait_empty(self.close_timeout_s) if self._error is None else False
        if not drained:
            self._abort.set()
            if not self.spool.empty:
                log.error(
                    "sink %s: store still unavailable at shutdown; %d batches (%d events) stay in %s and are "
                    "written at the next start",
                    self.breaker.name,
                    len(self.spool),
                    self.spool.events,
                    self.spool.directory,
                )
        self._thread.join(timeout=10)
        try:
            self._writer.close()
        except Exception:
            log.warning("sink %s: closing the writer failed", self.breaker.name, exc_info=True)
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"sink {self.breaker.name} failed permanently: {err}") from err

    # -- the drain thread --------------------------------------------------------------------------------------------
    def _failed(self) -> None:
        if self._on_failure is not None:
            try:
                self._on_failure(self.breaker.name)
            except Exception:  # a metric never stops a write
                log.exception("sink %s: failure hook failed", self.breaker.name)

    def _probe_failed(self, rs: RetryCallState) -> None:
        self._failed()
        exc = rs.outcome.exception() if rs.outcome is not None else None
        self.breaker.open(f"probe {rs.attempt_number} failed: {type(exc).__name__}: {_short(exc)}")

    def _stop_probing(self, rs: RetryCallState) -> bool:
        return self._abort.is_set()

    def _write_probe(self, events: list[Any]) -> None:
        if self.breaker.state == "open":
            self.breaker.half_open("probing the store")
        with self._lock:
            self._writer.write(events)

    def _drain_loop(self) -> None:
        written = 0
        while not self._abort.is_set():
            item = self.spool.peek(0.2)
            if item is None:
                if self._closing.is_set():
                    return
                continue
            path, events = item
            try:
                Retrying(
                    wait=self.policy.probe_wait(),
                    stop=self._stop_probing,
                    before_sleep=self._probe_failed,
                    retry=retry_if_exception_type(self.transient),
                    reraise=True,
                )(self._write_probe, events)
            except self.transient:
                return  # aborted at shutdown: the batch stays in the spool
            except BaseException as exc:  # a permanent failure is raised in the flow's thread
                self._error = exc
                self.breaker.open(f"permanent failure: {type(exc).__name__}: {_short(exc)}")
                log.error("sink %s: permanent failure while draining: %s", self.breaker.name, exc)
                return
            self.spool.pop(path)
            written += 1
            if self.spool.empty and self.breaker.state != "closed":
                self.breaker.close(f"caught up: {written} buffered batches written")
                written = 0


def _short(exc: BaseException | None, n: int = 300) -> str:
    text = " ".join(str(exc).split()) if exc is not None else ""
    return text[:n]


# -- reporting ----------------------------------------------------------------------------------------------------
class BreakerReporter:
    """Listener for every breaker of a process: the ``levibot_circuit_breaker_state`` gauge, a log line, and an
    ``Alert`` on the ``alerts`` topic when a breaker opens (``sink_circuit_open``, critical) and when it closes again
    (``sink_circuit_closed``, info). Half-open probes only move the gauge.

    ``alerts`` is an ``EventProducer`` (or anything with ``send(events)``) or None. Alerts are queued without waiting:
    while the broker itself is away they wait in the producer and go out when it is back."""

    def __init__(self, metrics: Any = None, alerts: Any = None, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.metrics = metrics
        self.alerts = alerts
        self._clock_ns = clock_ns
        self._opened_ns: dict[str, int] = {}
        self._lock = threading.Lock()

    def write_failed(self, name: str) -> None:
        """A write of sink ``name`` failed (a batch after its quick attempts, or one probe of an open breaker):
        counted in ``levibot_sink_failures_total{sink}`` (the ``LevibotSinkFailing`` rule reads it)."""
        count = getattr(self.metrics, "count_sink_failure", None)
        if count is not None:
            count(name)

    def register(self, breaker: CircuitBreaker) -> CircuitBreaker:
        """Attach to ``breaker`` and export its (closed) state at once."""
        if self.metrics is not None:
            self.metrics.set_circuit_breaker(breaker.name, breaker.state)
        breaker.add_listener(self)
        return breaker

    def __call__(self, name: str, old: str, new: str, detail: str) -> None:
        if self.metrics is not None:
            self.metrics.set_circuit_breaker(name, new)
        now = self._clock_ns()
        if old == "closed" and new != "closed":
            with self._lock:
                self._opened_ns[name] = now
            log.error("circuit breaker %s OPEN: %s; writes are buffered and retried", name, detail)
            self._alert(
                "sink_circuit_open",
                "critical",
                name,
                now,
                f"circuit breaker {name} opened: {detail}. Writes are buffered and retried with backoff.",
            )
        elif new == "closed":
            with self._lock:
                since = self._opened_ns.pop(name, now)
            took = (now - since) / 1e9
            log.warning("circuit breaker %s CLOSED after %.1fs: %s", name, took, detail)
            self._alert(
                "sink_circuit_closed",
                "info",
                name,
                now,
                f"circuit breaker {name} closed after {took:.1f}s: {detail}.",
                outage_s=f"{took:.1f}",
            )

    def _alert(
        self,
        kind: str,
        severity: Literal["info", "warning", "critical"],
        name: str,
        now: int,
        message: str,
        **labels: str,
    ) -> None:
        if self.alerts is None:
            return
        from schemas.events import Alert

        alert = Alert(
            id=f"{kind}:{name}:{now}",
            severity=severity,
            kind=kind,
            message=message[:4096],
            labels={"breaker": name, **labels},
            dedupe_key=f"circuit:{name}:{kind}",
            ts=now,
        )
        try:
            self.alerts.send([alert])
        except Exception:  # the log line and the gauge already tell
            log.exception("could not queue the %s alert for %s", kind, name)


class ReduceOnlyOnOutage:
    """Listener for the ``orders`` breaker: when orders cannot be published for ``after_s`` seconds, send a signed
    ``reduce_only`` command for ``scope`` on the ``control`` topic (issuer ``levibot-flow``), so the account stage adds
    no risk on what it cannot report. The command is queued in ``producer`` (delivered once the broker answers) and is
    never lifted automatically: an operator resumes (``levibot control resume``) after checking the venue.

    ``sign_fn(cmd) -> signed cmd``; with no key configured, the flow logs that it cannot do this."""

    def __init__(
        self,
        producer: Any,
        sign_fn: Callable[[Any], Any] | None,
        *,
        after_s: float,
        scope: str = "account:default",
        clock_ns: Callable[[], int] = time.time_ns,
        metrics: Any = None,
    ) -> None:
        self.producer = producer
        self.metrics = metrics
        self.sign_fn = sign_fn
        self.after_s = after_s
        self.scope = scope
        self._clock_ns = clock_ns
        self._timer: threading.Timer | None = None
        self._breaker: CircuitBreaker | None = None
        self.sent: list[Any] = []

    def register(self, breaker: CircuitBreaker) -> CircuitBreaker:
        self._breaker = breaker
        breaker.add_listener(self)
        return breaker

    def __call__(self, name: str, old: str, new: str, detail: str) -> None:
        if old == "closed" and new != "closed" and self.after_s > 0:
            self._timer = threading.Timer(self.after_s, self._fire, args=(name, detail))
            self._timer.daemon = True
            self._timer.start()
        elif new == "closed" and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, name: str, detail: str) -> None:
        if self._breaker is not None and self._breaker.state == "closed":
            return
        if self.sign_fn is None:
            log.error(
                "orders unpublishable for %.0fs (%s) and no control key (LEVIBOT_CONTROL_KEY): cannot send reduce-only",
                self.after_s,
                name,
            )
            return
        from schemas.events import ControlCommand

        now = self._clock_ns()
        cmd = ControlCommand(
            id=f"outage-{name}-{now}",
            issuer="levibot-flow",
            scope=self.scope,
            action="reduce_only",
            ts=now,
            reason=f"orders could not be published for {self.after_s:.0f}s ({name}: {detail})"[:4096],
        )
        signed = self.sign_fn(cmd)
        self.producer.send([signed])
        self.sent.append(signed)
        count = getattr(self.metrics, "count_self_reduce_only", None)
        if count is not None:
            count("orders_unpublishable")
        log.error(
            "orders unpublishable for %.0fs: signed reduce_only %s queued on control for %s",
            self.after_s,
            signed.id,
            self.scope,
        )


@dataclass
class SinkResilience:
    """How the live flow wraps its store sinks: where the spools live, who reports breaker transitions, the retry
    policy, the spool bound (events per sink and worker) and how long ``close`` waits for a drain, seconds."""

    spool_root: Path
    reporter: BreakerReporter | None = None
    policy: RetryPolicy = RetryPolicy()
    max_buffered_events: int = 1_000_000
    close_timeout_s: float = 30.0

    def breaker(self, name: str) -> CircuitBreaker:
        b = CircuitBreaker(name)
        return self.reporter.register(b) if self.reporter is not None else b

    def wrap(
        self, name: str, worker_index: int, writer: Any, event_type: type, transient: tuple[type[BaseException], ...]
    ) -> ResilientWriter:
        spool = Spool(self.spool_root / name / f"w{worker_index}", event_type, max_events=self.max_buffered_events)
        return ResilientWriter(
            writer,
            self.breaker(name),
            spool,
            policy=self.policy,
            transient=transient,
            close_timeout_s=self.close_timeout_s,
            on_failure=self.reporter.write_failed if self.reporter is not None else None,
        )


class ReportSilenceWatchdog:
    """The wall-clock side of ``operators.watchdog.ReportWatchdog`` in the live flow with a remote venue: two Bytewax
    sinks feed it (:meth:`orders_sink`: the orders as the account stage sends them; :meth:`reports_sink`: the
    execution reports as the account stage reads them) and a daemon thread checks it every ``check_every_s``. When an
    account's oldest unanswered order has waited ``timeout_s``, it sends a signed ``reduce_only`` command for that
    account on ``control`` (issuer ``levibot-flow``; the reason names the silence and the oldest unanswered order),
    logs it, and counts it in ``levibot_self_reduce_only_total{cause="reports_silent"}``. Like the orders-outage
    command it is never lifted automatically (``levibot control resume``). The gauges
    ``levibot_orders_unanswered`` and ``levibot_oldest_unanswered_order_seconds`` follow the watchdog at every check.

    ``sign_fn(cmd) -> signed cmd``; None (no key) logs that the command cannot be sent. ``producer``: anything with
    ``send(events)`` (an ``EventProducer`` on ``control`` that keeps messages while the broker is away)."""

    def __init__(
        self,
        producer: Any,
        sign_fn: Callable[[Any], Any] | None,
        *,
        timeout_s: float,
        metrics: Any = None,
        account_of: Callable[[str], str] = lambda _s: "default",
        check_every_s: float | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        from operators.watchdog import ReportWatchdog

        self.producer = producer
        self.sign_fn = sign_fn
        self.metrics = metrics
        self.timeout_s = float(timeout_s)
        self.check_every_s = check_every_s if check_every_s is not None else min(1.0, max(0.05, self.timeout_s / 10))
        self._clock_ns = clock_ns
        self.watchdog = ReportWatchdog(self.timeout_s, account_of=account_of)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent: list[Any] = []

    # -- feeding it ----------------------------------------------------------------------------------------------
    def on_orders(self, orders: Iterable[Any]) -> None:
        now = self._clock_ns()
        with self._lock:
            self.watchdog.sent(orders, now)

    def on_reports(self, reports: Iterable[Any]) -> None:
        now = self._clock_ns()
        with self._lock:
            self.watchdog.reported(reports, now)

    def orders_sink(self) -> Any:
        """A Bytewax sink of order lists (the flow's ``Outputs.orders``)."""
        return _CallbackSink(self.on_orders)

    def reports_sink(self) -> Any:
        """A Bytewax sink of execution-report lists (the flow's ``Outputs.reports``)."""
        return _CallbackSink(self.on_reports)

    # -- the timer -----------------------------------------------------------------------------------------------
    def start(self) -> ReportSilenceWatchdog:
        self._thread = threading.Thread(target=self._loop, name="levibot-report-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.check_every_s):
            try:
                self.check()
            except Exception:  # the watchdog never stops the flow; it logs and tries again
                log.exception("execution-report watchdog check failed")

    def check(self) -> list[Any]:
        """One check (the thread calls it): gauges, and a command for every silence that fires now."""
        now = self._clock_ns()
        with self._lock:
            silences = self.watchdog.check(now)
            n, age = self.watchdog.status(now)
        set_gauges = getattr(self.metrics, "set_unanswered_orders", None)
        if set_gauges is not None:
            set_gauges(n, age)
        return [self._fire(s, now) for s in silences]

    def _fire(self, silence: Any, now: int) -> Any:
        scope = f"account:{silence.account}"
        if self.sign_fn is None:
            log.error(
                "execution reports silent (%s) and no control key (LEVIBOT_CONTROL_KEY): cannot send reduce-only",
                silence.reason,
            )
            return None
        from schemas.events import ControlCommand

        cmd = ControlCommand(
            id=f"reports-silent-{silence.account}-{now}",
            issuer="levibot-flow",
            scope=scope,
            action="reduce_only",
            ts=now,
            reason=silence.reason[:4096],
        )
        signed = self.sign_fn(cmd)
        self.producer.send([signed])
        self.sent.append(signed)
        count = getattr(self.metrics, "count_self_reduce_only", None)
        if count is not None:
            count("reports_silent")
        log.error("%s: signed reduce_only %s queued on control for %s", silence.reason, signed.id, scope)
        return signed


class _CallbackSink:
    """A Bytewax ``DynamicSink`` whose partitions hand every item (a list of events) to ``fn``."""

    def __new__(cls, fn: Callable[[list], None]) -> Any:
        from bytewax.outputs import DynamicSink, StatelessSinkPartition

        class _Part(StatelessSinkPartition[Any]):
            def write_batch(self, items: list[Any]) -> None:
                for events in items:
                    fn(events)

        class _Sink(DynamicSink[Any]):
            def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
                return _Part()

        return _Sink()
