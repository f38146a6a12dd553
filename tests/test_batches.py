"""Stores of several batches (genome centers) against ``bcftools merge`` of the same files.

The fixture cohort's three center files hold different samples and partly different sites
(a center's file leaves out the sites where none of its samples carries an ALT allele).
Ingested together they must equal ``bcftools merge -m none`` of the three files (a site a
center lacks is missing for its samples), and with ``complete_callset`` the joint callset
(absent = hom-ref) on the diploid contig; statistics overall, by group and for any cohort,
carriers and genotypes are compared. Expectations come from bcftools through pysam
(tests/oracle.py) and pandas on the person table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pysam.bcftools as bcftools
import pytest
import zarr

import checks
import genoquery
import oracle
from genoquery.errors import GenoqueryError
from genoquery.ingest.compact import compact
from genoquery.ingest.withdraw import withdraw
from genoquery.query.association.store_dosages import store_dosages
from genoquery.verify import verify

CENTERS = tuple(sorted(checks.FIXTURES.glob("center*.vcf.gz")))
STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> Path:
    """``bcftools merge -m none`` of the center files: the oracle's view of the batches together."""
    out = tmp_path_factory.mktemp("merged") / "merged.vcf.gz"
    bcftools.merge("-m", "none", "-Oz", "-o", str(out), *map(str, CENTERS), catch_stdout=False)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("batches") / "centers.gq"
    genoquery.ingest(path, list(CENTERS), persons=checks.FIXTURE_PERSONS, progress=False).close()
    with genoquery.open(path) as opened:
        yield opened


def _by_key(stats) -> dict[tuple[str, int, str, str], tuple[int, ...]]:
    return {(e.contig, e.pos, e.ref, e.alt): tuple(getattr(e, s) for s in STATS) for e in stats}


def _store_by_key(table) -> dict[tuple[str, int, str, str], tuple[int, ...]]:
    rows = table.to_pylist()
    got = {(r["contig"], r["pos"], r["ref"], r["alt"]): tuple(r[s] for s in STATS) for r in rows}
    assert len(got) == len(rows), "two rows for one allele"
    return got


def test_one_batch_per_center_with_its_samples(store) -> None:
    batches = store.sql("SELECT name, sample_offset, n_samples FROM batches ORDER BY batch", []).to_pylist()
    assert [b["name"] for b in batches] == [p.name.split(".")[0] for p in CENTERS]
    offset = 0
    for batch, path in zip(batches, CENTERS, strict=True):
        ids = oracle.sample_names(path)
        assert (batch["sample_offset"], batch["n_samples"]) == (offset, len(ids))
        assert store.sample_ids[offset : offset + len(ids)].tolist() == ids
        offset += len(ids)
    assert store.info["samples"] == offset == 120


def test_whole_store_statistics_equal_bcftools_merge(store, merged) -> None:
    want = _by_key(oracle.allele_stats(merged))
    assert _store_by_key(store.variants()) == want
    keys = [(r["contig"], r["pos"]) for r in store.variants().to_pylist()]
    assert keys == sorted(keys, key=lambda k: (["chr20", "chrX"].index(k[0]), k[1])), "not in genome order"


def test_group_statistics_equal_bcftools_merge_per_group(store, merged) -> None:
    persons = pd.read_csv(checks.FIXTURE_PERSONS, sep="\t", dtype=str)
    for column in ("ancestry", "sex_at_birth"):
        got = store.variants(by=column).to_pylist()
        for group, members in persons.groupby(column)["sample_id"]:
            want = _by_key(oracle.allele_stats(merged, sorted(members)))
            mine = {
                (r["contig"], r["pos"], r["ref"], r["alt"]): tuple(r[s] for s in STATS)
                for r in got
                if r[column] == group
            }
            assert mine == want, (column, group)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cohort_frequencies_across_batches_equal_bcftools(store, merged, seed) -> None:
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(store.sample_ids, size=37, replace=False).tolist())
    want = _by_key(oracle.allele_stats(merged, ids))
    assert _store_by_key(store.frequencies(cohort=ids)) == want
    region = "chrX:2790000-2820000"
    in_region = {k: v for k, v in want.items() if k[0] == "chrX" and 2790000 <= k[1] <= 2820000}
    assert _store_by_key(store.frequencies(region, cohort=ids)) == in_region


