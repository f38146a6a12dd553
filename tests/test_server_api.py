"""The JSON API against a running server (httpx over loopback), tier by tier.

Expected answers come from the Python API on the same store (``genoquery.open``), and for
the public and registered tiers from the disclosure rule applied here independently
(:func:`assert_released`): counts 1..20 withheld with linked cells, larger counts rounded
to a multiple of 10 within 10 of the truth and never below 30.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import genoquery
import genoquery.errors
from genoquery.query.association import scan
from genoquery.query.association import store_dosages as store_dosages_module
from genoquery.server.app import create_app
from genoquery.server.audit import read
from genoquery.server.auth import Principal, create_token, revoke_token
from genoquery.server.budget import Budget
from genoquery.server.problems import ApiError, install
from genoquery.server.settings import Settings
from genoquery.server.state import AccessDb
from test_server_support import fixture_store, server

LIMIT, BASE = 20, 10
STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")
GENOTYPE = ("ac", "n_het", "n_hom_alt", "n_hemi")
FEMALE = "sex_at_birth = 'Female'"


def small(n) -> bool:
    return n is not None and 1 <= n <= LIMIT


def assert_released(got: dict, true: dict, whole: bool = True) -> None:
    """``got`` is ``true`` released under the rule: 1..20 and linked cells withheld (AN stays,
    rounded, when n_missing is withheld), rest rounded;
    0 kept for the whole store, withheld for a cohort or group (except structural zeros: n_hemi
    off chrX, n_missing)."""
    genotype = GENOTYPE if true["contig"] == "chrX" else GENOTYPE[:3]

    def low(n):
        return small(n) or (n == 0 and not whole)

    linked = any(low(true[c]) for c in genotype) or low(true["an"] - true["ac"])
    hidden = (
        (set(GENOTYPE) if linked else set())
        | ({"n_missing"} if small(true["n_missing"]) else set())
        | ({"an"} if small(true["an"]) else set())
    )
    for c in STATS:
        t, g = true[c], got[c]
        if t == 0 and (whole or c not in genotype or c not in hidden):
            assert g == 0, (c, got, true)
        elif c in hidden:
            assert g is None, (c, got, true)
            assert c in got["suppressed"], (c, got, true)
        else:
            assert isinstance(g, int), (c, got, true)
            assert g % BASE == 0, (c, got, true)
            assert g > LIMIT, (c, got, true)
            assert abs(g - t) < BASE, (c, got, true)
    if linked or "an" in hidden:
        assert got["af"] is None
    else:
        assert math.isclose(got["af"], got["ac"] / got["an"]) if got["an"] else got["af"] is None


@pytest.fixture(scope="module")
def srv():
    return server()


@pytest.fixture(scope="module")
def store(srv):
    with genoquery.open(srv.store) as s:
        yield s


def get(srv, path, token=None, **params):
    with srv.client(token) as c:
        return c.get(path, params=params)


# --------------------------------------------------------------------------- public tier


def test_health_info_openapi(srv, store):
    assert get(srv, "/api/v1/health").json() == {"schema": "genoquery.api/1", "status": "ok"}
    info = get(srv, "/api/v1/info").json()
    assert (info["samples"], info["variants"], info["tier"]) == (
        store.info["samples"],
        store.info["variants"],
        "public",
    )
    assert info["disclosure"]["min_cohort"] == srv.min_cohort
    assert get(srv, "/api/v1/info", "reg").json()["tier"] == "registered"
    doc = get(srv, "/openapi.json").json()
    assert "/api/v1/frequencies" in doc["paths"]
    assert "/beacon/v2/g_variants" in doc["paths"]
    assert get(srv, "/docs").status_code == 200


def test_public_variant_lookup_is_released_by_the_rule(srv, store):
    whole = store.variants().to_pylist()
    checked = {"suppressed": 0, "rounded": 0}
    for true in whole[::7]:
        r = get(srv, f"/api/v1/variants/{true['variant_key']}")
        assert r.status_code == 200, r.text
        (got,) = r.json()["items"]
        assert got["variant_key"] == true["variant_key"]
        assert got["pos"] == true["pos"]
        assert_released(got, true)
        checked["suppressed"] += bool(got["suppressed"])
        checked["rounded"] += any(isinstance(got[c], int) and got[c] > 0 for c in GENOTYPE)
    assert checked["suppressed"]
    assert checked["rounded"]


def test_public_by_group_withholds_small_groups(srv, store):
    key = next(r["variant_key"] for r in store.variants().to_pylist() if r["ac"] > 60 and r["contig"] == "chr20")
    answer = get(srv, f"/api/v1/variants/{key}", by="sex_at_birth").json()
    truth = {r["sex_at_birth"]: r for r in store.lookup(key, by="sex_at_birth").to_pylist()}
    sizes = {
        k: v
        for k, v in zip(
            *np.unique(store.persons()["sex_at_birth"].to_numpy(zero_copy_only=False), return_counts=True), strict=True
        )
    }
    shown = {row["sex_at_birth"] for row in answer["items"]}
    for group, n in sizes.items():
        ok = n >= srv.min_cohort and store.info["samples"] - n >= srv.min_cohort
        assert (group in shown) == ok
    assert "withheld_groups" not in answer  # a refused group is named nowhere
    for row in answer["items"]:
        assert_released(row, truth[row["sex_at_birth"]], whole=False)


def test_search_pages_and_filters(srv, store):
    """Below the controlled tier af_min acts on the released AF: the filtered pages hold exactly
    the unfiltered answer's rows whose released AF passes, in order, with a total to match."""
    unfiltered = get(srv, "/api/v1/variants", region="chr20:1-20000", limit=1000).json()["items"]
    want = [r for r in unfiltered if r["af"] is not None and r["af"] >= 0.01]
    exact = {t["variant_key"]: t for t in store.lookup(region="chr20:1-20000").to_pylist()}
    assert 0 < len(want) < len(store.lookup(region="chr20:1-20000", af_min=0.01))  # rare ones withheld
    rows, offset = [], 0
    while offset is not None:
        page = get(srv, "/api/v1/variants", region="chr20:1-20000", af_min=0.01, limit=7, offset=offset).json()
        assert page["total"] == len(want)
        rows += page["items"]
        offset = page["next_offset"]
    assert rows == want
    for got in rows:
        assert_released(got, exact[got["variant_key"]])
    exact_rows = get(srv, "/api/v1/variants", "ctl", region="chr20:1-20000", af_min=0.01, limit=1000).json()
    assert [r["variant_key"] for r in exact_rows["items"]] == [
        t["variant_key"] for t in store.lookup(region="chr20:1-20000", af_min=0.01).to_pylist()
    ]
    gene = get(srv, "/api/v1/variants", gene="GQA1").json()
    assert [r["variant_key"] for r in gene["items"]] == store.lookup(gene="GQA1")["variant_key"].to_pylist()


