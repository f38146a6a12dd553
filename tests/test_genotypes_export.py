"""Store.genotypes and VCF/BCF export against bcftools (pysam.bcftools) on the SOURCE files.

Every expected value comes from ``bcftools query``/``view`` over the ingested VCFs (the
120-sample fixture cohort and tests/data's hand-written files), never from genoquery's own
output: genotypes as ``[%GT\\t]`` text read by :func:`oracle.parse_gt`, exported records as
``bcftools query`` of the export against the same query over ``bcftools view -r -s`` of the
source, AC/AN counted in plain Python from the GT text bcftools prints.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools as bcftools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import checks
import genoquery
import oracle
from genoquery.errors import QueryError, RegionError
from genoquery.query import vcf_export

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
COHORT = [FIXTURES / "cohort.chr20.vcf.gz", FIXTURES / "cohort.chrX.vcf.gz"]
DATA = Path(__file__).parent / "data"
SMALL = ["multiallelic.vcf", "chrx_mixed.vcf", "haploid_missing.vcf", "sites_only.vcf"]
FIXED = "%CHROM\t%POS\t%ID\t%REF\t%ALT\t%QUAL\t%FILTER"
RECORD = FIXED + "[\t%GT]\n"
SPAN = {"chr20": (1, 50_000), "chrX": (2_781_480, 2_831_479)}  # data/fixtures/README.md
N_SAMPLES = 120
PICK = (97, 3, 64, 1, 118, 40, 59)  # store indexes of a sample subset, not in store order
SETTINGS = dict(deadline=None, database=None, derandomize=bool(os.environ.get("CI")))


# --------------------------------------------------------------------------- bcftools side


def _selection(region: str | None, samples: list[str] | None) -> list[str]:
    """bcftools options selecting a region by POS (as genoquery does) and samples in that order."""
    args = ["-r", region, "--regions-overlap", "pos"] if region else []
    return args + (["-s", ",".join(samples)] if samples else [])


def expected_calls(
    sources: list[Path], region: str | None, samples: list[str] | None, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """call_genotype (int8) and phase flags from ``bcftools query -r -s -f '[%GT\\t]\\n'``."""
    text = "".join(bcftools.query(*_selection(region, samples), "-f", "[%GT\t]\n", str(s)) for s in sources)
    calls = [[oracle.parse_gt(g) for g in line.split("\t")[:-1]] for line in text.split("\n")[:-1]]
    gt = np.array([[c[0] for c in row] for row in calls], dtype=np.int8).reshape(len(calls), n_samples, 2)
    phased = np.array([[c[1] for c in row] for row in calls], dtype=bool).reshape(len(calls), n_samples)
    return gt, phased


def expected_records(sources: list[Path], region: str | None, samples: list[str] | None, work: Path) -> str:
    """``bcftools query`` of the records of ``bcftools view -r REGION -s SAMPLES`` of the sources."""
    out = []
    for i, src in enumerate(sources):
        view = work / f"expected{i}.vcf"
        bcftools.view(
            *_selection(region, samples), "--no-update", "-Ov", "-o", str(view), str(src), catch_stdout=False
        )  # no-update: INFO/AC of tests/data is wrong on purpose
        out.append(bcftools.query("-f", RECORD, str(view)))
    return "".join(out)


def expected_ac_an(records: str) -> list[tuple[str, str]]:
    """(AC, AN) as bcftools prints INFO/AC and INFO/AN, counted from the GT text of each record."""
    out = []
    for line in records.split("\n"):
        if not line:
            continue
        cols = line.split("\t")
        called = [a for gt in cols[7:] for a in re.split(r"[/|]", gt) if a != "."]
        n_alt = 0 if cols[4] == "." else len(cols[4].split(","))
        ac = ",".join(str(called.count(str(k))) for k in range(1, n_alt + 1)) or "."
        out.append((ac, str(len(called))))
    return out


# --------------------------------------------------------------------------- stores


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def cohort(work):
    with genoquery.ingest(work / "cohort.gq", COHORT, progress=False) as store:
        yield store


@pytest.fixture(scope="module")
def ids(cohort) -> list[str]:
    return cohort.samples()["sample_id"].to_pylist()


@pytest.fixture(scope="module")
def small(work):
    """name -> (store, indexed bgzipped source) for each hand-written VCF."""
    out = {}
    for name in SMALL:
        src = checks.bgzip(DATA / name, work / f"{name}.gz", index=True)
        out[name] = (genoquery.ingest(work / f"{name}.gq", [src], progress=False), src)
    yield out
    for store, _ in out.values():
        store.close()


def _samples(ids: list[str], pick) -> list[str] | None:
    return None if pick is None else [ids[i] for i in pick]


# --------------------------------------------------------------------------- genotypes


@pytest.mark.parametrize(
    "region",
    [
        None,
        "chr20",
        "chrX",
        "chr20:1000-9000",
        "chr20:1,000-9,000",
        "chrX:2790000-2800000",
        "chr20:651",
        "chr20:60000-70000",
        "chrX:1-2781479",
    ],
)
@pytest.mark.parametrize("pick", [None, PICK, (5,)], ids=["all", "subset", "one"])
def test_genotypes_equal_bcftools(cohort, ids, region, pick):
    samples = _samples(ids, pick)
    got = cohort.genotypes(region, samples)
    plain = None if region is None else region.replace(",", "")
    gt, phased = expected_calls(COHORT, plain, samples, len(samples or ids))
    assert got.gt.dtype == np.int8
    assert got.phased.dtype == bool
    assert got.gt.shape == gt.shape
    assert (got.gt == gt).all()
    assert (got.phased == phased).all()
    assert got.sample_ids == (samples or ids)
    fixed = "".join(
        bcftools.query(*_selection(plain, None), "-f", "%CHROM\t%POS\t%REF\t%ALT\n", str(s)) for s in COHORT
    )
    rows = zip(
        got.sites["contig"].to_pylist(),
        got.sites["pos"].to_pylist(),
        got.sites["ref"].to_pylist(),
        got.sites["alt"].to_pylist(),
        strict=True,
    )
    assert "".join(f"{c}\t{p}\t{r}\t{','.join(a) or '.'}\n" for c, p, r, a in rows) == fixed


def test_empty_region_has_no_sites_and_all_samples(cohort, ids):
    got = cohort.genotypes("chr20:60000-70000")
    assert got.sites.num_rows == 0
    assert got.gt.shape == (0, len(ids), 2)
    assert got.phased.shape == (0, len(ids))


@pytest.mark.parametrize(
    ("name", "region"),
    [(name, None) for name in SMALL]
    + [
        ("multiallelic.vcf", "chr1:150"),
        ("multiallelic.vcf", "chr2"),
        ("chrx_mixed.vcf", "chrX:3000000-4000000"),
        ("haploid_missing.vcf", "chr1:3-5"),
        ("sites_only.vcf", "1:9"),
    ],
)
def test_small_files_genotypes_equal_bcftools(small, name, region):
    store, src = small[name]
    all_ids = store.samples()["sample_id"].to_pylist()
    samples = all_ids[::-1][:3] or None
    for chosen in (None, samples):
        got = store.genotypes(region, chosen)
        gt, phased = expected_calls([src], region, chosen, len(chosen or all_ids))
        assert (got.gt.shape, got.phased.shape) == (gt.shape, phased.shape)
        assert (got.gt == gt).all()
        assert (got.phased == phased).all()


@st.composite
def requests(draw) -> tuple[str, tuple[int, ...] | None]:
    """A region within (or just outside) the fixture's positions and sample indexes in any order."""
    contig = draw(st.sampled_from(sorted(SPAN)))
    lo, hi = SPAN[contig]
    start = draw(st.integers(max(1, lo - 200), hi + 200))
    end = start + draw(st.integers(0, 20_000))
    region = draw(st.sampled_from([f"{contig}:{start}-{end}", f"{contig}:{start}"]))
    pick = draw(st.none() | st.lists(st.integers(0, N_SAMPLES - 1), min_size=1, max_size=15, unique=True))
    return region, pick


