"""The client's part of an ingest on a Dask cluster: partitions out, their results in, in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from genoquery.ingest.cluster.rows import GENOTYPE, PHASED, CallArrays
from genoquery.ingest.cluster.task import BatchTarget, DecodedFile, FilePart, count_task, decode_file
from genoquery.ingest.format_arrays import CallField
from genoquery.ingest.pipeline import BatchSites
from genoquery.ingest.records import OrderChecker
from genoquery.ingest.regions import file_regions
from genoquery.ingest.sources import record_count
from genoquery.ingest.vcf_source import VcfSource
from genoquery.ingest.zarr_writer import GenotypeWriter
from genoquery.query.cluster.partitions import PARTITION_CALLS
from genoquery.query.cluster.tasks import ordered_results
from genoquery.stats.allele_stats import Cells
from genoquery.storage.call_codes import HaploidPatterns

PARTS_PER_WORKER = 4


def write_on_cluster(
    client,
    sources: list[VcfSource],
    genotypes: GenotypeWriter,
    calls: Sequence[CallField],
    cells: Cells,
    patterns: HaploidPatterns,
    sites: BatchSites,
    bar: tqdm,
) -> None:
    """Write the batch of ``sources`` (in order) on ``client``'s workers, a file or a region of an
    indexed file each, and commit their results here in order, as
    :func:`~genoquery.ingest.pipeline.build_batch` does in one process."""
    parts = _partitions(client, sources, genotypes.n_samples, genotypes.layout.variant_chunk, bar)
    n_variants = sum(p.records for p in parts)
    genotypes.reserve(n_variants)
    target = BatchTarget(
        genotypes.directory,
        genotypes.n_samples,
        n_variants,
        genotypes.layout,
        tuple(calls),
        cells,
    )
    if bar.total is None:
        bar.reset(total=n_variants)
    edges = CallArrays(target.directory, [GENOTYPE, PHASED, *(s.name for s in calls)], n_variants)
    order = OrderChecker()
    weights = [p.records for p in parts]
    results = ordered_results(client, decode_file, parts, (target,), weights, bar, what="ingest")
    for part, decoded in zip(parts, results, strict=True):
        _commit_file(part, decoded, genotypes, edges, patterns, sites, order)
    _remove_partial_writes(Path(target.directory))
    genotypes.flush_codes()


def _remove_partial_writes(directory: Path) -> None:
    """Delete what workers killed while zarr wrote a chunk left in the batch's ``directory`` (in the
    staging directory): zarr writes a chunk to ``KEY.UUID.partial``, then renames it. The killed
    task ran again and wrote its chunks anew; every task has ended, so no write is in flight."""
    for path in directory.rglob("*.partial"):
        path.unlink()


def _partitions(client, sources: list[VcfSource], n_samples: int, chunk: int, bar: tqdm) -> list[FilePart]:
    """The batch's partitions in order, each with its first row: the regions of each file with an
    index and more records than a partition holds, else the file; records counted on the workers
    where no index counts them (a region's first line number follows from the counts of the
    regions before). A partition holds about :data:`PARTITION_CALLS` calls, in whole chunk rows of
    ``chunk``, and fewer when the batch would give the cluster's workers under
    :data:`PARTS_PER_WORKER` partitions each (their last tasks would leave workers idle)."""
    indexed = [record_count(source) for source in sources]
    workers = max(1, len(client.scheduler_info()["workers"]))
    shared = -(-sum(n or 0 for n in indexed) // (PARTS_PER_WORKER * workers))
    rows = max(1, min(PARTITION_CALLS // max(n_samples, 1), shared) // chunk) * chunk
    pending = []
    for source, records in zip(sources, indexed, strict=True):
        regions = file_regions(source, rows)
        if regions is None:
            pending.append(FilePart(source, 0, -1 if records is None else records))
        else:
            pending.extend(FilePart(source, 0, -1, region) for region in regions)
    unknown = [p for p in pending if p.records < 0]
    counted = ordered_results(client, count_task, unknown, (), [0] * len(unknown), bar, what="ingest")
    counts = {id(p): c for p, c in zip(unknown, counted, strict=True)}
    parts, row, number = [], 0, 1
    for part in pending:
        found = counts.get(id(part))
        if part.region is not None:
            number = found.before + 1 if part.region.index == 0 else number
        records = part.records if found is None else found.records
        parts.append(replace(part, first=row, records=records, number=number))
        row += records
        number += 0 if found is None else found.lines
    return parts


def _commit_file(
    part: FilePart,
    decoded: DecodedFile,
    genotypes: GenotypeWriter,
    edges: CallArrays,
    patterns: HaploidPatterns,
    sites: BatchSites,
    order: OrderChecker,
) -> None:
    """Commit one file's results: its order after the files before it, its shared chunk rows, its
    query encoding renumbered and appended, its index rows."""
    declared = {name for name, _ in part.source.contigs}
    for contig, first_pos, first_record, last_pos, last_record in decoded.runs:
        order.check(part.source, declared, contig, first_pos, first_record)
        order.check(part.source, declared, contig, last_pos, last_record)
    genotypes.widen_calls(decoded.widths)
    for rows in (decoded.head, decoded.tail):
        if rows is not None:
            edges.write(rows)
    pattern_ids = patterns.merged_ids(decoded.patterns)
    row = part.first
    for item in decoded.blocks:
        block, codes = item.block, item.codes
        codes.haploid_pattern = pattern_ids[codes.haploid_pattern]
        genotypes.add_wide(row, block.wide)
        firsts = genotypes.reserve_codes(codes)
        genotypes.write_codes(codes)
        for name, width in item.widths.items():
            genotypes.narrow[name].append((row, block.n, width, block.absent[name]))
        sites.add(part.source, block, row, item.counts, codes, firsts)
        row += block.n
