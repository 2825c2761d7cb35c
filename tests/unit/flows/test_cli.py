"""Every command of the `levibot` CLI answers --help, and bad input gets a clear error, not a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
COMMANDS = [
    [],
    ["run"],
    ["backtest"],
    ["replay"],
    ["topics"],
    ["topics", "create"],
    ["topics", "list"],
    ["db"],
    ["db", "migrate"],
    ["recovery-init"],
    ["ingest-signals"],
    ["dispatch-alerts"],
    ["replay-telegram"],
    ["sweep"],
    ["train"],
    ["evaluate-models"],
    ["features"],
    ["features", "build"],
    ["retrain"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "levibot")
def test_help(cmd):
    res = runner.invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_topics_list_shows_the_registry():
    res = runner.invoke(app, ["topics", "list"])
    assert res.exit_code == 0
    for name in ("ticks", "signals", "orders", "fills", "dlq", "risk.decisions"):
        assert name in res.output


def test_missing_file_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["backtest", str(tmp_path / "nope.csv")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEVIBOT_CONSUME_BATCH", "lots")
    res = runner.invoke(app, ["backtest", "--max-bars", "10"])
    assert res.exit_code == 2 and "LEVIBOT_CONSUME_BATCH must be an integer" in res.output
