"""What every peer comparison shares: the two sides alternated in one run, medians and the ratio."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable


def alternate(tag: str, ours: Callable[[], float], peer: Callable[[], float], rounds: int) -> dict[str, float]:
    """Run ``ours`` then ``peer`` ``rounds`` times (project, peer, project, peer, ...); each returns seconds of
    the same work. The medians and ``<tag>_ratio`` = peer seconds / our seconds (above 1: the project is faster)."""
    a: list[float] = []
    b: list[float] = []
    for r in range(rounds):
        a.append(ours())
        b.append(peer())
        print(f"  {tag} round {r + 1}/{rounds}: project {a[-1]:.3f} s, peer {b[-1]:.3f} s", file=sys.stderr, flush=True)
    ma, mb = statistics.median(a), statistics.median(b)
    return {
        f"{tag}_rounds": float(rounds),
        f"{tag}_project_s": ma,
        f"{tag}_peer_s": mb,
        f"{tag}_ratio": mb / ma,
    }


def rotate(tag: str, sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Several sides of one comparison in turn, ``rounds`` times (a, b, c, a, b, c, ...); the median seconds of
    each as ``<tag>_<side>_s``."""
    got: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(rounds):
        for k, fn in sides.items():
            got[k].append(fn())
        line = ", ".join(f"{k} {v[-1]:.3f} s" for k, v in got.items())
        print(f"  {tag} round {r + 1}/{rounds}: {line}", file=sys.stderr, flush=True)
    return {f"{tag}_{k}_s": statistics.median(v) for k, v in got.items()} | {f"{tag}_rounds": float(rounds)}