def test_carriers_across_batches_equal_bcftools(store, merged) -> None:
    text = bcftools.query("-f", "%CHROM-%POS-%REF-%ALT[\t%SAMPLE=%GT]\n", str(merged))
    checked = 0
    for line in text.splitlines()[::7]:
        key, *calls = line.split("\t")
        alts = key.split("-", 3)[3].split(",")
        for number, alt in enumerate(alts, start=1):
            variant = "-".join([*key.split("-")[:3], alt])
            want = sorted(
                s for s, gt in (c.split("=") for c in calls) if str(number) in gt.replace("|", "/").split("/")
            )
            got = store.carriers(variant)["sample_id"].to_pylist()
            assert sorted(got) == want, variant
            checked += 1
    assert checked > 30


def test_genotypes_across_batches_equal_bcftools(store, merged) -> None:
    want_gt, _ = oracle.genotype_arrays(merged)
    got = store.genotypes()
    missing = (want_gt == -1).any(axis=2)
    # bcftools writes an absent center's haploid calls as '.' or './.'; both are missing calls.
    assert np.array_equal(got.gt[~missing], want_gt[~missing])
    assert np.array_equal((got.gt == -1).any(axis=2), missing)
    assert got.sample_ids == oracle.sample_names(merged)


def test_participant_view_of_a_later_batch(store, merged) -> None:
    sample = oracle.sample_names(CENTERS[-1])[3]
    got = store.participant(sample).to_pylist()
    want = []
    for line in bcftools.query("-s", sample, "-f", "%CHROM-%POS-%REF-%ALT[\t%GT]\n", str(merged)).splitlines():
        key, gt = line.split("\t")
        alts = key.split("-", 3)[3].split(",")
        for number, alt in enumerate(alts, start=1):
            if str(number) in gt.replace("|", "/").split("/"):
                want.append("-".join([*key.split("-")[:3], alt]))
    assert [r["variant_key"] for r in got] == want


def test_complete_callsets_equal_the_joint_callset_on_a_diploid_contig(tmp_path) -> None:
    """Absent records of a complete callset are hom-ref: the centers' chr20 equals the joint chr20."""
    chr20 = [checks.subset_targets(p, tmp_path / p.name, "chr20") for p in CENTERS]
    store = genoquery.ingest(tmp_path / "complete.gq", chr20, complete_callset=True, progress=False)
    want = _by_key(oracle.allele_stats(checks.FIXTURE_VCFS[0]))
    assert _store_by_key(store.variants()) == want
    store.close()


def _absent_rule_oracle(tmp: Path, centers: tuple[Path, ...], complete: tuple[bool, ...]) -> Path:
    """bcftools' view of ``centers`` as batches, ``complete[i]`` saying whether center i is a
    complete callset: ``bcftools merge -m none`` (absent records ``./.``) and ``merge -m none -0``
    (absent records ``0/0``) of all of them, each center's samples taken from the merge its
    flag names, and the parts merged again."""
    merges = {}
    for zero in sorted(set(complete)):
        merges[zero] = tmp / f"merge{int(zero)}.vcf.gz"
        flags = ["-0"] if zero else []
        bcftools.merge("-m", "none", *flags, "-Oz", "-o", str(merges[zero]), *map(str, centers), catch_stdout=False)
    parts = []
    for i, (center, zero) in enumerate(zip(centers, complete, strict=True)):
        parts.append(tmp / f"part{i}.vcf.gz")
        samples = ",".join(oracle.sample_names(center))
        bcftools.view("--no-update", "-s", samples, "-Oz", "-o", str(parts[-1]), str(merges[zero]), catch_stdout=False)
        bcftools.index(str(parts[-1]), catch_stdout=False)
    out = tmp / "oracle.vcf.gz"
    bcftools.merge("-m", "none", "-Oz", "-o", str(out), *map(str, parts), catch_stdout=False)
    assert len(oracle.sites(out)) == len(oracle.sites(merges[complete[0]]))
    return out


