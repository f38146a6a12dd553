"""Stores on object storage (``s3://``), against the loopback S3 server of tests/conftest.py.

The oracle tests run on S3 too (``checks.LOCAL_AND_S3`` and the parametrised ``store`` of
tests/test_cohort_queries.py); here: what only object storage has. Appends commit by writing
the pointer last, so a writer killed during its uploads or just before the pointer leaves the
old state answering and ``verify`` passing; the local mirror of the index follows the pointer
and refuses a damaged download; export, association and ``genoquery serve`` answer as on a local
store; bad URLs, missing buckets, missing credentials and unreachable endpoints are one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

import checks
import genoquery
from conftest import S3_BUCKET, s3_store_url
from genoquery.errors import StoreError
from genoquery.index.phenotypes import import_table
from genoquery.ingest.compact import compact
from genoquery.ingest.withdraw import withdraw
from genoquery.storage import objects
from genoquery.verify import verify
from test_server_support import serve

CENTERS = [checks.FIXTURES / f"center{i}.vcf.gz" for i in (1, 2)]

# Runs an append (or with "overwrite", an ingest replacing the store) in a process that SIGKILLs
# itself at a point of the commit: after the first few of the new batch's objects are uploaded, or
# when it is about to write the pointer.
KILLED_WRITE = """
import os, signal, sys
import s3fs
import genoquery

point, url, vcf, *overwrite = sys.argv[1:]
put_file, pipe_file = s3fs.S3FileSystem._put_file, s3fs.S3FileSystem._pipe_file
uploaded = []

async def put_then_die(self, lpath, rpath, *args, **kwargs):
    done = await put_file(self, lpath, rpath, *args, **kwargs)
    uploaded.append(rpath)
    if point == "uploads" and len(uploaded) == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return done

