"""Valid VCF records genoquery once refused, stored exactly (issue 17): the oracle is bcftools.

A record whose ALT is ``.`` while a GT names allele 1 (bcftools reads and prints it as it is):
the store's genotypes, its VCF/BCF export, ``vcztools query`` of its batch and ``genoquery
verify --sources`` all agree with ``bcftools query`` of the source, and AC/AN, counted here from
bcftools' GT text, with ``variants`` (no row for a site without an ALT allele).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam.bcftools as bcftools
import pytest

import checks
import genoquery
import oracle
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


def _ac_an(text: str) -> list[tuple[str, int, str, int, int]]:
    """(contig, pos, alt, AC, AN) per ALT allele, counted from bcftools' GT text."""
    out = []
    for line in text.splitlines():
        contig, pos, _ref, alts, *gts = line.split("\t")
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
    assert _vcztools_query(store.batches[0].path / "genotypes.vcz") == expected
    for suffix in (".vcf", ".bcf"):
        out = store.export_vcf(work / f"export{suffix}")
        assert bcftools.query("-f", QUERY, str(out)) == expected
        out.unlink()
    rows = store.variants().to_pylist()
    assert [(r["contig"], r["pos"], r["alt"], r["ac"], r["an"]) for r in rows] == _ac_an(expected)
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
