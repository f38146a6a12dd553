"""Scans on a Dask LocalCluster (2 worker processes): the answers of one process, and the oracles'.

The 120-sample fixture cohort is ingested with 32-site chunks, and partitions
(:mod:`genoquery.query.cluster.partitions`) are one chunk row each, so each contig is several. Every scan on the
cluster must equal the single-process answer, and through the existing test helpers, the
independent oracles: bcftools for frequencies and carriers (``test_cohort_queries``),
statsmodels for association (``test_association``). A worker process killed inside a task is
restarted by its nanny and the scheduler reruns the task: the answer is still exact.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import os
import shutil
import signal
import sys

import cloudpickle
import pandas as pd
import pytest
from distributed import Client, get_task_stream

import checks
import genoquery
import test_association as assoc
import test_cohort_queries as cq
from genoquery.cli import main
from genoquery.errors import ClusterError, QueryError
from genoquery.index.genes import import_genes
from genoquery.index.phenotypes import import_table
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.query.cluster import connect, tasks
from genoquery.query.cluster import partitions as partitioning
from genoquery.query.cluster.connect import cluster_client
from genoquery.query.cluster.partitions import partitions
from genoquery.query.cluster.scans import gene_carriers
from genoquery.verify import verify

CHUNK = 32
genes, whole_af = cq.genes, cq.whole_af  # the gene coordinates and whole-cohort AF of the bcftools tests
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers run this module's functions without it


@pytest.fixture(scope="module")
def client():
    """The client of ``--workers 2``: a LocalCluster(n_workers=2, processes=True, threads_per_worker=1)."""
    with cluster_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module", autouse=True)
def one_chunk_row_a_partition():
    """Partitions of one chunk row: by calls (PARTITION_CALLS), 120 samples would make a contig one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(partitioning, "PARTITION_CALLS", CHUNK * 120)
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("dask") / "cohort.gq"
    genoquery.ingest(
        path, list(checks.FIXTURE_VCFS), persons=checks.FIXTURE_PERSONS, layout=ChunkLayout(variant_chunk=CHUNK)
    ).close()
    import_table(path, assoc.CONDITIONS)
    import_genes(path, checks.FIXTURE_GTF)
    with genoquery.open(path) as s:
        yield s


@pytest.fixture(scope="module")
def persons() -> pd.DataFrame:
    return pd.read_csv(checks.FIXTURE_PERSONS, sep="\t", dtype={"sample_id": str})


def test_partitions_are_chunk_rows_covering_every_site(store, monkeypatch):
    parts = partitions(store)
    assert [p.first_site for p in parts] == [0, *(p.last_site + 1 for p in parts[:-1])]
    assert parts[-1].last_site == store.info["sites"] - 1
    batch_row = store.sql("SELECT batch_row FROM batch_sites ORDER BY site_row", [])["batch_row"].to_pylist()
    for before, part in itertools.pairwise(parts):  # a contig's first partition starts with the contig
        if before.region.split(":")[0] == part.region.split(":")[0]:
            assert batch_row[part.first_site] % CHUNK == 0, part
    assert all(p.sites <= CHUNK for p in parts)
    assert len(partitions(store, "chr20")) == math.ceil(182 / CHUNK)
    assert len(partitions(store, "chr20", chunks=4)) == 2
    monkeypatch.setattr(partitioning, "PARTITION_CALLS", 4 * CHUNK * 120 + 1)
    assert len(partitions(store, "chr20")) == 2  # as many chunk rows as hold PARTITION_CALLS calls
    assert partitions(store, "chr20:2-152") == []  # before the first site


@pytest.mark.parametrize("name", ["filter", "every3rd", "shuffled"])
@pytest.mark.parametrize("region", [None, "chr20", "chr20:1000-40000,chrX:2790000-2800000"])
def test_frequencies_equal_one_process_and_bcftools(store, client, persons, name, region):
    cohort, members = cq.cohort_ids(name, persons)
    table = store.frequencies(region, cohort, client=client, progress=False)
    assert table.equals(store.frequencies(region, cohort))
    assert table.num_rows > 0
    expected_region = None if region is None or "," in region else region
    if expected_region == region:
        cq.assert_frequencies(table, cq.VCFS, members, region)


