"""The client's part of an ingest on a Dask cluster: partitions out, files' results in, in order."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from genoquery.ingest.cluster.rows import GENOTYPE, PHASED, CallArrays
from genoquery.ingest.cluster.task import BatchTarget, DecodedFile, FilePart, count_task, decode_file
from genoquery.ingest.format_arrays import CallField
from genoquery.ingest.pipeline import BatchSites
from genoquery.ingest.records import OrderChecker
from genoquery.ingest.sources import record_count
from genoquery.ingest.vcf_source import VcfSource
from genoquery.ingest.zarr_writer import GenotypeWriter
from genoquery.query.cluster.tasks import ordered_results
from genoquery.stats.allele_stats import Cells
from genoquery.storage.call_codes import HaploidPatterns


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
    """Write the batch of ``sources`` (in order) on ``client``'s workers, one file each, and commit
    their results here in order, as :func:`~genoquery.ingest.pipeline.build_batch` does in one process."""
    counts = _record_counts(client, sources, bar)
    firsts = [sum(counts[:i]) for i in range(len(sources))]
    parts = [FilePart(s, first, n) for s, first, n in zip(sources, firsts, counts, strict=True)]
    n_variants = sum(counts)
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
    results = ordered_results(client, decode_file, parts, (target,), counts, bar, what="ingest")
    for part, decoded in zip(parts, results, strict=True):
        _commit_file(part, decoded, genotypes, edges, patterns, sites, order)
    genotypes.flush_codes()


def _record_counts(client, sources: list[VcfSource], bar: tqdm) -> list[int]:
    """Each file's records: its index's count, else counted on the workers."""
    counts = [record_count(s) for s in sources]
    unknown = [s for s, n in zip(sources, counts, strict=True) if n is None]
    if unknown:
        counted = ordered_results(client, count_task, unknown, (), [0] * len(unknown), bar, what="ingest")
        counts = [next(counted) if n is None else n for n in counts]
    return counts


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
