"""Fixtures of the real services, isolated per test run: Kafka topics under a prefix of their own, a fresh PostgreSQL
database, a database on the process's embedded ClickHouse.

They never skip: when a service is missing they fail with the command that starts it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flows.settings import Settings


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
