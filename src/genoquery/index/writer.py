"""Writing a store's DuckDB index during ingest, one block at a time."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.index.schema import INDEXES, TABLES
from genoquery.ingest.allele_stats import STATS, AlleleStats
from genoquery.ingest.call_codes import CallCodes, inline_lists
from genoquery.ingest.records import SiteBlock


def _allele_frequency(ac: np.ndarray, an: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(an > 0, ac / np.maximum(an, 1), np.nan)


def _filter_text(filters: list[str]) -> str | None:
    return ";".join(filters) if filters else None


def group_stats_rows(column: str, labels: list[str], site_rows: np.ndarray, alleles: np.ndarray,
                     per_stat: dict[str, np.ndarray]) -> pa.Table:
    """``variant_group_stats`` rows of (site, allele) pairs by ``labels`` of one grouping."""
    n_pairs, n_groups = len(site_rows), len(labels)
    flat = {s: per_stat[s].reshape(-1) for s in STATS}
    return pa.table({
        "site_row": np.repeat(site_rows, n_groups), "allele": np.repeat(alleles, n_groups),
        "grouping": [column] * (n_pairs * n_groups),
        "group_value": np.tile(np.array(labels, dtype=object), n_pairs),
        **flat, "af": _allele_frequency(flat["ac"], flat["an"]),
    })


class IndexWriter:
    """Creates ``index.duckdb`` and appends sites, variants and statistics."""

    FLUSH_ROWS = 250_000  # rows buffered per table before one bulk insert

    BLOCK_SIZE = 16384  # bytes; DuckDB's default 256 KiB blocks leave most of a small index empty

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect()
        self.con.execute(f"ATTACH '{path}' AS idx (BLOCK_SIZE {self.BLOCK_SIZE})")
        self.con.execute("USE idx")
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

    def add_block(self, block: SiteBlock, first_row: int, source: str, stats: AlleleStats,
                  codes: CallCodes, first_dense: int, first_listed: int, first_missing: int) -> None:
        """Append a block's sites, its per-allele rows and their group statistics; the
        ``first_*`` rows locate its query encoding in the Zarr group."""
        n = block.n
        site_rows = np.arange(first_row, first_row + n, dtype=np.int64)
        n_listed = np.bincount(codes.row_site, minlength=n)
        n_tokens = np.bincount(codes.token_site, minlength=n)
        self._insert("sites", pa.table({
            "site_row": site_rows, "contig": block.contig, "pos": block.pos,
            "id": [v or None for v in block.vid], "alleles": block.alleles,
            "qual": pa.array(block.qual, pa.float32(), from_pandas=True),
            "filters": block.filters, "source": [source] * n, "record": block.record,
            "n_carriers": codes.carriers.astype(np.int32),
            "dense_row": pa.array(np.cumsum(codes.dense) - 1 + first_dense, mask=~codes.dense),
            "haploid_pattern": pa.array(codes.haploid_pattern.astype(np.int32), mask=codes.haploid_pattern < 0),
            "listed_start": np.cumsum(n_listed) - n_listed + first_listed,
            "n_listed": n_listed.astype(np.int32),
            "missing_start": np.cumsum(n_tokens) - n_tokens + first_missing,
            "n_missing_tokens": n_tokens.astype(np.int32),
            "inline_calls": pa.array(inline_lists(codes), pa.list_(pa.int64())),
        }))
        rows, alleles = stats.row, stats.allele
        ref = [block.alleles[r][0] for r in rows]
        alt = [block.alleles[r][a] for r, a in zip(rows, alleles)]
        contig = [block.contig[r] for r in rows]
        pos = [block.pos[r] for r in rows]
        self._insert("variants", pa.table({
            "variant_key": [f"{c}-{p}-{r}-{a}" for c, p, r, a in zip(contig, pos, ref, alt)],
            "contig": contig, "pos": pos, "ref": ref, "alt": alt,
            "id": [block.vid[r] or None for r in rows],
            "filter": [_filter_text(block.filters[r]) for r in rows],
            "qual": pa.array([block.qual[r] for r in rows], pa.float32(), from_pandas=True),
            **{s: stats.overall[s] for s in STATS},
            "af": _allele_frequency(stats.overall["ac"], stats.overall["an"]),
            "allele": alleles, "site_row": site_rows[rows],
        }))
        for column, per_stat in stats.groups.items():
            self._add_group_stats(column, stats.group_labels[column], site_rows[rows], alleles, per_stat)

    def _add_group_stats(self, column: str, labels: list[str], site_rows: np.ndarray,
                         alleles: np.ndarray, per_stat: dict[str, np.ndarray]) -> None:
        if len(site_rows) and labels:
            self._insert("variant_group_stats", group_stats_rows(column, labels, site_rows, alleles, per_stat))

    def add_samples(self, samples: list[str], sources: list[str]) -> None:
        self._insert("samples", pa.table({
            "sample_index": np.arange(len(samples), dtype=np.int32),
            "sample_id": samples, "source": sources}))

    def add_contigs(self, contigs: list[tuple[str, int | None]]) -> None:
        self._insert("contigs", pa.table({
            "contig_index": np.arange(len(contigs), dtype=np.int16),
            "contig": [c for c, _ in contigs],
            "length": pa.array([n for _, n in contigs], pa.int64())}))

    def add_provenance(self, path: str, size: int, sha256: str, kind: str, records: int,
                       samples: int, tool: str) -> None:
        self._insert("provenance", pa.table({
            "path": [path], "size": [size], "sha256": [sha256], "kind": [kind],
            "records": [records], "samples": [samples], "tool": [tool],
            "ingested_at": pa.array([datetime.now(timezone.utc)], pa.timestamp("us", tz="UTC"))}))

    def add_persons(self, persons: pa.Table) -> None:
        self.con.register("incoming", persons)
        self.con.execute("CREATE TABLE persons AS SELECT * FROM incoming")
        self.con.unregister("incoming")

    def sites_table(self, start: int, end: int) -> pa.Table:
        """Sites with ``start <= site_row < end`` in row order, for the Zarr variant arrays."""
        self.flush()
        return self.con.sql(
            "SELECT contig, pos, id, alleles, qual, filters FROM sites "
            "WHERE site_row >= ? AND site_row < ? ORDER BY site_row", params=[start, end]).to_arrow_table()

    def max_alleles(self) -> int:
        """The largest number of alleles (REF included) of any site."""
        self.flush()
        return self.con.execute("SELECT coalesce(max(len(alleles)), 0) FROM sites").fetchall()[0][0]

    def finish(self) -> None:
        """Build the lookup indexes and close the database."""
        self.flush()
        self.con.execute(INDEXES)
        self.con.execute("CHECKPOINT")
        self.con.close()