@settings(max_examples=25, **SETTINGS)
@given(request=requests())
def test_random_regions_and_samples_equal_bcftools(cohort, ids, request):
    region, pick = request
    samples = _samples(ids, pick)
    got = cohort.genotypes(region, samples)
    gt, phased = expected_calls(COHORT, region, samples, len(samples or ids))
    assert got.gt.shape == gt.shape
    assert (got.gt == gt).all()
    assert (got.phased == phased).all()
    assert got.sample_ids == (samples or ids)


def test_to_xarray(cohort, ids):
    samples = _samples(ids, PICK)
    got = cohort.genotypes("chrX:2790000-2810000", samples)
    ds = got.to_xarray()
    n = got.sites.num_rows
    assert n > 0
    assert ds["call_genotype"].dims == ("variants", "samples", "ploidy")
    assert ds["call_genotype"].shape == (n, len(samples), 2)
    assert (ds["call_genotype"].values == got.gt).all()
    assert ds["call_genotype_phased"].dims == ("variants", "samples")
    assert (ds["call_genotype_phased"].values == got.phased).all()
    assert ds["sample_id"].values.tolist() == samples
    assert ds["variant_position"].values.tolist() == got.sites["pos"].to_pylist()
    assert set(ds["variant_contig"].values.tolist()) == {"chrX"}
    alleles = ds["variant_allele"].values.tolist()
    assert [[a for a in row if a] for row in alleles] == [
        [r, *a] for r, a in zip(got.sites["ref"].to_pylist(), got.sites["alt"].to_pylist(), strict=True)
    ]
    assert ds["variant_id"].values.tolist() == got.sites["id"].fill_null(".").to_pylist()


