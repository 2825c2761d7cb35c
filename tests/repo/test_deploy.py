"""Deployment artefacts: Prometheus config and rules, Grafana dashboards, docker-compose.yml, k8s/ manifests, and a
real Prometheus server scraping a running flow. Tools come from scripts/install_tools.sh (`make tools`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

PROM = REPO / "deploy" / "prometheus"
TOOLS = Path(os.environ.get("LEVIBOT_TOOLS", str(Path(os.environ.get("LEVIBOT_VAR", REPO / "var")) / "tools")))
K8S_VERSION = os.environ.get("LEVIBOT_K8S_VERSION", "1.34.0")

sys.path.insert(0, str(REPO / "deploy" / "grafana"))
import build as grafana_build  # noqa: E402

from connectors.metrics import exposed_series_names  # noqa: E402


def _tool(name: str) -> str:
    path = shutil.which(name) or (str(TOOLS / "bin" / name) if (TOOLS / "bin" / name).exists() else None)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/install_tools.sh (make tools)", pytrace=False)
    return path


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw, check=False)


def _free_port() -> int:
    from tests.support.flowproc import free_ports

    return free_ports(1)[0]


# -- Prometheus --------------------------------------------------------------------------------------------------
def test_promtool_checks_config_and_rules():
    res = _run([_tool("promtool"), "check", "config", str(PROM / "prometheus.yml")])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 rule files found" in res.stdout + res.stderr
    res = _run([_tool("promtool"), "check", "rules", str(PROM / "rules" / "levibot.rules.yml")])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_rule_unit_tests_pass_and_can_fail(tmp_path):
    res = _run([_tool("promtool"), "test", "rules", str(PROM / "tests" / "levibot.rules.test.yml")])
    assert res.returncode == 0, res.stdout + res.stderr
    # the same tests against a broken rule (kill switch threshold that can never be reached) must fail
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rules = (PROM / "rules" / "levibot.rules.yml").read_text()
    (tmp_path / "rules" / "levibot.rules.yml").write_text(
        rules.replace("(levibot_kill_switch_engaged) == 1", "(levibot_kill_switch_engaged) == 2")
    )
    shutil.copy(PROM / "tests" / "levibot.rules.test.yml", tmp_path / "tests")
    res = _run([_tool("promtool"), "test", "rules", str(tmp_path / "tests" / "levibot.rules.test.yml")])
    assert res.returncode != 0 and "LevibotKillSwitchEngaged" in res.stdout + res.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook():
    rules = yaml.safe_load((PROM / "rules" / "levibot.rules.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROM / "tests" / "levibot.rules.test.yml").read_text())
    tested = {a["alertname"] for t in tests["tests"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
    assert set(alerts) == tested
    runbook = (REPO / "docs" / "runbook.md").read_text().lower()
    for name, r in alerts.items():
        anchor = r["annotations"]["runbook"].split("#", 1)[1]
        assert f"## {anchor.replace('-', ' ')}" in runbook, f"{name}: docs/runbook.md has no section '{anchor}'"
    for required in (
        "LevibotPipelineStalled",
        "LevibotConsumerLagHigh",
        "LevibotDeadLetterRateHigh",
        "LevibotModelDrift",
        "LevibotVarNearLimit",
        "LevibotKillSwitchEngaged",
        "LevibotSinkFailing",
    ):
        assert required in alerts


# -- Grafana -----------------------------------------------------------------------------------------------------
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (functions, keywords, labels, strings and durations removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", " ", e)  # numbers
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # grouping labels
    e = re.sub(r"\[[^\]]*\]", "", e)  # range and subquery selectors
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word, rest = m.group(0), e[m.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def test_metric_name_extraction_finds_unknown_names():
    assert metric_names('sum by (sink) (rate(levibot_sink_failures_total{sink="a"}[5m])) > 0') == {
        "levibot_sink_failures_total"
    }
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(foo_bucket[1m]))) / on (x) group_left bar") == {
        "foo_bucket",
        "bar",
    }


def test_dashboards_are_generated_and_fresh():
    res = _run([sys.executable, str(REPO / "deploy" / "grafana" / "build.py"), "--check"])
    assert res.returncode == 0, res.stderr
    uids = {json.loads(p.read_text())["uid"] for p in (REPO / "deploy" / "grafana" / "dashboards").glob("*.json")}
    assert uids == {"levibot-pipeline", "levibot-trading", "levibot-risk", "levibot-models"}
    prov = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/levibot.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/levibot"
    ds = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == grafana_build.DATASOURCE["uid"]


def test_every_panel_query_parses_with_promtool(tmp_path):
    queries = grafana_build.all_queries()
    assert len(queries) > 40
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [
                    {"record": f"levibot:panel_{i}", "expr": expr} for i, (_uid, _title, expr) in enumerate(queries)
                ],
            }
        ]
    }
    f = tmp_path / "panels.rules.yml"
    f.write_text(yaml.safe_dump(rules))
    res = _run([_tool("promtool"), "check", "rules", str(f)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(queries)} rules found" in res.stdout
    # a broken query is caught by the same check
    f.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "bad",
                        "rules": [{"record": "levibot:bad", "expr": "sum by (x) (rate(levibot_orders_total[5m]"}],
                    }
                ]
            }
        )
    )
    assert _run([_tool("promtool"), "check", "rules", str(f)]).returncode != 0


def test_every_panel_uses_only_exported_metrics():
    rules = yaml.safe_load((PROM / "rules" / "levibot.rules.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    known = exposed_series_names() | recorded | {"up", "ALERTS"}
    used: set[str] = set()
    for uid, title, expr in grafana_build.all_queries():
        names = metric_names(expr)
        assert names, f"{uid} / {title}: no metric in {expr}"
        unknown = names - known
        assert not unknown, f"{uid} / {title}: unknown metrics {sorted(unknown)}"
        used |= names
    # the dashboards show most of what the project exports
    families = {n for n in used if n.startswith("levibot_")}
    assert len(families) >= 25


def test_alert_rules_use_only_exported_metrics():
    rules = yaml.safe_load((PROM / "rules" / "levibot.rules.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    known = exposed_series_names() | recorded | {"up"}
    for g in rules["groups"]:
        for r in g["rules"]:
            assert metric_names(r["expr"]) <= known, r


# -- docker compose ----------------------------------------------------------------------------------------------
def _compose() -> list[str]:
    if shutil.which("docker") and _run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    return [_tool("docker-compose")]


#: what an operator's .env holds (docs/deploy.md); test values, each unique so that its way into the config shows
COMPOSE_SECRETS = {
    "LEVIBOT_PG_PASSWORD": "pg-pw-3f9a",
    "LEVIBOT_CLICKHOUSE_PASSWORD": "ch-pw-81c2",
    "LEVIBOT_CONTROL_KEY": "control-key-5d2e-0123456789",
    "LEVIBOT_TELEGRAM_SECRET_TOKEN": "tg-token-77ab",
    "LEVIBOT_ALERT_WEBHOOK_URL": "https://alerts.example.com/levibot",
    "LEVIBOT_ALERT_WEBHOOK_SECRET": "alert-hmac-90fe",
    "GRAFANA_ADMIN_USER": "ops-admin-1",
    "GRAFANA_ADMIN_PASSWORD": "grafana-pw-c4d1",
    "LEVIBOT_API_SESSION_SECRET": "api-session-secret-6b1e-0123456789abcdef",
}


def _compose_env(**values: str) -> dict[str, str]:
    """This environment without any of the compose secrets, plus ``values`` (compose interpolates both)."""
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS}
    env.update(values)
    return env


def _compose_dir(tmp_path: Path, env_file: str | None) -> Path:
    """A copy of the compose file (and what it mounts) in a directory whose .env is ``env_file`` (none if None), so
    that an operator's own .env in the work tree never leaks into the test."""
    d = tmp_path / "stack"
    d.mkdir()
    shutil.copy(REPO / "docker-compose.yml", d)
    (d / "deploy").symlink_to(REPO / "deploy")
    if env_file is not None:
        (d / ".env").write_text(env_file)
    return d


