"""Allele frequencies of any cohort over a region, optionally per group of a person column.

The whole store's statistics (overall and per ingest grouping) are read from the
index; any other cohort or grouping is counted exactly from the query encoding
(:mod:`genoquery.stats.cohort_counts`), touching only calls that are not hom-ref
and, at dense sites, the cohort's 2-bit codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from genoquery.arrow import from_numpy, strings, take_rows, to_numpy
from genoquery.deadline import check
from genoquery.errors import QueryError, StoreError
from genoquery.index.persons import groups_of
from genoquery.stats.allele_stats import STATS, AlleleStats, Cells, assemble_stats, block_counts, empty_counts
from genoquery.stats.cohort_counts import count_calls
from genoquery.storage.index_thread import on_index_thread
from genoquery.storage.schema import STAT_COLUMNS, VARIANT_COLUMNS, allele_keys
from genoquery.storage.site_calls import SITE_COLUMNS, SITE_NAMES

if TYPE_CHECKING:
    import duckdb

    from genoquery.query.store import Store
    from genoquery.storage.batches import Batch

STAT_TYPES = {s: pa.int64() for s in STATS}
WINDOW_BYTES = 64 << 20


def _cells(store: Store, members: np.ndarray, by: str | None) -> Cells:
    groupings = ()
    if by is not None:
        persons = store.persons()
        if by not in persons.column_names or by == "sample_id":
            columns = ", ".join(c for c in persons.column_names if c != "sample_id")
            raise QueryError(f"no person-table column {by!r} to group by; columns: {columns or 'none'}")
        groupings = (groups_of(persons, store.sample_id_array.to_pylist(), by),)
    return Cells.build(store.info["samples"], groupings).restrict(members)


def _stats_schema(by: str | None) -> pa.Schema:
    """The columns of :func:`_stats_rows`."""
    group = [(by, pa.string())] if by else []
    return pa.schema([("site_row", pa.int64()), ("allele", pa.int16()), *group, *STAT_TYPES.items()])


def _stats_rows(site_row: np.ndarray, stats: AlleleStats, by: str | None) -> pa.Table:
    """One row per (site, allele), or per (site, allele, group) when ``by`` is given, in the
    types of :func:`_stats_schema` (converted in NumPy: ``Table.cast`` imports pyarrow.compute,
    35 ms of a command's start)."""
    n = len(stats.group_labels[by]) if by else 1
    columns = [
        from_numpy(np.repeat(site_row[stats.row], n).astype(np.int64, copy=False)),
        from_numpy(np.repeat(stats.allele, n).astype(np.int16)),
    ]
    if by:
        columns.append(strings(list(stats.group_labels[by]) * len(stats.row)))
    counts = stats.groups[by] if by else stats.overall
    columns += [from_numpy(counts[s].reshape(-1).astype(np.int64, copy=False)) for s in STATS]
    return pa.Table.from_arrays(columns, schema=_stats_schema(by))


def cohort_frequencies(
    store: Store, region: str | None, cohort, by: str | None, members: np.ndarray | None = None
) -> pa.Table:
    """Per-ALT-allele statistics of ``cohort`` in ``region``; see :meth:`Store.frequencies`.
    ``members`` are the cohort's sample indexes when resolved already (by the client of a Dask
    cluster, for every partition), in place of ``cohort``.

    Without ``by``, the region's variant columns are read from the index on another thread
    (:mod:`genoquery.storage.index_thread`) while the cohort is resolved and counted, and the
    counts are put beside them by position (a join after the counting took 31 ms of the 0.29 s
    of 1 Mb at 10^5 samples)."""
    if members is None and cohort is None and (by is None or by in store.info.get("groupings", [])):
        return store.variants(region, by=by)
    if by is not None:
        return _with_variant_columns(store, _counted(store, region, _members(store, cohort, members), by), region, by)
    with on_index_thread(store.connection, partial(_variant_columns, store, region)) as described:
        counted = _counted(store, region, _members(store, cohort, members), None)
    return _beside(described.result(), counted)


def _members(store: Store, cohort, members: np.ndarray | None) -> np.ndarray:
    """The cohort's sample indexes: ``members`` if resolved already, else resolved here."""
    if members is not None:
        return members
    return store.cohort(cohort) if cohort is not None else store.active_samples


def _counted(store: Store, region: str | None, members: np.ndarray, by: str | None) -> pa.Table:
    """The statistics columns (with ``site_row``, ``allele`` and ``by``) of the samples
    ``members`` in ``region``."""
    cells = _cells(store, members, by)
    records = store.region_records(region)
    if records is None:  # a store without lookup files of sites
        where, params = store.region_filter(region)
        sites = store.sql(f"SELECT site_row, len(alleles) AS n_alleles FROM sites {where} ORDER BY site_row", params)
    else:  # one row per site: the first batch's record (records are by site row, then batch)
        site_row, first = np.unique(to_numpy(records["site_row"]), return_index=True)
        n_alleles = to_numpy(records["n_alleles"])[first]  # in NumPy: Table.take imports pyarrow.compute
        sites = pa.table({"site_row": from_numpy(site_row), "n_alleles": from_numpy(n_alleles)})
    parts = [_stats_rows(rows, stats, by) for rows, stats in store_stats(store, sites, cells, members, records)]
    return pa.concat_tables(parts) if parts else _stats_schema(by).empty_table()


def _variant_columns(store: Store, region: str | None, cursor: duckdb.DuckDBPyConnection) -> pa.Table:
    """The columns of :meth:`Store.variants` other than statistics, for ``region``, in its row
    order (site_row, allele), read on ``cursor``."""
    where, params = store.region_filter(region, alias="v.")
    columns = ", ".join(f"v.{c}" for c in VARIANT_COLUMNS if c not in STAT_COLUMNS)
    return cursor.sql(
        f"SELECT {columns} FROM variants v {where} ORDER BY v.site_row, v.allele", params=params
    ).to_arrow_table()


def _beside(described: pa.Table, counted: pa.Table) -> pa.Table:
    """``counted``'s statistics in the rows of ``described`` (the same (site_row, allele) pairs),
    with the columns of :meth:`Store.variants`; AF is AC / AN, NaN where AN is 0."""
    key = allele_keys(counted)
    order = np.argsort(key, kind="stable")
    wanted = allele_keys(described)
    if not np.array_equal(key[order], wanted):
        raise StoreError("the index's variants and sites disagree; run `genoquery verify` on the store")
    stats = {s: to_numpy(counted[s])[order] for s in STATS}
    with np.errstate(divide="ignore", invalid="ignore"):
        stats["af"] = np.where(stats["an"] > 0, stats["ac"] / np.maximum(stats["an"], 1), np.nan)
    return pa.table({c: described[c] if c in described.column_names else from_numpy(stats[c]) for c in VARIANT_COLUMNS})


def _with_variant_columns(store: Store, counted: pa.Table, region: str | None, by: str | None) -> pa.Table:
    """The counts with the columns of :meth:`Store.variants`, in its row order."""
    base = [c for c in VARIANT_COLUMNS if c not in STAT_COLUMNS]
    group = [f'c."{by}"'] if by else []
    stats = {s: f"c.{s}" for s in STATS}
    stats["af"] = "CASE WHEN c.an > 0 THEN c.ac / c.an ELSE 'NaN'::DOUBLE END AS af"
    if by:
        columns = [f"v.{c}" for c in base] + group + [stats[c] for c in STAT_COLUMNS]
    else:
        columns = [stats[c] if c in STAT_COLUMNS else f"v.{c}" for c in VARIANT_COLUMNS]
    where, params = store.region_filter(region, alias="v.")
    sql = (
        f"SELECT {', '.join(columns)} FROM variants v JOIN counted c "
        f"ON c.site_row = v.site_row AND c.allele = v.allele {where} "
        f"ORDER BY v.site_row, v.allele{', ' + group[0] if group else ''}"
    )
    return store.sql(sql, params, counted=counted)


def _window(n_alleles: np.ndarray, cells: Cells) -> int:
    """Sites counted at once: their count arrays stay under :data:`WINDOW_BYTES`."""
    width = max(int(n_alleles.max(initial=1)), 2)
    return max(1024, WINDOW_BYTES // (len(cells.sizes) * (2 + 4 * width) * 8))


def store_stats(
    store: Store, sites: pa.Table, cells: Cells, members: np.ndarray, records: pa.Table | None = None
) -> Iterator[tuple[np.ndarray, AlleleStats]]:
    """Statistics of every ALT allele of ``sites`` (``site_row``, ``n_alleles``; a range of
    consecutive site rows, in order) for the cohort ``members`` (sorted global sample
    indexes) in ``cells`` (restricted to the cohort with :meth:`Cells.restrict`), summed
    over the batches; a batch without a record of a site adds its members' absent calls
    there (:attr:`Batch.absent_call`: missing, or hom-ref for a complete callset).
    ``records``: the batches' records of those sites from the lookup files
    (:meth:`Store.region_records`), else read from the index. Yields the site rows and statistics
    of consecutive windows of sites."""
    rows_all, n_alleles_all = to_numpy(sites["site_row"]), to_numpy(sites["n_alleles"])
    record_rows = None if records is None else to_numpy(records["site_row"])
    step = _window(n_alleles_all, cells)
    for start in range(0, len(rows_all), step):
        rows, n_alleles = rows_all[start : start + step], n_alleles_all[start : start + step]
        window = None
        if records is not None:  # the window's records: a slice (records are by site row)
            lo, hi = np.searchsorted(record_rows, [rows[0], rows[-1] + 1]).tolist()
            window = records.slice(lo, hi - lo)
        site_counts, allele_counts = empty_counts(n_alleles, cells)
        for batch in store.batches:
            check()
            _add_batch(store, batch, rows, cells, members, site_counts, allele_counts, window)
        yield rows, assemble_stats(site_counts, allele_counts, n_alleles, cells)


def _add_batch(
    store: Store,
    batch: Batch,
    rows: np.ndarray,
    cells: Cells,
    members: np.ndarray,
    site_counts: np.ndarray,
    allele_counts: np.ndarray,
    records: pa.Table | None = None,
) -> None:
    """Add one batch's counts for the sites ``rows`` (consecutive site rows)."""
    local = batch.local(members)
    if not len(local):
        return
    of_sample = cells.of_sample[batch.offset : batch.offset + batch.n_samples]
    batch_cells = Cells(cells.groupings, of_sample, cells.sizes)
    sites = _batch_records(store, batch, rows, records)
    present = np.zeros(len(rows), dtype=bool)
    for calls, counts, per_allele in count_calls(batch.reader, sites, batch_cells, local):
        at = np.searchsorted(rows, calls.site_row)
        present[at] = True
        site_counts[at] += counts
        allele_counts[at, : per_allele.shape[1]] += per_allele
    if not present.all():
        absent_sites, absent_alleles = _absent_counts(
            batch, Cells(cells.groupings, of_sample[local], cells.sizes), allele_counts.shape[1]
        )
        site_counts[~present] += absent_sites
        allele_counts[~present] += absent_alleles


def _batch_records(store: Store, batch: Batch, rows: np.ndarray, records: pa.Table | None) -> pa.Table:
    """The :data:`SITE_COLUMNS` of ``batch``'s records of the sites ``rows`` (consecutive), by
    batch row: from ``records``, the lookup files' records of those sites (two DuckDB queries
    cost 3-6 ms of a 10% cohort's ~40 ms over 1 Mb at 10^5 samples), else from the index."""
    if records is None:
        return store.sql(
            f"SELECT {SITE_COLUMNS} FROM batch_sites WHERE batch = ? AND site_row BETWEEN ? AND ? ORDER BY batch_row",
            [batch.number, int(rows[0]), int(rows[-1])],
        )
    found = take_rows(records, np.flatnonzero(to_numpy(records["batch"]) == batch.number)).select(SITE_NAMES)
    batch_row = to_numpy(found["batch_row"])
    if np.all(batch_row[1:] > batch_row[:-1]):
        return found
    return found.take(from_numpy(np.argsort(batch_row)))  # a file's contigs out of the header's order


def _absent_counts(batch: Batch, cells: Cells, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One site's ``site_counts`` and ``allele_counts`` (of ``width`` alleles) where ``batch`` has
    no record: every sample of ``cells`` holds :attr:`Batch.absent_call`, counted as any call."""
    gt = np.broadcast_to(np.array(batch.absent_call, dtype=np.int8), (1, len(cells.of_sample), 2))
    site_counts, allele_counts = block_counts(gt, np.array([width]), cells)
    return site_counts[0], allele_counts[0]