def test_frequencies_by_group_equal_one_process_and_bcftools(store, client, persons):
    cohort, members = cq.cohort_ids("filter", persons)
    table = store.frequencies("chr20", cohort, by="ancestry", client=client, progress=False)
    assert table.equals(store.frequencies("chr20", cohort, by="ancestry"))
    cq.assert_frequencies(table, cq.VCFS, members, "chr20", by="ancestry", groups=cq.groups_of(persons, "ancestry"))


def test_small_questions_stay_in_the_process(store, client):
    """Everyone's statistics come from the index, a one-partition region and one gene run here."""
    with get_task_stream(client) as stream:
        store.frequencies("chr20", client=client)
        store.frequencies("chr20:1000-2000", cohort="sex_at_birth = 'Female'", client=client)
        gene_carriers(store, ["GQA1"], client=client)
    assert stream.data == []
    with get_task_stream(client) as stream:
        store.frequencies("chr20", cohort="sex_at_birth = 'Female'", client=client, progress=False)
    partition_tasks = [t for t in stream.data if str(t["key"]).startswith("_remote")]
    assert len(partition_tasks) == math.ceil(182 / CHUNK)  # one a partition (and one holding the cohort)


def test_errors_of_a_partition_are_the_usual_errors(store, client):
    with pytest.raises(QueryError, match="no person-table column 'nope'"):
        store.frequencies("chr20", "sex_at_birth = 'Female'", by="nope", client=client)
    with pytest.raises(QueryError, match="phenotype 'nope' is neither a person-table column"):
        store.associate("nope", [], region="chr20", client=client)


@pytest.mark.parametrize("filters", [{"af_max": 0.01}, {"af_min": 0.01, "af_max": 0.2, "pass_only": True}])
def test_gene_carriers_equal_one_process_and_bcftools(store, client, genes, whole_af, filters):
    names = [*genes, *genes]  # a gene may be asked twice: its rows twice
    table = gene_carriers(store, names, client=client, **filters)
    assert table.equals(gene_carriers(store, names, **filters))
    assert table.column_names == ["gene", *cq.CARRIER_COLUMNS]
    want = []
    for name in names:
        contig, start, end = genes[name]
        rows = cq.expected_carriers(cq.VCFS, keep=cq.burden_keep(whole_af, contig, start, end, **filters))
        want += [(name, *r) for r in rows]
    assert [(r["gene"], *(r[c] for c in cq.CARRIER_COLUMNS)) for r in table.to_pylist()] == want
    assert len(want) > 0


def test_linear_association_equals_one_process_and_statsmodels(store, client):
    table = store.associate("ldl_mg_dl", assoc.COVARIATES, min_mac=2, client=client, progress=False)
    assert table.equals(store.associate("ldl_mg_dl", assoc.COVARIATES, min_mac=2, progress=False))
    assert assoc._ols_matches(table.to_pylist()) > 100


def test_logistic_association_equals_one_process_and_statsmodels(store, client):
    table = store.associate("E11", assoc.COVARIATES, region="chr20", min_mac=1, client=client, progress=False)
    assert table.equals(store.associate("E11", assoc.COVARIATES, region="chr20", min_mac=1, progress=False))
    tested = [r for r in table.to_pylist() if r["status"] == "ok"]
    assert len(tested) > 30
    for r in tested:
        n, beta, se, p = assoc.oracle_fit("E11", r["variant_key"], True)
        assert r["n"] == n
        assert assoc.close(r["beta"], beta), r
        assert assoc.close(r["se"], se), r
        assert assoc.close(r["p"], p), r


def test_verify_reports_the_same(store, client, tmp_path):
    report = verify(store.path, checks.FIXTURE_VCFS, client=client)
    assert report == verify(store.path, checks.FIXTURE_VCFS)
    assert report.ok
    assert report.checked["sources"] == 2
    assert report.checked["statistics"] > 2000
    broken = tmp_path / "broken.gq"
    shutil.copytree(store.path, broken)
    chunk = next(p for p in sorted((broken / "batches").glob("*/genotypes.vcz/call_genotype/*")) if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:-3] + b"xyz")
    damaged = verify(broken, client=client)
    assert not damaged.ok
    assert damaged == verify(broken)
    assert any("sha256 differs" in p for p in damaged.problems)


