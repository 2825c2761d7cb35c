"""A property-based fuzz of the operator API from its OpenAPI schema (schemathesis): at least 1,000 generated
requests over every operation, against the app on the real PostgreSQL and Kafka, with an enterprise admin key. No
answer may be a 500, and every answer must conform to the schema (status code documented, body valid)."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from connectors.ratelimit import RateLimiter
from flows.api.app import create_app
from flows.api.context import ApiContext
from flows.api.settings import ApiSettings
from flows.settings import Settings
from operators.api.keys import make_token, parse_token
from tests.support.api import FAST

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
PER_OPERATION = 80  # 27 operations; the ones without parameters run once (hypothesis sees a single example)


def test_fuzz_from_the_openapi_schema(kafka_bootstrap, pg_dsn, topic_prefix):
    import schemathesis
    from schemathesis.specs.openapi.checks import (
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    from connectors.kafka.admin import ensure_topics

    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    s = Settings.from_env(
        {
            "LEVIBOT_PG_DSN": pg_dsn,
            "LEVIBOT_CONTROL_KEY": "fuzz-control-key-0123456789abcdef",
            "LEVIBOT_TOPIC_PREFIX": topic_prefix,
            "LEVIBOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        }
    )
    ctx = ApiContext(
        settings=s, api=ApiSettings(), db=ApiDatabase(pg_dsn, max_size=4), limiter=RateLimiter(), hasher=FAST
    )
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    app = create_app(ctx)
    with TestClient(app):  # runs the lifespan: opens the pool
        ctx.db.create_key(
            key_id=parse_token(tok)[0],
            name="fuzz",
            secret_hash=FAST.hash(parse_token(tok)[1]),
            scopes=["admin"],
            tier="enterprise",
            accounts=["*"],
            rate="1000000/minute",
            created_by="pytest",
            expires_at=None,
        )
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ops = [r.ok() for r in schema.get_all_operations()]
        assert len(ops) == 27
        counts: dict[str, int] = {}
        checks = [status_code_conformance, response_schema_conformance, negative_data_rejection]
        for op in ops:

            @settings(
                max_examples=PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=op.as_strategy())
            def run(case) -> None:
                counts[op.label] = counts.get(op.label, 0) + 1  # noqa: B023 - called within this iteration
                resp = case.call(headers={"X-API-Key": tok})
                assert resp.status_code < 500, (op.label, resp.status_code, resp.text[:300])  # noqa: B023 - called within this iteration
                case.validate_response(resp, checks=checks)

            run()
    total = sum(counts.values())
    assert total >= 1000, counts
    assert ctx.audit_failures == 0
