"""Store.frequencies, Store.carriers and Store.participant against bcftools (tests/oracle.py).

Expectations come only from bcftools (through pysam) and plain Python on the text it
prints: per-allele statistics of any sample subset from ``checks.expected_stats``
(``bcftools view -S`` + ``norm -m-`` + ``query``), a second AC/AN route from
``oracle.recomputed_ac_an``, and carriers from the GT text of
``bcftools query -f '%CHROM-%POS-%REF-%ALT[\\t%SAMPLE=%GT]\\n'``. Cohort membership for
filter expressions is computed with pandas on the person table, gene coordinates are read
from the GTF with pandas.

Two stores: the 120-sample fixture cohort (chr20 + chrX with haploid male calls, a
multi-allelic site on each contig, missing and partial calls, phased and unphased), and a
hand-written 40-sample VCF whose sites sit on both sides of the sparse/dense boundary of the
query encoding (``samples // 16`` = 2 non-hom-ref calls), with multi-allelic, partial,
missing and mixed haploid/diploid calls.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pysam.bcftools as bcftools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checks
import genoquery
import oracle
from conftest import s3_store_url
from genoquery.index.phenotypes import import_table
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.storage.format import LOOKUP_DIR
from genoquery.storage.lookup_table import SiteRows

VCFS, PERSONS, GTF = checks.FIXTURE_VCFS, checks.FIXTURE_PERSONS, checks.FIXTURE_GTF
IDS = oracle.sample_names(VCFS[0])  # store order = header order
CONTIG_SPAN = {"chr20": (1, 50_000), "chrX": (2_781_480, 2_831_479)}  # data/fixtures/README.md
CARRIER_COLUMNS = ["variant_key", "sample_id", "zygosity", "allele_copies", "gt", "sample_index", "site_row", "allele"]
STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")
BASE = ["contig", "pos", "ref", "alt", "id", "filter", "qual", "variant_key", "allele", "site_row"]
STAT_COLUMNS = ["ac", "an", "af", "n_het", "n_hom_alt", "n_hemi", "n_missing"]


# --------------------------------------------------------------------------- oracle helpers (test-local)


@cache
def expect(vcfs: tuple[Path, ...], samples: tuple[str, ...] | None) -> tuple[oracle.AlleleStats, ...]:
    """checks.expected_stats, memoised per (files, sample set): bcftools runs are the slow part."""
    return tuple(checks.expected_stats(list(vcfs), None if samples is None else list(samples)))


def expected_for(vcfs, samples) -> tuple[oracle.AlleleStats, ...]:
    return expect(tuple(vcfs), None if samples is None else tuple(sorted(set(samples))))


def in_region(contig: str, pos: int, region: str | None) -> bool:
    """1-based inclusive CONTIG[:START[-END]], parsed here (not by genoquery)."""
    if region is None:
        return True
    name, _, span = region.partition(":")
    if name != contig:
        return False
    if not span:
        return True
    start, _, end = span.replace(",", "").partition("-")
    return int(start) <= pos <= (int(end) if end else int(start))


@cache
def gt_sites(vcfs: tuple[Path, ...]) -> tuple[tuple, ...]:
    """Per site in store order: (site_row, contig, pos, ref, alts, id, filters, ((sample, GT text), ...)),
    from ``bcftools query -f '%CHROM-%POS-%REF-%ALT[\\t%SAMPLE=%GT]\\n'`` (GT text parsed here)."""
    out, row = [], 0
    for vcf in vcfs:
        described = oracle.sites(vcf)  # ID and FILTER of the same records, same order
        text = bcftools.query("-f", "%CHROM-%POS-%REF-%ALT[\t%SAMPLE=%GT]\n", str(vcf))
        lines = [line for line in text.split("\n") if line]
        assert len(lines) == len(described)
        for line, site in zip(lines, described, strict=True):
            head, *calls = line.split("\t")
            contig, pos, ref, alts = head.split("-")
            assert (contig, int(pos), ref) == (site.contig, site.pos, site.ref)
            calls = tuple(tuple(c.split("=", 1)) for c in calls)
            out.append(
                (
                    row,
                    contig,
                    int(pos),
                    ref,
                    tuple(alts.split(",")) if alts != "." else (),
                    site.id,
                    site.filters,
                    calls,
                )
            )
            row += 1
    return tuple(out)


def carrier_row(site, k: int, j: int, sample: str, gt: str) -> tuple | None:
    """The expected carriers row of ALT ``k`` for one call, or None when the call lacks allele k."""
    alleles = re.split(r"[/|]", gt)
    copies = alleles.count(str(k))
    if not copies:
        return None
    if len(alleles) == 1:
        zygosity = "hemi"
    elif "." in alleles:
        zygosity = "partial"
    else:
        zygosity = "hom_alt" if copies == 2 else "het"
    row, contig, pos, ref, alts = site[:5]
    unphased = "/".join(sorted(alleles, key=lambda a: -1 if a == "." else int(a)))  # ascending, "." first
    return (f"{contig}-{pos}-{ref}-{alts[k - 1]}", sample, zygosity, copies, unphased, j, row, k)


def expected_carriers(vcfs, members=None, keep=lambda site, k: True) -> list[tuple]:
    """Carriers of every ALT allele ``keep(site, k)`` selects, among ``members`` (None: all), in
    genome order, then allele, then sample."""
    members = None if members is None else set(members)
    out = []
    for site in gt_sites(tuple(vcfs)):
        for k in range(1, len(site[4]) + 1):
            if not keep(site, k):
                continue
            for j, (sample, gt) in enumerate(site[7]):
                if members is None or sample in members:
                    row = carrier_row(site, k, j, sample, gt)
                    if row:
                        out.append(row)
    return out


def carrier_tuples(table) -> list[tuple]:
    assert table.column_names == CARRIER_COLUMNS
    return [tuple(r[c] for c in CARRIER_COLUMNS) for r in table.to_pylist()]


def rows_of(table) -> tuple[list[str], list[tuple]]:
    """Column names and rows, with NaN and null told apart but NaN equal to itself."""

    def value(v):
        return "NaN" if isinstance(v, float) and math.isnan(v) else v

    return table.column_names, [tuple(value(v) for v in r.values()) for r in table.to_pylist()]


def af_ok(af, ac: int, an: int) -> bool:
    """AF = AC/AN, NaN (not null) when AN = 0: the convention of Store.variants (checks.assert_variants_match)."""
    if an:
        return af is not None and math.isclose(af, ac / an, rel_tol=1e-12)
    return af is not None and math.isnan(af)


def assert_frequencies(table, vcfs, cohort_ids, region=None, by=None, groups=None) -> None:
    """``table`` (Store.frequencies) equals the oracle on ``cohort_ids`` (None: every sample).

    With ``by``, ``groups`` maps each group value (text) to its samples; the expected rows are
    expected_stats on (cohort ∩ group) for every group with a cohort member.
    """
    if by is None:
        assert table.column_names == BASE[:7] + STAT_COLUMNS + BASE[7:]
    else:
        assert table.column_names == [*BASE, by, *STAT_COLUMNS]
    sites = gt_sites(tuple(vcfs))
    quals = [q for vcf in vcfs for q in oracle.site_quals(vcf)]
    cohort = set(IDS_OF[tuple(vcfs)] if cohort_ids is None else cohort_ids)
    if by is None:
        parts = {None: expected_for(vcfs, cohort_ids)}
    else:
        parts = {g: expected_for(vcfs, sorted(cohort & set(m))) for g, m in groups.items() if cohort & set(m)}
        assert parts, "the test's cohort must meet some group"
    want = sorted(
        ((e.site, e.allele, g), (e.contig, e.pos, e.ref, e.alt, *tuple(getattr(e, s) for s in STATS)))
        for g, stats in parts.items()
        for e in stats
        if in_region(e.contig, e.pos, region)
    )
    records = table.to_pylist()
    got = [
        (
            (r["site_row"], r["allele"], r[by] if by else None),
            (r["contig"], r["pos"], r["ref"], r["alt"], *tuple(r[s] for s in STATS)),
        )
        for r in records
    ]
    assert got == want
    for r in records:
        assert af_ok(r["af"], r["ac"], r["an"]), r
        site = sites[r["site_row"]]
        assert r["variant_key"] == f"{r['contig']}-{r['pos']}-{r['ref']}-{r['alt']}"
        assert (r["id"] if not checks._missing_id(r["id"]) else ".") == site[5], r
        assert checks._filter_set(r["filter"]) == frozenset(site[6]), r
        q = quals[r["site_row"]]
        assert (r["qual"] is None or math.isnan(r["qual"])) if math.isnan(q) else np.float32(r["qual"]) == q, r


# --------------------------------------------------------------------------- fixture cohort


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cohort_queries")


@pytest.fixture(scope="module", params=["local", "s3"])
def store(request, work):
    """The fixture cohort in a local store, and in one on the loopback S3 server (every test of it runs on both)."""
    s = checks.ingest_fixture(work / "cohort.gq" if request.param == "local" else s3_store_url(request))
    yield s
    s.close()


@pytest.fixture(scope="module")
def persons() -> pd.DataFrame:
    table = pd.read_csv(PERSONS, sep="\t", dtype={"sample_id": str})
    assert table["sample_id"].tolist() == IDS  # persons listed in store order
    return table


def groups_of(persons: pd.DataFrame, column: str) -> dict[str, list[str]]:
    return {str(v): g["sample_id"].tolist() for v, g in persons.groupby(column)}


IDS_OF = {VCFS: IDS}

FEMALE_BEFORE_1980 = "sex_at_birth = 'Female' AND birth_year < 1980"
SHUFFLED = random.Random(7).sample(IDS[5:100:4], len(IDS[5:100:4]))
COHORTS = {
    "first10": IDS[:10],
    "every3rd": IDS[::3],
    "single": ["S000035"],  # has a ./. at chr20:21729 (AN = 0 there)
    "single_male": None,  # filled from persons: first male
    "filter": FEMALE_BEFORE_1980,
    "shuffled": SHUFFLED,
}


def cohort_ids(name: str, persons: pd.DataFrame) -> tuple[object, list[str]]:
    """(what is passed to genoquery, the member IDs computed here)."""
    if name == "filter":
        rows = persons[(persons["sex_at_birth"] == "Female") & (persons["birth_year"] < 1980)]
        return FEMALE_BEFORE_1980, rows["sample_id"].tolist()
    if name == "single_male":
        first = persons.loc[persons["sex_at_birth"] == "Male", "sample_id"].iloc[0]
        return [first], [first]
    return COHORTS[name], list(COHORTS[name])


def dense_sites(store) -> dict[int, bool]:
    """site_row -> whether the site is dense in the query encoding (genoquery.storage.call_codes)."""
    return {
        r["site_row"]: r["dense"]
        for r in store.sql("SELECT site_row, dense_row IS NOT NULL AS dense FROM batch_sites", []).to_pylist()
    }


def carrier_count(site) -> int:
    """Calls that carry some ALT allele (from the GT text): what decides sparse or dense."""
    return sum(1 for _, gt in site[7] if set(re.split(r"[/|]", gt)) - {"0", "."})


def test_fixture_exercises_both_encodings(store):
    dense = dense_sites(store)
    sites = gt_sites(VCFS)
    assert len(dense) == len(sites)
    for contig in CONTIG_SPAN:  # chr20: diploid; chrX: haploid males
        kinds = [dense[s[0]] for s in sites if s[1] == contig]
        assert kinds.count(True) >= 10, contig
        assert kinds.count(False) >= 10, contig
    for site in sites:  # one carrier is always listed, a carrier in most samples always coded
        if carrier_count(site) <= 1 or carrier_count(site) > len(IDS) // 2:
            assert dense[site[0]] == (carrier_count(site) > 1), site[:5]


@pytest.mark.parametrize("name", list(COHORTS))
@pytest.mark.parametrize("region", [None, "chr20:1-500000", "chrX", "chrX:2790000-2800000", "chr20:2-152"])
def test_frequencies_of_fixed_cohorts(store, persons, name, region):
    cohort, members = cohort_ids(name, persons)
    table = store.frequencies(region=region, cohort=cohort)
    assert_frequencies(table, VCFS, members, region)
    if region == "chr20:2-152":  # before the first chr20 variant: valid, empty
        assert table.num_rows == 0


def test_frequencies_cohort_forms_agree(store, persons):
    """A shuffled list, the same list with duplicates, a numpy array and the filter's own IDs."""
    want = rows_of(store.frequencies(cohort=sorted(SHUFFLED)))
    assert rows_of(store.frequencies(cohort=SHUFFLED)) == want
    assert rows_of(store.frequencies(cohort=SHUFFLED + SHUFFLED[:3])) == want
    assert rows_of(store.frequencies(cohort=np.array(SHUFFLED))) == want
    _, members = cohort_ids("filter", persons)
    assert rows_of(store.frequencies(cohort=FEMALE_BEFORE_1980)) == rows_of(store.frequencies(cohort=members))