def test_controlled_tier_is_exact(srv, store):
    truth = store.lookup(region="chr20:1-30000").to_pylist()
    got = get(srv, "/api/v1/variants", "ctl", region="chr20:1-30000", limit=1000).json()["items"]
    assert [{c: g[c] for c in STATS} for g in got] == [{c: t[c] for c in STATS} for t in truth]
    cohort = store.frequencies("chr20:1-30000", cohort=FEMALE).to_pylist()
    got = get(srv, "/api/v1/frequencies", "ctl", region="chr20:1-30000", cohort=FEMALE, limit=1000).json()
    assert [{c: g[c] for c in STATS} for g in got["items"]] == [{c: t[c] for c in STATS} for t in cohort]
    assert got["cohort_size"] == len(store.cohort(FEMALE))


# --------------------------------------------------------------------------- registered tier


def test_registered_cohort_frequencies(srv, store):
    truth = store.frequencies("chr20:1-30000", cohort=FEMALE).to_pylist()
    assert get(srv, "/api/v1/frequencies", region="chr20:1-30000", cohort=FEMALE).status_code == 401
    page = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-30000", cohort=FEMALE, limit=1000).json()
    assert page["total"] == len(truth)
    for got, true in zip(page["items"], truth, strict=True):
        assert_released(got, true, whole=False)
    n = len(store.cohort(FEMALE))
    assert page["cohort_size"] % BASE == 0
    assert abs(page["cohort_size"] - n) < BASE


