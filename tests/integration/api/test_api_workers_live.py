"""`levibot api --workers 2` on the real PostgreSQL and Redis: two uvicorn worker processes count one key's quota
together (Redis), every worker's key cache drops a key revoked by the CLI, and the command refuses several workers
without shared rate limits (tests/unit/operators/api/test_api.py)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from operators.api.keys import make_token, parse_token
from tests.support import REPO
from tests.support.api import FAST, Replica, clear_of_window_edge
from tests.support.flowproc import free_port

pytestmark = [pytest.mark.postgres]


class Workers(Replica):
    """A `levibot api --workers 2` service."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        import httpx
        import psycopg

        from tests.support import wait_for

        self.port = free_port()
        self.log = log
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "levibot"),
                "api",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--workers",
                "2",
            ],
            cwd=REPO,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

        def listeners() -> int:
            """Connections to the test's database that LISTEN for key changes (one per worker once it is up)."""
            with psycopg.connect(env["LEVIBOT_PG_DSN"]) as conn:
                return conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
                ).fetchone()[0]

        # both workers up: two children, /healthz answers, and each has its key-change listener in place
        try:
            wait_for(
                lambda: (
                    len(self.children()) == 2
                    and httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
                    and listeners() == 2
                ),
                90,
                f"both workers on {self.port}",
                procs=[self.proc],
                retry_on=(httpx.HTTPError, OSError),
                interval_s=0.3,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-2000:]}") from None

    def children(self) -> list[int]:
        kids: list[int] = []
        for t in Path(f"/proc/{self.proc.pid}/task").iterdir():
            kids += [int(k) for k in (t / "children").read_text().split()]
        return [k for k in kids if "spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")]


def test_two_workers_share_the_quota_and_hear_revocations(pg_dsn, redis_url, tmp_path):
    migrate(pg_dsn)
    db = ApiDatabase(pg_dsn, max_size=1).open()
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, sec = parse_token(tok)
    db.create_key(
        key_id=kid,
        name="workers",
        secret_hash=FAST.hash(sec),
        scopes=["read"],
        tier="pro",
        accounts=["default"],
        rate="10/hour",
        created_by="pytest",
        expires_at=None,
    )
    tok2 = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid2, sec2 = parse_token(tok2)
    db.create_key(
        key_id=kid2,
        name="workers-2",
        secret_hash=FAST.hash(sec2),
        scopes=["read"],
        tier="pro",
        accounts=["default"],
        rate="1000/minute",
        created_by="pytest",
        expires_at=None,
    )
    db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_API_")}
    env.update(
        LEVIBOT_PG_DSN=pg_dsn,
        LEVIBOT_API_RATE_STORAGE=redis_url,
        LEVIBOT_VAR=str(tmp_path / "var"),
        LEVIBOT_KAFKA_BOOTSTRAP="127.0.0.1:1",
        LEVIBOT_API_AUTH_RATE="1000/minute",
    )
    w = Workers(env, tmp_path / "workers.log")
    try:
        assert len(w.children()) == 2
        # each request on a new connection: the kernel spreads them over both workers; one quota for the key
        clear_of_window_edge()
        codes = [w.get("/v1/whoami", tok) for _ in range(10)]
        assert [c.status_code for c in codes] == [200] * 10, [c.text for c in codes]
        assert [int(c.headers["X-RateLimit-Remaining"]) for c in codes] == list(range(9, -1, -1))
        assert [w.get("/v1/whoami", tok).status_code for _ in range(3)] == [429] * 3
        # the second key, cached by whichever workers served it, revoked by the CLI: refused by all of them
        assert all(w.get("/v1/positions", tok2).status_code == 200 for _ in range(8))
        out = subprocess.run(
            [sys.executable, "-c", "from flows.cli_api import main; main()", "revoke", kid2],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        got = [w.get("/v1/positions", tok2) for _ in range(8)]
        assert [(r.status_code, r.json()["error"]) for r in got] == [(401, "revoked_key")] * 8
    finally:
        w.stop()