def test_frequencies_of_everyone_equals_oracle_and_variants(store):
    everyone = store.frequencies(cohort=list(reversed(IDS)))  # counted from the encoding
    assert_frequencies(everyone, VCFS, None)
    assert_frequencies(store.frequencies(), VCFS, None)  # whole store (index)
    assert rows_of(everyone) == rows_of(store.variants())
    assert everyone.schema == store.variants().schema


def test_frequencies_ac_an_second_route(store):
    members = IDS[1::2]
    got = [
        (r["contig"], r["pos"], r["ref"], r["alt"], r["ac"], r["an"])
        for r in store.frequencies(cohort=members).to_pylist()
    ]
    assert got == [x for vcf in VCFS for x in oracle.recomputed_ac_an(vcf, members)]


@pytest.mark.parametrize("by", ["ancestry", "center", "sex_at_birth"])
@pytest.mark.parametrize("name", [None, "first10", "filter", "shuffled"])
def test_frequencies_by_group(store, persons, by, name):
    cohort, members = (None, None) if name is None else cohort_ids(name, persons)
    groups = groups_of(persons, by)
    for region in ("chrX:2781480-2800000", None):
        table = store.frequencies(region=region, cohort=cohort, by=by)
        assert_frequencies(table, VCFS, members, region, by=by, groups=groups)
    present = set(table.column(by).to_pylist())
    wanted = {g for g, m in groups.items() if members is None or set(m) & set(members)}
    assert present == wanted  # groups without a cohort member are left out
    if name == "first10" and by == "center":
        assert present == {"center1"}  # the first 10 samples are center 1's


