"""Recounting a batch's per-cell counts from its query encoding.

Used when the cells change (a new person table: new groups) or the samples do
(a withdrawal): the batch's calls are counted again for its samples that are not
withdrawn, with :func:`genoquery.stats.cohort_counts.count_calls`, the kernel that
reproduces the ingest's counts exactly (tests/test_call_codes.py).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.index.persons import sample_groups
from genoquery.index.writer import cell_rows, count_rows
from genoquery.stats.allele_stats import Cells
from genoquery.stats.cohort_counts import count_calls
from genoquery.storage.batches import Batch
from genoquery.storage.site_calls import SITE_COLUMNS

COUNT_TABLES = ("batch_cells", "batch_site_counts", "batch_allele_counts")


def recount_batch(con: duckdb.DuckDBPyConnection, batch: Batch, persons: pa.Table | None, groups_only: bool) -> None:
    """Replace ``batch``'s counts (every cell, or with ``groups_only`` only the person-table
    groups' cells) with counts over its samples that are not withdrawn, grouped by
    ``persons`` (None: no groups). The caller re-derives the statistics (``merge.rebuild``)."""
    rows = con.execute(
        "SELECT sample_id, withdrawn_at IS NOT NULL FROM samples WHERE batch = ? ORDER BY sample_index", [batch.number]
    ).fetchall()
    ids, withdrawn = [r[0] for r in rows], np.array([r[1] for r in rows], dtype=bool)
    groupings = sample_groups(persons, ids) if persons is not None else ()
    cells = Cells.build(len(ids), groupings).restrict(np.flatnonzero(~withdrawn))
    kept = slice(1 if groups_only else 0, None)
    keys = cells.keys()[kept]
    for table in COUNT_TABLES:
        con.execute(
            f"DELETE FROM {table} WHERE batch = ?" + (" AND grouping <> ''" if groups_only else ""), [batch.number]
        )
    _insert(con, "batch_cells", cell_rows(batch.number, keys, cells.sizes[kept]))
    sites = con.sql(
        f"SELECT {SITE_COLUMNS} FROM batch_sites WHERE batch = ? ORDER BY batch_row", params=[batch.number]
    ).to_arrow_table()
    done, batch_rows = 0, sites["batch_row"].to_numpy()
    for calls, site_counts, allele_counts in count_calls(batch.reader, sites, cells, np.flatnonzero(~withdrawn)):
        part, done = batch_rows[done : done + len(calls.site_row)], done + len(calls.site_row)
        site_rows, allele_rows = count_rows(batch.number, part, site_counts[:, kept], allele_counts[:, :, kept], keys)
        _insert(con, "batch_site_counts", site_rows)
        _insert(con, "batch_allele_counts", allele_rows)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    con.register("gq_rows", rows)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM gq_rows")
    con.unregister("gq_rows")
