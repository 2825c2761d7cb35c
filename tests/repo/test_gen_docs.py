"""Generated reference docs (scripts/gen_docs.py) are up to date and complete."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

from connectors.metrics import METRIC_SPECS
from flows.settings import Settings
from schemas.topics import TOPICS
from tests.support import REPO

sys.path.insert(0, str(REPO / "scripts"))
import gen_docs


def test_generated_docs_are_fresh():
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_stale_check_can_fail(tmp_path, monkeypatch):
    target = tmp_path / "configuration.md"
    target.write_text(gen_docs.configuration_md().replace("LEVIBOT_METRICS_PORT", "LEVIBOT_METRICS_PROT"))
    monkeypatch.setattr(gen_docs, "outputs", lambda: {target: gen_docs.configuration_md()})
    assert gen_docs.main(["--check"]) == 1
    assert gen_docs.main([]) == 0 and gen_docs.main(["--check"]) == 0


def test_docs_cover_every_setting_topic_and_metric():
    conf = (REPO / "docs" / "configuration.md").read_text()
    for f in fields(Settings):
        assert f"`{f.metadata['env']}`" in conf
    topics = (REPO / "docs" / "topics.md").read_text()
    for name, spec in TOPICS.items():
        assert f"| `{name}` |" in topics and f"### {spec.event_type.__name__}" in topics
    obs = (REPO / "docs" / "observability.md").read_text()
    for s in METRIC_SPECS:
        assert f"| `{s.name}` |" in obs
