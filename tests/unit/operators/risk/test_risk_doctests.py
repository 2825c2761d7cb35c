"""operators.risk stays pure: it imports without SciPy, Bytewax, Kafka or database clients. (Its doctest examples
run with the suite through --doctest-modules; tests/repo/test_doctest_examples.py checks that every module keeps some.)"""

from __future__ import annotations


def test_operators_risk_needs_no_scipy_and_no_io():
    """operators/ is pure: the risk package must import without SciPy, Bytewax, Kafka or database clients."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['scipy'] = None; "
        "import operators.risk, operators.risk.backtest, operators.risk.gate; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'bytewax', 'confluent_kafka', 'psycopg', 'clickhouse_connect', 'chdb', 'prometheus_client')"
        " and sys.modules[m] is not None]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
