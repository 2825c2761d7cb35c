"""Shared test support: where the repository and its data are, the one way a test waits for something, reading a
whole topic or a metrics page.

Every helper that more than one test module uses lives in this package; a test module never imports from another
test module. This module: ``REPO``, ``DATA``, ``TEST_DATA``, :func:`wait_for`, :func:`read_all`, :func:`metric_total`, :func:`metrics`. The others:

* ``flowproc``: ``levibot`` processes, their topics, free ports (needs the Kafka client);
* ``api``: the operator API tests' hasher, keys, stored rows and `levibot api` replicas;
* ``http``: local HTTP servers in place of a webhook receiver and the Telegram Bot API;
* ``ingest``: the Faust apps as subprocesses; ``prometheus``: a real Prometheus server with the alert rules;
  ``toxiproxy``: the TCP fault proxy;
* ``models``, ``sources``, ``risk``, ``fuzz``: a quickly trained model, hand-made flow inputs, brute-force checks
  of the gate's limits, payload mutation;
* ``reference/``: frozen copies of replaced implementations; ``data/``: the tests' input files.

A test never sleeps for a guessed time to let something happen: it waits for the condition itself with
:func:`wait_for`, which returns as soon as the condition holds and fails with what it waited for when it does not
(or at once when a process the test depends on has exited, with the end of that process's log).

Kept free of service clients at import time, so pure tests can use it; :func:`read_all` imports the Kafka client
when it is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["REPO", "DATA", "TEST_DATA", "wait_for", "read_all", "metric_total", "metrics"]

#: The repository's root directory (every path a test uses is relative to it, whatever folder the test is in).
REPO = Path(__file__).resolve().parents[2]
#: The bundled real market history (``data/market``).
DATA = REPO / "data" / "market"
#: The tests' own input files (``tests/support/data``).
TEST_DATA = Path(__file__).resolve().parent / "data"


def _exited(proc: Any) -> str | None:
    """A description of ``proc`` if it has exited, else None. ``proc``: a ``tests.support.flowproc.FlowProc`` (``running``,
    ``tail()``, ``args``) or a ``subprocess.Popen``."""
    if hasattr(proc, "running"):
        if proc.running:
            return None
        return f"`levibot {' '.join(proc.args)}` exited ({proc.proc.returncode}):\n{proc.tail()}"
    rc = proc.poll()
    return None if rc is None else f"process {proc.args!r} exited ({rc})"


def wait_for(
    pred: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    procs: Iterable[Any] = (),
    interval_s: float = 0.25,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``pred()`` every ``interval_s`` seconds until it returns a truthy value, and return that value.

    Fails (``AssertionError`` naming ``what``) after ``timeout_s`` seconds, or as soon as one of ``procs`` has
    exited. An exception of a type in ``retry_on`` raised by ``pred`` (an endpoint not up yet, a table not
    migrated yet) counts as "not yet"; any other exception propagates. The last process log tails are in the
    timeout message.

    >>> calls = []
    >>> wait_for(lambda: calls.append(1) or len(calls) >= 3 and len(calls), 5.0, "three calls", interval_s=0.001)
    3
    >>> wait_for(lambda: False, 0.01, "something that never happens", interval_s=0.001)
    Traceback (most recent call last):
    ...
    AssertionError: timed out after 0.01 s waiting for something that never happens
    """
    procs = list(procs)
    deadline = time.monotonic() + timeout_s
    while True:
        for p in procs:
            gone = _exited(p)
            if gone is not None:
                raise AssertionError(f"{gone}\n(while waiting for {what})")
        try:
            got = pred()
        except retry_on:
            got = None  # type: ignore[assignment]
        if got:
            return got
        if time.monotonic() >= deadline:
            tails = "".join(f"\n{p.tail(15)}" for p in procs if hasattr(p, "tail"))
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{tails}")
        time.sleep(interval_s)


def read_all(bootstrap: str, topic: str) -> list:
    """Every message now in ``topic`` (all partitions, from the beginning), as confluent-kafka messages."""
    from connectors.kafka.source import iter_topic

    return [m for batch in iter_topic(bootstrap, topic, timeout_s=10) for m in batch]


def metric_total(port: int, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``, on the Prometheus page that a
    process serves at ``http://127.0.0.1:<port>/metrics``; 0 when there is none. Raises ``OSError`` while the
    endpoint is not up (``retry_on=(OSError,)`` in a :func:`wait_for`)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def metrics(port: int) -> dict[str, float]:
    """The Prometheus page a process serves at ``http://127.0.0.1:<port>/metrics`` as ``name{labels}`` -> value (the
    sample lines as written). Raises ``OSError`` while the endpoint is not up."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out