def _store_dosages_by_allele(store) -> dict[tuple[int, int], tuple[list, list, list, list]]:
    """Per (site_row, allele): carriers, their dosages, missing samples and the haploid mask,
    from the association's dosages of every site for every sample."""
    rows = np.arange(store.sql("SELECT count(*) AS n FROM sites", [])["n"][0].as_py())
    haploid, parts = store_dosages(store, rows, np.arange(store.info["samples"]))
    out = {}
    for part in parts:
        for k, (site, allele, pattern) in enumerate(zip(part.site_row, part.allele, part.pattern, strict=True)):
            carriers, missing = slice(*part.carrier[k : k + 2]), slice(*part.missing[k : k + 2])
            mask = haploid[pattern] if pattern >= 0 else np.zeros(haploid.shape[1], dtype=bool)
            out[(int(site), int(allele))] = (
                part.sample[carriers].tolist(),
                part.dosage[carriers].tolist(),
                part.missing_sample[missing].tolist(),
                np.flatnonzero(mask).tolist(),
            )
    return out


def _oracle_dosages_by_allele(gt: np.ndarray, path: Path) -> dict[tuple[int, int], tuple[list, list, list, list]]:
    """The same from the oracle's calls: a call's dosage is its copies of the allele, none
    (missing) if it has a missing allele; haploid calls are those without a second allele."""
    out = {}
    for i, site in enumerate(oracle.sites(path)):
        missing = (gt[i] == oracle.MISSING_ALLELE).any(axis=1)
        haploid = np.flatnonzero(gt[i, :, 1] == oracle.FILL)
        for allele in range(1, len(site.alts) + 1):
            dosage = (gt[i] == allele).sum(axis=1)
            carriers = np.flatnonzero((dosage > 0) & ~missing)
            out[(i, allele)] = (
                carriers.tolist(),
                dosage[carriers].tolist(),
                np.flatnonzero(missing).tolist(),
                haploid.tolist(),
            )
    return out


@pytest.mark.parametrize("complete", [(False, True), (True, False)], ids=["second-complete", "first-complete"])
def test_absent_records_follow_each_batchs_rule_as_bcftools_merge(tmp_path, complete) -> None:
    """Two batches, one a complete callset: where a batch has no record its samples are ``./.``
    (``bcftools merge -m none``) or, for the complete callset, ``0/0`` (``merge -0``), in the
    frequencies counted for a cohort and in the index, the genotype matrix, the association's
    dosages, and verify's recount."""
    centers = CENTERS[:2]
    path = tmp_path / "mixed.gq"
    genoquery.ingest(path, [centers[0]], complete_callset=complete[0], progress=False).close()
    genoquery.ingest(path, [centers[1]], batch="second", complete_callset=complete[1], progress=False).close()
    want = _absent_rule_oracle(tmp_path, centers, complete)
    want_gt, want_phased = oracle.genotype_arrays(want)
    with genoquery.open(path) as store:
        records = store.sql("SELECT count(*) AS n FROM batch_sites GROUP BY batch", [])["n"].to_pylist()
        assert len(records) == 2
        assert max(records) < len(oracle.sites(want)), "each batch should lack some sites"
        stats = _by_key(oracle.allele_stats(want))
        assert _store_by_key(store.frequencies(cohort=store.sample_ids.tolist())) == stats
        assert _store_by_key(store.variants()) == stats
        got = store.genotypes()
        assert got.sample_ids == oracle.sample_names(want)
        assert np.array_equal(got.gt, want_gt)
        assert np.array_equal(got.phased, want_phased)
        assert _store_dosages_by_allele(store) == _oracle_dosages_by_allele(want_gt, want)
    report = verify(path)
    assert report.ok, report.problems


def test_a_sample_in_two_batches_is_refused(tmp_path) -> None:
    twin = tmp_path / "twin.vcf"
    twin.write_text(
        checks.vcf_text(
            [oracle.sample_names(CENTERS[0])[0], "NEW1"],
            [["chr20", "100", ".", "A", "C", ".", "PASS", ".", "GT", "0/1", "0/0"]],
            contigs=(("chr20", 64444167),),
        )
    )
    with pytest.raises(GenoqueryError, match=r"is also in .*center1"):
        genoquery.ingest(tmp_path / "x.gq", [CENTERS[0], twin], progress=False)
    assert not (tmp_path / "x.gq").exists()


