"""Bad input gets one clear error and changes nothing.

For every case: the API raises a GenoqueryError subclass whose message names
the offending file (and the line, for a record problem); the CLI exits with
status 2 and prints exactly one stderr line starting ``genoquery: error:``,
no traceback; the store path is as before (absent stays absent, an existing
store is byte-for-byte unchanged even with --overwrite), and no staging
directory is left in the store's parent directory.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pysam
import pysam.bcftools as bcftools
import pytest

import checks
from genoquery.cli import main

HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=chr1,length=100000>",
    "##contig=<ID=chr2,length=100000>",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2",
]
GOOD = [
    "chr1\t100\t.\tA\tC\t.\t.\t.\tGT\t0/1\t1/1",
    "chr1\t200\t.\tG\tT\t.\t.\t.\tGT\t0|0\t./1",
    "chr2\t50\t.\tC\tA,G\t.\t.\t.\tGT\t1/2\t0/0",
]

FORMAT_HEADER = [*HEADER[:-1], '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">', HEADER[-1]]
# Invalid FORMAT values htslib refuses (or, for the empty key, flags and cannot write as BCF), by
# case name: (the bad record, what htslib says of it).
BAD_FORMAT = {
    "format_more_values_than_keys": (
        "chr1\t200\t.\tG\tT\t.\t.\t.\tGT:DP\t0/1:12:5\t0/1:3",
        "Incorrect number of FORMAT fields at chr1:200",
    ),
    "format_non_numeric_integer": (
        "chr1\t200\t.\tG\tT\t.\t.\t.\tGT:DP\t0/1:abc\t0/1:3",
        "Invalid character 'a' in 'DP' FORMAT field at chr1:200",
    ),
    "format_empty_key": ("chr1\t200\t.\tG\tT\t.\t.\t.\tGT::DP\t0/1::12\t0/1::3", "Invalid tag name"),
}


def _vcf(records: list[str], header: list[str] = HEADER) -> str:
    return "\n".join(header + records) + "\n"


def _line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.split("\n"), start=1) if needle in line)


@dataclass
class Case:
    """A bad input: ``make(tmp)`` writes it and returns (vcf arguments, culprit file, line or None, persons)."""

    name: str
    make: Callable[[Path], tuple[list[Path], Path, int | None, Path | None]]
    mentions: tuple[str, ...] = ()  # what the message must name besides the file (the bad value)


def _text_case(name: str, text: str, bad_line_needle: str | None, mentions: tuple[str, ...] = ()) -> Case:
    def make(tmp: Path):
        path = tmp / f"{name}.vcf"
        path.write_text(text)
        line = _line_of(text, bad_line_needle) if bad_line_needle else None
        return [path], path, line, None

    return Case(name, make, mentions)


def _big_vcf(tmp: Path) -> Path:
    """A 20,000-record VCF, large enough that a cut falls inside the records."""
    records = [f"chr1\t{pos}\t.\tA\tC\t.\t.\t.\tGT\t0/1\t1/1" for pos in range(1, 20001)]
    text = tmp / "big.vcf"
    text.write_text(_vcf(records))
    return text


def _truncated_bgzip(tmp: Path):
    full = checks.bgzip(_big_vcf(tmp), tmp / "full.vcf.gz")
    data = full.read_bytes()
    assert len(data) > 40_000  # several BGZF blocks: the cut falls inside the records
    cut = tmp / "truncated.vcf.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises((EOFError, OSError)):  # the fixture really is truncated
        gzip.decompress(cut.read_bytes())
    return [cut], cut, None, None


def _truncated_bcf(tmp: Path):
    full = checks.to_bcf(_big_vcf(tmp), tmp / "full.bcf")
    data = full.read_bytes()
    cut = tmp / "truncated.bcf"
    cut.write_bytes(data[: len(data) // 2])
    return [cut], cut, None, None


def _missing_file(tmp: Path):
    path = tmp / "does-not-exist.vcf"
    return [path], path, None, None


def _empty_file(tmp: Path):
    path = tmp / "empty.vcf"
    path.write_text("")
    return [path], path, None, None


def _different_samples(tmp: Path):
    a = tmp / "a.vcf"
    a.write_text(_vcf(GOOD[:2]))
    header = [*HEADER[:-1], "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts3"]
    b = tmp / "b.vcf"
    b.write_text(_vcf(GOOD[2:], header))
    return [a, b], b, None, None


def _files_interleave(tmp: Path):
    """Two files on one contig whose records interleave: no order of the files is sorted."""
    a = tmp / "a.vcf"
    a.write_text(_vcf([GOOD[0], "chr1\t300\t.\tC\tA\t.\t.\t.\tGT\t0/1\t1/1"]))
    b = tmp / "b.vcf"
    b.write_text(_vcf([GOOD[1]]))
    # files are read in the order of their first records (a, then b): b's first record is out of order
    return [a, b], b, len(HEADER) + 1, None


def _persons_without_sample_id(tmp: Path):
    vcf = tmp / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    persons = tmp / "persons.tsv"
    persons.write_text("person\tancestry\ns1\tAFR\ns2\tEUR\n")
    return [vcf], persons, None, persons


def _persons_missing(tmp: Path):
    vcf = tmp / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    persons = tmp / "no-persons.tsv"
    return [vcf], persons, None, persons


NO_CONTIG_LINES = [h for h in HEADER if not h.startswith("##contig")]
CASES = [
    *(
        _text_case(
            f"contig_name_{name}",
            _vcf([*GOOD[:2], f"{chrom}\t50\t.\tC\tA\t.\t.\t.\tGT\t1/0\t0/0"], NO_CONTIG_LINES),
            f"{chrom}\t50",
            (chrom,),
        )
        for name, chrom in (("comma", "chr2,3"), ("angle_bracket", "chr<2>"), ("equals_first", "=chr2"))
    ),
    _text_case("no_chrom_line", "\n".join(HEADER[:-1] + GOOD) + "\n", None),
    _text_case("no_fileformat", _vcf(GOOD, ["##contig=<ID=chr1>", "this is not a header line", *HEADER[-1:]]), None),
    _text_case(
        "non_numeric_pos",
        _vcf([*GOOD[:1], "chr1\tabc\t.\tG\tT\t.\t.\t.\tGT\t0/0\t0/1", *GOOD[2:]]),
        "\tabc\t",
        ("abc",),
    ),
    _text_case(
        "too_few_sample_columns", _vcf([*GOOD[:1], "chr1\t200\t.\tG\tT\t.\t.\t.\tGT\t0/1", *GOOD[2:]]), "chr1\t200\t"
    ),
    _text_case(
        "too_many_sample_columns", _vcf([*GOOD[:2], "chr2\t50\t.\tC\tA\t.\t.\t.\tGT\t0/1\t1/1\t0/0"]), "chr2\t50\t"
    ),
    _text_case("unknown_contig", _vcf([*GOOD[:2], "chr7\t50\t.\tC\tA\t.\t.\t.\tGT\t0/1\t1/1"]), "chr7\t", ("chr7",)),
    _text_case("unsorted_positions", _vcf([GOOD[1], GOOD[0], GOOD[2]]), "chr1\t100\t"),
    _text_case("contig_seen_twice", _vcf([*GOOD, "chr1\t300\t.\tC\tA\t.\t.\t.\tGT\t0/1\t1/1"]), "chr1\t300\t"),
    _text_case(
        "duplicate_sample_ids",
        _vcf(GOOD, [*HEADER[:-1], "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts1"]),
        None,
        ("s1",),
    ),
    _text_case(
        "non_numeric_gt", _vcf([*GOOD[:1], "chr1\t200\t.\tG\tT\t.\t.\t.\tGT\t0/A\t0/1", *GOOD[2:]]), "0/A", ("0/A",)
    ),
    _text_case(
        "gt_allele_beyond_alt", _vcf([*GOOD[:1], "chr1\t200\t.\tG\tT\t.\t.\t.\tGT\t0/2\t0/1", *GOOD[2:]]), "0/2"
    ),
    _text_case(
        "pos_beyond_int32",
        _vcf(
            ["chr1\t3000000000\t.\tA\tC\t.\t.\t.\tGT\t0/1\t1/1"],
            [HEADER[0], "##contig=<ID=chr1,length=4000000000>", *HEADER[3:]],
        ),
        "3000000000",
        ("3000000000",),
    ),
    *(
        _text_case(name, _vcf([GOOD[0], record, *GOOD[2:]], FORMAT_HEADER), "chr1\t200\t", mentions)
        for name, (record, _), mentions in zip(
            BAD_FORMAT, BAD_FORMAT.values(), (("chr1:200",), ("'DP'", "chr1:200"), ("GT::DP",)), strict=True
        )
    ),
    Case("truncated_bgzip", _truncated_bgzip),
    Case("truncated_bcf", _truncated_bcf),
    Case("missing_file", _missing_file),
    Case("empty_file", _empty_file),
    Case("different_samples", _different_samples),
    Case("files_interleave", _files_interleave),
    Case("persons_without_sample_id", _persons_without_sample_id),
    Case("persons_missing", _persons_missing),
]
IDS = [c.name for c in CASES]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "genoquery", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _assert_one_line_error(proc: subprocess.CompletedProcess, *must_contain: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip("\n").split("\n")
    assert len(lines) == 1, f"stderr must be one line, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("genoquery: error: "), lines[0]
    for text in must_contain:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory, gq) -> Path:
    """A valid store built once; tests copy it."""
    root = tmp_path_factory.mktemp("pristine")
    vcf = root / "good.vcf"
    vcf.write_text(_vcf(GOOD))
    path = root / "store.gq"
    gq.ingest(path, [vcf])
    return path


def _expect_failure(gq, tmp_path: Path, case: Case, target: Path, overwrite: bool):
    vcfs, culprit, line, persons = case.make(tmp_path)
    parent = target.parent
    before_listing = sorted(os.listdir(parent))
    before = checks.tree_digest(target)
    with pytest.raises(gq.GenoqueryError) as info:
        gq.ingest(target, vcfs, persons=persons, overwrite=overwrite)
    message = str(info.value)
    assert str(culprit) in message, f"message does not name {culprit}: {message}"
    if line is not None:
        assert f"line {line}" in message, f"message does not give line {line}: {message}"
    for token in case.mentions:
        assert token in message.replace(str(culprit), ""), f"message does not name {token!r}: {message}"
    assert checks.tree_digest(target) == before
    assert sorted(os.listdir(parent)) == before_listing, "staging leftovers in the store's parent directory"
    return vcfs, culprit, line, persons


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_api_error_new_store(gq, tmp_path, store_path, case):
    _expect_failure(gq, tmp_path, case, store_path, overwrite=False)
    assert not store_path.exists()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_api_error_keeps_existing_store_with_overwrite(gq, tmp_path, store_path, pristine_store, case):
    shutil.copytree(pristine_store, store_path)
    _expect_failure(gq, tmp_path, case, store_path, overwrite=True)
    assert checks.tree_digest(store_path) == checks.tree_digest(pristine_store)
    assert gq.open(store_path).variants().num_rows == 4


def _cli_args(case: Case, tmp_path: Path, store_path: Path) -> tuple[list[str], Path, int | None]:
    vcfs, culprit, line, persons = case.make(tmp_path)
    args = ["ingest", str(store_path), *map(str, vcfs)]
    if persons is not None:
        args += ["--persons", str(persons)]
    return args, culprit, line


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_main_error(gq, tmp_path, store_path, capfd, case):
    """genoquery.cli.main in this process (fast); capfd also catches what htslib writes to fd 2."""

    args, culprit, line = _cli_args(case, tmp_path, store_path)
    capfd.readouterr()
    status = main(args)
    out, err = capfd.readouterr()
    proc = subprocess.CompletedProcess(args, status, out, err)
    _assert_one_line_error(proc, str(culprit), *([f"line {line}"] if line is not None else []))
    assert not store_path.exists()
    assert os.listdir(store_path.parent) == []


SUBPROCESS_CASES = ["no_chrom_line", "non_numeric_pos", "truncated_bgzip", "missing_file"]


@pytest.mark.parametrize("case", [c for c in CASES if c.name in SUBPROCESS_CASES], ids=SUBPROCESS_CASES)
def test_cli_process_error(gq, tmp_path, store_path, case):
    """The real command line (python -m genoquery) for a few cases: status 2, one stderr line, no traceback."""
    args, culprit, line = _cli_args(case, tmp_path, store_path)
    proc = _cli(*args)
    _assert_one_line_error(proc, str(culprit), *([f"line {line}"] if line is not None else []))
    assert not store_path.exists()
    assert os.listdir(store_path.parent) == []


def test_store_class_checks_a_path_given_as_text(gq, pristine_store, tmp_path):
    """``genoquery.Store("x.gq")`` opens as ``genoquery.open`` does, and a missing store is the
    library's error naming it, not a TypeError."""
    assert gq.Store(str(pristine_store)).info["samples"] == gq.open(pristine_store).info["samples"]
    with pytest.raises(gq.StoreError, match="no such store"):
        gq.Store(str(tmp_path / "missing.gq"))