def test_frequencies_by_integer_column_groups_as_text(store, persons):
    members = IDS[40:46]
    groups = {str(v): g["sample_id"].tolist() for v, g in persons.groupby("birth_year")}
    table = store.frequencies(region="chr20:1-20000", cohort=members, by="birth_year")
    assert_frequencies(table, VCFS, members, "chr20:1-20000", by="birth_year", groups=groups)


# --------------------------------------------------------------------------- property: any subset, any region


def regions():
    def spans(contig):
        lo, hi = CONTIG_SPAN[contig]
        return st.one_of(
            st.just(contig),
            st.builds(lambda s, n: f"{contig}:{s}-{s + n}", st.integers(max(1, lo - 100), hi), st.integers(0, 30_000)),
            st.builds(lambda s: f"{contig}:{s}", st.integers(lo, hi)),
        )

    return st.one_of(st.none(), st.sampled_from(sorted(CONTIG_SPAN)).flatmap(spans))


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(members=st.lists(st.sampled_from(IDS), unique=True, min_size=1), region=regions())
def test_frequencies_of_any_subset_and_region(store, members, region):
    assert_frequencies(store.frequencies(region=region, cohort=members), VCFS, members, region)


# --------------------------------------------------------------------------- carriers


def test_carriers_of_every_allele(store):
    """Each ALT allele by its key: sparse and dense sites, multi-allelic, haploid, partial calls."""
    by_key = {}
    for row in expected_carriers(VCFS):
        by_key.setdefault(row[0], []).append(row)
    sites = gt_sites(VCFS)
    keys = [f"{s[1]}-{s[2]}-{s[3]}-{a}" for s in sites for a in s[4]]
    assert len(keys) == store.info["variants"]
    dense = {
        r["site_row"] for r in store.sql("SELECT site_row FROM batch_sites WHERE dense_row IS NOT NULL", []).to_pylist()
    }
    seen = {"sparse": 0, "dense": 0}
    for s in sites:
        for a in s[4]:
            key = f"{s[1]}-{s[2]}-{s[3]}-{a}"
            got = carrier_tuples(store.carriers(key))
            assert got == by_key.get(key, []), key
            seen["dense" if s[0] in dense else "sparse"] += bool(got)
    assert seen["sparse"] > 50, seen
    assert seen["dense"] > 50, seen
    kinds = {row[2] for rows in by_key.values() for row in rows}
    assert kinds == {"het", "hom_alt", "hemi", "partial"}