def test_small_cohorts_and_sample_lists_are_refused(srv, store):
    years = sorted(store.persons()["birth_year"].to_pylist())
    few = f"birth_year < {years[10]}"  # 1..10 people
    assert 0 < len(store.cohort(few)) < srv.min_cohort
    r = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-5000", cohort=few)
    assert r.status_code == 403
    assert f"must match at least {srv.min_cohort} samples" in r.json()["error"]["message"]
    refusal = r.content
    most = f"birth_year >= {years[10]}"  # everyone but 1..10 people: differencing against the whole store
    r = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-5000", cohort=most)
    assert r.status_code == 403
    assert r.content == refusal  # one refusal for every reason: which rule refused says who matched
    r = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-5000", cohort="birth_year < 0")  # empty
    assert r.status_code == 403
    assert r.content == refusal
    ids = store.samples()["sample_id"].to_pylist()[:60]
    with srv.client("reg") as c:
        r = c.post("/api/v1/cohorts", json={"name": "mine", "samples": ids})
    assert r.status_code == 403
    assert "controlled" in r.json()["error"]["message"]


def test_cohorts_define_list_and_use(srv, store):
    with srv.client("reg") as c:
        r = c.post("/api/v1/cohorts", json={"name": "women", "filter": FEMALE})
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "filter"
        assert r.json()["size"] % BASE == 0
        listed = c.get("/api/v1/cohorts").json()["items"]
        assert {"name": "women", "kind": "filter", "scope": "token", "definition": FEMALE} in [
            {k: i[k] for k in ("name", "kind", "scope", "definition")} for i in listed
        ]
        by_name = c.get("/api/v1/frequencies", params={"region": "chr20:1-5000", "cohort": "women"}).json()
        by_filter = c.get("/api/v1/frequencies", params={"region": "chr20:1-5000", "cohort": FEMALE}).json()
        assert by_name == by_filter
        assert c.post("/api/v1/cohorts", json={"name": "bad name!", "filter": FEMALE}).status_code == 422
        assert c.post("/api/v1/cohorts", json={"name": "x", "filter": FEMALE, "samples": ["S1"]}).status_code == 400
        assert (
            c.post("/api/v1/cohorts", content=b"{not json", headers={"content-type": "application/json"}).status_code
            == 422
        )
    with srv.client("ctl") as c:
        ids = store.samples()["sample_id"].to_pylist()[:5]
        r = c.post("/api/v1/cohorts", json={"name": "five", "samples": ids})
        assert r.status_code == 201
        assert r.json()["size"] == 5
        got = c.get("/api/v1/carriers", params={"region": "chr20:1-50000", "cohort": "five", "limit": 1000}).json()
        truth = store.carriers(region="chr20:1-50000", cohort=ids)
        assert got["total"] == truth.num_rows


