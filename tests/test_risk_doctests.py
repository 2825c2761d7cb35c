"""Run the doctest examples in every operators.risk module (River-style examples must stay true)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import operators.risk as risk

MODULES = ["operators.risk"] + [f"operators.risk.{m.name}" for m in pkgutil.iter_modules(risk.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    assert res.failed == 0, f"{res.failed} doctest failure(s) in {name}"
    assert res.attempted > 0, f"{name} has no doctest examples"


def test_operators_risk_needs_no_scipy_and_no_io():
    """operators/ is pure: the risk package must import without SciPy, Bytewax, Kafka or database clients."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['scipy'] = None; "
            "import operators.risk, operators.risk.backtest, operators.risk.gate; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('scipy', 'bytewax', 'confluent_kafka', 'psycopg', 'clickhouse_connect', 'chdb', 'prometheus_client')"
            " and sys.modules[m] is not None]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
