"""One way to get a ClickHouse client, whatever the backend.

``chdb:///abs/path`` opens the real ClickHouse engine in-process through clickhouse-connect's chDB
backend (one data path per process); ``http(s)://user:password@host:8123/db`` talks to a server.
The rest of the code sees the same ``clickhouse_connect`` client API either way.
"""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client


def connect(dsn: str) -> Client:
    """Open a client; for ``chdb://`` the data directory is created when missing."""
    if dsn.startswith("chdb://"):
        path = dsn[len("chdb://") :]
        if path.startswith("/"):
            Path(path).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:  # the driver raises several types; one clear message is what a user needs
        raise RuntimeError(f"cannot open ClickHouse at {dsn!r}: {exc}") from exc


def is_embedded(client: Client) -> bool:
    """True when the client runs the engine in-process (chDB)."""
    return type(client).__name__ == "ChdbClient"
