"""bcftools-style flags of the command line, each against bcftools' own behaviour on the fixture
cohort (``data/fixtures``, 120 samples): ``-r`` with several regions, ``-R``, ``-s`` with ``^``
exclusion, ``-o -`` piped into ``bcftools view``, ``--write-index`` read back by ``bcftools index
-s``, VCF from standard input; and what a public output holds: no internal column, JSON counts as
numbers, QUAL as the VCF wrote it."""

from __future__ import annotations

import gzip
import io
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pysam.bcftools as bcftools
import pytest
from tqdm import tqdm

import genoquery
import oracle
from checks import FIXTURE_VCFS, FIXTURES, assert_variants_match, ingest_fixture
from conftest import skip_without_tool
from genoquery.cli import EXAMPLES, LogLines, main
from genoquery.output import INTERNAL_COLUMNS

CHR20, CHRX = (str(v) for v in FIXTURE_VCFS)
GQ = [sys.executable, "-m", "genoquery"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "fixture.gq"
    ingest_fixture(path).close()
    return path


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*GQ, *args], capture_output=True, text=True, check=False, **kwargs)


def _json(capsys, *argv: str) -> list[dict]:
    assert main([*argv, "-O", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _bcftools_alleles(vcf: str, regions: str, *options: str) -> list[tuple[str, int, str, str]]:
    """(contig, pos, ref, alt) per ALT allele of ``bcftools norm -m- -r regions`` (file order)."""
    text = bcftools.norm("-m-", "-r", regions, *options, vcf)
    return [(f[0], int(f[1]), f[3], f[4]) for f in (line.split("\t") for line in text.splitlines() if line[:1] != "#")]


def test_several_regions_give_each_variant_once_in_genome_order_as_bcftools(store, capsys):
    rows = _json(capsys, "variants", str(store), "-r", "chr20:1-2000,chr20:1500-5000", "-r", "chrX:2781000-2800000")
    got = [(r["contig"], r["pos"], r["ref"], r["alt"]) for r in rows]
    expected = _bcftools_alleles(CHR20, "chr20:1-2000,chr20:1500-5000") + _bcftools_alleles(
        CHRX, "chrX:2781000-2800000"
    )
    assert len(expected) > 10
    assert any(c == "chrX" for c, *_ in expected)
    assert got == expected


def test_a_regions_file_is_read_as_bcftools_reads_it(store, capsys, tmp_path):
    tsv = tmp_path / "regions.tsv"
    tsv.write_text("#CHROM\tBEG\tEND\nchr20\t1500\t5000\nchr20\t651\t651\n")
    bed = tmp_path / "regions.bed"
    bed.write_text("chr20\t1499\t5000\nchr20\t650\t651\n")
    expected = _bcftools_alleles(CHR20, "chr20:651,chr20:1500-5000")
    assert bcftools.view("-H", "-R", str(tsv), CHR20).count("\n") == len({(c, p) for c, p, *_ in expected})
    for path in (tsv, bed):
        rows = _json(capsys, "variants", str(store), "-R", str(path))
        assert [(r["contig"], r["pos"], r["ref"], r["alt"]) for r in rows] == expected


def test_samples_with_caret_exclude_them_as_bcftools_view(store, tmp_path):
    excluded = ["S000001", "S000005", "S000120"]
    out = tmp_path / "x.vcf"
    run = _run("export", str(store), "-r", "chr20:1-20000", "-s", "^" + ",".join(excluded), "-o", str(out))
    assert run.returncode == 0, run.stderr
    expected = bcftools.view("-s", "^" + ",".join(excluded), "-r", "chr20:1-20000", CHR20)
    want = [line for line in expected.splitlines() if line[:1] != "#"]
    assert oracle.sample_names(out) == [s for s in oracle.sample_names(CHR20) if s not in excluded]
    got = [line for line in out.read_text().splitlines() if line[:1] != "#"]
    assert [g.split("\t")[9:] for g in got] == [w.split("\t")[9:] for w in want]
    assert [g.split("\t")[:5] for g in got] == [w.split("\t")[:5] for w in want]


def test_frequencies_of_samples_but_excluded_ones_match_bcftools_counts(store, capsys, tmp_path):
    excluded = ["S000002", "S000003"]
    (tmp_path / "out.txt").write_text("\n".join(excluded) + "\n")
    rows = _json(capsys, "query", str(store), "frequencies", "chr20:1-30000", "-S", f"^{tmp_path / 'out.txt'}")
    kept = [s for s in oracle.sample_names(CHR20) if s not in excluded]
    subset = tmp_path / "subset.vcf"
    bcftools.view("-r", "chr20:1-30000", "-Ov", "-o", str(subset), CHR20, catch_stdout=False)
    expected = oracle.recomputed_ac_an(subset, kept)
    assert [(r["contig"], r["pos"], r["ref"], r["alt"], r["ac"], r["an"]) for r in rows] == expected


@skip_without_tool("bcftools")
def test_export_to_standard_output_pipes_into_bcftools_view(store):
    pipe = f"{' '.join(GQ)} export {store} -r chr20:1-20000 -o - | bcftools view -H"
    run = subprocess.run(pipe, shell=True, capture_output=True, text=True, check=True)
    want = bcftools.view("-H", "-r", "chr20:1-20000", CHR20).splitlines()
    got = run.stdout.splitlines()
    assert len(got) == len(want) > 10
    assert [g.split("\t")[:7] + g.split("\t")[9:] for g in got] == [w.split("\t")[:7] + w.split("\t")[9:] for w in want]


@pytest.mark.parametrize(("name", "kind"), [("out.vcf.gz", None), ("out.vcf.gz", "tbi"), ("out.bcf", "csi")])
def test_write_index_is_read_back_by_bcftools_index(store, tmp_path, name, kind):
    out = tmp_path / name
    run = _run(
        "export", str(store), "-o", str(out), "-r", "chr20:1-50000,chrX", "--write-index", *([kind] if kind else [])
    )
    assert run.returncode == 0, run.stderr
    assert Path(f"{out}.{kind or 'csi'}").exists()
    stats = [line.split("\t") for line in bcftools.index("-s", str(out)).splitlines()]
    records = {
        "chr20": bcftools.view("-H", "-r", "chr20:1-50000", CHR20).count("\n"),
        "chrX": bcftools.view("-H", CHRX).count("\n"),
    }
    assert {c: int(n) for c, _, n in stats} == records


@pytest.mark.parametrize("kind", ["vcf", "vcf.gz", "bcf"])
def test_ingest_reads_a_vcf_from_standard_input(tmp_path, kind):
    source = FIXTURES / "center3.vcf.gz"
    if kind == "bcf":
        bcftools.view("-Ob", "-o", str(tmp_path / "in.bcf"), str(source), catch_stdout=False)
    data = {"vcf": gzip.decompress(source.read_bytes()), "vcf.gz": source.read_bytes()}.get(kind)
    data = data if data is not None else (tmp_path / "in.bcf").read_bytes()
    run = subprocess.run([*GQ, "ingest", str(tmp_path / "s.gq"), "-"], input=data, capture_output=True, check=False)
    assert run.returncode == 0, run.stderr.decode()
    store = genoquery.open(tmp_path / "s.gq")
    assert store.samples()["sample_id"].to_pylist() == oracle.sample_names(FIXTURES / "center3.vcf.gz")
    assert_variants_match(store, [FIXTURES / "center3.vcf.gz"])


def test_version_and_parquet_on_standard_output(store):
    assert _run("--version").stdout == f"genoquery {genoquery.__version__}\n"
    run = subprocess.run([*GQ, "variants", str(store), "-r", "chr20:1-2000", "-O", "parquet"], capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    table = pq.read_table(io.BytesIO(run.stdout))
    assert [(r["contig"], r["pos"], r["ref"], r["alt"]) for r in table.to_pylist()] == _bcftools_alleles(
        CHR20, "chr20:1-2000"
    )


PUBLIC_OUTPUTS = [
    ["variants", "{s}", "-r", "chr20:1-3000"],
    ["variants", "{s}", "-r", "chr20:1-3000", "--by", "ancestry"],
    ["query", "{s}", "variant", "chr20-651-C-T"],
    ["query", "{s}", "region", "chr20:1-3000"],
    ["query", "{s}", "gene", "GQA1"],
    ["query", "{s}", "frequencies", "chr20:1-3000", "--cohort", "sex_at_birth = 'Female'"],
    ["query", "{s}", "carriers", "chr20-651-C-T"],
    ["query", "{s}", "carriers", "--gene", "GQA1"],
    ["query", "{s}", "participant", "S000042"],
]


@pytest.mark.parametrize("argv", PUBLIC_OUTPUTS, ids=lambda a: " ".join(a[0:1] + a[2:3]))
def test_no_public_output_holds_an_internal_column_unless_asked(store, capsys, argv):
    argv = [a.format(s=store) for a in argv]
    rows = _json(capsys, *argv)
    assert rows
    assert not set(rows[0]) & set(INTERNAL_COLUMNS)
    assert main([*argv, "-O", "tsv"]) == 0
    assert not set(capsys.readouterr().out.splitlines()[0].split("\t")) & set(INTERNAL_COLUMNS)
    if argv[2] != "participant":  # its rows name no index row
        internal = _json(capsys, *argv, "--internal")
        assert set(internal[0]) & set(INTERNAL_COLUMNS)


HEAVY = ("pandas", "numba", "zarr", "pyarrow.compute")  # 0.3, 0.4-0.8, 0.15 and 0.035 s to load


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["variant", "chr20-651-C-T"], set()),
        (["variant", "rs483945738"], set()),
        (["region", "chr20:1-3000"], set()),
        (["carriers", "{rare}"], set()),  # its calls are in its index row
        (["carriers", "chr20-651-C-T"], {"numba"}),
        (["carriers", "-r", "chr20:1-3000", "--cohort", "@{ids}"], {"numba", "pyarrow.compute"}),
        (["frequencies", "chr20", "--cohort", "@{ids}"], {"numba"}),
        (["participant", "S000042"], set()),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_query_commands_load_only_what_they_need(store, tmp_path, args, loaded):
    """pyarrow imports pandas (0.2 s, most of a query's cold start) at its first ``pa.array`` or
    ``to_numpy``: the query commands convert through genoquery.arrow instead; and a command loads
    numba or pyarrow.compute only when it counts calls, and zarr only to read the VCF Zarr arrays
    (a local store's query arrays are read without it; issue 22)."""
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"S{i:06d}\n" for i in range(1, 121, 7)))
    with genoquery.open(store) as opened:
        rare = next(r["variant_key"] for r in opened.variants(region="chr20").to_pylist() if r["ac"] == 1)
    argv = ["query", str(store), *(a.format(ids=ids, rare=rare) for a in args)]
    code = (
        f"import sys; from genoquery.cli import main; assert main({argv!r}) == 0; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.splitlines()[-1] == str(sorted(loaded))


def test_a_query_run_as_a_program_writes_all_its_output_before_it_ends_at_once(store, capsys):
    """``python -m genoquery query ...`` ends without the interpreter's teardown (main's exit_now):
    its output is flushed first, whole, as text or Parquet."""
    argv = ["query", str(store), "region", "chr20"]
    rows = _json(capsys, *argv)
    assert len(rows) > 100
    text = subprocess.run([*GQ, *argv], capture_output=True, text=True, check=True).stdout
    assert [line.split("\t")[-2] for line in text.splitlines()[1:]] == [r["variant_key"] for r in rows]
    parquet = subprocess.run([*GQ, *argv, "-O", "parquet"], capture_output=True, check=True).stdout
    assert pq.read_table(io.BytesIO(parquet))["variant_key"].to_pylist() == [r["variant_key"] for r in rows]


def test_json_counts_are_numbers_and_qual_is_as_the_vcf_wrote_it(store, capsys):
    rows = _json(capsys, "query", str(store), "frequencies", "chr20", "-s", "S000001,S000002")
    quals = {(c, p): q for c, p, q in _vcf_quals(CHR20)}
    assert len(rows) > 100
    for row in rows:
        for count in ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing"):
            assert type(row[count]) is int
        assert row["af"] is None if row["an"] == 0 else type(row["af"]) is float
        assert row["qual"] == quals[(row["contig"], row["pos"])]


def _vcf_quals(vcf: str) -> list[tuple[str, int, float | None]]:
    text = bcftools.query("-f", "%CHROM\t%POS\t%QUAL\n", vcf)
    return [(c, int(p), None if q == "." else float(q)) for c, p, q in (line.split("\t") for line in text.splitlines())]


def test_messages_name_the_right_thing(store):
    run = _run("query", str(store), "participant", "S999999")
    assert run.returncode == 2
    assert "cohort" not in run.stderr
    assert "S999999" in run.stderr
    run = _run("query", str(store), "frequencies", "chr20", "--cohort", "typo")
    assert run.returncode == 2
    assert "no saved cohort named 'typo'" in run.stderr
    assert _run("query", "--help").stdout.startswith("usage: genoquery query [-h] STORE")
    assert "append" in _run("ingest", "--help").stdout
    assert _run("tokens", str(store), "list").stdout.splitlines()[0].split("\t")[0] == "name"
    assert _run("audit", str(store)).stdout.splitlines()[0].split("\t")[:2] == ["time", "token"]


def test_threads_pins_the_process_to_that_many_cores(store, capsys):
    cores = os.sched_getaffinity(0)
    try:
        expected = _json(capsys, "variants", str(store), "-r", "chr20:1-3000")
        assert _json(capsys, "variants", str(store), "-r", "chr20:1-3000", "--threads", "1") == expected
        assert len(os.sched_getaffinity(0)) == 1
    finally:
        os.sched_setaffinity(0, cores)
    assert main(["variants", str(store), "--threads", "0"]) == 2


def test_a_sample_in_two_files_is_named_with_both_files(tmp_path):
    first = FIXTURES / "center1.vcf.gz"
    part = tmp_path / "part.vcf.gz"
    bcftools.view("-s", "S000002,S000001", "-Oz", "-o", str(part), str(first), catch_stdout=False)
    run = _run("ingest", str(tmp_path / "s.gq"), str(first), str(part))
    assert run.returncode == 2
    assert run.stderr == (
        f"genoquery: error: {part}: sample 'S000002' is also in {first}; each sample belongs to one batch: "
        "remove or rename one (bcftools reheader -s), or pass --rename-duplicate-samples (ID@BATCH)\n"
    )


def test_every_command_help_shows_its_example():
    for path, example in EXAMPLES.items():
        command, *action = path.split()
        run = _run(command, *(["STORE", *action] if action else []), "--help")
        assert run.returncode == 0, path
        assert example.split("\n")[0] in run.stdout, path


def test_samples_table_has_batch_source_and_withdrawal(store):
    rows = genoquery.open(store).samples().to_pylist()
    assert rows[0]["batch"] == "cohort"
    assert rows[0]["source"] == CHR20
    assert rows[0]["withdrawn_at"] is None
    assert rows[0]["withdrawn_reason"] is None


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_log(tmp_path):
    vcf = str(FIXTURES / "center3.vcf.gz")
    run = _run("ingest", str(tmp_path / "a.gq"), vcf)
    assert run.returncode == 0
    assert run.stderr == f"{tmp_path / 'a.gq'}: 48 samples, 240 sites, 242 ALT alleles\n"  # a bar under 10 s: no line
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [*GQ, "ingest", str(tmp_path / "b.gq"), vcf], stderr=follower, stdout=subprocess.DEVNULL
    ) as p:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    assert p.returncode == 0
    assert b"\r" in drawn


def test_a_bar_in_a_log_is_a_plain_line_per_interval_and_its_last_state():
    log = io.StringIO()
    stream = LogLines(log, interval=0.5)
    with tqdm(total=3, desc="export", file=stream, mininterval=0) as bar:
        for _ in range(3):
            time.sleep(0.6)
            bar.update()
    stream.write("wrote out.vcf.gz\n")
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue()
    assert [line.split("|")[0] for line in lines[:-2]] == [
        "export:  33%",
        "export:  67%",
        "export: 100%",
        "export: 100%",
    ]
    assert lines[-2:] == ["wrote out.vcf.gz", ""]
    quiet = io.StringIO()
    with tqdm(total=3, desc="export", file=LogLines(quiet, interval=60), mininterval=0) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""
