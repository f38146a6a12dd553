"""An ingest's inputs, whatever their kind: VCF, VCF.gz and BCF files
(:mod:`~genoquery.ingest.vcf_source`, :mod:`~genoquery.ingest.records`) and VCF Zarr stores
(:mod:`~genoquery.ingest.vcz_source`), opened and read as the same blocks of sites."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cyvcf2

from genoquery.ingest.format_arrays import CallField
from genoquery.ingest.records import OrderChecker, read_blocks
from genoquery.ingest.regions import FileRegion
from genoquery.ingest.vcf_source import VcfSource, open_source
from genoquery.ingest.vcz_source import KIND as VCZ
from genoquery.ingest.vcz_source import VczReader, open_group, open_vcz
from genoquery.storage.site_block import SiteBlock


def open_input(path: str | os.PathLike) -> VcfSource:
    """A directory as a VCF Zarr store, anything else as a VCF/BCF file; checked as each is."""
    return open_vcz(path) if Path(path).is_dir() else open_source(path)


def read_input(
    source: VcfSource,
    capacity: int,
    order: OrderChecker | None = None,
    fields: Sequence[CallField] = (),
    new_block: Callable[[], SiteBlock] | None = None,
    region: tuple[FileRegion, int] | None = None,
) -> Iterator[SiteBlock]:
    """The source's sites in order, ``capacity`` at a time, with the kept FORMAT ``fields``, in
    blocks made by ``new_block`` (:func:`~genoquery.ingest.records.read_blocks`, which reads a
    VCF/BCF file's ``region``); one ``order`` checks sorting across inputs."""
    if source.kind == VCZ:
        return VczReader(source, capacity, order or OrderChecker(), fields, new_block).blocks()
    return read_blocks(source, capacity, order, fields, new_block, region)


def first_locus(source: VcfSource) -> tuple[str, int] | None:
    """The CHROM and POS of a source's first record, or None for a source without records."""
    if source.kind == VCZ:
        return VczReader(source, 1, OrderChecker(), ()).first_locus()
    for block in read_blocks(source, 1):
        return block.contig[0], block.pos[0]
    return None


def record_count(source: VcfSource) -> int | None:
    """How many records the source holds, where its index (or VCF Zarr shape) says; else None."""
    if source.kind == VCZ:
        return open_group(source.path)["variant_position"].shape[0]
    try:
        reader = cyvcf2.VCF(str(source.path))
        count = reader.num_records
        reader.close()
    except Exception:  # no index: htslib cannot count without reading the file
        return None
    return count if count is not None and count >= 0 else None
