"""The store format's names, version and values, in one place.

A store is a directory: the marker :data:`MARKER` (with :data:`FORMAT_VERSION`), the DuckDB
index :data:`INDEX_FILE` (:mod:`genoquery.storage.schema`), its lookup files under
:data:`LOOKUP_DIR` (:mod:`genoquery.storage.lookup_table`), one VCF Zarr group per batch at
:func:`batch_path`, and the write lock :data:`LOCK` (:mod:`genoquery.storage.staging`).
"""

from __future__ import annotations

MARKER = "genoquery.json"
FORMAT_VERSION = 2
INDEX_FILE = "index.duckdb"
LOOKUP_DIR = "lookup"
BATCHES = "batches"  # a store's directory of per-batch Zarr groups, NAME.zarr
LOCK = ".lock"

MISSING = -1  # an allele index that was not called (VCF ``.``), as in VCF Zarr
FILL = -2  # the second allele slot of a haploid call, VCF Zarr's fill value


def batch_path(name: str) -> str:
    """A batch's Zarr group, relative to the store."""
    return f"{BATCHES}/{name}.zarr"
