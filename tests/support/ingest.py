"""The Faust apps (signal ingest, alert dispatch) as a test drives them: started as a subprocess in its own session
and stopped with its process group, requests posted to their webhooks, and a signal message to post."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import REPO, wait_for


def start_app(module: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """Start a Faust app module as a subprocess and wait for its /healthz."""
    fh = open(log, "wb")  # noqa: SIM115 - the log stays open for the child process, closed when it stops
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{module} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 30, f"{module} /healthz")
    except BaseException:
        stop_app(proc)
        raise
    return proc


def stop_app(proc: subprocess.Popen) -> None:
    """Stop an app of :func:`start_app` (its whole process group): SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST a JSON ``body`` to ``url``; the HTTP status (an error status is returned, not raised)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


#: a Telegram signal message as a channel posts it (parsed into one Signal)
ORIGINAL = "#BTC/USDT LONG 10x\nEntry: 27000 - 27400\nTargets: 27800 - 28500 - 29000\nSL: 26500"
