"""Comparisons of a genoquery store with the bcftools/pysam oracle (tests/oracle.py).

Every ``assert_*`` function here takes the VCF files in the order their
records must appear in the store, and checks the store against expectations
computed from those files by :mod:`oracle` only.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools as bcftools
import pytest
import zarr

import genoquery
import oracle
from genoquery.index.genes import import_genes

STAT_FIELDS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")
FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
FIXTURE_VCFS = (FIXTURES / "cohort.chr20.vcf.gz", FIXTURES / "cohort.chrX.vcf.gz")
FIXTURE_PERSONS = FIXTURES / "persons.tsv"
FIXTURE_GTF = FIXTURES / "genes.gtf"


def ingest_fixture(path: Path):
    """The 120-sample fixture cohort ingested at ``path`` with its persons and genes, opened."""

    genoquery.ingest(path, list(FIXTURE_VCFS), persons=FIXTURE_PERSONS, progress=False).close()
    import_genes(path, FIXTURE_GTF)
    return genoquery.open(path)


# --------------------------------------------------------------------------- file preparation


def vcf_text(
    samples: list[str],
    records: list[list[str]],
    *,
    contigs=(("chr1", 10000),),
    formats=("GT",),
    filters=(),
    extra_header: str = "",
) -> str:
    """Small VCF text: header with the given contigs/FORMAT fields/FILTERs, then tab-joined records."""
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in contigs]
    lines += [f'##FILTER=<ID={f},Description="{f}">' for f in filters]
    kinds = {"GT": ("1", "String"), "DP": ("1", "Integer"), "AD": ("R", "Integer")}
    lines += [f'##FORMAT=<ID={f},Number={kinds[f][0]},Type={kinds[f][1]},Description="{f}">' for f in formats]
    if extra_header:
        lines.append(extra_header.rstrip("\n"))
    cols = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"] + (["FORMAT", *samples] if samples else [])
    lines.append("\t".join(cols))
    lines += ["\t".join(r) for r in records]
    return "\n".join(lines) + "\n"


def bgzip(src: Path, dst: Path, index: bool = False) -> Path:
    """bgzip ``src`` to ``dst`` (pysam.tabix_compress); with ``index``, write ``dst.tbi`` too."""
    pysam.tabix_compress(str(src), str(dst), force=True)
    if index:
        pysam.tabix_index(str(dst), preset="vcf", force=True)
        assert Path(str(dst) + ".tbi").exists()
    return dst


def to_bcf(src: Path, dst: Path, index: bool = False) -> Path:
    """Convert to BCF with bcftools view -Ob; with ``index``, write ``dst.csi`` too."""
    bcftools.view("-Ob", "-o", str(dst), str(src), catch_stdout=False)
    if index:
        bcftools.index(str(dst), catch_stdout=False)
        assert Path(str(dst) + ".csi").exists()
    return dst


def subset_targets(src: Path, dst: Path, targets: str) -> Path:
    """Records of ``src`` in ``targets`` (bcftools view -t, no index needed), as plain VCF."""
    bcftools.view("-Ov", "-o", str(dst), "-t", targets, str(src), catch_stdout=False)
    return dst


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (relative path -> digest); {} when absent."""
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    out = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = Path(root) / name
            out[str(full.relative_to(path))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------- expectations


def expected_stats(vcfs: Sequence[Path], samples: list[str] | None = None) -> list[oracle.AlleleStats]:
    """Per-allele expectations of ``vcfs`` concatenated in the given order (site = store row)."""
    out: list[oracle.AlleleStats] = []
    offset = 0
    for vcf in vcfs:
        stats = oracle.allele_stats(vcf, samples)
        out.extend(_with_site(s, s.site + offset) for s in stats)
        offset += len(oracle.sites(vcf))
    return out


def _with_site(stats: oracle.AlleleStats, site: int) -> oracle.AlleleStats:

    return replace(stats, site=site)


def expected_sites(vcfs: Sequence[Path]) -> list[oracle.Site]:
    return [site for vcf in vcfs for site in oracle.sites(vcf)]


# --------------------------------------------------------------------------- store side


def row_of(record: dict) -> int:
    """The Zarr row of a variants() record (contract column ``site_row``)."""
    return record["site_row"]


def _missing_id(value) -> bool:
    return value is None or value in ("", ".")


def _filter_set(value) -> frozenset[str]:
    if value is None or value in ("", "."):
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split(";"))
    return frozenset(value)