def test_association_and_carrier_table(srv, store):
    truth = store.associate("ldl_mg_dl", ["pc1"], region="chr20:1-20000", min_mac=1).to_pylist()
    got = get(
        srv, "/api/v1/association", "ctl", phenotype="ldl_mg_dl", covariates="pc1", region="chr20:1-20000", limit=1000
    ).json()["items"]
    assert [(g["variant_key"], g["n"], g["p"]) for g in got] == [(t["variant_key"], t["n"], t["p"]) for t in truth]
    released = get(
        srv, "/api/v1/association", "reg", phenotype="ldl_mg_dl", covariates="pc1", region="chr20:1-20000", limit=1000
    ).json()["items"]
    for g, t in zip(released, truth, strict=True):
        low = [t[c] for c in ("n", "ac", "an", "mac", "n_carriers")] + [t["an"] - t["ac"], t["n"] - t["n_carriers"]]
        if any(v is not None and 0 <= v <= LIMIT for v in low):
            assert g["p"] is None
            assert g["beta"] is None
            assert "p" in g["suppressed"]
        elif t["p"] is not None:
            assert math.isclose(g["p"], float(f"{t['p']:.2g}"))
    assert get(srv, "/api/v1/association", phenotype="ldl_mg_dl", region="chr20:1-20000").status_code == 401
    key = next(r["variant_key"] for r in store.variants().to_pylist() if r["ac"] > 40 and r["contig"] == "chr20")
    (t,) = store.carrier_table(key, "E11").to_pylist()
    (g,) = get(srv, "/api/v1/carrier-table", "ctl", variant=key, condition="E11").json()["items"]
    assert {k: g[k] for k in t} == {
        k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in t.items()
    }  # JSON has no inf: null
    (g,) = get(srv, "/api/v1/carrier-table", "reg", variant=key, condition="E11").json()["items"]
    cells = ("carrier_cases", "carrier_controls", "noncarrier_cases", "noncarrier_controls")
    for c in cells:
        low = 0 <= t[c] <= LIMIT
        assert (g[c] is None and c in g["suppressed"]) if low else abs(g[c] - t[c]) < BASE and g[c] % BASE == 0
    assert (g["p"] is None) == any(0 <= t[c] <= LIMIT for c in cells)


def test_association_score_test_and_prescreen(srv, store):
    """test=score and prescreen_p give the Python API's rows to the controlled tier; below it a row is
    withheld exactly when the default (Wald/Firth) row is (separated carriers say a 2x2 cell is 0
    whichever test reports them: score rows of status ``separated`` among them). Bad values: 422."""
    params = {"phenotype": "E11", "covariates": "pc1", "region": "chr20", "limit": 1000}
    truth = store.associate("E11", ["pc1"], region="chr20", min_mac=1, test="score").to_pylist()
    got = get(srv, "/api/v1/association", "ctl", **params, test="score").json()["items"]
    assert [(g["variant_key"], g["test"], g["p"], g["status"]) for g in got] == [
        (t["variant_key"], t["test"], t["p"], t["status"]) for t in truth
    ]
    assert {t["status"] for t in truth} >= {"ok", "separated"}
    wald = get(srv, "/api/v1/association", "reg", **params).json()["items"]
    for screen in ({"test": "score"}, {"prescreen_p": 0.2}):
        released = get(srv, "/api/v1/association", "reg", **params, **screen).json()["items"]
        assert [(r["variant_key"], r["status"] == "suppressed", r["suppressed"]) for r in released] == [
            (r["variant_key"], r["status"] == "suppressed", r["suppressed"]) for r in wald
        ]
    for bad in ({"test": "lrt"}, {"prescreen_p": 0}, {"prescreen_p": 1.5}):
        assert get(srv, "/api/v1/association", "ctl", **params, **bad).status_code == 422


def _stream(srv, token, **params) -> list[dict]:
    with srv.client(token) as c:
        r = c.get("/api/v1/association.ndjson", params=params)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines()]


