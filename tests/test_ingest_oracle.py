"""Ingest small hand-written VCFs and compare every statistic and every genotype with bcftools.

Data (tests/data): multiallelic.vcf (1-11 ALT alleles, multi-digit allele
indexes, partial calls ``./1``, haploid calls on an autosome, phased/unphased,
rsIDs, several FILTERs, missing QUAL, an ALT ``.`` site, GT:DP records, two
records at one position, wrong INFO/AC that must be ignored), chrx_mixed.vcf
(males haploid outside the PAR, females diploid), sites_only.vcf (no samples),
haploid_missing.vcf (haploid missing calls "." alone and mixed, records with every call missing).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import checks
import oracle
from genoquery.simulate import simulate_cohort

DATA = Path(__file__).parent / "data"
VCFS = ["multiallelic.vcf", "chrx_mixed.vcf", "sites_only.vcf", "haploid_missing.vcf"]
CONTRACT_COLUMNS = [
    "contig",
    "pos",
    "ref",
    "alt",
    "id",
    "filter",
    "qual",
    "ac",
    "an",
    "af",
    "n_het",
    "n_hom_alt",
    "n_hemi",
    "n_missing",
    "variant_key",
    "allele",
    "site_row",
]


def _persons(path: Path) -> list[dict[str, str]]:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def _groups(persons: list[dict[str, str]], column: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in persons:
        out.setdefault(row[column], []).append(row["sample_id"])
    return out


# --------------------------------------------------------------------------- the oracle itself


@pytest.mark.parametrize("name", VCFS)
def test_oracle_routes_agree(name):
    """bcftools query GT text == pysam.VariantFile; norm -m- counting == bcftools view -S INFO/AC,AN."""
    path = DATA / name
    gt, phased = oracle.genotype_arrays(path)
    gt2, phased2 = oracle.pysam_genotypes(path)
    assert (gt == gt2).all()
    assert (phased == phased2).all()
    stats = oracle.allele_stats(path)
    samples = oracle.sample_names(path)
    if samples:
        assert [(s.contig, s.pos, s.ref, s.alt, s.ac, s.an) for s in stats] == oracle.recomputed_ac_an(path, samples)


def test_oracle_hand_checked_values():
    """A few statistics worked out by hand from the contract's definitions, so the oracle is checked too."""
    by_key = {(s.pos, s.alt): s for s in oracle.allele_stats(DATA / "multiallelic.vcf")}
    # chr1:100 A>C  0/0 0/1 1/1 ./. ./1 1|0
    assert by_key[(100, "C")] == oracle.AlleleStats(
        0, "chr1", 100, "A", "C", 1, ac=5, an=9, n_het=2, n_hom_alt=1, n_hemi=0, n_missing=2
    )
    # chr1:150 G>A,T  1/2 2|2 0|1 .|. 0/2 ./.  -> allele T (2): 1/2 het, 2|2 hom, 0/2 het
    assert by_key[(150, "T")] == oracle.AlleleStats(
        1, "chr1", 150, "G", "T", 2, ac=4, an=8, n_het=2, n_hom_alt=1, n_hemi=0, n_missing=2
    )
    # chr2:20 C>T,G  . 1 ./. 2 0 .|1 -> allele T: haploid 1 (hemi), .|1 partial (missing, AC+1)
    assert by_key[(20, "T")] == oracle.AlleleStats(
        9, "chr2", 20, "C", "T", 1, ac=2, an=4, n_het=0, n_hom_alt=0, n_hemi=1, n_missing=3
    )
    assert by_key[(20, "G")].n_hemi == 1
    assert by_key[(20, "G")].ac == 1
    assert (200, ".") not in by_key  # ALT "." has no ALT allele
    x = {(s.pos, s.alt): s for s in oracle.allele_stats(DATA / "chrx_mixed.vcf")}
    # chrX:3000000 A>G  1 0/1 0 1|1 . ./1 1 0/0
    assert x[(3000000, "G")] == oracle.AlleleStats(
        2, "chrX", 3000000, "A", "G", 1, ac=6, an=10, n_het=1, n_hom_alt=1, n_hemi=2, n_missing=2
    )
    assert oracle.parse_gt("0|1") == ((0, 1), True)
    assert oracle.parse_gt("1") == ((1, -2), True)
    assert oracle.parse_gt(".") == ((-1, -2), True)
    assert oracle.parse_gt("./.") == ((-1, -1), False)
    assert oracle.parse_gt("./1") == ((-1, 1), False)
    assert oracle.parse_gt("10/11") == ((10, 11), False)