def test_store_path_is_a_directory_not_a_store(gq, tmp_path, store_path):
    vcf = tmp_path / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    store_path.mkdir()
    (store_path / "precious.txt").write_text("not a store")
    before = checks.tree_digest(store_path)
    for overwrite in (False, True):
        with pytest.raises(gq.GenoqueryError) as info:
            gq.ingest(store_path, [vcf], overwrite=overwrite)
        assert str(store_path) in str(info.value)
        assert checks.tree_digest(store_path) == before
    proc = _cli("ingest", str(store_path), str(vcf), "--overwrite")
    _assert_one_line_error(proc, str(store_path))
    assert checks.tree_digest(store_path) == before
    assert os.listdir(store_path.parent) == [store_path.name]


def test_store_path_is_a_file(gq, tmp_path, store_path):
    vcf = tmp_path / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    store_path.write_text("a file")
    for overwrite in (False, True):
        with pytest.raises(gq.GenoqueryError) as info:
            gq.ingest(store_path, [vcf], overwrite=overwrite)
        assert str(store_path) in str(info.value)
        assert store_path.read_text() == "a file"
    proc = _cli("ingest", str(store_path), str(vcf))
    _assert_one_line_error(proc, str(store_path))
    assert store_path.read_text() == "a file"
    assert os.listdir(store_path.parent) == [store_path.name]


