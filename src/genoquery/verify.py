"""``genoquery verify``: prove a store identical to what the centers delivered.

Three checks, none using the code that wrote the store:

1. **Files.** Every file of every batch's Zarr group has the size and sha256 its
   manifest (``batch_files``, written at ingest) records, and no file is added.
2. **Statistics.** Each batch's calls are read from ``call_genotype`` and counted
   here with plain numpy (not the ingest's kernels, not the query encoding); per
   site, ALT allele and cell, the sums over the batches (a batch without a record
   counting its samples' ``Batch.absent_call``: not called, or hom-ref for a complete
   callset, counted here as any other call) must equal
   ``variants`` and ``variant_group_stats``. Withdrawn samples are left out.
3. **Sources** (files given with ``--sources``). Each is matched to the provenance
   by sha256 and size, and its records are re-read with pysam (htslib's parser
   through pysam's ``VariantFile``, not cyvcf2), or, for a VCF Zarr store, with zarr
   (not the ingest's reader): CHROM, POS and alleles of every record, and every call
   of every sample not withdrawn, must equal the store's.

4. **Lookup files** (:mod:`genoquery.storage.lookup_table`). The files the index names hold
   exactly the rows of ``variants`` (compared by DuckDB over the mapped file), and their
   loci are each row's contig and POS, in order.

Problems are reported with the file, record (1-based line or record number),
sample and both values.

The files, the statistics and the sources are checked in parts (groups of files, the partitions
of :mod:`genoquery.query.cluster.partitions`, one source each), in this process or, given a Dask
``client``, on the cluster's workers; the parts' reports are merged in order either way, so the
report is the same.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pysam
import zarr
from tqdm import tqdm

from genoquery.query.cluster.partitions import Partition, partitions
from genoquery.query.cluster.tasks import Target, run_partitions
from genoquery.query.store import Store
from genoquery.storage.batches import Batch
from genoquery.storage.checksums import file_sha256, tree_sha256
from genoquery.storage.format import FILL, LOOKUP_DIR
from genoquery.storage.lookup_table import LOOKUP_SITES, LookupTable, id_index, locus, lookup_table_name
from genoquery.storage.objects import ObjectPath
from genoquery.storage.schema import VARIANT_COLUMNS
from genoquery.storage.staging import existing_store

MAX_PROBLEMS = 20  # per check: the first ones say where to look
FILES_PER_TASK = 512
STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")


@dataclass
class Report:
    """What :func:`verify` checked (``checked``: counts by kind) and the ``problems`` it found."""

    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list, repr=False)  # each problem's kind

    @property
    def ok(self) -> bool:
        return not self.problems

    def merge(self, part: Report) -> None:
        """Add a later part's report: its counts, and its problems up to :data:`MAX_PROBLEMS` of a kind."""
        for kind, text in zip(part.kinds, part.problems, strict=True):
            if self.kinds.count(kind) < MAX_PROBLEMS:
                self.kinds.append(kind)
                self.problems.append(text)
        for name, n in part.checked.items():
            self.checked[name] += n


def verify(
    store: str | os.PathLike, sources: Sequence[str | os.PathLike] = (), progress: bool = False, client=None
) -> Report:
    """Run the checks of the module docstring on ``store``; ``sources`` are its input files. With
    ``client`` (a ``distributed.Client``) the parts run on the Dask cluster's workers, which must
    read the store and the sources at the same paths."""
    report = Report()
    with Store(existing_store(store)) as opened:

        def run(task, parts: list, args: tuple, weights: list[int], desc: str, unit: str, shown: bool) -> None:
            for part in run_partitions(
                client,
                task,
                parts,
                args,
                local=opened,
                target=Target(opened.path, opened.index_stamp),
                weights=weights,
                desc=desc,
                unit=unit,
                progress=shown,
            ):
                report.merge(part)

        files = _manifest(opened.connection, opened.root, report)
        groups = [files[i : i + FILES_PER_TASK] for i in range(0, len(files), FILES_PER_TASK)]
        run(_check_files, groups, (), [len(g) for g in groups], "files", "file", progress)
        parts = partitions(opened)
        run(_check_statistics, parts, (), [p.sites for p in parts], "count", "site", progress)
        _check_lookup_table(opened.connection, opened.path, report)
        paths = [Path(s).absolute() for s in sources]
        # in this process, a bar of records per source; on a cluster, one of sources
        local = client is None
        run(_check_source, paths, (progress and local,), [1] * len(paths), "sources", "file", progress and not local)
    return report


