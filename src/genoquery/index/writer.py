"""Writing a store's DuckDB index during ingest, one block at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.index.merge import check_ref_alleles, rebuild
from genoquery.storage.call_codes import CallCodes
from genoquery.storage.checksums import file_sha256
from genoquery.storage.inline_calls import inline_lists
from genoquery.storage.schema import TABLES
from genoquery.storage.site_block import SiteBlock


def count_rows(
    batch: int, batch_rows: np.ndarray, site_counts: np.ndarray, allele_counts: np.ndarray, keys: list[tuple[str, str]]
) -> tuple[pa.Table, pa.Table]:
    """``batch_site_counts`` and ``batch_allele_counts`` rows (zeros left out) of the counts
    :func:`~genoquery.stats.allele_stats.tally_site` filled for ``batch_rows``; ``keys`` are
    the cells' ``(grouping, group_value)``."""
    grouping = np.array([k[0] for k in keys], dtype=object)
    value = np.array([k[1] for k in keys], dtype=object)
    v, c = np.nonzero(site_counts.any(axis=2))
    sites = pa.table(
        {
            "batch": pa.array(np.full(len(v), batch), pa.int16()),
            "batch_row": batch_rows[v],
            "grouping": grouping[c],
            "group_value": value[c],
            "uncalled": site_counts[v, c, 0],
            "incomplete": site_counts[v, c, 1],
        }
    )
    v, a, c = np.nonzero(allele_counts[:, 1:].any(axis=3))
    counts = allele_counts[v, a + 1, c]
    alleles = pa.table(
        {
            "batch": pa.array(np.full(len(v), batch), pa.int16()),
            "batch_row": batch_rows[v],
            "allele": pa.array(a + 1, pa.int16()),
            "grouping": grouping[c],
            "group_value": value[c],
            "ac": counts[:, 0],
            "n_het": counts[:, 1],
            "n_hom_alt": counts[:, 2],
            "n_hemi": counts[:, 3],
        }
    )
    return sites, alleles


def cell_rows(batch: int, keys: list[tuple[str, str]], sizes: np.ndarray) -> pa.Table:
    """``batch_cells`` rows of a batch's non-empty cells."""
    keep = np.flatnonzero(sizes > 0)
    return pa.table(
        {
            "batch": pa.array(np.full(len(keep), batch), pa.int16()),
            "grouping": [keys[i][0] for i in keep],
            "group_value": [keys[i][1] for i in keep],
            "n_samples": sizes[keep].astype(np.int64),
        }
    )


def encoding_columns(
    batch: int, batch_rows: np.ndarray, codes: CallCodes, first_dense: int, first_listed: int, first_missing: int
) -> dict[str, pa.Array]:
    """The ``batch_sites`` columns that locate the records' query encoding in the batch's Zarr
    group (``first_*``: the block's first dense row, listed call and missing-call token)."""
    n = len(batch_rows)
    n_listed = np.bincount(codes.row_site, minlength=n)
    n_tokens = np.bincount(codes.token_site, minlength=n)
    return {
        "batch": pa.array(np.full(n, batch), pa.int16()),
        "batch_row": pa.array(batch_rows, pa.int64()),
        "n_carriers": pa.array(codes.carriers.astype(np.int32)),
        "dense_row": pa.array(np.cumsum(codes.dense) - 1 + first_dense, mask=~codes.dense),
        "haploid_pattern": pa.array(codes.haploid_pattern.astype(np.int32), mask=codes.haploid_pattern < 0),
        "listed_start": pa.array(np.cumsum(n_listed) - n_listed + first_listed),
        "n_listed": pa.array(n_listed.astype(np.int32)),
        "missing_start": pa.array(np.cumsum(n_tokens) - n_tokens + first_missing),
        "n_missing_tokens": pa.array(n_tokens.astype(np.int32)),
        "inline_calls": pa.array(inline_lists(codes), pa.list_(pa.int64())),
    }


