"""FORMAT fields as VCF Zarr ``call_<ID>`` arrays, value for value against bcftools.

``tests/data/format_fields.vcf`` has DP (Integer, Number=1), AD (Integer, R), GQ (Integer, 1),
QS (Float, 2), AB (Float, A), FT (String, 1) and PL (Integer, G, not kept by default), with
missing values (``.``, ``.,1.5``), samples that drop trailing fields, records whose FORMAT lacks
a field, and sites of 2 to 4 alleles. The oracle is ``bcftools query -f '[%ID\\t]'`` on the source
(pysam), turned into bio2zarr's coding: -1 / NaN 0x7F800001 / "." missing, -2 / NaN 0x7F800002 /
"" fill after a sample's last value, missing throughout where the record's FORMAT lacks the field.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools as bcftools
import pytest
import zarr

import genoquery
from genoquery.errors import GenoqueryWarning
from genoquery.ingest.compact import compact
from genoquery.ingest.withdraw import withdraw
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.storage.format import VCF_GROUP

DATA = Path(__file__).parent / "data"
SOURCE = DATA / "format_fields.vcf"
MISSING = {"Integer": -1, "Float": 0x7F800001, "String": "."}
FILL = {"Integer": -2, "Float": 0x7F800002, "String": ""}


def _header_fields(path: Path) -> dict[str, tuple[str, str]]:
    """Number and Type of each FORMAT field but GT."""
    with pysam.VariantFile(str(path)) as vcf:
        return {k: (str(v.number), v.type) for k, v in vcf.header.formats.items() if k != "GT"}


def _expected(path: Path, key: str, number: str, kind: str, max_alleles: int) -> np.ndarray:
    """``call_<key>`` as bcftools reads the source, in VCF Zarr coding (floats as their int32 bits)."""
    text = bcftools.query("-f", f"[%{key}\\t]\\n", str(path)).splitlines()
    with pysam.VariantFile(str(path)) as vcf:
        has = [key in rec.format for rec in vcf]
    rows = [
        [[] if v == "." and not present else v.split(",") for v in line.split("\t")[:-1]]
        for line, present in zip(text, has, strict=True)
    ]
    width = {"1": 1, "R": max_alleles, "A": max_alleles - 1}.get(number) or max(len(v) for r in rows for v in r)

    def code(item: str) -> object:
        if item == ".":
            return MISSING[kind]
        if kind == "Float":
            return int(np.float32(float(item)).view(np.int32))
        return int(item) if kind == "Integer" else item

    out = [[[code(i) for i in v] + [FILL[kind] if v else MISSING[kind]] * (width - len(v)) for v in r] for r in rows]
    array = np.array(out, dtype=object if kind == "String" else np.int64)
    return array[:, :, 0] if number == "1" else array


def _stored(group: zarr.Group, key: str) -> np.ndarray:
    values = group[f"call_{key}"][...]
    if values.dtype.kind == "f":
        return values.view(np.int32).astype(np.int64)
    return values.astype(object) if values.dtype.kind not in "iu" else values.astype(np.int64)


def _check_against_bcftools(store_path: Path, source: Path, kept: dict[str, tuple[str, str]]) -> None:
    group = zarr.open_group(str(store_path / "batches" / "format_fields" / VCF_GROUP), mode="r")
    max_alleles = group["variant_allele"].shape[1]
    for key, (number, kind) in kept.items():
        expected = _expected(source, key, number, kind, max_alleles)
        got = _stored(group, key)
        assert got.shape == expected.shape, key
        assert (got == expected).all(), (key, got, expected)


@pytest.mark.parametrize("variant_chunk", [256, 2])
@pytest.mark.parametrize("kind", ["vcf", "bcf"])
def test_every_call_value_equals_bcftools_query(tmp_path, kind, variant_chunk) -> None:
    """Every kept FORMAT field, for VCF and BCF input, in one block or in blocks of 2 sites (so
    later, wider records widen the arrays after narrower blocks were written)."""
    source = SOURCE
    if kind == "bcf":
        source = tmp_path / "format_fields.bcf"
        bcftools.view("-Ob", "-o", str(source), str(SOURCE), catch_stdout=False)
    path = tmp_path / "s.gq"
    with pytest.warns(GenoqueryWarning, match="not kept: FORMAT/PL"):
        genoquery.ingest(path, [source], layout=ChunkLayout(variant_chunk=variant_chunk)).close()
    kept = {k: v for k, v in _header_fields(SOURCE).items() if v[0] != "G"}
    assert set(kept) == {"DP", "AD", "GQ", "QS", "AB", "FT"}
    _check_against_bcftools(path, SOURCE, kept)
    group = zarr.open_group(str(path / "batches" / "format_fields" / VCF_GROUP), mode="r")
    assert "call_PL" not in group
    genotype = group["call_genotype"]
    for key in kept:
        array = group[f"call_{key}"]
        assert array.chunks[:2] == genotype.chunks[:2]
        assert array.attrs["_ARRAY_DIMENSIONS"][:2] == ["variants", "samples"]
        if array.dtype.kind != "T" and array.dtype != object:
            assert array.compressors[0].get_config() | {"blocksize": 0} == genotype.compressors[0].get_config() | {
                "blocksize": 0
            }
    assert group["call_AD"].attrs["_ARRAY_DIMENSIONS"][2] == "alleles"
    assert group["call_AB"].attrs["_ARRAY_DIMENSIONS"][2] == "alt_alleles"
    assert group["call_QS"].attrs["_ARRAY_DIMENSIONS"][2] == "FORMAT_QS_dim"


QUERY = r"%CHROM\t%POS\t%REF\t%ALT[\t%GT\t%DP\t%AD\t%GQ\t%QS\t%AB\t%FT]\n"


def _vcztools_view(group: Path, out: Path) -> Path:
    run = subprocess.run([sys.executable, "-m", "vcztools", "view", str(group)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out.write_text(run.stdout)
    return out


def test_vcztools_reads_the_fields_back_and_compaction_erases_withdrawn_samples(tmp_path) -> None:
    path = tmp_path / "s.gq"
    with pytest.warns(GenoqueryWarning):
        genoquery.ingest(path, [SOURCE]).close()
    with genoquery.open(path) as store:
        group = store.batches[0].path / VCF_GROUP
    expected = bcftools.query("-f", QUERY, str(SOURCE))
    assert bcftools.query("-f", QUERY, str(_vcztools_view(group, tmp_path / "view.vcf"))) == expected
    before = {k: _stored(zarr.open_group(str(group), mode="r"), k) for k in ("DP", "AD", "QS", "FT")}
    withdraw(path, ["S1"], "test")
    compact(path)
    with genoquery.open(path) as store:
        after = zarr.open_group(str(store.batches[0].path / VCF_GROUP), mode="r")
    for key, (number, kind) in _header_fields(SOURCE).items():
        if number == "G":
            continue
        values = _stored(after, key)
        assert (values[:, 0] == MISSING[kind]).all(), key  # S1's values are gone from the disk
        if key in before:
            assert (values[:, 1:] == before[key][:, 1:]).all(), key


def _ingest_keeping(path: Path, fields: str) -> subprocess.CompletedProcess:
    """``genoquery ingest PATH SOURCE --fields FIELDS`` in a child process, output captured."""
    cmd = [sys.executable, "-m", "genoquery", "ingest", str(path), str(SOURCE), "--fields", fields]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_fields_names_what_is_kept(tmp_path) -> None:
    path = tmp_path / "s.gq"
    run = _ingest_keeping(path, "FORMAT/PL,FORMAT/DP")
    assert run.returncode == 0, run.stderr
    warning = f"genoquery: warning: {SOURCE}: not kept: INFO/DP, FORMAT/AD, FORMAT/GQ, FORMAT/QS, FORMAT/AB, FORMAT/FT"
    assert warning + " (to keep them, name them in --fields)" in run.stderr
    group = zarr.open_group(str(path / "batches" / "format_fields" / VCF_GROUP), mode="r")
    calls = {name for name, _ in group.arrays() if name.startswith("call_")}
    assert calls == {"call_genotype", "call_genotype_phased", "call_PL", "call_DP"}
    assert not any(name.startswith("variant_DP") for name, _ in group.arrays())
    _check_against_bcftools(path, SOURCE, {"PL": ("G", "Integer"), "DP": ("1", "Integer")})


def test_an_unknown_field_is_refused_naming_the_headers_fields(tmp_path) -> None:
    path = tmp_path / "s.gq"
    run = _ingest_keeping(path, "FORMAT/DP,FORMAT/XX")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"genoquery: error: {SOURCE}: --fields names FORMAT/XX,"), lines[0]
    assert "INFO/DP, FORMAT/DP, FORMAT/AD" in lines[0]
    assert not path.exists()


def test_a_value_beyond_the_fields_number_is_refused(tmp_path) -> None:
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(SOURCE.read_text().replace("1/1:4\n", "1/1:4:1,2,3\n", 1))
    with pytest.raises(genoquery.GenoqueryError, match=r"line 13: FORMAT/AD has 3 values where Number=R allows 2"):
        genoquery.ingest(tmp_path / "s.gq", [vcf])


def test_a_format_key_the_header_does_not_declare_is_named(tmp_path) -> None:
    """htslib reads an undeclared FORMAT key's values as text it then cannot keep; bcftools warns of
    it, and so does ingest, naming each such key once, rather than dropping its values silently."""
    source = tmp_path / "undeclared.vcf"
    source.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=1000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n"
        "chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:XX:DP\t0/1:5:3\t0/0:7:4\n"
        "chr1\t20\t.\tC\tT\t.\tPASS\t.\tGT:DP:YY\t1/1:2:x\t0/1:9:y\n"
        "chr1\t30\t.\tG\tA\t.\tPASS\t.\tGT:XX\t0/1:1\t0/0:2\n"
    )
    named = r"undeclared.vcf: not kept: FORMAT/XX, FORMAT/YY \(not declared"
    with pytest.warns(GenoqueryWarning, match=named) as caught:
        genoquery.ingest(tmp_path / "s.gq", [source], progress=False).close()
    assert sum("not declared" in str(w.message) for w in caught) == 1
    expected = bcftools.query("-f", "%POS[\t%GT:%DP]\n", str(source))
    with genoquery.open(tmp_path / "s.gq") as store:
        out = store.export_vcf(tmp_path / "out.vcf")
    assert bcftools.query("-f", "%POS[\t%GT:%DP]\n", str(out)) == expected  # the declared DP is kept


def test_a_missing_format_column_names_no_key(tmp_path) -> None:
    """FORMAT ``.`` (no FORMAT fields, as htslib's formatmissing.vcf) is not a key to name."""
    source = tmp_path / "dot.vcf"
    source.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=1000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n"
        "chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/0\n"
        "chr1\t20\t.\tC\tT\t.\tPASS\t.\t.\t.\t.\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        genoquery.ingest(tmp_path / "s.gq", [source], progress=False).close()
    assert not [w for w in caught if "not declared" in str(w.message)]
