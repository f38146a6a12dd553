"""Calls of ploidy above 2 (triploid ``0/1/1``, tetraploid ``0/0/1/.``): a batch's exception list.

The diploid/haploid arrays every kernel reads (a block's ``gt``, the query encoding) hold such a
call as the stand-in :data:`STAND_IN` (``./.``, a missing diploid call); its true alleles are
kept beside them, per batch, as *wide calls*: the batch row, the sample and the alleles padded
with fill to the batch's largest ploidy. ``call_genotype`` holds them exactly (its ploidy
dimension is then that largest ploidy). Counts and carrier lists take the stand-in's share
out and the wide call's in (:func:`count_terms`), so statistics stay exact; a wide call counts
to AC, AN and ``n_missing`` only (it is neither diploid nor haploid: no het, hom-alt or hemi).

Most batches have none: their arrays are then not written, and a store without them reads as
having none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.storage.format import FILL, MISSING

STAND_IN = (MISSING, MISSING)
ROW, SAMPLE, GENOTYPE = "wide_call_variant", "wide_call_sample", "wide_call_genotype"  # query group arrays


@dataclass(frozen=True)
class WideCalls:
    """Wide calls by row then sample: ``row`` (calls,) int64 (a block's or a batch's row),
    ``sample`` (calls,) int64 (the batch's column), ``alleles`` (calls, ploidy) int8."""

    row: np.ndarray
    sample: np.ndarray
    alleles: np.ndarray

    @classmethod
    def empty(cls, ploidy: int = 3) -> WideCalls:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, ploidy), np.int8))

    @classmethod
    def concat(cls, parts: list[WideCalls]) -> WideCalls:
        """One list of ``parts`` (in row order), padded with fill to the widest."""
        if not parts:
            return cls.empty()
        width = max(p.alleles.shape[1] for p in parts)
        return cls(
            np.concatenate([p.row for p in parts]).astype(np.int64),
            np.concatenate([p.sample for p in parts]).astype(np.int64),
            np.concatenate([pad(p.alleles, width) for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.row)

    @property
    def ploidy(self) -> int:
        return int(self.alleles.shape[1])

    def shifted(self, offset: int) -> WideCalls:
        return WideCalls(self.row + offset, self.sample, self.alleles)

    def select(self, keep: np.ndarray) -> WideCalls:
        return WideCalls(self.row[keep], self.sample[keep], self.alleles[keep])

    def with_alt(self) -> WideCalls:
        """The calls that name an ALT allele (their stand-in, ``./.``, hides it from the kernels)."""
        return self.select((self.alleles > 0).any(axis=1))

    def at_rows(self, rows: np.ndarray) -> WideCalls:
        """The calls of ``rows`` (sorted), each call's row made its position in ``rows``."""
        if not len(self) or not len(rows):
            return WideCalls.empty(self.ploidy)
        at = np.minimum(np.searchsorted(rows, self.row), len(rows) - 1)
        hit = rows[at] == self.row
        return WideCalls(at[hit].astype(np.int64), self.sample[hit], self.alleles[hit])

    def rows_between(self, lo: int, hi: int) -> WideCalls:
        """The calls of rows ``lo <= row < hi``, rows made relative to ``lo``."""
        a, b = np.searchsorted(self.row, [lo, hi])
        return WideCalls(self.row[a:b] - lo, self.sample[a:b], self.alleles[a:b])


def pad(alleles: np.ndarray, width: int) -> np.ndarray:
    """``alleles`` (..., k) padded with fill to (..., width)."""
    extra = width - alleles.shape[-1]
    if extra <= 0:
        return alleles
    return np.concatenate([alleles, np.full((*alleles.shape[:-1], extra), FILL, dtype=alleles.dtype)], axis=-1)


def read_wide(group) -> WideCalls:
    """A batch's wide calls from its query group (a zarr group; none when it has no such arrays)."""
    if ROW not in group:
        return WideCalls.empty()
    return WideCalls(
        np.asarray(group[ROW][...], np.int64),
        np.asarray(group[SAMPLE][...], np.int64),
        np.asarray(group[GENOTYPE][...]),
    )


def is_wide(alleles: np.ndarray) -> np.ndarray:
    """Which calls of ``alleles`` (..., ploidy) have an allele beyond the second slot."""
    return (alleles[..., 2:] != FILL).any(axis=-1) if alleles.shape[-1] > 2 else np.zeros(alleles.shape[:-1], bool)


def split_wide(gt: np.ndarray) -> tuple[np.ndarray, WideCalls]:
    """``gt`` (rows, samples, ploidy) as diploid arrays (rows, samples, 2) with stand-ins, and its
    calls of ploidy above 2 (rows of ``gt``)."""
    core = np.ascontiguousarray(gt[:, :, :2])
    if gt.shape[2] <= 2:
        return core, WideCalls.empty()
    rows, samples = np.nonzero(is_wide(gt))
    core[rows, samples] = STAND_IN
    return core, WideCalls(rows.astype(np.int64), samples.astype(np.int64), gt[rows, samples])


def count_terms(alleles: np.ndarray, n_alleles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per wide call, what it adds beyond its stand-in to the counts of
    :func:`genoquery.stats.allele_stats.tally_site`: uncalled allele slots (fewer by its called
    alleles, the stand-in's 2 counted already), incomplete calls (-1 for the stand-in, +1 if an
    allele is missing) and (calls, n_alleles) copies of each allele."""
    called = (alleles >= 0).sum(axis=1)
    incomplete = (alleles == MISSING).any(axis=1).astype(np.int64) - 1
    copies = np.stack([(alleles == a).sum(axis=1) for a in range(n_alleles)], axis=1)
    return -called.astype(np.int64), incomplete, copies.astype(np.int64)


def add_counts(
    site_counts: np.ndarray, allele_counts: np.ndarray, calls: WideCalls, cells_of_sample: np.ndarray
) -> None:
    """Add ``calls`` (rows of the counts' block; samples indexing ``cells_of_sample``, (samples,
    cells) with -1 for none) to counts made with their stand-ins."""
    if not len(calls):
        return
    uncalled, incomplete, copies = count_terms(calls.alleles, allele_counts.shape[1])
    for cells in cells_of_sample[calls.sample].T:  # one grouping at a time: a call is in one cell of each
        hit = cells >= 0
        row, cell = calls.row[hit], cells[hit]
        np.add.at(site_counts, (row, cell, 0), uncalled[hit])
        np.add.at(site_counts, (row, cell, 1), incomplete[hit])
        for a in range(1, allele_counts.shape[1]):
            np.add.at(allele_counts, (row, a, cell, 0), copies[hit, a])
