"""Per-allele genotype statistics of a block of sites, overall and per sample group.

Definitions (for ALT allele ``a`` of a site, as after ``bcftools norm -m-``):

- ``ac``: copies of ``a`` among called alleles; ``an``: called (non-missing) alleles.
- ``n_missing``: samples whose call has any missing allele (``./.``, ``.``, ``./1``).
- Over fully called samples: ``n_het`` diploid with one copy, ``n_hom_alt`` diploid
  with two copies, ``n_hemi`` haploid with ``a``.

A partially missing call such as ``./1`` adds to ``ac`` and ``an`` allele by allele
(as bcftools does) and to ``n_missing``, not to ``n_het``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from genoquery.storage.format import FILL

STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")


@dataclass(frozen=True)
class SampleGroups:
    """A partition of samples by one person-table column.

    ``codes[i]`` is sample i's group index into ``labels`` or -1 when unknown.
    """

    column: str
    labels: tuple[str, ...]
    codes: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Number of samples in each group, (groups,) int64."""
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.labels))


@dataclass
class AlleleStats:
    """Statistics of the (site row, allele) pairs of one block.

    ``row`` is the site's row in the block, ``allele`` the 1-based ALT index;
    ``overall[stat]`` is (pairs,) int64 and ``groups[column][stat]`` is
    (pairs, groups) int64 with labels in ``group_labels[column]`` (groups with
    no samples in the store are left out).
    """

    row: np.ndarray
    allele: np.ndarray
    overall: dict[str, np.ndarray]
    groups: dict[str, dict[str, np.ndarray]]
    group_labels: dict[str, list[str]]


@numba.njit(nogil=True, cache=True)
def tally_site(hist, v, site_counts, allele_counts):  # pragma: no cover - compiled
    """Add one site's call histogram to the statistics of row ``v``.

    ``hist`` (cells, width * width) counts calls by cell and genotype code
    ``(a0 + 2) * width + (a1 + 2)`` with ``width = alleles + 2`` (allele codes
    -2 .. alleles - 1); diploid hom-ref calls may be left out, they add nothing
    but 2 to AN, which the caller derives from the cell sizes. ``site_counts``
    (sites, cells, 2) gets uncalled allele slots and incomplete calls;
    ``allele_counts`` (sites, alleles, cells, 4) gets AC, het, hom-alt and hemi.
    """
    width = allele_counts.shape[1] + 2
    for code in range(width * width):
        a0 = code // width - 2
        a1 = code % width - 2
        called = (a0 >= 0) + (a1 >= 0)
        ploidy = (a0 != FILL) + (a1 != FILL)
        for c in range(site_counts.shape[1]):
            n = hist[c, code]
            if n == 0:
                continue
            site_counts[v, c, 0] += n * (2 - called)
            site_counts[v, c, 1] += n * (called != ploidy)
            if a0 >= 1:
                allele_counts[v, a0, c, 0] += n
            if a1 >= 1:
                allele_counts[v, a1, c, 0] += n
            if called == 2:
                if a0 == a1:
                    allele_counts[v, a0, c, 2] += n
                else:
                    if a0 >= 1:
                        allele_counts[v, a0, c, 1] += n
                    if a1 >= 1:
                        allele_counts[v, a1, c, 1] += n
            elif ploidy == 1 and called == 1 and a0 >= 1:
                allele_counts[v, a0, c, 3] += n


@numba.njit(nogil=True, cache=True)
def _count(gt, cells, site_counts, allele_counts):  # pragma: no cover - compiled
    """Count each site's calls by genotype and cell, then turn the counts into statistics.

    ``cells`` (samples, 1 + groupings) lists each sample's cells: 0 for
    everyone, then its group's cell in each grouping, or -1 when unknown.
    Diploid homozygous-reference calls (most calls) are skipped. One histogram
    increment per call and cell (3.5x faster than updating every statistic
    per call on common variants).
    """
    width = allele_counts.shape[1] + 2
    hist = np.zeros((site_counts.shape[1], width * width), dtype=np.int64)
    for v in range(gt.shape[0]):
        hist[:, :] = 0
        for s in range(gt.shape[1]):
            a0 = gt[v, s, 0]
            a1 = gt[v, s, 1]
            if a0 == 0 and a1 == 0:
                continue
            code = (a0 + 2) * width + (a1 + 2)
            for k in range(cells.shape[1]):
                c = cells[s, k]
                if c >= 0:
                    hist[c, code] += 1
        tally_site(hist, v, site_counts, allele_counts)