# --------------------------------------------------------------------------- export


def check_export(out: Path, sources: list[Path], region: str | None, samples: list[str] | None, work: Path) -> None:
    """The export's records, AC/AN and header against bcftools on the sources."""
    bcftools.view("-h", str(out))  # readable by bcftools
    records = bcftools.query("-f", RECORD, str(out))
    expected = expected_records(sources, region, samples, work)
    assert records == expected
    info = bcftools.query("-f", "%INFO/AC\t%INFO/AN\n", str(out))
    assert [tuple(line.split("\t")) for line in info.split("\n") if line] == expected_ac_an(expected)
    header = bcftools.view("-h", str(out))
    used = {f for line in records.split("\n") if line for f in line.split("\t")[6].split(";")} - {"."}
    declared = re.findall(r"^##FILTER=<ID=([^,>]+)", header, flags=re.M)
    assert declared[0] == "PASS"
    assert used <= set(declared)
    lengths = dict(oracle.header_contigs(sources[0]))
    assert all(lengths[name] == length for name, length in oracle.header_contigs(out))
    assert f"##source=genoquery {genoquery.__version__}" in header
    assert oracle.sample_names(out) == (samples or oracle.sample_names(sources[0]))


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz", ".bcf"])
@pytest.mark.parametrize(
    ("region", "pick"), [(None, None), ("chr20:1000-20000", PICK), ("chrX", (2, 0, 1)), ("chr20:60000-70000", PICK)]
)
def test_export_equals_bcftools(cohort, ids, work, tmp_path, suffix, region, pick):
    samples = _samples(ids, pick)
    out = cohort.export_vcf(tmp_path / f"out{suffix}", region, samples)
    assert out == tmp_path / f"out{suffix}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    check_export(out, COHORT, region, samples, work)
    with gzip.open(out) if suffix != ".vcf" else open(out, "rb") as handle:
        assert handle.read(3) == (b"BCF" if suffix == ".bcf" else b"##f")


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz", ".bcf"])
@pytest.mark.parametrize("name", SMALL)
def test_small_files_export_equals_bcftools(small, work, tmp_path, name, suffix):
    store, src = small[name]
    samples = store.samples()["sample_id"].to_pylist()[::-1][:4] or None
    for chosen in (None, samples):
        out = store.export_vcf(tmp_path / f"out{suffix}", None, chosen)
        check_export(out, [src], None, chosen, work)


