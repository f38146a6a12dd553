"""Store format 3: every batch's VCF Zarr group read by VCF Zarr's own tools, and upgrades from format 2.

The oracle is bcftools (through pysam) on the source files: ``vcztools query`` and ``vcztools view``
on a batch's group, for the whole file and for a region, must print what ``bcftools query``
prints for the source, line for line. ``tests/data/format2_store.tar.gz`` is a store written by
genoquery at commit d698072 (format 2) from ``data/fixtures/center{1,2,3}.vcf.gz`` with
``--persons data/fixtures/persons.tsv``, then ``withdraw S000002`` and ``compact``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pysam.bcftools as bcftools
import pytest
import xarray as xr
import zarr

import genoquery
import oracle
from conftest import skip_without_tool
from genoquery.errors import StoreError
from genoquery.ingest.compact import compact
from genoquery.ingest.upgrade import upgrade
from genoquery.ingest.withdraw import withdraw
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.storage.format import FORMAT_VERSION, VCF_GROUP
from genoquery.verify import verify

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "data" / "fixtures"
DATA = Path(__file__).parent / "data"
QUERY = r"%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n"  # escapes, as typed on a command line
# Each store's batches, with their sources in the store's contig order and a region inside them.
COHORTS = {
    "centers": ([[FIXTURES / f"center{i}.vcf.gz"] for i in (1, 2, 3)], "chr20:20000-40000"),
    "diploid and haploid chrX": (
        [[FIXTURES / "cohort.chr20.vcf.gz", FIXTURES / "cohort.chrX.vcf.gz"]],
        "chrX:1-2820000",
    ),
    "missing and partial calls": ([[DATA / "haploid_missing.vcf"]], None),
    "chrX mixed ploidy": ([[DATA / "chrx_mixed.vcf"]], None),
    "multi-allelic": ([[DATA / "multiallelic.vcf"]], None),
}
# VCF Zarr 0.4's names for what a genoquery batch holds (spec section "Zarr VCF fields").
SPEC_NAMES = {
    "call_genotype",
    "call_genotype_phased",
    "variant_contig",
    "variant_position",
    "variant_length",
    "variant_allele",
    "variant_id",
    "variant_id_mask",
    "variant_quality",
    "variant_filter",
    "sample_id",
    "contig_id",
    "contig_length",
    "filter_id",
    "filter_description",
    "region_index",
}


def _vcztools(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "vcztools", *args], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _bcftools_query(sources: list[Path], region: str | None) -> str:
    """``bcftools query`` of each source (``-r`` needs an index: regions are filtered with ``-t``)."""
    where = ["-t", region] if region else []
    return "".join(bcftools.query("-f", QUERY, *where, str(s)) for s in sources)


@pytest.fixture(scope="module", params=list(COHORTS))
def cohort(request, tmp_path_factory) -> tuple[genoquery.Store, list[list[Path]], str | None]:
    batches, region = COHORTS[request.param]
    path = tmp_path_factory.mktemp("format") / "s.gq"
    store = genoquery.ingest(path, [s for b in batches for s in b])
    yield store, batches, region
    store.close()


def test_vcztools_query_of_every_batch_equals_bcftools_query_of_its_sources(cohort) -> None:
    store, batches, region = cohort
    assert len(store.batches) == len(batches)
    for batch, sources in zip(store.batches, batches, strict=True):
        group = str(batch.path / VCF_GROUP)
        assert _vcztools("query", "-f", QUERY, group) == _bcftools_query(sources, None)
        if region:
            expected = _bcftools_query(sources, region)
            assert expected.count("\n") > 1
            assert _vcztools("query", "-r", region, "-f", QUERY, group) == expected


def _without_all_missing_gt(lines: str, first: int = 4) -> str:
    """vcztools view leaves out a FORMAT field whose every value is missing (it does so for
    bio2zarr's own store of the same file), so bcftools then prints ``.`` for each call."""
    out = []
    for line in lines.splitlines():
        fields = line.split("\t")
        if all(set(gt) <= set("./|") for gt in fields[first:]):
            fields[first:] = ["."] * len(fields[first:])
        out.append("\t".join(fields) + "\n")
    return "".join(out)


def test_vcztools_view_of_every_batch_is_read_back_by_bcftools_as_its_sources(cohort, tmp_path) -> None:
    store, batches, region = cohort
    for batch, sources in zip(store.batches, batches, strict=True):
        for where in [[], ["-r", region]] if region else [[]]:
            vcf = tmp_path / f"{batch.name}.vcf"
            vcf.write_text(_vcztools("view", *where, str(batch.path / VCF_GROUP)))
            expected = _without_all_missing_gt(_bcftools_query(sources, where[1] if where else None))
            assert bcftools.query("-f", QUERY, str(vcf)) == expected


def test_the_vcf_zarr_group_holds_only_spec_names_with_one_variants_chunk_size(cohort) -> None:
    store, batches, _ = cohort
    for batch, sources in zip(store.batches, batches, strict=True):
        dataset = xr.open_zarr(batch.path / VCF_GROUP)
        headers = "".join(bcftools.view("-h", str(s)) for s in sources)
        info = {f"variant_{key}" for key in re.findall(r"^##INFO=<ID=([^,]+),", headers, re.M)}
        declared = re.findall(r"^##FORMAT=<ID=([^,]+),Number=([^,]+),", headers, re.M)
        calls = {f"call_{key}" for key, number in declared if key != "GT" and number != "G"}
        assert set(dataset.data_vars) == SPEC_NAMES | info | calls  # INFO as variant_<ID>, FORMAT as call_<ID>
        assert {"call_genotype", "variant_position", "region_index", "variant_length"} <= set(dataset.data_vars)
        assert dataset.attrs["vcf_zarr_version"] == "0.4"
        group = zarr.open_group(batch.path / VCF_GROUP, mode="r")
        assert group.metadata.zarr_format == 2
        variant_chunks = {
            name: array.chunks[0] for name, array in group.arrays() if array.attrs["_ARRAY_DIMENSIONS"][0] == "variants"
        }
        assert len(set(variant_chunks.values())) == 1, variant_chunks
        assert group["call_genotype"].dtype == np.int8


def test_filter_descriptions_and_header_lines_come_from_the_source(tmp_path) -> None:
    store = genoquery.ingest(tmp_path / "s.gq", [FIXTURES / "center1.vcf.gz"])
    group = zarr.open_group(store.batches[0].path / VCF_GROUP, mode="r")
    header = bcftools.view("-h", str(FIXTURES / "center1.vcf.gz"))
    for fid, description in zip(group["filter_id"][...], group["filter_description"][...], strict=True):
        if fid != "PASS":
            assert f'##FILTER=<ID={fid},Description="{description}">' in header
    for key, value in group.attrs["vcf_meta_information"]:
        assert f"##{key}={value}\n" in header
    store.close()


@pytest.fixture
def format2_store(tmp_path) -> Path:
    with tarfile.open(DATA / "format2_store.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "format2.gq"


def _answers(store: genoquery.Store) -> tuple:
    return (
        store.variants(),
        store.variants(by="ancestry"),
        store.frequencies(cohort="sex_at_birth = 'Female'"),
        store.genotypes(),
        store.carriers(region="chr20"),
    )


def test_a_format_2_store_is_refused_with_the_command_that_upgrades_it(format2_store) -> None:
    with pytest.raises(StoreError, match=rf"store format 2, .*`genoquery upgrade {format2_store}`"):
        genoquery.open(format2_store)
    with pytest.raises(StoreError, match=r"genoquery upgrade"):
        compact(format2_store)
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "variants", str(format2_store)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert f"`genoquery upgrade {format2_store}`" in run.stderr
    assert "Traceback" not in run.stderr


def test_upgrade_gives_the_answers_of_a_fresh_ingest_and_verifies(format2_store, tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "upgrade", str(format2_store)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "rewrote 3 batch(es): center1, center2, center3" in run.stderr
    assert sorted(p.name for p in (format2_store / "batches").iterdir()) == ["center1.v1", "center2", "center3"]
    fresh = tmp_path / "fresh.gq"
    genoquery.ingest(
        fresh, [FIXTURES / f"center{i}.vcf.gz" for i in (1, 2, 3)], persons=FIXTURES / "persons.tsv"
    ).close()
    withdraw(fresh, ["S000002"], "consent withdrawn")
    compact(fresh)
    with genoquery.open(format2_store) as upgraded, genoquery.open(fresh) as expected:
        assert upgraded.info["format_version"] == FORMAT_VERSION
        for got, want in zip(_answers(upgraded), _answers(expected), strict=True):
            if hasattr(got, "gt"):
                assert got.sites.equals(want.sites)
                assert np.array_equal(got.gt, want.gt)
                assert np.array_equal(got.phased, want.phased)
            else:
                assert got.equals(want)
        group = str(upgraded.batches[0].path / VCF_GROUP)
    report = verify(format2_store)
    assert report.ok, report.problems
    source = bcftools.query("-f", QUERY, str(FIXTURES / "center1.vcf.gz")).splitlines()
    column = 4 + bcftools.view("-h", str(FIXTURES / "center1.vcf.gz")).splitlines()[-1].split("\t")[9:].index("S000002")
    # vcztools leaves out samples whose ID is empty: the erased sample's column is gone
    erased = ["\t".join(f[:column] + f[column + 1 :]) for f in (line.split("\t") for line in source)]
    assert _vcztools("query", "-f", QUERY, group).splitlines() == erased
    assert upgrade(format2_store) == []


SGKIT_PYTHON = os.environ.get("GENOQUERY_SGKIT_PYTHON", "")
SGKIT_CHECK = r"""
import json, sys
import numpy as np
import sgkit
ds = sgkit.load_dataset(sys.argv[1])
stats = sgkit.variant_stats(ds)
ds["sample_cohort"] = ("samples", np.zeros(ds.sizes["samples"], dtype=int))
diversity = sgkit.diversity(sgkit.window_by_variant(ds, size=500))
print(json.dumps({
    "ac": stats.variant_allele_count.values[:, 1:].tolist(),
    "an": stats.variant_allele_total.values.tolist(),
    "windows": int(diversity.sizes["windows"]),
    "finite": bool(np.isfinite(diversity.stat_diversity.values).all()),
}))
"""


@skip_without_tool("sgkit", present=os.path.isfile(SGKIT_PYTHON), install="./run.sh test makes .venv-sgkit")
def test_sgkit_variant_stats_equal_the_stores_per_batch_counts_and_diversity_runs(tmp_path) -> None:
    """sgkit 0.10 (Zarr 2 only, in its own venv) loads each batch: its AC/AN equal the index's
    per-batch counts (``batch_allele_counts``, ``batch_site_counts`` for everyone), and a
    500-variant windowed diversity runs."""
    sources = [FIXTURES / "cohort.chr20.vcf.gz", FIXTURES / "cohort.chrX.vcf.gz"]
    with genoquery.ingest(tmp_path / "s.gq", sources) as store:
        group = store.batches[0].path / VCF_GROUP
        counts = store.variants()
    run = subprocess.run([SGKIT_PYTHON, "-c", SGKIT_CHECK, str(group)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    rows = counts.to_pylist()  # one batch: site_row is the Zarr row
    assert [got["ac"][r["site_row"]][r["allele"] - 1] for r in rows] == [r["ac"] for r in rows]
    assert [got["an"][r["site_row"]] for r in rows] == [r["an"] for r in rows]
    sites = {
        contig: len({r["site_row"] for r in rows if r["contig"] == contig}) for contig in {r["contig"] for r in rows}
    }
    assert got["windows"] == sum(-(-n // 500) for n in sites.values())
    assert got["finite"]


INFO_FIELDS = ["DP", "AC", "AD", "PAIR", "VAR", "AF", "DB", "GENE", "TAGS", "CH"]
INFO_QUERY = r"%CHROM\t%POS\t%REF\t%ALT" + "".join(rf"\t%INFO/{f}" for f in INFO_FIELDS) + r"[\t%GT]\n"


@pytest.mark.parametrize("kind", ["vcf", "bcf"])
def test_info_fields_of_every_type_and_number_survive_the_round_trip(tmp_path, kind) -> None:
    """Integer, Float, Flag, String and Character INFO fields with Number 1, A, R, 2 and ``.``
    (absent, ``.`` and partly missing values included), read back by ``vcztools view`` and
    bcftools, equal bcftools' reading of the source; then again after a compaction."""
    source = DATA / "info_fields.vcf"
    if kind == "bcf":
        bcftools.view("-Ob", "-o", str(tmp_path / "info_fields.bcf"), str(source), catch_stdout=False)
        source = tmp_path / "info_fields.bcf"
    path = tmp_path / "s.gq"
    genoquery.ingest(path, [source]).close()
    expected = bcftools.query("-f", INFO_QUERY, str(DATA / "info_fields.vcf"))
    for step in ("ingested", "compacted"):
        with genoquery.open(path) as store:
            view = tmp_path / f"{step}.vcf"
            view.write_text(_vcztools("view", str(store.batches[0].path / VCF_GROUP)))
        got = bcftools.query("-f", INFO_QUERY, str(view))
        if step == "compacted":  # S1's calls are erased and its column gone
            kept = ("\t".join(f[:-2] + f[-1:]) for f in (line.split("\t") for line in expected.splitlines(True)))
            expected = _without_all_missing_gt("".join(kept), first=4 + len(INFO_FIELDS))
        assert got == expected, step
        withdraw(path, ["S1"], "test")
        compact(path)


def test_fields_not_kept_are_named_in_one_warning_line(tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "ingest", str(tmp_path / "s.gq"), str(DATA / "format_fields.vcf")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    warning = (
        f"genoquery: warning: {DATA / 'format_fields.vcf'}: not kept: FORMAT/PL (to keep them, name them in --fields)"
    )
    assert warning in run.stderr
    assert "Warning" not in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("DP=10;", "DP=ten;"), r"line 16: INFO/DP value 'ten' is not of Type=Integer"),
        (("AF=0.25;DB", "AF=0.25,0.5;DB"), r"line 16: INFO/AF has 2 values where Number=A allows 1"),
    ],
)
def test_a_malformed_info_value_is_refused_naming_file_and_line(tmp_path, change, message) -> None:
    vcf = tmp_path / "bad.vcf"
    vcf.write_text((DATA / "info_fields.vcf").read_text().replace(*change, 1))
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "ingest", str(tmp_path / "s.gq"), str(vcf)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert re.search(rf"genoquery: error: {re.escape(str(vcf))}, {message}", run.stderr), run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "s.gq").exists()


def test_a_layout_too_large_for_the_memory_budget_halves_its_variant_chunk(tmp_path) -> None:
    """A block of ``variant_chunk`` sites' calls must fit ``block_bytes``: with room for 8 sites of
    the fixture's samples, a 64-site layout is written in 8-site chunks, every ``variants`` array
    alike, and VCF Zarr's reader still prints what bcftools prints for the source."""
    source = FIXTURES / "center1.vcf.gz"
    n_samples = len(oracle.sample_names(source))
    layout = ChunkLayout(variant_chunk=64, block_bytes=8 * n_samples * 3)
    assert layout.fitted(n_samples).variant_chunk == 8
    assert ChunkLayout().fitted(10**6).variant_chunk == 64
    assert ChunkLayout().fitted(10**5).variant_chunk == 256
    store = genoquery.ingest(tmp_path / "s.gq", [source], layout=layout)
    group = zarr.open_group(store.batches[0].path / VCF_GROUP, mode="r")
    chunks = {name: a.chunks[0] for name, a in group.arrays() if a.attrs["_ARRAY_DIMENSIONS"][0] == "variants"}
    assert set(chunks.values()) == {8}, chunks
    assert _vcztools("query", "-f", QUERY, str(store.batches[0].path / VCF_GROUP)) == _bcftools_query([source], None)
    store.close()
