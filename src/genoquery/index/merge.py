"""The union of a store's batches: global sites and whole-store statistics.

Records of different batches are one site when CHROM, POS, REF and the ALT list
agree (``bcftools merge -m none``); the k-th such record of a batch matches the
k-th of every other. Sites are numbered in genome order: contigs in the order their
first record arrived (batch, then row: a single file's records keep their order),
then POS, then arrival.

Statistics are sums of the batches' per-cell counts. For a batch without a record
of a site, its samples hold the batch's absent call there
(:attr:`genoquery.storage.batches.Batch.absent_call`, the one home of that rule: not
called, each adding 2 uncalled allele slots and one incomplete call, so nothing to AN
and one to ``n_missing``; or hom-ref for a complete callset, 2 to AN each, as
``bcftools merge -0``), registered here per batch as ``gq_absent``
(:attr:`~genoquery.storage.batches.Batch.absent_terms`). Then, per cell:

    an        = 2 * samples - uncalled (present batches) - absent uncalled slots (absent batches)
    n_missing = incomplete (present batches) + absent incomplete calls (absent batches)

Everything here is SQL over the index, so it costs time in sites and cells,
never in samples: adding a batch re-derives these tables without reading genotypes.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from genoquery.errors import InputFileError
from genoquery.storage.batches import read_batches
from genoquery.storage.lookup_table import write_lookup_table
from genoquery.storage.schema import DERIVED, INDEXES

_SITE_ROWS = """
CREATE OR REPLACE TEMP TABLE gq_site_rows AS
WITH keyed AS (
    SELECT batch, batch_row, contig, pos, alleles,
           row_number() OVER (PARTITION BY batch, contig, pos, alleles ORDER BY batch_row) AS dup
    FROM batch_sites),
keys AS (
    SELECT k.contig, k.pos, k.alleles, k.dup, min(k.batch * 1099511627776 + k.batch_row) AS arrival
    FROM keyed k GROUP BY ALL),
ranked AS (  -- contigs in order of first arrival: a single file's records keep their order
    SELECT *, min(arrival) OVER (PARTITION BY contig) AS contig_arrival FROM keys),
numbered AS (
    SELECT *, row_number() OVER (ORDER BY contig_arrival, pos, arrival) - 1 AS site_row FROM ranked)
SELECT keyed.batch, keyed.batch_row, numbered.site_row
FROM keyed JOIN numbered USING (contig, pos, alleles, dup)
"""

_SITES = """
INSERT INTO sites
SELECT r.site_row, any_value(b.contig), any_value(b.pos),
       arg_min(b.id, b.batch) FILTER (WHERE b.id IS NOT NULL), any_value(b.alleles), max(b.qual),
       CASE WHEN count(*) = 1 THEN any_value(b.filters)
            WHEN list_contains(list_distinct(flatten(list(b.filters))), 'PASS')
                 AND len(list_distinct(flatten(list(b.filters)))) > 1
            THEN list_sort(list_filter(list_distinct(flatten(list(b.filters))), lambda f: f <> 'PASS'))
            ELSE list_sort(list_distinct(flatten(list(b.filters)))) END,
       count(*)
FROM batch_sites b JOIN gq_site_rows r USING (batch, batch_row)
GROUP BY r.site_row ORDER BY r.site_row
"""

_STATS = """
CREATE OR REPLACE TEMP TABLE gq_stats AS
WITH cell_sizes AS (  -- every sample's cell is there even without samples (a sites-only VCF)
    SELECT grouping, group_value, sum(total) AS total, sum(absent_uncalled) AS absent_uncalled,
           sum(absent_incomplete) AS absent_incomplete FROM (
        SELECT '' AS grouping, '' AS group_value, 0 AS total, 0 AS absent_uncalled, 0 AS absent_incomplete
        UNION ALL
        SELECT c.grouping, c.group_value, c.n_samples, a.uncalled * c.n_samples, a.incomplete * c.n_samples
        FROM batch_cells c JOIN gq_absent a USING (batch))
    GROUP BY ALL),
site_cells AS (  -- present_absent_*: the absent terms of the batches that do have a record here
    SELECT s.site_row, c.grouping, c.group_value,
           sum(coalesce(k.uncalled, 0)) AS uncalled, sum(coalesce(k.incomplete, 0)) AS incomplete,
           sum(a.uncalled * c.n_samples) AS present_absent_uncalled,
           sum(a.incomplete * c.n_samples) AS present_absent_incomplete
    FROM batch_sites s JOIN gq_absent a USING (batch) JOIN batch_cells c ON c.batch = s.batch
    LEFT JOIN batch_site_counts k ON k.batch = s.batch AND k.batch_row = s.batch_row
         AND k.grouping = c.grouping AND k.group_value = c.group_value
    GROUP BY ALL),
allele_sums AS (
    SELECT s.site_row, a.allele, a.grouping, a.group_value, sum(a.ac) AS ac, sum(a.n_het) AS n_het,
           sum(a.n_hom_alt) AS n_hom_alt, sum(a.n_hemi) AS n_hemi
    FROM batch_allele_counts a JOIN batch_sites s USING (batch, batch_row) GROUP BY ALL),
pairs AS (
    SELECT site_row, unnest(range(1, len(alleles))) AS allele FROM sites)