def _die_in_next_task() -> None:
    """Run on a worker: its next partition task kills its own process, as a crash would."""
    tasks._handle = _kill_this_process


def _kill_this_process(target) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_workers_killed_inside_tasks_still_give_exact_answers(store, client, persons):
    cohort, members = cq.cohort_ids("every3rd", persons)
    want = store.frequencies(None, cohort)
    before = client.run(os.getpid)
    client.run(_die_in_next_task)  # both workers die in their first task; their nannies restart them
    table = store.frequencies(None, cohort, client=client, progress=False)
    assert table.equals(want)
    cq.assert_frequencies(table, cq.VCFS, members)
    client.wait_for_workers(2)
    assert not set(before.values()) & set(client.run(os.getpid).values())


def test_cli_runs_on_workers_or_says_why_not(store, monkeypatch, capsys):
    assert main(["verify", str(store.path), "--workers", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "Dask dashboard: http://" in err
    assert "verified" in err
    monkeypatch.setattr(connect, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setenv(connect.ADDRESS_VARIABLE, "tcp://127.0.0.1:9")
    for argv, message in (
        ([], "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--cluster", "tcp://127.0.0.1:9", "--workers", "2"], "give --cluster ADDRESS or --workers N, not both"),
    ):
        women = ["--cohort", "sex_at_birth = 'Female'"]
        assert main(["query", str(store.path), "frequencies", "chr20", *women, *argv]) == 2
        lines = capsys.readouterr().err.strip().split("\n")
        assert len(lines) == 1
        assert message in lines[0]


def test_workers_refuse_an_index_other_than_the_clients(store, client):
    """A commit between the client's open and a worker's (here: a stamp no file has) is an error,
    never an answer from another state of the store."""
    parts = partitions(store, "chr20")
    run = functools.partial(
        tasks.run_partitions, client, _sites, parts, (), local=store, weights=[1] * len(parts), desc="", unit=""
    )
    with pytest.raises(ClusterError, match="the store's index changed while the question ran"):
        run(target=tasks.Target(store.path, (0, 0, 0)), progress=False)
    assert run(target=tasks.Target(store.path, store.index_stamp), progress=False) == [p.sites for p in parts]


def _sites(store, part) -> int:
    return store.sql(
        "SELECT count(*) AS n FROM sites WHERE site_row BETWEEN ? AND ?", [part.first_site, part.last_site]
    )["n"][0].as_py()


def _confinement() -> tuple[list[int], int, str | None]:
    """Run on a worker: the cores it may use, its engine pools' size, numba's thread count."""
    threads = importlib.import_module("genoquery.storage.shard_reads").READ_THREADS  # the worker's, not pickled
    return sorted(os.sched_getaffinity(0)), threads, os.environ.get("NUMBA_NUM_THREADS")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores to give each worker its own")
def test_workers_confined_to_a_core_each(store, persons):
    """``local_cluster(2, cores=1)`` (the benchmarks' fair measure of scaling): each worker on one
    core of its own, whatever its nanny restarts, its pools and numba sized to one thread; the
    answers are the single process's."""
    with Client(connect.local_cluster(2, cores=1)) as client:
        seen = client.run(_confinement)
        assert sorted(cores for cores, _, _ in seen.values()) == [[c] for c in sorted(os.sched_getaffinity(0))[:2]]
        assert {(threads, numba) for _, threads, numba in seen.values()} == {(1, "1")}
        client.restart()
        assert sorted(cores for cores, _, _ in client.run(_confinement).values()) == sorted(
            cores for cores, _, _ in seen.values()
        )
        cohort = "sex_at_birth = 'Female'"
        want = store.frequencies("chr20", cohort)
        assert store.frequencies("chr20", cohort, client=client).equals(want)
        client.cluster.close()
