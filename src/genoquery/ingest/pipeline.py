"""The ingest pipeline: sources -> decoded blocks -> Zarr genotypes + DuckDB index.

Three stages run concurrently so both cores work: a reader thread decompresses
(ISA-L, its own thread) and decodes genotype blocks; the main thread computes
per-allele statistics and the query encoding (:mod:`genoquery.storage.call_codes`)
and fills the index; a writer thread compresses and writes Zarr shards (numba,
numpy and Blosc release the GIL). The blocks' calls live in :data:`BLOCKS_IN_FLIGHT`
reused buffers (:mod:`genoquery.ingest.block_pool`), which bound the memory.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genoquery.errors import GenoqueryWarning, InputFileError
from genoquery.index.persons import read_person_table, sample_groups
from genoquery.index.writer import IndexWriter, cell_rows
from genoquery.ingest.block_pool import BlockPool
from genoquery.ingest.format_arrays import CallField, select_fields
from genoquery.ingest.records import OrderChecker
from genoquery.ingest.regions import FileRegion
from genoquery.ingest.sources import first_locus, open_input, read_input, record_count
from genoquery.ingest.variant_arrays import HeaderFacts, write_variant_arrays
from genoquery.ingest.vcf_source import HeaderField, VcfSource, meta_information
from genoquery.ingest.zarr_writer import ChunkLayout, GenotypeWriter
from genoquery.query.store import open as open_store
from genoquery.stats.allele_stats import Cells, block_counts
from genoquery.storage.call_codes import CallCodes, HaploidPatterns, encode_block
from genoquery.storage.format import INDEX_FILE, batch_path
from genoquery.storage.regions import resolve_contig
from genoquery.storage.site_block import SiteBlock
from genoquery.storage.staging import BATCH_NAME, check_batch_name, staged_store, write_marker
from genoquery.storage.wide_calls import add_counts
from genoquery.version import __version__

_DONE = object()


def _tool_version() -> str:
    return f"genoquery {__version__}"


def batches_of(sources: list[VcfSource]) -> list[list[VcfSource]]:
    """Files grouped by their sample list (one group per batch), in order of first appearance."""
    groups: dict[tuple[str, ...], list[VcfSource]] = {}
    for source in sources:
        groups.setdefault(source.samples, []).append(source)
    return list(groups.values())


def _batch_names(groups: list[list[VcfSource]], name: str | None) -> list[str]:
    """``name`` for a single batch, else each batch's first file name without its suffixes."""
    if name is not None:
        if len(groups) > 1:
            raise InputFileError(
                groups[1][0].path,
                f"--batch {name} names one batch, but these files hold {len(groups)} different sample sets",
                fix="append one batch at a time, or leave out --batch",
            )
        return [check_batch_name(name)]
    names: list[str] = []
    for group in groups:
        stem = BATCH_NAME.sub("_", group[0].path.name.split(".")[0]) or "batch"
        names.append(stem if stem not in names else f"{stem}_{len(names) + 1}")
    return names


def unique_sample_ids(
    groups: list[list[VcfSource]], names: list[str], existing: dict[str, str], rename: bool
) -> list[list[str]]:
    """The sample IDs of each batch. An ID in two batches (or already in the store) is an error
    naming both files, or with ``rename`` becomes ``ID@BATCH`` in the later batch."""
    seen, out = dict(existing), []
    for group, name in zip(groups, names, strict=True):
        where, ids = str(group[0].path), []
        for sample in group[0].samples:
            if sample in seen:
                if not rename:
                    raise InputFileError(
                        group[0].path,
                        f"sample {sample!r} is also in {seen[sample]}",
                        fix="each sample belongs to one batch: remove or rename one (bcftools "
                        "reheader -s), or pass --rename-duplicate-samples (ID@BATCH)",
                    )
                sample = f"{sample}@{name}"
                if sample in seen:
                    raise InputFileError(
                        group[0].path,
                        f"sample {sample!r} is also in {seen[sample]}",
                        fix="rename it with bcftools reheader -s",
                    )
            seen[sample] = where
            ids.append(sample)
        out.append(ids)
    return out


def merged_contigs(
    sources: list[VcfSource], renames: list[dict[str, str]] | None = None
) -> list[tuple[str, int | None]]:
    """The contigs the sources declare, in order of first appearance, renamed per batch (``renames``,
    one dict per sample set as :func:`batches_of` orders them)."""
    rename_of = {s.samples: r for s, r in zip((g[0] for g in batches_of(sources)), renames or [], strict=True)}
    contigs: dict[str, int | None] = {}
    for source in sources:
        rename = rename_of.get(source.samples, {})
        for name, length in source.contigs:
            contigs.setdefault(rename.get(name, name), length)
    return list(contigs.items())


