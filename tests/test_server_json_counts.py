"""JSON schema ``genoquery.api/1``: every count the server answers is an integer or null.

Every JSON endpoint of the OpenAPI document is asked, by a public, a registered and a
participant token, over rare and common variants, cohorts and ``by`` breakdowns (the pages
hold withheld cells). In each answer a count (AC, AN, genotype and test counts, cohort sizes,
the sample count) is a JSON integer or null, never a string and never 1..20; a null count is
named in the ``suppressed`` list beside it; ``/api/v1`` answers name their schema. Beacon
answers count variants, not people: their counts are integers.
"""

from __future__ import annotations

import json

import pytest

import genoquery
from genoquery.server.disclosure import STAT_CELLS, TEST_COUNTS
from test_server_support import server

LIMIT = 20
COUNTS = set(STAT_CELLS) | TEST_COUNTS | {"cohort_size", "samples", "size", "ancestry_ac", "ancestry_an"}
NOT_GIVEN = {"size"}  # a cohort listing gives no sizes below the controlled tier: null, not withheld
LINEAR_ONLY_NULL = {"n_cases", "n_controls", "case_ac"}  # a linear model's test row has no cases
FEMALE = "sex_at_birth = 'Female'"


@pytest.fixture(scope="module")
def srv():
    srv = server()
    srv.new_token("registered", "json-counts-reg")
    return srv


@pytest.fixture(scope="module")
def keys(srv) -> dict[str, str]:
    """A rare (AC 1..20) and a common variant of chr20, and a rare one of chrX."""
    with genoquery.open(srv.store) as store:
        rows = store.variants().to_pylist()
    pick = {
        "rare": lambda r: r["contig"] == "chr20" and 1 <= r["ac"] <= LIMIT,
        "common": lambda r: r["contig"] == "chr20" and r["ac"] > 40,
        "rare_x": lambda r: r["contig"] == "chrX" and 1 <= r["ac"] <= LIMIT,
    }
    return {name: next(r["variant_key"] for r in rows if keep(r)) for name, keep in pick.items()}


def requests(keys: dict[str, str]) -> list[tuple[str | None, str, str, dict]]:
    """(token, method, path, params or body) of every JSON answer below the controlled tier."""
    public = [
        ("GET", "/api/v1/health", {}),
        ("GET", "/api/v1/info", {}),
        ("GET", "/api/v1/suggest", {"q": "rs"}),
        *[("GET", f"/api/v1/variants/{k}", {}) for k in keys.values()],
        *[("GET", f"/api/v1/variants/{k}", {"by": by}) for k in keys.values() for by in ("ancestry", "sex_at_birth")],
        ("GET", "/api/v1/variants", {"region": "chr20:1-50000", "limit": 1000}),
        ("GET", "/api/v1/variants", {"region": "chrX", "limit": 1000, "by": "sex_at_birth"}),
        ("GET", "/api/v1/variants", {"region": "chr20:1-50000", "af_max": 0.05, "limit": 1000}),
        ("GET", "/api/v1/frequencies", {"region": "chr20:1-50000", "limit": 1000, "by": "ancestry"}),
        ("GET", "/beacon/v2/info", {}),
        ("GET", "/beacon/v2/map", {}),
        ("GET", "/beacon/v2/configuration", {}),
        (
            "GET",
            "/beacon/v2/g_variants",
            {"referenceName": "chr20", "start": 0, "end": 50000, "requestedGranularity": "count"},
        ),
    ]
    registered = [
        ("GET", "/api/v1/person-columns", {}),
        ("POST", "/api/v1/cohorts", {"name": "women", "filter": FEMALE}),
        ("GET", "/api/v1/cohorts", {}),
        ("GET", "/api/v1/frequencies", {"region": "chr20:1-50000", "cohort": FEMALE, "limit": 1000}),
        ("GET", "/api/v1/frequencies", {"region": "chrX", "cohort": "women", "by": "ancestry", "limit": 1000}),
        ("GET", "/api/v1/association", {"phenotype": "ldl_mg_dl", "region": "chr20:1-20000", "limit": 1000}),
        ("GET", "/api/v1/association", {"phenotype": "E11", "region": "chr20:1-20000", "limit": 1000}),
        ("GET", "/api/v1/association.ndjson", {"phenotype": "E11", "region": "chr20:1-20000"}),
        ("GET", "/api/v1/phewas", {"variant": keys["common"], "phenotypes": "ldl_mg_dl,E11"}),
        ("GET", "/api/v1/carrier-table", {"region": "chr20:1-20000", "condition": "E11"}),
    ]
    participant = [("GET", "/api/v1/me", {"limit": 1000}), ("GET", "/api/v1/participants/S000001", {"limit": 1000})]
    return (
        [(None, *r) for r in public]
        + [("json-counts-reg", *r) for r in registered + public]
        + [("me", *r) for r in participant]
    )


