"""A worker's part of an ingest: one partition of a batch (a file, or a region of an indexed
file), decoded, counted, encoded and written."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from genoquery.errors import InputFileError
from genoquery.ingest.cluster.rows import GENOTYPE, PHASED, CallArrays, CallRows, ChunkRowWriter
from genoquery.ingest.format_arrays import CallField
from genoquery.ingest.pipeline import BackgroundWriter, counted_and_encoded, decoded_blocks
from genoquery.ingest.records import RegionCount, count_records, count_region
from genoquery.ingest.regions import FileRegion
from genoquery.ingest.vcf_source import VcfSource
from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.stats.allele_stats import Cells
from genoquery.storage.call_codes import CallCodes, HaploidPatterns
from genoquery.storage.site_block import SiteBlock


@dataclass(frozen=True)
class FilePart:
    """A file of a batch, or its ``region``, whose ``records`` records are the batch's rows from
    ``first``; ``number`` is the region's first record's line number (record number for BCF)."""

    source: VcfSource
    first: int
    records: int
    region: FileRegion | None = None
    number: int = 1


@dataclass(frozen=True)
class BatchTarget:
    """Where and how a batch's call arrays are written: the batch's directory (in the staging
    directory), its ``n_variants`` rows, its fitted layout, FORMAT fields and statistics cells."""

    directory: Path
    n_samples: int
    n_variants: int
    layout: ChunkLayout
    calls: tuple[CallField, ...]
    cells: Cells


@dataclass
class DecodedBlock:
    """A block's sites without their calls (written already), its counts and query encoding
    (haploid patterns numbered within the file), and its FORMAT buffers' widths."""

    block: SiteBlock
    counts: object
    codes: CallCodes
    widths: dict[str, int]


@dataclass
class DecodedFile:
    """What the client commits of a file: its blocks in order, its haploid masks in order of
    their ids, its contigs' runs (contig, first POS and record, last POS and record) for the
    order check across files, and its head and tail rows (:mod:`~genoquery.ingest.cluster.rows`)."""

    blocks: list[DecodedBlock]
    patterns: list[np.ndarray]
    runs: list[tuple[str, int, int, int, int]]
    head: CallRows | None = None
    tail: CallRows | None = None
    widths: dict[str, int] = field(default_factory=dict)


def count_task(part: FilePart) -> RegionCount:
    """A partition's records (and lines), counted on a worker."""
    if part.region is None:
        records = count_records(part.source)
        return RegionCount(0, records, records)
    return count_region(part.source, part.region)


def decode_file(part: FilePart, target: BatchTarget) -> DecodedFile:
    """Decode ``part``'s file or region, write its whole chunk rows and return the rest
    (:class:`DecodedFile`)."""
    layout, specs = target.layout, target.calls
    arrays = CallArrays(target.directory, [GENOTYPE, PHASED, *(s.name for s in specs)], target.n_variants)
    end = part.first + part.records
    background = BackgroundWriter()  # compresses and writes while the next block is counted and encoded
    span = (part.first, end, target.n_variants)
    writer = ChunkRowWriter(partial(background.submit, arrays.write), specs, layout.variant_chunk, span)
    patterns = HaploidPatterns(target.n_samples)
    out = DecodedFile([], patterns.masks, [])
    row = part.first
    try:
        region = None if part.region is None else (part.region, part.number)
        for _, block in decoded_blocks([part.source], layout.variant_chunk, specs, region=region):
            if row + block.n > end:
                _miscounted(part)
            counts, codes = counted_and_encoded(block, target.cells, patterns)
            writer.add(CallRows.of_block(row, block))
            widths = {name: values.shape[2] for name, values in block.calls.items() if values.ndim == 3}
            _add_runs(out.runs, block)
            _drop_calls(block)
            out.blocks.append(DecodedBlock(block, counts, codes, widths))
            for name, width in widths.items():
                out.widths[name] = max(width, out.widths.get(name, 0))
            row += block.n
    finally:
        background.close()
    if row != end:
        _miscounted(part)
    out.head, out.tail = writer.edges()
    return out


def _drop_calls(block: SiteBlock) -> None:
    """Free a written block's call buffers (empty arrays of their own: a view would keep them)."""
    block.gt = np.empty((0, *block.gt.shape[1:]), block.gt.dtype)
    block.phased = np.empty((0, *block.phased.shape[1:]), block.phased.dtype)
    block.calls = {}


def _add_runs(runs: list[tuple[str, int, int, int, int]], block: SiteBlock) -> None:
    for contig, pos, record in zip(block.contig, block.pos, block.record, strict=True):
        if runs and runs[-1][0] == contig:
            runs[-1] = (*runs[-1][:3], pos, record)
        else:
            runs.append((contig, pos, record, pos, record))


def _miscounted(part: FilePart) -> None:
    where = "its index counts" if part.region is None else f"its region {part.region} was counted with"
    raise InputFileError(
        part.source.path,
        f"{where} {part.records} records, and the file holds others (it changed during the ingest?)",
        fix="index it again (bcftools index -f), or ingest it without --cluster/--workers",
    )