def test_existing_store_without_overwrite(gq, tmp_path, store_path, pristine_store):
    shutil.copytree(pristine_store, store_path)
    before = checks.tree_digest(store_path)
    other = tmp_path / "other.vcf"
    other.write_text(_vcf(GOOD[:1]))
    with pytest.raises(gq.GenoqueryError) as info:
        gq.ingest(store_path, [other])
    assert str(store_path) in str(info.value)
    assert checks.tree_digest(store_path) == before
    proc = _cli("ingest", str(store_path), str(other))
    _assert_one_line_error(proc, str(store_path))
    assert checks.tree_digest(store_path) == before
    assert os.listdir(store_path.parent) == [store_path.name]
    # with overwrite it is replaced
    gq.ingest(store_path, [other], overwrite=True)
    assert gq.open(store_path).variants().num_rows == 1
    assert os.listdir(store_path.parent) == [store_path.name]


def test_store_parent_missing(gq, tmp_path):
    vcf = tmp_path / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    target = tmp_path / "no" / "such" / "dir" / "store.gq"
    with pytest.raises(gq.GenoqueryError) as info:
        gq.ingest(target, [vcf])
    assert str(target.parent) in str(info.value) or str(target) in str(info.value)
    assert not (tmp_path / "no").exists()


def test_open_missing_and_non_store(gq, tmp_path):
    with pytest.raises(gq.GenoqueryError):
        gq.open(tmp_path / "absent.gq")
    (tmp_path / "plain").mkdir()
    with pytest.raises(gq.GenoqueryError):
        gq.open(tmp_path / "plain")