def test_carriers_of_all_variants_at_once(store):
    assert carrier_tuples(store.carriers()) == expected_carriers(VCFS)
    for contig in CONTIG_SPAN:
        want = expected_carriers(VCFS, keep=lambda site, k: site[1] == contig)  # noqa: B023 - called at once, in this iteration
        assert carrier_tuples(store.carriers(region=contig)) == want


@pytest.mark.parametrize("name", ["first10", "every3rd", "single_male", "filter", "shuffled"])
def test_carriers_in_a_cohort(store, persons, name):
    cohort, members = cohort_ids(name, persons)
    want = expected_carriers(VCFS, members)
    assert want or name.startswith("single")
    assert carrier_tuples(store.carriers(cohort=cohort)) == want
    sites = gt_sites(VCFS)
    for s in list(sites[::7]) + [s for s in sites if len(s[4]) > 1]:
        for _k, a in enumerate(s[4], start=1):
            key = f"{s[1]}-{s[2]}-{s[3]}-{a}"
            assert carrier_tuples(store.carriers(key, cohort=cohort)) == [r for r in want if r[0] == key], key


def test_carriers_by_rsid_of_a_multiallelic_site(store):
    multi = [s for s in gt_sites(VCFS) if len(s[4]) > 1 and s[5] != "."]
    assert multi
    for site in multi:
        rsid = site[5].split(";")[0]
        want = expected_carriers(VCFS, keep=lambda s, k: rsid in s[5].split(";"))  # noqa: B023 - called at once, in this iteration
        got = carrier_tuples(store.carriers(rsid))
        assert got == want, rsid
        assert {r[7] for r in got} == set(range(1, len(site[4]) + 1)), rsid
        members = IDS[::2]
        want = expected_carriers(VCFS, members, keep=lambda s, k: rsid in s[5].split(";"))  # noqa: B023 - called at once, in this iteration
        assert carrier_tuples(store.carriers(rsid, cohort=members)) == want


# --------------------------------------------------------------------------- gene-level carriers (burden)


@pytest.fixture(scope="module")
def genes() -> dict[str, tuple[str, int, int]]:
    gtf = pd.read_csv(
        GTF,
        sep="\t",
        comment="#",
        header=None,
        names=["contig", "source", "feature", "start", "end", "score", "strand", "frame", "attrs"],
    )
    rows = gtf[(gtf["feature"] == "gene") & gtf["contig"].isin(list(CONTIG_SPAN))]
    return {
        re.search(r'gene_name "([^"]+)"', g.attrs)[1]: (g.contig, int(g.start), int(g.end)) for g in rows.itertuples()
    }


@pytest.fixture(scope="module")
def whole_af() -> dict[tuple[int, int], float | None]:
    """Whole-cohort AF per (site_row, allele) from oracle.allele_stats; None when AN = 0."""
    return {(e.site, e.allele): (e.ac / e.an if e.an else None) for e in expected_for(VCFS, None)}


def burden_keep(whole_af, contig, start, end, af_min=None, af_max=None, pass_only=False):
    def keep(site, k):
        af = whole_af[(site[0], k)]
        return (
            site[1] == contig
            and start <= site[2] <= end
            and (af_min is None or (af is not None and af >= af_min))
            and (af_max is None or (af is not None and af <= af_max))
            and (not pass_only or site[6] == ("PASS",))
        )

    return keep


@pytest.mark.parametrize(
    "filters",
    [{"af_max": 0.01}, {"af_min": 0.05}, {"af_min": 0.01, "af_max": 0.2, "pass_only": True}, {"pass_only": True}],
)
def test_gene_carriers(store, genes, whole_af, filters):
    assert set(genes) == {"GQA1", "GQB2", "GQC3", "GQD4", "GQX1", "GQX2"}
    total = 0
    for name, (contig, start, end) in genes.items():
        want = expected_carriers(VCFS, keep=burden_keep(whole_af, contig, start, end, **filters))
        got = carrier_tuples(store.carriers(gene=name, **filters))
        assert got == want, name
        total += len(want)
        members = IDS[::3]
        want = expected_carriers(VCFS, members, keep=burden_keep(whole_af, contig, start, end, **filters))
        assert carrier_tuples(store.carriers(gene=name, cohort=members, **filters)) == want, name
    assert total > 0
    assert store.carriers(gene="GQC3", **filters).num_rows == 0  # no variant in the gene: empty


