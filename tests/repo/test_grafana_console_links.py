"""The provisioned Grafana dashboards link to the operator console (issue 16, item 5): every dashboard carries a
link to a real console page through the hidden ``console`` variable, whose default is the console of ``levibot api``
on its default port and which ``deploy/grafana/build.py --console-url URL --out DIR`` sets per deployment."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from urllib.parse import urlsplit

from flows.api.console import PAGES
from flows.api.settings import ApiSettings
from tests.support import REPO

BUILD = REPO / "deploy" / "grafana" / "build.py"
spec = importlib.util.spec_from_file_location("grafana_build_links", BUILD)
grafana_build = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = grafana_build  # dataclasses look their module up
spec.loader.exec_module(grafana_build)


def _console_link(dash: dict) -> dict:
    links = [lk for lk in dash["links"] if lk["type"] == "link"]
    assert len(links) == 1, dash["uid"]
    return links[0]


def _console_var(dash: dict) -> dict:
    got = [v for v in dash["templating"]["list"] if v["name"] == "console"]
    assert len(got) == 1, dash["uid"]
    return got[0]


def test_every_provisioned_dashboard_links_to_a_console_page():
    default = grafana_build.DEFAULT_CONSOLE_URL
    # the default is the console of `levibot api` with its default host and port
    a = ApiSettings()
    assert default == f"http://{a.host}:{a.port}/console"
    paths = {path for _, path, _ in PAGES}
    pages = {}
    for f in sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(f.read_text())
        var, link = _console_var(dash), _console_link(dash)
        assert var["type"] == "textbox" and var["hide"] == 2 and var["query"] == default
        assert var["current"]["value"] == default
        assert link["url"].startswith("${console}") and link["targetBlank"] is True
        resolved = link["url"].replace("${console}", var["current"]["value"])
        assert urlsplit(resolved).path in paths, resolved  # a page the console really serves
        pages[dash["uid"]] = urlsplit(resolved).path
    assert pages == {
        "levibot-pipeline": "/console",
        "levibot-trading": "/console/positions",
        "levibot-risk": "/console/risk",
        "levibot-models": "/console/models",
    }


def test_console_url_is_configurable_per_deployment(tmp_path):
    url = "https://desk.example.org/levibot/console/"
    out = tmp_path / "dashboards"
    res = subprocess.run(
        [sys.executable, str(BUILD), "--console-url", url, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    files = sorted(out.glob("*.json"))
    assert len(files) == 4
    for f in files:
        dash = json.loads(f.read_text())
        assert _console_var(dash)["query"] == url.rstrip("/")
        checked_in = json.loads((REPO / "deploy" / "grafana" / "dashboards" / f.name).read_text())
        assert dash["panels"] == checked_in["panels"]  # only the address differs
    # the checked-in dashboards stay on the default; a bad URL is refused
    bad = subprocess.run(
        [sys.executable, str(BUILD), "--console-url", url], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "--out" in bad.stderr
    bad = subprocess.run(
        [sys.executable, str(BUILD), "--console-url", "javascript:alert(1)", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert (
        subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, timeout=60, check=False).returncode
        == 0
    )
