"""Valid VCF records genoquery once refused, stored exactly (issue 17): the oracle is bcftools.

Calls of ploidy above 2 (triploid, tetraploid, mixed with haploid and diploid calls in one record,
partly missing as ``0/./1``), hand-written and drawn by hypothesis, and a record whose ALT is
``.`` while a GT names allele 1 (bcftools reads and prints it as it is): the store's genotypes,
its VCF/BCF export, ``vcztools query`` of its batch and ``genoquery verify --sources`` all agree
with ``bcftools query`` of the source; AC/AN, counted here from bcftools' GT text, with
``variants`` (no row for a site without an ALT allele) and with cohort frequencies; carriers
with the samples whose GT text names the allele.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam.bcftools as bcftools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checks
import genoquery
import oracle
from genoquery.ingest.compact import compact
from genoquery.ingest.withdraw import withdraw
from genoquery.verify import verify

QUERY = r"%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n"  # escapes, as typed on a command line
SAMPLES = ["A", "B", "C", "D"]
ALT_DOT = [
    ["chr1", "10", ".", "A", ".", ".", ".", ".", "GT", "0/1", "1|1", "0/0", "./."],
    ["chr1", "15", ".", "G", "T", ".", ".", ".", "GT", "0/1", "1|1", "0/0", "1"],
    ["chr1", "20", ".", "A", ".", ".", ".", ".", "GT", "1", "./1", "0|0", "."],
    ["chr1", "30", ".", "C", ".", ".", ".", ".", "GT", "0/0", "0|0", "0", "./."],
]


def _vcztools_query(group: Path) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "vcztools", "query", "-f", QUERY, str(group)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _ac_an(text: str, columns: list[int] | None = None) -> list[tuple[str, int, str, int, int]]:
    """(contig, pos, alt, AC, AN) per ALT allele, counted from bcftools' GT text (of the sample
    ``columns`` only, when given)."""
    out = []
    for line in text.splitlines():
        contig, pos, _ref, alts, *gts = line.split("\t")
        gts = gts if columns is None else [gts[j] for j in columns]
        alleles = [a for gt in gts for a in gt.replace("|", "/").split("/") if a != "."]
        for k, alt in enumerate([] if alts == "." else alts.split(","), start=1):
            out.append((contig, int(pos), alt, alleles.count(str(k)), len(alleles)))
    return out


@pytest.fixture(scope="module", params=[".vcf", ".bcf"])
def alt_dot(request, tmp_path_factory):
    work = tmp_path_factory.mktemp("alt_dot")
    vcf = work / "alt_dot.vcf"
    vcf.write_text(checks.vcf_text(SAMPLES, ALT_DOT))
    source = vcf if request.param == ".vcf" else checks.to_bcf(vcf, work / "alt_dot.bcf")
    store = genoquery.ingest(work / "s.gq", [source], progress=False)
    yield store, source, work
    store.close()


def test_alt_dot_with_allele_1_is_stored_as_bcftools_reads_it(alt_dot) -> None:
    store, source, work = alt_dot
    expected = bcftools.query("-f", QUERY, str(source))
    assert "\t0/1\t1|1\t" in expected.splitlines()[0]  # the oracle keeps the allele
    got = store.genotypes()
    gt = np.array([[oracle.parse_gt(g)[0] for g in line.split("\t")[4:]] for line in expected.splitlines()])
    assert np.array_equal(got.gt, gt)
    check_outputs(store, expected, work)
    report = verify(store.path, [source])
    assert report.ok, report.problems
    assert report.checked["calls"] == len(ALT_DOT) * len(SAMPLES)


def test_an_allele_beyond_alt_is_still_refused(tmp_path) -> None:
    """Only allele 1 of an ALT ``.`` record is kept: allele 2 of a one-ALT record names nothing."""
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(
        checks.vcf_text(SAMPLES, [["chr1", "10", ".", "A", "C", ".", ".", ".", "GT", "0/2", "0/0", "0/0", "0/0"]])
    )
    with pytest.raises(genoquery.errors.InputFileError, match="GT uses allele 2"):
        genoquery.ingest(tmp_path / "s.gq", [vcf], progress=False)


# --------------------------------------------------------------------------- ploidy above 2

POLYPLOID = [
    ["chr1", "100", ".", "A", "C", ".", ".", ".", "GT", "0/1/1", "1|1|0", "0/0/0", "./././."],  # triploid, tetraploid
    ["chr1", "200", ".", "A", "C,G", ".", ".", ".", "GT", "0/./1", "1|0|1|2", "0", "1/1"],  # mixed with haploid
    ["chr1", "300", ".", "G", "T", ".", ".", ".", "GT", "0/1", "1|1", "0/0", "1"],  # no call above 2
    ["chr1", "400", ".", "T", "A", ".", ".", ".", "GT", "0/0/0/0", "./.", "1/1/1/1", "0/0/1"],  # all tetraploid hom
    ["chr1", "500", ".", "C", ".", ".", ".", ".", "GT", "0/0/1", "0", "./.", "1/1/1"],  # ALT . with allele 1
]


def _expected_gt(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(sites, samples, ploidy) int8 alleles and phase flags from bcftools' GT text, padded with
    fill to the largest ploidy (at least 2); a haploid call counts as phased."""
    calls = [[g.replace("|", "/").split("/") for g in line.split("\t")[4:]] for line in text.splitlines()]
    width = max(2, *(len(c) for row in calls for c in row))
    gt = np.full((len(calls), len(calls[0]), width), oracle.FILL, dtype=np.int8)
    for v, row in enumerate(calls):
        for j, alleles in enumerate(row):
            gt[v, j, : len(alleles)] = [oracle.MISSING_ALLELE if a == "." else int(a) for a in alleles]
    phased = np.array(
        [
            [("|" in g) or len(g.replace("|", "/").split("/")) == 1 for g in line.split("\t")[4:]]
            for line in text.splitlines()
        ]
    )
    return gt, phased


