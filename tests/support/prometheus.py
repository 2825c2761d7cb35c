"""A real Prometheus server (Debian's ``prometheus``, ``make tools``) scraping the processes of a test with the
project's alert rules, and those rules with short ``for:`` durations so that an alert fires within a test."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.support import REPO
from tests.support.flowproc import FlowProc, free_ports

#: the project's alert rules
RULES = REPO / "deploy" / "prometheus" / "rules" / "levibot.rules.yml"
#: the ``for:`` of every rule in :func:`rules_with_short_for`
TEST_FOR = "5s"


def rules_with_short_for(path: Path) -> Path:
    """The real rules with every ``for:`` set to :data:`TEST_FOR` (nothing else changed)."""
    text = RULES.read_text()
    out, n = re.subn(r"(?m)^(\s+for:\s*)\S+\s*$", lambda m: m.group(1) + TEST_FOR, text)
    assert n >= 8, n
    path.write_text(out)
    return path


class Prometheus:
    """A Prometheus server on a free port of 127.0.0.1 that scrapes ``targets`` every second with ``rules``; records
    every alert it has seen firing."""

    def __init__(self, tmp: Path, targets: list[str], rules: Path) -> None:
        binary = shutil.which("prometheus")
        assert binary, "the Prometheus server is installed by scripts/install_tools.sh (make tools)"
        (self.port,) = free_ports(1)
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "scrape_configs": [{"job_name": "levibot-flow", "static_configs": [{"targets": targets}]}],
                }
            )
        )
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "prometheus.log").open("w"),
        )
        self.seen: dict[str, list[dict]] = {}  # alert -> labels of every firing instance seen so far

    def _get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, q: str) -> list[dict]:
        return self._get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))["result"]

    def value(self, q: str) -> float | None:
        res = self.query(q)
        return float(res[0]["value"][1]) if res else None

    def poll(self) -> set[str]:
        """Record what fires now; returns every alert seen firing so far."""
        try:
            alerts = self._get("/api/v1/alerts")["alerts"]
        except OSError:
            return set(self.seen)
        for a in alerts:
            if a["state"] == "firing":
                self.seen.setdefault(a["labels"]["alertname"], []).append(a["labels"])
        return set(self.seen)

    def wait_for(self, wanted: set[str], timeout_s: float, alive: list[FlowProc], what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not wanted <= self.poll():
            for p in alive:
                assert p.running, f"`{' '.join(p.args)}` exited while waiting for {what}:\n{p.tail()}"
            assert time.monotonic() < deadline, (
                f"{what}: not firing after {timeout_s}s: {wanted - set(self.seen)}; "
                f"firing: {sorted(self.seen)}\n{alive[-1].tail() if alive else ''}"
            )
            time.sleep(1)

    def wait_on(self, alert: str, instance: str, timeout_s: float, alive: list[FlowProc]) -> None:
        """Wait until ``alert`` has fired with the label ``instance`` (one target of several)."""
        deadline = time.monotonic() + timeout_s
        while not any(a.get("instance") == instance for a in self.seen.get(alert, [])):
            self.poll()
            for p in alive:
                assert p.running, f"`{' '.join(p.args)}` exited while waiting for {alert} on {instance}:\n{p.tail()}"
            assert time.monotonic() < deadline, f"{alert} not firing on {instance} after {timeout_s}s"
            time.sleep(1)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