def _problem(report: Report, kind: str, text: str) -> None:
    report.checked[f"{kind} problems"] += 1
    if report.checked[f"{kind} problems"] <= MAX_PROBLEMS:
        report.kinds.append(kind)
        report.problems.append(text)


# --------------------------------------------------------------------------- files


def _manifest(con: duckdb.DuckDBPyConnection, store: Path | ObjectPath, report: Report) -> list[tuple[str, int, str]]:
    """The manifest's (path, size, sha256) by path; files of the batches' groups it lacks are problems."""
    manifest = sorted(con.execute("SELECT path, size, sha256 FROM batch_files").fetchall())
    groups = [p for (p,) in con.execute("SELECT path FROM batches").fetchall()]
    present = {str(f.relative_to(store)) for g in groups for f in (store / g).rglob("*") if f.is_file()}
    for name in sorted(present - {name for name, _, _ in manifest}):
        _problem(report, "file", f"{name}: not in the manifest (added after ingest)")
    return manifest


def _check_files(store: Store, files: list[tuple[str, int, str]]) -> Report:
    """Sizes and sha256 of ``files`` (manifest rows) against the manifest."""
    report = Report()
    for name, size, digest in files:
        file = store.root / name
        if not file.is_file():
            _problem(report, "file", f"{name}: missing (manifest: {size} bytes)")
        elif file.stat().st_size != size:
            _problem(report, "file", f"{name}: {file.stat().st_size} bytes, manifest {size}")
        elif file_sha256(file) != digest:
            _problem(report, "file", f"{name}: sha256 differs from the manifest (its bytes changed after ingest)")
        report.checked["files"] += 1
    return report


# --------------------------------------------------------------------------- lookup files


def _check_lookup_table(con: duckdb.DuckDBPyConnection, store: Path, report: Report) -> None:
    name = lookup_table_name(con)
    if name is None:
        return
    table = LookupTable.open(con, store)
    where = f"{LOOKUP_DIR}/{name}.arrow"
    if table is None:
        _problem(report, "lookup", f"{where}: missing or unreadable (key lookups fall back to DuckDB)")
        return
    missing, extra = _differences(con, table.rows, ", ".join(VARIANT_COLUMNS), "variants")
    if missing or extra:
        _problem(
            report,
            "lookup",
            f"{where}: {missing} rows of the index's variants are not in it and "
            f"{extra} of its rows are not in the index",
        )
    _check_lookup_sites(con, table, name, report)
    if table.ids is not None and not all(
        np.array_equal(stored, made) for stored, made in zip(table.ids, id_index(table.rows.column("id")), strict=True)
    ):
        _problem(report, "lookup", f"{LOOKUP_DIR}/{name}.id_hash.npy, .id_row.npy: not the hashes of its rows' IDs")
    contig_index = dict(con.execute("SELECT contig, contig_index FROM contigs").fetchall())
    at, last = 0, -1
    for batch in table.rows.to_batches():  # a batch at a time: memory bounded by the file's batches
        contigs = np.array([contig_index[c] for c in batch.column("contig").to_pylist()], dtype=np.int64)
        expected = locus(contigs, batch.column("pos").to_numpy())
        rows = f"{LOOKUP_DIR}/{name}: rows {at}..{at + batch.num_rows - 1}"
        if not np.array_equal(table.loci[at : at + batch.num_rows], expected):
            _problem(report, "lookup", f"{rows}: loci are not their variants' contig and POS")
        elif np.any(np.diff(expected, prepend=last) < 0):
            _problem(report, "lookup", f"{rows}: not ordered by contig and POS")
        at, last = at + batch.num_rows, (int(expected[-1]) if batch.num_rows else last)
    report.checked["lookup rows"] += table.rows.num_rows