def _carriers(text: str, samples: list[str]) -> set[tuple[str, str]]:
    """(variant key, sample) of every call whose GT text names an ALT allele."""
    out = set()
    for line in text.splitlines():
        contig, pos, ref, alts, *gts = line.split("\t")
        for k, alt in enumerate([] if alts == "." else alts.split(","), start=1):
            out |= {
                (f"{contig}-{pos}-{ref}-{alt}", s)
                for s, g in zip(samples, gts, strict=True)
                if str(k) in g.replace("|", "/").split("/")
            }
    return out


def check_outputs(store: genoquery.Store, expected: str, work: Path) -> list[dict]:
    """vcztools' reading of the batch, VCF and BCF export and each ALT allele's AC/AN against
    ``expected`` (``bcftools query -f QUERY`` of the source); the store's variant rows."""
    assert _vcztools_query(store.batches[0].path / "genotypes.vcz") == expected
    for suffix in (".vcf", ".bcf"):
        out = store.export_vcf(work / f"export{suffix}")
        assert bcftools.query("-f", QUERY, str(out)) == expected
        out.unlink()
    rows = store.variants().to_pylist()
    assert [(r["contig"], r["pos"], r["alt"], r["ac"], r["an"]) for r in rows] == _ac_an(expected)
    return rows


def check_store(store: genoquery.Store, source: Path, samples: list[str], work: Path) -> None:
    """Everything the module docstring lists, for the store of ``source`` alone."""
    expected = bcftools.query("-f", QUERY, str(source))
    gt, phased = _expected_gt(expected)
    got = store.genotypes()
    assert got.gt.shape == gt.shape
    assert np.array_equal(got.gt, gt)
    assert np.array_equal(got.phased, phased)
    rows = check_outputs(store, expected, work)
    picked = list(range(0, len(samples), 2))
    cohort = store.frequencies(cohort=[samples[j] for j in picked]).to_pylist()
    assert [(r["contig"], r["pos"], r["alt"], r["ac"], r["an"]) for r in cohort] == _ac_an(expected, picked)
    found = {
        (r["variant_key"], r["sample_id"])
        for key in {r["variant_key"] for r in rows}
        for r in store.carriers(key).to_pylist()
    }
    assert found == _carriers(expected, samples)
    viewed = {(r["variant_key"], s) for s in samples for r in store.participant(s).to_pylist()}
    assert viewed == _carriers(expected, samples)  # each participant's own view lists the same calls
    report = verify(store.path, [source])
    assert report.ok, report.problems


