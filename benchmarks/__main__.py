"""`python -m benchmarks [--suite all|foundation|flow|...|peers] ...`: run the benchmark suites against the running
services and print a markdown table; raw results are saved as JSON under var/bench/."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import flow, foundation
from flows.settings import Settings
from operators.pipeline import PipelineConfig


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
    )


#: (c)'s strategy: the full path, trading often enough to sample the latency (no turnover budget, 1-bar hold:
#: about 2,000 orders over the 432,000 ticks; the default discipline allows two dozen)
LATENCY_CFG = PipelineConfig(
    trend_entry=0.0005,
    trend_exit=0.0001,
    orchestrator_args=(("turnover_per_year", None), ("min_hold_bars", 1), ("min_change", 0.05)),
)


def _got(res: dict[str, float], part: dict[str, float]) -> None:
    """Add a part's results and print them at once (a long suite shows what it has measured so far)."""
    res.update(part)
    for k, v in part.items():
        print(f"  {k} = {v:,.3f}", file=sys.stderr, flush=True)


def run_flow_suite(s: Settings, n_ticks: int) -> dict[str, float]:
    """Issue 3 (a)-(e) at two tick densities: 2 and 20 ticks/s per symbol (BTC-USD and ETH-USD)."""
    res: dict[str, float] = {}
    for per_bar in (3600, 36000):
        _got(res, flow.throughput(n_ticks, per_bar))
    # `make run` end to end, in the same run: its ticks/s against the in-process flow's on sparse ticks
    _got(res, flow.embedded_run())
    _got(res, {"make_run_vs_flow_2tps_ratio": res["make_run_ticks_per_s"] / res["flow_2tps_ticks_per_s"]})
    # (c) at half of the maximum of the same source, ticks and strategy (one that trades often enough to
    # sample the latency), measured in the same run
    ticks = flow.dense_ticks(3600, 60)
    busy = LATENCY_CFG
    top = flow.paced_max_rate(ticks, busy)
    _got(res, {"latency_max_rate_ticks_per_s": top})
    _got(res, flow.decision_latency(top / 2, ticks, busy))
    # what a live flow's Kafka inputs add before (c) starts: the default (no wait) and a 50 ms poll timeout
    _got(res, flow.kafka_source_latency(s.kafka_bootstrap))
    _got(res, flow.kafka_source_latency(s.kafka_bootstrap, poll_timeout_s=0.05))
    _got(res, flow.memory_1000_symbols())
    for per_bar in (3600, 36000):
        _got(res, flow.kafka_flow_vs_bare(s.kafka_bootstrap, n_ticks, per_bar))
    _got(res, flow.cluster_scaling(s.kafka_bootstrap, n_ticks))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--suite",
        choices=["all", "foundation", "flow", "edges", "models", "sweep", "risk", "account", "api", "peers"],
        default="all",
    )
    ap.add_argument("--ticks", type=int, default=1_000_000, help="ticks per throughput run (default 1,000,000)")
    ap.add_argument("--sink-rows", type=int, default=200_000, help="rows written to each store (default 200,000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per side of a ratio; the best is kept")
    ap.add_argument("--out", type=Path, default=Path("var/bench"), help="folder for the JSON results")
    args = ap.parse_args()
    s = Settings.from_env()
    res: dict[str, float] = {}
    if args.suite in ("all", "foundation"):
        with tempfile.TemporaryDirectory() as chdir:
            res.update(
                foundation.run(
                    s.kafka_bootstrap,
                    s.pg_dsn,
                    chdir,
                    n_ticks=args.ticks,
                    sink_rows=args.sink_rows,
                    repeats=args.repeats,
                )
            )
    if args.suite in ("all", "flow"):
        res.update(run_flow_suite(s, args.ticks))
    if args.suite in ("all", "models"):
        from benchmarks import models

        got = models.main()
        for part in ("training", "scoring"):
            res.update(
                {
                    f"models_{part}_{k}": float(v)
                    for k, v in got[part].items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
            )
    if args.suite in ("all", "risk"):
        from benchmarks import risk

        res.update(risk.run())
    if args.suite in ("all", "account"):
        from benchmarks import account

        res.update(account.run())
    if args.suite in ("all", "api"):
        from benchmarks import api

        res.update(api.run())
    if args.suite in ("all", "sweep"):
        from benchmarks import sweep

        res.update(
            {
                f"sweep_{k}": float(v)
                for k, v in sweep.run().items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
    if args.suite in ("all", "edges"):
        from benchmarks import edges

        for name, part in edges.run_all().items():
            res.update({f"{name}_{k}": float(v) for k, v in part.items() if isinstance(v, (int, float))})
    if args.suite == "peers":  # not in "all": its first run installs the peers' venvs (docs/performance.md, Peers)
        from benchmarks import peers

        peers.run(s.kafka_bootstrap, report=lambda part: _got(res, part))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "date": stamp,
        "machine": machine(),
        "command": f"make bench BENCH_ARGS='--suite {args.suite}'",
        "results": res,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.suite}-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(f"\n{stamp} — {record['machine']}")
    print("| measure | value |\n|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v:,.3f} |" if abs(v) < 100 else f"| {k} | {v:,.0f} |")


if __name__ == "__main__":
    main()