# Parametrises a test's ``store_path`` (tests/conftest.py) over a local store and one on the loopback S3 server.
LOCAL_AND_S3 = pytest.mark.parametrize("store_path", ["local", "s3"], indirect=True)


def open_genotypes(store_path: Path | str) -> zarr.Group:
    """The VCF Zarr group of a single-batch store (a directory, or a URL on object storage)."""
    if isinstance(store_path, str):
        with genoquery.open(store_path) as store:
            assert len(store.batches) == 1, store.batches
            return store.batches[0].genotypes
    groups = sorted((Path(store_path) / "batches").glob("*/genotypes.vcz"))
    assert len(groups) == 1, groups
    return zarr.open_group(groups[0], mode="r")


def as_list(array) -> list:
    return np.asarray(array[...]).tolist()


def assert_variants_match(store, vcfs: Sequence[Path], region: str | None = None) -> None:
    """Store.variants(): every ALT allele, exact statistics, in genome order."""
    expected = expected_stats(vcfs)
    sites = expected_sites(vcfs)
    quals = [q for vcf in vcfs for q in oracle.site_quals(vcf)]
    records = store.variants(region=region).to_pylist() if region else store.variants().to_pylist()
    got = [
        (row_of(r), r["contig"], r["pos"], r["ref"], r["alt"], r["allele"], *(r[f] for f in STAT_FIELDS))
        for r in records
    ]
    want = [
        (e.site, e.contig, e.pos, e.ref, e.alt, e.allele, e.ac, e.an, e.n_het, e.n_hom_alt, e.n_hemi, e.n_missing)
        for e in expected
    ]
    assert got == want
    for r, e in zip(records, expected, strict=True):
        site = sites[e.site]
        if e.an:
            assert r["af"] is not None, (r, e)
            assert math.isclose(r["af"], e.ac / e.an, rel_tol=1e-6), (r, e)
        else:
            assert r["af"] is not None, f"AF must be NaN when AN=0: {r}"
            assert math.isnan(r["af"]), f"AF must be NaN when AN=0: {r}"
        assert r["variant_key"] == f"{e.contig}-{e.pos}-{e.ref}-{e.alt}"
        if site.id == ".":
            assert _missing_id(r["id"]), r
        else:
            assert r["id"] == site.id, r
        assert _filter_set(r["filter"]) == frozenset(site.filters), (r, site)
        want_qual = quals[e.site]
        if math.isnan(want_qual):
            assert r["qual"] is None or math.isnan(r["qual"]), r
        else:
            assert np.float32(r["qual"]) == np.float32(want_qual), (r, want_qual)


def assert_group_stats_match(store, vcfs: Sequence[Path], by: str, groups: dict[str, list[str]]) -> None:
    """Store.variants(by=...): one row per allele and group, each equal to bcftools on that group's samples."""
    records = store.variants(by=by).to_pylist()
    got = {(row_of(r), r["allele"], r[by]): tuple(r[f] for f in STAT_FIELDS) for r in records}
    assert len(got) == len(records), "duplicate (row, allele, group) rows"
    want: dict[tuple[int, int, str], tuple[int, ...]] = {}
    for group, members in groups.items():
        for e in expected_stats(vcfs, members):
            want[(e.site, e.allele, group)] = (e.ac, e.an, e.n_het, e.n_hom_alt, e.n_hemi, e.n_missing)
        # bcftools view -S recomputes INFO/AC and INFO/AN on the unsplit records: a second route.
        recomputed = [x for vcf in vcfs for x in oracle.recomputed_ac_an(vcf, members)]
        mine = [(e.contig, e.pos, e.ref, e.alt, e.ac, e.an) for e in expected_stats(vcfs, members)]
        assert mine == recomputed, f"oracle routes disagree for group {group}"
    assert got == want
    for r in records:
        if r["an"]:
            assert math.isclose(r["af"], r["ac"] / r["an"], rel_tol=1e-6), r
        else:
            assert r["af"] is not None, r
            assert math.isnan(r["af"]), r


