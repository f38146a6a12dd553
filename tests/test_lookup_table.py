"""Key lookups through the memory-mapped lookup files (``genoquery.storage.lookup_table``).

Every key of the fixture centers' store is looked up and compared with ``bcftools merge``
counted by the oracle (pysam), after an append, a withdrawal and a person-table re-import,
each of which writes new files and deletes the old; so are every variant's carriers, whose
records come from the lookup file of sites. When the files are gone, or the index
names none (a store written before them), lookups go to DuckDB and give the same answers.
``verify`` finds files that no longer match the index.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pysam.bcftools as bcftools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import checks
import genoquery
import oracle
from genoquery.errors import QueryError
from genoquery.index.phenotypes import import_table
from genoquery.ingest.withdraw import withdraw
from genoquery.storage.format import LOOKUP_DIR
from genoquery.storage.id_hash import id_hashes
from genoquery.storage.lookup_table import fnv1a
from genoquery.verify import verify

CENTERS = tuple(sorted(checks.FIXTURES.glob("center*.vcf.gz")))
STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")
FILES_PER_LOOKUP = 6  # NAME.arrow, .locus.npy, .sites.arrow, .site_row.npy, .id_hash.npy, .id_row.npy


def _merged(vcfs, out: Path) -> Path:
    bcftools.merge("-m", "none", "-Oz", "-o", str(out), *map(str, vcfs), catch_stdout=False)
    return out


def _lookups_equal_bcftools(store: genoquery.Store, merged: Path) -> int:
    """Look up every allele of ``merged`` by key (also spelled ``20:POS:REF:ALT``); returns how many."""
    expected = oracle.allele_stats(merged)
    for e in expected:
        for spelling in (f"{e.contig}-{e.pos}-{e.ref}-{e.alt}", f"{e.contig[3:]}:{e.pos}:{e.ref}:{e.alt}"):
            rows = store.lookup(spelling).to_pylist()
            assert len(rows) == 1, spelling
            assert tuple(rows[0][s] for s in STATS) == tuple(getattr(e, s) for s in STATS), spelling
    return len(expected)


def _carriers_equal_bcftools(store: genoquery.Store, merged: Path) -> int:
    """Carriers of every ALT allele of ``merged``, one variant at a time (each site's records from
    the lookup file of sites), against the samples whose GT bcftools prints with that allele."""
    assert store._lookup_table.sites is not None  # the path under test
    text = bcftools.query("-f", "%CHROM-%POS-%REF-%ALT[\t%SAMPLE=%GT]\n", str(merged))
    checked = 0
    for line in text.splitlines():
        key, *calls = line.split("\t")
        for number, alt in enumerate(key.split("-", 3)[3].split(","), start=1):
            alleles = ((s, gt.replace("|", "/").split("/")) for s, gt in (c.split("=") for c in calls))
            want = sorted(s for s, gt in alleles if str(number) in gt)
            variant = "-".join([*key.split("-")[:3], alt])
            assert sorted(store.carriers(variant)["sample_id"].to_pylist()) == want, variant
            checked += 1
    return checked


def _files(path: Path) -> set[str]:
    return {p.name for p in (path / LOOKUP_DIR).iterdir()}


@pytest.fixture(scope="module")
def appended(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lookup")
    path = root / "centers.gq"
    genoquery.ingest(path, list(CENTERS[:2]), persons=checks.FIXTURE_PERSONS, progress=False).close()
    genoquery.ingest(path, [CENTERS[2]], batch="late", progress=False).close()
    return path


def test_every_key_after_an_append_equals_bcftools_merge(appended, tmp_path) -> None:
    with genoquery.open(appended) as store:
        assert store._lookup_table is not None  # the path under test
        merged = _merged(CENTERS, tmp_path / "merged.vcf.gz")
        n = _lookups_equal_bcftools(store, merged)
        assert _carriers_equal_bcftools(store, merged) == 322
    assert n == 322
    assert len(_files(appended)) == FILES_PER_LOOKUP  # the first ingest's files were deleted by the append's commit
    assert verify(appended).checked["lookup rows"] == 322


def test_regions_from_the_lookup_files_equal_bcftools_merge(appended, tmp_path) -> None:
    """Region lookups are slices of the lookup files (no DuckDB): each region's ALT alleles, in
    site then allele order, with the oracle's statistics; ends inclusive, a single position, an
    empty stretch and a whole contig."""
    expected = oracle.allele_stats(_merged(CENTERS, tmp_path / "merged.vcf.gz"))
    positions = sorted({(e.contig, e.pos) for e in expected})
    rng = np.random.default_rng(11)
    regions = [f"{c}:{p}-{p}" for c, p in positions[::40]] + ["chr20", "chrX", "chr20:1-10"]
    for _ in range(25):
        (c1, p1), (c2, p2) = (positions[i] for i in sorted(rng.choice(len(positions), 2, replace=False)))
        regions.append(f"{c1}:{p1}-{p2 if c2 == c1 else p1 + 50_000}")
    with genoquery.open(appended) as store:
        assert store._lookup_table is not None  # the path under test
        for region in regions:
            contig, _, span = region.partition(":")
            start, end = map(int, span.split("-")) if span else (1, 2**31 - 1)
            want = [
                (f"{e.contig}-{e.pos}-{e.ref}-{e.alt}", *(getattr(e, s) for s in STATS))
                for e in expected
                if e.contig == contig and start <= e.pos <= end
            ]
            got = store.lookup(region=region).to_pylist()
            assert [(r["variant_key"], *(r[s] for s in STATS)) for r in got] == want, region


def test_ids_from_the_lookup_files_equal_bcftools_merge(appended, tmp_path) -> None:
    """Every ID of the merged VCF is found through the lookup files of IDs (no DuckDB), with the
    keys of the records bcftools prints with it, by site then allele; an unknown ID is refused."""
    merged = _merged(CENTERS, tmp_path / "merged.vcf.gz")
    want: dict[str, list[str]] = {}
    for line in bcftools.query("-f", "%ID\t%CHROM-%POS-%REF\t%ALT\n", str(merged)).splitlines():
        vid, site, alts = line.split("\t")
        if vid != ".":
            want.setdefault(vid, []).extend(f"{site}-{alt}" for alt in alts.split(","))
    assert len(want) > 100
    with genoquery.open(appended) as store:
        table = store._lookup_table
        assert table is not None
        for vid, keys in want.items():
            assert table.rows_with_id(vid).column("variant_key").to_pylist() == keys, vid  # the path under test
            assert store.lookup(vid)["variant_key"].to_pylist() == keys, vid
        assert table.rows_with_id("rs1").num_rows == 0
        with pytest.raises(QueryError, match="rsID rs1 is not in this store"):
            store.lookup("rs1")
    assert verify(appended).ok
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    rows = next((path / LOOKUP_DIR).glob("*.id_row.npy"))
    np.save(rows, np.load(rows)[::-1].copy())  # IDs pointing at other rows
    name = rows.name.split(".")[0]
    assert verify(path).problems == [f"{LOOKUP_DIR}/{name}.id_hash.npy, .id_row.npy: not the hashes of its rows' IDs"]


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=20))
def test_one_ids_hash_in_python_equals_the_compiled_hashes(ids) -> None:
    """The lookup hashes one ID in Python (no numba at lookup time); the files were written by
    the compiled kernel: both must give every ID, any text, the same FNV-1a hash."""
    compiled = id_hashes(pa.array(ids, pa.string()))
    assert [fnv1a(i) for i in ids] == compiled.tolist()


def test_lookups_follow_a_withdrawal_and_a_person_reimport(appended, tmp_path) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    gone = [oracle.sample_names(CENTERS[0])[1], oracle.sample_names(CENTERS[2])[0]]
    before = _files(path)
    withdraw(path, gone, "consent withdrawn")
    assert _files(path).isdisjoint(before)
    assert len(_files(path)) == FILES_PER_LOOKUP
    without = []
    for center in CENTERS:
        out = tmp_path / center.name
        bcftools.view(
            "-s", "^" + ",".join(gone), "--force-samples", "-Oz", "-o", str(out), str(center), catch_stdout=False
        )
        bcftools.index("-t", str(out), catch_stdout=False)
        without.append(out)
    merged = _merged(without, tmp_path / "merged.vcf.gz")
    with genoquery.open(path) as store:
        _lookups_equal_bcftools(store, merged)
        _carriers_equal_bcftools(store, merged)

    before = _files(path)
    import_table(path, checks.FIXTURE_PERSONS)  # rebuilds the statistics: new files
    assert _files(path).isdisjoint(before)
    assert len(_files(path)) == FILES_PER_LOOKUP
    with genoquery.open(path) as store:
        _lookups_equal_bcftools(store, merged)
    assert verify(path).ok


def test_without_lookup_files_lookups_go_to_duckdb(appended, tmp_path) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    with genoquery.open(path) as store:
        expected = {k: store.lookup(k) for k in store.variants()["variant_key"].to_pylist()}
    shutil.rmtree(path / LOOKUP_DIR)
    with genoquery.open(path) as store:
        assert store._lookup_table is None
        assert all(store.lookup(k).equals(t) for k, t in expected.items())
    report = verify(path)
    assert not report.ok
    assert "missing or unreadable" in report.problems[0]
    con = duckdb.connect(str(path / "index.duckdb"))  # a store written before lookup files
    con.execute("DROP TABLE lookup_files")
    con.close()
    with genoquery.open(path) as store:
        assert store._lookup_table is None
        assert all(store.lookup(k).equals(t) for k, t in expected.items())
    assert verify(path).ok


@pytest.mark.parametrize("damage", ["truncated arrow", "short locus"])
def test_damaged_lookup_files_are_not_used_and_verify_says_so(appended, tmp_path, damage) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    with genoquery.open(path) as store:
        expected = {k: store.lookup(k).to_pylist() for k in store.variants()["variant_key"].to_pylist()}
    # replaced, not rewritten in place: answers given before still map the old bytes (as a
    # store never rewrites its lookup files: a rebuild writes new ones)
    if damage == "truncated arrow":
        arrow = next(p for p in (path / LOOKUP_DIR).glob("*.arrow") if not p.name.endswith(".sites.arrow"))
        data = arrow.read_bytes()[:1000]
        arrow.unlink()
        arrow.write_bytes(data)
    else:
        loci = next((path / LOOKUP_DIR).glob("*.locus.npy"))
        data = np.load(loci)[:-1]
        loci.unlink()
        np.save(loci, data)
    with genoquery.open(path) as store:
        assert store._lookup_table is None
        assert all(store.lookup(k).to_pylist() == rows for k, rows in expected.items())
    report = verify(path)
    assert not report.ok
    assert "missing or unreadable" in report.problems[0]


def test_unknown_keys_get_the_same_errors(appended) -> None:
    with genoquery.open(appended) as store:
        assert store._lookup_table is not None
        with pytest.raises(QueryError, match="no variant at chr20:652; nearest: chr20-651-C-T"):
            store.lookup("chr20-652-C-T")
        at_651 = store.lookup("chr20-651-C-T")
        with pytest.raises(QueryError, match="at chr20:651 it holds chr20-651-C-T"):
            store.lookup("chr20-651-C-G")
        with pytest.raises(QueryError, match=r"position 99999999999999 is outside 1..1,099,511,627,775"):
            store.lookup(f"chr20-{10**14 - 1}-C-T")  # beyond the loci's 40 bits of POS
        assert store.lookup("chr20-651-C-T", af_min=0).equals(at_651)  # filtered: the DuckDB path


def test_verify_finds_lookup_files_that_differ_from_the_index(appended, tmp_path) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    arrow = next(p for p in (path / LOOKUP_DIR).glob("*.arrow") if not p.name.endswith(".sites.arrow"))
    table = pa.ipc.open_file(arrow).read_all()
    changed = table.set_column(
        table.schema.get_field_index("ac"), "ac", pc.add(table["ac"], pa.scalar(1, table.schema.field("ac").type))
    )
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(changed)
    report = verify(path)
    assert report.problems == [
        f"{LOOKUP_DIR}/{arrow.stem}.arrow: 322 rows of the index's variants are not in it "
        "and 322 of its rows are not in the index"
    ]


def test_verify_finds_a_lookup_file_of_sites_that_differs_from_the_index(appended, tmp_path) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    sites = next((path / LOOKUP_DIR).glob("*.sites.arrow"))
    table = pa.ipc.open_file(sites).read_all()
    listed = table.schema.get_field_index("listed_start")
    changed = table.set_column(listed, "listed_start", pc.add(table["listed_start"], pa.scalar(1, pa.int64())))
    with pa.OSFile(str(sites), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(changed)
    n = table.filter(pc.is_valid(table["listed_start"])).num_rows
    assert verify(path).problems == [
        f"{LOOKUP_DIR}/{sites.name}: {n} records of the index's batch_sites are not in it and {n} of its rows are "
        "not in the index"
    ]


def test_a_store_without_the_lookup_file_of_sites_finds_records_in_the_index(appended, tmp_path) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    for stale in (*(path / LOOKUP_DIR).glob("*.sites.arrow"), *(path / LOOKUP_DIR).glob("*.site_row.npy")):
        stale.unlink()  # as lookup files written before the files of sites
    with genoquery.open(path) as store, genoquery.open(appended) as whole:
        assert store._lookup_table is not None
        assert store._lookup_table.sites is None
        for key in whole.variants()["variant_key"].to_pylist():
            assert store.carriers(key).equals(whole.carriers(key)), key
    assert verify(path).ok


def test_leftover_lookup_files_are_deleted_by_the_next_change(appended, tmp_path) -> None:
    path = tmp_path / "s.gq"
    shutil.copytree(appended, path)
    (path / LOOKUP_DIR / "variants-0123456789abcdef.arrow").write_bytes(b"killed writer")
    kept = _files(path) - {"variants-0123456789abcdef.arrow"}
    with genoquery.open(path) as store:
        store.save_cohort("women", "sex_at_birth = 'Female'")
    assert _files(path) == kept
