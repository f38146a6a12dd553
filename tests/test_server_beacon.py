"""GA4GH Beacon v2 endpoints against the official JSON schemas (tests/data/beacon-v2, CC0).

Every response, errors included, is validated with jsonschema (draft 2020-12), resolving
``$ref`` across the copied schema files through a ``referencing`` registry. Answers are
compared with ``Store.lookup`` on the same store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import genoquery
from test_server_support import server

SCHEMAS = Path(__file__).parent / "data" / "beacon-v2"
RESPONSES = SCHEMAS / "framework" / "json" / "responses"


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.rglob("*.json"):
        resources.append(
            (
                path.absolute().as_uri(),
                Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012),
            )
        )
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validate(document: dict, schema_file: str) -> None:
    uri = (RESPONSES / schema_file).absolute().as_uri()
    Draft202012Validator({"$ref": uri}, registry=REGISTRY).validate(document)


@pytest.fixture(scope="module")
def srv():
    return server()


def get(srv, path, token=None, **params):
    with srv.client(token) as c:
        return c.get(path, params=params)


def test_schemas_are_the_licensed_copy():
    assert "CC0" in (SCHEMAS / "LICENSE").read_text()
    assert (RESPONSES / "beaconCountResponse.json").exists()


@pytest.mark.parametrize(
    ("endpoint", "schema"),
    [
        ("info", "beaconInfoResponse.json"),
        ("map", "beaconMapResponse.json"),
        ("configuration", "beaconConfigurationResponse.json"),
    ],
)
def test_informational_endpoints_validate(srv, endpoint, schema):
    r = get(srv, f"/beacon/v2/{endpoint}")
    assert r.status_code == 200
    validate(r.json(), schema)


def test_validator_rejects_a_broken_response(srv):
    doc = get(srv, "/beacon/v2/g_variants", referenceName="chr20", start=0).json()
    del doc["meta"]["apiVersion"]
    with pytest.raises(Exception, match="apiVersion"):
        validate(doc, "beaconBooleanResponse.json")


def _expected(store, contig, start, end, ref=None, alt=None) -> list[str]:
    rows = store.lookup(region=f"{contig}:{start + 1}-{end}").to_pylist()
    return [
        r["variant_key"]
        for r in rows
        if r["ac"] > 0 and (ref is None or r["ref"] == ref) and (alt is None or r["alt"] == alt)
    ]


def test_g_variants_by_tier(srv):
    with genoquery.open(srv.store) as store:
        v = next(r for r in store.variants().to_pylist() if r["contig"] == "chr20" and r["ac"] > 40)
        chr20 = _expected(store, "chr20", 0, 50_000)
        snvs = [k for k in chr20 if len(k.split("-")[2]) == len(k.split("-")[3]) == 1]
    # sequence query, public boolean
    r = get(
        srv,
        "/beacon/v2/g_variants",
        referenceName="20",
        start=v["pos"] - 1,
        referenceBases=v["ref"],
        alternateBases=v["alt"],
    )
    validate(r.json(), "beaconBooleanResponse.json")
    assert r.json()["responseSummary"] == {"exists": True}
    absent = "A" if v["alt"] != "A" else "C"
    r = get(
        srv,
        "/beacon/v2/g_variants",
        referenceName="chr20",
        start=v["pos"] - 1,
        referenceBases=v["ref"],
        alternateBases=absent * 3,
    )
    assert r.json()["responseSummary"] == {"exists": False}
    # range query, public count: the number of variants, never of people
    r = get(srv, "/beacon/v2/g_variants", referenceName="chr20", start=0, end=50_000, requestedGranularity="count")
    validate(r.json(), "beaconCountResponse.json")
    assert r.json()["responseSummary"] == {"exists": True, "numTotalResults": len(chr20)}
    assert r.json()["meta"]["returnedGranularity"] == "count"
    r = get(
        srv,
        "/beacon/v2/g_variants",
        referenceName="chr20",
        start=0,
        end=50_000,
        variantType="SNP",
        requestedGranularity="record",
    )  # public asks for records, gets counts
    validate(r.json(), "beaconCountResponse.json")
    assert r.json()["meta"]["returnedGranularity"] == "count"
    assert r.json()["responseSummary"]["numTotalResults"] == len(snvs)
    r = get(
        srv, "/beacon/v2/g_variants", "reg", referenceName="chr20", start=0, end=50_000, requestedGranularity="record"
    )
    assert r.json()["meta"]["returnedGranularity"] == "count"
    # controlled: records
    r = get(
        srv,
        "/beacon/v2/g_variants",
        "ctl",
        referenceName="chr20",
        start=0,
        end=50_000,
        requestedGranularity="record",
        limit=1000,
    )
    validate(r.json(), "beaconResultsetsResponse.json")
    (result_set,) = r.json()["response"]["resultSets"]
    assert [x["variantInternalId"] for x in result_set["results"]] == chr20
    assert result_set["resultsCount"] == len(chr20)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": 0}, 422),  # no referenceName
        ({"referenceName": "chr20"}, 422),  # no start
        ({"referenceName": "chr20", "start": 10, "end": 5}, 400),
        ({"referenceName": "chr20", "start": 0, "referenceBases": "XYZ"}, 422),
        ({"referenceName": "chr20", "start": 0, "variantType": "FOO"}, 422),
        ({"referenceName": "chr99", "start": 0}, 404),
        ({"referenceName": "chr20", "start": 0, "end": 20_000_000}, 413),
    ],
)
def test_g_variants_errors_are_beacon_errors(srv, params, status):
    r = get(srv, "/beacon/v2/g_variants", **params)
    assert r.status_code == status, r.text
    validate(r.json(), "beaconErrorResponse.json")
    assert r.json()["error"]["errorCode"] == status


def test_beacon_tokens(srv):
    r = get(srv, "/beacon/v2/g_variants", "old", referenceName="chr20", start=0)
    assert r.status_code == 401
    validate(r.json(), "beaconErrorResponse.json")
    r = get(srv, "/beacon/v2/g_variants", "me", referenceName="chr20", start=0)
    assert r.status_code == 403
    validate(r.json(), "beaconErrorResponse.json")