def _check_lookup_sites(con: duckdb.DuckDBPyConnection, table: LookupTable, name: str, report: Report) -> None:
    """The lookup file of sites holds exactly the index's ``batch_sites`` records with their query
    encoding, in site order (stores written before it have none)."""
    if table.sites is None:
        return
    where = f"{LOOKUP_DIR}/{name}.sites.arrow"
    missing, extra = _differences(con, table.sites, ", ".join(table.sites.column_names), f"({LOOKUP_SITES})")
    if missing or extra:
        _problem(
            report,
            "lookup",
            f"{where}: {missing} records of the index's batch_sites are not in it and "
            f"{extra} of its rows are not in the index",
        )
    elif np.any(np.diff(table.site_rows) < 0):
        _problem(report, "lookup", f"{where}: not ordered by site row")
    report.checked["lookup sites"] += table.sites.num_rows


def _differences(con: duckdb.DuckDBPyConnection, rows: pa.Table, columns: str, source: str) -> tuple[int, int]:
    """How many rows of ``source`` (a table or a parenthesised query of the index) are not in
    ``rows`` (a lookup file's), and how many of ``rows`` are not in ``source``, over ``columns``."""
    con.register("gq_lookup_rows", rows)
    try:
        return con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {columns} FROM {source} EXCEPT ALL SELECT {columns} "
            f"FROM gq_lookup_rows)), (SELECT count(*) FROM (SELECT {columns} FROM gq_lookup_rows EXCEPT ALL "
            f"SELECT {columns} FROM {source}))"
        ).fetchall()[0]
    finally:
        con.unregister("gq_lookup_rows")


# --------------------------------------------------------------------------- statistics


def _cells(con: duckdb.DuckDBPyConnection, batch: Batch) -> dict[tuple[str, str], np.ndarray]:
    """Each cell's (grouping, value) -> bool mask over the batch's samples that are not withdrawn."""
    groupings = [
        g
        for (g,) in con.execute("SELECT DISTINCT grouping FROM batch_cells WHERE grouping <> '' ORDER BY 1").fetchall()
    ]
    columns = "".join(f', CAST(p."{g}" AS VARCHAR)' for g in groupings)
    join = "LEFT JOIN persons p ON p.sample_id = s.sample_id" if groupings else ""
    rows = con.execute(
        f"SELECT s.withdrawn_at IS NULL{columns} FROM samples s {join} WHERE s.batch = ? ORDER BY s.sample_index",
        [batch.number],
    ).fetchall()
    active = np.array([r[0] for r in rows], dtype=bool)
    cells = {("", ""): active}
    for k, grouping in enumerate(groupings, start=1):
        values = np.array([r[k] for r in rows], dtype=object)
        for value in sorted({v for v in values[active] if v is not None}):
            cells[(grouping, value)] = active & (values == value)
    return cells


