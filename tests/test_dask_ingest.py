"""Ingest on a Dask LocalCluster (2 worker processes): the store one process writes, byte for byte.

Inputs are split into files whose boundaries fall inside chunk rows (chunks of 32 sites, or of 2
for the FORMAT fields), in every format, with and without an index, so workers write whole chunk
rows, the client the rows they share, and files without an index are counted first; an indexed
file (VCF.gz with a tabix index, BCF with a CSI index) is read in regions whose boundaries fall
inside chunk rows too, each counted first. Every array
file must equal the single process's, every index table too (but the ingest's time and the
lookup file's random name), and the bcftools oracle (``checks.assert_store_matches``). A worker
killed inside its file, a client killed mid-ingest and a bad record in one file leave exact
stores, or the store as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import duckdb
import pytest
from pysam import bcftools

import checks
import genoquery
from genoquery.cli import main
from genoquery.errors import InputFileError
from genoquery.ingest.cluster import commit, task
from genoquery.ingest.records import count_region
from genoquery.ingest.regions import file_regions
from genoquery.ingest.vcf_source import open_source
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.query.cluster.connect import cluster_client
from genoquery.storage.format import INDEX_FILE
from test_vcf_conformance import POLYPLOID, SAMPLES

DATA = Path(__file__).parent / "data"
CHUNK = 32
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers run this module's functions without it


@pytest.fixture(scope="module")
def client():
    """The client of ``--workers 2``: a LocalCluster(n_workers=2, processes=True, threads_per_worker=1)."""
    with cluster_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory) -> list[Path]:
    """The fixture cohort in 5 files whose boundaries fall inside chunk rows of 32 sites: chr20 as
    plain VCF (no index: counted), bgzipped with and without an index, and chrX as indexed BCF."""
    tmp = tmp_path_factory.mktemp("split")
    chr20, chrx = checks.FIXTURE_VCFS
    a = checks.subset_targets(chr20, tmp / "a.vcf", "chr20:1-18936")
    b = checks.subset_targets(chr20, tmp / "b.vcf", "chr20:18937-27592")
    c = checks.subset_targets(chr20, tmp / "c.vcf", "chr20:27593-")
    files = [a, checks.bgzip(b, tmp / "b.vcf.gz"), checks.bgzip(c, tmp / "c.vcf.gz", index=True)]
    files.append(checks.to_bcf(chrx, tmp / "x.bcf", index=True))
    sizes = [sum(1 for line in open(p) if not line.startswith("#")) for p in (a, b, c)]
    assert all(n % CHUNK for n in sizes), sizes  # every boundary inside a chunk row
    return list(reversed(files))


def _index_tables(store: Path) -> dict[str, list]:
    """Every table's rows, sorted, but times (of the ingest) and the lookup file's random name."""
    out = {}
    with duckdb.connect(str(store / INDEX_FILE), read_only=True) as db:
        for (table,) in db.sql("SELECT table_name FROM information_schema.tables").fetchall():
            columns = db.sql(
                f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{table}'"
            ).fetchall()
            kept = [
                f'"{c}"'
                for c, kind in columns
                if not kind.startswith("TIMESTAMP") and (table, c) != ("lookup_files", "name")
            ]
            out[table] = sorted(map(repr, db.sql(f"SELECT {', '.join(kept)} FROM {table}").fetchall()))
    return out


def assert_same_store(one: Path, other: Path) -> None:
    """Every file of the two stores equal (the lookup files by content), and every index table."""
    files = {name: checks.tree_digest(store) for name, store in (("one", one), ("other", other))}
    lookups = {
        k: sorted((p.split(".", 1)[-1], d) for p, d in v.items() if p.startswith("lookup/")) for k, v in files.items()
    }
    assert lookups["one"] == lookups["other"]
    rest = {
        k: {p: d for p, d in v.items() if not p.startswith("lookup/") and p != INDEX_FILE} for k, v in files.items()
    }
    assert rest["one"] == rest["other"]
    assert any(p.startswith("batches/") and "call_genotype/" in p for p in rest["one"])
    assert _index_tables(one) == _index_tables(other)


def test_cluster_store_is_the_single_process_store(cohort_files, client, tmp_path):
    layout = ChunkLayout(variant_chunk=CHUNK)
    persons = checks.FIXTURE_PERSONS
    here = genoquery.ingest(tmp_path / "here.gq", cohort_files, persons=persons, layout=layout, progress=False)
    there = genoquery.ingest(
        tmp_path / "there.gq", cohort_files, persons=persons, layout=layout, progress=False, client=client
    )
    here.close()
    assert_same_store(tmp_path / "here.gq", tmp_path / "there.gq")
    checks.assert_store_matches(there, tmp_path / "there.gq", list(checks.FIXTURE_VCFS))
    there.close()


def test_format_fields_and_batches_on_the_cluster(client, tmp_path):
    """FORMAT arrays that widen from file to file and block to block, in two batches."""
    src = DATA / "format_fields.vcf"
    parts = [
        checks.subset_targets(src, tmp_path / f"f{i}.vcf", t)
        for i, t in enumerate(["chr1:1-20", "chr1:21-30", "chr1:31-"])
    ]
    centers = [checks.FIXTURES / "center1.vcf.gz", checks.FIXTURES / "center2.vcf.gz"]
    layout = ChunkLayout(variant_chunk=2)
    for name, inputs in (("format", parts), ("centers", centers)):
        genoquery.ingest(tmp_path / f"{name}.here.gq", inputs, layout=layout, progress=False).close()
        genoquery.ingest(tmp_path / f"{name}.there.gq", inputs, layout=layout, progress=False, client=client).close()
        assert_same_store(tmp_path / f"{name}.here.gq", tmp_path / f"{name}.there.gq")


def _die_inside_the_file() -> None:
    """Run on a worker: its next file's third block kills its process, as a crash would."""
    encode, seen = task.counted_and_encoded, []

    def dying(block, cells, patterns):
        seen.append(1)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return encode(block, cells, patterns)

    task.counted_and_encoded = dying