@dataclass(frozen=True)
class Cells:
    """The cells statistics are counted in: 0 is everyone, then one per group of each grouping.

    ``of_sample`` is (samples, 1 + groupings) int32: each sample's cell in each
    grouping, or -1 when its group is unknown. ``sizes`` counts samples per cell.
    """

    groupings: tuple[SampleGroups, ...]
    of_sample: np.ndarray
    sizes: np.ndarray

    @classmethod
    def build(cls, n_samples: int, groupings: tuple[SampleGroups, ...] = ()) -> Cells:
        of_sample = np.full((n_samples, 1 + len(groupings)), -1, dtype=np.int32)
        of_sample[:, 0] = 0
        sizes = [np.array([n_samples])]
        offset = 1
        for k, g in enumerate(groupings):
            known = g.codes >= 0
            of_sample[known, 1 + k] = offset + g.codes[known]
            sizes.append(g.sizes)
            offset += len(g.labels)
        return cls(groupings, of_sample, np.concatenate(sizes).astype(np.int64))

    def keys(self) -> list[tuple[str, str]]:
        """``(grouping, group_value)`` of each cell: ``("", "")`` for everyone, then each
        grouping's column and label."""
        return [("", "")] + [(g.column, label) for g in self.groupings for label in g.labels]

    def restrict(self, members: np.ndarray) -> Cells:
        """The same cells over ``members`` (sample indexes) only; other samples are in none."""
        of_sample = np.full_like(self.of_sample, -1)
        of_sample[members] = self.of_sample[members]
        cells = of_sample[members].reshape(-1)
        sizes = np.bincount(cells[cells >= 0], minlength=len(self.sizes)).astype(np.int64)
        return Cells(self.groupings, of_sample, sizes)


def empty_counts(n_alleles: np.ndarray, cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed ``site_counts`` and ``allele_counts`` for :func:`tally_site`."""
    n_sites, n_cells = len(n_alleles), len(cells.sizes)
    width = max(int(n_alleles.max(initial=1)), 2)
    return (np.zeros((n_sites, n_cells, 2), dtype=np.int64), np.zeros((n_sites, width, n_cells, 4), dtype=np.int64))


def block_counts(gt: np.ndarray, n_alleles: np.ndarray, cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """``site_counts`` and ``allele_counts`` (see :func:`tally_site`) of ``gt`` (sites, samples, 2)
    int8. ``n_alleles[i]`` counts REF plus ALT alleles of site i; every allele index in ``gt``
    must be below it."""
    site_counts, allele_counts = empty_counts(n_alleles, cells)
    _count(np.ascontiguousarray(gt), cells.of_sample, site_counts, allele_counts)
    return site_counts, allele_counts


def assemble_stats(
    site_counts: np.ndarray, allele_counts: np.ndarray, n_alleles: np.ndarray, cells: Cells
) -> AlleleStats:
    """Per-(site, ALT allele) statistics from the counts :func:`tally_site` filled, in
    (allele, site) order; groups with no sample among ``cells`` are left out."""
    sizes = cells.sizes
    max_alleles = int(n_alleles.max(initial=1))
    an = 2 * sizes[None, :] - site_counts[:, :, 0]
    with_allele = [np.flatnonzero(n_alleles > a) for a in range(1, max_alleles)]  # sites, per ALT allele
    rows = np.concatenate([np.zeros(0, dtype=np.int64), *with_allele]).astype(np.int64)
    alleles = np.concatenate(
        [np.zeros(0, dtype=np.int16)] + [np.full(len(r), a, dtype=np.int16) for a, r in enumerate(with_allele, start=1)]
    )
    per_pair = allele_counts[rows, alleles]  # (pairs, cells, 4)
    table = {
        "ac": per_pair[:, :, 0],
        "an": an[rows],
        "n_het": per_pair[:, :, 1],
        "n_hom_alt": per_pair[:, :, 2],
        "n_hemi": per_pair[:, :, 3],
        "n_missing": site_counts[rows, :, 1],
    }
    groups, labels, offset = {}, {}, 1
    for g in cells.groupings:
        present = np.flatnonzero(sizes[offset : offset + len(g.labels)] > 0)
        groups[g.column] = {stat: table[stat][:, offset + present] for stat in STATS}
        labels[g.column] = [g.labels[i] for i in present]
        offset += len(g.labels)
    return AlleleStats(
        row=rows, allele=alleles, overall={s: table[s][:, 0] for s in STATS}, groups=groups, group_labels=labels
    )
