"""Reading the query encoding of sites (listed and missing calls, dense codes, haploid masks).

See :mod:`genoquery.storage.call_codes` for the encoding. Sites are read in
blocks of consecutive index rows whose decoded calls (dense codes, listed calls
and, when asked for, missing-call tokens) fit a byte budget, so memory is bounded
whatever the region's length and the cohort's size (one site above the budget
is read alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from genoquery.arrow import to_numpy
from genoquery.deadline import ahead
from genoquery.storage.local_arrays import capped_zarr, local_group
from genoquery.storage.objects import ObjectPath, zarr_location
from genoquery.storage.shard_reads import RowReader, Visitor, read_rows_together
from genoquery.storage.site_calls import SiteCalls
from genoquery.storage.wide_calls import WideCalls, read_wide

# Decoded bytes per block of sites. Chunks that consecutive blocks share are decoded once (see
# shard_reads.read_rows_together), so blocks can be small: at 10^6 samples, 1 Mb of a 10%
# cohort's calls read in 1.4 s of CPU with 16 MB blocks against 1.5-2.3 s with 64 MB, whose
# arrays, above glibc's mmap threshold, are page-faulted afresh for each block (sys time).
BLOCK_BYTES = 16 << 20


class CallReader:
    """Reads encoded calls from one batch's query group (``STORE/batches/NAME/query.zarr``): a
    local group's arrays from their files, described by their metadata without importing zarr
    (:mod:`genoquery.storage.local_arrays`), a group on object storage through zarr."""

    def __init__(self, genotypes: Path | ObjectPath, n_samples: int) -> None:
        group = (
            capped_zarr().open_group(zarr_location(genotypes), mode="r")
            if isinstance(genotypes, ObjectPath)
            else local_group(Path(genotypes))
        )
        self.n_samples = n_samples
        self._codes, self._listed_sample, self._listed_gt, self._missing_tokens = (
            RowReader(group[name])
            for name in ("call_genotype_code", "listed_call_sample", "listed_call_genotype", "missing_call_token")
        )
        self._masks = RowReader(group["haploid_mask"])
        # the sample-major index of the listed calls (batches written before it have none)
        self._by_sample = (
            (
                RowReader(group["listed_call_sample_start"]),
                RowReader(group["listed_call_by_sample"]),
                RowReader(group["listed_call_genotype_by_sample"]),
            )
            if "listed_call_sample_start" in group
            else None
        )
        self._group = group

    @cached_property
    def wide(self) -> WideCalls:
        """The batch's calls of ploidy above 2 (:mod:`genoquery.storage.wide_calls`), rows batch rows."""
        return read_wide(self._group)

    @cached_property
    def haploid(self) -> np.ndarray:
        """(patterns, samples) bool: which samples' calls are haploid in each pattern."""
        masks = read_rows_together([(self._masks, slice(0, self._masks.array.shape[0]))])[0]
        return (
            np.unpackbits(masks, axis=1, bitorder="little", count=self.n_samples).astype(bool)
            if len(masks)
            else np.zeros((0, self.n_samples), dtype=bool)
        )

    def blocks(
        self,
        sites: pa.Table,
        budget: int = BLOCK_BYTES,
        missing: bool = False,
        codes: bool = True,
        listed: bool = True,
    ) -> Iterator[SiteCalls]:
        """The calls of ``sites`` (columns of :data:`SITE_COLUMNS`, in site order), in blocks of
        at most ``budget`` decoded bytes; ``missing`` also reads the missing calls (only statistics
        need them); without ``codes``, dense sites' codes are not read (``SiteCalls.codes`` is
        empty; a caller that reduces them visits them itself, see :meth:`visit_codes`); without
        ``listed``, no site has listed calls (a caller visits them, see :meth:`visit_listed`). The next
        block is read on a background thread while the caller works on this one."""
        dense_row = to_numpy(sites["dense_row"], null=-1)
        bounds = budget_bounds(self._site_bytes(sites, (dense_row >= 0) & codes, missing, listed), budget)
        kept: dict = {}  # chunks two consecutive blocks share are decoded once
        if not codes:
            dense_row = np.where(dense_row >= 0, -2, -1)  # dense, but no code row to read
        if len(bounds) <= 1:  # one read: a thread would only add its start-up
            yield from (self._read(sites, dense_row, missing, kept, listed) for _ in bounds)
            return
        yield from ahead(self._read(sites.slice(a, b - a), dense_row[a:b], missing, kept, listed) for a, b in bounds)

    def visit_codes(self, rows: slice, visitor: Visitor) -> None:
        """:meth:`RowReader.visit` of the dense code rows ``rows``: codes reduced as they are
        decoded, one L2-sized inner chunk at a time, never assembled."""
        self._codes.visit(rows, visitor)

    def visit_listed(self, rows: slice, visitor) -> None:
        """``visitor(samples, genotypes, to)`` on the listed calls ``rows`` (``listed_call_sample``
        and ``listed_call_genotype``), a chunk of rows at a time as they are decoded on the read
        threads (:meth:`RowReader.visit_with`): ``to`` places them within ``rows``."""
        self._listed_sample.visit_with(self._listed_gt, rows, visitor)

    def own_listed_calls(self, sample: int) -> tuple[np.ndarray, np.ndarray]:
        """One sample's listed calls: their positions in the listed-call arrays (int64, ascending)
        and alleles ((calls, ploidy) int8), read from the sample-major index: its run in each part
        of the listed calls (see :class:`genoquery.ingest.zarr_writer.GenotypeWriter`)."""
        if self._by_sample is None:
            return self._searched_listed_calls(sample)
        starts, positions, alleles = self._by_sample
        part = starts.array.attrs["part_calls"]
        bases, runs = [], []  # a part's first listed call, and this sample's run in the part
        for p, (lo, hi) in enumerate(starts.read_columns(slice(sample, sample + 2)).tolist()):
            bases += [p * part] * (hi > lo)
            runs += [slice(p * part + lo, p * part + hi)] * (hi > lo)
        if not runs:
            return np.zeros(0, np.int64), np.zeros((0, *alleles.array.shape[1:]), alleles.array.dtype)
        read = read_rows_together([(r, run) for run in runs for r in (positions, alleles)])
        within = read[::2]
        return np.concatenate([b + w.astype(np.int64) for b, w in zip(bases, within, strict=True)]), np.concatenate(
            read[1::2]
        )

    def _searched_listed_calls(self, sample: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`own_listed_calls` of a batch without the sample-major index: each inner chunk
        of ``listed_call_sample`` is searched as it is decoded, never assembled (at 10^5 samples,
        8.7 M listed calls in ~20 ms on 2 threads)."""
        found: list[np.ndarray] = []

        def search(chunk: np.ndarray, to: tuple[slice, ...], within: tuple[slice, ...]) -> None:
            hits = np.flatnonzero(chunk[within] == sample)
            if len(hits):
                found.append(hits + to[0].start)  # list.append: atomic

        self._listed_sample.visit(slice(0, self._listed_sample.array.shape[0]), search)
        positions = np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)
        gt = np.empty((len(positions), *self._listed_gt.array.shape[1:]), self._listed_gt.array.dtype)

        def pick(first: int, chunk: np.ndarray, to: tuple[slice, ...], within: tuple[slice, ...]) -> None:
            lo, hi = np.searchsorted(positions, [first + to[0].start, first + to[0].stop])
            gt[lo:hi] = chunk[within][positions[lo:hi] - first - to[0].start]

        for first, end in _runs_of_chunks(positions, self._listed_gt):
            self._listed_gt.visit(slice(first, end), partial(pick, first))
        return positions, gt

    def own_codes(self, sample: int) -> np.ndarray:
        """One sample's 2-bit codes (uint8, 0..3) at every dense code row of the batch: only the
        inner chunks holding its byte of each row are decoded."""
        byte, shift = sample >> 2, (sample & 3) * 2
        return (self._codes.read_columns(slice(byte, byte + 1))[:, 0] >> shift) & 3

    def _site_bytes(self, sites: pa.Table, dense: np.ndarray, missing: bool, listed: bool = True) -> np.ndarray:
        """Decoded bytes of each site's calls: its code row and (if read) listed calls and tokens."""
        row_bytes = self._codes.array.shape[1]
        listed = to_numpy(sites["n_listed"]).astype(np.int64) * (4 + 2) * listed
        tokens = to_numpy(sites["n_missing_tokens"]).astype(np.int64) * 2 * missing
        return dense * row_bytes + listed + tokens

    def _read(
        self, sites: pa.Table, dense_row: np.ndarray, missing: bool, kept: dict, with_listed: bool = True
    ) -> SiteCalls:
        listed = _Ranges(to_numpy(sites["listed_start"]), to_numpy(sites["n_listed"]) * with_listed)
        missed = _Ranges(to_numpy(sites["missing_start"]), to_numpy(sites["n_missing_tokens"]) * missing)
        dense = dense_row != -1
        rows = dense_row[dense_row >= 0]  # ascending; -2: dense, codes not read
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        slices = [
            (self._listed_sample, listed.span),
            (self._listed_gt, listed.span),
            (self._missing_tokens, missed.span),
            (self._codes, slice(lo, hi)),
        ]
        listed_sample, listed_gt, missing_tokens, codes = read_rows_together(slices, kept)
        return SiteCalls(
            site_row=to_numpy(sites["site_row"], null=-1),
            n_alleles=to_numpy(sites["n_alleles"]),
            dense=np.where(dense, np.cumsum(dense) - 1, -1).astype(np.int64),
            pattern=to_numpy(sites["haploid_pattern"], null=-1).astype(np.int64),
            listed=listed.offsets,
            listed_sample=listed.keep(listed_sample),
            listed_gt=listed.keep(listed_gt),
            missing=missed.offsets,
            missing_tokens=missed.keep(missing_tokens),
            codes=codes if len(rows) == len(codes) else codes[rows - lo],
            wide=self.wide.at_rows(to_numpy(sites["batch_row"])),
        )


def _runs_of_chunks(positions: np.ndarray, reader: RowReader) -> list[tuple[int, int]]:
    """``(first, end)`` row ranges covering the inner chunks of ``reader``'s array that hold
    ``positions`` (ascending), adjacent chunks merged (one range where zarr reads the array)."""
    if not len(positions):
        return []
    n_rows = reader.array.shape[0]
    per = n_rows if reader.layout is None else reader.layout.chunk[0]
    chunks = np.unique(positions // per)
    breaks = np.flatnonzero(np.diff(chunks) > 1)
    firsts, lasts = chunks[np.concatenate([[0], breaks + 1])], chunks[np.concatenate([breaks, [len(chunks) - 1]])]
    return [(int(a) * per, min((int(b) + 1) * per, n_rows)) for a, b in zip(firsts, lasts, strict=True)]


def budget_bounds(costs: np.ndarray, budget: int, most: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` row ranges of consecutive sites whose ``costs`` sum to at most ``budget``
    (or of one site, where a site alone is over it), and of at most ``most`` sites."""
    before = np.concatenate([[0], np.cumsum(costs)])
    bounds, start = [], 0
    while start < len(costs):
        end = max(int(np.searchsorted(before, before[start] + budget, side="right")) - 1, start + 1)
        end = end if most is None else min(end, start + most)
        bounds.append((start, end))
        start = end
    return bounds


class _Ranges:
    """Rows ``start[i] .. start[i] + count[i] - 1`` of the sites of a block, read as one slice
    spanning the sites that have rows (the others' starts are not read: missing-call tokens
    not asked for have counts of 0, and reading up to their starts read every token between)."""

    def __init__(self, start: np.ndarray, count: np.ndarray) -> None:
        count = count.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(count)])
        used = count > 0
        first, end = start[used], start[used] + count[used]
        self.lo = int(first.min()) if len(first) else 0
        self.span = slice(self.lo, int(end.max()) if len(first) else self.lo)
        adjacent = np.array_equal(first[1:], end[:-1])
        # each row's position in the span, for all sites at once (a per-site arange cost
        # ~4 us a site: 93 ms of one participant's 23,538 sites)
        self.rows = (
            None if adjacent else np.arange(self.offsets[-1]) + np.repeat(start - self.lo - self.offsets[:-1], count)
        )

    def keep(self, values: np.ndarray) -> np.ndarray:
        """The sites' rows of ``values`` (the slice ``span``), in site order."""
        return values if self.rows is None else values[self.rows]
