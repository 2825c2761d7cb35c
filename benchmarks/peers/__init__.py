"""Peers in ``make bench``: the project's jobs against other projects doing the same job, each peer in a virtual
environment of its own under ``var/peers/`` (built on first use with pinned versions, reused afterwards; never
part of the project's own install), each comparison a ratio of the two sides alternated in one run.

* :mod:`benchmarks.peers.quix`: Quix Streams, Kafka ticks -> 1 s bars -> Kafka;
* :mod:`benchmarks.peers.nautilus`: NautilusTrader's ``BacktestEngine``, the EMA-spread rule on the same ticks
  and bars, one instrument and two;
* :mod:`benchmarks.peers.vectorbt`: vectorbt, the 100- and 1,000-set sweep, results equal.

Run: ``make bench BENCH_ARGS='--suite peers'`` (``python -m benchmarks --suite peers``). A peer's own code runs as a
subprocess of its venv's interpreter (``benchmarks/peers/scripts/``) and reports JSON; its timings are taken
inside that process, around the same work as the project's side.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def run(
    bootstrap: str,
    *,
    quix_ticks: int = 50_000,
    rounds: int = 3,
    backtest_rounds: int = 2,
    max_bars: int | None = None,
    sweep_sets: tuple[int, ...] = (100, 1000),
    report: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """All three peers and ``make run`` end to end; ``report`` is called with each part's results as it ends."""
    from benchmarks.flow import embedded_run
    from benchmarks.peers import nautilus, quix, vectorbt

    res: dict[str, float] = {}

    def got(part: dict[str, float]) -> None:
        res.update(part)
        if report is not None:
            report(part)

    for n in sweep_sets:
        print(f"peers: vectorbt, {n} parameter sets", file=sys.stderr, flush=True)
        got(vectorbt.run(n_sets=n, rounds=rounds, max_bars=max_bars))
    print("peers: Quix Streams, Kafka -> 1 s bars -> Kafka", file=sys.stderr, flush=True)
    got(quix.run(bootstrap, n_ticks=quix_ticks, rounds=rounds))
    print("peers: NautilusTrader, the EMA-spread rule on ticks and bars", file=sys.stderr, flush=True)
    got(nautilus.run(rounds=backtest_rounds, max_bars=max_bars))
    print("peers: make run end to end", file=sys.stderr, flush=True)
    got(embedded_run())
    return res
