"""Schemathesis against the served OpenAPI document: no input may produce a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from govlab.service.api import create_app
from tests.api_helpers import token

ADMIN = {"Authorization": f"Bearer {token('admin', ttl_s=3600)}"}


def test_no_input_makes_the_server_fail(writable, redis_server) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(writable, redis_server.url))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/search",
        "/seed",
        "/progress",
        "/policies/{dataset}",
    }
    statuses: set[int] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            for headers in (ADMIN, None):
                response = case.call(headers=headers)
                statuses.add(response.status_code)
                assert response.status_code < 500, (case.method, case.path, response.text[:200])
                assert "Traceback" not in response.text

        fuzz()
    assert {200, 401, 422} <= statuses  # the fuzzing reached past validation and auth