@pytest.mark.parametrize("suffix", [".vcf", ".bcf"])
def test_polyploid_calls_are_stored_as_bcftools_reads_them(tmp_path, suffix) -> None:
    vcf = tmp_path / "polyploid.vcf"
    vcf.write_text(checks.vcf_text(SAMPLES, POLYPLOID))
    source = vcf if suffix == ".vcf" else checks.to_bcf(vcf, tmp_path / "polyploid.bcf")
    with genoquery.ingest(tmp_path / "s.gq", [source], progress=False) as store:
        check_store(store, source, SAMPLES, tmp_path)
        assert store.genotypes().gt.shape[2] == 4  # the batch's largest ploidy
        assert store.batches[0].wide_calls  # as the batch's file manifest says


@pytest.mark.parametrize("suffix", [".vcf", ".bcf"])
def test_withdrawal_and_compaction_keep_polyploid_calls_exact(tmp_path, suffix) -> None:
    vcf = tmp_path / "polyploid.vcf"
    vcf.write_text(checks.vcf_text(SAMPLES, POLYPLOID))
    source = vcf if suffix == ".vcf" else checks.to_bcf(vcf, tmp_path / "polyploid.bcf")
    genoquery.ingest(tmp_path / "s.gq", [source], progress=False).close()
    withdraw(tmp_path / "s.gq", ["B"], reason="test")
    kept = [j for j, s in enumerate(SAMPLES) if s != "B"]
    expected = bcftools.query("-s", "^B", "-f", QUERY, str(source))
    for step in ("withdrawn", "compacted"):
        if step == "compacted":
            compact(tmp_path / "s.gq")
        with genoquery.open(tmp_path / "s.gq") as store:
            rows = store.variants().to_pylist()
            full = bcftools.query("-f", QUERY, str(source))
            assert [(r["contig"], r["pos"], r["alt"], r["ac"], r["an"]) for r in rows] == _ac_an(full, kept)
            out = store.export_vcf(tmp_path / "export.vcf")
            assert bcftools.query("-f", QUERY, str(out)) == expected
            out.unlink()
            assert verify(store.path).ok


@st.composite
def polyploid_vcfs(draw) -> list[list[str]]:
    """Records of 1-40 samples whose calls are of ploidy 1-4 (a record's ploidies drawn from a
    few), alleles missing or up to the record's ALT count, one separator per call; in a rare
    record most calls are ``0/0`` (a sparse site: its other calls are listed, or inline in the index)."""
    n_samples = draw(st.integers(1, 40))
    records = []
    for k in range(draw(st.integers(1, 6))):
        n_alts, rare = draw(st.integers(0, 3)), draw(st.booleans())
        ploidies = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        allele = st.sampled_from([".", *map(str, range(n_alts + 1)), "0", "0", "0"])
        calls = []
        for _ in range(n_samples):
            if rare and draw(st.integers(0, 9)):
                calls.append("0/0")
                continue
            ploidy = draw(st.sampled_from(ploidies))
            alleles = draw(st.lists(allele, min_size=ploidy, max_size=ploidy))
            calls.append(draw(st.sampled_from("/|")).join(alleles))
        alts = ",".join("ACGT"[i] for i in range(1, n_alts + 1)) or "."
        records.append(["chr1", str(100 + 10 * k), ".", "A", alts, ".", ".", ".", "GT", *calls])
    return records


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(records=polyploid_vcfs())
def test_random_polyploid_records_equal_bcftools(tmp_path_factory, records) -> None:
    work = tmp_path_factory.mktemp("random_polyploid")
    samples = [f"S{j}" for j in range(len(records[0]) - 9)]
    vcf = work / "random.vcf"
    vcf.write_text(checks.vcf_text(samples, records))
    with genoquery.ingest(work / "s.gq", [vcf], progress=False) as store:
        check_store(store, vcf, samples, work)


