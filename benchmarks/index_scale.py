"""A synthetic index at genome scale, and what lookups, an append and a withdrawal cost on it.

    python benchmarks/index_scale.py /tmp/idx --alleles 1000000 [--samples 100000] [--keep]

writes a store without genotype arrays at ``DIR/store.gq`` holding ``--alleles`` ALT alleles
across chr1-22 and chrX (sites spread by contig length, 1% of them with two ALT alleles) for one
batch of ``--samples`` samples, through the index's own code: ``IndexWriter`` (its schema,
``count_rows``, ``cell_rows``) and ``IndexWriter.finish`` (``merge.rebuild``: sites, variants,
group statistics, lookup files). The statistics are drawn as a real cohort's look:

- AC of each allele from the site-frequency spectrum P(AC = k) ~ 1/k over 1 .. samples / 2;
  hom-alt carriers as Hardy-Weinberg expects, hemizygous calls for males on chrX;
- carriers split over the four ancestry groups x two sexes (the person table's groups, sizes of
  the 10^5-sample simulated cohort) by a multinomial with Dirichlet-drawn ancestry shares;
- ~1% missing calls per site (Poisson), over the same cells, so nearly every site has a
  ``batch_site_counts`` row per cell, as the real index does;
- rsIDs on 38% of sites, 90% PASS, 10% indels; query-encoding columns (dense rows, listed
  calls, inline calls of sites with <= 16 carriers) as the ingest sets them.

Then, in this process, it measures: open time (``genoquery.open``), lookup p50/p99 by key, by
rsID and by 10 kb region (``Store.lookup``), index bytes (``index.duckdb`` and ``lookup/``);
an **append** of a new batch of ``--append-samples`` samples whose records are 10^5 new alleles
and 10^5 existing sites on chr21 and chr22 (``index_transaction`` + ``IndexWriter`` + ``finish``,
as ``genoquery ingest --batch`` does after building the batch's Zarr groups); and a
**withdrawal** of ``--withdraw`` samples of the first batch (``index_transaction``, the
samples marked, the batch's count rows deleted and written again with the withdrawn samples'
calls removed, ``merge.rebuild``: what ``genoquery withdraw`` does after its recount has read
the genotypes, which are not part of this index-only measurement). Each change reports wall
and CPU seconds (``time.process_time``: every thread of this process) and bytes written
(``write_bytes`` of ``/proc/self/io``: bytes sent to the block layer, DuckDB's threads
included). The store is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from tqdm import tqdm

import genoquery
from genoquery.index.merge import rebuild
from genoquery.index.recount import COUNT_TABLES
from genoquery.index.writer import IndexWriter, cell_rows, count_rows
from genoquery.storage.format import INDEX_FILE, LOOKUP_DIR
from genoquery.storage.inline_calls import INLINE_CALLS
from genoquery.storage.staging import write_marker
from genoquery.storage.transaction import index_transaction
from peers import directory_size

# GRCh38 lengths (bp)
CONTIGS = [
    ("chr1", 248_956_422),
    ("chr2", 242_193_529),
    ("chr3", 198_295_559),
    ("chr4", 190_214_555),
    ("chr5", 181_538_259),
    ("chr6", 170_805_979),
    ("chr7", 159_345_973),
    ("chr8", 145_138_636),
    ("chr9", 138_394_717),
    ("chr10", 133_797_422),
    ("chr11", 135_086_622),
    ("chr12", 133_275_309),
    ("chr13", 114_364_328),
    ("chr14", 107_043_718),
    ("chr15", 101_991_189),
    ("chr16", 90_338_345),
    ("chr17", 83_257_441),
    ("chr18", 80_373_285),
    ("chr19", 58_617_616),
    ("chr20", 64_444_167),
    ("chr21", 46_709_983),
    ("chr22", 50_818_468),
    ("chrX", 156_040_895),
]
ANCESTRY = {"AFR": 0.219, "AMR": 0.210, "EAS": 0.127, "EUR": 0.444}  # the 10^5-sample cohort's shares
SEX = {"Female": 0.542, "Male": 0.458}
# Cells as the index holds them: everyone, then each group of each person-table column
KEYS = [("", ""), *(("ancestry", a) for a in ANCESTRY), *(("sex_at_birth", s) for s in SEX)]
# Atoms: ancestry x sex, the finest split; each cell is a sum of atoms
ATOMS = [(a, s) for a in ANCESTRY for s in SEX]
ATOM_SHARE = np.array([ANCESTRY[a] * SEX[s] for a, s in ATOMS])
ATOM_CELLS = np.array(
    [[1] * len(ATOMS), *([int(x == g) for x, _ in ATOMS] for g in ANCESTRY)]
    + [[int(y == s) for _, y in ATOMS] for s in SEX]
)  # (cells, atoms) 0/1
MALE = np.array([s == "Male" for _, s in ATOMS])

MAX_AF = 0.25  # so that no cell's AC exceeds its AN, whatever the draw of its share (chrX males included)
MISSING_RATE = 0.01  # missing calls per sample and site
RSID_SHARE, PASS_SHARE, INDEL_SHARE, MULTI_SHARE = 0.38, 0.9, 0.1, 0.01
BLOCK_SITES = 1 << 17  # sites generated and inserted at a time
BASES = np.array(list("ACGT"))


@dataclass
class Encoding:
    """Running offsets of a batch's query encoding (dense rows, listed calls, missing-call tokens)."""

    dense: int = 0
    listed: int = 0
    missing: int = 0
    rsid: int = 1_000_000


