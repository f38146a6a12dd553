"""schemathesis against the server's own OpenAPI document: no 5xx, no response that violates
the documented schemas or status codes, over more than 2,000 generated requests to every
operation from every tier (no token, registered, controlled and participant tokens).

The operations are driven with hypothesis directly (``APIOperation.as_strategy``): the
schemathesis pytest plugin does not run under this pytest (9.x)."""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from test_server_support import server

# examples per operation and tier (fewer when hypothesis runs out of inputs): > 2,000 requests
EXAMPLES = {"ctl": 60, "reg": 45, "me": 35, None: 35}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.mark.slow
def test_generated_requests():
    srv = server()
    api = schemathesis.openapi.from_url(srv.url + "/openapi.json")
    calls: Counter[tuple[str, str | None]] = Counter()
    errors: list[tuple[str, str | None, int, str]] = []
    operations = []
    with requests.Session() as session:
        for result in api.get_all_operations():
            operation = result.ok()
            operations.append(operation.label)
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
                    response = case.call(session=session, headers=headers, timeout=60)  # noqa: B023 - called at once
                    calls[(operation.label, token)] += 1  # noqa: B023
                    if response.status_code >= 500:
                        errors.append((operation.label, token, response.status_code, response.request.url))  # noqa: B023
                    case.validate_response(response, checks=CHECKS, headers=headers)  # noqa: B023

                run()
    assert not errors, f"{len(errors)} responses with status >= 500: {errors[:10]}"
    assert sum(calls.values()) >= 2000, sum(calls.values())
    missing = [(op, token) for op in operations for token in EXAMPLES if not calls[(op, token)]]
    assert not missing, f"operations and tiers never called: {missing}"
    assert {op.split(" ", 1)[1] for op in operations} >= {
        "/api/v1/variants/{variant}",
        "/api/v1/frequencies",
        "/api/v1/association",
        "/api/v1/phewas",
        "/api/v1/carrier-table",
        "/api/v1/cohorts",
        "/api/v1/carriers",
        "/api/v1/genotypes",
        "/api/v1/export.vcf",
        "/api/v1/me",
        "/beacon/v2/g_variants",
    }
