"""DuckDB table definitions of a store's index (``STORE/index.duckdb``).

Positions are 1-based as in VCF; ``allele`` is the 1-based ALT index within a site.

A store holds one or more **batches** (a genome center's delivery, or a release):
each is a VCF Zarr group ``STORE/batches/NAME.zarr`` over its own samples and
sites, never rewritten by later batches. Global sample indexes are
``batches.sample_offset`` plus the sample's column in its batch.

``batch_sites`` has a row per record of each batch: ``batch_row`` is its row in the
batch's arrays, ``site_row`` the global site it belongs to. Records of different
batches are one site when CHROM, POS, REF and the ALT list all agree (as
``bcftools merge -m none``); the k-th such record of a batch matches the k-th of
another. ``sites`` (the union, in genome order) and the whole-store statistics in
``variants`` and ``variant_group_stats`` are derived from the per-batch counts
(:mod:`genoquery.index.merge`), so adding a batch adds its counts.

Per batch record: ``info`` is its INFO column as text (``.`` when empty; NULL in stores upgraded
from format 2, which did not keep it), parsed into the ``variant_<ID>`` arrays of the batch's VCF
Zarr group when the group is written. ``n_carriers`` counts called calls that are not hom-ref,
``dense_row`` is its row in ``call_genotype_code`` (NULL for a sparse record) and
``haploid_pattern`` its row in ``haploid_mask`` (NULL when every call is diploid);
its listed calls are rows ``listed_start`` .. ``listed_start + n_listed - 1`` of
``listed_call_sample`` and ``listed_call_genotype``, its missing calls
``missing_start`` .. of ``missing_call_token``; a sparse record with few listed
calls also holds them in ``inline_calls``. See :mod:`genoquery.storage.call_codes`.

``batch_files`` is the manifest of every file of each batch's Zarr group (path
relative to the store, size, sha256), written when the batch is; with ``provenance``
(each input's sha256, size, records, samples and batch) it is what
``genoquery verify`` checks the store against.

A withdrawn sample keeps its row in ``samples`` (its index and batch) with
``withdrawn_at`` and ``withdrawn_reason`` set; no count, statistic or query
includes it. ``erased_at`` is when ``genoquery compact`` rewrote its batch without its
genotypes. ``store_log`` records every append, withdrawal and compaction.

Per-batch counts are by **cell**: ``grouping`` and ``group_value`` are '' for every
sample of the batch, else a person-table column and its value. ``batch_cells``
counts the batch's samples per cell; ``batch_site_counts`` has a record's
``uncalled`` allele slots and ``incomplete`` calls (rows of zeros left out), and
``batch_allele_counts`` each ALT allele's ``ac``, ``n_het``, ``n_hom_alt``, ``n_hemi``
(rows of zeros left out). See :mod:`genoquery.stats.allele_stats` for definitions.
"""

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.arrow import to_numpy
from genoquery.cores import usable_cores

# The columns of ``variants`` a query returns, in order (Store.variants, lookups, lookup files).
VARIANT_COLUMNS = (
    "contig",
    "pos",
    "ref",
    "alt",
    "id",
    "filter",
    "qual",
    "ac",
    "an",
    "af",
    "n_het",
    "n_hom_alt",
    "n_hemi",
    "n_missing",
    "variant_key",
    "allele",
    "site_row",
)
# The statistics among them, which a query by group or for a cohort replaces.
STAT_COLUMNS = ("ac", "an", "af", "n_het", "n_hom_alt", "n_hemi", "n_missing")


def allele_keys(table: pa.Table) -> np.ndarray:
    """One int64 per row of a table with ``site_row`` and ``allele`` (an ALT allele of a site),
    ordered as (site_row, allele): ``site_row * 65536 + allele``."""
    return to_numpy(table["site_row"]).astype(np.int64) * 65536 + to_numpy(table["allele"])


INDEX_CATALOG = "gq_index"