@dataclass
class Sites:
    """Sites to generate: contig, 1-based positions, and alleles where they must match existing sites."""

    contig: str
    pos: np.ndarray
    alleles: list[list[str]] | None = None
    hemizygous: bool = field(init=False)

    def __post_init__(self) -> None:
        self.hemizygous = self.contig == "chrX"


def atom_sizes(n_samples: int) -> np.ndarray:
    """Samples per atom (ancestry x sex), summing to ``n_samples``."""
    sizes = np.floor(ATOM_SHARE * n_samples).astype(np.int64)
    sizes[np.argmax(sizes)] += n_samples - sizes.sum()
    return sizes


def random_alleles(rng: np.random.Generator, pos: np.ndarray) -> list[list[str]]:
    """REF (a made-up reference's base at ``pos``) and one or two ALT alleles per site: SNVs, and
    ``INDEL_SHARE`` of insertions."""
    n_sites = len(pos)
    ref = BASES[(pos.astype(np.uint64) * np.uint64(0x9E3779B1) >> np.uint64(16)) % np.uint64(4)]
    alt = BASES[(np.searchsorted(BASES, ref) + rng.integers(1, 4, n_sites)) % 4]
    indel = rng.random(n_sites) < INDEL_SHARE
    multi = rng.random(n_sites) < MULTI_SHARE
    out = []
    for r, a, is_indel, is_multi in zip(ref, alt, indel, multi, strict=True):
        alleles = [r, r + "".join(rng.choice(BASES, rng.integers(1, 5)))] if is_indel else [r, a]
        if is_multi:
            alleles.append(alleles[1] + "T" if is_indel else BASES[(np.searchsorted(BASES, a) + 1) % 4])
            alleles = alleles if alleles[2] != r else alleles[:2]
        out.append([str(x) for x in alleles])
    return out


