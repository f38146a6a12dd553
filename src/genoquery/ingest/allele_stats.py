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

import numpy as np

STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")


@dataclass(frozen=True)
class SampleGroups:
    """A partition of samples by one person-table column.

    ``codes[i]`` is sample i's group index into ``labels`` or -1 when unknown.
    """

    column: str
    labels: tuple[str, ...]
    codes: np.ndarray

    def __post_init__(self) -> None:
        order = np.argsort(self.codes, kind="stable")
        known = order[self.codes[order] >= 0]
        sorted_codes = self.codes[known]
        present = np.unique(sorted_codes)
        starts = np.searchsorted(sorted_codes, present)
        object.__setattr__(self, "_order", known)
        object.__setattr__(self, "_present", present)
        object.__setattr__(self, "_starts", starts)

    def sums(self, per_sample: np.ndarray) -> np.ndarray:
        """Sum a (rows, samples) array within each present group: (rows, present groups) int64."""
        if len(self._present) == 0:
            return np.zeros((per_sample.shape[0], 0), dtype=np.int64)
        ordered = per_sample[:, self._order].astype(np.int64, copy=False)
        return np.add.reduceat(ordered, self._starts, axis=1)

    @property
    def present_labels(self) -> list[str]:
        return [self.labels[i] for i in self._present]


@dataclass
class AlleleStats:
    """Statistics of the (site row, allele) pairs of one block.

    ``row`` is the site's row in the block, ``allele`` the 1-based ALT index;
    ``overall[stat]`` is (pairs,) int64 and ``groups[column][stat]`` is
    (pairs, present groups) int64 with labels in ``group_labels[column]``.
    """

    row: np.ndarray
    allele: np.ndarray
    overall: dict[str, np.ndarray]
    groups: dict[str, dict[str, np.ndarray]]
    group_labels: dict[str, list[str]]


def _per_sample_counts(gt: np.ndarray, allele: int, diploid_full: np.ndarray,
                       haploid: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample indicator arrays (rows, samples) for one ALT allele."""
    first = gt[:, :, 0] == allele
    second = gt[:, :, 1] == allele
    copies = first.view(np.int8) + second.view(np.int8)
    return {
        "ac": copies,
        "n_het": (copies == 1) & diploid_full,
        "n_hom_alt": copies == 2,
        "n_hemi": first & haploid,
    }


def block_stats(gt: np.ndarray, n_alleles: np.ndarray,
                groupings: tuple[SampleGroups, ...] = ()) -> AlleleStats:
    """Statistics for every ALT allele of ``gt`` (sites, samples, 2) int8.

    ``n_alleles[i]`` counts REF plus ALT alleles of site i.
    """
    called_alleles = (gt[:, :, 0] >= 0).view(np.int8) + (gt[:, :, 1] >= 0).view(np.int8)
    ploidy = (gt[:, :, 0] != -2).view(np.int8) + (gt[:, :, 1] != -2).view(np.int8)
    full = called_alleles == ploidy
    diploid_full = full & (ploidy == 2)
    haploid = ploidy == 1
    site_wide = {"an": called_alleles, "n_missing": ~full}

    rows_out, alleles_out = [], []
    overall: dict[str, list[np.ndarray]] = {s: [] for s in STATS}
    grouped: dict[str, dict[str, list[np.ndarray]]] = {
        g.column: {s: [] for s in STATS} for g in groupings}
    for allele in range(1, int(n_alleles.max(initial=1))):
        rows = np.flatnonzero(n_alleles > allele)
        take = slice(None) if len(rows) == len(n_alleles) else rows
        per_sample = _per_sample_counts(gt[take], allele, diploid_full[take], haploid[take])
        per_sample.update({k: v[take] for k, v in site_wide.items()})
        rows_out.append(rows)
        alleles_out.append(np.full(len(rows), allele, dtype=np.int16))
        for stat in STATS:
            overall[stat].append(per_sample[stat].sum(axis=1, dtype=np.int64))
            for g in groupings:
                grouped[g.column][stat].append(g.sums(per_sample[stat]))
    return AlleleStats(
        row=_concat(rows_out, np.int64),
        allele=_concat(alleles_out, np.int16),
        overall={s: _concat(v, np.int64) for s, v in overall.items()},
        groups={c: {s: _concat(v, np.int64, 2) for s, v in d.items()} for c, d in grouped.items()},
        group_labels={g.column: g.present_labels for g in groupings},
    )


def _concat(parts: list[np.ndarray], dtype, ndim: int = 1) -> np.ndarray:
    if parts:
        return np.concatenate(parts).astype(dtype, copy=False)
    return np.zeros((0,) * ndim, dtype=dtype)
