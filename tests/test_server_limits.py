"""Bad input is a 4xx with a message, and every request has a time limit and a cost limit (issue 16).

Unit tests of the engine's checks (region and key positions, filter length, depth and forbidden
columns, the deadline), then a live server (:mod:`test_server_support`): 40-digit positions on
every region endpoint and in keys, deeply nested filters on queries and ``POST /cohorts``, and a
second server started with a tiny time limit and a tiny cost limit.
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import genoquery
from genoquery.deadline import ahead, check, deadline, remaining
from genoquery.errors import QueryError, RegionError, TimeLimitError
from genoquery.index.phenotypes import import_table
from genoquery.query.cohorts import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, identifying_columns
from genoquery.query.lookup import parse_key
from genoquery.server.auth import create_token
from genoquery.server.limits import coarse, count_alleles
from genoquery.server.settings import ENV_SETTINGS, ENV_STORE
from genoquery.server.state import connect
from genoquery.storage.lookup_table import LOCUS_SHIFT
from genoquery.storage.regions import MAX_POSITION, parse_region
from test_server_support import SECRET, Server, fixture_store, free_port, server, wait_until_healthy

HUGE = "1" + "0" * 39  # 40 digits: overflowed DuckDB's integers (a 500) before issue 16
NOTS = "NOT " * 150 + "sex_at_birth = 'Female'"
ABS = "abs(" * 300 + "birth_year" + ")" * 300 + " > 1900"
FEMALE = "sex_at_birth = 'Female'"


# --------------------------------------------------------------------------- regions and keys


def test_positions_beyond_the_lookup_encoding_are_region_errors():
    assert MAX_POSITION == (1 << LOCUS_SHIFT) - 1
    assert parse_region(f"chr20:1-{MAX_POSITION}").end == MAX_POSITION
    assert parse_region(f"chr20:{MAX_POSITION:,}").start == MAX_POSITION
    for text in (f"chr20:1-{HUGE}", f"chr20:{HUGE}", f"chr20:{HUGE}-", f"chr20:1-{MAX_POSITION + 1}"):
        with pytest.raises(RegionError, match=r"beyond the largest position 1,099,511,627,775 \(2\^40 - 1\)") as err:
            parse_region(text, ["chr20"])
        assert "give positions in 1..1099511627775" in str(err.value)
    with pytest.raises(RegionError, match=HUGE):
        parse_region(f"chr20:1-{HUGE}")


@pytest.mark.parametrize("pos", [HUGE, str(MAX_POSITION + 1), "0", "000"])
def test_key_positions_outside_range_are_query_errors(pos):
    with pytest.raises(QueryError, match=r"position \d+ is outside 1\.\.1,099,511,627,775 \(2\^40 - 1"):
        parse_key(f"chr20-{pos}-A-C", ["chr20"])
    assert parse_key(f"chr20-{MAX_POSITION}-A-C", ["chr20"]).pos == MAX_POSITION


# --------------------------------------------------------------------------- filter expressions


@pytest.fixture(scope="module")
def store():
    with genoquery.open(fixture_store()) as s:
        yield s


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (NOTS, "nests terms 152 deep, over the limit of 32"),
        ("NOT " * 499 + "TRUE", "over the limit of 32"),  # Python's json parser overflows first
        (ABS, "nests parentheses 300 deep, over the limit of 32"),
        ("(" * 1000 + "TRUE" + ")" * 1000, "characters long, over the limit of 2,000"),
        ("birth_year" + " + 1" * 40 + " > 1900", "nests terms 42 deep"),
        ("center = '" + "x" * 2000 + "'", "2,011 characters long"),
    ],
)
def test_filters_too_long_or_too_deep_are_query_errors(store, expr, message):
    started = time.perf_counter()
    with pytest.raises(QueryError, match="cohort expression") as err:
        store.cohort(expr)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert len(str(err.value)) < 400
    assert time.perf_counter() - started < 1


def test_filters_within_the_limits_still_work(store):
    depth_ok = "abs(" * 20 + "birth_year" + ")" * 20 + " > 1900"
    assert len(store.cohort(depth_ok)) == len(store.cohort("birth_year > 1900"))
    parens = "(" * MAX_FILTER_DEPTH + FEMALE + ")" * MAX_FILTER_DEPTH  # parentheses add no tree level
    assert len(store.cohort(parens)) == len(store.cohort(FEMALE))
    names = ", ".join(f"'{i:06d}'" for i in range(150))  # a long IN list is one level
    assert len(f"center IN ({names})") < MAX_FILTER_LENGTH
    with pytest.raises(QueryError, match="matches no sample"):
        store.cohort(f"center IN ({names})")


def test_parentheses_inside_quotes_are_not_nesting(store):
    quoted = "center = '" + "(" * 40 + "' OR " + FEMALE
    assert len(store.cohort(quoted)) == len(store.cohort(FEMALE))


def test_identifying_columns(store):
    assert identifying_columns(store.connection) == ["sample_id"]


def test_identifying_columns_of_a_person_table_with_ids(tmp_path):
    path = tmp_path / "ids.gq"
    shutil.copytree(fixture_store(), path)
    persons = Path(tmp_path / "persons.tsv")
    with genoquery.open(path) as s:
        rows = s.persons().to_pylist()
    lines = ["sample_id\tperson_id\tmrn\tnickname\tsex_at_birth"]
    for i, r in enumerate(rows):
        nickname = "" if i % 2 else f"n{i}"  # distinct where given: identifying
        lines.append(f"{r['sample_id']}\tP{i}\tMRN{i:05d}\t{nickname}\t{r['sex_at_birth']}")
    persons.write_text("\n".join(lines) + "\n")
    import_table(path, persons, kind="person")
    with genoquery.open(path) as s:
        found = identifying_columns(s.connection)
        assert set(found) == {"sample_id", "person_id", "mrn", "nickname"}
        assert "sex_at_birth" not in found
        for column in ("MRN", "person_id", "nickname"):
            with pytest.raises(QueryError, match=f"column '{column.lower()}' cannot be used in this filter"):
                s.cohort(f"{column} = 'x' OR {FEMALE}", forbidden_columns=found)


def test_forbidden_columns_depend_on_the_text_only(store):
    """The same refusal whether the named person exists, matches or not, and wherever the
    column appears; without the keyword the same filters are evaluated as before."""
    first = store.samples()["sample_id"][0].as_py()
    forbidden = identifying_columns(store.connection)
    messages = set()
    for expr in (
        f"sample_id = '{first}'",
        "sample_id = 'nobody'",
        f"sample_id = '{first}' AND has_condition('E11')",
        "sample_id = 'nobody' AND has_condition('E11')",
        f"{FEMALE} OR lower(SAMPLE_ID) LIKE 's%'",
        "sample_id IS NULL",
    ):
        with pytest.raises(QueryError) as err:
            store.cohort(expr, forbidden_columns=forbidden)
        messages.add(str(err.value))
    assert messages == {
        "column 'sample_id' cannot be used in this filter: it identifies participants, and a cohort "
        "here is a group of them; filter on other columns (not sample_id)"
    }
    assert len(store.cohort(f"sample_id = '{first}'")) == 1
    assert len(store.cohort(FEMALE, forbidden_columns=forbidden)) == len(store.cohort(FEMALE))


# --------------------------------------------------------------------------- deadline and cost helpers


def test_deadline():
    check()  # no deadline: nothing to do
    assert remaining() is None
    with deadline(60):
        check()
        assert 59 < remaining() <= 60
        with deadline(0.001):
            time.sleep(0.002)
            with pytest.raises(TimeLimitError, match=r"time limit of 0\.001 s"):
                check()
        check()  # the outer deadline again
        with deadline(600):  # an inner deadline cannot extend an outer one
            assert remaining() <= 60
        context = contextvars.copy_context()  # what run_in_threadpool hands to its thread
        seen = []
        thread = threading.Thread(target=context.run, args=(lambda: seen.append(remaining()),))
        thread.start()
        thread.join()
        assert seen[0] is not None
        assert seen[0] > 0
    assert remaining() is None
    with deadline(None):
        assert remaining() is None


def test_work_made_ahead_on_a_thread_keeps_the_deadline():
    """ahead() makes each next item on its own thread: check() there must still see the request's
    deadline, and the error reach the caller when that item is asked for."""

    def items():
        for i in range(3):
            if i == 2:
                time.sleep(0.3)
            check()
            yield i, threading.current_thread().name

    made = list(ahead(items()))
    assert [i for i, _ in made] == [0, 1, 2]
    assert all(name.startswith("genoquery-ahead") for _, name in made)
    got = []
    with deadline(0.2), pytest.raises(TimeLimitError, match="time limit"):  # noqa: PT012
        for i, _ in ahead(items()):
            got.append(i)
    assert got == [0, 1]


def test_coarse_and_count_alleles(store):
    assert [coarse(n) for n in (1, 2, 3, 10, 11, 50, 51, 120, 2999)] == [1, 2, 5, 10, 20, 50, 100, 200, 5000]
    in_region = store.lookup(region="chr20:1-20000").num_rows
    assert count_alleles(store, region="chr20:1-20000") == in_region
    assert count_alleles(store) == store.info["variants"]
    assert count_alleles(store, variants="chr20-1-A-C, rs1,") == 2
    genes = store.sql("SELECT DISTINCT gene_name FROM genes WHERE gene_name IS NOT NULL", [])["gene_name"]
    for gene in genes.to_pylist():
        try:
            expected = store.lookup(gene=gene).num_rows
        except QueryError:  # a gene on a contig the store does not hold: the request says so itself
            expected = 0
        assert count_alleles(store, gene=gene) == expected


# --------------------------------------------------------------------------- a live server


@pytest.fixture(scope="module")
def srv():
    return server()


def _error(r: httpx.Response) -> str:
    body = r.json()
    error = body["error"]
    return error.get("message") or error.get("errorMessage")


def _assert_4xx(r: httpx.Response, *words: str) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    message = _error(r)
    assert message, r.text[:300]
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


def test_40_digit_positions_on_every_region_endpoint_are_4xx(srv):
    key = f"chr20-{HUGE}-A-C"
    region, start_only = f"chr20:1-{HUGE}", f"chr20:{HUGE}"
    requests = [
        (None, "/api/v1/variants", {"region": region}),
        (None, "/api/v1/variants", {"region": start_only, "af_max": 0.5}),
        (None, "/api/v1/frequencies", {"region": region}),
        (None, "/api/v1/frequencies", {"region": region, "by": "ancestry"}),
        ("reg", "/api/v1/frequencies", {"region": start_only, "cohort": FEMALE}),
        ("reg", "/api/v1/association", {"phenotype": "ldl_mg_dl", "region": region}),
        ("reg", "/api/v1/carrier-table", {"condition": "E11", "region": region}),
        ("ctl", "/api/v1/carriers", {"region": region}),
        ("ctl", "/api/v1/genotypes", {"region": region}),
        ("ctl", "/api/v1/export.vcf", {"region": region}),
        ("ctl", "/api/v1/frequencies", {"region": region, "cohort": FEMALE}),
        ("ctl", "/api/v1/association", {"phenotype": "ldl_mg_dl", "region": region}),
    ]
    for token, path, params in requests:
        with srv.client(token) as c:
            _assert_4xx(c.get(path, params=params), "2^40 - 1")
    keyed = [
        (None, f"/api/v1/variants/{key}", {}),
        (None, f"/api/v1/variants/{key}", {"by": "sex_at_birth"}),
        ("reg", "/api/v1/phewas", {"variant": key}),
        ("reg", "/api/v1/carrier-table", {"condition": "E11", "variant": key}),
        ("reg", "/api/v1/association", {"phenotype": "ldl_mg_dl", "variants": key}),
        ("ctl", "/api/v1/carriers", {"variant": key}),
        ("ctl", "/api/v1/association", {"phenotype": "ldl_mg_dl", "variants": f"{store_keys(srv)[0]},{key}"}),
    ]
    for token, path, params in keyed:
        with srv.client(token) as c:
            _assert_4xx(c.get(path, params=params), "2^40 - 1")
    with srv.client() as c:
        for params in ({"start": HUGE}, {"start": 0, "end": HUGE}, {"start": "-" + HUGE}):
            r = c.get("/beacon/v2/g_variants", params={"referenceName": "chr20", **params})
            _assert_4xx(r)
        for path, params in (
            ("/api/v1/variants", {"region": "chr20", "offset": HUGE}),
            ("/api/v1/variants", {"region": "chr20", "limit": HUGE}),
            ("/api/v1/frequencies", {"region": "chr20:1-1000", "offset": "-" + HUGE}),
        ):
            _assert_4xx(c.get(path, params=params))
    with srv.client("reg") as c:
        _assert_4xx(c.get("/api/v1/association", params={"phenotype": "ldl_mg_dl", "region": "chr20", "min_mac": HUGE}))
        _assert_4xx(c.get("/api/v1/phewas", params={"variant": "chr20-1-A-C", "min_cases": HUGE}))


def test_the_largest_position_is_answered(srv):
    with srv.client("ctl") as c:
        for path, params in (
            ("/api/v1/variants", {"region": f"chr20:{MAX_POSITION}"}),
            ("/api/v1/frequencies", {"region": f"chr20:1000000-{MAX_POSITION}", "cohort": FEMALE}),
            ("/api/v1/genotypes", {"region": f"chr20:{MAX_POSITION - 10}-{MAX_POSITION}"}),
        ):
            r = c.get(path, params=params)
            assert r.status_code == 200, r.text[:300]
        r = c.get(f"/api/v1/variants/chr20-{MAX_POSITION}-A-C")
        assert r.status_code == 404, r.text[:300]


def test_deep_filters_are_4xx_on_queries_and_post_cohorts(srv):
    with srv.client("reg") as c:
        for expr in (NOTS, ABS):
            r = c.get("/api/v1/frequencies", params={"region": "chr20:1-5000", "cohort": expr})
            _assert_4xx(r, "over the limit of 32")
            r = c.post("/api/v1/cohorts", json={"name": "deep", "filter": expr})
            _assert_4xx(r, "over the limit of 32")
            r = c.post("/api/v1/cohorts", json={"name": "deep", "definition": expr})
            _assert_4xx(r)
        r = c.get("/api/v1/frequencies", params={"region": "chr20:1-5000", "cohort": "(" * 40 + FEMALE + ")" * 40})
        _assert_4xx(r, "nests parentheses 40 deep")
        r = c.get("/api/v1/association", params={"phenotype": "ldl_mg_dl", "region": "chr20:1-5000", "cohort": NOTS})
        _assert_4xx(r, "over the limit of 32")


# --------------------------------------------------------------------------- a server with tiny limits


def _serve_with(name: str, **settings) -> Server:
    """A server on a copy of the fixture store, started through the app factory with ``settings``
    (the command line has no option for the limits)."""
    store = fixture_store().parent / f"limits-{name}.gq"
    shutil.copytree(fixture_store(), store)
    con = connect(store)
    with con:
        con.execute("INSERT INTO secrets VALUES ('rounding', ?)", [SECRET])
    con.close()
    tokens = {t: create_token(store, tier, t) for t, tier in (("reg", "registered"), ("ctl", "controlled"))}
    port = free_port()
    env = dict(os.environ, **{ENV_STORE: str(store), ENV_SETTINGS: json.dumps({"min_cohort": 30, **settings})})
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "genoquery.server.app:app_from_env", "--factory", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, proc)
    return Server(url, store, tokens, 30, proc)


@pytest.fixture(scope="module")
def hurried():
    srv = _serve_with("time", request_time_s=1e-6)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def frugal():
    srv = _serve_with("cost", max_cost=1_000, max_tested_alleles=3)
    yield srv
    srv.stop()


def test_time_limit_is_503_with_a_message(hurried):
    """frequencies is a sync endpoint: the deadline set by the middleware reached the thread pool."""
    for token in ("reg", "ctl"):
        with hurried.client(token) as c:
            r = c.get("/api/v1/frequencies", params={"region": "chr20", "cohort": FEMALE})
        assert r.status_code == 503, r.text[:300]
        assert r.headers["retry-after"].isdigit()
        assert "time limit of 1e-06 s" in _error(r)
        assert "narrow the region" in _error(r)
    with hurried.client("reg") as c:
        r = c.get("/api/v1/association", params={"phenotype": "ldl_mg_dl", "region": "chr20:1-20000"})
        assert r.status_code == 503, r.text[:300]
        assert c.get("/api/v1/variants", params={"region": "chr20:1-5000"}).status_code == 200  # the index alone


def test_cost_limit_is_413_with_a_message(frugal):
    with frugal.client("reg") as c:
        r = c.get("/api/v1/frequencies", params={"region": "chr20", "cohort": FEMALE})
        message = _assert_4xx(r, "narrow the region or the cohort", "over this server's limit of 1e+03")
        assert r.status_code == 413
        assert "for the cohort" in message  # below the controlled tier the cohort's size is not named
        r = c.get("/api/v1/frequencies", params={"region": "chr20", "by": "center"})
        assert r.status_code in (400, 413), r.text[:300]  # a breakdown: counted, or refused as a grouping
        r = c.get("/api/v1/frequencies", params={"region": "chr20"})  # the index's statistics: free
        assert r.status_code == 200, r.text[:300]
        r = c.get("/api/v1/association", params={"phenotype": "ldl_mg_dl", "region": "chr20"})
        assert r.status_code == 413, r.text[:300]
        r = c.get("/api/v1/carrier-table", params={"condition": "E11", "region": "chr20"})
        assert r.status_code == 413, r.text[:300]
        keys = ",".join(store_keys(frugal)[:4])
        r = c.get("/api/v1/association", params={"phenotype": "ldl_mg_dl", "variants": keys})
        assert r.status_code == 413, r.text[:300]
        assert "4 ALT alleles, over the 3 allowed" in _error(r)
    with frugal.client("ctl") as c:
        r = c.get("/api/v1/frequencies", params={"region": "chr20", "cohort": FEMALE})
        assert r.status_code == 413, r.text[:300]
        assert " samples would count" in _error(r)
        keys = ",".join(store_keys(frugal)[:4])
        r = c.get("/api/v1/association", params={"phenotype": "ldl_mg_dl", "variants": keys})
        assert r.status_code != 413, r.text[:300]  # the allele cap is below the controlled tier only


def store_keys(srv: Server) -> list[str]:
    with genoquery.open(srv.store) as s:
        return s.lookup(region="chr20:1-100000")["variant_key"].to_pylist()