def allele_counts(rng: np.random.Generator, n_alleles: int, sizes: np.ndarray, hemizygous: bool) -> np.ndarray:
    """(alleles, cells, 4) AC, het, hom-alt, hemi per cell of ``n_alleles`` ALT alleles."""
    chromosomes = 2 * sizes.sum()
    top = chromosomes * MAX_AF  # P(AC = k) ~ 1/k for 1 <= k <= top
    ac = np.floor(np.exp(rng.random(n_alleles) * np.log(top + 1))).astype(np.int64)
    hom = rng.binomial(ac // 2, np.minimum(ac / chromosomes, 1.0))
    het = ac - 2 * hom
    shares = rng.dirichlet(ATOM_SHARE * 200, n_alleles)
    het_atoms, hom_atoms = rng.multinomial(het, shares), rng.multinomial(hom, shares)
    hemi_atoms = np.zeros_like(het_atoms)
    if hemizygous:  # a male's chrX calls are haploid: each ALT allele is one hemizygous call
        hemi_atoms[:, MALE] = het_atoms[:, MALE] + 2 * hom_atoms[:, MALE]
        het_atoms[:, MALE] = hom_atoms[:, MALE] = 0
    parts = np.stack([het_atoms + 2 * hom_atoms + hemi_atoms, het_atoms, hom_atoms, hemi_atoms], axis=2)
    return np.einsum("ca,nak->nck", ATOM_CELLS, parts)


def site_counts(rng: np.random.Generator, n_sites: int, sizes: np.ndarray, hemizygous: bool) -> np.ndarray:
    """(sites, cells, 2) uncalled allele slots and incomplete calls per cell."""
    missing = rng.multinomial(rng.poisson(MISSING_RATE * sizes.sum(), n_sites), ATOM_SHARE)
    uncalled = 2 * missing + (np.where(MALE, sizes, 0) if hemizygous else 0)  # a haploid call leaves one slot
    return np.einsum("ca,nak->nck", ATOM_CELLS, np.stack([uncalled, missing], axis=2))


def site_rows(
    rng: np.random.Generator,
    sites: Sites,
    alleles: list[list[str]],
    carriers: np.ndarray,
    missing: np.ndarray,
    batch: int,
    first_row: int,
    encoding: Encoding,
    n_samples: int,
) -> pa.Table:
    """``batch_sites`` rows of a block: the record's fields and where its query encoding lies."""
    n = len(sites.pos)
    dense = carriers > n_samples // 32
    listed = np.where(dense, 0, carriers)
    inline = [
        sorted(rng.integers(0, n_samples, k).tolist()) if not d and k <= INLINE_CALLS else None
        for d, k in zip(dense, carriers, strict=True)
    ]
    rsid = rng.random(n) < RSID_SHARE
    ids = np.full(n, None, dtype=object)
    ids[rsid] = [f"rs{encoding.rsid + i}" for i in range(int(rsid.sum()))]
    encoding.rsid += int(rsid.sum())
    rows = pa.table(
        {
            "batch": pa.array(np.full(n, batch), pa.int16()),
            "batch_row": pa.array(np.arange(first_row, first_row + n), pa.int64()),
            "contig": [sites.contig] * n,
            "pos": pa.array(sites.pos, pa.int64()),
            "id": pa.array(ids, pa.string()),
            "alleles": alleles,
            "qual": pa.array(rng.lognormal(4, 1, n), pa.float32()),
            "filters": [["PASS"] if p else ["LowQual"] for p in rng.random(n) < PASS_SHARE],
            "info": [f"AC={c};AN={2 * n_samples - m}" for c, m in zip(carriers, missing, strict=True)],
            "source": [f"/data/center{batch}/{sites.contig}.vcf.gz"] * n,
            "record": pa.array(np.arange(first_row, first_row + n), pa.int64()),
            "n_carriers": pa.array(carriers, pa.int32()),
            "dense_row": pa.array(np.cumsum(dense) - 1 + encoding.dense, mask=~dense),
            "haploid_pattern": pa.array(np.zeros(n, np.int32), mask=np.full(n, not sites.hemizygous)),
            "listed_start": pa.array(np.cumsum(listed) - listed + encoding.listed),
            "n_listed": pa.array(listed, pa.int32()),
            "missing_start": pa.array(np.cumsum(missing) - missing + encoding.missing),
            "n_missing_tokens": pa.array(missing, pa.int32()),
            "inline_calls": pa.array(inline, pa.list_(pa.int64())),
        }
    )
    encoding.dense += int(dense.sum())
    encoding.listed += int(listed.sum())
    encoding.missing += int(missing.sum())
    return rows


def add_sites(
    writer: IndexWriter,
    rng: np.random.Generator,
    sites: Sites,
    batch: int,
    first_row: int,
    encoding: Encoding,
    sizes: np.ndarray,
) -> int:
    """Write one block of ``sites`` of ``batch`` (records from ``first_row``) and their counts;
    the number of ALT alleles written."""
    n = len(sites.pos)
    alleles = sites.alleles if sites.alleles is not None else random_alleles(rng, sites.pos)
    n_alt = np.array([len(a) - 1 for a in alleles])
    counts = np.zeros((n, int(n_alt.max()) + 1, len(KEYS), 4), dtype=np.int64)
    flat = allele_counts(rng, int(n_alt.sum()), sizes, sites.hemizygous)
    site_of = np.repeat(np.arange(n), n_alt)
    counts[site_of, np.arange(len(site_of)) - np.repeat(np.cumsum(n_alt) - n_alt, n_alt) + 1] = flat
    sites_counts = site_counts(rng, n, sizes, sites.hemizygous)
    carriers = counts[:, 1:, 0, 1:].sum(axis=(1, 2))  # calls with an ALT allele, summed over alleles
    rows = site_rows(rng, sites, alleles, carriers, sites_counts[:, 0, 1], batch, first_row, encoding, int(sizes.sum()))
    writer.add_sites(rows)
    batch_rows = np.arange(first_row, first_row + n, dtype=np.int64)
    writer.add_counts(*count_rows(batch, batch_rows, sites_counts, counts, KEYS))
    return int(n_alt.sum())


def genome_sites(rng: np.random.Generator, n_alleles: int) -> Iterator[Sites]:
    """Blocks of sites over every contig, by contig length, about ``n_alleles`` ALT alleles in all."""
    total = sum(length for _, length in CONTIGS)
    n_sites = round(n_alleles / (1 + MULTI_SHARE * 0.9))
    for contig, length in CONTIGS:
        pos = np.sort(rng.integers(1, length + 1, round(n_sites * length / total)))
        for start in range(0, len(pos), BLOCK_SITES):
            yield Sites(contig, pos[start : start + BLOCK_SITES])


def add_batch(writer: IndexWriter, batch: int, offset: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Record a batch of ``n_samples`` samples (IDs ``S{index}``) with its cells; its atom sizes."""
    sizes = atom_sizes(n_samples)
    name = f"center{batch}"
    writer.add_batch(
        batch, name, f"batches/{name}", offset, n_samples, False, cell_rows(batch, KEYS, ATOM_CELLS @ sizes)
    )
    writer.add_samples(batch, offset, [f"S{i:08d}" for i in range(offset, offset + n_samples)], name)
    return sizes


def persons(n_samples: int) -> pa.Table:
    """The person table: each sample's ancestry and sex, atoms in order (as :func:`atom_sizes`)."""
    sizes = atom_sizes(n_samples)
    return pa.table(
        {
            "sample_id": [f"S{i:08d}" for i in range(n_samples)],
            "ancestry": np.repeat([a for a, _ in ATOMS], sizes).tolist(),
            "sex_at_birth": np.repeat([s for _, s in ATOMS], sizes).tolist(),
        }
    )


def build(store: Path, n_alleles: int, n_samples: int, seed: int) -> int:
    """Write the synthetic store; the number of ALT alleles it holds."""
    rng = np.random.default_rng(seed)
    store.mkdir(parents=True)
    write_marker(store, {"tool": "benchmarks/index_scale.py"})
    writer = IndexWriter(store / INDEX_FILE)
    writer.add_contigs(CONTIGS)
    writer.add_persons(persons(n_samples))
    sizes = add_batch(writer, 0, 0, n_samples, rng)
    written, row, encoding = 0, 0, Encoding()
    with tqdm(total=n_alleles, desc="generate", unit="allele", unit_scale=True) as bar:
        for sites in genome_sites(rng, n_alleles):
            added = add_sites(writer, rng, sites, 0, row, encoding, sizes)
            row += len(sites.pos)
            written += added
            bar.update(added)
    writer.log("ingest", f"synthetic: {written} ALT alleles, {n_samples} samples")
    with Timed("finish (merge.rebuild, lookup files)"):
        writer.finish()
    return written


class Timed:
    """Wall and CPU seconds and bytes written (``/proc/self/io`` write_bytes) of a block."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label, self.quiet = label, quiet
        self.wall = self.cpu = 0.0
        self.written = 0

    def __enter__(self) -> Timed:
        self._start = (time.perf_counter(), time.process_time(), _write_bytes())
        if not self.quiet:
            print(f"{self.label} ...", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        wall, cpu, written = self._start
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.written = _write_bytes() - written
        if not self.quiet:
            print(
                f"{self.label}: {self.wall:.1f} s wall, {self.cpu:.1f} s CPU, {self.written / 1e6:.0f} MB written",
                file=sys.stderr,
                flush=True,
            )


def _write_bytes() -> int:
    """Bytes this process has sent to the block layer (``write_bytes`` of ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes"):
            return int(line.split()[1])
    raise OSError("no write_bytes in /proc/self/io")


def index_bytes(store: Path) -> tuple[int, int]:
    """Bytes of ``index.duckdb`` and of the lookup files."""
    return (store / INDEX_FILE).stat().st_size, directory_size(store / LOOKUP_DIR)


def table_bytes(store: Path) -> dict:
    """Bytes of each table of ``index.duckdb`` (its blocks: ``pragma_storage_info``), and of what
    the tables leave: the ART indexes, catalog and free blocks."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{store / INDEX_FILE}' AS i (READ_ONLY)")
    block, used = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = 'i'"
    ).fetchall()[0]
    tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'i'").fetchall()]
    result = {}
    for table in tables:
        blocks = con.execute(
            f"SELECT count(DISTINCT block_id) FROM pragma_storage_info('i.{table}') WHERE block_id >= 0"
        ).fetchall()[0][0]
        result[f"duckdb_{table}_bytes"] = blocks * block
    result["duckdb_indexes_and_catalog_bytes"] = used * block - sum(result.values())
    con.close()
    return result


def percentiles(call: Callable[[str], object], items: list[str]) -> tuple[float, float]:
    """p50 and p99 milliseconds of ``call`` on each of ``items`` (after one untimed warm-up)."""
    call(items[0])
    times = []
    for item in items:
        start = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - start)
    p50, p99 = np.percentile(times, [50, 99]) * 1000
    return float(p50), float(p99)


def _sample(n: int) -> str:
    """A reproducible sample of ``n`` rows of the query it follows (a sample clause applies to the
    table before a WHERE: filter in a subquery first)."""
    return f"USING SAMPLE reservoir({n} ROWS) REPEATABLE (1)"


def lookups(store: Path, rng: np.random.Generator, n: int) -> dict:
    """Open time, then lookup p50/p99 (ms) by key, rsID and 10 kb region on ``store``."""
    start = time.perf_counter()
    opened = genoquery.open(store)
    open_ms = (time.perf_counter() - start) * 1000
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{store / INDEX_FILE}' AS i (READ_ONLY)")
    keys = [k for (k,) in con.execute(f"SELECT variant_key FROM i.variants {_sample(n)}").fetchall()]
    ids = [
        k
        for (k,) in con.execute(
            f"SELECT id FROM (SELECT id FROM i.variants WHERE id IS NOT NULL) {_sample(n)}"
        ).fetchall()
    ]
    con.close()
    lengths = dict(CONTIGS)
    contigs = rng.choice(list(lengths), n)
    regions = [f"{c}:{s}-{s + 9_999}" for c in contigs for s in [int(rng.integers(1, lengths[c] - 10_000))]]
    result = {"open_ms": open_ms}
    for label, items, call in (
        ("key", keys, lambda k: opened.lookup(k)),
        ("rsid", ids, lambda k: opened.lookup(k)),
        ("region", regions, lambda r: opened.lookup(region=r)),
    ):
        result[f"{label}_p50_ms"], result[f"{label}_p99_ms"] = percentiles(call, items)
    opened.close()
    return result


# The index's tables by contig, each partition with its rows' contig (a query over ``sites`` and
# ``batch_sites``, whose rows carry it)
PARTITIONED = {
    "sites": "SELECT * FROM sites WHERE contig = $contig",
    "variants": "SELECT * FROM variants WHERE contig = $contig",
    "variant_group_stats": "SELECT g.* FROM variant_group_stats g JOIN sites s USING (site_row) "
    "WHERE s.contig = $contig",
    "batch_sites": "SELECT * FROM batch_sites WHERE contig = $contig",
    "batch_site_counts": "SELECT k.* FROM batch_site_counts k JOIN batch_sites s USING (batch, batch_row) "
    "WHERE s.contig = $contig",
    "batch_allele_counts": "SELECT k.* FROM batch_allele_counts k JOIN batch_sites s USING (batch, batch_row) "
    "WHERE s.contig = $contig",
}


def parquet_partitions(store: Path, out: Path) -> dict:
    """The index's per-site tables written as one Parquet file (zstd) per table and contig under
    ``out``, as a partitioned index would hold them: bytes of each table, and the seconds and
    bytes of chr22's files (what an append to chr22 alone would write)."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{store / INDEX_FILE}' AS i (READ_ONLY)")
    con.execute("USE i")
    result = {}
    for table, query in tqdm(PARTITIONED.items(), desc="parquet", unit="table"):
        (out / table).mkdir(parents=True)
        for contig, _ in CONTIGS:
            with Timed(f"parquet {table} {contig}", quiet=True) as timed:
                con.execute(
                    f"COPY ({query.replace('$contig', '?')}) TO '{out / table / contig}.parquet' "
                    "(FORMAT parquet, COMPRESSION zstd)",
                    [contig],
                )
            if contig == "chr22":
                result[f"chr22_{table}_s"] = timed.wall
        result[f"parquet_{table}_bytes"] = directory_size(out / table)
    result["parquet_chr22_bytes"] = sum(directory_size(out / t / "chr22.parquet") for t in PARTITIONED)
    con.close()
    shutil.rmtree(out)
    return result


def append(store: Path, n_samples: int, new_alleles: int, rng: np.random.Generator) -> Timed:
    """Append a batch: ``new_alleles`` new sites and as many existing ones, on chr21 and chr22."""
    with Timed("append") as timed, index_transaction(store) as copy:
        writer = IndexWriter(copy, create=False)
        offset, number = writer.con.execute(
            "SELECT max(sample_offset + n_samples), max(batch) + 1 FROM batches"
        ).fetchall()[0]
        sizes = add_batch(writer, number, offset, n_samples, rng)
        encoding, row = Encoding(rsid=10**9), 0
        for contig in ("chr21", "chr22"):
            old = writer.con.execute(
                f"SELECT * FROM (SELECT pos, alleles FROM sites WHERE contig = ?) {_sample(new_alleles // 2)}", [contig]
            ).fetchall()
            length = dict(CONTIGS)[contig]
            new_pos = rng.integers(1, length + 1, new_alleles // 2)
            new = zip(new_pos.tolist(), random_alleles(rng, new_pos), strict=True)
            merged = sorted([*old, *new], key=lambda site: site[0])
            alleles = [a for _, a in merged]
            sites = Sites(contig, np.array([p for p, _ in merged]), alleles)
            add_sites(writer, rng, sites, number, row, encoding, sizes)
            row += len(merged)
        writer.log("append", f"synthetic batch {number}: {n_samples} samples")
        writer.finish()
    return timed


_FEWER = "(hash(batch_row, allele) % 1000 = 0 AND n_het > 0)::BIGINT"  # 1 in 1,000 alleles lose a het call
_RECOUNTED = {  # a batch's count rows after the withdrawal, from its rows before it (``old``)
    "batch_cells": "* REPLACE (n_samples - CASE WHEN grouping = '' THEN ? ELSE 0 END AS n_samples)",
    "batch_site_counts": "*",
    "batch_allele_counts": f"* REPLACE (ac - {_FEWER} AS ac, n_het - {_FEWER} AS n_het)",
}


def withdraw(store: Path, n_withdrawn: int) -> Timed:
    """Withdraw ``n_withdrawn`` samples of batch 0: marked, the batch's counts written again
    without their calls (one het call fewer on 1 in 1,000 alleles), statistics re-derived."""
    with Timed("withdraw") as timed, index_transaction(store) as copy:
        con = duckdb.connect(str(copy))
        ids = [f"S{i:08d}" for i in range(n_withdrawn)]
        con.execute(
            "UPDATE samples SET withdrawn_at = now(), withdrawn_reason = 'benchmark' "
            "WHERE sample_id IN (SELECT unnest(?))",
            [ids],
        )
        for table in COUNT_TABLES:
            con.execute(f"CREATE TEMP TABLE old AS SELECT * FROM {table} WHERE batch = 0")
            con.execute(f"DELETE FROM {table} WHERE batch = 0")
            con.execute(
                f"INSERT INTO {table} SELECT {_RECOUNTED[table]} FROM old", [n_withdrawn] * (table == "batch_cells")
            )
            con.execute("DROP TABLE old")
        rebuild(con)
        con.execute("INSERT INTO store_log VALUES (now(), 'withdraw', ?, 'benchmark')", [json.dumps(ids)])
        con.execute("CHECKPOINT")
        con.close()
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--alleles", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--append-samples", type=int, default=10_000)
    parser.add_argument("--append-alleles", type=int, default=100_000, help="new alleles, as many existing sites")
    parser.add_argument("--withdraw", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--no-changes", action="store_true", help="skip the append and the withdrawal (each copies the index)"
    )
    args = parser.parse_args()
    store = args.workdir / "store.gq"
    shutil.rmtree(store, ignore_errors=True)
    rng = np.random.default_rng(args.seed + 1)
    result = {"alleles": None, "samples": args.samples, "load": os.getloadavg()}
    with Timed("build") as built:
        result["alleles"] = build(store, args.alleles, args.samples, args.seed)
    result["build_s"], result["build_cpu_s"] = built.wall, built.cpu
    result["index_bytes"], result["lookup_bytes"] = index_bytes(store)
    result.update(table_bytes(store))
    result.update(lookups(store, rng, args.lookups))
    result.update(parquet_partitions(store, args.workdir / "parquet"))
    if not args.no_changes:
        result.update(changes(store, args, rng))
    result["load_after"] = os.getloadavg()
    print(json.dumps(result))
    if not args.keep:
        shutil.rmtree(store)


def changes(store: Path, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    """Time, CPU and bytes written of an append then a withdrawal, and the index's bytes after each."""
    result = {}
    appended = append(store, args.append_samples, args.append_alleles, rng)
    result.update(append_s=appended.wall, append_cpu_s=appended.cpu, append_bytes=appended.written)
    result["index_bytes_appended"], result["lookup_bytes_appended"] = index_bytes(store)
    withdrawn = withdraw(store, args.withdraw)
    result.update(withdraw_s=withdrawn.wall, withdraw_cpu_s=withdrawn.cpu, withdraw_bytes=withdrawn.written)
    result["index_bytes_withdrawn"], result["lookup_bytes_withdrawn"] = index_bytes(store)
    return result


if __name__ == "__main__":
    main()