def test_batches_of_different_ploidy_equal_bcftools_merge(tmp_path) -> None:
    """A diploid batch beside one with tetraploid calls, and a site only the diploid batch has:
    genotypes (padded with fill to 4 slots), export and AC/AN equal ``bcftools merge -m none``."""
    diploid = [
        ["chr1", "100", ".", "A", "C", ".", ".", ".", "GT", "0/1", "1|1"],
        ["chr1", "150", ".", "G", "T", ".", ".", ".", "GT", "0/1", "0"],
        ["chr1", "200", ".", "A", "C,G", ".", ".", ".", "GT", "./.", "0/2"],
    ]
    sources = []
    for name, samples, records in (("d", ["D1", "D2"], diploid), ("p", SAMPLES, [POLYPLOID[0], POLYPLOID[1]])):
        vcf = tmp_path / f"{name}.vcf"
        vcf.write_text(checks.vcf_text(samples, records))
        sources.append(checks.bgzip(vcf, tmp_path / f"{name}.vcf.gz", index=True))
    merged = tmp_path / "merged.vcf"
    bcftools.merge("-m", "none", "-o", str(merged), *map(str, sources), catch_stdout=False)
    expected = bcftools.query("-f", QUERY, str(merged))
    with genoquery.ingest(tmp_path / "s.gq", sources, progress=False) as store:
        gt, phased = _expected_gt(expected)
        got = store.genotypes()
        assert np.array_equal(got.gt, gt)
        assert np.array_equal(got.phased, phased)
        out = store.export_vcf(tmp_path / "export.vcf")
        assert bcftools.query("-f", QUERY, str(out)) == expected
        rows = store.variants().to_pylist()
        assert [(r["contig"], r["pos"], r["alt"], r["ac"], r["an"]) for r in rows] == _ac_an(expected)
        assert verify(store.path, sources).ok


def test_polyploid_calls_export_with_format_fields(tmp_path) -> None:
    """A kept FORMAT field beside calls of ploidy above 2 reads back as bcftools reads the source."""
    records = [
        ["chr1", "10", ".", "A", "C", ".", ".", ".", "GT:DP", "0/1/1:5", "0|1:.", "1:7"],
        ["chr1", "20", ".", "A", "C", ".", ".", ".", "GT:DP", "0/0:3", "0/0/0/1:4", ".:."],
    ]
    vcf = tmp_path / "dp.vcf"
    vcf.write_text(checks.vcf_text(["A", "B", "C"], records, formats=("GT", "DP")))
    with genoquery.ingest(tmp_path / "s.gq", [vcf], progress=False) as store:
        out = store.export_vcf(tmp_path / "export.vcf")
    fields = r"%CHROM\t%POS\t%REF\t%ALT[\t%GT:%DP]\n"
    assert bcftools.query("-f", fields, str(out)) == bcftools.query("-f", fields, str(vcf))


def test_polyploid_calls_count_per_group(tmp_path) -> None:
    """Per-ancestry statistics at ingest and for a cohort count calls of ploidy above 2 in their group."""
    vcf = tmp_path / "polyploid.vcf"
    vcf.write_text(checks.vcf_text(SAMPLES, POLYPLOID))
    persons = tmp_path / "persons.tsv"
    groups = {"A": "EUR", "B": "AFR", "C": "EUR", "D": "AFR"}
    persons.write_text("sample_id\tancestry\n" + "".join(f"{s}\t{g}\n" for s, g in groups.items()))
    expected = bcftools.query("-f", QUERY, str(vcf))
    with genoquery.ingest(tmp_path / "s.gq", [vcf], persons=persons, progress=False) as store:
        for cohort in (None, ["A", "B", "D"]):
            rows = store.variants(by="ancestry") if cohort is None else store.frequencies(cohort=cohort, by="ancestry")
            for group in ("EUR", "AFR"):
                columns = [j for j, s in enumerate(SAMPLES) if groups[s] == group and (cohort is None or s in cohort)]
                got = [
                    (r["contig"], r["pos"], r["alt"], r["ac"], r["an"])
                    for r in rows.to_pylist()
                    if r["ancestry"] == group
                ]
                assert got == _ac_an(expected, columns)
        assert verify(store.path, [vcf]).ok