def test_good_input_is_accepted(gq, tmp_path, store_path):
    """The control: the base file of the cases above ingests (so each case fails for its own defect)."""
    vcf = tmp_path / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    store = gq.ingest(store_path, [vcf])
    checks.assert_store_matches(store, store_path, [vcf])
    proc = _cli("ingest", str(tmp_path / "again.gq"), str(vcf))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_query_errors(gq, tmp_path, store_path):
    """Bad regions and groupings are GenoqueryErrors too (not KeyError/duckdb errors)."""
    vcf = tmp_path / "ok.vcf"
    vcf.write_text(_vcf(GOOD))
    store = gq.ingest(store_path, [vcf])
    for region in ("chr9", "chr9:1-100", "chr1:abc", "chr1:300-100", ":1-2"):
        with pytest.raises(gq.GenoqueryError):
            store.variants(region=region)
    with pytest.raises(gq.GenoqueryError):
        store.variants(by="ancestry")  # ingested without persons
    with pytest.raises(gq.GenoqueryError):
        store.variants(by="no_such_column")


def test_contig_names_vcf_allows_are_accepted(gq, store_path):
    """HLA allele contigs ('*' and ':' after the first character) and an angle-bracketed
    assembly ID, which VCF 4.3 allows as CHROM, are ingested as written."""
    names = ["HLA-A*01:01:01:01", "<ctg1>", "chrUn_KI270302v1"]
    records = [f"{name}\t50\t.\tC\tA\t.\t.\t.\tGT\t1/0\t0/0" for name in names]
    path = store_path.parent / "names.vcf"
    path.write_text(_vcf(records, [h for h in HEADER if not h.startswith("##contig")]))
    with gq.ingest(store_path, [path]) as store:
        assert store.contigs == names


