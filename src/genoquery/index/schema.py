"""DuckDB table definitions of a store's index (``STORE/index.duckdb``).

Positions are 1-based as in VCF. ``site_row`` is the site's row in the Zarr
genotype arrays; ``allele`` is the 1-based ALT index within the site.

``sites.n_carriers`` counts called calls that are not hom-ref, ``dense_row`` is the
site's row in ``call_genotype_code`` (NULL for a sparse site) and ``haploid_pattern``
its row in ``haploid_mask`` (NULL when every call is diploid); its listed calls are
rows ``listed_start`` .. ``listed_start + n_listed - 1`` of ``listed_call_sample`` and
``listed_call_genotype``, its missing calls ``missing_start`` .. of ``missing_call_token``;
a sparse site with few listed calls also holds them in ``inline_calls``.
See :mod:`genoquery.ingest.call_codes`.
"""

INDEX_FILE = "index.duckdb"

TABLES = """
CREATE TABLE contigs (contig_index SMALLINT NOT NULL, contig VARCHAR NOT NULL, length BIGINT);
CREATE TABLE samples (sample_index INTEGER NOT NULL, sample_id VARCHAR NOT NULL, source VARCHAR);
CREATE TABLE sites (
    site_row BIGINT NOT NULL, contig VARCHAR NOT NULL, pos BIGINT NOT NULL, id VARCHAR,
    alleles VARCHAR[] NOT NULL, qual REAL, filters VARCHAR[] NOT NULL, source VARCHAR NOT NULL,
    record BIGINT NOT NULL, n_carriers INTEGER NOT NULL, dense_row BIGINT, haploid_pattern INTEGER,
    listed_start BIGINT NOT NULL, n_listed INTEGER NOT NULL, missing_start BIGINT NOT NULL,
    n_missing_tokens INTEGER NOT NULL, inline_calls BIGINT[]);
CREATE TABLE variants (
    variant_key VARCHAR NOT NULL, contig VARCHAR NOT NULL, pos BIGINT NOT NULL,
    ref VARCHAR NOT NULL, alt VARCHAR NOT NULL, id VARCHAR, filter VARCHAR, qual REAL,
    ac BIGINT NOT NULL, an BIGINT NOT NULL, af DOUBLE,
    n_het BIGINT NOT NULL, n_hom_alt BIGINT NOT NULL, n_hemi BIGINT NOT NULL, n_missing BIGINT NOT NULL,
    allele SMALLINT NOT NULL, site_row BIGINT NOT NULL);
CREATE TABLE variant_group_stats (
    site_row BIGINT NOT NULL, allele SMALLINT NOT NULL, grouping VARCHAR NOT NULL, group_value VARCHAR NOT NULL,
    ac BIGINT NOT NULL, an BIGINT NOT NULL, af DOUBLE,
    n_het BIGINT NOT NULL, n_hom_alt BIGINT NOT NULL, n_hemi BIGINT NOT NULL, n_missing BIGINT NOT NULL);
CREATE TABLE provenance (
    path VARCHAR NOT NULL, size BIGINT NOT NULL, sha256 VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    records BIGINT NOT NULL, samples INTEGER NOT NULL, tool VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL);
"""

# Built after the bulk load: ART indexes for point lookups by key and rsID, and of one
# site's query encoding (carriers of one variant: 0.5 ms instead of a 2 ms scan). Rows are
# stored in genome order, so region scans prune row groups by their min/max (zonemaps)
# without an index; sample IDs are checked unique by the ingest (an ART index on
# 10^5 sample IDs costs more bytes than the samples themselves).
INDEXES = """
CREATE INDEX variants_key ON variants (variant_key);
CREATE INDEX variants_id ON variants (id);
CREATE INDEX group_stats_allele ON variant_group_stats (site_row, allele);
CREATE INDEX sites_row ON sites (site_row);
"""

# Created by `genoquery genes` (index/genes.py), replaced on re-import; 1-based inclusive.
GENES = """
CREATE OR REPLACE TABLE genes (
    gene_id VARCHAR NOT NULL, gene_name VARCHAR, gene_type VARCHAR, contig VARCHAR NOT NULL,
    start BIGINT NOT NULL, "end" BIGINT NOT NULL, strand VARCHAR, source VARCHAR NOT NULL);
"""