def assert_genotypes_match(store_path: Path, vcfs: Sequence[Path]) -> None:
    """Every call_genotype / call_genotype_phased entry equals bcftools query's GT text."""
    group = open_genotypes(store_path)
    parts = [oracle.genotype_arrays(vcf) for vcf in vcfs]
    want_gt = np.concatenate([p[0] for p in parts])
    want_phased = np.concatenate([p[1] for p in parts])
    gt = group["call_genotype"]
    phased = group["call_genotype_phased"]
    assert gt.dtype == np.int8
    assert phased.dtype == np.bool_
    assert gt.shape == want_gt.shape, (gt.shape, want_gt.shape)
    assert phased.shape == want_phased.shape
    got_gt = np.asarray(gt[...])
    got_phased = np.asarray(phased[...])
    bad = np.argwhere(got_gt != want_gt)
    assert len(bad) == 0, (
        f"{len(bad)} genotype entries differ, first at (variant, sample, ploidy) {bad[0]}: "
        f"got {got_gt[tuple(bad[0][:2])]} want {want_gt[tuple(bad[0][:2])]}"
    )
    bad = np.argwhere(got_phased != want_phased)
    assert len(bad) == 0, (
        f"{len(bad)} phase flags differ, first at (variant, sample) {bad[0]}: "
        f"got {got_phased[tuple(bad[0])]} want {want_phased[tuple(bad[0])]}"
    )


def assert_sites_match(store_path: Path, vcfs: Sequence[Path]) -> None:
    """variant_position/contig/allele/id/quality/filter and sample_id against bcftools/pysam."""
    group = open_genotypes(store_path)
    sites = expected_sites(vcfs)
    quals = [q for vcf in vcfs for q in oracle.site_quals(vcf)]
    assert as_list(group["sample_id"]) == oracle.sample_names(vcfs[0])
    assert group["variant_position"].dtype == np.int32
    assert as_list(group["variant_position"]) == [s.pos for s in sites]
    contig_id = as_list(group["contig_id"])
    assert group["variant_contig"].dtype == np.int16
    assert [contig_id[i] for i in as_list(group["variant_contig"])] == [s.contig for s in sites]
    for vcf in vcfs:
        for name, _length in oracle.header_contigs(vcf):
            assert name in contig_id, f"header contig {name} missing from contig_id"
    alleles = as_list(group["variant_allele"])
    for row, site in zip(alleles, sites, strict=True):
        n = 1 + len(site.alts)
        assert row[:n] == [site.ref, *site.alts], (row, site)
        assert all(a == "" for a in row[n:]), (row, site)
    quality = np.asarray(group["variant_quality"][...])
    assert quality.dtype == np.float32
    for got, want in zip(quality.tolist(), quals, strict=True):
        assert (math.isnan(got) and math.isnan(want)) or np.float32(got) == np.float32(want), (got, want)
    filter_id = as_list(group["filter_id"])
    assert filter_id[0] == "PASS"
    flags = np.asarray(group["variant_filter"][...])
    assert flags.shape == (len(sites), len(filter_id))
    for row, site in zip(flags, sites, strict=True):
        assert {filter_id[k] for k in np.flatnonzero(row)} == set(site.filters), (row, site)
    assert len(alleles) == len(sites)


def assert_ids_match(store_path: Path, vcfs: Sequence[Path]) -> None:
    """variant_id equals the ID column; a missing ID ("." in VCF) may be stored as "." or ""."""
    sites = expected_sites(vcfs)
    ids = as_list(open_genotypes(store_path)["variant_id"])
    assert len(ids) == len(sites)
    for got, site in zip(ids, sites, strict=True):
        assert got == site.id or (site.id == "." and _missing_id(got)), (got, site)


def assert_contig_lengths(store_path: Path, vcfs: Sequence[Path]) -> None:
    """contig_length holds each ##contig line's length (pysam reads the header)."""
    group = open_genotypes(store_path)
    lengths = dict(zip(as_list(group["contig_id"]), as_list(group["contig_length"]), strict=True))
    for vcf in vcfs:
        for name, length in oracle.header_contigs(vcf):
            if length is not None:
                assert lengths[name] == length, f"contig_length of {name}: got {lengths[name]}, header says {length}"


def assert_store_matches(store, store_path: Path, vcfs: Sequence[Path]) -> None:
    """Everything the oracle can say about a whole-cohort store."""
    vcfs = [Path(v) for v in vcfs]
    assert_sites_match(store_path, vcfs)
    assert_genotypes_match(store_path, vcfs)
    assert_variants_match(store, vcfs)
    assert [r["sample_id"] for r in store.samples().to_pylist()] == oracle.sample_names(vcfs[0])
    assert_ids_match(store_path, vcfs)