def test_gene_carriers_cover_both_encodings(store):
    """Rare variants of a gene sit at sparse sites, common ones at dense sites: both paths are read."""

    def encodings(table):
        rows = sorted(set(table.column("site_row").to_pylist()))
        return {
            r["dense"]
            for r in store.sql(
                "SELECT dense_row IS NOT NULL AS dense FROM batch_sites WHERE site_row IN (SELECT unnest(?))", [rows]
            ).to_pylist()
        }

    assert False in encodings(store.carriers(gene="GQA1", af_max=0.01))
    assert True in encodings(store.carriers(gene="GQA1", af_min=0.05))
    assert encodings(store.carriers(gene="GQX1")) == {False, True}


@pytest.mark.parametrize(
    ("region", "filters"),
    [
        ("chr20:1-20000", {"af_max": 0.01}),
        ("chrX:2785100-2800000", {"af_min": 0.02, "pass_only": True}),
        ("chrX", {"af_max": 0.05, "pass_only": True}),
    ],
)
def test_region_carriers_with_filters(store, whole_af, region, filters):
    contig, _, span = region.partition(":")
    start, end = (int(x) for x in span.split("-")) if span else CONTIG_SPAN[contig]
    want = expected_carriers(VCFS, keep=burden_keep(whole_af, contig, start, end, **filters))
    assert want
    assert carrier_tuples(store.carriers(region=region, **filters)) == want
    members = IDS[60:]
    want = expected_carriers(VCFS, members, keep=burden_keep(whole_af, contig, start, end, **filters))
    assert carrier_tuples(store.carriers(region=region, cohort=members, **filters)) == want


# --------------------------------------------------------------------------- participant


def expected_participant(vcfs, sample: str, whole, group) -> list[tuple]:
    stats = {(e.site, e.allele): e for e in whole}
    in_group = {(e.site, e.allele): e for e in group} if group is not None else None
    out = []
    j = IDS_OF[tuple(vcfs)].index(sample)
    for site in gt_sites(tuple(vcfs)):
        for k in range(1, len(site[4]) + 1):
            row = carrier_row(site, k, j, sample, site[7][j][1])
            if row:
                e = stats[(site[0], k)]
                g = in_group[(site[0], k)] if in_group is not None else None
                out.append((row[0], row[2], row[4], row[3], e.ac, e.an, g.ac if g else None, g.an if g else None))
    return out


def assert_participant(store, vcfs, persons, sample) -> list[tuple]:
    ancestry = persons.set_index("sample_id")["ancestry"].astype(str).to_dict()[sample]
    group = persons.loc[persons["ancestry"].astype(str) == ancestry, "sample_id"].tolist()
    table = store.participant(sample)
    records = table.to_pylist()
    got = [
        (
            r["variant_key"],
            r["zygosity"],
            r["gt"],
            r["allele_copies"],
            r["ac"],
            r["an"],
            r["ancestry_ac"],
            r["ancestry_an"],
        )
        for r in records
    ]
    want = expected_participant(vcfs, sample, expected_for(vcfs, None), expected_for(vcfs, group))
    assert got == want, sample
    for r in records:
        assert af_ok(r["af"], r["ac"], r["an"]), r
        assert af_ok(r["ancestry_af"], r["ancestry_ac"], r["ancestry_an"]), r
        assert r["ancestry"] == ancestry
    return want


@pytest.fixture(scope="module")
def notable_samples(persons) -> dict[str, str]:
    """Samples with a haploid chrX call, a missing call, a partial call, a multi-allelic ALT 2."""
    found: dict[str, str] = {"first": IDS[0], "last": IDS[-1]}
    for site in gt_sites(VCFS):
        for sample, gt in site[7]:
            if gt == "1":
                found.setdefault("hemi_male", sample)
            if gt == ".":
                found.setdefault("haploid_missing", sample)
            if gt in ("./.", ".|."):
                found.setdefault("missing", sample)
            if re.fullmatch(r"1[/|]\.|\.[/|]1", gt):
                found.setdefault("partial", sample)
            if "2" in gt:
                found.setdefault("allele2", sample)
    assert len(found) == 7, found
    males = set(persons.loc[persons["sex_at_birth"] == "Male", "sample_id"])
    assert found["hemi_male"] in males
    assert found["haploid_missing"] in males
    return found


@pytest.mark.parametrize("which", ["first", "last", "hemi_male", "haploid_missing", "missing", "partial", "allele2"])
def test_participant(store, persons, notable_samples, which):
    want = assert_participant(store, VCFS, persons, notable_samples[which])
    zygosities = {w[1] for w in want}
    if which == "hemi_male":
        assert "hemi" in zygosities
    if which == "partial":
        assert "partial" in zygosities


def test_participant_many_samples(store, persons):
    for sample in IDS[1::3]:
        assert_participant(store, VCFS, persons, sample)