SELECT p.site_row, p.allele::SMALLINT AS allele, z.grouping, z.group_value,
       coalesce(x.ac, 0) AS ac,
       2 * z.total - coalesce(sc.uncalled, 0) - (z.absent_uncalled - coalesce(sc.present_absent_uncalled, 0)) AS an,
       coalesce(x.n_het, 0) AS n_het, coalesce(x.n_hom_alt, 0) AS n_hom_alt, coalesce(x.n_hemi, 0) AS n_hemi,
       coalesce(sc.incomplete, 0) + z.absent_incomplete - coalesce(sc.present_absent_incomplete, 0) AS n_missing
FROM pairs p CROSS JOIN cell_sizes z
LEFT JOIN site_cells sc ON sc.site_row = p.site_row AND sc.grouping = z.grouping AND sc.group_value = z.group_value
LEFT JOIN allele_sums x ON x.site_row = p.site_row AND x.allele = p.allele AND x.grouping = z.grouping
     AND x.group_value = z.group_value
"""

_AF = "CASE WHEN t.an > 0 THEN t.ac / t.an ELSE 'NaN'::DOUBLE END"

_VARIANTS = f"""
INSERT INTO variants
SELECT s.contig || '-' || s.pos || '-' || s.alleles[1] || '-' || s.alleles[t.allele + 1],
       s.contig, s.pos, s.alleles[1], s.alleles[t.allele + 1], s.id,
       CASE WHEN len(s.filters) = 0 THEN NULL ELSE array_to_string(s.filters, ';') END, s.qual,
       t.ac, t.an, {_AF}, t.n_het, t.n_hom_alt, t.n_hemi, t.n_missing, t.allele, t.site_row
FROM gq_stats t JOIN sites s USING (site_row)
WHERE t.grouping = '' ORDER BY t.site_row, t.allele
"""

_GROUP_STATS = f"""
INSERT INTO variant_group_stats
SELECT t.site_row, t.allele, t.grouping, t.group_value, t.ac, t.an, {_AF},
       t.n_het, t.n_hom_alt, t.n_hemi, t.n_missing
FROM gq_stats t WHERE t.grouping <> '' ORDER BY t.site_row, t.allele, t.grouping, t.group_value
"""

_REF_CONFLICTS = """
SELECT a.contig, a.pos, a.alleles[1], a.source, a.record, b.alleles[1], b.source, b.record
FROM batch_sites a JOIN batch_sites b ON a.contig = b.contig AND a.pos = b.pos AND a.batch < b.batch
WHERE NOT starts_with(a.alleles[1], b.alleles[1]) AND NOT starts_with(b.alleles[1], a.alleles[1])
ORDER BY a.contig, a.pos LIMIT 1
"""


def check_ref_alleles(con: duckdb.DuckDBPyConnection) -> None:
    """Two batches whose REF alleles at one position disagree (neither is a prefix of the other:
    ``A`` vs ``G``, not ``A`` vs ``AT``) were called against different references: an error
    naming both records."""
    found = con.execute(_REF_CONFLICTS).fetchall()
    if found:
        contig, pos, ref_a, file_a, record_a, ref_b, file_b, record_b = found[0]
        raise InputFileError(
            file_b,
            f"REF {ref_b} at {contig}:{pos} conflicts with REF {ref_a} of {file_a} (record {record_a})",
            line=record_b,
            fix="check both were called against the same reference build, or pass "
            "--allow-ref-conflicts to keep them as different sites",
        )


_INDEX_NAMES = ("variants_key", "variants_id", "group_stats_allele", "batch_sites_site")
_DERIVED_TABLES = ("sites", "variants", "variant_group_stats")


def rebuild(con: duckdb.DuckDBPyConnection, checkpoint: bool = True) -> None:
    """Re-derive ``sites``, ``variants`` and ``variant_group_stats`` and each record's
    ``batch_sites.site_row`` from the batches, then build the lookup indexes and write the
    lookup files beside the index (:mod:`genoquery.storage.lookup_table`).

    With ``checkpoint`` the old derived tables are dropped and checkpointed away first, so the
    new ones reuse their blocks: replaced in place, the file keeps both (a 0.94 GB index of 10^6
    alleles was 1.48 GB after one append, ``benchmarks/index_scale.py``). Pass False inside an
    explicit transaction, where DuckDB cannot checkpoint."""
    for name in _INDEX_NAMES:
        con.execute(f"DROP INDEX IF EXISTS {name}")
    if checkpoint:
        for table in _DERIVED_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute("CHECKPOINT")
    con.execute(_SITE_ROWS)
    con.execute(
        "UPDATE batch_sites SET site_row = r.site_row FROM gq_site_rows r "
        "WHERE r.batch = batch_sites.batch AND r.batch_row = batch_sites.batch_row"
    )
    con.execute(DERIVED)
    con.execute(_SITES)
    batches = read_batches(con, Path())  # only each batch's absent-record rule is used, not its path
    uncalled, incomplete = zip(*(b.absent_terms for b in batches), strict=True) if batches else ((), ())
    absent = pa.table(
        {
            "batch": pa.array([b.number for b in batches], pa.int64()),
            "uncalled": pa.array(uncalled, pa.int64()),
            "incomplete": pa.array(incomplete, pa.int64()),
        }
    )
    con.register("gq_absent", absent)
    try:
        con.execute(_STATS)
    finally:
        con.unregister("gq_absent")
    con.execute(_VARIANTS)
    con.execute(_GROUP_STATS)
    for table in ("gq_site_rows", "gq_stats"):
        con.execute(f"DROP TABLE {table}")
    con.execute(INDEXES)
    write_lookup_table(con)