def test_duplicate_sample_ids_can_be_renamed_on_request(tmp_path) -> None:
    twin_id = oracle.sample_names(CENTERS[0])[0]
    twin = tmp_path / "twin.vcf"
    twin.write_text(
        checks.vcf_text(
            [twin_id, "NEW1"],
            [["chr20", "100", ".", "A", "C", ".", "PASS", ".", "GT", "0/1", "0/0"]],
            contigs=(("chr20", 64444167),),
        )
    )
    store = genoquery.ingest(tmp_path / "x.gq", [CENTERS[0], twin], rename_duplicate_samples=True, progress=False)
    assert store.sample_ids[-2:].tolist() == [f"{twin_id}@twin", "NEW1"]
    assert store.carriers("chr20-100-A-C")["sample_id"].to_pylist() == [f"{twin_id}@twin"]
    store.close()
    run = _cli("verify", str(tmp_path / "x.gq"), "--sources", str(CENTERS[0]), str(twin), "--quiet")
    assert run.returncode == 0, run.stdout + run.stderr


def test_contig_names_differing_between_batches_are_refused(tmp_path) -> None:
    plain = tmp_path / "plain.vcf"
    plain.write_text(
        checks.vcf_text(
            ["NEW1"], [["20", "100", ".", "A", "C", ".", "PASS", ".", "GT", "0/1"]], contigs=(("20", 64444167),)
        )
    )
    with pytest.raises(GenoqueryError, match="contig '20' is named 'chr20'"):
        genoquery.ingest(tmp_path / "x.gq", [CENTERS[0], plain], progress=False)


def test_one_batch_name_for_several_sample_sets_is_refused(tmp_path) -> None:
    with pytest.raises(GenoqueryError, match="names one batch"):
        genoquery.ingest(tmp_path / "x.gq", list(CENTERS), batch="all", progress=False)


# --------------------------------------------------------------------------- appending a batch


def _batch_files(store_path: Path) -> dict[str, str]:
    return {k: v for k, v in checks.tree_digest(store_path).items() if k.startswith("batches/")}


@pytest.fixture(scope="module")
def appended(tmp_path_factory):
    """Centers 1 and 2 ingested, then center 3 appended; with the batch files' digests before."""
    path = tmp_path_factory.mktemp("append") / "centers.gq"
    genoquery.ingest(path, list(CENTERS[:2]), persons=checks.FIXTURE_PERSONS, progress=False).close()
    before = _batch_files(path)
    genoquery.ingest(path, [CENTERS[2]], batch="late", progress=False).close()
    with genoquery.open(path) as opened:
        yield opened, before


def test_append_rewrites_no_existing_genotype_file(appended) -> None:
    store, before = appended
    after = _batch_files(store.path)
    assert {k: after.get(k) for k in before} == before
    assert all(k.startswith("batches/late/") for k in set(after) - set(before))


def test_appended_store_equals_bcftools_merge_overall_by_group_and_cohort(appended, merged) -> None:
    store, _ = appended
    assert _store_by_key(store.variants()) == _by_key(oracle.allele_stats(merged))
    persons = pd.read_csv(checks.FIXTURE_PERSONS, sep="\t", dtype=str)
    got = store.variants(by="ancestry").to_pylist()
    for group, members in persons.groupby("ancestry")["sample_id"]:
        mine = {
            (r["contig"], r["pos"], r["ref"], r["alt"]): tuple(r[s] for s in STATS)
            for r in got
            if r["ancestry"] == group
        }
        assert mine == _by_key(oracle.allele_stats(merged, sorted(members))), group
    ids = sorted(np.random.default_rng(7).choice(store.sample_ids, size=41, replace=False).tolist())
    assert _store_by_key(store.frequencies(cohort=ids)) == _by_key(oracle.allele_stats(merged, ids))


