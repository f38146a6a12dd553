"""Ingest: VCF/BCF sources into a store's Zarr genotypes and DuckDB index."""

from genoquery.ingest.pipeline import ingest

__all__ = ["ingest"]