def test_workers_killed_inside_files_still_write_the_store(client, tmp_path):
    vcfs, layout = list(checks.FIXTURE_VCFS), ChunkLayout(variant_chunk=CHUNK)
    genoquery.ingest(tmp_path / "here.gq", vcfs, layout=layout, progress=False).close()
    before = client.run(os.getpid)
    client.run(_die_inside_the_file)  # both workers die in their file, after writing chunk rows
    genoquery.ingest(tmp_path / "there.gq", vcfs, layout=layout, progress=False, client=client).close()
    assert_same_store(tmp_path / "here.gq", tmp_path / "there.gq")
    client.wait_for_workers(2)
    assert not set(before.values()) & set(client.run(os.getpid).values())


def _with_bad_record(src: Path, dst: Path, after: int) -> Path:
    lines, seen = [], 0
    for line in open(src):
        if not line.startswith("#"):
            seen += 1
            if seen == after:
                line = line.replace("\t0|0", "\t0|x", 1)
        lines.append(line)
    dst.write_text("".join(lines))
    return dst


def test_a_bad_record_in_one_file_is_one_line_and_the_store_unchanged(cohort_files, client, tmp_path, capsys):
    store = tmp_path / "kept.gq"
    genoquery.ingest(store, [checks.FIXTURE_VCFS[0]], progress=False).close()
    before = checks.tree_digest(store)
    plain = sorted(p for p in cohort_files if p.suffix == ".vcf")[0]
    bad = _with_bad_record(plain, tmp_path / "bad.vcf", after=40)
    files = [bad if p == plain else p for p in cohort_files]
    with pytest.raises(InputFileError, match=r"bad\.vcf, line \d+"):
        genoquery.ingest(store, files, overwrite=True, progress=False, client=client)
    assert checks.tree_digest(store) == before
    argv = ["ingest", str(store), *map(str, files), "--overwrite", "--workers", "1", "--quiet"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().split("\n")
    assert "Dask dashboard" in lines[0]
    assert len(lines) == 2
    assert "bad.vcf, line" in lines[1]
    assert "Traceback" not in lines[1]
    assert checks.tree_digest(store) == before


def test_a_killed_client_leaves_the_store_as_it_was(tmp_path):
    """SIGKILL to the ingest's process group (client and its LocalCluster) while workers write."""
    store = tmp_path / "kept.gq"
    genoquery.ingest(store, [checks.FIXTURE_VCFS[1]], progress=False).close()
    before = checks.tree_digest(store)
    slow = tmp_path / "slow.py"  # every block of the workers' files takes 0.2 s: the kill lands mid-ingest
    slow.write_text(  # the workers import it too (multiprocessing's spawn), and slow down likewise
        "import time, sys\nfrom genoquery.ingest.cluster import task\nencode = task.counted_and_encoded\n"
        "def slow(block, cells, patterns):\n    time.sleep(0.2)\n    return encode(block, cells, patterns)\n"
        "task.counted_and_encoded = slow\nif __name__ == '__main__':\n"
        "    from genoquery.cli import main\n    sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [sys.executable, str(slow), "ingest", str(store), *map(str, checks.FIXTURE_VCFS), "--overwrite"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(genoquery.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    with subprocess.Popen([*argv, "--workers", "2", "--quiet"], env=env, start_new_session=True) as process:
        deadline = time.monotonic() + 60
        while not any(tmp_path.glob(".kept.gq.staging-*/batches/*/genotypes.vcz/call_genotype/0.*")):
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    assert checks.tree_digest(store) == before
    genoquery.open(store).close()


def test_an_append_on_the_cluster_is_the_appended_store(client, tmp_path):
    """``--batch NAME`` on an existing store appends on the cluster too."""
    first, second = checks.FIXTURES / "center1.vcf.gz", checks.FIXTURES / "center3.vcf.gz"
    layout = ChunkLayout(variant_chunk=CHUNK)
    for name, on in (("here", None), ("there", client)):
        genoquery.ingest(tmp_path / f"{name}.gq", [first], layout=layout, progress=False).close()
        genoquery.ingest(
            tmp_path / f"{name}.gq", [second], batch="c3", layout=layout, progress=False, client=on
        ).close()
    assert_same_store(tmp_path / "here.gq", tmp_path / "there.gq")


@pytest.mark.parametrize(
    "name", ["sites_only.vcf", "haploid_missing.vcf", "info_fields.vcf", "chrx_mixed.vcf", "multiallelic.vcf"]
)
def test_every_kind_of_record_on_the_cluster(client, tmp_path, name):
    """No samples, haploid and missing calls, INFO fields, mixed ploidy, multiallelic sites."""
    layout = ChunkLayout(variant_chunk=2)
    for store, on in (("here", None), ("there", client)):
        genoquery.ingest(tmp_path / f"{store}.gq", [DATA / name], layout=layout, progress=False, client=on).close()
    assert_same_store(tmp_path / "here.gq", tmp_path / "there.gq")


def test_calls_of_ploidy_above_2_on_the_cluster(client, tmp_path):
    """Triploid and tetraploid calls in two files (issue 17's wide calls): the workers count them,
    the client keeps their list, and the store is the single process's."""
    files = []
    for i, records in enumerate((POLYPLOID[:2], POLYPLOID[2:])):
        files.append(tmp_path / f"p{i}.vcf")
        files[-1].write_text(checks.vcf_text(SAMPLES, records))
    layout = ChunkLayout(variant_chunk=2)
    for store, on in (("here", None), ("there", client)):
        genoquery.ingest(tmp_path / f"{store}.gq", files, layout=layout, progress=False, client=on).close()
    assert_same_store(tmp_path / "here.gq", tmp_path / "there.gq")
    with genoquery.open(tmp_path / "there.gq") as store:
        assert store.genotypes().gt.shape[2] == 4


def _joined(tmp: Path) -> Path:
    """The fixture cohort as one plain VCF: chr20's 182 records, then chrX's 138."""
    text = tmp / "joined.vcf"
    bcftools.concat("-Ov", "-o", str(text), *map(str, checks.FIXTURE_VCFS), catch_stdout=False)
    return text


def _indexed(text: Path, kind: str) -> Path:
    """``text`` as VCF.gz with a tabix index, or as BCF with a CSI index."""
    if kind == "bcf":
        return checks.to_bcf(text, text.with_suffix(".bcf"), index=True)
    return checks.bgzip(text, text.with_suffix(".vcf.gz"), index=True)


def _region_sizes(path: Path) -> list[int]:
    """The records of each region the cluster's ingest reads ``path`` in, with chunk rows of CHUNK
    and partitions of one chunk row (``commit.PARTITION_CALLS`` patched to 1)."""
    source = open_source(path)
    return [count_region(source, region).records for region in file_regions(source, CHUNK) or ()]


@pytest.mark.parametrize("kind", ["vcf.gz", "bcf"])
def test_an_indexed_file_in_regions_is_the_single_process_store(client, tmp_path, monkeypatch, kind):
    """One file read as several regions (cut at its index's windows, each counted on a worker):
    the store equals the single process's, byte for byte, and the bcftools oracle."""
    monkeypatch.setattr(commit, "PARTITION_CALLS", 1)  # partitions of one chunk row's records
    path = _indexed(_joined(tmp_path), kind)
    sizes = _region_sizes(path)
    assert len(sizes) >= 3, sizes
    assert sum(sizes) == 182 + 138
    assert all(sum(sizes[: i + 1]) % CHUNK for i in range(len(sizes) - 1)), sizes  # boundaries inside chunk rows
    layout = ChunkLayout(variant_chunk=CHUNK)
    persons = checks.FIXTURE_PERSONS
    genoquery.ingest(tmp_path / "here.gq", [path], persons=persons, layout=layout, progress=False).close()
    there = genoquery.ingest(
        tmp_path / "there.gq", [path], persons=persons, layout=layout, progress=False, client=client
    )
    assert_same_store(tmp_path / "here.gq", tmp_path / "there.gq")  # the index's line numbers too
    checks.assert_store_matches(there, tmp_path / "there.gq", list(checks.FIXTURE_VCFS))
    there.close()


def test_a_bad_record_in_a_middle_region_is_the_single_process_error(client, tmp_path, monkeypatch, capsys):
    """A bad record in the middle one of three regions read on the workers: the single process's
    one line (file and line number), exit status 2, the store as it was."""
    monkeypatch.setattr(commit, "PARTITION_CALLS", 1)
    bad = _with_bad_record(_joined(tmp_path), tmp_path / "bad.vcf", after=182 + 40)  # chrX's 40th record
    path = _indexed(bad, "vcf.gz")
    sizes = _region_sizes(path)
    assert len(sizes) == 3, sizes
    assert sizes[0] < 182 + 40 <= sizes[0] + sizes[1], sizes
    layout = ChunkLayout(variant_chunk=CHUNK)
    with pytest.raises(InputFileError) as here:
        genoquery.ingest(tmp_path / "here.gq", [path], layout=layout, progress=False)
    assert ", line " in str(here.value)
    store = tmp_path / "kept.gq"
    genoquery.ingest(store, [checks.FIXTURE_VCFS[0]], progress=False).close()
    before = checks.tree_digest(store)
    with pytest.raises(InputFileError) as there:
        genoquery.ingest(store, [path], overwrite=True, layout=layout, progress=False, client=client)
    assert str(there.value) == str(here.value)
    assert checks.tree_digest(store) == before
    assert main(["ingest", str(store), str(path), "--overwrite", "--workers", "2", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().split("\n")
    assert len(lines) == 2
    assert lines[1].endswith(str(here.value)), lines[1]
    assert checks.tree_digest(store) == before