def test_participant_over_many_small_chunks(work, persons):
    """A participant's calls found across many inner chunks: listed calls in chunks of 64 (gaps
    between the chunks that hold them) and parts of 256, 2-bit codes in chunks of 8 samples by 4
    sites; with the sample-major index and without it."""
    layout = ChunkLayout(code_chunk_bytes=2, code_chunk_rows=4, listed_chunk=64, listed_shard=256)
    path = work / "small_chunks.gq"
    genoquery.ingest(path, list(checks.FIXTURE_VCFS), persons=checks.FIXTURE_PERSONS, layout=layout).close()
    with genoquery.open(path) as small:
        assert not any(batch.wide_calls for batch in small.batches)  # diploid and haploid calls only
        readers = [batch.reader for batch in small.batches]
        assert readers[0]._listed_gt.layout.chunk[0] == 64
        assert readers[0]._codes.layout.chunk == (4, 2)
        assert readers[0]._by_sample[0].array.shape[0] >= 2  # parts of 256 listed calls in the sample-major index
        for sample in IDS[::7]:
            assert_participant(small, VCFS, persons, sample)
        for reader in readers:  # a batch written before the sample-major index: its listed calls searched
            reader._by_sample = None
        for sample in IDS[::7]:
            assert_participant(small, VCFS, persons, sample)


# --------------------------------------------------------------------------- hand-written edge cases

N_SMALL = 40  # sparse: at most 40 // 16 = 2 calls that are not hom-ref
SMALL_IDS = [f"M{i:02d}" for i in range(20)] + [f"F{i:02d}" for i in range(20, 40)]


def _diploid(calls: dict[int, str], default: str = "0/0") -> list[str]:
    return [calls.get(i, default) for i in range(N_SMALL)]


def _chrx(calls: dict[int, str], haploid=range(20)) -> list[str]:
    hap = set(haploid)
    return [calls.get(i, "0" if i in hap else "0/0") for i in range(N_SMALL)]


def _spread(*pairs: tuple[str, int], start: int = 0, step: int = 1) -> dict[int, str]:
    out, i = {}, start
    for gt, n in pairs:
        for _ in range(n):
            out[i % N_SMALL] = gt
            i += step
    return out


def small_records() -> list[list[str]]:
    def rec(contig, pos, ref, alt, gts, rsid=".", flt="PASS"):
        return [contig, str(pos), rsid, ref, alt, "50", flt, ".", "GT", *gts]

    dense_multi = _spread(
        ("0/1", 5),
        ("1|0", 3),
        ("1/1", 3),
        ("1/2", 3),
        ("2/2", 3),
        ("0/2", 3),
        ("2|1", 2),
        ("./.", 3),
        ("./1", 2),
        ("1/.", 1),
        ("0/.", 1),
        ("./2", 1),
        start=3,
    )  # 30 calls
    return [
        rec("chr1", 100, "A", "C", _diploid({5: "0/1"}), "rs100"),  # sparse, 1 call
        rec("chr1", 200, "A", "C,G", _diploid(dense_multi), "rs200"),  # dense, 30 calls
        rec("chr1", 300, "G", "T,C", _diploid({7: "1/2", 33: "./2"}), "rs300"),  # sparse multi-allelic
        rec("chr1", 350, "G", "T", _diploid({8: "1|1", 9: "./1"}, "0|0")),  # 2 calls: sparse (boundary)
        rec("chr1", 360, "G", "T", _diploid({8: "1|1", 9: "./1", 10: "0|1"}, "0|0")),  # 3 calls: dense
        rec("chr1", 400, "T", "A", _diploid(_spread(("./.", 25), ("0/1", 5), step=1)), flt="LowQual"),
        rec("chr1", 500, "C", "G", _diploid({})),  # no ALT call at all
        rec(
            "chr1",
            600,
            "C",
            "A,G,T",
            _diploid(
                _spread(("3/3", 4), ("1/3", 4), ("2/3", 4), ("0/3", 4), ("1/1", 4), ("0/1", 4), ("./3", 2), start=11)
            ),
        ),
        rec("chr1", 700, "G", "A", _diploid({i: "./." for i in range(N_SMALL)})),  # AN = 0
        rec("chr1", 750, "G", "A", _diploid({**{i: "./." for i in range(20)}, 25: "0/1"})),  # missing, 1 carrier
        # chrX: M00-M19 haploid, F20-F39 diploid
        rec("chrX", 1000, "A", "G", _chrx({3: "1"}), "rs1000"),  # sparse, one hemizygous call
        rec(
            "chrX",
            1100,
            "A",
            "G,T",
            _chrx(
                {
                    **_spread(("1", 8), (".", 3), ("2", 2)),
                    **_spread(("0/1", 5), ("1|1", 3), ("1/2", 2), ("./.", 1), ("./1", 1), ("0|2", 1), start=20),
                }
            ),
            "rs1100",
        ),  # dense, 26 calls
        rec("chrX", 1200, "C", "T", _chrx({1: ".", 2: "."})),  # sparse: haploid missing only
        rec("chrX", 1300, "C", "T,A", _chrx({4: "2", 25: "0/1"})),  # sparse, haploid ALT 2
        rec(
            "chrX",
            1400,
            "G",
            "C",
            _chrx({**{i: "1" for i in range(10)}, **{i: "0/1" for i in range(10, 30, 2)}}, haploid=range(10)),
        ),  # another haploid pattern, dense
        rec(
            "chrX", 1500, "G", "C", _chrx({0: "1", 19: ".", **{i: "0/1" for i in range(20, 40, 3)}, 21: "1/1"})
        ),  # dense; most haploid calls are REF
        rec("chrX", 1600, "T", "G", _chrx({i: "." for i in range(20)})),  # dense: every haploid call missing
        rec("chrX", 1700, "A", "T", _chrx({})),  # haploid pattern, nothing but REF
        rec("chrX", 1800, "A", "T", _chrx({17: "1", 30: "1/."})),  # sparse, hemi + partial
    ]


