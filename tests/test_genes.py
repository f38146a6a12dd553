"""``genoquery genes`` / import_genes: the genes table against the GTF and BED read with pandas, and errors."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pysam
import pytest

import genoquery
from genoquery.cli import main
from genoquery.index.genes import import_genes

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
VCFS = [FIXTURES / "cohort.chr20.vcf.gz", FIXTURES / "cohort.chrX.vcf.gz"]
GTF = FIXTURES / "genes.gtf"
BED = FIXTURES / "genes.bed"
GTF_COLUMNS = ["contig", "source", "feature", "start", "end", "score", "strand", "frame", "attrs"]
COLUMNS = ["gene_id", "gene_name", "contig", "start", "end", "strand"]


def attribute(attrs: str, name: str) -> str:
    return attrs.split(f'{name} "')[1].split('"')[0]


def gtf_genes(path: Path = GTF) -> pd.DataFrame:
    """Gene lines of a GTF, read with pandas; 1-based inclusive as in the file."""
    gtf = pd.read_csv(path, sep="\t", comment="#", header=None, names=GTF_COLUMNS)
    genes = gtf[gtf["feature"] == "gene"].copy()
    for name in ("gene_id", "gene_name", "gene_type"):
        genes[name] = genes["attrs"].map(lambda a, n=name: attribute(a, n))
    return genes


def genes_table(store_path: Path) -> pd.DataFrame:
    with duckdb.connect(str(store_path / "index.duckdb"), read_only=True) as con:
        return con.sql("SELECT * FROM genes ORDER BY contig, start").df()


def rows(frame: pd.DataFrame, columns=COLUMNS) -> list[tuple]:
    return sorted(tuple(r) for r in frame[columns].itertuples(index=False))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store of the fixture cohort, copied by each test that writes to it."""

    path = tmp_path_factory.mktemp("genes") / "template.gq"
    genoquery.ingest(path, VCFS, progress=False).close()
    return path


@pytest.fixture
def store_path(template, tmp_path) -> Path:
    path = tmp_path / "s.gq"
    shutil.copytree(template, path)
    return path


def test_gtf_import_equals_gene_lines(store_path):

    assert import_genes(store_path, GTF) == 7
    want = gtf_genes()
    got = genes_table(store_path)
    assert rows(got, [*COLUMNS, "gene_type"]) == rows(want, [*COLUMNS, "gene_type"])
    assert set(got["source"]) == {str(GTF)}
    gtf = pd.read_csv(GTF, sep="\t", comment="#", header=None, names=GTF_COLUMNS)
    assert set(gtf["feature"]) == {"gene", "transcript", "exon"}  # only gene lines became genes


def test_bed_import_is_zero_based_half_open(store_path):

    assert import_genes(store_path, BED) == 7
    bed = pd.read_csv(
        BED,
        sep="\t",
        comment="#",
        header=None,
        skiprows=2,
        names=["contig", "start0", "end", "name", "score", "strand"],
    )
    bed["start"], bed["gene_id"], bed["gene_name"] = bed["start0"] + 1, bed["name"], bed["name"]
    got = genes_table(store_path)
    assert rows(got) == rows(bed)
    by_name = gtf_genes().set_index("gene_name")  # the BED and the GTF describe the same genes
    assert sorted((r.gene_name, r.contig, r.start, r.end) for r in got.itertuples()) == sorted(
        (n, by_name.loc[n, "contig"], by_name.loc[n, "start"], by_name.loc[n, "end"]) for n in got["gene_name"]
    )


def test_fixture_genes_lie_over_the_fixture_cohort():
    """Genes on chr20/chrX sit inside the VCFs' record ranges; all but GQC3 hold variants (pysam)."""
    positions = {}
    for vcf in VCFS:
        with pysam.VariantFile(str(vcf)) as f:
            for record in f:
                positions.setdefault(record.chrom, []).append(record.pos)
    assert set(positions) == {"chr20", "chrX"}
    for g in gtf_genes().itertuples():
        if g.contig not in positions:
            assert g.gene_name == "GQZ9"  # on a contig the cohort lacks, for the error case
            continue
        assert positions[g.contig][0] <= g.start <= g.end <= positions[g.contig][-1], g.gene_name
        inside = [p for p in positions[g.contig] if g.start <= p <= g.end]
        assert (len(inside) == 0) == (g.gene_name == "GQC3"), g.gene_name


def test_reimport_replaces(store_path):

    import_genes(store_path, GTF)
    import_genes(store_path, BED)
    got = genes_table(store_path)
    assert len(got) == 7
    assert set(got["source"]) == {str(BED)}
    assert got["gene_type"].isna().all()
    with genoquery.open(store_path) as store:
        assert store.lookup(gene="GQA1").num_rows > 0
        with pytest.raises(genoquery.QueryError, match="not among the 7 imported genes"):
            store.lookup(gene="ENSG00000900001")  # the BED has names only


