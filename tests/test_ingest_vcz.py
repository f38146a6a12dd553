"""A VCF Zarr store made by bio2zarr (``vcf2zarr convert``) ingested as a batch, without its VCF.

The oracle is bcftools (through pysam) on the VCF the store was converted from: the batch's
genotypes, exported by ``genoquery export``, print what ``bcftools query`` prints of the source,
line for line, and ``checks.assert_store_matches`` holds (sites, IDs, QUAL, FILTERs, every call,
every statistic). The store equals one ingested from the VCF itself (variants, cohort
frequencies, carriers, genotypes), and the INFO and FORMAT arrays are the converted store's,
value for value. Bad inputs are refused in one line with exit status 2, the store unchanged.
"""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pysam.bcftools as bcftools
import pytest
import zarr
from bio2zarr import vcf as bio2zarr_vcf

import checks
import genoquery
from genoquery.cli import main
from genoquery.errors import GenoqueryWarning
from genoquery.storage.format import LOCK, VCF_GROUP
from genoquery.verify import verify

DATA = Path(__file__).parent / "data"
QUERY = "%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n"
# multi-allelic, partial and missing calls, haploid calls, FILTERs, IDs, QUAL; mixed-ploidy chrX;
# haploid missing calls; FORMAT fields of every Number; INFO fields of every Type and Number
SOURCES = ["multiallelic.vcf", "chrx_mixed.vcf", "haploid_missing.vcf", "format_fields.vcf", "info_fields.vcf"]


def convert(vcf: Path, workdir: Path) -> tuple[Path, Path]:
    """``vcf`` bgzipped and indexed, and its VCF Zarr store by bio2zarr (vcf2zarr convert)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stem = vcf.name.split(".")[0]
    source = workdir / f"{stem}.vcf.gz"
    if vcf.suffix == ".gz":
        shutil.copy(vcf, source)
        shutil.copy(f"{vcf}.tbi", f"{source}.tbi")
    else:
        checks.bgzip(vcf, source, index=True)
    vcz = workdir / f"{stem}.vcz"
    bio2zarr_vcf.convert([str(source)], str(vcz), worker_processes=0, show_progress=False)
    return source, vcz


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Each source's bgzipped VCF and VCF Zarr store, converted once for the module."""
    workdir = tmp_path_factory.mktemp("vcz")
    return {name: convert(DATA / name, workdir) for name in SOURCES}


def _ingest(store: Path, inputs: list[Path], **options) -> genoquery.Store:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenoqueryWarning)
        return genoquery.ingest(store, inputs, progress=False, **options)


def _group(store: genoquery.Store, batch: int = 0) -> zarr.Group:
    return zarr.open_group(str(store.batches[batch].path / VCF_GROUP), mode="r")


def _exported(store_path: Path, out: Path) -> str:
    """``bcftools query`` of the VCF ``genoquery export`` writes of the store."""
    assert main(["export", str(store_path), "-o", str(out)]) == 0
    return bcftools.query("-f", QUERY, str(out))


def _rows(table) -> list[tuple]:
    """A table's rows with NaN as None, so equal tables compare equal."""
    return [
        tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row.values()) for row in table.to_pylist()
    ]


@pytest.mark.parametrize("name", SOURCES)
def test_a_vcf_zarr_store_ingests_exactly_as_its_source_vcf(converted, name, tmp_path) -> None:
    """The vcz batch against bcftools on the source (export line for line, every call, site and
    statistic), and against the store ingested from the VCF (variants, a cohort's frequencies,
    every carrier, the genotype matrix)."""
    source, vcz = converted[name]
    from_vcz = _ingest(tmp_path / "vcz.gq", [vcz])
    from_vcf = _ingest(tmp_path / "vcf.gq", [source])
    expected = bcftools.query("-f", QUERY, str(source))
    assert expected.count("\n") >= 5
    assert _exported(tmp_path / "vcz.gq", tmp_path / "vcz.vcf") == expected
    checks.assert_store_matches(from_vcz, tmp_path / "vcz.gq", [source])
    assert _rows(from_vcz.variants()) == _rows(from_vcf.variants())
    samples = [r["sample_id"] for r in from_vcf.samples().to_pylist()]
    cohort = samples[::2]
    assert _rows(from_vcz.frequencies(cohort=cohort)) == _rows(from_vcf.frequencies(cohort=cohort))
    keys = [r["variant_key"] for r in from_vcf.variants().to_pylist()]
    for key in keys:
        assert _rows(from_vcz.carriers(key)) == _rows(from_vcf.carriers(key)), key
    got, want = from_vcz.genotypes(), from_vcf.genotypes()
    assert np.array_equal(got.gt, want.gt)
    assert np.array_equal(got.phased, want.phased)
    assert got.sample_ids == want.sample_ids == samples
    provenance = from_vcz._con.execute("SELECT kind, records, samples FROM provenance").fetchall()
    assert provenance == [("vcz", expected.count("\n"), len(samples))]