def test_bgzipped_export_is_indexable_and_region_queries_match(cohort, ids, work, tmp_path):
    samples = _samples(ids, PICK)
    out = cohort.export_vcf(tmp_path / "out.vcf.gz", None, samples)
    pysam.tabix_index(str(out), preset="vcf", force=True)
    bcftools.index("-f", str(out), catch_stdout=False)  # CSI too
    for region in ("chr20:5000-15000", "chrX:2800000-2810000", "chr20:651"):
        got = bcftools.query(*_selection(region, None), "-f", RECORD, str(out))
        assert got == expected_records(COHORT, region, samples, work)


def test_export_replaces_a_file_only_when_complete(cohort, tmp_path, monkeypatch):

    target = tmp_path / "out.vcf.gz"
    target.write_text("old")

    def failing(block):
        yield b"partial"
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(vcf_export, "_records", failing)
    with pytest.raises(RuntimeError):
        cohort.export_vcf(target, "chr20")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.vcf.gz"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("region", "samples", "error", "words"),
    [
        (None, ["S000001", "NOPE1", "NOPE2"], QueryError, ["NOPE1", "NOPE2", "not in this store"]),
        (None, ["S000002", "S000001", "S000002"], QueryError, ["S000002", "more than once"]),
        (None, [], QueryError, ["no sample IDs"]),
        (None, "S000001", QueryError, ["list of sample IDs"]),
        ("chr20:5-1", None, RegionError, ["bad region", "chr20:5-1"]),
        ("chr20:x-y", None, RegionError, ["bad region"]),
        ("chr9:1-100", None, RegionError, ["'chr9'", "not in the store"]),
    ],
)
def test_bad_requests_raise_and_write_nothing(cohort, tmp_path, region, samples, error, words):
    with pytest.raises(error) as raised:
        cohort.genotypes(region, samples)
    assert all(w in str(raised.value) for w in words), raised.value
    with pytest.raises(error):
        cohort.export_vcf(tmp_path / "out.vcf.gz", region, samples)
    assert list(tmp_path.iterdir()) == []


def test_memory_limit(cohort, ids):
    with pytest.raises(QueryError, match="narrow the region or the samples"):
        cohort.genotypes("chr20", max_bytes=1000)
    assert cohort.genotypes("chr20:651", max_bytes=3 * len(ids)).gt.shape == (1, len(ids), 2)


def test_export_path_errors(cohort, tmp_path):
    with pytest.raises(QueryError, match=r"\.vcf, \.vcf\.gz or \.bcf"):
        cohort.export_vcf(tmp_path / "out.txt")
    with pytest.raises(QueryError, match="cannot write"):
        cohort.export_vcf(tmp_path / "missing" / "out.vcf")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genoquery", "export", *args], capture_output=True, text=True)


def test_cli_export(cohort, ids, work, tmp_path):
    samples = _samples(ids, PICK)
    listing = tmp_path / "ids.txt"
    listing.write_text("\n".join(samples) + "\n")
    for spec, name in ((f"@{listing}", "a.vcf.gz"), (",".join(samples), "b.bcf")):
        run = _cli(str(cohort.path), str(tmp_path / name), "--region", "chr20:1000-20000", "--samples", spec)
        assert run.returncode == 0, run.stderr
        check_export(tmp_path / name, COHORT, "chr20:1000-20000", samples, work)


@pytest.mark.parametrize(
    "args",
    [
        ["--samples", "S000001,NOPE"],
        ["--samples", "S000001,S000001"],
        ["--region", "chr20:9-1"],
        ["--region", "chr9"],
        ["--samples", "@/nonexistent/ids.txt"],
    ],
)
def test_cli_errors_exit_2_without_output(cohort, tmp_path, args):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = _cli(str(cohort.path), str(out_dir / "x.vcf.gz"), *args)
    assert run.returncode == 2
    assert run.stderr.startswith("genoquery: error: ")
    assert run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr
    assert list(out_dir.iterdir()) == []