def _block_counts(gt: np.ndarray, n_alleles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per site of ``gt`` (sites, samples, ploidy): AN, incomplete calls, and per ALT allele
    (sites, alleles - 1, 4) AC, het, hom-alt, hemi, by the definitions of allele_stats.py (a call
    of ploidy above 2 counts to AC, AN and incomplete calls only)."""
    missing = (gt == -1).any(axis=2)
    ploidy = (gt != FILL).sum(axis=2)
    diploid, haploid = ploidy == 2, ploidy == 1
    an = (gt >= 0).sum(axis=(1, 2))
    per_allele = np.zeros((len(gt), max(n_alleles - 1, 0), 4), dtype=np.int64)
    for a in range(1, n_alleles):
        copies = (gt == a).sum(axis=2)
        per_allele[:, a - 1, 0] = copies.sum(axis=1)
        per_allele[:, a - 1, 1] = ((copies == 1) & diploid & ~missing).sum(axis=1)
        per_allele[:, a - 1, 2] = ((copies == 2) & diploid & ~missing).sum(axis=1)
        per_allele[:, a - 1, 3] = ((gt[:, :, 0] == a) & haploid & ~missing).sum(axis=1)
    return an, missing.sum(axis=1), per_allele


def _counts_row(an: np.ndarray, incomplete: np.ndarray, per_allele: np.ndarray, i: int, a: int) -> list[int]:
    """Site ``i``'s :data:`STATS` of ALT allele ``a`` from :func:`_block_counts`."""
    return [per_allele[i, a - 1, 0], an[i], *per_allele[i, a - 1, 1:], incomplete[i]]


def _absent_counts(batch: Batch, n: int) -> np.ndarray:
    """The :data:`STATS` ``n`` samples of ``batch`` add at a site it has no record of: each holds
    its absent call, which has no ALT allele, so the counts of allele 1 are every allele's."""
    gt = np.broadcast_to(np.array(batch.absent_call, dtype=np.int8), (1, n, 2))
    return np.array(_counts_row(*_block_counts(gt, 2), 0, 1), dtype=np.int64)


def _batch_records(con: duckdb.DuckDBPyConnection, batch: Batch, part: Partition) -> list[tuple[int, int, int]]:
    return con.execute(
        "SELECT batch_row, site_row, len(alleles) FROM batch_sites WHERE batch = ? AND site_row BETWEEN ? AND ? "
        "ORDER BY batch_row",
        [batch.number, part.first_site, part.last_site],
    ).fetchall()


def _blocks(batch: Batch, records: list, report: Report) -> Iterator[tuple[list, np.ndarray]]:
    """``(records, gt)`` per chunk row of the batch's ``call_genotype``; undecodable blocks are problems."""
    genotype, _ = batch.calls
    step = genotype.chunks[0]
    for start in range(0, len(records), step):
        part = records[start : start + step]
        try:
            yield part, np.asarray(genotype[part[0][0] : part[-1][0] + 1])
        except Exception as err:  # a corrupted chunk: zarr or Blosc cannot decode it
            _problem(
                report,
                "genotype",
                f"{batch.path.name}/call_genotype rows {part[0][0]}-{part[-1][0]}: "
                f"cannot be decoded ({err.__class__.__name__}: {err})",
            )


def _check_statistics(store: Store, partition: Partition) -> Report:
    """The statistics of the sites of ``partition``, counted from every batch's genotypes."""
    report, con = Report(), store.connection
    counted: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(6, dtype=np.int64))
    present: dict[int, set[int]] = defaultdict(set)
    absent: list[tuple[Batch, dict]] = []
    for batch in store.batches:
        cells = _cells(con, batch)
        absent.append((batch, {k: _absent_counts(batch, int(m.sum())) for k, m in cells.items()}))
        records = _batch_records(con, batch, partition)
        for part, gt in _blocks(batch, records, report):
            width = max(n for _, _, n in part)
            for key, mask in cells.items():
                an, incomplete, per_allele = _block_counts(gt[:, mask], width)
                for i, (_, site, n) in enumerate(part):
                    for a in range(1, n):
                        counted[(site, a, *key)] += _counts_row(an, incomplete, per_allele, i, a)
            for _, site, _ in part:
                present[site].add(batch.number)
    stored = _stored_statistics(con, partition)
    for (site, allele, grouping, value), row in stored.items():
        want = counted.get((site, allele, grouping, value), np.zeros(6, dtype=np.int64)).copy()
        for batch, terms in absent:
            if batch.number not in present[site]:
                want += terms.get((grouping, value), 0)
        report.checked["statistics"] += 1
        if tuple(want.tolist()) != row:
            cell = f" in {grouping}={value}" if grouping else ""
            _problem(
                report,
                "statistic",
                f"site {site} allele {allele}{cell}: stored {dict(zip(STATS, row, strict=True))}, "
                f"counted from the genotypes {dict(zip(STATS, want.tolist(), strict=True))}",
            )
    return report


