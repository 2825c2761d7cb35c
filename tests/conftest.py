"""Shared fixtures: real services, isolated per test run.

Service fixtures never skip: when a service is missing they fail with the command that starts it.
Under ``make test`` (LEVIBOT_REQUIRE_SERVICES=1) any skipped test is turned into a failure, so a CI
run can never pass with its integration tests silently skipped.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from flows.settings import Settings

# Under `make test` the property tests draw the same examples every run (derandomised): CI must not turn red
# because one run happened to draw a new example. Exploration with fresh examples: run pytest directly.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("LEVIBOT_REQUIRE_SERVICES") == "1":
    hypothesis_settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("LEVIBOT_REQUIRE_SERVICES") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under LEVIBOT_REQUIRE_SERVICES=1 (not allowed in CI): {report.longrepr}"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings) -> str:
    from connectors.kafka.admin import wait_ready

    try:
        wait_ready(settings.kafka_bootstrap, timeout_s=20)
    except RuntimeError as exc:
        pytest.fail(f"{exc}\nRun `make services-up` (or `make test`, which does it).", pytrace=False)
    return settings.kafka_bootstrap


@pytest.fixture
def topic_prefix(kafka_bootstrap: str):
    """A unique topic prefix per test; the test's topics are deleted afterwards."""
    from confluent_kafka.admin import AdminClient

    from connectors.kafka.admin import delete_topics

    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    existing = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    delete_topics(kafka_bootstrap, [t for t in existing if t.startswith(prefix)])


@pytest.fixture(scope="session")
def pg_admin_dsn(settings: Settings) -> str:
    import psycopg

    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {settings.pg_dsn} is not reachable: {exc}\nRun `make services-up`.", pytrace=False)
    return settings.pg_dsn


@pytest.fixture
def pg_dsn(pg_admin_dsn: str):
    """DSN of a fresh, empty database for one test (dropped afterwards)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"levibot_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(pg_admin_dsn)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory) -> Path:
    """One embedded ClickHouse per test process (chDB allows one data path per process)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def ch_database(chdb_path: Path):
    """A client on the session's embedded ClickHouse and a fresh database name for one test."""
    from connectors.clickhouse.client import connect

    client = connect(f"chdb://{chdb_path}")
    name = f"t_{uuid.uuid4().hex[:10]}"
    client.command(f"CREATE DATABASE {name}")
    yield client, name
    client.command(f"DROP DATABASE IF EXISTS {name}")


#: The slowest test modules (measured, see docs/performance.md "Test suite time"), longest first. Under `make test` the
#: suite runs on several pytest-xdist workers, one module per worker at a time (``--dist loadfile``, in collection
#: order): starting the long ones first keeps one of them from being the last thing still running at the end.
SLOWEST_FIRST = (
    "test_alerts_live.py",
    "test_flow_recovery.py",
    "test_faults.py",
    "test_replay_e2e.py",
    "test_paper_venue_live.py",
    "test_control_live.py",
    "test_api_console_browser.py",
    "test_flow_scaleout.py",
    "test_faults_clickhouse.py",
    "test_schemas.py",
    "test_api_fuzz.py",
    "test_strategies.py",
    "test_safe_defaults.py",
    "test_remote_cancels_live.py",
    "test_fuzz_live.py",
    "test_api_flow_live.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
