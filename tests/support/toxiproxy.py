"""Toxiproxy (a real TCP fault proxy, installed by ``make tools``) as a test drives it: a ``toxiproxy-server``
process on 127.0.0.1, proxies to a service's port, toxics (latency, a cut connection) added and removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.flowproc import free_ports


def toxiproxy_binary() -> Path:
    tools = Path(os.environ.get("LEVIBOT_TOOLS") or Path(os.environ.get("LEVIBOT_VAR") or REPO / "var") / "tools")
    path = tools / "bin" / "toxiproxy-server"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` (scripts/install_tools.sh installs it)", pytrace=False)
    return path


class Toxiproxy:
    """A toxiproxy-server process on 127.0.0.1 and its HTTP API."""

    def __init__(self, log: Path) -> None:
        (self.port,) = free_ports(1)
        self._fh = open(log, "ab")  # noqa: SIM115 - the log stays open for the child process, closed when it stops
        self.proc = subprocess.Popen(
            [str(toxiproxy_binary()), "-host", "127.0.0.1", "-port", str(self.port)],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.api("GET", "/version")
                break
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "toxiproxy-server did not start"
                time.sleep(0.1)

    def api(self, method: str, path: str, body: dict | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw.decode()

    def proxy(self, name: str, upstream_port: int) -> int:
        (listen,) = free_ports(1)
        self.api(
            "POST",
            "/proxies",
            {"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream_port}", "enabled": True},
        )
        return listen

    def add_toxic(self, proxy: str, name: str, kind: str, **attributes: int) -> None:
        self.api(
            "POST",
            f"/proxies/{proxy}/toxics",
            {"name": name, "type": kind, "stream": "downstream", "toxicity": 1.0, "attributes": attributes},
        )

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.api("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._fh.close()