@pytest.mark.parametrize("name", ["format_fields.vcf", "info_fields.vcf"])
def test_info_and_format_arrays_are_the_converted_stores_values(converted, name, tmp_path) -> None:
    """Every ``variant_<ID>`` and ``call_<ID>`` array bio2zarr wrote (but Number=G ones, not kept
    by default and named in the warning) holds the same values, bit for bit, with its
    description; FORMAT/PL comes through when --fields names it."""
    _source, vcz = converted[name]
    given = zarr.open_group(str(vcz), mode="r")
    fields = sorted(
        n
        for n in given.array_keys()
        if n.split("_", 1)[1] not in {"position", "contig", "length", "allele", "id", "id_mask", "quality", "filter"}
        and n.split("_", 1)[0] in ("variant", "call")
        and n not in ("call_genotype", "call_genotype_phased", "call_genotype_mask")
    )
    assert len(fields) >= 7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = genoquery.ingest(tmp_path / "a.gq", [vcz], progress=False)
    notes = [str(w.message) for w in caught if issubclass(w.category, GenoqueryWarning)]
    if "call_PL" in fields:
        assert notes == [f"{vcz}: not kept: FORMAT/PL (to keep them, name them in --fields)"]
        fields.remove("call_PL")
    else:
        assert notes == []
    group = _group(store)
    for name_ in fields:
        want, got = np.asarray(given[name_][...]), np.asarray(group[name_][...])
        assert got.shape == want.shape, name_
        if want.dtype.kind == "f":
            assert np.array_equal(got.view(np.int32), want.view(np.int32)), name_
        elif want.dtype.kind in "iub":
            assert got.dtype.kind == want.dtype.kind, name_
            assert np.array_equal(got, want), name_
        else:
            assert got.astype(object).tolist() == want.astype(object).tolist(), name_
        assert group[name_].attrs["description"] == given[name_].attrs["description"], name_
    assert group.attrs["vcf_meta_information"] == given.attrs["vcf_meta_information"]
    if name == "format_fields.vcf":
        with pytest.warns(GenoqueryWarning, match=r"not kept: INFO/DP, FORMAT/AB, FORMAT/AD, FORMAT/FT, FORMAT/GQ, "):
            kept = genoquery.ingest(tmp_path / "pl.gq", [vcz], progress=False, fields=["FORMAT/PL", "FORMAT/DP"])
        pl = np.asarray(_group(kept)["call_PL"][...])
        assert np.array_equal(pl, np.asarray(given["call_PL"][...]))
        assert pl[0, 0].tolist()[:3] == [0, 3, 30]
        assert sorted(n for n in _group(kept).array_keys() if n.startswith("call_")) == [
            "call_DP",
            "call_PL",
            "call_genotype",
            "call_genotype_phased",
        ]


def test_a_vcz_batch_appended_to_a_vcf_batch_equals_two_vcf_batches(tmp_path) -> None:
    """Center 1 from its VCF, then center 2 (other samples) from its VCF Zarr store with --batch:
    every answer equals the store of both VCFs, and the merged export equals bcftools' merge."""
    fixtures = checks.FIXTURES
    center2, vcz = convert(fixtures / "center2.vcf.gz", tmp_path / "in")
    mixed, plain = tmp_path / "mixed.gq", tmp_path / "plain.gq"
    _ingest(mixed, [fixtures / "center1.vcf.gz"], batch="center1").close()
    assert main(["ingest", "--quiet", str(mixed), str(vcz), "--batch", "center2"]) == 0
    _ingest(plain, [fixtures / "center1.vcf.gz"], batch="center1").close()
    _ingest(plain, [center2], batch="center2").close()
    with genoquery.open(mixed) as got, genoquery.open(plain) as want:
        assert [b.name for b in got.batches] == ["center1", "center2"]
        assert got.info["samples"] == 27 + 45
        assert _rows(got.variants()) == _rows(want.variants())
        sources = {str(center2): str(vcz)}
        assert _rows(got.samples()) == [
            tuple(sources.get(v, v) if isinstance(v, str) else v for v in row) for row in _rows(want.samples())
        ]
        cohort = [r["sample_id"] for r in want.samples().to_pylist()][5:60]
        assert _rows(got.frequencies(cohort=cohort)) == _rows(want.frequencies(cohort=cohort))
        assert _rows(got.carriers(region="chrX")) == _rows(want.carriers(region="chrX"))
        assert len(got.carriers(region="chrX")) > 50
        assert np.array_equal(got.genotypes().gt, want.genotypes().gt)
    merged = tmp_path / "merged.vcf"
    bcftools.merge("-m", "none", "-Ov", "-o", str(merged), str(fixtures / "center1.vcf.gz"), str(center2),
                   catch_stdout=False)  # fmt: skip
    assert _exported(mixed, tmp_path / "mixed.vcf") == bcftools.query("-f", QUERY, str(merged))