# --------------------------------------------------------------------------- one file, every format


def _as_format(src: Path, tmp_path: Path, fmt: str) -> Path:
    if fmt == "vcf":
        return src
    if fmt == "vcf.gz":
        return checks.bgzip(src, tmp_path / (src.name + ".gz"))
    if fmt == "vcf.gz+tbi":
        return checks.bgzip(src, tmp_path / (src.name + ".gz"), index=True)
    if fmt == "bcf":
        return checks.to_bcf(src, tmp_path / (src.stem + ".bcf"))
    if fmt == "bcf+csi":
        return checks.to_bcf(src, tmp_path / (src.stem + ".bcf"), index=True)
    raise AssertionError(fmt)


@checks.LOCAL_AND_S3
@pytest.mark.parametrize("fmt", ["vcf", "vcf.gz", "vcf.gz+tbi", "bcf", "bcf+csi"])
@pytest.mark.parametrize("name", VCFS)
def test_single_file_matches_oracle(gq, tmp_path, store_path, name, fmt):
    src = _as_format(DATA / name, tmp_path, fmt)
    store = gq.ingest(store_path, [src])
    # Expectations come from the original text file: the format must not change any value.
    checks.assert_store_matches(store, store_path, [DATA / name])
    reopened = gq.open(store_path)
    checks.assert_variants_match(reopened, [DATA / name])


def test_variants_columns_follow_contract(gq, store_path):
    store = gq.ingest(store_path, [DATA / "multiallelic.vcf"])
    names = store.variants().column_names
    missing = [c for c in CONTRACT_COLUMNS if c not in names]
    assert not missing, f"variants() lacks contract column(s) {missing}; has {names}"


@checks.LOCAL_AND_S3
@pytest.mark.parametrize("fmt", ["vcf", "bcf"])
def test_contig_lengths_from_header(gq, tmp_path, store_path, fmt):
    src = _as_format(DATA / "multiallelic.vcf", tmp_path, fmt)
    gq.ingest(store_path, [src])
    checks.assert_contig_lengths(store_path, [DATA / "multiallelic.vcf"])