def _stored_statistics(con: duckdb.DuckDBPyConnection, part: Partition) -> dict[tuple, tuple]:
    """The stored statistics of the partition's sites, by site, allele and cell."""
    columns = ", ".join(STATS)
    rows = con.execute(
        f"SELECT site_row, allele, '', '', {columns} FROM variants WHERE site_row BETWEEN $lo AND $hi UNION ALL "
        f"SELECT site_row, allele, grouping, group_value, {columns} FROM variant_group_stats "
        "WHERE site_row BETWEEN $lo AND $hi ORDER BY ALL",
        {"lo": part.first_site, "hi": part.last_site},
    ).fetchall()
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


# --------------------------------------------------------------------------- sources


def _pysam_calls(record: pysam.VariantRecord) -> np.ndarray:
    """(samples, ploidy) int8 alleles of a record read by pysam: -1 missing, -2 the slots beyond
    a call's ploidy (at least 2 slots).

    pysam reads an allele index beyond the record's alleles as missing, which a GT of a record
    whose ALT is ``.`` may name (``0/1``: bcftools prints it so); such a record's calls are read
    from the text htslib formats it to instead."""
    if record.alts is None and "GT" in record.format:
        return _text_calls(str(record))
    calls = [sample.get("GT") or (None,) for sample in record.samples.values()]
    return _padded(calls, max(2, *map(len, calls)) if calls else 2)


def _padded(calls: list[tuple], width: int) -> np.ndarray:
    """(calls, width) int8 of each call's alleles (None missing), then fill: one flat array
    converted at once (None reads as NaN), faster than assigning call by call."""
    if any(len(c) != width for c in calls):
        calls = [c if len(c) == width else (*c, *(FILL,) * (width - len(c))) for c in calls]
    values = np.array(list(itertools.chain.from_iterable(calls)), dtype=np.float64)
    return np.nan_to_num(values, nan=-1).astype(np.int8).reshape(len(calls), width)


def _text_calls(line: str) -> np.ndarray:
    """(samples, 2) int8 alleles of the GT values of one VCF data line, as :func:`_pysam_calls`."""
    columns = line.rstrip("\n").split("\t")
    key = columns[8].split(":").index("GT")
    texts = [(values[key] if key < len(values) else ".") for values in (c.split(":") for c in columns[9:])]
    calls = [tuple(None if a == "." else int(a) for a in text.replace("|", "/").split("/")) for text in texts]
    return _padded(calls, max(2, *map(len, calls)) if calls else 2)


Record = tuple[str, int, list[str], np.ndarray]  # CHROM, POS, alleles, (samples, ploidy) calls


def _vcf_records(source: Path) -> tuple[list[str], Iterator[Record]]:
    """A VCF/BCF's sample names and records, read by pysam."""
    reader = pysam.VariantFile(str(source))

    def records() -> Iterator[Record]:
        with reader:
            for record in reader:
                yield record.chrom, record.pos, list(record.alleles), _pysam_calls(record)

    return list(reader.header.samples), records()


