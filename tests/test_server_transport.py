"""The server's transport edge (issue 16, points 6, 8 and 9, and its inconsistencies), against a
live ``genoquery serve``: forwarded headers, the access database's file modes, requests refused
before routing (audited, or named by the audit record of the server's start), the public sample
count, the cohort body, the page size in OpenAPI, and writers while the server runs."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from urllib.parse import urlsplit

import checks
import genoquery
from genoquery.ingest.withdraw import withdraw
from genoquery.server.app import MAX_URL
from genoquery.server.audit import read
from genoquery.server.settings import Settings
from genoquery.server.state import ACCESS_DB, connect
from genoquery.server.web import MAX_SUGGESTIONS
from genoquery.storage.staging import write_marker
from test_server_support import fixture_store, serve, server

LIMIT = 20  # Settings.max_suppressed
FEMALE = "sex_at_birth = 'Female'"


def _copy(tmp_path, name: str = "served.gq"):
    store = tmp_path / name
    shutil.copytree(fixture_store(), store)
    return store


def _audited(store, match, timeout: float = 5.0) -> list[dict]:
    """The audit records ``match`` accepts, waiting for them (a line is written after its response)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in read(store) if match(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _raw(url: str, request: bytes) -> bytes:
    """Send ``request`` as bytes on one connection and return the whole answer."""
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def _rare_keys(store, n: int) -> list[str]:
    with genoquery.open(store) as s:
        rows = s.variants().to_pylist()
    return [r["variant_key"] for r in rows if 1 <= r["ac"] <= LIMIT][:n]


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- forwarded headers


def test_forged_forwarded_for_shares_one_public_budget_and_is_not_audited(tmp_path):
    store = _copy(tmp_path)
    srv = serve(store, budget=3)
    try:
        rare = _rare_keys(store, 5)
        with srv.client() as c:
            codes = [
                c.get(f"/api/v1/variants/{k}", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
                for i, k in enumerate(rare)
            ]
            info = c.get("/api/v1/info", headers={"X-Forwarded-For": "10.9.9.9"}).json()
    finally:
        srv.stop()
    assert codes == [200, 200, 200, 429, 429]  # one budget of 3 for every forged address
    assert info["budget_remaining"] == 0
    lookups = _audited(store, lambda r: r["endpoint"].startswith("/api/v1/variants/"))
    assert len(lookups) == 5
    assert {r["client"] for r in lookups} == {"127.0.0.1"}
    start = [r for r in read(store) if r["method"] == "SERVER"]
    assert len(start) == 1
    assert start[0]["endpoint"] == "start"
    assert start[0]["params"]["trusted_proxy"] is None


def test_a_trusted_proxy_names_the_client(tmp_path):
    store = _copy(tmp_path)
    srv = serve(store, budget=2, options=("--trusted-proxy", "127.0.0.1"))
    try:
        rare = _rare_keys(store, 3)
        with srv.client() as c:
            first = [c.get(f"/api/v1/variants/{k}", headers={"X-Forwarded-For": "10.0.0.1"}).status_code for k in rare]
            other = c.get(f"/api/v1/variants/{rare[0]}", headers={"X-Forwarded-For": "10.0.0.2"}).status_code
    finally:
        srv.stop()
    assert (first, other) == ([200, 200, 429], 200)  # the proxy's clients have a budget each
    clients = [r["client"] for r in _audited(store, lambda r: r["endpoint"].startswith("/api/v1/variants/"))]
    assert clients == ["10.0.0.1"] * 3 + ["10.0.0.2"]
    assert [r["params"]["trusted_proxy"] for r in read(store) if r["method"] == "SERVER"] == ["127.0.0.1"]


# --------------------------------------------------------------------------- files


def test_access_database_files_are_owner_only(tmp_path):
    fresh = _copy(tmp_path, "fresh.gq")
    for name in (ACCESS_DB, ACCESS_DB + "-wal", ACCESS_DB + "-shm"):
        (fresh / name).unlink(missing_ok=True)
    old = os.umask(0o022)
    try:
        con = connect(fresh)  # a new database
        with con:
            con.execute("INSERT INTO secrets VALUES ('probe', x'00')")
        files = [fresh / n for n in (ACCESS_DB, ACCESS_DB + "-wal", ACCESS_DB + "-shm")]
        assert all(f.exists() for f in files)
        assert [_mode(f) for f in files] == [0o600] * 3
        con.close()
        existing = _copy(tmp_path, "existing.gq")  # a store made before: its files were 0644
        con = connect(existing)
        con.close()
        for name in (ACCESS_DB, ACCESS_DB + "-wal", ACCESS_DB + "-shm"):
            if (existing / name).exists():
                (existing / name).chmod(0o644)
        con = connect(existing)
        try:
            files = [existing / n for n in (ACCESS_DB, ACCESS_DB + "-wal", ACCESS_DB + "-shm")]
            assert [_mode(f) for f in files if f.exists()] == [0o600] * sum(f.exists() for f in files)
            assert _mode(existing / ACCESS_DB) == 0o600
        finally:
            con.close()
    finally:
        os.umask(old)
    srv = server()  # and a served store's, with the audit log
    for name in (ACCESS_DB, ACCESS_DB + "-wal", ACCESS_DB + "-shm", "audit.jsonl"):
        if (srv.store / name).exists():
            assert _mode(srv.store / name) == 0o600, name


def _open_access_db(store, barrier, answers) -> None:
    barrier.wait()
    try:
        with connect(store) as con:
            con.execute("INSERT OR IGNORE INTO secrets VALUES ('probe', x'00')")
        answers.put("ok")
    except Exception as error:  # the answer is what the test checks
        answers.put(repr(error))


def test_processes_opening_a_new_access_database_together_all_succeed(tmp_path):
    """uvicorn workers start together on a store whose access database is new: SQLite refused the
    switch to WAL mode of one of them at once ("database is locked"), and the server did not start
    (CI, README server block). 8 processes at once, 40 times: the old code failed 6 of 40."""
    context = multiprocessing.get_context("fork")
    failures = []
    for trial in range(40):
        store = tmp_path / f"s{trial}.gq"
        store.mkdir()
        write_marker(store, {})
        barrier, answers = context.Barrier(8), context.Queue()
        workers = [context.Process(target=_open_access_db, args=(store, barrier, answers)) for _ in range(8)]
        for worker in workers:
            worker.start()
        failures += [answer for answer in (answers.get(timeout=60) for _ in workers) if answer != "ok"]
        for worker in workers:
            worker.join()
    assert failures == []


# --------------------------------------------------------------------------- refused before routing


def test_long_url_is_refused_by_the_app_and_audited():
    srv = server()
    cohort = "sex_at_birth = 'Female' AND (" + " OR ".join(["birth_year > 1900"] * 1200) + ")"
    assert len(cohort) > MAX_URL
    with srv.client("reg") as c:
        r = c.get("/api/v1/frequencies", params={"region": "chr20:1-5000", "cohort": cohort})
    assert r.status_code == 414
    assert r.json()["error"]["status"] == 414
    assert str(MAX_URL) in r.json()["error"]["message"]
    got = _audited(srv.store, lambda r: r["status"] == 414 and r["endpoint"] == "/api/v1/frequencies")
    assert got
    assert (got[-1]["token"], got[-1]["tier"], got[-1]["client"]) == ("reg", "registered", "127.0.0.1")


def test_oversized_body_refusal_is_audited_with_the_token():
    srv = server()
    answer = _raw(
        srv.url,
        b"POST /api/v1/cohorts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
        + srv.tokens["reg"].encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{}" % (64 << 20),
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    got = _audited(srv.store, lambda r: r["status"] == 413 and r["endpoint"] == "/api/v1/cohorts")
    assert got
    assert got[-1]["token"] == "reg"


def test_what_uvicorn_refuses_itself_is_named_at_start():
    """A malformed Content-Length, or a request target over 65,535 bytes, never reaches the app:
    uvicorn (httptools) answers 400 in plain text. The audit record of the start names both."""
    srv = server()
    token = srv.tokens["reg"]
    malformed = _raw(
        srv.url,
        b"POST /api/v1/cohorts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
        + token.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 12abc\r\n\r\n{}",
    )
    assert malformed.startswith(b"HTTP/1.1 400 ")
    huge = _raw(
        srv.url,
        b"GET /api/v1/info?x=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert huge.startswith(b"HTTP/1.1 400 ")
    start = [r for r in read(srv.store) if r["method"] == "SERVER" and r["endpoint"] == "start"]
    assert start
    params = start[-1]["params"]
    assert params["max_url_bytes"] == MAX_URL < params["unaudited_request_target_bytes"] == 65_535
    assert "content_length" in " ".join(params)


# --------------------------------------------------------------------------- public counts


def _counts(srv) -> dict[str, object]:
    out = {}
    for token in (None, "reg", "ctl"):
        with srv.client(token) as c:
            info = c.get("/api/v1/info").json()["samples"]
            words = c.get("/beacon/v2/info").json()["response"]["description"].split()
        out[token] = (info, words[words.index("of") + 1])
    return out


def test_sample_count_is_one_released_number_and_hides_a_withdrawal(tmp_path):
    store = _copy(tmp_path)
    with genoquery.open(store) as s:
        leaving = [i for i in s.sample_ids if i != "S000001"][:2]
        n = len(s.sample_ids)
    srv = serve(store)
    try:
        before = _counts(srv)
        withdraw(store, leaving, "consent withdrawn")
        after = _counts(srv)
    finally:
        srv.stop()
    rounding = Settings().rounding
    for counts, exact in ((before, n), (after, n - 2)):
        assert counts["ctl"] == (exact, str(exact))  # controlled: exact, withdrawn left out
        for tier in (None, "reg"):
            info, beacon = counts[tier]
            assert str(info) == beacon  # the same number in info and in Beacon
            assert isinstance(info, int)
            assert info % rounding == 0
            assert abs(info - exact) < rounding
    assert before[None] == before["reg"]
    assert after[None] == after["reg"]


# --------------------------------------------------------------------------- inconsistencies


def test_cohorts_take_definition_as_get_returns_it():
    srv = server()
    for field in ("definition", "filter"):
        with srv.client(srv.new_token("registered", f"alias-{field}")) as c:
            r = c.post("/api/v1/cohorts", json={"name": "women", field: FEMALE})
            assert r.status_code == 201, r.text
            assert r.json()["definition"] == FEMALE
            listed = c.get("/api/v1/cohorts").json()["items"]
            assert [i["definition"] for i in listed if i["scope"] == "token"] == [FEMALE]
            both = c.post("/api/v1/cohorts", json={"name": "w2", "definition": FEMALE, "filter": FEMALE})
            assert both.status_code == 422


def test_limit_maximum_is_the_page_size():
    srv = server()
    with srv.client() as c:
        spec = c.get("/openapi.json").json()
        limits = [
            (path, p["schema"].get("maximum"))
            for path, methods in spec["paths"].items()
            for op in methods.values()
            for p in op.get("parameters", [])
            if p["name"] == "limit"
        ]
        over = c.get("/api/v1/variants", params={"region": "chr20:1-2000", "limit": Settings().max_page + 1})
    assert limits
    # the search box's suggestions are not pages: they have a cap of their own
    assert dict(limits).pop("/api/v1/suggest") == MAX_SUGGESTIONS
    assert {m for path, m in limits if path != "/api/v1/suggest"} == {Settings().max_page}, limits
    assert over.status_code == 422


def test_cohort_save_and_phenotypes_work_while_serving(tmp_path):
    store = _copy(tmp_path)
    srv = serve(store)
    try:
        with srv.client("reg") as c:
            assert c.get("/api/v1/cohorts").status_code == 200  # the server has the index open
        cli = [sys.executable, "-m", "genoquery"]
        saved = subprocess.run(
            [*cli, "cohort", str(store), "save", "women_cli", FEMALE], capture_output=True, text=True, timeout=60
        )
        imported = subprocess.run(
            [*cli, "phenotypes", str(store), str(checks.FIXTURES / "conditions.tsv"), "--table", "again"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        with srv.client("reg") as c:
            names = [i["name"] for i in c.get("/api/v1/cohorts").json()["items"]]
    finally:
        srv.stop()
    assert saved.returncode == 0, saved.stderr
    assert imported.returncode == 0, imported.stderr
    assert "Traceback" not in saved.stderr + imported.stderr
    assert "women_cli" in names
    with genoquery.open(store) as s:
        assert s.sql("SELECT count(*) AS n FROM events WHERE table_name = 'again'", []).to_pylist()[0]["n"] > 0