SMALL_PERSONS = "sample_id\tsex_at_birth\tancestry\tcenter\n" + "".join(
    f"{s}\t{'Male' if i < 20 else 'Female'}\t{('AFR', 'EUR', 'EAS')[i % 3]}\tc{1 + i * 3 // N_SMALL}\n"
    for i, s in enumerate(SMALL_IDS)
)


@pytest.fixture(scope="module")
def small(work):

    text = checks.vcf_text(
        SMALL_IDS, small_records(), contigs=(("chr1", 10_000), ("chrX", 10_000)), filters=("LowQual",)
    )
    vcf = work / "small.vcf"
    vcf.write_text(text)
    persons = work / "small_persons.tsv"
    persons.write_text(SMALL_PERSONS)
    IDS_OF[(vcf,)] = SMALL_IDS
    s = genoquery.ingest(work / "small.gq", [vcf], persons=persons, progress=False)
    yield s, (vcf,), pd.read_csv(persons, sep="\t")
    s.close()


SMALL_COHORTS = {
    "all": None,
    "males": SMALL_IDS[:20],
    "females": SMALL_IDS[20:],
    "first10": SMALL_IDS[:10],
    "every3rd": SMALL_IDS[::3],
    "single_missing": ["M01"],
    "single_female": ["F33"],
    "mixed": random.Random(3).sample(SMALL_IDS, 17),
    "filter": "center = 'c2' OR sex_at_birth = 'Male' AND ancestry = 'EUR'",
}


def small_members(name, persons) -> tuple[object, list[str] | None]:
    if name == "filter":
        p = persons
        rows = p[(p["center"] == "c2") | ((p["sex_at_birth"] == "Male") & (p["ancestry"] == "EUR"))]
        return SMALL_COHORTS[name], rows["sample_id"].tolist()
    return SMALL_COHORTS[name], SMALL_COHORTS[name]


def test_small_vcf_sites_fall_on_both_sides_of_the_boundary(small):
    store, vcfs, _ = small
    rows = store.sql(
        "SELECT pos, dense_row IS NOT NULL AS dense, haploid_pattern FROM batch_sites ORDER BY site_row", []
    ).to_pylist()
    assert [r["pos"] for r in rows] == [s[2] for s in gt_sites(vcfs)]
    dense = {r["pos"]: r["dense"] for r in rows}
    assert not dense[100]
    assert dense[200]
    assert not dense[300]
    assert dense[600]
    assert dense[1100]
    assert dense[1500]
    assert not dense[350]
    assert dense[360]
    assert not dense[1000]
    assert not dense[1200]
    assert not dense[1300]
    assert not dense[1800]
    assert {dense[p] for p in (1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700)} == {True, False}
    assert len({r["haploid_pattern"] for r in rows if r["haploid_pattern"] is not None}) == 2


@pytest.mark.parametrize("name", list(SMALL_COHORTS))
def test_small_vcf_frequencies(small, name):
    store, vcfs, persons = small
    cohort, members = small_members(name, persons)
    for region in (None, "chr1", "chrX:1100-1600", "chrX:1150"):
        assert_frequencies(store.frequencies(region=region, cohort=cohort), vcfs, members, region)
    for by in ("center", "ancestry", "sex_at_birth"):
        groups = {str(v): g["sample_id"].tolist() for v, g in persons.groupby(by)}
        assert_frequencies(store.frequencies(cohort=cohort, by=by), vcfs, members, by=by, groups=groups)


@pytest.mark.parametrize("name", list(SMALL_COHORTS))
def test_small_vcf_carriers(small, name):
    store, vcfs, persons = small
    cohort, members = small_members(name, persons)
    want = expected_carriers(vcfs, members)
    assert carrier_tuples(store.carriers(cohort=cohort)) == want
    for site in gt_sites(vcfs):
        for _k, alt in enumerate(site[4], start=1):
            key = f"{site[1]}-{site[2]}-{site[3]}-{alt}"
            assert carrier_tuples(store.carriers(key, cohort=cohort)) == [r for r in want if r[0] == key], key
    if name == "all":
        assert {r[2] for r in want} == {"het", "hom_alt", "hemi", "partial"}
        assert {r[4] for r in want} >= {"1/2", "2/2", "0/2", "./1", "./2", "2", "1", "3/3"}  # 2/1, 1/. sorted


