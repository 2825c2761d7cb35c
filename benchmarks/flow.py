"""Trading-flow benchmarks (issue 3): (a) in-process throughput vs a bare per-tick Bytewax window fold,
(d) peak RSS with 1,000 symbols, and the decision latency inside the flow.

Both sides of a ratio read the same pre-built ticks from memory in the same process run (the bare fold Tick
objects, one per item; the project flow the same ticks as pre-built columnar batches, as its sources hand them
over), so the comparison measures the dataflows, not input parsing.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import windowing as win
from bytewax.testing import TestingSource, run_main

from connectors.files import read_bars
from connectors.history import bar_resolution_s
from connectors.kafka.source import EventBatch
from connectors.memory import CollectSink
from flows.settings import REPO_ROOT
from flows.trading import Outputs, build_trading_flow
from operators.pipeline import PipelineConfig
from operators.synthetic import SIDE_NAMES, merge_order, synthesize_ticks
from schemas.events import Tick

BTC = REPO_ROOT / "data" / "market" / "BTC-30m.csv.gz"
ETH = REPO_ROOT / "data" / "market" / "ETH-30m.csv.gz"
#: live-style bars: 1 s base, 1 min and 5 min derived, decisions on 1 min bars
LIVE_CFG = PipelineConfig()


def universe(cfg: PipelineConfig, ticks: list[Tick]) -> PipelineConfig:
    """``cfg`` trading exactly the symbols of ``ticks`` (the account's clock waits for each of its symbols)."""
    return replace(cfg, symbols=tuple(sorted({t.symbol for t in ticks})))


def dense_ticks(ticks_per_bar: int, max_bars: int, symbols: dict[str, Any] | None = None) -> list[Tick]:
    """Synthetic ticks from the bundled bars, ``ticks_per_bar`` per 30-min bar (e.g. 3600 = 2 ticks/s),
    merged in event time over the symbols (default BTC-USD and ETH-USD)."""
    symbols = symbols or {"BTC-USD": BTC, "ETH-USD": ETH}
    cols = []
    for sym, path in symbols.items():
        bars = read_bars(path).frame.head(max_bars)
        t = synthesize_ticks(
            bars["ts"].to_numpy(np.int64),
            bars["open"].to_numpy(),
            bars["high"].to_numpy(),
            bars["low"].to_numpy(),
            bars["close"].to_numpy(),
            bars["volume"].to_numpy(),
            resolution_s=bar_resolution_s(bars["ts"].to_numpy()),
            n=ticks_per_bar,
            symbol=sym,
        )
        cols.append(t)
    src, row = merge_order(*[c.ts for c in cols])
    ids = [c.trade_ids() for c in cols]
    out = []
    for s, r in zip(src.tolist(), row.tolist(), strict=True):
        c = cols[s]
        out.append(
            Tick(
                symbol=c.symbol,
                ts=int(c.ts[r]),
                price=float(c.price[r]),
                qty=float(c.qty[r]),
                side=SIDE_NAMES[int(c.side[r])],
                trade_id=ids[s][r],
                venue=c.venue,
                synthetic=True,
            )
        )
    return out


class _Batches(FixedPartitionedSource):
    """Pre-built EventBatches of one partition (no Kafka, no decoding); ``columnar``: each batch's ticks as one
    :class:`~operators.messages.TickBatch` (as ``HistorySource`` and a columnar ``KafkaEventSource`` deliver them)."""

    def __init__(self, ticks: list[Tick], batch: int, columnar: bool = True) -> None:
        from operators.messages import TickBatch

        self.batches = [
            EventBatch(
                "ticks",
                0,
                i + batch,
                TickBatch.from_ticks(ticks[i : i + batch], range(i, min(len(ticks), i + batch)))
                if columnar
                else ticks[i : i + batch],
            )
            for i in range(0, len(ticks), batch)
        ]

    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> StatefulSourcePartition:
        batches = self.batches

        class Part(StatefulSourcePartition):
            def __init__(self) -> None:
                self.i = resume_state or 0

            def next_batch(self) -> list:
                if self.i >= len(batches):
                    raise StopIteration()
                self.i += 1
                return [batches[self.i - 1]]

            def snapshot(self) -> int:
                return self.i

        return Part()


def run_project_flow(
    ticks: list[Tick], batch: int = 5000, cfg: PipelineConfig = LIVE_CFG, columnar: bool = True
) -> tuple[float, int]:
    """Seconds for the full trading flow over ``ticks`` (orders collected in memory); and the order count."""
    orders: list = []
    flow = build_trading_flow(
        _Batches(ticks, batch, columnar), Outputs(orders=[CollectSink(orders)]), universe(cfg, ticks)
    )
    t = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - t, len(orders)


def run_bare_fold(ticks: list[Tick]) -> float:
    """Seconds for the reference: key by symbol, ``fold_window`` into 1 s tumbling windows, one tick per item."""
    align = datetime(2000, 1, 1, tzinfo=UTC)
    clock = win.EventClock(lambda t: datetime.fromtimestamp(t.ts / 1e9, UTC), timedelta(0))
    windower = win.TumblingWindower(timedelta(seconds=1), align)

    def folder(acc: list, t: Tick) -> list:
        if not acc:
            return [t.price, t.price, t.price, t.price, t.qty]
        acc[1] = max(acc[1], t.price)
        acc[2] = min(acc[2], t.price)
        acc[3] = t.price
        acc[4] += t.qty
        return acc

    out: list = []
    flow = Dataflow("bare-fold")
    s = op.input("in", flow, TestingSource(ticks, batch_size=5000))
    keyed = op.key_on("key", s, lambda t: t.symbol)
    w = win.fold_window("bars", keyed, clock, windower, list, folder, lambda a, b: a)
    op.output("out", w.down, CollectSink(out))
    t0 = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - t0


def throughput(n_ticks: int = 1_000_000, per_bar: int = 3600, repeats: int = 2) -> dict[str, float]:
    """(a): ticks/s of both flows on the same ticks, one worker each; ``per_bar`` ticks per 30-min source bar
    (3,600 = 2 ticks/s per symbol, 36,000 = 20 ticks/s)."""
    ticks = dense_ticks(per_bar, max(1, n_ticks // (2 * per_bar)))
    ours = min(run_project_flow(ticks)[0] for _ in range(repeats))
    bare = min(run_bare_fold(ticks) for _ in range(repeats))
    rate = per_bar // 1800
    return {
        f"flow_{rate}tps_ticks": float(len(ticks)),
        f"flow_{rate}tps_ticks_per_s": len(ticks) / ours,
        f"bare_fold_{rate}tps_ticks_per_s": len(ticks) / bare,
        f"flow_vs_bare_{rate}tps_ratio": bare / ours,
    }


def _vm_rss_mib(field: str = "VmRSS") -> float:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``), MiB, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _memory_child(symbols: int, ticks_per_symbol: int, checkpoints: int) -> dict[str, float]:
    """Runs in a fresh process: streams 1,000 symbols through the flow and samples RSS as it goes."""
    rng = np.random.default_rng(42)
    t0 = 1_600_000_000_000_000_000
    px = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-4, (ticks_per_symbol, symbols)), axis=0))
    names = [f"S{j:04d}" for j in range(symbols)]

    def gen():  # ticks are generated lazily so the input itself does not dominate memory
        for i in range(ticks_per_symbol):  # every symbol trades every 250 ms (4 ticks/s each)
            ts = t0 + i * 250_000_000
            row = px[i]
            yield [
                Tick(
                    symbol=names[j],
                    ts=ts + j,
                    price=float(row[j]),
                    qty=1.0,
                    side="buy" if i % 2 else "sell",
                    trade_id=f"b:{j}:{i}",
                    venue="bench",
                )
                for j in range(symbols)
            ]

    samples: list[float] = []
    total = ticks_per_symbol
    every = max(1, total // checkpoints)

    class Src(FixedPartitionedSource):
        def list_parts(self) -> list[str]:
            return ["0"]

        def build_part(self, step_id: str, for_part: str, resume_state: Any) -> StatefulSourcePartition:
            it = gen()

            class P(StatefulSourcePartition):
                i = 0

                def next_batch(self) -> list:
                    try:
                        ticks = next(it)
                    except StopIteration:
                        raise
                    self.i += 1
                    if self.i % every == 0:
                        samples.append(_vm_rss_mib())
                    return [EventBatch("ticks", 0, self.i, ticks)]

                def snapshot(self) -> int:
                    return self.i

            return P()

    import resource

    orders: list = []
    samples.append(_vm_rss_mib())
    flow = build_trading_flow(Src(), Outputs(orders=[CollectSink(orders)]), replace(LIVE_CFG, symbols=tuple(names)))
    ru0, t0_wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    run_main(flow)
    wall, ru1 = time.perf_counter() - t0_wall, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    out = {
        "memory_symbols": float(symbols),
        "memory_ticks": float(symbols * ticks_per_symbol),
        # the run itself (the flow built, the input generated lazily inside it): wall and process CPU seconds
        "memory_wall_s": wall,
        "memory_cpu_s": cpu,
        "memory_ticks_per_s": symbols * ticks_per_symbol / wall,
        "memory_ticks_per_cpu_s": symbols * ticks_per_symbol / cpu,
        "memory_rss_mib_start": samples[0],
    }
    for k, v in enumerate(samples[1:], 1):
        out[f"memory_rss_mib_at_{k}of{len(samples) - 1}"] = v
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child of a big parent would
    # report the parent's peak
    out["memory_peak_rss_mib"] = _vm_rss_mib("VmHWM")
    return out


def memory_1000_symbols(symbols: int = 1000, ticks_per_symbol: int = 2400, checkpoints: int = 4) -> dict[str, float]:
    """(d): peak RSS (MiB) of a fresh process streaming ``symbols`` symbols through the flow (10 min of event
    time at 4 ticks/s each with the default 2,400 ticks), with RSS sampled along the way to show it stays flat."""
    import json
    import subprocess
    import sys

    code = (
        f"import json; from benchmarks.flow import _memory_child; "
        f"print(json.dumps(_memory_child({symbols}, {ticks_per_symbol}, {checkpoints})))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"memory benchmark failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory_10000_symbols(ticks_per_symbol: int = 24, checkpoints: int = 4) -> dict[str, float]:
    """(d) at 10,000 symbols: :func:`memory_1000_symbols` with 10,000 symbols, each trading every 250 ms (24 ticks
    each by default: 6 s of event time, 240,000 ticks, every 1 s bar of every symbol closed); the target is a peak
    RSS (``memory_peak_rss_mib``, the process's VmHWM) under 2 GiB."""
    return memory_1000_symbols(10_000, ticks_per_symbol, checkpoints)


class _Paced(FixedPartitionedSource):
    """Releases pre-built ticks at ``rate`` ticks/s of wall time (``inf``: as fast as the flow takes them); a poll
    returns every tick already due (at most ``cap``), like a Kafka poll returns what has arrived. A batch's
    ``received_ns`` is the scheduled arrival of its EARLIEST tick, so measured latency includes any queueing
    (conservative). ``columnar``: each poll's ticks become one :class:`~operators.messages.TickBatch` inside the
    poll (timed, as the columnar Kafka source builds one per poll), else a list of ``Tick``s."""

    def __init__(self, ticks: list[Tick], rate: float, cap: int = 5000, columnar: bool = True) -> None:
        self.ticks, self.rate, self.cap, self.columnar = ticks, rate, cap, columnar
        self.started_ns = 0
        self.ended_ns = 0

    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> StatefulSourcePartition:
        from operators.messages import TickBatch

        src = self
        unpaced = src.rate == float("inf")

        class Part(StatefulSourcePartition):
            def __init__(self) -> None:
                self.i = 0
                self.t0 = src.started_ns = time.monotonic_ns()

            def next_batch(self) -> list:
                n = len(src.ticks)
                if self.i >= n:
                    src.ended_ns = src.ended_ns or time.monotonic_ns()
                    raise StopIteration()
                now = time.monotonic_ns()
                if unpaced:
                    due = min(n, self.i + src.cap)
                else:
                    due = min(n, int((now - self.t0) * src.rate / 1e9) + 1, self.i + src.cap)
                    if due <= self.i:
                        time.sleep(min(0.0005, (self.i + 1) / src.rate - (now - self.t0) / 1e9))
                        return []
                first_arrival = now if unpaced else self.t0 + int(self.i / src.rate * 1e9)
                rows = src.ticks[self.i : due]
                payload = TickBatch.from_ticks(rows, range(self.i, due)) if src.columnar else rows
                batch = EventBatch("ticks", 0, due, payload, [], first_arrival)
                self.i = due
                return [batch]

            def snapshot(self) -> int:
                return self.i

        return Part()


def paced_max_rate(ticks: list[Tick], cfg: PipelineConfig = LIVE_CFG, cap: int = 5000) -> float:
    """(c)'s reference: ticks/s of the flow fed by the same source as :func:`decision_latency` with no pacing (every
    poll returns ``cap`` ticks, each poll's batch built inside it), orders observed the same way."""
    src = _Paced(ticks, float("inf"), cap)
    flow = build_trading_flow(src, Outputs(), universe(cfg, ticks), on_orders=lambda e: None)
    run_main(flow)
    return len(ticks) / ((src.ended_ns - src.started_ns) / 1e9)


def poll_costs(
    ticks: list[Tick],
    cfg: PipelineConfig = LIVE_CFG,
    caps: tuple[int, ...] = (10, 50, 100, 300, 5000),
    repeats: int = 2,
) -> dict[str, float]:
    """What (c) depends on: CPU time of the whole flow per poll and per tick when every poll of the :class:`_Paced`
    source (unpaced) returns ``cap`` ticks (best of ``repeats``, ``time.process_time``: the flow runs in this
    thread). At a rate ``r`` a busy flow's batches settle where a poll's cost equals its ticks' arrival time
    (``cost(n) = n / r``), and a decision waits for about two polls; at half the maximum that is where the cost
    per tick is twice the large-batch cost, so the part of a poll's cost that does not grow with its ticks sets it."""
    out: dict[str, float] = {}
    for cap in caps:
        best = float("inf")
        for _ in range(repeats):
            src = _Paced(ticks, float("inf"), cap)
            flow = build_trading_flow(src, Outputs(), universe(cfg, ticks), on_orders=lambda e: None)
            t = time.process_time()
            run_main(flow)
            best = min(best, time.process_time() - t)
        polls = -(-len(ticks) // cap)
        out[f"poll_cost_{cap}_us_per_poll"] = best / polls * 1e6
        out[f"poll_cost_{cap}_us_per_tick"] = best / len(ticks) * 1e6
    return out


def decision_latency(
    rate: float, ticks: list[Tick], cfg: PipelineConfig = LIVE_CFG, warmup_frac: float = 0.25
) -> dict[str, float]:
    """(c): latency (ms) from the arrival of the tick that closes a bar to the first order the decision at that
    bar causes leaving the account step, at a fixed input ``rate`` (ticks/s); one figure per decision.

    Tick ``i`` arrives at ``t0 + i / rate``; the closing tick of an order's bar is the first tick of its
    symbol at or after the bar's end (= the order's ``ts``). Orders in the first ``warmup_frac`` of the
    input (start-up, cold caches) are left out. The cyclic garbage collector is frozen after set-up,
    as a latency-sensitive deployment would (``gc.freeze``)."""
    import gc

    emitted: list[tuple[int, Any]] = []
    src = _Paced(ticks, rate)

    def seen(e: Any) -> None:
        now = time.monotonic_ns()
        emitted.extend((now, o) for o in e.orders)

    flow = build_trading_flow(src, Outputs(), universe(cfg, ticks), on_orders=seen)
    gc.collect()
    gc.freeze()
    try:
        run_main(flow)
    finally:
        gc.unfreeze()
    by_symbol: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sym in {t.symbol for t in ticks}:
        idx = np.array([i for i, t in enumerate(ticks) if t.symbol == sym], dtype=np.int64)
        by_symbol[sym] = (np.array([ticks[i].ts for i in idx], dtype=np.int64), idx)
    t0 = src.started_ns
    cut = ticks[int(len(ticks) * warmup_frac)].ts
    # one latency per decision: its first order (a TWAP parent's children leave together, the later ones
    # dated at their release times, which are not when the decision was made)
    first: dict[str, tuple[int, Any]] = {}
    for now, o in emitted:
        key = o.parent_id or o.order_id
        if key not in first or o.ts < first[key][1].ts:
            first[key] = (min(now, first[key][0]) if key in first else now, o)
    lat = []
    for now, o in first.values():
        if o.ts < cut:
            continue
        ts, idx = by_symbol[o.symbol]
        k = int(np.searchsorted(ts, o.ts, side="left"))
        arrival = t0 + int(idx[k] / rate * 1e9)
        lat.append((now - arrival) / 1e6)
    a = np.asarray(lat, dtype=np.float64)
    return {
        "latency_rate_ticks_per_s": rate,
        "latency_decisions": float(a.size),
        "latency_p50_ms": float(np.percentile(a, 50)) if a.size else float("nan"),
        "latency_p99_ms": float(np.percentile(a, 99)) if a.size else float("nan"),
        "latency_max_ms": float(a.max()) if a.size else float("nan"),
    }


def kafka_source_latency(
    bootstrap: str, rate: float = 200.0, seconds: float = 10.0, poll_timeout_s: float | None = None
) -> dict[str, float]:
    """The live flow's inputs as ``levibot run --live`` builds them (ticks in columns over the registry's 6
    partitions, signals 3, control 1, execution reports 1; one Bytewax worker), ticks produced at ``rate`` per
    second over BTC-USD and ETH-USD (each tick's ``ts`` = its send time): ms from the send to the flow's first step
    seeing it. ``poll_timeout_s``: the sources' poll timeout (None: their default)."""
    import threading
    import uuid

    from confluent_kafka import Producer

    from connectors import shutdown
    from connectors.kafka.admin import delete_topics, ensure_topics
    from connectors.kafka.source import KafkaEventSource
    from schemas.codec import encode
    from schemas.events import ControlCommand, ExecutionReport, Signal

    prefix = f"benchsrc{uuid.uuid4().hex[:6]}."
    names = ("ticks", "signals", "control", "execution.reports")
    ensure_topics(bootstrap, prefix=prefix, names=list(names))
    seen: list[float] = []

    def watch(_s: str, b: Any) -> None:
        now = time.time_ns()
        if b.topic.endswith("ticks"):
            seen.extend((now - int(t)) / 1e6 for t in b.events.ts)

    kw = {} if poll_timeout_s is None else {"poll_timeout_s": poll_timeout_s}
    flow = Dataflow("source-latency")
    for name, typ, size in zip(
        names, (Tick, Signal, ControlCommand, ExecutionReport), (5000, 1000, 100, 1000), strict=True
    ):
        step = name.replace(".", "_")
        src = KafkaEventSource(bootstrap, prefix + name, typ, batch_size=size, columnar=typ is Tick, **kw)
        op.inspect(f"seen_{step}", op.input(f"in_{step}", flow, src), watch)

    def produce() -> None:
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        time.sleep(2.0)  # the consumers are assigned
        n = int(rate * seconds) // 2
        t0 = time.monotonic()
        for i in range(n):
            for sym in ("BTC-USD", "ETH-USD"):
                tick = Tick(
                    symbol=sym,
                    ts=time.time_ns(),
                    price=100.0,
                    qty=1.0,
                    side="buy",
                    trade_id=f"{sym}:{i}",
                    venue="bench",
                )
                p.produce(prefix + "ticks", key=sym.encode(), value=encode(tick))
            p.poll(0)
            time.sleep(max(0.0, t0 + (i + 1) * 2 / rate - time.monotonic()))
        p.flush(30)
        time.sleep(1.0)
        shutdown.request_stop("benchmark done")

    shutdown.clear_stop()
    threading.Thread(target=produce, daemon=True).start()
    try:
        run_main(flow)
    finally:
        shutdown.clear_stop()
        delete_topics(bootstrap, [prefix + n for n in names])
    a = np.asarray(seen[int(len(seen) * 0.1) :], dtype=np.float64)  # the first tenth: start-up
    tag = "default" if poll_timeout_s is None else f"{poll_timeout_s * 1e3:g}ms"
    return {
        f"source_latency_{tag}_ticks": float(len(seen)),
        f"source_latency_{tag}_p50_ms": float(np.percentile(a, 50)),
        f"source_latency_{tag}_p99_ms": float(np.percentile(a, 99)),
        f"source_latency_{tag}_max_ms": float(a.max()),
    }


def _produce(bootstrap: str, topic: str, ticks: list[Tick]) -> None:
    from connectors.kafka.sink import EventProducer

    p = EventProducer(bootstrap, topic)
    for i in range(0, len(ticks), 10_000):
        p.send(ticks[i : i + 10_000])
    p.flush()


def kafka_flow_vs_bare(
    bootstrap: str, n_ticks: int = 1_000_000, per_bar: int = 3600, repeats: int = 2
) -> dict[str, float]:
    """(b): Kafka `ticks` -> flow -> Kafka `orders`, ticks/s, against a bare consume + decode loop on the same topic."""
    import uuid

    from benchmarks.foundation import bare_consume_decode
    from connectors.kafka.admin import delete_topics, ensure_topics
    from connectors.kafka.sink import KafkaEventSink
    from connectors.kafka.source import KafkaEventSource

    ticks = dense_ticks(per_bar, max(1, n_ticks // (2 * per_bar)))
    prefix = f"benchflow{uuid.uuid4().hex[:6]}."
    ensure_topics(bootstrap, prefix=prefix, names=["ticks", "orders"])
    try:
        _produce(bootstrap, f"{prefix}ticks", ticks)

        def flow_once() -> float:
            flow = build_trading_flow(
                KafkaEventSource(bootstrap, f"{prefix}ticks", Tick, batch_size=5000, stop_at_end=True, columnar=True),
                Outputs(orders=[KafkaEventSink(bootstrap, f"{prefix}orders")]),
                LIVE_CFG,
            )
            t = time.perf_counter()
            run_main(flow)
            return time.perf_counter() - t

        def bare_once() -> float:
            t = time.perf_counter()
            bare_consume_decode(bootstrap, f"{prefix}ticks", len(ticks))
            return time.perf_counter() - t

        t_flow = min(flow_once() for _ in range(repeats))
        t_bare = min(bare_once() for _ in range(repeats))
    finally:
        delete_topics(bootstrap, [f"{prefix}ticks", f"{prefix}orders"])
    rate = per_bar // 1800
    return {
        f"kafka_{rate}tps_ticks": float(len(ticks)),
        f"kafka_flow_{rate}tps_ticks_per_s": len(ticks) / t_flow,
        f"kafka_bare_decode_{rate}tps_per_s": len(ticks) / t_bare,
        f"kafka_flow_vs_bare_{rate}tps_ratio": t_bare / t_flow,
    }


def cluster_scaling(bootstrap: str, n_ticks: int = 1_000_000, per_bar: int = 36000) -> dict[str, float]:
    """(e): wall time of `levibot run --live --until-end` as 1 process and as a 2-process cluster over the
    same 6-partition topic, start-up (measured on an empty topic) subtracted; ratio of throughputs. And what the
    cluster costs per tick when cores are available: the processes' CPU seconds (user + system, from
    ``getrusage(RUSAGE_CHILDREN)`` around each run) per million ticks, the empty run's subtracted, 2 processes
    against 1 (``cluster_cpu_2p_vs_1p_ratio``; issue target <= 1.15)."""
    import os
    import resource
    import secrets
    import subprocess
    import sys
    import uuid

    from connectors.kafka.admin import delete_topics, ensure_topics

    ticks = dense_ticks(per_bar, max(1, n_ticks // (2 * per_bar)))
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "--live",
        "--venue",
        "sim",
        "--until-end",
        "--stores",
        "none",
        "--snapshot-interval",
        "5",
    ]

    def timed(prefix: str, processes: int) -> tuple[float, float]:
        # a live run refuses to start without its control key: a throwaway one unless the caller set one
        env = {
            "LEVIBOT_CONTROL_KEY": "hex:" + secrets.token_hex(32),
            **os.environ,
            "LEVIBOT_TOPIC_PREFIX": prefix,
            "LEVIBOT_KAFKA_BOOTSTRAP": bootstrap,
        }
        base = 2300 + (uuid.uuid4().int % 500) * 2
        extra = (
            []
            if processes == 1
            else [
                "--processes",
                str(processes),
                "--addresses",
                ";".join(f"127.0.0.1:{base + i}" for i in range(processes)),
            ]
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        procs = [
            subprocess.Popen(
                cmd + extra + ([] if processes == 1 else ["--process-id", str(i)]),
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(processes)
        ]
        for p in procs:
            _, err = p.communicate(timeout=900)
            if p.returncode != 0:
                raise RuntimeError(f"flow process failed: {err.decode()[-2000:]}")
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    out: dict[str, float] = {"cluster_ticks": float(len(ticks))}
    prefixes = []
    try:
        for procs in (1, 2):
            empty = f"benchemp{uuid.uuid4().hex[:6]}."
            full = f"benchclu{uuid.uuid4().hex[:6]}."
            prefixes += [empty, full]
            ensure_topics(bootstrap, prefix=empty)
            ensure_topics(bootstrap, prefix=full)
            _produce(bootstrap, f"{full}ticks", ticks)
            overhead, cpu0 = timed(empty, procs)
            total, cpu = timed(full, procs)
            out[f"cluster_{procs}p_startup_s"] = overhead
            out[f"cluster_{procs}p_ticks_per_s"] = len(ticks) / max(total - overhead, 1e-9)
            out[f"cluster_{procs}p_cpu_s_per_mticks"] = (cpu - cpu0) / len(ticks) * 1e6
        out["cluster_2p_vs_1p_ratio"] = out["cluster_2p_ticks_per_s"] / out["cluster_1p_ticks_per_s"]
        out["cluster_cpu_2p_vs_1p_ratio"] = out["cluster_2p_cpu_s_per_mticks"] / out["cluster_1p_cpu_s_per_mticks"]
    finally:
        from confluent_kafka.admin import AdminClient

        names = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
        delete_topics(bootstrap, [t for t in names if any(t.startswith(p) for p in prefixes)])
    return out


def embedded_run(repeats: int = 1) -> dict[str, float]:
    """``make run`` end to end (``python -m flows.cli run``: start-up, bundled history, the full default path,
    the embedded ClickHouse store and the tear sheet) in a fresh process with its own ``LEVIBOT_VAR``: wall seconds
    (best of ``repeats``), ticks/s over the 560,240 bundled ticks, and the process's CPU seconds (user + system)."""
    import os
    import resource
    import subprocess
    import sys
    import tempfile

    best = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="levibot-bench-run-") as var:
            env = {**os.environ, "LEVIBOT_VAR": var, "LEVIBOT_METRICS_PORT": "0"}
            env.pop("LEVIBOT_KAFKA_BOOTSTRAP", None)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-m", "flows.cli", "run"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if res.returncode != 0:
                raise RuntimeError(f"levibot run failed: {res.stderr[-2000:]}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if best is None or wall < best[0]:
                best = (wall, cpu)
    from connectors.history import load_history
    from flows.cli import BUNDLED

    n = len(load_history(BUNDLED, ticks_per_bar=8))
    return {
        "make_run_ticks": float(n),
        "make_run_wall_s": best[0],
        "make_run_ticks_per_s": n / best[0],
        "make_run_cpu_s": best[1],
    }
