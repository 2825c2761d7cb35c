"""Fixtures of the operator API tests."""

from __future__ import annotations

import os

import pytest
import redis


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = (
        os.environ.get("LEVIBOT_TEST_REDIS_URL")
        or f"redis://127.0.0.1:{os.environ.get('LEVIBOT_REDIS_PORT', '56379')}/0"
    )
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable: {exc}\nRun `scripts/services.sh up redis`.", pytrace=False)
    return url