def test_append_refuses_a_taken_name_or_a_known_sample(appended, tmp_path) -> None:
    store, _ = appended
    before = checks.tree_digest(store.path)
    with pytest.raises(GenoqueryError, match="already has a batch named 'late'"):
        genoquery.ingest(store.path, [CENTERS[0]], batch="late", progress=False)
    with pytest.raises(GenoqueryError, match="is also in"):
        genoquery.ingest(store.path, [CENTERS[0]], batch="again", progress=False)
    after = checks.tree_digest(store.path)
    assert {k: v for k, v in after.items() if k != ".lock"} == {k: v for k, v in before.items() if k != ".lock"}


def test_a_reader_open_during_an_append_keeps_the_old_state(tmp_path) -> None:
    path = tmp_path / "s.gq"
    genoquery.ingest(path, [CENTERS[0]], progress=False).close()
    with genoquery.open(path) as reader:
        old, key = reader.variants(), reader.variants()["variant_key"][0].as_py()
        old_carriers = reader.carriers(key)
        genoquery.ingest(path, [CENTERS[1]], batch="second", progress=False).close()
        assert reader.variants().equals(old)
        assert reader.carriers(key).equals(old_carriers)
    with genoquery.open(path) as fresh:
        assert fresh.info["samples"] == len(oracle.sample_names(CENTERS[0])) + len(oracle.sample_names(CENTERS[1]))


def test_a_store_opened_beside_an_older_one_reads_the_new_index(tmp_path) -> None:
    """DuckDB shares one database per file in a process while a connection is open: a store opened
    (or an append planned) after an append, beside a store still open on the old index, must read
    the new one."""
    path = tmp_path / "s.gq"
    sizes = [len(oracle.sample_names(c)) for c in CENTERS]
    genoquery.ingest(path, [CENTERS[0]], progress=False).close()
    with genoquery.open(path) as old:
        with genoquery.ingest(path, [CENTERS[1]], batch="second", progress=False) as returned:
            assert returned.info["samples"] == sizes[0] + sizes[1]
        with genoquery.ingest(path, [CENTERS[2]], batch="third", progress=False) as third:
            assert [(b.number, b.offset) for b in third.batches] == [(0, 0), (1, sizes[0]), (2, sizes[0] + sizes[1])]
            assert third.info["samples"] == sum(sizes)
        assert verify(path).ok
        assert old.info["samples"] == sizes[0]


# --------------------------------------------------------------------------- withdrawal


WITHDRAWN = [oracle.sample_names(CENTERS[0])[1], oracle.sample_names(CENTERS[0])[5], oracle.sample_names(CENTERS[2])[0]]


@pytest.fixture(scope="module")
def withdrawn(tmp_path_factory):
    """The centers' store after withdrawing three samples, and the centers' files without them."""

    root = tmp_path_factory.mktemp("withdraw")
    path = root / "centers.gq"
    genoquery.ingest(path, list(CENTERS), persons=checks.FIXTURE_PERSONS, progress=False).close()
    done = withdraw(path, WITHDRAWN + WITHDRAWN[:1], "consent withdrawn")
    assert done.withdrawn == WITHDRAWN
    assert done.already == []
    without = []
    for center in CENTERS:
        out = root / center.name
        bcftools.view(
            "-s", "^" + ",".join(WITHDRAWN), "--force-samples", "-Oz", "-o", str(out), str(center), catch_stdout=False
        )
        without.append(out)
    with genoquery.open(path) as opened:
        yield opened, without, root


def test_withdrawn_statistics_equal_a_store_ingested_without_them(withdrawn) -> None:
    store, without, root = withdrawn
    fresh = genoquery.ingest(root / "fresh.gq", without, persons=checks.FIXTURE_PERSONS, progress=False)
    assert _store_by_key(store.variants()) == _store_by_key(fresh.variants())
    for column in ("ancestry", "sex_at_birth"):
        assert (
            store.variants(by=column)
            .drop_columns(["site_row"])
            .equals(fresh.variants(by=column).drop_columns(["site_row"]))
        ), column
    fresh.close()


