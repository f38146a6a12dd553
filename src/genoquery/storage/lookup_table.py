"""The ``variants`` table as memory-mapped files beside the index, for lookups by key.

A DuckDB point query through the ART index costs 0.6-1.2 ms of CPU whatever the store's
size (``SELECT 1`` alone takes ~0.3 ms), most of a server's variant lookup. Each time
:func:`genoquery.index.merge.rebuild` derives ``variants`` it also writes, in
``STORE/lookup/`` beside the index:

- ``NAME.arrow``: every column of ``variants`` (uncompressed Arrow IPC, so it is mapped,
  not read), ordered by ``(contig_index, pos, site_row, allele)``;
- ``NAME.locus.npy``: int64 ``contig_index * 2**40 + pos`` of each of those rows
  (non-decreasing; POS is 1-based), searched by bisection;
- ``NAME.sites.arrow`` and ``NAME.site_row.npy``: each batch's records of each site with their
  query encoding (``batch``, :data:`~genoquery.storage.site_calls.SITE_COLUMNS`,
  ``inline_calls``), ordered by ``(site_row, batch)``, and their ``site_row``: one variant's
  carriers find its records by bisection, not by a DuckDB point query (~0.9 ms of a rare
  variant's ~1.5 ms at 10^6 samples). Stores written before them have none and ask DuckDB;
- ``NAME.id_hash.npy`` and ``NAME.id_row.npy``: the 64-bit FNV-1a hash of each row's ``id``
  (the whole text, as ``rs1;rs2`` when it lists several), sorted, and the row it belongs to:
  an ID is found by bisection and its rows' text compared (a DuckDB point query through the ART
  index on ``variants.id`` took 1.0-2.1 ms p50 in a synthetic index of 10^6-10^7 alleles).

and records ``NAME`` in the index's ``lookup_files``. A reader maps the files its own index
names; when the index names none (a store written before them) or the files are gone, the
lookup runs in DuckDB. A name is new for every rebuild and the index is committed after its
files are written, so an index and the table it names always agree. A lookup touches
~log2(variants) pages of the locus file and one row of each column: memory stays what the
OS page cache keeps, whatever the store's size. Cost on disk: the variants' columns again,
~140 bytes per ALT allele (4.0 MB for 29,084 alleles; the index takes 27 MB).
"""

from __future__ import annotations

import secrets
from functools import cached_property
from importlib import import_module
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.arrow import from_numpy, take_rows, to_numpy
from genoquery.storage.format import INDEX_FILE, LOOKUP_DIR
from genoquery.storage.schema import VARIANT_COLUMNS, open_index
from genoquery.storage.site_calls import SITE_COLUMNS
from genoquery.storage.staging import fsync_path

FNV_OFFSET, FNV_PRIME = 14695981039346656037, 1099511628211  # 64-bit FNV-1a
LOCUS_SHIFT = 40  # bits of POS in a locus (contigs up to 1.1 x 10^12 bp)
ALLELE_BITS = 16  # bits of the allele number in a site key (ALT alleles are int16)
ROWS_PER_BATCH = 1 << 20  # rows per Arrow record batch written

_ROWS = (
    f"SELECT {', '.join('v.' + c for c in VARIANT_COLUMNS)}, "
    f"(c.contig_index::BIGINT << {LOCUS_SHIFT}) + v.pos AS locus "
    "FROM variants v JOIN contigs c USING (contig) ORDER BY c.contig_index, v.pos, v.site_row, v.allele"
)
# the rows of the lookup file of sites (its query, also verify's)
LOOKUP_SITES = f"SELECT batch, {SITE_COLUMNS}, inline_calls FROM batch_sites ORDER BY site_row, batch, batch_row"


def locus(contig_index: int | np.ndarray, pos: int | np.ndarray) -> int | np.ndarray:
    """The locus number (int64) of 1-based ``pos`` on the contig of index ``contig_index``."""
    return (contig_index << LOCUS_SHIFT) + pos


def site_key(site_row: np.ndarray, allele: np.ndarray) -> np.ndarray:
    """The int64 key ``site_row * 2**16 + allele`` of each ALT allele: ordered as ``variants``."""
    return (np.asarray(site_row, np.int64) << ALLELE_BITS) + np.asarray(allele, np.int64)


