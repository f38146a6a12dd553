"""Kept INFO and FORMAT fields through the queries: genotypes, export, variants, xarray.

The oracle is bcftools (pysam.bcftools) on the SOURCE files: ``tests/data/format_fields.vcf``
(FORMAT DP, AD, GQ, QS, AB, FT, with missing values, dropped trailing fields and records
lacking fields; INFO DP) and ``tests/data/info_fields.vcf`` (INFO of every Number and Type).
``bcftools query`` of an export equals ``bcftools query`` of the source for every kept field,
whole, by region and for a sample subset (``-s``); per-ALT INFO columns equal ``bcftools norm
-m-`` of the source; a second batch without the fields equals ``bcftools merge`` of the sources;
a withdrawn sample's values appear nowhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pysam.bcftools as bcftools
import pytest

import genoquery
from genoquery.errors import GenoqueryWarning, QueryError
from genoquery.ingest.withdraw import withdraw
from genoquery.query.fields import vcf_text
from test_server_support import serve

DATA = Path(__file__).parent / "data"
FORMAT_SOURCE, INFO_SOURCE = DATA / "format_fields.vcf", DATA / "info_fields.vcf"
FORMATS = ("DP", "AD", "GQ", "QS", "AB", "FT")  # PL (Number=G) is not kept by default
INFOS = ("DP", "AD", "PAIR", "VAR", "AF", "DB", "GENE", "TAGS", "CH")  # AC, AN: recomputed by the export
FORMAT_QUERY = "%CHROM\t%POS\t%REF\t%ALT\t%INFO/DP[\t%SAMPLE=%GT:" + ":".join(f"%{k}" for k in FORMATS) + "]\n"
INFO_QUERY = "%CHROM\t%POS\t%REF\t%ALT\t" + "\t".join(f"%INFO/{k}" for k in INFOS) + "[\t%SAMPLE=%GT:%DP]\n"


def _ingest(path: Path, source: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenoqueryWarning)  # "not kept: FORMAT/PL"
        genoquery.ingest(path, [source]).close()
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("kept-fields")
    return {
        "format": _ingest(work / "format.gq", FORMAT_SOURCE),
        "info": _ingest(work / "info.gq", INFO_SOURCE),
    }


@pytest.mark.parametrize(
    ("store", "source", "query"), [("format", FORMAT_SOURCE, FORMAT_QUERY), ("info", INFO_SOURCE, INFO_QUERY)]
)
@pytest.mark.parametrize("region", [None, "chr1:15-45"])
@pytest.mark.parametrize("samples", [None, ["S2", "S1"]])
@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz", ".bcf"])
def test_export_gives_bcftools_the_sources_values(stores, tmp_path, store, source, query, region, samples, suffix):
    out = tmp_path / f"out{suffix}"
    with genoquery.open(stores[store]) as s:
        s.export_vcf(out, region=region, samples=samples)
    options = (["-r", region] if region else []) + (["-s", ",".join(samples)] if samples else [])
    indexed = tmp_path / "source.vcf.gz"
    bcftools.view("-Oz", "-o", str(indexed), "--write-index", str(source), catch_stdout=False)
    if samples:  # bcftools query -s keeps the header's sample order: put the export's in the same
        reordered = tmp_path / "source.s.vcf.gz"
        bcftools.view("-Oz", "-o", str(reordered), "-s", ",".join(samples), str(indexed), catch_stdout=False)
        bcftools.index(str(reordered), catch_stdout=False)
        indexed, options = reordered, (["-r", region] if region else [])
    expected = bcftools.query(*options, "-f", query, str(indexed))
    assert expected.count("\n") >= (3 if region else 5)
    assert bcftools.query("-f", query, str(out)) == expected
    header = bcftools.view("-h", str(out))
    for line in bcftools.view("-h", str(source)).splitlines():
        if line.startswith(("##INFO", "##FORMAT")) and "ID=AC," not in line and "ID=AN," not in line:
            kept = "Number=G" not in line
            assert (line in header) == kept, line


def _bcftools_values(source: Path, key: str, samples: list[str]) -> list[list[str]]:
    text = bcftools.query("-s", ",".join(samples), "-f", f"[%{key}\t]\n", str(source))
    return [line.split("\t")[:-1] for line in text.splitlines()]


def test_genotypes_fields_and_xarray_equal_bcftools(stores):
    samples = ["S3", "S1"]  # not the store's order
    with genoquery.open(stores["format"]) as s:
        g = s.genotypes(None, samples, fields=[f"FORMAT/{k}" for k in FORMATS] + ["INFO/DP"])
        assert set(g.fields) == {f"call_{k}" for k in FORMATS} | {"variant_DP"}
        by_name = {f.array: f for f in g.kept}
        for key in FORMATS:
            field = by_name[f"call_{key}"]
            got = vcf_text(field, g.fields[field.array]).tolist()
            want = [list(reversed(row)) for row in _bcftools_values(FORMAT_SOURCE, key, ["S1", "S3"])]
            assert got == want, key
        assert g.fields["call_DP"].tolist() == [[4, 3], [-1, 6], [-1, -1], [-1, -1], [7, 12]]
        assert (
            vcf_text(by_name["variant_DP"], g.fields["variant_DP"]).tolist()
            == bcftools.query("-f", "%INFO/DP\n", str(FORMAT_SOURCE)).split()
        )
        ds = g.to_xarray()
        assert ds["call_AD"].dims == ("variants", "samples", "alleles")
        assert ds["call_AB"].dims == ("variants", "samples", "alt_alleles")
        assert ds["call_QS"].dims == ("variants", "samples", "FORMAT_QS_dim")
        assert ds["variant_DP"].dims == ("variants",)
        assert (ds["call_DP"].values == g.fields["call_DP"]).all()
        assert s.genotypes(None, ["S1"], fields=["DP"]).fields["call_DP"][:, 0].tolist() == [3, 6, -1, -1, 12]
        with pytest.raises(QueryError, match=r"keeps no field 'FORMAT/PL'.*FORMAT/DP"):
            s.genotypes(None, fields=["FORMAT/PL"])


def test_server_genotypes_fields_equal_bcftools(stores, tmp_path):
    """``/api/v1/genotypes?fields=`` (controlled tier) gives each site's kept fields as bcftools
    prints them from the source: FORMAT per sample in the order asked, INFO once per site; an
    unknown field is a 400 naming the kept ones."""
    served = tmp_path / "served.gq"
    shutil.copytree(stores["format"], served)
    srv = serve(served, min_cohort=2, token_tiers={"ctl": ("controlled", None)})
    try:
        with srv.client("ctl") as c:
            params = {"region": "chr1", "samples": "S3,S1", "fields": "FORMAT/DP,FORMAT/AD,FORMAT/FT,INFO/DP"}
            answer = c.get("/api/v1/genotypes", params=params).json()
            unknown = c.get("/api/v1/genotypes", params={"region": "chr1", "fields": "FORMAT/PL"})
            plain = c.get("/api/v1/genotypes", params={"region": "chr1"}).json()
    finally:
        srv.stop()
    assert answer["sample_ids"] == ["S3", "S1"]
    for key in ("DP", "AD", "FT"):
        want = [list(reversed(row)) for row in _bcftools_values(FORMAT_SOURCE, key, ["S1", "S3"])]
        assert [item["fields"][f"FORMAT/{key}"] for item in answer["items"]] == want, key
    info = bcftools.query("-f", "%INFO/DP\n", str(FORMAT_SOURCE)).split()
    assert [item["fields"]["INFO/DP"] for item in answer["items"]] == info
    assert unknown.status_code == 400
    assert "FORMAT/DP" in unknown.json()["error"]["message"]
    assert all(item["fields"] == {} for item in plain["items"])


def test_variants_info_columns_equal_bcftools_norm(stores, tmp_path):
    """Per ALT row: Number=A the allele's value as ``bcftools norm -m-`` splits it; other Numbers
    the site's values as ``bcftools query`` prints them (missing: null)."""
    split = tmp_path / "split.vcf"
    bcftools.norm("-m-", "-o", str(split), str(INFO_SOURCE), catch_stdout=False)
    names = ["DP", "AC", "AF", "GENE", "CH", "DB", "AD", "PAIR", "VAR", "TAGS"]
    with genoquery.open(stores["info"]) as s:
        rows = s.variants(info=names).to_pylist()
        assert s.variants("chr1:20", info=["INFO/DP"])["info_DP"].to_pylist() == [7, 7]
        with pytest.raises(QueryError, match="INFO fields only"):
            s.variants(info=["FORMAT/DP"])
    per_allele = bcftools.query("-f", "%INFO/AC\t%INFO/AF\n", str(split)).splitlines()
    per_site = {
        line.split("\t")[0]: line.split("\t")[1:]
        for line in bcftools.query(
            "-f",
            "%POS\t%INFO/DP\t%INFO/GENE\t%INFO/CH\t%INFO/DB\t%INFO/AD\t%INFO/PAIR\t%INFO/VAR\t%INFO/TAGS\n",
            str(INFO_SOURCE),
        ).splitlines()
    }
    assert len(rows) == len(per_allele)

    def shown(value) -> str:
        if value is None:
            return "."
        if isinstance(value, list):
            return ",".join(shown(v) for v in value)
        if isinstance(value, float):
            return str(np.float32(value))
        return str(value)

    for row, allele_line in zip(rows, per_allele, strict=True):
        assert [shown(row["info_AC"]), shown(row["info_AF"])] == allele_line.split("\t"), row
        site = per_site[str(row["pos"])]
        flag = "1" if row["info_DB"] else "."  # bcftools prints an unset Flag as "."
        got = [shown(row[f"info_{k}"]) for k in ("DP", "GENE", "CH")] + [flag]
        got += [shown(row[f"info_{k}"]) for k in ("AD", "PAIR", "VAR", "TAGS")]
        assert got == site, row


