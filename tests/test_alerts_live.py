"""Alert rules of deploy/prometheus/rules/ fired from real conditions in the running system: the real `levibot run
--live` (paper venue in its own process) scraped by the real Prometheus server with the project's rules. Induced:
an operator halt, a forged control command, a position the venue never reported (reconciliation), a VaR limit set
below the book's VaR, and a kill-switch drawdown limit set below the book's drawdown."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from .flowproc import BAR_ARGS, FlowProc, TopicCounter, create_topics, drop_topics, flow_env, free_ports, new_prefix, run_ok

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules" / "levibot.rules.yml"
KEY = "alerts-live-test-control-key-0123456789"
WANTED = {"LevibotTradingHaltedByOperator", "LevibotReconciliationMismatch", "LevibotControlCommandRefused",
          "LevibotVarNearLimit", "LevibotKillSwitchEngaged"}


def _firing(port: int) -> dict[str, list[dict]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5) as r:
        body = json.load(r)
    out: dict[str, list[dict]] = {}
    for a in body["data"]["alerts"]:
        if a["state"] == "firing":
            out.setdefault(a["labels"]["alertname"], []).append(a["labels"])
    return out


def test_rules_fire_from_induced_conditions(kafka_bootstrap, tmp_path):
    prom_bin = shutil.which("prometheus")
    assert prom_bin, "the Prometheus server is installed by scripts/install_tools.sh (make tools)"
    metrics_port, prom_port = free_ports(2)
    prefix = new_prefix("al")
    env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_CONTROL_KEY=KEY)
    flow_env_m = dict(env, LEVIBOT_METRICS_PORT=str(metrics_port))
    forged = dict(env, LEVIBOT_CONTROL_KEY="someone-else-entirely-0123456789abcdef")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "levibot-flow", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
    procs: list = []
    try:
        create_topics(kafka_bootstrap, prefix)
        prom = subprocess.Popen([prom_bin, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
        procs.append(prom)
        venue = FlowProc(["paper-venue", "--snapshot-every", "100", "--phantom", "ETH-USD:3:40"], env, tmp_path / "venue.log")
        flow = FlowProc(["run", "--live", "--venue", "paper", "--stores", "none", *BAR_ARGS], flow_env_m,
                        tmp_path / "flow.log")
        replay = FlowProc(["replay", "--max-bars", "4000", "--speed", "40000", "--no-progress"], env, tmp_path / "replay.log")
        procs += [venue, flow, replay]
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        deadline = time.monotonic() + 120
        while True:
            try:
                if orders.count() >= 10:
                    break
            except Exception:  # noqa: BLE001 - the new topic's leader may not be known yet
                pass
            assert time.monotonic() < deadline, f"no orders:\n{flow.tail()}"
            time.sleep(0.5)
        orders.close()
        # limits below what the book already carries: VaR near (above) its limit, and a kill switch that trips on
        # the next dip (resume_drawdown first: it must stay below max_drawdown)
        for name, value in (("max_portfolio_var", "0.00001"), ("resume_drawdown", "0"), ("halt_cooldown_s", "1e9"),
                            ("max_drawdown", "0.00001")):
            run_ok(["control", "set-limit", name, value, "--reason", "alert test"], env, tmp_path / f"{name}.log", 60)
        run_ok(["control", "resume", "--reason", "forged"], forged, tmp_path / "forged.log", 60)
        time.sleep(10)
        run_ok(["control", "halt", "--reason", "alert test"], env, tmp_path / "halt.log", 60)
        deadline = time.monotonic() + 240  # LevibotVarNearLimit holds for 1 minute before it fires
        firing: dict = {}
        while time.monotonic() < deadline:
            try:
                firing = _firing(prom_port)
            except OSError:
                pass
            if WANTED <= set(firing):
                break
            time.sleep(2)
        log.info("firing: %s", {k: v for k, v in firing.items()})
        assert WANTED <= set(firing), f"not firing: {WANTED - set(firing)}; flow log:\n{flow.tail()}"
        assert {a["account"] for a in firing["LevibotReconciliationMismatch"]} == {"default"}
        assert any(a["scope"] == "account:default" for a in firing["LevibotVarNearLimit"])
        flow.proc.send_signal(signal.SIGTERM)
        flow.wait_ok(60)
    finally:
        for p in procs:
            if isinstance(p, FlowProc):
                p.kill()
            else:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        drop_topics(kafka_bootstrap, [prefix])