class SiteRows:
    """Rows found by site row and allele (``variants``, or one group's ``variant_group_stats``):
    a vectorised join by bisection of their sorted keys, no scan of the table."""

    def __init__(self, site_row: np.ndarray, allele: np.ndarray) -> None:
        keys = site_key(site_row, allele)
        # Lookup files are in locus order, which is site order unless contigs arrived out of the
        # header's order: then the keys are sorted once (8 bytes an allele, held per index).
        self._order = None if bool(np.all(keys[1:] > keys[:-1])) else np.argsort(keys, kind="stable")
        self._keys = keys if self._order is None else keys[self._order]

    def find(self, site_row: np.ndarray, allele: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (site_row, allele) pair: its row (int64; 0 where absent) and whether it is there."""
        want = site_key(site_row, allele)
        if not len(self._keys):
            return np.zeros(len(want), np.int64), np.zeros(len(want), bool)
        at = np.minimum(np.searchsorted(self._keys, want), len(self._keys) - 1)
        found = self._keys[at] == want
        return (at if self._order is None else self._order[at]), found


def write_lookup_table(con: duckdb.DuckDBPyConnection) -> None:
    """Write the lookup files of ``variants`` and ``batch_sites`` of ``con``'s current database
    (an index file) into ``lookup/`` beside it, fsynced, and name them in its ``lookup_files``
    (by :func:`genoquery.index.merge.rebuild`, which every change of either table ends with)."""
    index = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
    directory = Path(index).parent / LOOKUP_DIR
    directory.mkdir(exist_ok=True)
    name = f"variants-{secrets.token_hex(8)}"
    n = con.execute("SELECT count(*) FROM variants").fetchall()[0][0]
    _write_rows(con, _ROWS, list(VARIANT_COLUMNS), "locus", directory / name, "arrow", "locus.npy")
    _write_rows(con, LOOKUP_SITES, None, "site_row", directory / name, "sites.arrow", "site_row.npy")
    _write_ids(directory / name)
    con.execute("DELETE FROM lookup_files")
    con.execute("INSERT INTO lookup_files VALUES (?, ?)", [name, n])


def _write_rows(
    con: duckdb.DuckDBPyConnection, query: str, columns: list[str] | None, key: str, stem: Path, *suffixes: str
) -> None:
    """Write the rows of ``query`` (its ``columns``; None: all) as an Arrow IPC file and its int64
    column ``key`` as a .npy file (``stem.SUFFIX`` each), a record batch at a time, fsynced."""
    arrow_path, key_path = (stem.with_name(f"{stem.name}.{suffix}") for suffix in suffixes)
    n = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
    keys = np.lib.format.open_memmap(key_path, mode="w+", dtype=np.int64, shape=(n,))
    reader = con.sql(query).to_arrow_reader(ROWS_PER_BATCH)
    schema = pa.schema([reader.schema.field(c) for c in columns]) if columns else reader.schema
    at = 0
    with pa.OSFile(str(arrow_path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in reader:
            keys[at : at + batch.num_rows] = to_numpy(batch.column(key))
            writer.write_batch(_zeroed_nulls(batch.select(columns) if columns else batch))
            at += batch.num_rows
    keys.flush()
    del keys
    for path in (arrow_path, key_path):
        fsync_path(path)


def remove_unused_lookup_tables(store: Path) -> None:
    """Under the write lock, after a change: delete the lookup files the committed index does
    not name (those of replaced indexes, of failed changes, or of writers that died). A reader that mapped one
    keeps reading it; one that has not yet finds it gone and asks DuckDB."""
    directory = store / LOOKUP_DIR
    if not directory.is_dir():
        return
    try:
        con = open_index(store / INDEX_FILE)
    except duckdb.Error:  # no readable index: nothing to go by
        return
    try:
        kept = lookup_table_name(con)
    finally:
        con.close()
    for path in directory.iterdir():
        if path.name.split(".")[0] != kept:
            path.unlink(missing_ok=True)


def lookup_table_name(con: duckdb.DuckDBPyConnection) -> str | None:
    """The name of the lookup files the index of ``con`` names (None: it names none)."""
    try:
        rows = con.execute("SELECT name FROM lookup_files").fetchall()
    except duckdb.CatalogException:  # a store written before lookup files
        return None
    return rows[0][0] if rows else None


class LookupTable:
    """The mapped lookup files of one index (see the module docstring)."""

    def __init__(self, directory: Path, name: str) -> None:
        self._rows, self._loci = _mapped(directory / f"{name}.arrow", directory / f"{name}.locus.npy")
        try:
            self._sites, self._site_rows = _mapped(
                directory / f"{name}.sites.arrow", directory / f"{name}.site_row.npy"
            )
        except FileNotFoundError:  # written before the files of sites
            self._sites = self._site_rows = None
        try:
            self._id_hashes = np.load(directory / f"{name}.id_hash.npy", mmap_mode="r")
            self._id_rows = np.load(directory / f"{name}.id_row.npy", mmap_mode="r")
        except FileNotFoundError:  # written before the files of IDs
            self._id_hashes = self._id_rows = None

    @classmethod
    def open(cls, con: duckdb.DuckDBPyConnection, store: Path) -> LookupTable | None:
        """The lookup table the index of ``con`` names, or None (no name, files gone or damaged)."""
        name = lookup_table_name(con)
        if name is None:
            return None
        try:
            return cls(store / LOOKUP_DIR, name)
        except (OSError, ValueError):  # removed after a newer index was committed, or damaged
            return None

    @property
    def rows(self) -> pa.Table:
        """Every row, ordered by locus (zero-copy over the mapped file)."""
        return self._rows

    @cached_property
    def by_site(self) -> SiteRows:
        """The rows found by site row and allele (their keys computed on first use)."""
        return SiteRows(to_numpy(self._rows.column("site_row")), to_numpy(self._rows.column("allele")))

    @property
    def sites(self) -> pa.Table | None:
        """Every batch's records of every site with their query encoding, by site row then batch
        (None in stores written before them)."""
        return self._sites

    @property
    def site_rows(self) -> np.ndarray:
        """The int64 site row of each row of :attr:`sites` (mapped; empty without them)."""
        return np.zeros(0, np.int64) if self._site_rows is None else self._site_rows

    @property
    def ids(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The files of IDs: sorted hashes and their rows (mapped); None in stores without them."""
        return None if self._id_hashes is None else (self._id_hashes, self._id_rows)

    def rows_with_id(self, vid: str) -> pa.Table | None:
        """The rows whose ``id`` is ``vid`` (the whole text), by site row and allele; None when
        the store has no files of IDs."""
        if self._id_hashes is None:
            return None
        h = np.uint64(fnv1a(vid))
        lo, hi = int(np.searchsorted(self._id_hashes, h, "left")), int(np.searchsorted(self._id_hashes, h, "right"))
        # slices, not take: a take from the mapped columns combines their chunks (~19 ms at 10^6 rows)
        found = [self._rows.slice(int(r), 1) for r in np.sort(self._id_rows[lo:hi])]
        rows = pa.concat_tables(found) if found else self._rows.slice(0, 0)
        if rows.num_rows > 1 or (rows.num_rows and rows.column("id")[0].as_py() != vid):
            keep = [i for i, found in enumerate(rows.column("id").to_pylist()) if found == vid]
            rows = take_rows(rows, np.array(keep, np.int64))
            order = np.lexsort((to_numpy(rows.column("allele")), to_numpy(rows.column("site_row"))))
            rows = take_rows(rows, order)
        return rows

    def rows_between(self, first: int, last: int) -> pa.Table:
        """The rows whose locus lies in ``[first, last]`` (int64 loci), in locus order (a slice of
        the mapped file)."""
        lo, hi = self._span(first, last)
        return self._rows.slice(lo, hi - lo)

    def _span(self, first: int, last: int) -> tuple[int, int]:
        """The range of rows whose locus lies in ``[first, last]``."""
        return int(np.searchsorted(self._loci, first, side="left")), int(np.searchsorted(self._loci, last, "right"))

    def records_between(self, first: int, last: int) -> pa.Table | None:
        """The records (as :attr:`sites`) of the sites from the first to the last with an ALT allele
        whose locus lies in ``[first, last]`` (int64 loci); None when the store has no files of
        sites."""
        if self._sites is None:
            return None
        lo, hi = self._span(first, last)
        if lo == hi:
            return self._sites.slice(0, 0)
        site_rows = to_numpy(self._rows.column("site_row").slice(lo, hi - lo))
        a, b = np.searchsorted(self._site_rows, [site_rows.min(), site_rows.max() + 1]).tolist()
        return self._sites.slice(a, b - a)

    def site_records(self, site_row: int) -> list[dict] | None:
        """The records of the site ``site_row`` (one per batch holding it: ``batch``, the
        :data:`~genoquery.storage.site_calls.SITE_COLUMNS` and ``inline_calls``), by batch; None
        when the store has no files of sites."""
        if self._sites is None:
            return None
        lo, hi = np.searchsorted(self._site_rows, [site_row, site_row + 1]).tolist()
        return self._sites.slice(lo, hi - lo).to_pylist()

    @property
    def loci(self) -> np.ndarray:
        """The int64 locus of each row (mapped)."""
        return self._loci

    def find(self, contig_index: int, pos: int, variant_key: str) -> pa.Table:
        """The rows of ``variant_key`` (normalized, at ``pos`` of contig ``contig_index``), by
        ``site_row`` and ``allele``: none, one, or one per site repeating the key."""
        at = locus(contig_index, pos)
        lo = int(np.searchsorted(self._loci, at, side="left"))
        hi = int(np.searchsorted(self._loci, at, side="right"))
        here = self._rows.slice(lo, hi - lo)
        if hi - lo == 1:
            return here if here.column("variant_key")[0].as_py() == variant_key else here.slice(0, 0)
        keys = here.column("variant_key").to_pylist()
        return here.take(from_numpy(np.array([i for i, k in enumerate(keys) if k == variant_key], np.int64)))


def _write_ids(stem: Path) -> None:
    """``stem.id_hash.npy`` and ``stem.id_row.npy`` from the IDs of the rows of ``stem.arrow``."""
    ids = pa.ipc.open_file(pa.memory_map(f"{stem}.arrow")).read_all().column("id")
    for suffix, values in zip(("id_hash.npy", "id_row.npy"), id_index(ids), strict=True):
        path = stem.with_name(f"{stem.name}.{suffix}")
        np.save(path, values)
        fsync_path(path)


def id_index(ids: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The hashes (uint64, sorted) of the non-null ``ids`` and their rows (int64)."""
    id_hashes = import_module("genoquery.storage.id_hash").id_hashes  # numba: only when writing
    ids = ids.combine_chunks()
    rows = np.flatnonzero(to_numpy(ids.is_valid()))
    hashes = id_hashes(ids.take(from_numpy(rows)))
    order = np.argsort(hashes, kind="stable")
    return hashes[order], rows[order].astype(np.int64)


def fnv1a(text: str) -> int:
    """The 64-bit FNV-1a hash of ``text``'s UTF-8 bytes: what ``genoquery.storage.id_hash``
    computes for whole IDs, here without numba for one ID at lookup time (tested equal)."""
    h = FNV_OFFSET
    for byte in text.encode():
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def _zeroed_nulls(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with zeros under the nulls of its integer columns: DuckDB leaves whatever memory
    held there, so the same rows would give files of other bytes (a store's files are compared
    byte for byte, as the ingest on Dask is with the single process's)."""
    columns = [
        from_numpy(to_numpy(c, null=0), to_numpy(c.is_null())) if c.null_count and pa.types.is_integer(c.type) else c
        for c in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _mapped(arrow_path: Path, key_path: Path) -> tuple[pa.Table, np.ndarray]:
    """An Arrow IPC file and its key column's .npy file, both mapped."""
    rows = pa.ipc.open_file(pa.memory_map(str(arrow_path))).read_all()
    keys = np.load(key_path, mmap_mode="r")
    if rows.num_rows != len(keys):
        raise ValueError(f"{arrow_path} and {key_path} differ in length")
    return rows, keys