def test_withdrawn_samples_are_in_no_answer(withdrawn, merged) -> None:
    store, _, _ = withdrawn
    keep = [s for s in oracle.sample_names(merged) if s not in WITHDRAWN]
    assert _store_by_key(store.variants()) == _by_key(oracle.allele_stats(merged, keep))
    persons = pd.read_csv(checks.FIXTURE_PERSONS, sep="\t", dtype={"sample_id": str})
    women = sorted(set(persons.loc[persons.sex_at_birth == "Female", "sample_id"]) - set(WITHDRAWN))
    assert _store_by_key(store.frequencies(cohort="sex_at_birth = 'Female'")) == _by_key(
        oracle.allele_stats(merged, women)
    )
    carriers = {
        s
        for key in store.variants()["variant_key"].to_pylist()[:60]
        for s in store.carriers(key)["sample_id"].to_pylist()
    }
    assert carriers
    assert not carriers & set(WITHDRAWN)
    assert store.genotypes("chr20:1-5000").sample_ids == keep
    with pytest.raises(GenoqueryError, match="withdrawn"):
        store.participant(WITHDRAWN[0])
    with pytest.raises(GenoqueryError, match="withdrawn"):
        store.frequencies(cohort=[WITHDRAWN[1], keep[0]])
    with pytest.raises(GenoqueryError, match="withdrawn"):
        store.genotypes("chr20:1-5000", samples=[WITHDRAWN[2]])
    log = store.sql("SELECT action, detail, reason FROM store_log WHERE action = 'withdraw'", []).to_pylist()
    assert log == [{"action": "withdraw", "detail": json.dumps(WITHDRAWN), "reason": "consent withdrawn"}]


def test_withdrawing_an_unknown_sample_changes_nothing(withdrawn, tmp_path) -> None:

    store, _, _ = withdrawn
    before = {k: v for k, v in checks.tree_digest(store.path).items() if k != ".lock"}
    with pytest.raises(GenoqueryError, match="not in"):
        withdraw(store.path, [oracle.sample_names(CENTERS[1])[0], "NOBODY"], "test")
    assert {k: v for k, v in checks.tree_digest(store.path).items() if k != ".lock"} == before


# --------------------------------------------------------------------------- verification


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genoquery", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture
def fresh_store(tmp_path) -> Path:
    path = tmp_path / "centers.gq"
    genoquery.ingest(path, list(CENTERS), persons=checks.FIXTURE_PERSONS, progress=False).close()
    return path


def test_verify_passes_on_an_intact_store_with_its_sources(fresh_store) -> None:

    withdraw(fresh_store, WITHDRAWN[:1], "test")
    run = _cli("verify", str(fresh_store), "--sources", *map(str, CENTERS), "--quiet")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verified" in run.stderr
    assert "MISMATCH" not in run.stdout
    calls = sum(len(oracle.sample_names(c)) * len(oracle.sites(c)) for c in CENTERS)
    assert f"{calls - len(oracle.sites(CENTERS[0]))} calls" in run.stderr


