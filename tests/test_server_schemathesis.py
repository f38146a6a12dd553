"""schemathesis against the server's own OpenAPI document: no 5xx, no response that violates
the documented schemas or status codes, over more than a thousand generated requests (with a
controlled token, so every endpoint is reachable, and without one).

The operations are driven with hypothesis directly (``APIOperation.as_strategy``): the
schemathesis pytest plugin does not run under this pytest (9.x)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from test_server_support import server

EXAMPLES = {"ctl": 60, None: 30}  # per operation (fewer when hypothesis runs out of inputs): > 1,000 requests
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.mark.slow
def test_generated_requests():
    srv = server()
    api = schemathesis.openapi.from_url(srv.url + "/openapi.json")
    calls = 0
    for result in api.get_all_operations():
        operation = result.ok()
        for token, examples in EXAMPLES.items():
            headers = {"Authorization": f"Bearer {srv.tokens[token]}"} if token else {}

            @given(case=operation.as_strategy())
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                nonlocal calls
                case.call_and_validate(headers=headers, timeout=60, checks=CHECKS)  # noqa: B023 - called at once, in this iteration
                calls += 1

            run()
    assert calls >= 1000
