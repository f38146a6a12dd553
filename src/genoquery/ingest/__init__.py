"""Ingest: VCF/BCF sources into a store's Zarr genotypes and DuckDB index."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genoquery.ingest.zarr_writer import ChunkLayout
    from genoquery.query.store import Store


def ingest(
    store: str | os.PathLike,
    vcfs: Sequence[str | os.PathLike],
    *,
    persons: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    layout: ChunkLayout | None = None,
    batch: str | None = None,
    complete_callset: bool = False,
    allow_ref_conflicts: bool = False,
    match_contig_names: bool = False,
    rename_duplicate_samples: bool = False,
    fields: Sequence[str] | None = None,
    client=None,
) -> Store:
    """Ingest VCF/VCF.gz/BCF files into a new store, one batch per sample set.

    Files with the same samples form one batch (files split by region may be
    given in any order; they are concatenated by their first record); files
    with other samples (another center) form other batches, named after their
    first file, or ``batch``. A sample ID may be in one batch only. Records of
    different batches are one site when CHROM, POS, REF and ALT agree; where a
    batch has no record of a site its samples count as not called, unless
    ``complete_callset`` says absent records mean hom-ref (see
    :mod:`genoquery.index.merge`). Batches whose REF alleles disagree at a position, or
    that spell a contig differently (``20``, ``chr20``), are refused unless
    ``allow_ref_conflicts`` (keep them as different sites) or ``match_contig_names``
    (rename to the first spelling); a sample ID in two batches is refused unless
    ``rename_duplicate_samples`` (the later one becomes ``ID@BATCH``). With ``batch`` on an existing store (and no
    ``overwrite``), the files are **appended** as a new batch: existing genotype
    chunks are not rewritten and the statistics add up (:mod:`genoquery.ingest.append`).
    Kept per record: CHROM to FILTER, GT, and the INFO and FORMAT fields ``fields`` names
    (bcftools-style: ``INFO/AC``, ``FORMAT/DP``; GT always), as VCF Zarr ``variant_<ID>`` and
    ``call_<ID>`` arrays; by default every INFO field and every FORMAT field but those of Number=G
    (PL, GL). ``persons`` (CSV/TSV/Parquet with ``sample_id``) adds
    statistics per ``ancestry`` and ``sex_at_birth`` group. The store appears
    at ``store`` only when complete; on any error nothing there changes.
    Returns the opened :class:`genoquery.Store`. The pipeline is imported on
    first call: its kernels and readers take ~1.5 s to import, which queries
    on an existing store never need. With ``client`` (a ``distributed.Client``) each batch's files
    are decoded and written on its workers, one file a task, into the same store
    (:mod:`genoquery.ingest.cluster`).
    """
    pipeline = import_module("genoquery.ingest.pipeline")
    options = pipeline.BatchOptions(
        complete_callset,
        allow_ref_conflicts,
        match_contig_names,
        rename_duplicate_samples,
        None if fields is None else tuple(fields),
    )
    if batch is not None and not overwrite and import_module("genoquery.storage.staging").is_store(store):
        return import_module("genoquery.ingest.append").append_files(
            store, vcfs, batch=batch, options=options, progress=progress, layout=layout, client=client
        )
    return pipeline.ingest_files(
        store,
        vcfs,
        persons=persons,
        overwrite=overwrite,
        progress=progress,
        layout=layout,
        batch=batch,
        options=options,
        client=client,
    )


__all__ = ["ingest"]