def test_docker_compose_config_parses(tmp_path):
    stack = _compose_dir(tmp_path, "".join(f"{k}={v}\n" for k, v in COMPOSE_SECRETS.items()))
    res = _run(
        [*_compose(), "-f", str(stack / "docker-compose.yml"), "config", "--format", "json"],
        cwd=stack,
        env=_compose_env(),
    )
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    services = cfg["services"]
    for name in (
        "kafka",
        "topics",
        "timescaledb",
        "clickhouse",
        "migrate",
        "flow-0",
        "flow-1",
        "signal-ingest",
        "alert-dispatch",
        "prometheus",
        "grafana",
    ):
        assert name in services, name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["signal-ingest"]["command"] == ["ingest-signals"]
    assert services["alert-dispatch"]["command"] == ["dispatch-alerts"]
    assert services["paper-venue"]["command"] == ["paper-venue", "--from-beginning"]
    for i in (0, 1):
        cmd = services[f"flow-{i}"]["command"]
        assert cmd[cmd.index("--process-id") + 1] == str(i) and cmd[cmd.index("--processes") + 1] == "2"
        assert services[f"flow-{i}"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert any(v["source"] == f"flow-{i}-recovery" for v in services[f"flow-{i}"]["volumes"])
    for name in ("kafka", "timescaledb", "clickhouse", "flow-0", "flow-1", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    # the Prometheus targets are the compose services
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {t.split(":")[0] for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets - {"localhost"} <= set(services)
    # the operator's .env reaches every service that needs it
    env_of = {name: svc.get("environment", {}) for name, svc in services.items()}
    for i in (0, 1):
        assert env_of[f"flow-{i}"]["LEVIBOT_CONTROL_KEY"] == COMPOSE_SECRETS["LEVIBOT_CONTROL_KEY"]
        assert f":{COMPOSE_SECRETS['LEVIBOT_PG_PASSWORD']}@" in env_of[f"flow-{i}"]["LEVIBOT_PG_DSN"]
        assert f":{COMPOSE_SECRETS['LEVIBOT_CLICKHOUSE_PASSWORD']}@" in env_of[f"flow-{i}"]["LEVIBOT_CLICKHOUSE_DSN"]
    assert env_of["timescaledb"]["POSTGRES_PASSWORD"] == COMPOSE_SECRETS["LEVIBOT_PG_PASSWORD"]
    assert env_of["clickhouse"]["CLICKHOUSE_PASSWORD"] == COMPOSE_SECRETS["LEVIBOT_CLICKHOUSE_PASSWORD"]
    assert env_of["signal-ingest"]["LEVIBOT_TELEGRAM_SECRET_TOKEN"] == COMPOSE_SECRETS["LEVIBOT_TELEGRAM_SECRET_TOKEN"]
    for k in ("LEVIBOT_ALERT_WEBHOOK_URL", "LEVIBOT_ALERT_WEBHOOK_SECRET"):
        assert env_of["alert-dispatch"][k] == COMPOSE_SECRETS[k]
    assert env_of["grafana"]["GF_SECURITY_ADMIN_USER"] == COMPOSE_SECRETS["GRAFANA_ADMIN_USER"]
    assert env_of["grafana"]["GF_SECURITY_ADMIN_PASSWORD"] == COMPOSE_SECRETS["GRAFANA_ADMIN_PASSWORD"]
    # a broken file is rejected by the same command
    bad = stack / "broken-compose.yml"  # next to the .env: only the broken condition is wrong
    bad.write_text(
        (REPO / "docker-compose.yml").read_text().replace("condition: service_healthy", "condition: service_happy", 1)
    )
    assert _run([*_compose(), "-f", str(bad), "config", "-q"], cwd=stack, env=_compose_env()).returncode != 0


def test_docker_compose_has_no_working_default_secret(tmp_path):
    """Without an .env (or with one value left empty, as in .env.example) compose refuses, naming the variable."""
    text = (REPO / "docker-compose.yml").read_text()
    for default in ("change-me", "CHANGE-ME", ":-levibot}", ":-admin}", "ADMIN_USER: admin"):
        assert default not in text, default
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert required == set(COMPOSE_SECRETS), required ^ set(COMPOSE_SECRETS)
    # .env.example lists every one of them, each empty
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(COMPOSE_SECRETS) <= set(example) and all(example[k] == "" for k in COMPOSE_SECRETS), example
    stack = _compose_dir(tmp_path, None)
    res = _run([*_compose(), "-f", str(stack / "docker-compose.yml"), "config", "-q"], cwd=stack, env=_compose_env())
    assert res.returncode != 0 and "in .env" in res.stderr, res.stderr
    (stack / ".env").write_text((REPO / ".env.example").read_text())  # copied but not filled in
    res = _run([*_compose(), "-f", str(stack / "docker-compose.yml"), "config", "-q"], cwd=stack, env=_compose_env())
    assert res.returncode != 0 and "in .env" in res.stderr, res.stderr
    for missing in ("LEVIBOT_CONTROL_KEY", "GRAFANA_ADMIN_PASSWORD"):  # all set but one
        values = {k: v for k, v in COMPOSE_SECRETS.items() if k != missing}
        (stack / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        res = _run(
            [*_compose(), "-f", str(stack / "docker-compose.yml"), "config", "-q"], cwd=stack, env=_compose_env()
        )
        assert res.returncode != 0 and f"set {missing} in .env" in res.stderr, (missing, res.stderr)


def test_faust_apps_are_probed_and_scraped_on_the_port_they_serve():
    """A Faust app serves its pages on one port (LEVIBOT_SIGNAL_WEB_PORT / LEVIBOT_ALERT_WEB_PORT, defaults 6066 and
    6067): compose, Prometheus and k8s must all use the port the deployment sets."""
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {
        t.split(":")[0]: t.split(":")[1]
        for job in prom["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    }
    docs = [d for f in sorted((REPO / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    for svc, var, k8s in (
        ("signal-ingest", "LEVIBOT_SIGNAL_WEB_PORT", "levibot-signal-ingest"),
        ("alert-dispatch", "LEVIBOT_ALERT_WEB_PORT", "levibot-alert-dispatch"),
    ):
        port = services[svc]["environment"][var]
        assert targets[svc] == port, (svc, targets[svc], port)
        health = services[svc].get("healthcheck") or services["flow-0"]["healthcheck"]
        assert f"127.0.0.1:{port}/" in " ".join(health["test"]), (svc, health)
        dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == k8s)
        c = dep["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        named = {p_["name"]: str(p_["containerPort"]) for p_ in c["ports"]}
        assert env[var] in named.values(), (k8s, env[var], named)
        probe_port = c["readinessProbe"]["httpGet"]["port"]
        assert named.get(probe_port, str(probe_port)) == env[var], (k8s, probe_port)
        service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == k8s)
        metrics = next(p_ for p_ in service["spec"]["ports"] if p_["name"] == "metrics")
        assert named[metrics["targetPort"]] == env[var], (k8s, metrics)


def test_k8s_secret_ships_no_working_default():
    docs = list(yaml.safe_load_all((REPO / "k8s" / "secret.yaml").read_text()))
    (secret,) = [d for d in docs if d]
    data = secret["stringData"]
    assert {
        "LEVIBOT_CONTROL_KEY",
        "LEVIBOT_TELEGRAM_SECRET_TOKEN",
        "LEVIBOT_ALERT_WEBHOOK_SECRET",
        "LEVIBOT_PG_DSN",
        "LEVIBOT_CLICKHOUSE_DSN",
    } <= set(data)
    assert all(v == "" for v in data.values()), data


# -- Kubernetes --------------------------------------------------------------------------------------------------
def _kubeconform(paths: list[str]) -> subprocess.CompletedProcess:
    schemas = TOOLS / "k8s-schemas"
    if not (schemas / f"v{K8S_VERSION}-standalone-strict").is_dir():
        pytest.fail(f"no Kubernetes schemas in {schemas}: run scripts/install_tools.sh", pytrace=False)
    return _run(
        [
            _tool("kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            K8S_VERSION,
            "-schema-location",
            f"{schemas}/{{{{.NormalizedKubernetesVersion}}}}-standalone{{{{.StrictSuffix}}}}/"
            "{{.ResourceKind}}{{.KindSuffix}}.json",
            "-schema-location",
            str(REPO / "deploy/k8s-schemas") + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json",
            "-skip",
            "Kustomization",
            *paths,
        ]
    )


def test_k8s_manifests_validate_against_kubernetes_schemas(tmp_path):
    res = _kubeconform([str(REPO / "k8s")])
    out = json.loads(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    s = out["summary"]
    assert s["invalid"] == 0 and s["errors"] == 0 and s["valid"] >= 14 and s["skipped"] == 1
    # schema checks bite: an unknown field, a wrong type and a bad PodMonitor field all fail
    for src, old, new in (
        ("flow-statefulset.yaml", "serviceName: levibot-flow", "serviceNme: levibot-flow"),
        ("flow-statefulset.yaml", "replicas: 2", "replicas: two"),
        ("monitoring.yaml", "podMetricsEndpoints:", "podMetricEndpoints:"),
    ):
        bad = tmp_path / src
        text = (REPO / "k8s" / src).read_text()
        assert old in text
        bad.write_text(text.replace(old, new))
        res = _kubeconform([str(bad)])
        assert res.returncode != 0 and json.loads(res.stdout)["summary"]["invalid"] >= 1, (src, new)


def test_k8s_cluster_wiring_is_consistent():
    docs = {}
    for f in (REPO / "k8s").glob("**/*.yaml"):
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs[(d["kind"], d["metadata"]["name"] if "metadata" in d else f.name)] = d
    kust = yaml.safe_load((REPO / "k8s" / "kustomization.yaml").read_text())
    # every manifest (the API's in its own folder) but the Secret's empty template (the operator creates the real
    # one; docs/deploy.md)
    manifests = {str(f.relative_to(REPO / "k8s")) for f in (REPO / "k8s").glob("**/*.yaml")}
    assert set(kust["resources"]) == manifests - {"kustomization.yaml", "secret.yaml"}
    sts = docs[("StatefulSet", "levibot-flow")]
    cluster = docs[("ConfigMap", "levibot-flow-cluster")]["data"]
    replicas = sts["spec"]["replicas"]
    addrs = cluster["ADDRESSES"].split(";")
    assert int(cluster["PROCESSES"]) == replicas == len(addrs)
    assert addrs == [f"levibot-flow-{i}.levibot-flow.levibot.svc.cluster.local:2101" for i in range(replicas)]
    assert docs[("Service", "levibot-flow")]["spec"]["clusterIP"] == "None"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "recovery"
    assert "--recovery-dir" in sts["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert ("PodMonitor", "levibot-flow") in docs and ("ServiceMonitor", "levibot-apps") in docs
    for name, cmd in (("levibot-signal-ingest", "ingest-signals"), ("levibot-alert-dispatch", "dispatch-alerts")):
        assert docs[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["args"] == [cmd]
    assert docs[("Deployment", "levibot-paper-venue")]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "paper-venue",
        "--from-beginning",
    ]


# -- a real Prometheus scraping the running flow -----------------------------------------------------------------
# tests/integration/flows/test_alerts_live.py: the real `levibot run --live` scraped by the real Prometheus server with the project's
# rules (every rule fired from an induced condition; ticks in and orders as scraped equal what the topics hold).


# -- bind addresses: 127.0.0.1 by default, all interfaces only where the deployment says so ------------------------
def test_servers_bind_all_interfaces_only_where_a_deployment_says_so():
    from flows.settings import Settings

    assert Settings.from_env({}).metrics_host == "127.0.0.1"
    assert "0.0.0.0" not in (REPO / "Dockerfile").read_text()  # the image alone stays loopback-only
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    ours = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("${LEVIBOT_IMAGE")}
    assert {"flow-0", "flow-1", "signal-ingest", "alert-dispatch"} <= set(ours)
    for name, svc in ours.items():
        assert svc["environment"]["LEVIBOT_METRICS_HOST"] == "0.0.0.0", name
    assert services["signal-ingest"]["environment"]["LEVIBOT_SIGNAL_WEB_HOST"] == "0.0.0.0"
    assert services["alert-dispatch"]["environment"]["LEVIBOT_ALERT_WEB_HOST"] == "0.0.0.0"

    docs = [d for f in sorted((REPO / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "levibot-config")
    assert config["data"]["LEVIBOT_METRICS_HOST"] == "0.0.0.0"
    web_host = {"levibot-signal-ingest": "LEVIBOT_SIGNAL_WEB_HOST", "levibot-alert-dispatch": "LEVIBOT_ALERT_WEB_HOST"}
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    assert {d["metadata"]["name"] for d in workloads} >= set(web_host) | {"levibot-flow"}
    for d in workloads:
        for c in d["spec"]["template"]["spec"]["containers"]:
            if not c["image"].startswith("levibot"):
                continue
            assert {"configMapRef": {"name": "levibot-config"}} in c.get("envFrom", []), d["metadata"]["name"]
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if d["metadata"]["name"] in web_host:
                assert env[web_host[d["metadata"]["name"]]] == "0.0.0.0", d["metadata"]["name"]
