"""Ingest: VCF/BCF sources into a store's Zarr genotypes and DuckDB index."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genoquery.ingest.zarr_writer import ChunkLayout
    from genoquery.query.store import Store


def ingest(store: str | os.PathLike, vcfs: Sequence[str | os.PathLike], *,
           persons: str | os.PathLike | None = None, overwrite: bool = False,
           progress: bool | None = None, layout: ChunkLayout | None = None) -> Store:
    """Ingest VCF/VCF.gz/BCF files holding the same samples into a new store.

    Files split by region may be given in any order; they are concatenated by
    their first record. ``persons`` (CSV/TSV/Parquet with ``sample_id``) adds
    statistics per ``ancestry`` and ``sex_at_birth`` group. The store appears
    at ``store`` only when complete; on any error nothing there changes.
    Returns the opened :class:`genoquery.Store`. The pipeline is imported on
    first call: its kernels and readers take ~1.5 s to import, which queries
    on an existing store never need.
    """
    from genoquery.ingest.pipeline import ingest_files

    return ingest_files(store, vcfs, persons=persons, overwrite=overwrite, progress=progress, layout=layout)


__all__ = ["ingest"]
