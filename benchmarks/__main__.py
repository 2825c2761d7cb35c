"""`python -m benchmarks [--ticks N]`: run the benchmark suites against the running services, print a table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import foundation
from flows.settings import Settings


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ticks", type=int, default=1_000_000, help="ticks replayed and consumed (default 1,000,000)")
    ap.add_argument("--sink-rows", type=int, default=200_000, help="rows written to each store (default 200,000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per side of a ratio; the best is kept")
    ap.add_argument("--out", type=Path, default=Path("var/bench"), help="folder for the JSON results")
    args = ap.parse_args()
    s = Settings.from_env()
    with tempfile.TemporaryDirectory() as chdir:
        res = foundation.run(s.kafka_bootstrap, s.pg_dsn, chdir, n_ticks=args.ticks, sink_rows=args.sink_rows,
                             repeats=args.repeats)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {"date": stamp, "machine": machine(), "command": "make bench", "results": res}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"foundation-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(f"\n{stamp} — {record['machine']}")
    print("| measure | value |\n|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v:,.2f} |" if v < 100 else f"| {k} | {v:,.0f} |")


if __name__ == "__main__":
    main()