class IndexWriter:
    """Creates ``index.duckdb`` and appends batches, their records and per-cell counts."""

    FLUSH_ROWS = 250_000  # rows buffered per table before one bulk insert

    BLOCK_SIZE = 16384  # bytes; DuckDB's default 256 KiB blocks leave most of a small index empty

    def __init__(self, path: Path, create: bool = True) -> None:
        """Create the index at ``path``, or (``create=False``) add to the existing one there."""
        self.con = duckdb.connect()
        self.con.execute(f"ATTACH '{path}' AS idx" + (f" (BLOCK_SIZE {self.BLOCK_SIZE})" if create else ""))
        self.con.execute("USE idx")
        if create:
            self.con.execute(TABLES)
        self.buffered: dict[str, list[pa.Table]] = {}

    def _insert(self, table: str, data: pa.Table) -> None:
        """Queue rows for ``table``; a DuckDB insert costs ~30 ms whatever its size."""
        parts = self.buffered.setdefault(table, [])
        parts.append(data)
        if sum(len(p) for p in parts) >= self.FLUSH_ROWS:
            self._flush(table)

    def _flush(self, table: str) -> None:
        parts = self.buffered.pop(table, [])
        if not parts:
            return
        self.con.register("incoming", pa.concat_tables(parts, promote_options="permissive"))
        self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        self.con.unregister("incoming")

    def flush(self) -> None:
        """Insert everything queued."""
        for table in list(self.buffered):
            self._flush(table)

    def add_block(
        self,
        batch: int,
        block: SiteBlock,
        first_row: int,
        source: str,
        counts: tuple[np.ndarray, np.ndarray],
        keys: list[tuple[str, str]],
        codes: CallCodes,
        first_dense: int,
        first_listed: int,
        first_missing: int,
    ) -> None:
        """Append a batch's block of records and their per-cell ``counts`` (site and allele
        counts of the cells ``keys``); the ``first_*`` rows locate its query encoding in the
        batch's Zarr group."""
        n = block.n
        batch_rows = np.arange(first_row, first_row + n, dtype=np.int64)
        self.add_sites(
            pa.table(
                {
                    "contig": block.contig,
                    "pos": block.pos,
                    "id": [v or None for v in block.vid],
                    "alleles": block.alleles,
                    "qual": pa.array(block.qual, pa.float32(), from_pandas=True),
                    "filters": block.filters,
                    "info": block.info,
                    "source": [source] * n,
                    "record": block.record,
                    **encoding_columns(batch, batch_rows, codes, first_dense, first_listed, first_missing),
                }
            ),
        )
        self.add_counts(*count_rows(batch, batch_rows, *counts, keys))

    def add_sites(self, rows: pa.Table) -> None:
        """Append ``batch_sites`` rows (the columns :meth:`add_block` builds from a block)."""
        self._insert("batch_sites", rows)

    def add_counts(self, site_counts: pa.Table, allele_counts: pa.Table) -> None:
        """Append ``batch_site_counts`` and ``batch_allele_counts`` rows (see :func:`count_rows`)."""
        self._insert("batch_site_counts", site_counts)
        self._insert("batch_allele_counts", allele_counts)

    def add_batch(
        self, batch: int, name: str, path: str, offset: int, n_samples: int, complete: bool, cells: pa.Table
    ) -> None:
        """Record a batch: its Zarr group's path in the store, first global sample index, and cells."""
        self._insert(
            "batches",
            pa.table(
                {
                    "batch": pa.array([batch], pa.int16()),
                    "name": [name],
                    "path": [path],
                    "sample_offset": pa.array([offset], pa.int32()),
                    "n_samples": pa.array([n_samples], pa.int32()),
                    "complete_callset": [complete],
                    "created_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
                }
            ),
        )
        self._insert("batch_cells", cells)

    def add_samples(self, batch: int, offset: int, samples: list[str], source: str) -> None:
        self._insert(
            "samples",
            pa.table(
                {
                    "sample_index": np.arange(offset, offset + len(samples), dtype=np.int32),
                    "sample_id": samples,
                    "source": [source] * len(samples),
                    "batch": pa.array(np.full(len(samples), batch), pa.int16()),
                }
            ),
        )

    def add_contigs(self, contigs: list[tuple[str, int | None]]) -> None:
        """Set the store's contigs, in order (replacing those there)."""
        self.flush()
        self.con.execute("DELETE FROM contigs")
        self._insert(
            "contigs",
            pa.table(
                {
                    "contig_index": np.arange(len(contigs), dtype=np.int16),
                    "contig": [c for c, _ in contigs],
                    "length": pa.array([n for _, n in contigs], pa.int64()),
                }
            ),
        )

    def add_provenance(
        self, batch: int, path: str, size: int, sha256: str, kind: str, records: int, samples: int, tool: str
    ) -> None:
        self._insert(
            "provenance",
            pa.table(
                {
                    "path": [path],
                    "size": [size],
                    "sha256": [sha256],
                    "kind": [kind],
                    "records": [records],
                    "samples": [samples],
                    "tool": [tool],
                    "batch": pa.array([batch], pa.int16()),
                    "ingested_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
                }
            ),
        )

    def add_files(self, batch: int, group: Path, relative: str) -> None:
        """Record every file of a batch's finished Zarr group ``group`` (named ``relative`` in the
        store) with its size and sha256: the manifest ``genoquery verify`` checks."""
        files = sorted(p for p in group.rglob("*") if p.is_file())
        self._insert(
            "batch_files",
            pa.table(
                {
                    "batch": pa.array(np.full(len(files), batch), pa.int16()),
                    "path": [f"{relative}/{p.relative_to(group)}" for p in files],
                    "size": pa.array([p.stat().st_size for p in files], pa.int64()),
                    "sha256": [file_sha256(p) for p in files],
                }
            ),
        )

    def log(self, action: str, detail: str, reason: str | None = None) -> None:
        """Record a change of the store in ``store_log``, with the time."""
        self._insert(
            "store_log",
            pa.table(
                {
                    "logged_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
                    "action": [action],
                    "detail": [detail],
                    "reason": pa.array([reason], pa.string()),
                }
            ),
        )

    def add_persons(self, persons: pa.Table) -> None:
        self.con.register("incoming", persons)
        self.con.execute("CREATE TABLE persons AS SELECT * FROM incoming")
        self.con.unregister("incoming")

    def sites_table(self, batch: int, start: int, end: int) -> pa.Table:
        """A batch's records with ``start <= batch_row < end`` in row order, for its Zarr variant arrays."""
        self.flush()
        return self.con.sql(
            "SELECT contig, pos, id, alleles, qual, filters, info, source, record FROM batch_sites "
            "WHERE batch = ? AND batch_row >= ? AND batch_row < ? ORDER BY batch_row",
            params=[batch, start, end],
        ).to_arrow_table()

    def max_alleles(self, batch: int) -> int:
        """The largest number of alleles (REF included) of any record of ``batch``."""
        self.flush()
        return self.con.execute(
            "SELECT coalesce(max(len(alleles)), 0) FROM batch_sites WHERE batch = ?", [batch]
        ).fetchall()[0][0]

    def finish(self, check_refs: bool = True) -> None:
        """Derive the sites and whole-store statistics, build the lookup indexes, close the database;
        ``check_refs``: first refuse batches whose REF alleles disagree at a position."""
        self.flush()
        if check_refs:
            check_ref_alleles(self.con)
        rebuild(self.con)
        self.con.execute("CHECKPOINT")
        self.con.close()