@pytest.mark.parametrize("token", ["ctl", "reg"])
def test_association_stream_is_the_pages_rows(srv, token):
    """/association.ndjson sends every row /association pages (released alike below the controlled
    tier), between a schema line and the total; input errors keep their status."""
    params = {"phenotype": "ldl_mg_dl", "covariates": "pc1", "region": "chr20"}
    header, *rows, end = _stream(srv, token, **params)
    pages, offset = [], 0
    while offset is not None:
        page = get(srv, "/api/v1/association", token, **params, offset=offset, limit=100).json()
        pages += page["items"]
        offset = page["next_offset"]
    assert header == {"schema": "genoquery.api/1"}
    assert end == {"total": len(pages)}
    assert len(pages) > 100
    assert rows == pages
    with srv.client(token) as c:
        r = c.get("/api/v1/association.ndjson", params={**params, "covariates": "height"})
    assert r.status_code == 400
    assert "unknown covariate 'height'" in r.json()["error"]["message"]
    with srv.client() as c:
        assert c.get("/api/v1/association.ndjson", params=params).status_code == 401


def test_association_stream_ends_with_the_error_that_stopped_it(srv, monkeypatch):
    """The request's time limit holds while rows stream (the deadline reaches the thread that runs
    the stream): passed after the first block, it is the stream's last line, in place of the total."""
    monkeypatch.setattr(store_dosages_module, "WINDOW_ENTRIES", 20)  # many blocks of alleles
    fit_blocks = scan.fit_blocks

    def slow(*args, **kwargs):
        blocks = fit_blocks(*args, **kwargs)
        yield next(blocks)
        time.sleep(3.5)
        yield from blocks

    monkeypatch.setattr(scan, "fit_blocks", slow)
    token = create_token(srv.store, "controlled", "stream-error")
    with TestClient(create_app(srv.store, Settings(request_time_s=3.0))) as c:
        with genoquery.open(srv.store) as store:
            key = store.lookup(region="chr20:1-5000")["variant_key"][0].as_py()
        warm = {"phenotype": "ldl_mg_dl", "variants": key}  # kernels loaded before the clock runs
        c.get("/api/v1/association", params=warm, headers={"Authorization": f"Bearer {token}"})
        r = c.get(
            "/api/v1/association.ndjson",
            params={"phenotype": "ldl_mg_dl", "region": "chr20"},
            headers={"Authorization": f"Bearer {token}"},
        )
    _, *rows, end = (json.loads(line) for line in r.text.splitlines())
    assert r.status_code == 200
    assert rows
    assert all("variant_key" in row for row in rows)
    assert end["error"]["status"] == 503
    assert "time limit of 3 s" in end["error"]["message"]


def test_phewas_is_wired(srv, store):
    key = next(r["variant_key"] for r in store.variants().to_pylist() if r["ac"] > 40 and r["contig"] == "chr20")
    truth = store.phewas(key, ["ldl_mg_dl"]).to_pylist()
    assert len(truth) == 1
    got = get(srv, "/api/v1/phewas", "ctl", variant=key, phenotypes="ldl_mg_dl").json()["items"]
    assert [g["p"] for g in got] == [t["p"] for t in truth]


# --------------------------------------------------------------------------- controlled tier


