"""Genotype matrices of a region for chosen samples, read from the Zarr genotype arrays.

A region is ``CONTIG[:START[-END]]``, 1-based inclusive, and selects the sites
whose POS lies in it (as :meth:`Store.variants`). Sites are numbered in genome
order, so a region is one contiguous range of ``site_row``; each batch's records
of those sites are read from its ``call_genotype`` (orthogonal selection over its
rows and its sorted requested samples: only their Zarr chunks are decoded), then
the samples are put in the order asked for. Kept INFO and FORMAT fields
(:mod:`genoquery.query.fields`) are read the same way when asked for, for the same samples: a
withdrawn sample's values are never read.

Memory: a result holds 3 bytes per call, ``sites x samples x 2`` bytes of
``gt`` (int8) plus ``sites x samples`` bytes of ``phased`` (bool); a request
over ``max_bytes`` (2 GiB by default) is refused before anything is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.arrow import to_numpy
from genoquery.deadline import check
from genoquery.errors import QueryError
from genoquery.query.cohorts import indexes_of, shown, without_withdrawn
from genoquery.query.fields import KeptField, batch_records, empty, put, read_info
from genoquery.storage.bit_planes import read_rows
from genoquery.storage.format import FILL
from genoquery.storage.regions import parse_region

if TYPE_CHECKING:
    import xarray as xr

    from genoquery.storage.batches import Batch

MAX_BYTES = 2 * 1024**3
BYTES_PER_CALL = 3  # two int8 alleles + one bool phase flag
SITE_SELECT = "SELECT site_row, contig, pos, id, alleles[1] AS ref, alleles[2:] AS alt, qual, filters FROM sites"
SITE_SQL = f"{SITE_SELECT} WHERE site_row >= ? AND site_row < ? ORDER BY site_row"


@dataclass(frozen=True)
class Genotypes:
    """Calls of some sites (rows) for some samples (columns), samples in the order requested.

    ``sites``: ``site_row, contig, pos`` (1-based), ``id`` (null when missing), ``ref``,
    ``alt`` (list of ALT alleles), ``qual`` (null when missing), ``filters`` (list).
    ``gt``: int8 (sites, samples, ploidy), allele indexes with -1 missing and -2 in the second
    slot of a haploid call; ploidy is 2 unless a batch read has calls of ploidy above 2, whose
    largest ploidy it then is (-2 beyond each call's own). ``phased``: bool (sites, samples);
    haploid calls count as phased.
    ``fields``: the kept INFO and FORMAT fields asked for, by array name (``variant_DP``: (sites,
    [width]); ``call_DP``: (sites, samples, [width])), coded as :mod:`genoquery.query.fields` says;
    ``kept`` describes them.
    """

    sites: pa.Table
    sample_ids: list[str]
    gt: np.ndarray
    phased: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    kept: tuple[KeptField, ...] = ()

    def to_xarray(self) -> xr.Dataset:
        """The calls as an ``xarray.Dataset`` with VCF Zarr names and dimensions
        (``variants``, ``samples``, ``ploidy``, ``alleles``; ``variant_allele`` is REF
        then the ALT alleles, padded with ""; a missing ID is "."), with the :attr:`fields` read
        (trailing dimensions named as in the store: ``alleles``, ``alt_alleles``, ``INFO_<ID>_dim``,
        ``FORMAT_<ID>_dim``)."""
        xr = import_module("xarray")  # 1.3 s to import: only when asked for

        refs, alts = self.sites["ref"].to_pylist(), self.sites["alt"].to_pylist()
        width = 1 + max((len(a) for a in alts), default=0)
        alleles = [[ref, *alt] + [""] * (width - 1 - len(alt)) for ref, alt in zip(refs, alts, strict=True)]
        return xr.Dataset(
            {
                "call_genotype": (("variants", "samples", "ploidy"), self.gt),
                "call_genotype_phased": (("variants", "samples"), self.phased),
                "variant_contig": (("variants",), np.array(self.sites["contig"].to_pylist(), dtype=str)),
                "variant_position": (("variants",), self.sites["pos"].to_numpy().astype(np.int32)),
                "variant_allele": (("variants", "alleles"), np.array(alleles, dtype=str).reshape(-1, width)),
                "variant_id": (("variants",), np.array(self.sites["id"].fill_null(".").to_pylist(), dtype=str)),
                "sample_id": (("samples",), np.array(self.sample_ids, dtype=str)),
                **{f.array: (_dims(f), self.fields[f.array]) for f in self.kept},
            }
        )


def _dims(kept: KeptField) -> tuple[str, ...]:
    """The VCF Zarr dimensions of a field's array."""
    leading = ("variants",) if kept.kind == "INFO" else ("variants", "samples")
    if kept.scalar:
        return leading
    return (*leading, {"A": "alt_alleles", "R": "alleles"}.get(kept.number, f"{kept.kind}_{kept.id}_dim"))


@dataclass(frozen=True)
class SampleSelection:
    """Samples to read: IDs in the caller's order, the sorted store indexes to read
    (``None`` for all samples), and each requested sample's column among those read."""

    ids: list[str]
    indexes: np.ndarray | None
    columns: np.ndarray | None

    def copied(self) -> SampleSelection:
        """The same selection with a list of IDs of its own (a result's list may be changed by
        its caller; a copy of 10^6 references costs ~4 ms, reading them again ~0.3 s)."""
        return SampleSelection(list(self.ids), self.indexes, self.columns)


def everyone(con: duckdb.DuckDBPyConnection) -> SampleSelection:
    """Every sample in store order but the withdrawn."""
    table = con.sql(
        "SELECT sample_id, sample_index FROM samples WHERE withdrawn_at IS NULL ORDER BY sample_index"
    ).to_arrow_table()
    ids = table.column("sample_id").to_pylist()
    if len(ids) == con.execute("SELECT count(*) FROM samples").fetchall()[0][0]:
        return SampleSelection(ids, None, None)
    return SampleSelection(ids, to_numpy(table.column("sample_index")).astype(np.int64), np.arange(len(ids)))


def select_samples(con: duckdb.DuckDBPyConnection, samples: Sequence[str] | None) -> SampleSelection:
    """Resolve sample IDs (``None``: :func:`everyone`); unknown, duplicated, withdrawn or no IDs
    are a :class:`QueryError` naming them."""
    if samples is None:
        return everyone(con)
    ids = list(samples) if not isinstance(samples, str) else None
    if ids is None or not all(isinstance(s, str) for s in ids):
        raise QueryError(f"samples must be a list of sample IDs (text); got {samples!r:.80}")
    if not ids:
        raise QueryError("no sample IDs given; pass samples=None for every sample")
    duplicated = [s for s, n in Counter(ids).items() if n > 1]
    if duplicated:
        raise QueryError(f"sample ID(s) requested more than once: {shown(duplicated)}")
    indexes = indexes_of(con, ids)
    unknown = [s for s, i in zip(ids, indexes, strict=True) if i < 0]
    if unknown:
        raise QueryError(f"{len(unknown)} sample ID(s) are not in this store: {shown(unknown)}")
    read = without_withdrawn(con, np.sort(indexes), refuse=True)
    return SampleSelection(ids, read, np.searchsorted(read, indexes))


def site_rows(con: duckdb.DuckDBPyConnection, contigs: list[str], region: str | None) -> tuple[int, int]:
    """The ``site_row`` range ``[lo, hi)`` of a region (1-based inclusive; ``None``: every site)."""
    if region is None:
        lo, hi = con.execute("SELECT coalesce(min(site_row), 0), coalesce(max(site_row) + 1, 0) FROM sites").fetchall()[
            0
        ]
        return lo, hi
    r = parse_region(region, contigs)
    lo, hi = con.execute(
        "SELECT min(site_row), max(site_row) + 1 FROM sites WHERE contig = ? AND pos BETWEEN ? AND ?",
        [r.contig, r.start, r.end],
    ).fetchall()[0]
    return (0, 0) if lo is None else (lo, hi)


def region_sites(con: duckdb.DuckDBPyConnection, contigs: list[str], region: str | None) -> pa.Table:
    """The ``sites`` rows of a region (1-based inclusive; ``None``: every site), consecutive site
    rows, with the columns of :attr:`Genotypes.sites`: one query, not its range then its rows."""
    if region is None:
        return con.sql(f"{SITE_SELECT} ORDER BY site_row").to_arrow_table()
    r = parse_region(region, contigs)
    query = f"{SITE_SELECT} WHERE contig = ? AND pos BETWEEN ? AND ? ORDER BY site_row"
    return con.sql(query, params=[r.contig, r.start, r.end]).to_arrow_table()


def sites_between(con: duckdb.DuckDBPyConnection, lo: int, hi: int) -> pa.Table:
    """The ``sites`` rows ``lo <= site_row < hi`` with the columns of :attr:`Genotypes.sites`."""
    return con.sql(SITE_SQL, params=[lo, hi]).to_arrow_table()


def read_calls(
    batches: list[Batch],
    con: duckdb.DuckDBPyConnection,
    sites: pa.Table,
    selection: SampleSelection,
    kept: Sequence[KeptField] = (),
) -> Genotypes:
    """The calls of ``sites`` (consecutive site rows) for the selected samples, gathered from
    each batch's records; a batch without a record of a site gives its
    :attr:`~genoquery.storage.batches.Batch.absent_call` there, unphased, and missing values of
    the ``kept`` fields."""
    n = sites.num_rows
    lo = sites["site_row"][0].as_py() if n else 0
    width = len(selection.ids) if selection.indexes is None else len(selection.indexes)
    reads = list(_batch_reads(batches, con, lo, n, selection.indexes))
    if len(reads) == 1 and reads[0][1:3] == (0, width) and len(reads[0][3]) == n:  # one batch holds it all
        batch, _, _, _, rows, samples = reads[0]
        gt, phased = (read_rows(array, rows, samples) for array in batch.calls)
    else:
        ploidy = max((batch.calls[0].shape[2] for batch, *_ in reads), default=2)
        gt = np.full((n, width, ploidy), FILL, dtype=np.int8)  # every column is one batch's, filled below
        phased = np.zeros((n, width), dtype=bool)
        for batch, first, last, at, rows, samples in reads:
            check()  # the request's time limit (genoquery.deadline), per batch of calls read
            gt[:, first:last, :2] = batch.absent_call
            if not len(at):
                continue
            genotype, phase = batch.calls
            gt[at, first:last, : genotype.shape[2]] = read_rows(genotype, rows, samples)
            phased[at, first:last] = read_rows(phase, rows, samples)
    values = {f.array: read_info(con, batches, f, lo, n) for f in kept if f.kind == "INFO"}
    for f in kept:
        if f.kind == "FORMAT":
            values[f.array] = _read_format(f, batches, reads, n, width)
    if selection.columns is not None:
        gt, phased = np.ascontiguousarray(gt[:, selection.columns]), np.ascontiguousarray(phased[:, selection.columns])
        values |= {f.array: values[f.array][:, selection.columns] for f in kept if f.kind == "FORMAT"}
    return Genotypes(sites, selection.ids, gt, phased, values, tuple(kept))


def _read_format(kept: KeptField, batches: list[Batch], reads: list, n: int, width: int) -> np.ndarray:
    """A FORMAT field's values (sites, read samples, [width]) from each batch's records of the selected
    samples (:func:`_batch_reads`); missing where a batch has no record or does not keep the field."""
    out = empty(kept, batches, (n, width))
    for batch, first, last, at, rows, samples in reads:
        if len(at) and kept.array in batch.genotypes:
            array = batch.genotypes[kept.array]
            put(out, (at, slice(first, last)), array.get_orthogonal_selection((rows, samples)), kept)
    return out


def _batch_reads(batches: list[Batch], con: duckdb.DuckDBPyConnection, lo: int, n: int, read: np.ndarray | None):
    """Per batch with selected samples: ``(batch, first, last, at, rows, samples)``: its columns
    ``first:last`` of the result, the positions ``at`` of its records among the ``n`` sites from
    ``lo``, and the Zarr selection (its rows, its samples)."""
    for batch in batches:
        first, last = (
            (batch.offset, batch.offset + batch.n_samples)
            if read is None
            else np.searchsorted(read, [batch.offset, batch.offset + batch.n_samples]).tolist()
        )
        if first == last or not n:
            continue
        at, rows = batch_records(con, batch, lo, n)
        samples = slice(None) if read is None else read[first:last] - batch.offset
        yield batch, first, last, at, _as_slice(rows), samples


def _as_slice(rows: np.ndarray) -> slice | np.ndarray:
    """Consecutive rows as a slice: zarr reads a slice's chunks whole, while an integer array
    goes through orthogonal indexing (10x slower when exporting every sample of a region)."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def read_genotypes(
    con: duckdb.DuckDBPyConnection,
    contigs: list[str],
    batches: list[Batch],
    region: str | None,
    samples: Sequence[str] | SampleSelection | None,
    max_bytes: int = MAX_BYTES,
    kept: Sequence[KeptField] = (),
) -> Genotypes:
    """The genotype matrix of a region (1-based inclusive; ``None``: every site) for
    ``samples`` (``None``: all, in store order; or a selection already resolved), with the
    ``kept`` fields; see the module docstring for memory (the fields add their values' bytes)."""
    sites = region_sites(con, contigs, region)
    selection = samples if isinstance(samples, SampleSelection) else select_samples(con, samples)
    size = sites.num_rows * len(selection.ids) * BYTES_PER_CALL
    if size > max_bytes:
        raise QueryError(
            f"{region or 'the whole store'} holds {sites.num_rows} sites x {len(selection.ids)} samples = "
            f"{size / 2**20:,.0f} MiB of genotypes ({BYTES_PER_CALL} bytes per call), over max_bytes "
            f"({max_bytes / 2**20:,.0f} MiB): narrow the region or the samples, or raise max_bytes"
        )
    return read_calls(batches, con, sites, selection, kept)