def test_verify_finds_a_flipped_byte_and_names_the_chunk(fresh_store) -> None:
    chunk = max(
        (p for p in fresh_store.glob("batches/center2/genotypes.vcz/call_genotype/[0-9]*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    run = _cli("verify", str(fresh_store), "--quiet")
    assert run.returncode == 1
    assert f"MISMATCH {chunk.relative_to(fresh_store)}: sha256 differs from the manifest" in run.stdout


def test_verify_finds_a_changed_statistic_and_a_changed_source(fresh_store, tmp_path) -> None:

    con = duckdb.connect(str(fresh_store / "index.duckdb"))
    site, allele = con.execute(
        "UPDATE variants SET ac = ac + 1 WHERE pos = (SELECT min(pos) FROM variants) RETURNING site_row, allele"
    ).fetchall()[0]
    con.close()
    changed = tmp_path / CENTERS[0].name
    text = bcftools.view(str(CENTERS[0])).replace("0|1", "1|1", 1)
    changed.with_suffix("").write_text(text)
    run = _cli("verify", str(fresh_store), "--sources", str(changed.with_suffix("")), "--quiet")
    assert run.returncode == 1
    assert f"MISMATCH site {site} allele {allele}: stored" in run.stdout
    assert "its sha256 is not that of any ingested file" in run.stdout


def test_compact_erases_withdrawn_genotypes_and_keeps_every_answer(fresh_store) -> None:

    withdraw(fresh_store, WITHDRAWN, "consent withdrawn")
    with genoquery.open(fresh_store) as store:
        answers = (
            store.variants(),
            store.variants(by="ancestry"),
            store.genotypes(),
            store.carriers(gene=None, region="chr20"),
        )
    untouched = _batch_files(fresh_store)
    untouched = {k: v for k, v in untouched.items() if k.startswith("batches/center2/")}
    assert compact(fresh_store) == ["center1", "center3"]
    assert sorted(p.name for p in (fresh_store / "batches").iterdir()) == [
        "center1.v1",
        "center2",
        "center3.v1",
    ]
    assert {k: v for k, v in _batch_files(fresh_store).items() if k.startswith("batches/center2/")} == untouched
    for name, column in (("center1.v1", [1, 5]), ("center3.v1", [0])):
        group = zarr.open_group(fresh_store / "batches" / name / "genotypes.vcz", mode="r")
        assert (np.asarray(group["call_genotype"][...])[:, column] == -1).all()
        assert not np.asarray(group["call_genotype_phased"][...])[:, column].any()
        assert all(group["sample_id"][i] == "" for i in column)
    with genoquery.open(fresh_store) as store:
        after = (
            store.variants(),
            store.variants(by="ancestry"),
            store.genotypes(),
            store.carriers(gene=None, region="chr20"),
        )
        assert after[0].equals(answers[0])
        assert after[1].equals(answers[1])
        assert after[3].equals(answers[3])
        assert np.array_equal(after[2].gt, answers[2].gt)
        assert after[2].sample_ids == answers[2].sample_ids
        assert store._lookup_table.sites is not None  # one variant's records from the lookup file of sites
        keys = answers[3]["variant_key"]
        for key in sorted(set(keys.to_pylist()))[::5]:
            assert store.carriers(key).to_pylist() == answers[3].filter(pc.equal(keys, key)).to_pylist(), key
    assert compact(fresh_store) == []
    run = _cli("verify", str(fresh_store), "--sources", *map(str, CENTERS), "--quiet")
    assert run.returncode == 0, run.stdout + run.stderr


def test_conflicting_ref_alleles_are_refused_unless_allowed(tmp_path) -> None:
    first = oracle.sites(CENTERS[0])[0]
    other = {"A": "G", "C": "T", "G": "A", "T": "C"}[first.ref[0]]
    odd = tmp_path / "odd.vcf"
    odd.write_text(
        checks.vcf_text(
            ["NEW1"],
            [[first.contig, str(first.pos), ".", other, "A" if other != "A" else "C", ".", "PASS", ".", "GT", "0/1"]],
            contigs=(("chr20", 64444167),),
        )
    )
    with pytest.raises(
        GenoqueryError,
        match=f"REF {other} at {first.contig}:{first.pos} conflicts with REF {first.ref} of .*center1.vcf.gz",
    ):
        genoquery.ingest(tmp_path / "x.gq", [CENTERS[0], odd], progress=False)
    store = genoquery.ingest(tmp_path / "y.gq", [CENTERS[0], odd], allow_ref_conflicts=True, progress=False)
    at = store.variants(region=f"{first.contig}:{first.pos}").to_pylist()
    assert {r["ref"] for r in at} == {first.ref, other}
    store.close()


def test_contig_names_can_be_matched_on_request(tmp_path) -> None:
    plain = tmp_path / "plain.vcf"
    plain.write_text(
        checks.vcf_text(
            ["NEW1"], [["20", "100", ".", "A", "C", ".", "PASS", ".", "GT", "0/1"]], contigs=(("20", 64444167),)
        )
    )
    store = genoquery.ingest(tmp_path / "x.gq", [CENTERS[0], plain], match_contig_names=True, progress=False)
    assert store.contigs == ["chr20", "chrX"]
    row = store.lookup("chr20-100-A-C").to_pylist()[0]
    assert (row["ac"], row["an"]) == (1, 2)
    store.close()