def test_carriers_genotypes_export(srv, store, tmp_path):
    key = next(r["variant_key"] for r in store.variants().to_pylist() if 3 <= r["ac"] <= 10)
    truth = store.carriers(key).select(["variant_key", "sample_id", "zygosity", "allele_copies", "gt"]).to_pylist()
    assert get(srv, "/api/v1/carriers", "ctl", variant=key).json()["items"] == truth
    assert get(srv, "/api/v1/carriers", "reg", variant=key).status_code == 403
    assert get(srv, "/api/v1/carriers", variant=key).status_code == 401
    ids = ["S000003", "S000050", "S000101"]
    g = store.genotypes("chr20:1-3000", ids)
    got = get(srv, "/api/v1/genotypes", "ctl", region="chr20:1-3000", samples=",".join(ids)).json()
    assert got["sample_ids"] == ids
    assert got["total"] == g.sites.num_rows
    for k, site in enumerate(got["items"]):
        for j, text in enumerate(site["gt"]):
            a, b = g.gt[k, j]
            alleles = [x for x in (a, b) if x != -2]
            assert text.replace("|", "/").split("/") == ["." if x < 0 else str(x) for x in alleles]
    want = tmp_path / "want.vcf"
    store.export_vcf(want, region="chr20:1-20000", samples=ids)
    with (
        srv.client("ctl") as c,
        c.stream("GET", "/api/v1/export.vcf", params={"region": "chr20:1-20000", "samples": ",".join(ids)}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/x-vcf")
        body = b"".join(r.iter_bytes())
    assert [x for x in body.decode().splitlines() if not x.startswith("##")] == [
        x for x in want.read_text().splitlines() if not x.startswith("##")
    ]
    gz = get(srv, "/api/v1/export.vcf", "ctl", region="chr20:1-20000", samples=",".join(ids), compress="true")
    assert gzip.decompress(gz.content).decode().splitlines()[-1] == want.read_text().splitlines()[-1]
    assert get(srv, "/api/v1/export.vcf", "reg", region="chr20:1-2000").status_code == 403


# --------------------------------------------------------------------------- participant tier


def test_participant_counts_are_rounded_as_the_public_pages_round_them(srv, store):
    """A second, independent rounding of the same count would narrow it down: the participant's
    AC, AN and AF equal the public variant page's (their ancestry group's: see
    test_disclosure_columns, the fixture's groups are too small to be shown publicly)."""
    mine = [r for r in get(srv, "/api/v1/me", "me", limit=1000).json()["items"] if r["ac"] is not None]
    truth = {r["variant_key"]: r["ac"] for r in store.participant("S000001").to_pylist()}
    compared = 0
    for row in mine:  # the public page also withholds AC where a genotype count it shows is small
        public = get(srv, f"/api/v1/variants/{row['variant_key']}").json()["items"][0]
        if public["ac"] is not None:
            assert (row["ac"], row["an"], row["af"]) == (public["ac"], public["an"], public["af"])
            compared += row["ac"] != truth[row["variant_key"]]
    assert compared >= 5


def test_participant_sees_own_data_only(srv, store):
    mine = get(srv, "/api/v1/me", "me", limit=1000).json()
    truth = store.participant("S000001").to_pylist()
    assert mine["sample_id"] == "S000001"
    assert [r["variant_key"] for r in mine["items"]] == [t["variant_key"] for t in truth]
    for got, t in zip(mine["items"], truth, strict=True):
        assert got["ac"] == (None if small(t["ac"]) else got["ac"])
        assert ("ac" in got["suppressed"]) == (got["ac"] is None)
        assert got["gt"] == t["gt"]
        # S000001's ancestry group has 15 members: its AN (30) would say so; the public pages refuse it too
        group = (got["ancestry"], got["ancestry_an"], got["ancestry_ac"], got["ancestry_af"])
        assert group == ("EAS", None, None, None)
        assert {"ancestry_an", "ancestry_ac", "ancestry_af"} <= set(got["suppressed"])
    assert get(srv, "/api/v1/participants/S000001", "me").status_code == 200
    for path, params in (
        ("/api/v1/participants/S000002", {}),
        ("/api/v1/variants/chr20-651-C-T", {}),
        ("/api/v1/frequencies", {"region": "chr20"}),
        ("/api/v1/carriers", {"variant": "rs1"}),
        ("/beacon/v2/g_variants", {"referenceName": "chr20", "start": 650}),
    ):
        assert get(srv, path, "me", **params).status_code == 403, path
    assert get(srv, "/api/v1/me").status_code == 401
    assert get(srv, "/api/v1/me", "reg").status_code == 403
    assert (
        get(srv, "/api/v1/participants/S000002", "ctl").json()["items"][0]["ac"]
        == store.participant("S000002")["ac"][0].as_py()
    )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer gq_wrong"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}]
)
def test_wrong_tokens_are_401(srv, headers):
    with srv.client() as c:
        r = c.get("/api/v1/info", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["status"] == 401


def test_revoked_token_is_401_and_revocation_is_live(srv):
    assert get(srv, "/api/v1/info", "old").status_code == 401

    name = srv.new_token("registered", "short-lived")
    assert get(srv, "/api/v1/info", name).status_code == 200
    revoke_token(srv.store, name)

    time.sleep(1.5)  # Settings.token_cache_s (1 s), with a margin for a loaded machine
    assert get(srv, "/api/v1/info", name).status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/variants", {"region": "chr20:1-2000", "limit": 5000}, 422),
        ("/api/v1/variants", {"region": "chr20:1-2000", "limit": 0}, 422),
        ("/api/v1/variants", {"region": "chr20:1-2000", "offset": -1}, 422),
        ("/api/v1/variants", {}, 400),
        ("/api/v1/variants", {"region": "chr99:1-10"}, 404),
        ("/api/v1/variants", {"region": "chr20:x-y"}, 400),
        ("/api/v1/variants", {"region": "chr20", "af_min": 2}, 422),
        ("/api/v1/variants", {"region": "x" * 300}, 422),
        ("/api/v1/variants/chr20-1-A-C", {}, 404),
        ("/api/v1/variants/not a key", {}, 400),
        ("/api/v1/frequencies", {}, 422),
        ("/api/v1/nothing", {}, 404),
    ],
)
def test_malformed_and_oversized_requests(srv, path, params, status):
    r = get(srv, path, **params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["status"] == status
    assert r.json()["error"]["message"]


def test_oversized_body_is_413(srv):
    with srv.client("ctl") as c:
        r = c.post("/api/v1/cohorts", json={"name": "huge", "samples": ["S000001" * 10] * 100_000})
    assert r.status_code == 413
    assert r.json()["error"]["status"] == 413


def test_oversized_genotype_request(srv):
    r = get(srv, "/api/v1/genotypes", "ctl", region="chr20", limit=100_000)
    assert r.status_code == 422  # over the page size, which OpenAPI states
    assert "limit" in r.json()["error"]["message"]


def test_bad_cohort_filter_is_400(srv):
    r = get(srv, "/api/v1/frequencies", "reg", region="chr20:1-2000", cohort="1; DROP TABLE persons")
    assert r.status_code == 400
    assert "cohort expression" in r.json()["error"]["message"]


# --------------------------------------------------------------------------- budget and audit


def test_budget_bounds_rare_allele_answers():
    srv = server(min_cohort=30, budget=3)
    with genoquery.open(srv.store) as s:
        rows = s.variants().to_pylist()
    rare = [r["variant_key"] for r in rows if 1 <= r["ac"] <= LIMIT][:4]
    common = next(r["variant_key"] for r in rows if r["ac"] > 60 and r["an"] - r["ac"] > LIMIT)
    with srv.client() as c:
        assert [c.get(f"/api/v1/variants/{k}").status_code for k in rare] == [200, 200, 200, 429]
        assert c.get(f"/api/v1/variants/{common}").status_code == 200  # common alleles cost nothing
        r = c.get("/beacon/v2/g_variants", params={"referenceName": "chr20", "start": 0, "end": 50000})
        assert r.status_code == 429
        assert "Retry-After" in r.headers
        assert c.get("/api/v1/info").json()["budget_remaining"] == 0
    with srv.client("reg") as c:  # each token has its own budget
        assert c.get(f"/api/v1/variants/{rare[0]}").status_code == 200
    with srv.client("ctl") as c:  # controlled tokens are not budgeted
        assert all(c.get(f"/api/v1/variants/{k}").status_code == 200 for k in rare * 2)


def test_budget_units_leave_the_window_after_it(tmp_path, monkeypatch):

    store = tmp_path / "s.gq"
    shutil.copytree(fixture_store(), store)
    budget, caller = Budget(AccessDb(store), 2, 60.0), Principal("anonymous", "public", "anonymous@x")
    now = 6000.5  # in the window's slot 6000 (slots of 1 s)
    monkeypatch.setattr(time, "time", lambda: now)
    budget.charge(caller)
    budget.charge(caller)
    with pytest.raises(ApiError) as refused:
        budget.charge(caller)
    assert (refused.value.status, refused.value.headers) == (429, {"Retry-After": "61"})
    assert budget.remaining(caller) == 0
    now += 60  # slot 6060: slot 6000 is still in the window (units leave 60..61 s after use)
    assert budget.remaining(caller) == 0
    now += 1
    assert budget.remaining(caller) == 2
    budget.charge(caller)
    assert budget.remaining(caller) == 1
    assert budget.remaining(Principal("ctl", "controlled", "t1")) is None


def test_audit_log_records_every_request(srv):

    marker = "chr20:1-1234"
    get(srv, "/api/v1/variants", "reg", region=marker)
    get(srv, "/api/v1/carriers", "reg", variant="rs1")
    get(srv, "/api/v1/info", "old")

    time.sleep(0.5)
    log = list(read(srv.store))
    mine = [r for r in log if r["params"].get("region") == marker]
    assert mine
    assert mine[-1]["token"] == "reg"
    assert mine[-1]["tier"] == "registered"
    assert mine[-1]["status"] == 200
    assert mine[-1]["endpoint"] == "/api/v1/variants"
    assert isinstance(mine[-1]["rows"], int)
    assert any(r["endpoint"] == "/api/v1/carriers" and r["status"] == 403 and r["token"] == "reg" for r in log)
    assert any(r["status"] == 401 and r["endpoint"] == "/api/v1/info" for r in log)
    text = (srv.store / "audit.jsonl").read_text()
    assert all(secret not in text for secret in srv.tokens.values())
    out = subprocess.run(
        [sys.executable, "-m", "genoquery", "audit", str(srv.store), "--tail", "50"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"reg\tregistered\tGET /api/v1/variants?region={marker}\t200" in out
    records = [
        json.loads(x)
        for x in subprocess.run(
            [sys.executable, "-m", "genoquery", "audit", str(srv.store), "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    ]
    assert len(records) >= len(log)


def test_tokens_are_stored_hashed_and_listed(srv):

    con = sqlite3.connect(srv.store / "access.sqlite")
    stored = {r[0]: r[1] for r in con.execute("SELECT name, secret_sha256 FROM tokens")}
    con.close()
    assert stored["reg"] == hashlib.sha256(srv.tokens["reg"].encode()).hexdigest()
    out = subprocess.run(
        [sys.executable, "-m", "genoquery", "tokens", str(srv.store), "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "reg\tregistered" in out
    assert srv.tokens["reg"] not in out
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "genoquery",
            "tokens",
            str(srv.store),
            "create",
            "--tier",
            "participant",
            "--name",
            "nobody",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "--sample" in bad.stderr


def test_chunked_oversized_body_is_413(srv):
    def chunks():
        yield b'{"name": "huge", "samples": ['
        for _ in range(70_000):  # 5 MB
            yield b'"S000001S000001S000001S000001S000001S000001S000001S000001S000001S000001",'
        yield b'"S000001"]}'

    with srv.client("ctl") as c:
        r = c.post("/api/v1/cohorts", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["status"] == 413


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (genoquery.errors.UnknownItemError("gene 'X' is not among the 7 imported genes"), 404),
        (genoquery.errors.UnknownContigError("region 'chr99': contig 'chr99' is not in the store"), 404),
        (genoquery.QueryError("a message that says the thing is not in the store"), 400),
        (genoquery.RegionError("bad region 'chr20:9-1'"), 400),
        (genoquery.StoreError("another genoquery process is writing to this store"), 409),
    ],
)
def test_statuses_come_from_the_error_class_not_its_words(error, status) -> None:
    app = FastAPI()
    install(app)

    @app.get("/fail")
    def fail():
        raise error

    response = TestClient(app).get("/fail")
    assert response.status_code == status
    assert response.json() == {"error": {"status": status, "message": str(error)}}