def check_counts(node, path: str, versioned: bool) -> int:
    """Assert the rule on every count below ``node``; the number of withheld counts seen."""
    withheld = 0
    if isinstance(node, list):
        return sum(check_counts(item, path, versioned) for item in node)
    if not isinstance(node, dict):
        assert not (isinstance(node, str) and node.startswith("<=")), (path, node)
        return 0
    for name, value in node.items():
        if name in COUNTS:
            assert value is None or type(value) is int, (path, name, value)
            assert value is None or not 1 <= value <= LIMIT, (path, name, value)
            no_value = name in NOT_GIVEN or (node.get("model") == "linear" and name in LINEAR_ONLY_NULL)
            if value is None and not no_value and versioned:
                assert name in node.get("suppressed", ()), (path, name, node)
                withheld += 1
        withheld += check_counts(value, path, versioned)
    return withheld


def test_every_count_is_an_integer_or_null_and_never_1_to_20(srv, keys):
    asked, withheld = set(), 0
    for token, method, path, params in requests(keys):
        with srv.client(token) as c:
            r = c.post(path, json=params) if method == "POST" else c.get(path, params=params)
        assert r.status_code in (200, 201), (token, path, r.text)
        if path.endswith(".ndjson"):  # a header line, the rows, a total
            header, *rows, end = (json.loads(line) for line in r.text.splitlines())
            assert set(end) == {"total"}, end
            body = dict(header, items=rows)
        else:
            body = r.json()
        versioned = path.startswith("/api/v1/")
        if versioned:
            assert body["schema"] == "genoquery.api/1", (path, body)
        else:  # Beacon's counts are of variants: integers, whatever their size
            for name in ("numTotalResults", "resultsCount"):
                assert type(body.get("responseSummary", {}).get(name, 0)) is int, (path, body)
        withheld += check_counts(body, path, versioned)
        asked.add((method, path.replace(keys["rare"], "{variant}").replace("S000001", "{sample_id}")))
    assert withheld > 50, withheld  # the pages did hold withheld counts
    with srv.client() as c:
        document = c.get("/openapi.json").json()
    individual = {"/api/v1/carriers", "/api/v1/genotypes", "/api/v1/export.vcf"}  # controlled tier only
    routes = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith(("/api/v1/", "/beacon/v2/")) and path not in individual
    }
    assert routes <= asked, routes - asked


def test_openapi_types_every_count_as_integer_or_null(srv):
    """The OpenAPI document states the rule: no count property admits a string."""
    with srv.client() as c:
        schemas = c.get("/openapi.json").json()["components"]["schemas"]
    seen = 0
    for model, schema in schemas.items():
        if model.endswith("In"):  # a request body (CohortIn's samples are IDs)
            continue
        for name, prop in schema.get("properties", {}).items():
            if name in COUNTS:
                types = {p.get("type") for p in prop.get("anyOf", [prop])}
                assert types <= {"integer", "null"}, (model, name, prop)
                seen += 1
        if "schema" in schema.get("properties", {}):
            assert schema["properties"]["schema"]["const"] == "genoquery.api/1", model
    assert seen >= 10, seen
