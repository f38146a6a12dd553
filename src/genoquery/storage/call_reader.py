"""Reading the query encoding of sites (listed and missing calls, dense codes, haploid masks).

See :mod:`genoquery.storage.call_codes` for the encoding. Sites are read in
blocks of consecutive index rows whose decoded calls (dense codes, listed calls
and, when asked for, missing-call tokens) fit a byte budget, so memory is bounded
whatever the region's length and the cohort's size (one site above the budget
is read alone).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import zarr

from genoquery.deadline import ahead
from genoquery.storage.objects import ObjectPath, zarr_location
from genoquery.storage.shard_reads import RowReader, Visitor, read_rows_together
from genoquery.storage.wide_calls import WideCalls, read_wide

# Decoded bytes per block of sites. Chunks that consecutive blocks share are decoded once (see
# shard_reads.read_rows_together), so blocks can be small: at 10^6 samples, 1 Mb of a 10%
# cohort's calls read in 1.4 s of CPU with 16 MB blocks against 1.5-2.3 s with 64 MB, whose
# arrays, above glibc's mmap threshold, are page-faulted afresh for each block (sys time).
BLOCK_BYTES = 16 << 20
SITE_COLUMNS = (
    "site_row, len(alleles) AS n_alleles, dense_row, haploid_pattern, listed_start, n_listed, "
    "missing_start, n_missing_tokens, batch_row"
)


@dataclass(frozen=True)
class SiteCalls:
    """The encoded calls of a block of consecutive sites of one batch.

    Per site (``n``): ``site_row``, ``n_alleles`` (REF included), ``dense`` (its rank among
    the block's dense sites, its row in ``codes`` when they were read; -1 for a sparse site),
    ``pattern`` (haploid mask id or -1), ``listed`` (n + 1) offsets into ``listed_sample``
    (int32) / ``listed_gt`` (m, 2) int8, and ``missing`` (n + 1) offsets into
    ``missing_tokens`` (uint16, see :mod:`genoquery.storage.call_codes`; empty unless asked
    for). ``codes`` is (dense sites, ceil(samples / 4)) uint8, or empty when not read. ``wide``:
    the sites' calls of ploidy above 2 (rows: site indexes), whose stand-ins are missing calls.
    """

    site_row: np.ndarray
    n_alleles: np.ndarray
    dense: np.ndarray
    pattern: np.ndarray
    listed: np.ndarray
    listed_sample: np.ndarray
    listed_gt: np.ndarray
    missing: np.ndarray
    missing_tokens: np.ndarray
    codes: np.ndarray
    wide: WideCalls = field(default_factory=WideCalls.empty)


def _column(sites: pa.Table, name: str, fill: int = -1) -> np.ndarray:
    return (
        sites[name].to_numpy(zero_copy_only=False)
        if sites[name].null_count == 0
        else sites[name].fill_null(fill).to_numpy(zero_copy_only=False)
    )


class CallReader:
    """Reads encoded calls from one batch's query group (``STORE/batches/NAME/query.zarr``).

    Unless the user configured it, zarr's decoding pool is capped at the core count:
    its default (cores + 4 threads, each running multi-threaded Blosc) read 100 MB of
    missing calls in 306 ms on 2 cores, 2 threads in 84 ms.
    """

    def __init__(self, genotypes: Path | ObjectPath, n_samples: int) -> None:
        if zarr.config.get("threading.max_workers") is None:
            zarr.config.set({"threading.max_workers": os.cpu_count() or 1})
        group = zarr.open_group(zarr_location(genotypes), mode="r")
        self.n_samples = n_samples
        self._codes, self._listed_sample, self._listed_gt, self._missing_tokens = (
            RowReader(group[name])
            for name in ("call_genotype_code", "listed_call_sample", "listed_call_genotype", "missing_call_token")
        )
        self._masks = group["haploid_mask"]
        self._group = group

    @cached_property
    def wide(self) -> WideCalls:
        """The batch's calls of ploidy above 2 (:mod:`genoquery.storage.wide_calls`), rows batch rows."""
        return read_wide(self._group)

    @cached_property
    def haploid(self) -> np.ndarray:
        """(patterns, samples) bool: which samples' calls are haploid in each pattern."""
        masks = self._masks[...]
        return (
            np.unpackbits(masks, axis=1, bitorder="little", count=self.n_samples).astype(bool)
            if len(masks)
            else np.zeros((0, self.n_samples), dtype=bool)
        )

    def blocks(
        self, sites: pa.Table, budget: int = BLOCK_BYTES, missing: bool = False, codes: bool = True
    ) -> Iterator[SiteCalls]:
        """The calls of ``sites`` (columns of :data:`SITE_COLUMNS`, in site order), in blocks of
        at most ``budget`` decoded bytes; ``missing`` also reads the missing calls (only statistics
        need them); without ``codes``, dense sites' codes are not read (``SiteCalls.codes`` is
        empty; a caller that reduces them visits them itself, see :meth:`visit_codes`). The next
        block is read on a background thread while the caller works on this one."""
        dense_row = _column(sites, "dense_row")
        bounds = budget_bounds(self._site_bytes(sites, (dense_row >= 0) & codes, missing), budget)
        kept: dict = {}  # chunks two consecutive blocks share are decoded once
        if not codes:
            dense_row = np.where(dense_row >= 0, -2, -1)  # dense, but no code row to read
        if len(bounds) <= 1:  # one read: a thread would only add its start-up
            yield from (self._read(sites, dense_row, missing, kept) for _ in bounds)
            return
        yield from ahead(self._read(sites.slice(a, b - a), dense_row[a:b], missing, kept) for a, b in bounds)

    def visit_codes(self, rows: slice, visitor: Visitor) -> None:
        """:meth:`RowReader.visit` of the dense code rows ``rows``: codes reduced as they are
        decoded, one L2-sized inner chunk at a time, never assembled."""
        self._codes.visit(rows, visitor)

    def _site_bytes(self, sites: pa.Table, dense: np.ndarray, missing: bool) -> np.ndarray:
        """Decoded bytes of each site's calls: its code row, listed calls and (if read) tokens."""
        row_bytes = self._codes.array.shape[1]
        listed = _column(sites, "n_listed").astype(np.int64) * (4 + 2)
        tokens = _column(sites, "n_missing_tokens").astype(np.int64) * 2 * missing
        return dense * row_bytes + listed + tokens

    def _read(self, sites: pa.Table, dense_row: np.ndarray, missing: bool, kept: dict) -> SiteCalls:
        listed = _Ranges(_column(sites, "listed_start"), _column(sites, "n_listed"))
        missed = _Ranges(_column(sites, "missing_start"), _column(sites, "n_missing_tokens") * missing)
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
            site_row=_column(sites, "site_row"),
            n_alleles=_column(sites, "n_alleles"),
            dense=np.where(dense, np.cumsum(dense) - 1, -1).astype(np.int64),
            pattern=_column(sites, "haploid_pattern").astype(np.int64),
            listed=listed.offsets,
            listed_sample=listed.keep(listed_sample),
            listed_gt=listed.keep(listed_gt),
            missing=missed.offsets,
            missing_tokens=missed.keep(missing_tokens),
            codes=codes if len(rows) == len(codes) else codes[rows - lo],
            wide=self.wide.at_rows(_column(sites, "batch_row")),
        )


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
