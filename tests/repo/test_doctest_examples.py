"""The modules whose examples are part of their documentation keep having examples.

The examples themselves run with the suite: pytest's ``--doctest-modules`` over operators/, schemas/, connectors/
and flows/ (``[tool.pytest.ini_options]`` in pyproject.toml), so a wrong example fails ``make test`` and
``make test-fast``. What that cannot see is a module whose examples were deleted: this test counts them (without
running them again) in the modules that had a doctest wrapper of their own before, at least the number given.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import operators.risk
from tests.support import REPO

#: module -> the fewest examples it must keep
DOCUMENTED: dict[str, int] = {
    **dict.fromkeys(
        ["operators.risk"] + [f"operators.risk.{m.name}" for m in pkgutil.iter_modules(operators.risk.__path__)], 1
    ),
    **{
        f"operators.api.{m}": 1
        for m in ("access", "keys", "query", "audit", "commands", "analytics", "models", "sessions", "telegram")
    },
    **dict.fromkeys(
        ("operators.control", "operators.control.signing", "operators.control.state", "operators.control.audit"), 1
    ),
    **{f"operators.execution.{m}": 1 for m in ("slicing", "broker", "venue", "orders", "paper_venue")},
    **{f"operators.account.{m}": 1 for m in ("ledger", "returns", "attribution")},
    **{
        f"operators.strategies.{m}": 1
        for m in ("api", "ml_score", "mean_reversion", "breakout", "telegram", "trend", "costs", "discipline")
    },
    **{f"operators.report.{m}": 1 for m in ("builder", "model", "trades")},
    "operators.performance": 21,
    "operators.sweep": 1,
    "operators.sweep.rules": 5,
    "operators.sweep.simulation": 2,
    "operators.sweep.grid": 3,
    "operators.orchestrator": 1,
    "operators.alerts": 1,
    "operators.signals.lifecycle_state": 1,
    **{
        f"operators.signals{m}": 1
        for m in ("", ".results", ".numbers", ".text", ".symbols", ".fields", ".lifecycle", ".validate", ".parser")
        + (".convert", ".accuracy")
    },
    "connectors.metrics": 1,
    "connectors.metrics.catalogue": 1,
    "connectors.metrics.flow": 1,
    "connectors.metrics.server": 1,
    "connectors.logging": 1,
    "connectors.report": 1,
    "connectors.webhooks": 1,
    "connectors.telegram": 1,
}


def examples(module_name: str) -> int:
    mod = importlib.import_module(module_name)
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(mod) if t.filename == mod.__file__)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_module_keeps_its_examples(name):
    assert examples(name) >= DOCUMENTED[name], f"{name} lost its doctest examples"


def test_pytest_collects_the_package_doctests():
    """The configuration that runs the examples is in place (and the packages are on the test path)."""
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in cfg["addopts"].split()
    assert {"operators", "schemas", "connectors", "flows"} <= set(cfg["testpaths"])
    assert cfg["timeout"] > 0