@pytest.mark.parametrize("name", BAD_FORMAT)
def test_bcftools_refuses_bad_format_values(tmp_path, capfd, name):
    """The oracle agrees: bcftools cannot convert these records to BCF, and its htslib names the
    reason genoquery's message quotes (htslib logs to file descriptor 2)."""
    record, reason = BAD_FORMAT[name]
    path = tmp_path / f"{name}.vcf"
    path.write_text(_vcf([GOOD[0], record, *GOOD[2:]], FORMAT_HEADER))
    with pytest.raises(pysam.utils.SamtoolsError) as info:
        bcftools.view("-Ob", "-o", str(tmp_path / "out.bcf"), str(path), catch_stdout=False)
    assert reason in capfd.readouterr().err + str(info.value)


def test_valid_format_values_are_accepted(gq, store_path):
    """The control of the cases above: '.', an empty value and trailing fields dropped are valid VCF
    (bcftools writes them as BCF), and so is a FORMAT of GT and DP."""
    records = [
        GOOD[0],
        "chr1\t200\t.\tG\tT\t.\t.\t.\tGT:DP\t0/1:.\t0/1",
        "chr2\t50\t.\tC\tA\t.\t.\t.\tGT:DP\t1/0:\t0/0:7",
    ]
    path = store_path.parent / "format_ok.vcf"
    path.write_text(_vcf(records, FORMAT_HEADER))
    bcftools.view("-Ob", "-o", str(store_path.parent / "format_ok.bcf"), str(path), catch_stdout=False)
    with gq.ingest(store_path, [path]) as store:
        assert store.variants().num_rows == 3


def test_unsorted_input_names_the_command_that_sorts_it_and_that_command_works(gq, tmp_path, capfd, monkeypatch):
    """The fix printed for out-of-order records is a command line: run as printed (bcftools from
    pysam, in the file's directory), its output ingests, with the sites bcftools reads from the
    unsorted file, in genome order."""
    (tmp_path / "in.vcf").write_text(_vcf([GOOD[1], GOOD[0], GOOD[2]]))
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "--quiet", "s.gq", "in.vcf"]) == 2
    command = capfd.readouterr().err.split("ingest the sorted file: ", 1)[1].split(";", 1)[0]
    assert command == "bcftools sort -Oz -o in.sorted.vcf.gz in.vcf && bcftools index -t in.sorted.vcf.gz"
    for step in command.split(" && "):
        _, subcommand, *args = step.split()
        getattr(bcftools, subcommand)(*args, catch_stdout=False)
    assert main(["ingest", "--quiet", "s.gq", "in.sorted.vcf.gz"]) == 0

    def alleles(path: str) -> list[str]:  # one line per ALT allele, as bcftools norm -m- splits them
        lines = bcftools.query("-f", "%CHROM\t%POS\t%REF\t%ALT\n", path).splitlines()
        return [f"{line.rsplit(chr(9), 1)[0]}\t{alt}" for line in lines for alt in line.rsplit("\t", 1)[1].split(",")]

    store = gq.open("s.gq")
    got = [f"{r['contig']}\t{r['pos']}\t{r['ref']}\t{r['alt']}" for r in store.variants().to_pylist()]
    assert got == alleles("in.sorted.vcf.gz")
    assert sorted(got) == sorted(alleles("in.vcf"))
    store.close()