def _vcz_records(source: Path) -> tuple[list[str], Iterator[Record]]:
    """A VCF Zarr store's sample names and records, read with zarr and numpy alone (not the
    ingest's reader), a chunk of variants at a time."""
    group = zarr.open_group(str(source), mode="r")
    contigs = [str(c) for c in group["contig_id"][...].tolist()]
    samples = [str(s) for s in group["sample_id"][...].tolist()]
    names = set(group.array_keys())

    def records() -> Iterator[Record]:
        n = group["variant_position"].shape[0]
        step = group["call_genotype"].chunks[0] if "call_genotype" in names else max(n, 1)
        for start in range(0, n, step):
            stop = min(n, start + step)
            alleles = group["variant_allele"][start:stop].tolist()
            contig, pos = group["variant_contig"][start:stop], group["variant_position"][start:stop]
            calls = (
                np.asarray(group["call_genotype"][start:stop])
                if "call_genotype" in names
                else np.zeros((stop - start, 0, 2), dtype=np.int8)
            )
            for i in range(stop - start):
                site = [str(a) for a in alleles[i] if str(a) != ""]
                yield contigs[int(contig[i])], int(pos[i]), site, calls[i]

    return samples, records()


def _same_calls(stored: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per sample, whether two (samples, ploidy) call arrays agree, the narrower padded with fill."""
    width = max(stored.shape[1], source.shape[1])
    padded = [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=FILL) for a in (stored, source)]
    return (padded[0] == padded[1]).all(axis=1)


def _check_source(store: Store, source: Path, progress: bool) -> Report:
    """``source``'s records and calls re-read (pysam for a VCF/BCF, zarr for a VCF Zarr store)
    against the store's."""
    report, con = Report(), store.connection
    digest = tree_sha256(source)[1] if source.is_dir() else file_sha256(source)
    found = con.execute(
        "SELECT path, size, batch, records FROM provenance WHERE sha256 = ? AND batch IS NOT NULL", [digest]
    ).fetchall()
    if not found:
        _problem(report, "source", f"{source}: its sha256 is not that of any ingested file (changed, or not an input)")
        return report
    ingested, _size, number, n_records = found[0]
    report.checked["sources"] += 1
    batch = next(b for b in store.batches if b.number == number)
    active = np.array(
        [
            r[0]
            for r in con.execute(
                "SELECT withdrawn_at IS NULL FROM samples WHERE batch = ? ORDER BY sample_index", [number]
            ).fetchall()
        ],
        dtype=bool,
    )
    rows = con.execute(
        "SELECT batch_row, record, contig, pos, alleles FROM batch_sites WHERE batch = ? "
        "AND source = ? ORDER BY batch_row",
        [number, ingested],
    ).fetchall()
    genotype, _ = batch.calls
    given, records = (_vcz_records if source.is_dir() else _vcf_records)(source)
    stored_ids = _batch_sample_ids(con, number)
    if len(given) != len(stored_ids) or any(
        s not in (g, f"{g}@{batch.name}") for g, s in zip(given, stored_ids, strict=True)
    ):
        _problem(report, "source", f"{source}: its samples differ from batch {batch.name}'s")
        return report
    seen = 0
    for (batch_row, line, contig, pos, alleles), (chrom, at, site, calls) in zip(
        rows,
        tqdm(records, total=n_records, desc=f"verify {source.name}", unit="rec", disable=not progress),
        strict=False,
    ):
        seen += 1
        where = f"{source} record {line} ({chrom}:{at})"
        if (contig, pos, list(alleles)) != (chrom, at, site):
            _problem(report, "source", f"{where}: stored as {contig}:{pos} {'/'.join(alleles)}")
            continue
        stored = np.asarray(genotype[batch_row])
        differ = np.flatnonzero(~_same_calls(stored, calls) & active)
        report.checked["calls"] += int(active.sum())
        if len(differ):
            j = int(differ[0])
            _problem(
                report,
                "genotype",
                f"{where}, sample {given[j]}: source {calls[j].tolist()}, store {stored[j].tolist()} "
                f"({len(differ)} samples differ)",
            )
    if seen != len(rows) or seen != n_records:
        _problem(report, "source", f"{source}: {seen} records read, the store holds {len(rows)} of it")
    return report


def _batch_sample_ids(con: duckdb.DuckDBPyConnection, number: int) -> list[str]:
    return [
        r[0]
        for r in con.execute("SELECT sample_id FROM samples WHERE batch = ? ORDER BY sample_index", [number]).fetchall()
    ]
