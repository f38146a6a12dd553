"""The store format's names, version and values, in one place.

A store is a directory: the marker :data:`MARKER` (with :data:`FORMAT_VERSION`), the DuckDB
index :data:`INDEX_FILE` (:mod:`genoquery.storage.schema`), its lookup files under
:data:`LOOKUP_DIR` (:mod:`genoquery.storage.lookup_table`), one directory per batch at
:func:`batch_path`, and the write lock :data:`LOCK` (:mod:`genoquery.storage.staging`).

A batch's directory holds two Zarr groups side by side: :data:`VCF_GROUP`, a VCF Zarr dataset
(Zarr format 2, unsharded, one chunk size along ``variants``) that vcztools, sgkit and xarray
read as they read bio2zarr's output, and :data:`QUERY_GROUP`, genoquery's query encoding of the
same calls (Zarr format 3, sharded, :mod:`genoquery.storage.call_codes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MARKER = "genoquery.json"
FORMAT_VERSION = 3
UPGRADABLE_VERSIONS = (2,)  # stores `genoquery upgrade` rewrites to FORMAT_VERSION
INDEX_FILE = "index.duckdb"
LOOKUP_DIR = "lookup"
BATCHES = "batches"  # a store's directory of per-batch directories
LOCK = ".lock"
VCF_GROUP = "genotypes.vcz"  # in a batch's directory: the VCF Zarr dataset
QUERY_GROUP = "query.zarr"  # in a batch's directory: the query encoding
VCF_ZARR_VERSION = "0.4"

MISSING = -1  # an allele index that was not called (VCF ``.``), as in VCF Zarr
FILL = -2  # the second allele slot of a haploid call, VCF Zarr's fill value
# Missing and fill values of the INFO and FORMAT arrays (``variant_<ID>``, ``call_<ID>``), bio2zarr's:
# a float's are the NaNs htslib uses for missing and vector end
INT_MISSING, INT_FILL = -1, -2
FLOAT_MISSING, FLOAT_FILL = np.array([0x7F800001, 0x7F800002], dtype=np.int32).view(np.float32)
STR_MISSING, STR_FILL = ".", ""


def batch_path(name: str) -> str:
    """A batch's directory, relative to the store: ``batches/NAME`` (``NAME.vN`` once rewritten)."""
    return f"{BATCHES}/{name}"


def vcf_group(batch_dir: Path) -> Path:
    """The VCF Zarr dataset of the batch whose directory is ``batch_dir``."""
    return batch_dir / VCF_GROUP


def query_group(batch_dir: Path) -> Path:
    """The query encoding of the batch whose directory is ``batch_dir``."""
    return batch_dir / QUERY_GROUP