def test_gzipped_gtf_without_gene_lines_and_other_contig_names(store_path, tmp_path):
    """Exon-only GTF: each gene's extent over its features; '20'/'X' become the store's chr20/chrX."""

    lines = [line for line in GTF.read_text().splitlines() if "\tgene\t" not in line]
    lines = [line[3:] if line.startswith("chr") and not line.startswith("chr1\t") else line for line in lines]
    path = tmp_path / "exons.gtf.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    assert import_genes(store_path, path) == 7
    got = genes_table(store_path)
    assert rows(got) == rows(gtf_genes())  # transcripts span the gene in the fixture


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("short.gtf", "chr20\tX\tgene\t1\t100\n", "fewer than 9 tab-separated columns"),
        ("noid.gtf", 'chr20\tX\tgene\t1\t100\t.\t+\t.\tgene_name "A";\n', "no gene_id attribute"),
        ("start.gtf", 'chr20\tX\tgene\tone\t100\t.\t+\t.\tgene_id "A";\n', "start or end is not a whole number"),
        ("order.gtf", 'chr20\tX\tgene\t200\t100\t.\t+\t.\tgene_id "A";\n', "end is before start"),
        ("zero.gtf", 'chr20\tX\tgene\t0\t100\t.\t+\t.\tgene_id "A";\n', "start must be >= 1"),
        ("strand.gtf", 'chr20\tX\tgene\t1\t100\t.\tup\t.\tgene_id "A";\n', "strand must be"),
        ("empty.gtf", "##only a header\n", "no genes found"),
        ("nothing.bed", "", "no genes found"),
        ("noname.bed", "chr20\t0\t100\n", r"no name \(4th column\)"),
        ("empty.bed", "chr20\t100\t100\tA\n", "end must be larger than start"),
        ("negative.bed", "chr20\t-1\t100\tA\n", "start must be >= 0"),
        ("genes.txt", "chr20\t0\t100\tA\n", "cannot tell a GTF from a BED"),
    ],
)
def test_malformed_files_are_rejected_and_leave_the_table(store_path, tmp_path, name, text, message):

    import_genes(store_path, GTF)
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(genoquery.InputFileError, match=message) as err:
        import_genes(store_path, path)
    assert str(path) in str(err.value)
    assert len(genes_table(store_path)) == 7  # the failed import changed nothing


def test_store_problems(store_path, tmp_path):

    with pytest.raises(genoquery.InputFileError, match="no such file"):
        import_genes(store_path, tmp_path / "missing.gtf")
    with pytest.raises(genoquery.StoreError, match="no such store"):
        import_genes(tmp_path / "nothing.gq", GTF)
    with genoquery.open(store_path) as store:  # a reader keeps the index it opened
        assert import_genes(store_path, GTF) == 7
        with pytest.raises(genoquery.QueryError, match="no genes in this store"):
            store.carriers(gene="GQA1")
    with genoquery.open(store_path) as store:
        assert store.carriers(gene="GQA1").num_rows > 0


def test_a_gene_import_during_an_append_is_refused_and_neither_is_lost(tmp_path):
    """The import meets the append's write lock (the append stopped while its batch is staged):
    it is refused with a clear error, and after the append both the batch and the genes are there.
    Without the lock the import wrote the index the append then replaced, losing the genes."""
    store_path = tmp_path / "centers.gq"
    genoquery.ingest(store_path, [FIXTURES / "center1.vcf.gz", FIXTURES / "center2.vcf.gz"], progress=False).close()
    cmd = [sys.executable, "-m", "genoquery", "ingest", str(store_path), str(FIXTURES / "center3.vcf.gz")]
    append = subprocess.Popen([*cmd, "--batch", "late", "--quiet"], stderr=subprocess.PIPE)
    try:
        while not any((store_path / "batches").glob(".late.staging-*")):
            assert append.poll() is None, append.stderr.read().decode()
            time.sleep(0.001)
        os.kill(append.pid, signal.SIGSTOP)
        with pytest.raises(genoquery.StoreError, match="another genoquery process is writing to this store"):
            import_genes(store_path, GTF)
        os.kill(append.pid, signal.SIGCONT)
        assert append.wait(timeout=120) == 0, append.stderr.read().decode()
    finally:
        append.kill()
        append.stderr.close()
    assert import_genes(store_path, GTF) == 7
    with genoquery.open(store_path) as store:
        assert [b.name for b in store.batches][-1] == "late"
        assert len(genes_table(store_path)) == 7


def test_cli_genes(store_path, capsys, tmp_path):

    assert main(["genes", str(store_path), str(BED)]) == 0
    assert "7 genes imported" in capsys.readouterr().err
    plain = tmp_path / "genes.txt"
    plain.write_text(GTF.read_text())
    assert main(["genes", str(store_path), str(plain), "--format", "gtf"]) == 0
    assert main(["query", str(store_path), "gene", "ENSG00000900002.3"]) == 0
    assert "chr20-18222-G-A" in capsys.readouterr().out
    assert main(["genes", str(store_path), str(tmp_path / "none.bed")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no such file" in err