def test_zarr_layout_follows_contract(gq, store_path):
    gq.ingest(store_path, [DATA / "chrx_mixed.vcf"], persons=DATA / "persons_chrx.csv")
    assert (store_path / "genoquery.json").is_file()
    assert (store_path / "index.duckdb").is_file()
    con = duckdb.connect(str(store_path / "index.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        n_site_rows = con.execute("SELECT count(*) FROM variants").fetchone()[0]
    finally:
        con.close()
    wanted = {"variants", "variant_group_stats", "sites", "samples", "contigs", "persons", "provenance"}
    assert wanted <= tables, f"index.duckdb lacks tables {wanted - tables}"
    assert n_site_rows == len(oracle.allele_stats(DATA / "chrx_mixed.vcf"))  # one row per ALT allele
    group = checks.open_genotypes(store_path)
    dims = {
        "call_genotype": ("variants", "samples", "ploidy"),
        "call_genotype_phased": ("variants", "samples"),
        "variant_position": ("variants",),
        "variant_contig": ("variants",),
        "variant_allele": ("variants", "alleles"),
        "variant_id": ("variants",),
        "variant_quality": ("variants",),
        "variant_filter": ("variants", "filters"),
        "sample_id": ("samples",),
        "contig_id": ("contigs",),
        "contig_length": ("contigs",),
        "filter_id": ("filters",),
    }
    for name, want in dims.items():
        assert tuple(group[name].attrs["_ARRAY_DIMENSIONS"]) == want, name  # Zarr format 2, as xarray reads it
    assert group["contig_length"].dtype == "int64"
    assert group["call_genotype"].shape == (8, 8, 2)


@checks.LOCAL_AND_S3
def test_regions_select_by_position(gq, store_path):
    store = gq.ingest(store_path, [DATA / "multiallelic.vcf"])
    everything = checks.expected_stats([DATA / "multiallelic.vcf"])
    for region, contig, start, end in [
        ("chr1:150-300", "chr1", 150, 300),
        ("chr2", "chr2", 1, 10**9),
        ("chr1:400", "chr1", 400, 400),
        ("chr1:1-99", "chr1", 1, 99),
    ]:
        got = [(checks.row_of(r), r["allele"], r["ac"], r["an"]) for r in store.variants(region=region).to_pylist()]
        want = [(e.site, e.allele, e.ac, e.an) for e in everything if e.contig == contig and start <= e.pos <= end]
        assert got == want, region


# --------------------------------------------------------------------------- several files, split by region


def _split(tmp_path: Path, src: Path, targets: list[str]) -> list[Path]:
    return [checks.subset_targets(src, tmp_path / f"part{i}.vcf", t) for i, t in enumerate(targets)]


@checks.LOCAL_AND_S3
def test_split_by_region_given_reversed_gives_sorted_store(gq, tmp_path, store_path):
    src = DATA / "multiallelic.vcf"
    parts = _split(tmp_path, src, ["chr1:1-150", "chr1:151-1000000", "chr2"])
    assert [len(oracle.sites(p)) for p in parts] == [3, 5, 4]  # every part holds records
    store = gq.ingest(store_path, list(reversed(parts)))
    checks.assert_store_matches(store, store_path, parts)
    # ... and it is the same store as the unsplit file's (written by bcftools too, as QUAL text is
    # rewritten by bcftools with 6 significant digits: 1234.567 -> 1234.57).
    whole = checks.subset_targets(src, tmp_path / "whole.vcf", "chr1,chr2")
    checks.assert_store_matches(store, store_path, [whole])


def test_split_by_region_mixed_formats_shuffled(gq, tmp_path, store_path):
    src = DATA / "chrx_mixed.vcf"
    a, b, c = _split(tmp_path, src, ["chrX:1-2999999", "chrX:3000000-3000150", "chrX:3000151-"])
    files = [checks.to_bcf(c, tmp_path / "c.bcf", index=True), a, checks.bgzip(b, tmp_path / "b.vcf.gz")]
    store = gq.ingest(store_path, files)
    checks.assert_store_matches(store, store_path, [src])


@checks.LOCAL_AND_S3
def test_split_across_contigs_in_header_order(gq, tmp_path, store_path):
    """Files on different contigs are ordered by the header's contig order, not by name or argument order."""
    records = {
        "chrB": [["chrB", "5", ".", "A", "C", ".", ".", ".", "GT", "0/1", "1/1"]],
        "chrA": [["chrA", "7", ".", "G", "T", ".", ".", ".", "GT", "1|1", "./1"]],
        "chr10": [["chr10", "3", ".", "T", "A", ".", ".", ".", "GT", "1", "0/0"]],
    }
    contigs = (("chrB", 100), ("chrA", 100), ("chr10", 100))
    paths = {}
    for name, recs in records.items():
        paths[name] = tmp_path / f"{name}.vcf"
        paths[name].write_text(checks.vcf_text(["x", "y"], recs, contigs=contigs))
    store = gq.ingest(store_path, [paths["chr10"], paths["chrA"], paths["chrB"]])
    checks.assert_store_matches(store, store_path, [paths["chrB"], paths["chrA"], paths["chr10"]])


# --------------------------------------------------------------------------- per-group statistics


@checks.LOCAL_AND_S3
@pytest.mark.parametrize(
    ("name", "persons"), [("multiallelic.vcf", "persons_multiallelic.tsv"), ("chrx_mixed.vcf", "persons_chrx.csv")]
)
@pytest.mark.parametrize("by", ["ancestry", "sex_at_birth"])
def test_group_stats_match_bcftools_on_group_samples(gq, store_path, name, persons, by):
    store = gq.ingest(store_path, [DATA / name], persons=DATA / persons)
    groups = _groups(_persons(DATA / persons), by)
    assert len(groups) >= 2
    checks.assert_group_stats_match(store, [DATA / name], by, groups)
    # persons must not change the whole-cohort answers
    checks.assert_variants_match(store, [DATA / name])


def test_group_stats_from_parquet_persons_and_split_files(gq, tmp_path, store_path):
    persons = _persons(DATA / "persons_multiallelic.tsv")
    table = pa.table({k: [p[k] for p in persons] for k in ("sample_id", "ancestry", "sex_at_birth")})
    parquet = tmp_path / "persons.parquet"
    pq.write_table(table, parquet)
    parts = _split(tmp_path, DATA / "multiallelic.vcf", ["chr1", "chr2"])
    store = gq.ingest(store_path, [checks.bgzip(parts[1], tmp_path / "p1.vcf.gz"), parts[0]], persons=parquet)
    for by in ("ancestry", "sex_at_birth"):
        checks.assert_group_stats_match(store, parts, by, _groups(persons, by))


@checks.LOCAL_AND_S3
def test_group_rows_sum_to_cohort(gq, store_path):
    """AC, AN and the genotype counts of the groups add up to the whole cohort's (groups partition the samples)."""
    store = gq.ingest(store_path, [DATA / "chrx_mixed.vcf"], persons=DATA / "persons_chrx.csv")
    cohort = {(checks.row_of(r), r["allele"]): r for r in store.variants().to_pylist()}
    for by in ("ancestry", "sex_at_birth"):
        sums: dict[tuple[int, int], list[int]] = {}
        for r in store.variants(by=by).to_pylist():
            acc = sums.setdefault((checks.row_of(r), r["allele"]), [0] * len(checks.STAT_FIELDS))
            for i, f in enumerate(checks.STAT_FIELDS):
                acc[i] += r[f]
        assert sums.keys() == cohort.keys()
        for key, acc in sums.items():
            assert acc == [cohort[key][f] for f in checks.STAT_FIELDS], (by, key)


@checks.LOCAL_AND_S3
def test_groups_on_chrx_males_are_hemizygous(gq, store_path):
    """Males' non-PAR calls are haploid: their group has n_hemi and no n_het/n_hom_alt there."""
    store = gq.ingest(store_path, [DATA / "chrx_mixed.vcf"], persons=DATA / "persons_chrx.csv")
    rows = [
        r
        for r in store.variants(by="sex_at_birth").to_pylist()
        if r["sex_at_birth"] == "male" and r["pos"] in (3000000, 3000100, 3000200, 4000000)
    ]
    assert rows
    assert all(r["n_het"] == 0 and r["n_hom_alt"] == 0 for r in rows)
    assert sum(r["n_hemi"] for r in rows) == sum(
        s.n_hemi
        for s in oracle.allele_stats(DATA / "chrx_mixed.vcf", ["M1", "M2", "M3", "M4"])
        if s.pos in (3000000, 3000100, 3000200, 4000000)
    )
    assert not math.isnan(rows[0]["af"])


# --------------------------------------------------------------------------- simulated cohorts


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return simulate_cohort(out, n_samples=120, n_centers=2, sequence_length=40_000, seed=11, missing_rate=0.03)


@checks.LOCAL_AND_S3
def test_simulated_joint_files_reversed_with_groups(gq, store_path, simulated):
    joint = list(simulated.joint_vcfs)  # chr20 then chrX, same samples: split by region
    assert len(joint) >= 2
    assert all(oracle.sites(v) for v in joint)
    store = gq.ingest(store_path, list(reversed(joint)), persons=simulated.persons)
    persons = _persons(Path(simulated.persons))
    for by in ("ancestry", "sex_at_birth"):
        checks.assert_group_stats_match(store, joint, by, _groups(persons, by))
    checks.assert_store_matches(store, store_path, joint)


def test_simulated_center_file(gq, store_path, simulated):
    center = simulated.center_vcfs[0]
    store = gq.ingest(store_path, [center])
    checks.assert_store_matches(store, store_path, [center])


FIXTURE_DIR = Path(__file__).parent.parent / "data" / "fixtures"
FIXTURES = sorted(p for p in FIXTURE_DIR.glob("*") if p.name.endswith((".vcf", ".vcf.gz", ".bcf")))


def test_the_fixture_directory_holds_the_cohort():
    """The parametrised fixture tests below run on these files; an empty list would run none."""
    assert {p.name for p in FIXTURES} >= {
        "center1.vcf.gz",
        "center2.vcf.gz",
        "center3.vcf.gz",
        "cohort.chr20.vcf.gz",
        "cohort.chrX.vcf.gz",
    }
    assert (FIXTURE_DIR / "persons.tsv").exists()


@checks.LOCAL_AND_S3
@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture_file_matches_oracle(gq, store_path, path):
    store = gq.ingest(store_path, [path])
    checks.assert_store_matches(store, store_path, [path])


def test_group_query_when_no_site_has_an_alt_allele(gq, tmp_path, store_path):
    """Persons were given, so by="ancestry" is a known grouping: zero ALT alleles -> zero rows, not an error."""
    vcf = tmp_path / "altdot.vcf"
    vcf.write_text(
        checks.vcf_text(
            ["a", "b"],
            [
                ["chr1", "5", ".", "A", ".", ".", ".", ".", "GT", "0/0", "."],
            ],
        )
    )
    persons = tmp_path / "persons.tsv"
    persons.write_text("sample_id\tancestry\tsex_at_birth\na\tAFR\tfemale\nb\tEUR\tmale\n")
    store = gq.ingest(store_path, [vcf], persons=persons)
    assert store.variants().num_rows == 0
    for by in ("ancestry", "sex_at_birth"):
        table = store.variants(by=by)
        assert table.num_rows == 0
        assert by in table.column_names


@checks.LOCAL_AND_S3
def test_fixture_joint_files_reversed_with_groups(gq, store_path):
    joint = sorted(FIXTURE_DIR.glob("cohort.*.vcf.gz"))
    persons = FIXTURE_DIR / "persons.tsv"
    order = [p for p in joint if ".chr20." in p.name] + [p for p in joint if ".chr20." not in p.name]
    store = gq.ingest(store_path, list(reversed(order)), persons=persons)
    rows = _persons(persons)
    for by in ("ancestry", "sex_at_birth"):
        checks.assert_group_stats_match(store, order, by, _groups(rows, by))
    checks.assert_store_matches(store, store_path, order)


def test_sample_ids_that_look_like_numbers_keep_their_groups(gq, tmp_path, store_path):
    """A person table's IDs are text whatever they look like (found by hypothesis: a sample named
    1e3 was read as 1000.0, so its ancestry group silently vanished)."""
    names = ["1e3", "TRUE", "007", "NA1"]
    vcf = tmp_path / "numbers.vcf"
    vcf.write_text(
        checks.vcf_text(names, [["chr1", "5", ".", "A", "G", ".", ".", ".", "GT", "0/1", "1/1", "0/0", "0/1"]])
    )
    persons = tmp_path / "persons.tsv"
    persons.write_text("sample_id\tancestry\n1e3\tAFR\nTRUE\tEUR\n007\tAFR\nNA1\tEUR\n")
    store = gq.ingest(store_path, [vcf], persons=persons)
    checks.assert_group_stats_match(store, [vcf], "ancestry", {"AFR": ["1e3", "007"], "EUR": ["TRUE", "NA1"]})