def test_cli_variants_info_and_json_types(stores):
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "variants", str(stores["info"]), "--info", "DP,AF", "-i", "PAIR"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    header = lines[0]
    picked = [[r[header.index(c)] for c in ("pos", "info_DP", "info_AF", "info_PAIR")] for r in lines[1:]]
    assert picked[:2] == [["10", "10", "0.25", "1,2"], ["20", "7", "0.25", ""]]
    assert ["40", "", "", ".,4"] in picked


def test_a_batch_without_the_fields_reads_missing_as_bcftools_merge(tmp_path):
    """A second batch whose VCF has no DP/AD/... : its calls' values are missing, as in
    ``bcftools merge`` of the two sources."""
    other = tmp_path / "other.vcf.gz"
    renamed = tmp_path / "names.txt"
    renamed.write_text("S1 T1\nS2 T2\nS3 T3\n")
    stripped = tmp_path / "stripped.vcf.gz"
    bcftools.annotate("-x", "INFO,^FORMAT/GT", "-Oz", "-o", str(stripped), str(FORMAT_SOURCE), catch_stdout=False)
    bcftools.reheader("-s", str(renamed), "-o", str(other), str(stripped), catch_stdout=False)
    first = tmp_path / "first.vcf.gz"
    bcftools.view("-Oz", "-o", str(first), str(FORMAT_SOURCE), catch_stdout=False)
    for path in (first, other):
        bcftools.index(str(path), catch_stdout=False)
    merged = tmp_path / "merged.vcf"
    bcftools.merge("-m", "none", "-o", str(merged), str(first), str(other), catch_stdout=False)
    store = tmp_path / "two.gq"
    with pytest.warns(GenoqueryWarning):
        genoquery.ingest(store, [FORMAT_SOURCE]).close()
    genoquery.ingest(store, [other], batch="other").close()
    out = tmp_path / "out.vcf"
    with genoquery.open(store) as s:
        s.export_vcf(out)
        dp = s.genotypes(None, ["T1", "S2"], fields=["DP"]).fields["call_DP"]
    assert (dp[:, 0] == -1).all()
    assert dp[:, 1].tolist() == [-1, -1, -1, -1, 0]
    assert bcftools.query("-f", FORMAT_QUERY, str(out)) == bcftools.query("-f", FORMAT_QUERY, str(merged))


def test_a_withdrawn_samples_values_are_not_exposed(tmp_path):
    store = _ingest(tmp_path / "w.gq", FORMAT_SOURCE)
    withdraw(store, ["S1"], "test")
    out = tmp_path / "out.vcf"
    with genoquery.open(store) as s:
        g = s.genotypes(None, fields=["DP", "AD", "INFO/DP"])
        assert g.sample_ids == ["S2", "S3"]
        assert g.fields["call_DP"].shape == (5, 2)
        with pytest.raises(QueryError, match="withdrawn"):
            s.genotypes(None, ["S1"], fields=["DP"])
        s.export_vcf(out)
    rest = tmp_path / "rest.vcf"
    bcftools.view("-s", "^S1", "-o", str(rest), str(FORMAT_SOURCE), catch_stdout=False)
    assert "S1" not in bcftools.query("-l", str(out))
    assert bcftools.query("-f", FORMAT_QUERY, str(out)) == bcftools.query("-f", FORMAT_QUERY, str(rest))