def _refused(capsys, args: list[str], store: Path, *expected: str) -> None:
    """``genoquery ingest ARGS`` exits 2 with one error line holding ``expected``, no
    traceback, and leaves ``store`` byte for byte as it was (absent stays absent; the writers'
    empty lock file aside)."""
    before = {k: v for k, v in checks.tree_digest(store).items() if k != LOCK}
    capsys.readouterr()
    assert main(["ingest", "--quiet", str(store), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("genoquery: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert {k: v for k, v in checks.tree_digest(store).items() if k != LOCK} == before
    assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith(".")) == []


@pytest.fixture
def existing(tmp_path) -> Path:
    """A store with one VCF batch, the target of the refused appends."""
    path = tmp_path / "stores" / "s.gq"
    path.parent.mkdir()
    _ingest(path, [DATA / "chrx_mixed.vcf"], batch="first").close()
    return path


def test_bad_vcf_zarr_inputs_are_refused_in_one_line_and_change_nothing(converted, existing, tmp_path, capsys):
    """A directory that is not Zarr, a Zarr group that is not VCF Zarr, a store without
    call_genotype, an unsupported vcf_zarr_version and a damaged chunk, appended to a store
    and as a new store."""
    _source, good = converted["multiallelic.vcf"]
    plain = tmp_path / "plain_dir"
    plain.mkdir()
    (plain / "notes.txt").write_text("not zarr")
    other = zarr.open_group(str(tmp_path / "other.zarr"), mode="w", zarr_format=2)
    other.create_array("x", shape=(3,), dtype="i4")
    no_gt = tmp_path / "no_gt.vcz"
    shutil.copytree(good, no_gt)
    shutil.rmtree(no_gt / "call_genotype")
    future = tmp_path / "future.vcz"
    shutil.copytree(good, future)
    zarr.open_group(str(future), mode="r+").attrs["vcf_zarr_version"] = "9.9"
    damaged = tmp_path / "damaged.vcz"
    shutil.copytree(good, damaged)
    chunk = next(p for p in (damaged / "call_genotype").iterdir() if not p.name.startswith("."))
    chunk.write_bytes(chunk.read_bytes()[:10])
    cases = [
        (plain, "not a Zarr group", "vcf2zarr convert"),
        (tmp_path / "other.zarr", "not VCF Zarr", "vcf2zarr convert"),
        (no_gt, "no call_genotype", "convert the VCF again"),
        (future, "vcf_zarr_version 9.9 is not supported", "0.4, 0.5"),
        (damaged, "cannot read call_genotype of records 1-12", "incomplete or damaged"),
    ]
    (tmp_path / "new").mkdir()
    for path, *expected in cases:
        _refused(capsys, [str(path), "--batch", "second"], existing, str(path), *expected)
        _refused(capsys, [str(path)], tmp_path / "new" / "n.gq", str(path), *expected)
    with genoquery.open(existing) as store:
        assert [b.name for b in store.batches] == ["first"]


def test_a_sample_already_in_the_store_is_refused_and_a_ploidy_above_two_kept(converted, tmp_path, capsys) -> None:
    """Sample IDs are checked as a VCF's (the fix names --rename-duplicate-samples, which
    works); triploid and tetraploid calls are stored exactly, as from a VCF, and verified."""
    source, vcz = converted["multiallelic.vcf"]
    store = tmp_path / "stores" / "s.gq"
    store.parent.mkdir()
    _ingest(store, [source], batch="vcf").close()
    _refused(capsys, [str(vcz), "--batch", "again"], store, "is also in", "--rename-duplicate-samples")
    assert main(["ingest", "--quiet", str(store), str(vcz), "--batch", "again", "--rename-duplicate-samples"]) == 0
    with genoquery.open(store) as both:
        ids = [r["sample_id"] for r in both.samples().to_pylist()]
        assert ids[len(ids) // 2 :] == [f"{s}@again" for s in ids[: len(ids) // 2]]
    records = [
        ["chr1", "5", ".", "A", "C", ".", ".", ".", "GT", "0/1/1", "0/0/0"],
        ["chr1", "6", ".", "A", "C", ".", ".", ".", "GT", "0|.|1|1", "1"],
        ["chr1", "7", ".", "A", "C", ".", ".", ".", "GT", "0/1", "1/1"],
    ]
    triploid = tmp_path / "triploid.vcf"
    triploid.write_text(checks.vcf_text(["A", "B"], records))
    tri, vcz3 = convert(triploid, tmp_path / "tri")
    with _ingest(tmp_path / "t.gq", [vcz3]) as store:
        assert store.genotypes().gt.shape == (3, 2, 4)
        assert _exported(tmp_path / "t.gq", tmp_path / "t.vcf") == bcftools.query("-f", QUERY, str(tri))
        assert [(r["ac"], r["an"]) for r in store.variants().to_pylist()] == [(2, 6), (3, 4), (3, 4)]
    assert verify(tmp_path / "t.gq", [vcz3]).ok