async def die_before_pointer(self, path, *args, **kwargs):
    if point == "pointer" and path.endswith("/genoquery.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return await pipe_file(self, path, *args, **kwargs)

s3fs.S3FileSystem._put_file, s3fs.S3FileSystem._pipe_file = put_then_die, die_before_pointer
options = {"overwrite": True} if overwrite else {"batch": "second"}
genoquery.ingest(url, [vcf], progress=False, **options)
"""


def _objects(url: str) -> set[str]:
    fs, root = fsspec.url_to_fs(url)
    return {p.removeprefix(root + "/") for p in fs.find(root)}


def _pointer(url: str) -> dict:
    fs, root = fsspec.url_to_fs(url)
    return json.loads(fs.cat_file(f"{root}/genoquery.json"))


def _answers(store) -> tuple:
    return (
        store.variants(),
        store.frequencies(cohort=store.sample_ids[::3].tolist()),
        store.samples().drop_columns(["source"]),
    )


@pytest.mark.parametrize("point", ["uploads", "pointer"])
def test_killed_append_leaves_the_old_state_answering_and_verified(request, tmp_path, point):
    url = s3_store_url(request)
    with genoquery.ingest(url, [CENTERS[0]], progress=False) as store:
        before = _answers(store)
    pointer = _pointer(url)
    run = subprocess.run([sys.executable, "-c", KILLED_WRITE, point, url, str(CENTERS[1])], capture_output=True)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()
    left = _objects(url)
    assert any(k.startswith("batches/second/") for k in left), "the killed append uploaded nothing"
    if point == "pointer":
        assert any(k.startswith("index/index-2-") for k in left), "killed before its index was uploaded"
    assert _pointer(url) == pointer
    with genoquery.open(url) as store:
        assert [t.equals(b) for t, b in zip(_answers(store), before, strict=True)] == [True] * 3
    report = verify(url, [CENTERS[0]])
    assert report.ok, report.problems
    if point == "uploads":
        return  # the next commit is checked after the later kill, which leaves more behind
    # the next append commits, and deletes what the killed one left
    with genoquery.ingest(url, [CENTERS[1]], batch="second", progress=False) as store:
        after = _answers(store)
    local = tmp_path / "local.gq"
    genoquery.ingest(local, [CENTERS[0]], progress=False).close()
    with genoquery.ingest(local, [CENTERS[1]], batch="second", progress=False) as expected:
        assert [t.equals(e) for t, e in zip(after, _answers(expected), strict=True)] == [True] * 3
    assert verify(url).ok
    named = _pointer(url)
    assert named["generation"] == pointer["generation"] + 1
    kept = {e["key"] for p in (named, pointer) for e in [*p["lookup"], p["index"]]}
    for key in _objects(url):
        assert key == "genoquery.json" or key in kept or key.startswith(("batches/center1/", "batches/second/")), key


def test_killed_overwrite_leaves_the_old_store(request):
    url = s3_store_url(request)
    with genoquery.ingest(url, [CENTERS[0]], progress=False) as store:
        before = _answers(store)
    pointer = _pointer(url)
    run = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, "pointer", url, str(CENTERS[1]), "overwrite"], capture_output=True
    )
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()
    assert any(k.startswith("batches/center2/") for k in _objects(url)), "killed before its uploads"
    assert _pointer(url) == pointer
    with genoquery.open(url) as store:
        assert [t.equals(b) for t, b in zip(_answers(store), before, strict=True)] == [True] * 3
    assert verify(url, [CENTERS[0]]).ok


def test_a_commit_that_lost_the_race_to_another_machine_changes_nothing(request, tmp_path, monkeypatch):
    """Another machine's writer (its own mirror, so not held off by this one's lock) commits after
    this append checked the pointer: the conditional PUT of the pointer refuses this commit."""
    url = s3_store_url(request)
    genoquery.ingest(url, [CENTERS[0]], progress=False).close()
    upload = objects._upload_tree

    def rival_commits_first(directory, target):
        monkeypatch.setattr(objects, "_upload_tree", upload)
        elsewhere = {"GENOQUERY_CACHE": str(tmp_path / "elsewhere")}
        run = _cli(
            "ingest", url, str(Path(__file__).parent / "data" / "multiallelic.vcf"), "--batch", "rival", env=elsewhere
        )
        assert run.returncode == 0, run.stderr
        upload(directory, target)

    monkeypatch.setattr(objects, "_upload_tree", rival_commits_first)
    with pytest.raises(StoreError, match="another writer committed while this one uploaded"):
        genoquery.ingest(url, [CENTERS[1]], batch="second", progress=False)
    assert _pointer(url)["batches"] == ["batches/center1", "batches/rival"]
    with genoquery.open(url) as store:
        assert [b.name for b in store.batches] == ["center1", "rival"]
    assert verify(url).ok


def test_mirror_follows_the_pointer_and_refuses_a_damaged_index(request):
    url = s3_store_url(request)
    genoquery.ingest(url, [CENTERS[0]], progress=False).close()
    local = objects.mirror_path(url)
    with genoquery.open(url) as first:
        n = first.info["samples"]
    index = local / "index.duckdb"
    inode = index.stat().st_ino
    with genoquery.open(url):
        assert index.stat().st_ino == inode, "an unchanged pointer downloaded the index again"
    genoquery.ingest(url, [CENTERS[1]], batch="second", progress=False).close()  # a writer elsewhere: a new pointer
    with genoquery.open(url) as second:
        assert second.info["samples"] > n
    index.write_bytes(b"damaged")  # a mirror that no longer matches its pointer is fetched again
    with genoquery.open(url) as again:
        assert again.info["samples"] == second.info["samples"]
    fs, root = fsspec.url_to_fs(url)
    fs.pipe_file(f"{root}/{_pointer(url)['index']['key']}", b"not the index the pointer names")
    index.unlink()
    with pytest.raises(StoreError, match="sha256"):
        genoquery.open(url)


def test_export_association_imports_withdrawal_as_on_a_local_store(request, tmp_path):
    url = s3_store_url(request)
    remote = checks.ingest_fixture(url)
    local = checks.ingest_fixture(tmp_path / "local.gq")
    for store, name in ((remote, "s3"), (local, "local")):
        store.export_vcf(tmp_path / f"{name}.vcf", region="chr20:1-30000")
    assert (tmp_path / "s3.vcf").read_bytes() == (tmp_path / "local.vcf").read_bytes()
    tests = [
        s.associate("ldl_mg_dl", ["pc1", "pc2"], region="chr20", min_mac=2, progress=False) for s in (remote, local)
    ]
    assert tests[0].equals(tests[1])
    remote.save_cohort("women", "sex_at_birth = 'Female'")  # index-only writes commit a new pointer too
    remote.close()
    local.close()
    for store in (url, tmp_path / "local.gq"):
        import_table(store, checks.FIXTURES / "conditions.tsv")
        withdraw(store, ["S000003", "S000010"], "consent withdrawn")
    with genoquery.open(url) as remote, genoquery.open(tmp_path / "local.gq") as local:
        assert remote.cohorts()["name"].to_pylist() == ["women"]
        assert remote.frequencies("chr20", cohort="has_condition('E11')").equals(
            local.frequencies("chr20", cohort="has_condition('E11')")
        )
        assert remote.variants().equals(local.variants())
        assert remote.carriers(region="chr20:1-20000").equals(local.carriers(region="chr20:1-20000"))
    assert verify(url).ok
    with pytest.raises(StoreError, match="compact is not supported"):  # it would leave the genotypes erased
        compact(url)


def test_serve_answers_as_on_a_local_store(request, tmp_path):
    url = s3_store_url(request)
    checks.ingest_fixture(url).close()
    checks.ingest_fixture(tmp_path / "local.gq").close()
    servers = [serve(url), serve(tmp_path / "local.gq")]
    try:
        with genoquery.open(url) as store:
            key = store.variants(region="chr20:1-5000").column("variant_key")[0].as_py()
        answers = []
        for server in servers:
            with server.client("ctl") as client:
                replies = [
                    client.get(f"/api/v1/variants/{key}"),
                    client.get("/api/v1/frequencies", params={"region": "chr20:1-20000"}),
                    client.get("/api/v1/carriers", params={"variant": key}),
                    client.get("/api/v1/export.vcf", params={"region": "chr20:1-20000"}),
                ]
            assert [r.status_code for r in replies] == [200] * 4
            answers.append([*(r.json() for r in replies[:3]), replies[3].text])
        assert answers[0] == answers[1]
        assert answers[0][0]["items"][0]["variant_key"] == key
        # an append from another machine (its own mirror) is served within FOLLOW_S, without a restart
        with servers[0].client("ctl") as client:
            sites = client.get("/api/v1/info").json()["sites"]
            elsewhere = {"GENOQUERY_CACHE": str(tmp_path / "elsewhere")}
            run = _cli(
                "ingest",
                url,
                str(Path(__file__).parent / "data" / "multiallelic.vcf"),
                "--batch",
                "more",
                env=elsewhere,
            )
            assert run.returncode == 0, run.stderr
            deadline = time.monotonic() + 30
            while client.get("/api/v1/info").json()["sites"] == sites and time.monotonic() < deadline:
                time.sleep(0.5)
            assert client.get("/api/v1/info").json()["sites"] > sites
    finally:
        for server in servers:
            server.stop()


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genoquery", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "env", "says"),
    [
        (f"s3://{S3_BUCKET}-missing/x/cohort.gq", {}, "not found"),
        (f"s3://{S3_BUCKET}/nothing-here/cohort.gq", {}, "no such store"),
        (
            f"s3://{S3_BUCKET}/x/cohort.gq",
            {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
            "no credentials",
        ),
        (
            f"s3://{S3_BUCKET}/x/cohort.gq",
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
            "cannot reach the object store",
        ),
        ("nosuchprotocol://bucket/x", {}, "not a store URL"),
        (f"s3://{S3_BUCKET}/not-a-store", {}, "not a genoquery pointer"),
        (f"s3://{S3_BUCKET}/a-store", {"GENOQUERY_CACHE": "/proc/genoquery-cache"}, "set GENOQUERY_CACHE"),
    ],
    ids=[
        "missing bucket",
        "missing store",
        "no credentials",
        "unreachable endpoint",
        "unknown protocol",
        "not a store",
        "unwritable cache",
    ],
)
def test_errors_are_one_line(s3, url, env, says):
    fs = fsspec.filesystem("s3")
    fs.pipe_file(f"{S3_BUCKET}/not-a-store/genoquery.json", b"<html>a web page</html>")
    fs.pipe_file(f"{S3_BUCKET}/a-store/genoquery.json", json.dumps({"format_version": 3}).encode())
    run = _cli("variants", url, env=env)
    assert run.returncode == 2, run.stderr
    assert says in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr


def test_cli_ingest_and_query(request, tmp_path):
    url = s3_store_url(request)
    local = str(tmp_path / "local.gq")
    for store in (url, local):
        run = _cli("ingest", store, str(CENTERS[0]))
        assert run.returncode == 0, run.stderr
        assert run.stderr.startswith(f"{store}: ")  # the URL, not the local mirror
    assert "already exists" in _cli("ingest", url, str(CENTERS[0])).stderr
    queries = [
        ("variants", "{}", "-r", "chr20:1-20000"),
        ("query", "{}", "carriers", "-r", "chr20:1-20000"),
    ]
    for query in queries:
        answers = [_cli(*(a.format(store) for a in query)) for store in (url, local)]
        assert answers[0].returncode == 0, answers[0].stderr
        assert answers[0].stdout == answers[1].stdout
