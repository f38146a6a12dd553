"""The ingest pipeline: sources -> decoded blocks -> Zarr genotypes + DuckDB index.

Three stages run concurrently so both cores work: a reader thread decompresses
(ISA-L, its own thread) and decodes genotype blocks; the main thread computes
per-allele statistics and the query encoding (:mod:`genoquery.ingest.call_codes`)
and fills the index; a writer thread compresses and writes Zarr shards (numba,
numpy and Blosc release the GIL). Bounded queues keep at most two blocks in flight.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genoquery.errors import InputFileError
from genoquery.index.persons import read_person_table, sample_groups
from genoquery.index.schema import INDEX_FILE
from genoquery.index.writer import IndexWriter
from genoquery.ingest.allele_stats import Cells, SampleGroups, block_stats
from genoquery.ingest.call_codes import HaploidPatterns, encode_block
from genoquery.ingest.records import OrderChecker, SiteBlock, first_locus, read_blocks
from genoquery.ingest.staging import GENOTYPES, staged_store, write_marker
from genoquery.ingest.vcf_source import VcfSource, open_source
from genoquery.ingest.variant_arrays import write_variant_arrays
from genoquery.ingest.zarr_writer import ChunkLayout, GenotypeWriter

_DONE = object()


def _tool_version() -> str:
    from genoquery import __version__

    return f"genoquery {__version__}"


def _check_same_samples(sources: list[VcfSource]) -> None:
    first = sources[0]
    for other in sources[1:]:
        if other.samples != first.samples:
            column = next((i for i, (a, b) in enumerate(zip(other.samples, first.samples)) if a != b),
                          min(len(other.samples), len(first.samples)))
            theirs = other.samples[column] if column < len(other.samples) else "(none)"
            ours = first.samples[column] if column < len(first.samples) else "(none)"
            raise InputFileError(other.path,
                                 f"its samples differ from {first.path.name}'s: sample column {column + 1} "
                                 f"is {theirs!r} there and {ours!r} in {first.path.name} "
                                 f"({len(other.samples)} vs {len(first.samples)} samples)",
                                 fix="files of one ingest must hold the same samples in the same order")


def _merged_contigs(sources: list[VcfSource]) -> list[tuple[str, int | None]]:
    contigs: dict[str, int | None] = {}
    for source in sources:
        for name, length in source.contigs:
            contigs.setdefault(name, length)
    return list(contigs.items())


def _order_sources(sources: list[VcfSource], contigs: list[tuple[str, int | None]]) -> list[VcfSource]:
    """Sort files by their first record so that split-by-region inputs concatenate in order."""
    rank = {name: i for i, (name, _) in enumerate(contigs)}
    firsts = [(first_locus(s), s) for s in sources]
    for locus, _ in firsts:
        if locus is not None and locus[0] not in rank:
            rank[locus[0]] = len(rank)
    keyed = sorted(firsts, key=lambda f: (rank[f[0][0]], f[0][1]) if f[0] else (-1, 0))
    return [s for _, s in keyed]


def _produce(sources: list[VcfSource], capacity: int, out: queue.Queue, stop: threading.Event) -> None:
    order = OrderChecker()
    try:
        for source in sources:
            for block in read_blocks(source, capacity, order):
                while not stop.is_set():
                    try:
                        out.put((source, block), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        out.put(_DONE)
    except BaseException as err:  # handed to the consumer, which re-raises it
        out.put(err)


def _blocks(sources: list[VcfSource], capacity: int) -> Iterator[tuple[VcfSource, SiteBlock]]:
    """Blocks of all sources in order, decoded on a background thread."""
    handoff: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(sources, capacity, handoff, stop), daemon=True)
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
        worker.join()


class _BackgroundWriter:
    """Runs Zarr writes on their own thread, in order (Blosc releases the GIL).

    At most one write waits; an error on the writer thread is raised by the
    next :meth:`submit` or by :meth:`close`.
    """

    def __init__(self) -> None:
        self.pending: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
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
    import cyvcf2

    total = 0
    for source in sources:
        try:
            reader = cyvcf2.VCF(str(source.path))
            count = reader.num_records
            reader.close()
        except Exception:
            return None
        if count is None or count < 0:
            return None
        total += count
    return total


def ingest_files(store: str | os.PathLike, vcfs: Sequence[str | os.PathLike], *,
                 persons: str | os.PathLike | None, overwrite: bool, progress: bool | None,
                 layout: ChunkLayout | None):
    """:func:`genoquery.ingest` (documented there)."""
    from genoquery.query.store import open as open_store

    if not vcfs:
        raise InputFileError("(command line)", "no VCF/BCF files given", fix="name at least one input file")
    layout = layout or ChunkLayout()
    sources = [open_source(p) for p in vcfs]
    _check_same_samples(sources)
    person_table = read_person_table(persons) if persons is not None else None
    contigs = _merged_contigs(sources)
    sources = _order_sources(sources, contigs)
    samples = list(sources[0].samples)
    groupings = sample_groups(person_table, samples) if person_table is not None else ()
    show = progress if progress is not None else os.isatty(2)
    with staged_store(store, overwrite) as staging:
        counts = _build(staging, sources, samples, contigs, groupings, person_table, layout, show)
        write_marker(staging, {"samples": len(samples), "sites": counts["sites"],
                               "variants": counts["variants"], "tool": _tool_version(),
                               "groupings": [g.column for g in groupings]})
    return open_store(store)


def _build(staging: Path, sources: list[VcfSource], samples: list[str],
           contigs: list[tuple[str, int | None]], groupings: tuple[SampleGroups, ...],
           person_table, layout: ChunkLayout, show_progress: bool) -> dict[str, int]:
    genotypes = GenotypeWriter(staging / GENOTYPES, len(samples), layout)
    index = IndexWriter(staging / INDEX_FILE)
    records = {s.path: 0 for s in sources}
    filters = list(dict.fromkeys(f for s in sources for f in s.filters))
    known_contigs = {c for c, _ in contigs}
    cells = Cells.build(len(samples), groupings)
    n_variants = 0
    bar = tqdm(total=_total_records(sources) if show_progress else None, unit="rec",
               unit_scale=True, desc="ingest", disable=not show_progress)
    patterns = HaploidPatterns(len(samples))
    writer = _BackgroundWriter()
    try:
        for source, block in _blocks(sources, layout.variant_shard):
            for contig in block.contig:
                if contig not in known_contigs:
                    known_contigs.add(contig)
                    contigs.append((contig, None))
            for names in block.filters:
                filters.extend(f for f in names if f not in filters)
            gt = block.gt[: block.n]
            stats = block_stats(gt, np.fromiter(map(len, block.alleles), np.int64), cells)
            codes = encode_block(gt, patterns)
            first_row = genotypes.reserve(block.n)
            firsts = genotypes.reserve_codes(codes)
            writer.submit(genotypes.write, first_row, gt, block.phased[: block.n])
            writer.submit(genotypes.write_codes, codes)
            index.add_block(block, first_row, str(source.path), stats, codes, *firsts)
            records[source.path] += block.n
            n_variants += len(stats.row)
            bar.update(block.n)
        writer.submit(genotypes.flush_codes)
    finally:
        bar.close()
        writer.close()
    genotypes.write_small_array("haploid_mask", patterns.array(), ("haploid_patterns", "sample_octets"))
    index.add_samples(samples, [str(sources[0].path)] * len(samples))
    index.add_contigs(contigs)
    for source in sources:
        index.add_provenance(str(source.path.absolute()), source.size, source.sha256, source.kind,
                             records[source.path], len(source.samples), _tool_version())
    if person_table is not None:
        index.add_persons(person_table)
    write_variant_arrays(genotypes, index, samples, contigs, filters)
    genotypes.finish()
    index.finish()
    return {"sites": genotypes.n_variants, "variants": n_variants}