def open_index(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the index file ``path`` on a DuckDB instance of its own. DuckDB
    shares one instance per file among a process's connections while any of them is open, so a
    plain ``connect(path)`` after an append or a withdrawal replaced the file would still read
    the file as it was (and an append planned on it would reuse the last batch's number);
    attached to a fresh in-memory instance, the file is opened anew. Its threads are the cores
    this process may use (a Dask worker confined to one core queries on one thread)."""
    con = duckdb.connect(":memory:", config={"threads": usable_cores()})
    con.execute(f"ATTACH {_quoted(str(path))} AS {INDEX_CATALOG} (READ_ONLY)")
    con.execute(f"USE {INDEX_CATALOG}")
    return con


def index_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of ``con`` (from :func:`open_index`, or a plain connection to an index file) on the
    index: a DuckDB cursor starts on its instance's own database. Safe beside other threads'
    queries on ``con``, which it does not use."""
    cursor = con.cursor()
    try:
        cursor.execute(f"USE {INDEX_CATALOG}")
    except duckdb.CatalogException:  # not attached: the cursor is on the index file already
        pass
    return cursor


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


TABLES = """
CREATE TABLE contigs (contig_index SMALLINT NOT NULL, contig VARCHAR NOT NULL, length BIGINT);
CREATE TABLE batches (
    batch SMALLINT NOT NULL, name VARCHAR NOT NULL, path VARCHAR NOT NULL, sample_offset INTEGER NOT NULL,
    n_samples INTEGER NOT NULL, complete_callset BOOLEAN NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE samples (sample_index INTEGER NOT NULL, sample_id VARCHAR NOT NULL, source VARCHAR,
    batch SMALLINT NOT NULL, withdrawn_at TIMESTAMPTZ, withdrawn_reason VARCHAR, erased_at TIMESTAMPTZ);
CREATE TABLE batch_files (batch SMALLINT NOT NULL, path VARCHAR NOT NULL, size BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL);
CREATE TABLE store_log (logged_at TIMESTAMPTZ NOT NULL, action VARCHAR NOT NULL, detail VARCHAR NOT NULL,
    reason VARCHAR);
CREATE TABLE batch_sites (
    batch SMALLINT NOT NULL, batch_row BIGINT NOT NULL, site_row BIGINT,
    contig VARCHAR NOT NULL, pos BIGINT NOT NULL, id VARCHAR,
    alleles VARCHAR[] NOT NULL, qual REAL, filters VARCHAR[] NOT NULL, source VARCHAR NOT NULL,
    record BIGINT NOT NULL, n_carriers INTEGER NOT NULL, dense_row BIGINT, haploid_pattern INTEGER,
    listed_start BIGINT NOT NULL, n_listed INTEGER NOT NULL, missing_start BIGINT NOT NULL,
    n_missing_tokens INTEGER NOT NULL, inline_calls BIGINT[], info VARCHAR);
CREATE TABLE batch_cells (batch SMALLINT NOT NULL, grouping VARCHAR NOT NULL, group_value VARCHAR NOT NULL,
    n_samples BIGINT NOT NULL);
CREATE TABLE batch_site_counts (batch SMALLINT NOT NULL, batch_row BIGINT NOT NULL, grouping VARCHAR NOT NULL,
    group_value VARCHAR NOT NULL, uncalled BIGINT NOT NULL, incomplete BIGINT NOT NULL);
CREATE TABLE batch_allele_counts (batch SMALLINT NOT NULL, batch_row BIGINT NOT NULL, allele SMALLINT NOT NULL,
    grouping VARCHAR NOT NULL, group_value VARCHAR NOT NULL,
    ac BIGINT NOT NULL, n_het BIGINT NOT NULL, n_hom_alt BIGINT NOT NULL, n_hemi BIGINT NOT NULL);
CREATE TABLE provenance (
    path VARCHAR NOT NULL, size BIGINT NOT NULL, sha256 VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    records BIGINT NOT NULL, samples INTEGER NOT NULL, tool VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL,
    batch SMALLINT);
"""

# The union of the batches and its statistics: rebuilt by index/merge.py after each change.
DERIVED = """
CREATE OR REPLACE TABLE sites (
    site_row BIGINT NOT NULL, contig VARCHAR NOT NULL, pos BIGINT NOT NULL, id VARCHAR,
    alleles VARCHAR[] NOT NULL, qual REAL, filters VARCHAR[] NOT NULL, n_batches INTEGER NOT NULL);
CREATE OR REPLACE TABLE variants (
    variant_key VARCHAR NOT NULL, contig VARCHAR NOT NULL, pos BIGINT NOT NULL,
    ref VARCHAR NOT NULL, alt VARCHAR NOT NULL, id VARCHAR, filter VARCHAR, qual REAL,
    ac BIGINT NOT NULL, an BIGINT NOT NULL, af DOUBLE,
    n_het BIGINT NOT NULL, n_hom_alt BIGINT NOT NULL, n_hemi BIGINT NOT NULL, n_missing BIGINT NOT NULL,
    allele SMALLINT NOT NULL, site_row BIGINT NOT NULL);
CREATE OR REPLACE TABLE lookup_files (name VARCHAR NOT NULL, rows BIGINT NOT NULL);
CREATE OR REPLACE TABLE variant_group_stats (
    site_row BIGINT NOT NULL, allele SMALLINT NOT NULL, grouping VARCHAR NOT NULL, group_value VARCHAR NOT NULL,
    ac BIGINT NOT NULL, an BIGINT NOT NULL, af DOUBLE,
    n_het BIGINT NOT NULL, n_hom_alt BIGINT NOT NULL, n_hemi BIGINT NOT NULL, n_missing BIGINT NOT NULL);
"""

# Built after each merge: ART indexes for point lookups by key and rsID, and of one
# site's query encoding (carriers of one variant: 0.5 ms instead of a 2 ms scan). Rows are
# stored in genome order, so region scans prune row groups by their min/max (zonemaps)
# without an index; sample IDs are checked unique by the ingest (an ART index on
# 10^5 sample IDs costs more bytes than the samples themselves).
INDEXES = """
CREATE INDEX variants_key ON variants (variant_key);
CREATE INDEX variants_id ON variants (id);
CREATE INDEX group_stats_allele ON variant_group_stats (site_row, allele);
CREATE INDEX batch_sites_site ON batch_sites (site_row);
"""

# Created by `genoquery genes` (index/genes.py), replaced on re-import; 1-based inclusive.
GENES = """
CREATE OR REPLACE TABLE genes (
    gene_id VARCHAR NOT NULL, gene_name VARCHAR, gene_type VARCHAR, contig VARCHAR NOT NULL,
    start BIGINT NOT NULL, "end" BIGINT NOT NULL, strand VARCHAR, source VARCHAR NOT NULL);
"""
