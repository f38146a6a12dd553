"""Exact per-allele statistics of any cohort, from the query encoding of calls.

A site's statistics need only its calls that are not hom-ref, plus each cell's
sample count and haploid count: the listed calls are counted as they are, a
dense site's codes are read for the cohort's samples only, and hom-ref calls
are never visited. Definitions are those of :mod:`genoquery.stats.allele_stats`,
whose :func:`~genoquery.stats.allele_stats.tally_site` turns the histograms into
statistics, so a cohort of everyone gives the ingest's numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pyarrow as pa

from genoquery.arrow import to_numpy
from genoquery.cores import usable_cores
from genoquery.deadline import check
from genoquery.stats.allele_stats import Cells, empty_counts, tally_site
from genoquery.storage.call_codes import CODE_LOW_BITS, MAX_GAP, PARTIAL_REF, next_missing, popcount
from genoquery.storage.call_reader import CallReader
from genoquery.storage.format import FILL
from genoquery.storage.site_calls import SiteCalls
from genoquery.storage.wide_calls import add_counts

COUNT_THREADS = usable_cores()
# One pool for every count (its threads start at first use), as storage.shard_reads does for
# reads: a pool per query started its threads at each query, 3-8 ms of 68 ms at 10^5 on a busy
# machine. Counting jobs never wait on other jobs.
_POOL = ThreadPoolExecutor(max_workers=COUNT_THREADS, thread_name_prefix="genoquery-count")
PACKED_ABOVE = 1 << 18
"""Above this many samples the cohort mask is a bit per sample (L2-resident): per missing-call
token, 2.07 ns against 2.39 ns for a byte per sample at 10^6 samples, but 2.84 against 2.17 ns
at 10^5, where the byte mask stays in L2."""


@numba.njit(nogil=True, cache=True)
def _tile_code_counts(out, tile, first, n_rows, n_bytes, member_bits, column):  # pragma: no cover - compiled
    """Add to ``out`` (n_rows, 2) int64 the cohort's codes 1 and 2 (het, hom ALT 1) in rows
    ``first .. first + n_rows - 1`` of ``tile``, a decoded inner chunk of the dense codes whose
    first ``n_bytes`` bytes of each row are the code bytes from ``column`` on: 32 samples per
    uint64, the codes ANDed with ``member_bits`` (0b11 per member, the codes' layout) and
    popcounted, ~7 us per site at 10^6 samples whatever the cohort's size."""
    full = n_bytes // 8
    mask = member_bits[column : column + full * 8].view(np.uint64)
    for r in range(n_rows):
        row = tile[first + r]
        words = row[: full * 8].view(np.uint64)
        het = hom = np.uint64(0)
        for i in range(full):
            x = words[i] & mask[i]
            low, high = x & CODE_LOW_BITS, (x >> np.uint64(1)) & CODE_LOW_BITS
            het += popcount(low & ~high)  # code 1
            hom += popcount(high & ~low)  # code 2
        for b in range(full * 8, n_bytes):
            x = np.uint64(row[b] & member_bits[column + b])
            low, high = x & CODE_LOW_BITS, (x >> np.uint64(1)) & CODE_LOW_BITS
            het += popcount(low & ~high)
            hom += popcount(high & ~low)
        out[r, 0] += het
        out[r, 1] += hom


def _coded_counts(reader: CallReader, rows: np.ndarray, member_bits: np.ndarray) -> np.ndarray:
    """(rows, 2) int64: the cohort's het and hom ALT-1 codes at the dense code rows ``rows``
    (ascending), reduced while the codes are decoded (:meth:`CallReader.visit_codes`): at 10^6
    samples the 1,285 dense rows of 1 Mb are 321 MB decoded, never written to memory. Each
    column of inner chunks adds into its own partial sums (chunks are reduced concurrently)."""
    if not len(rows):
        return np.zeros((0, 2), dtype=np.int64)
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    partial: dict[int, np.ndarray] = {}  # by first code column: chunks of one column share rows

    def reduce(tile: np.ndarray, to: tuple[slice, ...], within: tuple[slice, ...]) -> None:
        column, at = to[1].start, to[0]
        sums = partial.setdefault(column, np.zeros((hi - lo, 2), dtype=np.int64))  # atomic
        n_bytes = within[1].stop - within[1].start
        _tile_code_counts(sums[at], tile, within[0].start, at.stop - at.start, n_bytes, member_bits, column)

    reader.visit_codes(slice(lo, hi), reduce)
    return sum(partial.values())[rows - lo]


@numba.njit(nogil=True, cache=True)
def _add_dense(hist, codes, d, coded, members, cells, haploid, p, width):  # pragma: no cover - compiled
    """A dense site's codes 1 and 2 (and haploid REF calls) of the cohort's samples.

    All-diploid sites count codes per cell without branching on them (codes are
    unpredictable; branches cost 5x), or for a large cohort without grouping take them from
    ``coded`` (see :func:`_coded_counts`: row ``d``, het and hom); sites with haploid calls test
    each sample.
    """
    if p < 0:
        per_code = np.zeros((hist.shape[0], 4), dtype=np.int64)
        if len(coded):
            per_code[1, 1] += coded[d, 0]
            per_code[1, 2] += coded[d, 1]
        elif cells.shape[1] == 1:  # no grouping: every member is in cell 0, row 1
            for s in members:
                per_code[1, (codes[d, s >> 2] >> ((s & 3) * 2)) & 3] += 1
        else:
            for s in members:
                b = (codes[d, s >> 2] >> ((s & 3) * 2)) & 3
                for k in range(cells.shape[1]):
                    per_code[cells[s, k] + 1, b] += 1
        hist[:, 2 * width + 3] += per_code[:, 1]  # (0, 1)
        hist[:, 3 * width + 3] += per_code[:, 2]  # (1, 1)
        return
    for s in members:
        b = (codes[d, s >> 2] >> ((s & 3) * 2)) & 3
        if b == 3:
            continue
        if b == 0:
            code = 2 * width  # haploid REF (0, -2); diploid REF calls are not counted
            if not haploid[p, s]:
                continue
        elif b == 1:
            code = 2 * width + 3
        else:
            code = 3 * width + (0 if haploid[p, s] else 3)  # (1, -2) or (1, 1)
        for k in range(cells.shape[1]):
            hist[cells[s, k] + 1, code] += 1


@numba.njit(nogil=True, cache=True)
def _count(
    listed,
    listed_sample,
    listed_gt,
    missing,
    missing_tokens,
    dense,
    codes,
    coded,
    listed_hist,
    pattern,
    haploid,
    haploid_cells,
    members,
    in_cohort,
    packed,
    cells,
    site_counts,
    allele_counts,
):  # pragma: no cover - compiled
    """Histogram each site's non-hom-ref calls per cell and tally them.

    ``cells`` (samples, k) is each sample's cells (-1 outside the cohort);
    ``coded`` (dense sites, 2) the cohort's het and hom codes of the dense sites (empty unless the
    cohort is counted by word, see :func:`_coded_counts`); ``listed_hist`` (sites, w * w) the
    cohort's listed calls by genotype code of width w (see :func:`_listed_counts`; empty unless
    counted so, when ``listed`` holds no call); ``members`` the cohort's sample
    indexes and ``in_cohort`` their mask, uint8: a byte per sample,
    or with ``packed`` a bit per sample (see :data:`PACKED_ABOVE`); ``haploid_cells`` (patterns,
    cells) the cohort's haploid samples per cell, from which a sparse site's unlisted haploid REF
    calls are counted. Genotype codes are ``(a0 + 2) * width + a1 + 2``.
    ``hist`` row ``c + 1`` is cell ``c`` (row 0: outside the cohort). Missing calls of
    all-diploid sites without grouping, most calls read, are counted in a register
    without branching on membership (unpredictable for a random cohort), from the mask
    (L2-resident: 2x faster than ``cells``). Loops are written out: numba does not inline a
    helper per call (2x slower).
    """
    width = allele_counts.shape[1] + 2
    hist = np.zeros((site_counts.shape[1] + 1, width * width), dtype=np.int64)
    hap_ref = 2 * width
    listed_width = np.int64(np.sqrt(listed_hist.shape[1]) + 0.5)  # w of listed_hist's codes
    for v in range(len(dense)):
        hist[:, :] = 0
        p = pattern[v]
        sparse_haploid = p >= 0 and dense[v] < 0  # unlisted haploid calls are REF
        if cells.shape[1] == 1:  # no grouping: add membership (0 or 1), no branch on it
            fewer_ref = 0
            if len(listed_hist):  # counted as decoded: codes of width w, re-coded to this width
                w = listed_width
                for c in range(w * w):
                    n = listed_hist[v, c]
                    if n:
                        hist[1, (c // w) * width + c % w] += n
                        fewer_ref += n if c % w == 0 else 0  # a1 == FILL
            for r in range(listed[v], listed[v + 1]):
                s = np.int64(listed_sample[r])
                member = (np.int64(in_cohort[s >> 3]) >> (s & 7)) & 1 if packed else np.int64(in_cohort[s])
                a1 = np.int64(listed_gt[r, 1])
                hist[1, (np.int64(listed_gt[r, 0]) + 2) * width + a1 + 2] += member
                fewer_ref += member & (a1 == FILL)
            hist[1, hap_ref] -= fewer_ref if sparse_haploid else 0
        else:
            for r in range(listed[v], listed[v + 1]):
                s = listed_sample[r]
                code = (listed_gt[r, 0] + 2) * width + (listed_gt[r, 1] + 2)
                fewer_ref = sparse_haploid and listed_gt[r, 1] == FILL
                for k in range(cells.shape[1]):
                    c = cells[s, k] + 1
                    if c:
                        hist[c, code] += 1
                        hist[c, hap_ref] -= fewer_ref
        sample = -1  # missing-call tokens: gaps from the previous missing sample
        if p < 0 and cells.shape[1] == 1:  # the commonest case: register counts, no branch on membership
            n = 0
            n_partial = 0
            for r in range(missing[v], missing[v + 1]):
                token = np.int64(missing_tokens[r])
                if token & MAX_GAP == 0:  # a skip (see next_missing), written out: 18% faster
                    sample += MAX_GAP
                    continue
                sample += token & MAX_GAP
                member = (
                    (np.int64(in_cohort[sample >> 3]) >> (sample & 7)) & 1 if packed else np.int64(in_cohort[sample])
                )
                n += member
                n_partial += member & (token >> 15)
            hist[1, width + 1] += n - n_partial  # (-1, -1)
            hist[1, width + 2] += n_partial  # (-1, 0)
        else:
            for r in range(missing[v], missing[v + 1]):
                sample, is_call = next_missing(missing_tokens[r], sample)
                if not is_call:
                    continue
                hap = p >= 0 and haploid[p, sample]
                code = width + 2 if missing_tokens[r] & PARTIAL_REF else width + 1 - hap  # (-1, 0), (-1, -2), (-1, -1)
                for k in range(cells.shape[1]):
                    c = cells[sample, k] + 1
                    if c:
                        hist[c, code] += 1
                        hist[c, hap_ref] -= sparse_haploid and hap
        if dense[v] >= 0:
            _add_dense(hist, codes, dense[v], coded, members, cells, haploid, p, width)
        elif p >= 0:
            hist[1:, hap_ref] += haploid_cells[p]
        tally_site(hist[1:], v, site_counts, allele_counts)


@numba.njit(nogil=True, cache=True)
def _listed_hist(samples, genotypes, first, starts, ends, in_cohort, packed, width, out):  # pragma: no cover - compiled
    """Add to ``out`` (sites, width * width) the cohort's listed calls of each site (rows
    ``starts[v] .. ends[v] - 1``) among the calls ``samples`` / ``genotypes``, rows ``first`` on,
    by genotype code ``(a0 + 2) * width + a1 + 2``: membership (a bit or a byte per sample of
    ``in_cohort``) is added, not branched on."""
    for v in range(len(starts)):
        lo, hi = max(starts[v], first) - first, min(ends[v], first + len(samples)) - first
        for q in range(lo, hi):
            s = np.int64(samples[q])
            member = (np.int64(in_cohort[s >> 3]) >> (s & 7)) & 1 if packed else np.int64(in_cohort[s])
            out[v, (np.int64(genotypes[q, 0]) + 2) * width + np.int64(genotypes[q, 1]) + 2] += member


def _listed_counts(reader: CallReader, sites: pa.Table, in_cohort: np.ndarray, packed: bool) -> np.ndarray:
    """(sites, w * w) int64: the cohort's listed calls of each of ``sites`` by genotype code of width
    ``w`` (alleles + 2), counted as their inner chunks are decoded (:meth:`CallReader.visit_listed`):
    at 10^6 samples 1 Mb holds 25 M listed calls, 150 MB decoded, which read in blocks were written
    to memory and read back by :func:`_count` (a count and a read each of ~100 ms of CPU)."""
    width = int(to_numpy(sites["n_alleles"]).max(initial=1)) + 2
    counts = to_numpy(sites["n_listed"]).astype(np.int64)
    has = np.flatnonzero(counts > 0)
    out = np.zeros((len(counts), width * width), np.int64)
    if not len(has):
        return out
    starts = to_numpy(sites["listed_start"]).astype(np.int64)[has]
    order = np.argsort(starts, kind="stable")
    has, starts = has[order], starts[order]
    ends = starts + counts[has]
    rows = slice(int(starts[0]), int(ends.max()))
    parts: list[tuple[int, np.ndarray]] = []

    def count(samples: np.ndarray, genotypes: np.ndarray, to: slice) -> None:
        first, end = rows.start + to.start, rows.start + to.stop
        a, b = int(np.searchsorted(ends, first, side="right")), int(np.searchsorted(starts, end))
        part = np.zeros((max(b - a, 0), width * width), np.int64)
        _listed_hist(samples, genotypes, first, starts[a:b], ends[a:b], in_cohort, packed, width, part)
        parts.append((a, part))  # list.append: atomic

    reader.visit_listed(rows, count)
    summed = np.zeros((len(has), width * width), np.int64)
    for a, part in parts:
        summed[a : a + len(part)] += part
    out[has] = summed
    return out


def _member_bits(in_cohort: np.ndarray, n_members: int) -> np.ndarray:
    """The cohort as 2 bits per sample, 0b11 for a member, in the dense codes' layout (uint8,
    ceil(samples / 4)); empty for a cohort small enough that reading its members' codes one
    by one (~1 ns each) costs less than every word of the codes (~0.25 ns per 32 samples)."""
    if n_members * 32 <= len(in_cohort) // 4:
        return np.zeros(0, dtype=np.uint8)
    return np.packbits(np.repeat(in_cohort.astype(bool), 2), bitorder="little")


def _haploid_cells(haploid: np.ndarray, cells: Cells) -> np.ndarray:
    """(patterns, cells) int64: the cohort's haploid samples in each cell, per pattern."""
    out = np.zeros((len(haploid), len(cells.sizes)), dtype=np.int64)
    for p, mask in enumerate(haploid):
        of = cells.of_sample[mask].reshape(-1)
        out[p] = np.bincount(of[of >= 0], minlength=len(cells.sizes))
    return out


def _split(batch: SiteCalls, dense_work: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive site ranges of ``batch`` with about equal counting work
    (listed calls, missing-call tokens, and ``dense_work`` per dense site)."""
    work = np.diff(batch.listed) + np.diff(batch.missing) + (batch.dense >= 0) * dense_work
    cuts = np.searchsorted(np.cumsum(work), np.arange(1, parts) * work.sum() / parts)
    edges = [0, *np.minimum(cuts + 1, len(work)).tolist(), len(work)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def count_calls(
    reader: CallReader, sites: pa.Table, cells: Cells, members: np.ndarray
) -> Iterator[tuple[SiteCalls, np.ndarray, np.ndarray]]:
    """``site_counts`` and ``allele_counts`` (see :func:`~genoquery.stats.allele_stats.tally_site`)
    of each block of the sites ``sites`` (columns of :data:`~genoquery.storage.call_reader.SITE_COLUMNS`,
    in batch order) of one batch read by ``reader``, for the cohort ``members`` (sorted sample
    indexes of that batch) in ``cells`` (over the batch's samples, restricted to the cohort).

    A large cohort without grouping has its all-diploid dense sites' codes reduced as they are
    decoded (:func:`_coded_counts`), and any cohort without grouping its listed calls
    (:func:`_listed_counts`), before the other calls are read. Each block's sites are then
    counted in as many ranges as there are cores, on threads (the kernel releases the GIL)."""
    haploid = reader.haploid
    haploid_cells = _haploid_cells(haploid, cells)
    members = np.ascontiguousarray(members, dtype=np.int64)
    in_cohort = np.zeros(len(cells.of_sample), dtype=np.uint8)
    in_cohort[members] = 1
    packed = len(in_cohort) > PACKED_ABOVE
    dense_row = to_numpy(sites["dense_row"], null=-1)
    member_bits = _member_bits(in_cohort, len(members))
    by_word = cells.of_sample.shape[1] == 1 and len(member_bits) > 0
    coded = _coded_counts(reader, dense_row[dense_row >= 0], member_bits) if by_word else np.zeros((0, 2), np.int64)
    haploid_dense = (to_numpy(sites["haploid_pattern"], null=-1)[dense_row >= 0] >= 0).any()
    mask = np.packbits(in_cohort, bitorder="little") if packed else in_cohort
    fixed = (haploid, haploid_cells, members, mask, packed, cells.of_sample)
    as_decoded = cells.of_sample.shape[1] == 1  # listed calls counted as decoded, not read in blocks
    listed_hist = _listed_counts(reader, sites, mask, packed) if as_decoded else np.zeros((0, 1), np.int64)
    done = n_coded = 0
    for batch in reader.blocks(sites, missing=True, codes=not by_word or haploid_dense, listed=not as_decoded):
        check()  # the request's time limit (genoquery.deadline), per block of sites
        site_counts, allele_counts = empty_counts(batch.n_alleles, cells)
        n_dense = int((dense_row[done : done + len(batch.site_row)] >= 0).sum())
        block_coded = coded[n_coded : n_coded + n_dense] if by_word else coded
        block_listed = listed_hist[done : done + len(batch.site_row)] if as_decoded else listed_hist
        done, n_coded = done + len(batch.site_row), n_coded + n_dense

        def count(
            bounds: tuple[int, int],
            batch=batch,
            block_coded=block_coded,
            block_listed=block_listed,
            site_counts=site_counts,
            allele_counts=allele_counts,
        ) -> None:
            a, b = bounds
            _count(
                batch.listed[a : b + 1],
                batch.listed_sample,
                batch.listed_gt,
                batch.missing[a : b + 1],
                batch.missing_tokens,
                batch.dense[a:b],
                batch.codes,
                block_coded,
                block_listed[a:b] if as_decoded else block_listed,
                batch.pattern[a:b],
                *fixed,
                site_counts[a:b],
                allele_counts[a:b],
            )

        parts = _split(batch, 0 if by_word else len(members), COUNT_THREADS)
        list(_POOL.map(count, parts))
        wide = batch.wide.select(in_cohort[batch.wide.sample] == 1)
        add_counts(site_counts, allele_counts, wide, cells.of_sample)
        yield batch, site_counts, allele_counts
