"""The browser's two API routes and pages over HTTP (no browser): suggestions and the cohort
filter's columns, against the store through the Python API; the pages and docs assets are served
from the package with their security headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import genoquery
from genoquery.query.cohorts import identifying_columns
from test_server_support import Server, server

LIMIT = 20  # the suppression threshold of the test server


@pytest.fixture(scope="module")
def srv() -> Server:
    return server(budget=50_000)  # the browser tests' server (tests/test_web_browser.py)


@pytest.fixture(scope="module")
def store(srv) -> Iterator[genoquery.Store]:
    with genoquery.open(srv.store) as s:
        yield s


def get(srv: Server, path: str, token: str | None = None, **params):
    with srv.client(token) as c:
        return c.get(path, params=params)


def test_suggest_genes_by_prefix(srv, store):
    genes = store.sql('SELECT gene_name, contig, start, "end" FROM genes ORDER BY upper(gene_name)', []).to_pylist()
    for prefix in ("", "gq", "GQB", "nosuch"):
        answer = get(srv, "/api/v1/suggest", q=prefix, limit=20).json()["items"]
        expected = [g for g in genes if g["gene_name"].upper().startswith(prefix.upper())][:20]
        assert answer == [
            {"kind": "gene", "label": g["gene_name"], "region": f"{g['contig']}:{g['start']}-{g['end']}"}
            for g in expected
        ]


def test_suggest_rsids_only_above_the_suppression_threshold(srv, store):
    rows = store.variants().to_pylist()
    common = sorted({r["id"].lower() for r in rows if r["id"] and r["ac"] > LIMIT})
    rare = {r["id"].lower() for r in rows if r["id"]} - set(common)
    assert common
    assert rare
    everything = get(srv, "/api/v1/suggest", q="rs", limit=20).json()["items"]
    assert [i["label"] for i in everything] == common[:20]
    for rsid in list(rare)[:10]:
        assert get(srv, "/api/v1/suggest", q=rsid).json()["items"] == []
    prefix = common[0][:4]
    offered = [i["label"] for i in get(srv, "/api/v1/suggest", "reg", q=prefix.upper()).json()["items"]]
    assert offered == [c for c in common if c.startswith(prefix)][:10]


def test_suggest_refuses_participants(srv):
    assert get(srv, "/api/v1/suggest", "me", q="GQ").status_code == 403


def test_person_columns_follow_the_filter_whitelist(srv, store):
    schema = store.persons().schema
    identifying = {c.lower() for c in identifying_columns(store.connection)}
    assert "sample_id" in identifying
    assert get(srv, "/api/v1/person-columns").status_code == 401
    assert get(srv, "/api/v1/person-columns", "me").status_code == 403
    registered = get(srv, "/api/v1/person-columns", "reg").json()["items"]
    assert [c["name"] for c in registered] == [f.name for f in schema if f.name.lower() not in identifying]
    persons = store.persons()
    groupable = {
        f.name
        for f in schema
        if str(f.type) == "string" and f.name.lower() not in identifying and len(set(persons[f.name].to_pylist())) <= 32
    }
    assert groupable
    assert {c["name"] for c in registered if c["groupable"]} == groupable
    for column in registered:  # each is accepted in a filter below the controlled tier
        term = f"{column['name']} IS NOT NULL"
        r = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-2000", cohort=term, limit=1)
        assert r.status_code in (200, 403), r.text  # 403: the cohort rules (size, differencing), not the column
        assert "identif" not in r.text
    refused = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-2000", cohort="sample_id IS NOT NULL")
    assert refused.status_code == 400, refused.text
    controlled = get(srv, "/api/v1/person-columns", "ctl").json()["items"]
    assert [c["name"] for c in controlled] == schema.names
    assert {c["name"]: c["type"] for c in controlled} == {
        f.name: ("text" if str(f.type) == "string" else "number") for f in schema
    }


def test_pages_and_docs_assets_are_served_from_the_package(srv):
    for path in ("/", "/search", "/variant/chr20-651-C-T", "/gene/GQA1", "/region/chr20:1-5000", "/me", "/signin"):
        r = get(srv, path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        assert '<script src="/static/app.js" defer></script>' in r.text
    docs = get(srv, "/docs")
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert "/docs-assets/redoc.standalone.js" in get(srv, "/redoc").text
    for asset in (
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/docs-assets/redoc.standalone.js",
    ):
        assert get(srv, asset).status_code == 200
    assert get(srv, "/static/nosuch.js").status_code == 404