def order_sources(sources: list[VcfSource], contigs: list[tuple[str, int | None]]) -> list[VcfSource]:
    """Sort files by their first record so that split-by-region inputs concatenate in order."""
    rank = {name: i for i, (name, _) in enumerate(contigs)}
    firsts = [(first_locus(s), s) for s in sources]
    for locus, _ in firsts:
        if locus is not None and locus[0] not in rank:
            rank[locus[0]] = len(rank)
    keyed = sorted(firsts, key=lambda f: (rank[f[0][0]], f[0][1]) if f[0] else (-1, 0))
    return [s for _, s in keyed]


def _produce(
    sources: Sequence[VcfSource],
    capacity: int,
    calls: Sequence[CallField],
    out: queue.Queue,
    stop: threading.Event,
    pool: BlockPool | None,
    region: tuple[FileRegion, int] | None,
) -> None:
    order = OrderChecker()
    new_block = pool.block if pool is not None else None
    try:
        for source in sources:
            for block in read_input(source, capacity, order, calls, new_block, region):
                while not stop.is_set():
                    try:
                        out.put((source, block), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        out.put(_DONE)
    except BaseException as err:  # handed to the consumer, which re-raises it, unless it stopped
        if not stop.is_set():
            out.put(err)


def decoded_blocks(
    sources: Sequence[VcfSource],
    capacity: int,
    calls: Sequence[CallField],
    pool: BlockPool | None = None,
    region: tuple[FileRegion, int] | None = None,
) -> Iterator[tuple[VcfSource, SiteBlock]]:
    """Blocks of all sources in order, with the FORMAT fields ``calls``, decoded on a background
    thread; on ``pool``'s buffers when given (the consumer gives each back), else each allocated;
    with ``region``, only that region of a single source (:func:`read_input`)."""
    handoff: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    args = (sources, capacity, calls, handoff, stop, pool, region)
    worker = threading.Thread(target=_produce, args=args, daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if pool is not None:
            pool.close()
        worker.join()


class BackgroundWriter:
    """Runs Zarr writes on their own thread, in order (Blosc releases the GIL).

    At most one write waits; an error on the writer thread calls ``on_error`` and is raised by
    the next :meth:`submit` or by :meth:`close`; later writes are skipped.
    """

    def __init__(self, on_error: Callable[[], None] | None = None) -> None:
        self.pending: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.on_error = on_error
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.pending.get()) is not None:
            if self.error is None:
                write, args = item
                try:
                    write(*args)
                except BaseException as err:  # re-raised on the main thread
                    self.error = err
                    if self.on_error is not None:
                        self.on_error()

    def submit(self, write, *args) -> None:
        if self.error is not None:
            raise self.error
        self.pending.put((write, args))

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _total_records(sources: list[VcfSource]) -> int | None:
    counts = [record_count(source) for source in sources]
    return None if None in counts else sum(counts)


def contig_renames(groups: list[list[VcfSource]], known: list[str], match: bool) -> list[dict[str, str]]:
    """``20`` in one batch and ``chr20`` in another (or in the store) is an error, not two contigs;
    with ``match``, the later batch's names are renamed to the first spelling: per batch, its renames."""
    names, renames = list(known), []
    for group in groups:
        declared, rename = sorted({c for s in group for c, _ in s.contigs}), {}
        for contig in declared:
            other = resolve_contig(contig, [n for n in names if n != contig])
            if other is not None and contig not in names:
                if not match:
                    raise InputFileError(
                        group[0].path,
                        f"contig {contig!r} is named {other!r} in the other batches",
                        fix=f"use one naming (bcftools annotate --rename-chrs, {contig} -> {other}), "
                        "or pass --match-contig-names to rename it",
                    )
                rename[contig] = other
        names.extend(c for c in declared if c not in names and c not in rename)
        renames.append(rename)
    return renames


def ingest_files(
    store: str | os.PathLike,
    vcfs: Sequence[str | os.PathLike],
    *,
    persons: str | os.PathLike | None,
    overwrite: bool,
    progress: bool | None,
    layout: ChunkLayout | None,
    batch: str | None,
    options: BatchOptions,
    client=None,
):
    """:func:`genoquery.ingest` (documented there)."""
    if not vcfs:
        raise InputFileError("(command line)", "no VCF/BCF files given", fix="name at least one input file")
    sources = [open_input(p) for p in vcfs]
    groups = batches_of(sources)
    names = _batch_names(groups, batch)
    sample_ids = unique_sample_ids(groups, names, {}, options.rename_duplicate_samples)
    renames = contig_renames(groups, [], options.match_contig_names)
    person_table = read_person_table(persons) if persons is not None else None
    contigs = merged_contigs(sources, renames)
    plan = IngestPlan(
        layout or ChunkLayout(),
        person_table,
        options.complete_callset,
        progress if progress is not None else os.isatty(2),
        options.fields,
        client,
    )
    with staged_store(store, overwrite) as staging:
        index = IndexWriter(staging / INDEX_FILE)
        offset = 0
        for number, (name, group, ids, rename) in enumerate(zip(names, groups, sample_ids, renames, strict=True)):
            build_batch(
                staging / batch_path(name),
                index,
                number,
                name,
                order_sources(group, contigs),
                ids,
                offset,
                contigs,
                plan,
                rename,
            )
            offset += len(ids)
        index.add_contigs(contigs)
        if person_table is not None:
            index.add_persons(person_table)
        index.log(
            "ingest",
            "; ".join(f"batch {n}: {', '.join(str(s.path) for s in g)}" for n, g in zip(names, groups, strict=True)),
        )
        index.finish(check_refs=not options.allow_ref_conflicts)
        write_marker(staging, {"tool": _tool_version()})
    return open_store(store)


@dataclass(frozen=True)
class BatchOptions:
    """How batches are merged: absent records mean hom-ref (``complete_callset``) or not called;
    REF alleles that disagree at a position are kept as different sites or refused; contig
    names spelled differently (``20``/``chr20``) are renamed to the first spelling or refused; a
    sample ID already in another batch becomes ``ID@BATCH`` or is refused. ``fields``: the
    INFO/FORMAT fields kept (:class:`IngestPlan`)."""

    complete_callset: bool = False
    allow_ref_conflicts: bool = False
    match_contig_names: bool = False
    rename_duplicate_samples: bool = False
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class IngestPlan:
    """What every batch of one ingest shares: chunk layout, person table, absent-record rule,
    progress, and the INFO/FORMAT fields to keep (``INFO/ID``, ``FORMAT/ID``; None: the default of
    :func:`~genoquery.ingest.format_arrays.select_fields`); ``client``, a ``distributed.Client`` whose
    workers decode and write the genotypes (:mod:`genoquery.ingest.cluster`), or None."""

    layout: ChunkLayout
    persons: object  # pyarrow.Table or None
    complete_callset: bool
    show_progress: bool
    fields: tuple[str, ...] | None = None
    client: object = None  # a distributed.Client: the batches' blocks are decoded on its workers


def _header_facts(sources: list[VcfSource], filters: list[str], info: list[HeaderField]) -> HeaderFacts:
    """The batch's FILTERs (declared or met in records) with the headers' descriptions, the
    first file's other meta-information lines, and the INFO fields kept."""
    descriptions = {}
    for source in reversed(sources):
        descriptions.update(zip(source.filters, source.filter_descriptions, strict=True))
    return HeaderFacts(filters, descriptions, meta_information(sources[0].header_text), info)


def _kept_fields(sources: list[VcfSource], n_samples: int, names: tuple[str, ...] | None):
    """The INFO and FORMAT fields the batch keeps (:func:`select_fields`); what is not kept, and
    what of a VCF Zarr input is not read, is named in one warning line."""
    info, calls, refused = select_fields(sources, names)
    refused += [part for source in sources for part in source.unread]
    if refused:
        warnings.warn(f"{sources[0].path}: not kept: {', '.join(refused)}", GenoqueryWarning, stacklevel=3)
    return info, calls if n_samples else []


@dataclass
class BatchSites:
    """What a batch's sites add to the index and the batch's lists as they are written, in order:
    their index rows, new contigs (renamed by ``rename``), FILTERs met in records, records per file."""

    index: IndexWriter
    batch: int
    keys: list
    rename: dict[str, str]
    contigs: list[tuple[str, int | None]]
    known_contigs: set[str]
    filters: list[str]
    records: dict[Path, int]

    def add(
        self, source: VcfSource, block: SiteBlock, first_row: int, counts, codes, firsts: tuple[int, int, int]
    ) -> None:
        """Index ``block``'s sites of ``source``, written from row ``first_row`` (query encoding
        ``codes`` from the rows ``firsts``)."""
        if self.rename:
            block.contig[:] = [self.rename.get(c, c) for c in block.contig]
        for contig in block.contig:
            if contig not in self.known_contigs:
                self.known_contigs.add(contig)
                self.contigs.append((contig, None))
        for names in block.filters:
            self.filters.extend(f for f in names if f not in self.filters)
        path = str(source.path.absolute())
        self.index.add_block(self.batch, block, first_row, path, counts, self.keys, codes, *firsts)
        self.records[source.path] += block.n


# Counting a block and encoding it each read all its calls, in compiled code that releases the
# GIL: side by side, so the main thread does not wait for both. Measured quietly at 10^5 samples
# the ingest is bound by its ~16 s of CPU on 2 cores, not by one thread (9.7-11.0 s against
# 10.5-10.8 s before, benchmarks/RESULTS.md); py-spy's 5.4 s and 8.3 s for the two had been
# inflated by a busy machine.
_COUNTING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genoquery-count-block")


def counted_and_encoded(
    block: SiteBlock, cells: Cells, patterns: HaploidPatterns
) -> tuple[tuple[np.ndarray, np.ndarray], CallCodes]:
    """A decoded block's counts (:func:`block_counts`, wide calls added) and query encoding
    (:func:`encode_block`), computed side by side."""
    gt = block.gt[: block.n]
    counted = _COUNTING.submit(block_counts, gt, np.fromiter(map(len, block.alleles), np.int64), cells)
    codes = encode_block(gt, patterns)
    counts = counted.result()
    add_counts(*counts, block.wide, cells.of_sample)
    return counts, codes


# Blocks whose calls are in flight at once in one process: read, counted and encoded, written,
# and one waiting between two of these (each at most ChunkLayout.block_bytes).
BLOCKS_IN_FLIGHT = 4


def _write_here(
    sources: list[VcfSource],
    genotypes: GenotypeWriter,
    calls: list[CallField],
    cells: Cells,
    patterns: HaploidPatterns,
    sites: BatchSites,
    bar: tqdm,
) -> None:
    """Decode, count, encode and write the batch's blocks in this process, on the buffers of
    :data:`BLOCKS_IN_FLIGHT` blocks, each given back once written."""
    pool = BlockPool(BLOCKS_IN_FLIGHT, genotypes.layout.variant_chunk, genotypes.n_samples)
    writer = BackgroundWriter(on_error=pool.close)  # a block not written is not given back
    try:
        for source, block in decoded_blocks(sources, genotypes.layout.variant_chunk, calls, pool):
            counts, codes = counted_and_encoded(block, cells, patterns)
            first_row = genotypes.reserve(block.n, block.calls)
            genotypes.add_wide(first_row, block.wide)
            firsts = genotypes.reserve_codes(codes)
            writer.submit(genotypes.write, first_row, block.gt[: block.n], block.phased[: block.n])
            if calls:
                writer.submit(genotypes.write_calls, first_row, block.n, block.calls, block.absent)
            writer.submit(genotypes.write_codes, codes)
            sites.add(source, block, first_row, counts, codes, firsts)
            writer.submit(pool.give_back, block)
            bar.update(block.n)
        writer.submit(genotypes.flush_codes)
    finally:
        writer.close()


def build_batch(
    group: Path,
    index: IndexWriter,
    batch: int,
    name: str,
    sources: list[VcfSource],
    samples: list[str],
    offset: int,
    contigs: list[tuple[str, int | None]],
    plan: IngestPlan,
    rename: dict[str, str],
) -> None:
    """Write one batch (files with the same samples, stored as ``samples``) as the Zarr group
    ``group`` and its index rows; ``offset`` is its first global sample index, ``rename`` maps its
    contig names to the store's. New contigs are added to ``contigs``."""
    info, calls = _kept_fields(sources, len(samples), plan.fields)
    groupings = sample_groups(plan.persons, samples) if plan.persons is not None else ()
    cells = Cells.build(len(samples), groupings)
    keys = cells.keys()
    genotypes = GenotypeWriter(group, len(samples), plan.layout, calls)
    records = {s.path: 0 for s in sources}
    filters = list(dict.fromkeys(f for s in sources for f in s.filters))
    sites = BatchSites(index, batch, keys, rename, contigs, {c for c, _ in contigs}, filters, records)
    bar = tqdm(
        total=_total_records(sources) if plan.show_progress else None,
        unit="rec",
        unit_scale=True,
        desc=f"ingest {name}",
        disable=not plan.show_progress,
    )
    patterns = HaploidPatterns(len(samples))
    try:
        if plan.client is None:
            _write_here(sources, genotypes, calls, cells, patterns, sites, bar)
        else:
            import_module("genoquery.ingest.cluster.commit").write_on_cluster(
                plan.client, sources, genotypes, calls, cells, patterns, sites, bar
            )
    finally:
        bar.close()
    genotypes.finish_calls(calls, max(1, index.max_alleles(batch)))
    genotypes.finish_wide()
    genotypes.write_small_array("haploid_mask", patterns.array(), ("haploid_patterns", "sample_octets"), query=True)
    index.add_samples(batch, offset, samples, str(sources[0].path))
    for source in sources:
        index.add_provenance(
            batch,
            str(source.path.absolute()),
            source.size,
            source.sha256,
            source.kind,
            records[source.path],
            len(source.samples),
            _tool_version(),
        )
    index.add_batch(
        batch, name, batch_path(name), offset, len(samples), plan.complete_callset, cell_rows(batch, keys, cells.sizes)
    )
    write_variant_arrays(genotypes, index, batch, samples, contigs, _header_facts(sources, filters, info))
    index.add_files(batch, group, batch_path(name))