def test_small_vcf_carriers_by_rsid(small):
    store, vcfs, _ = small
    for rsid in ("rs100", "rs200", "rs300", "rs1000", "rs1100"):
        want = expected_carriers(vcfs, keep=lambda s, k: s[5] == rsid)  # noqa: B023 - called at once, in this iteration
        got = carrier_tuples(store.carriers(rsid))
        assert got == want, rsid
        assert got, rsid
    assert {r[7] for r in carrier_tuples(store.carriers("rs1100"))} == {1, 2}


def test_small_vcf_participants(small):
    store, vcfs, persons = small
    for sample in SMALL_IDS:
        assert_participant(store, vcfs, persons, sample)


def test_small_vcf_participants_without_lookup_files(small, tmp_path):
    """With the lookup files gone the participant view joins ``variants`` read from the index."""
    store, vcfs, persons = small
    shutil.copytree(store.path, tmp_path / "s.gq")
    shutil.rmtree(tmp_path / "s.gq" / LOOKUP_DIR)
    with genoquery.open(tmp_path / "s.gq") as copy:
        assert copy._lookup_table is None
        for sample in SMALL_IDS:
            assert_participant(copy, vcfs, persons, sample)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(1, 300)), unique=True, max_size=60), st.randoms())
def test_site_rows_find_each_pair_in_any_order(pairs, rnd):
    """Bisection over keys in site order (lookup files) or any order (a group's statistics)."""
    rnd.shuffle(pairs)
    site_row = np.array([p[0] for p in pairs], np.int64)
    allele = np.array([p[1] for p in pairs], np.int16)
    rows = SiteRows(site_row, allele)
    asked = pairs[: len(pairs) // 2] + [(2**41 + i, 1) for i in range(3)] + [(p[0], p[1] + 300) for p in pairs[:2]]
    at, found = rows.find(np.array([a[0] for a in asked], np.int64), np.array([a[1] for a in asked], np.int64))
    assert found.tolist() == [a in pairs for a in asked]
    assert [pairs[i] for i in at[found]] == [a for a in asked if a in pairs]


# --------------------------------------------------------------------------- errors


def test_errors_name_the_problem(store):

    QueryError, RegionError = genoquery.QueryError, genoquery.RegionError
    cases = [
        (lambda: store.frequencies(cohort=["S000001", "NOPE1"]), QueryError, "not in this store: NOPE1"),
        (lambda: store.frequencies(cohort=[]), QueryError, "empty cohort"),
        (lambda: store.frequencies(cohort="birth_year > 3000"), QueryError, "matches no sample"),
        (lambda: store.frequencies(cohort="no_such_column = 1"), QueryError, "unknown column 'no_such_column'"),
        (lambda: store.frequencies(cohort=IDS[:5], by="nope"), QueryError, "no person-table column 'nope'"),
        (lambda: store.frequencies(by="nope"), QueryError, "no person-table column 'nope'"),
        (lambda: store.frequencies(cohort=IDS[:5], by="sample_id"), QueryError, "'sample_id'"),
        (lambda: store.frequencies(region="chr20:100-1", cohort=IDS[:5]), RegionError, "bad region"),
        (lambda: store.frequencies(region="chr7:1-100", cohort=IDS[:5]), RegionError, "contig 'chr7'"),
        (lambda: store.frequencies(region="chr20:a-b"), RegionError, "bad region"),
        (lambda: store.carriers("chr20-652-C-G"), QueryError, "no variant at chr20:652"),
        (lambda: store.carriers("chr20-651-C-G"), QueryError, "at chr20:651 it holds chr20-651-C-T"),
        (lambda: store.carriers("rs1"), QueryError, "rsID rs1 is not in this store"),
        (lambda: store.carriers("chr20-651-C-T", cohort=["NOPE2"]), QueryError, "not in this store: NOPE2"),
        (lambda: store.carriers("chr20-651-C-T", cohort=[]), QueryError, "empty cohort"),
        (lambda: store.carriers(gene="NOPE"), QueryError, "gene 'NOPE'"),
        (lambda: store.carriers(region="chr20:100-1"), RegionError, "bad region"),
        (lambda: store.carriers(region="chr7"), RegionError, "contig 'chr7'"),
        (lambda: store.participant("NOPE3"), QueryError, "'NOPE3' is not in this store"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


def test_reimported_person_table_regroups_the_stored_statistics(tmp_path):
    """`genoquery phenotypes` with new ancestry labels: variants(by=...) and frequencies(by=...)
    follow the new table, equal to bcftools on each new group's samples."""

    path = tmp_path / "regroup.gq"
    checks.ingest_fixture(path).close()
    persons = pd.read_csv(PERSONS, sep="\t")
    persons["ancestry"] = np.roll(persons["ancestry"].to_numpy(), 7)  # new labels for most samples
    persons = persons.drop(columns=["sex_at_birth"])
    changed = tmp_path / "persons2.tsv"
    persons.to_csv(changed, sep="\t", index=False)
    import_table(path, changed)
    groups = {g: list(ids) for g, ids in persons.groupby("ancestry")["sample_id"]}
    with genoquery.open(path) as store:
        assert store.info["groupings"] == ["ancestry"]
        checks.assert_group_stats_match(store, list(VCFS), "ancestry", groups)
        fresh = store.frequencies(cohort=persons["sample_id"].tolist(), by="ancestry")
        assert fresh.equals(store.frequencies(by="ancestry"))
        with pytest.raises(genoquery.QueryError, match="sex_at_birth"):
            store.variants(by="sex_at_birth")
