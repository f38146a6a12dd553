"""Observed calls: missingness, phasing and the GT text of a chunk of sites.

Missing calls. Per site and center the rate is ``missing_rate * X`` with
``X ~ Gamma(shape 0.25, mean 1)``: most site/center pairs have almost no
missing calls, a few have many (coverage differs by site and by center's
sequencing run), so the per-call mean stays ``missing_rate``. Within a center
a missing call falls on a sample with probability proportional to its
``call_weight``. A missing diploid call is fully missing (``./.``) 90% of
the time, else one allele is missing (``./1``, ``0/.``); a haploid call is
``.``.

Phasing. A sample is phased (``a|b``, haplotype order kept) or unphased
(``a/b``, alleles sorted ascending as GATK writes them) for all its calls.

Text. The joint and center lines are built in persistent byte buffers filled
with the template row (all REF calls); only the bytes of non-REF or missing
alleles are written, then reset after the chunk is written. Cost is
proportional to the number of non-REF and missing alleles, not to samples x
sites.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.simulate.design import CohortDesign
from genoquery.simulate.layout import DOT, ZERO, CohortLayout

MISSING_SHAPE = 0.25
FULL_MISSING_FRACTION = 0.9
MAX_ALT = 3


@dataclass
class ChunkCalls:
    """Per-row allele counts of a chunk, for the joint file and each center (VCF INFO AC/AN)."""

    joint_ac: np.ndarray      # (c, 3) copies of ALT 1..3 among called alleles
    joint_an: np.ndarray      # (c,) called alleles
    center_ac: np.ndarray     # (K, c, 3)
    center_an: np.ndarray     # (K, c)
    center_keep: np.ndarray   # (K, c) the center has a non-REF or missing allele at this site
    missing_row: np.ndarray   # rows and joint sample indexes of calls with any missing allele
    missing_sample: np.ndarray


def unique_int(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: numpy 2.4's hash-based np.unique is ~40x slower here)."""
    v = np.sort(values)
    return v[np.concatenate([[True], v[1:] != v[:-1]])] if len(v) else v


class CallBuffers:
    """Text buffers of the joint file and center files for one contig."""

    def __init__(self, design: CohortDesign, layout: CohortLayout, ploidy: np.ndarray,
                 hap_sample: np.ndarray, hap_slot: np.ndarray, max_rows: int) -> None:
        self.design, self.layout, self.ploidy = design, layout, ploidy
        self.hap_sample, self.hap_slot = hap_sample, hap_slot
        self.max_rows = max_rows
        self.joint = np.tile(layout.joint.template, (max_rows, 1))
        self.centers = [np.tile(c.template, (max_rows, 1)) for c in layout.centers]
        self.n_haps = int(ploidy.sum())
        k = design.n_centers
        self.center_haps = np.bincount(design.center, weights=ploidy, minlength=k).astype(np.int64)
        self.center_size = np.bincount(design.center, minlength=k)
        # sort candidates for unphased calls: first allele of a diploid unphased sample
        s = hap_sample
        self.sortable = (hap_slot == 0) & (ploidy[s] == 2) & ~design.phased[s]
        # concatenated per-center cumulative call weights for weighted sampling
        members = [design.center_members(c) for c in range(k)]
        self.member_all = np.concatenate(members)
        cw = [np.cumsum(design.call_weight[m]) for m in members]
        totals = np.array([c[-1] for c in cw])
        self.cw_base = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        self.cw_total = totals
        self.cw_all = np.concatenate([b + c for b, c in zip(self.cw_base, cw)])
        self.member_start = np.concatenate([[0], np.cumsum(self.center_size)[:-1]])
        self._touched = np.zeros(0, dtype=np.int64)

    def _draw_missing(self, rng: np.random.Generator, n_rows: int, missing_rate: float):
        k = self.design.n_centers
        x = rng.gamma(MISSING_SHAPE, 1 / MISSING_SHAPE, size=(n_rows, k))
        rate = np.clip(missing_rate * x, 0.0, 0.5)
        n_miss = rng.binomial(self.center_size[None, :], rate)
        row = np.repeat(np.repeat(np.arange(n_rows), k), n_miss.ravel())
        center = np.repeat(np.tile(np.arange(k), n_rows), n_miss.ravel())
        u = rng.random(len(row))
        pick = np.searchsorted(self.cw_all, self.cw_base[center] + u * self.cw_total[center], side="right")
        lo = self.member_start[center]
        pick = np.clip(pick, lo, lo + self.center_size[center] - 1)
        sample = self.member_all[pick]
        key = unique_int(row * self.design.n_samples + sample)
        row, sample = key // self.design.n_samples, key % self.design.n_samples
        kind = rng.random(len(row))
        return row, sample, kind

    def fill(self, rng: np.random.Generator, n_rows: int, rows: np.ndarray, haps: np.ndarray,
             alleles: np.ndarray, missing_rate: float) -> ChunkCalls:
        """Write the calls of ``n_rows`` sites into the buffers; entries are non-REF true alleles."""
        if n_rows > self.max_rows:
            raise ValueError("chunk larger than buffers")
        lay, J = self.layout, self.joint
        width = J.shape[1]
        cols = lay.hap_col[haps]
        J[rows, cols] = ZERO + alleles
        # unphased: sort the two alleles of calls whose first allele is non-REF
        cand = self.sortable[haps]
        r, p = rows[cand], cols[cand]
        a, b = J[r, p], J[r, p + 2]
        sw = a > b
        J[r[sw], p[sw]], J[r[sw], p[sw] + 2] = b[sw], a[sw]
        # missing calls
        m_row, m_sample, kind = self._draw_missing(rng, n_rows, missing_rate)
        start = lay.joint.sample_col[m_sample]
        diploid = self.ploidy[m_sample] == 2
        full = ~diploid | (kind < FULL_MISSING_FRACTION)
        second = diploid & (kind >= (1 + FULL_MISSING_FRACTION) / 2)
        miss_r = np.concatenate([m_row, m_row[full & diploid]])
        miss_c = np.concatenate([start + 2 * second, start[full & diploid] + 2])
        J[miss_r, miss_c] = DOT
        touched = unique_int(np.concatenate([rows * width + cols, r[sw] * width + p[sw] + 2,
                                            miss_r * width + miss_c]))
        self._touched = touched
        chars = J.reshape(-1)[touched]
        t_row, t_col = touched // width, touched % width
        return self._count_and_split(n_rows, chars, t_row, t_col, m_row, m_sample)

    def _count_and_split(self, n_rows, chars, t_row, t_col, m_row, m_sample) -> ChunkCalls:
        k = self.design.n_centers
        lay = self.layout
        is_dot = chars == DOT
        is_alt = ~is_dot & (chars != ZERO)
        digit = chars.astype(np.int64) - ZERO - 1
        center = lay.col_center[t_col]
        joint_ac = np.bincount(t_row[is_alt] * MAX_ALT + digit[is_alt],
                               minlength=n_rows * MAX_ALT).reshape(n_rows, MAX_ALT)
        joint_an = self.n_haps - np.bincount(t_row[is_dot], minlength=n_rows)
        ck = center * n_rows + t_row
        center_ac = np.bincount(ck[is_alt] * MAX_ALT + digit[is_alt],
                                minlength=k * n_rows * MAX_ALT).reshape(k, n_rows, MAX_ALT)
        center_an = self.center_haps[:, None] - np.bincount(ck[is_dot], minlength=k * n_rows).reshape(k, n_rows)
        keep = np.bincount(ck[is_dot | is_alt], minlength=k * n_rows).reshape(k, n_rows) > 0
        local = lay.col_local[t_col]
        for c, buf in enumerate(self.centers):
            sel = center == c
            buf[t_row[sel], local[sel]] = chars[sel]
        self._t_center, self._t_row, self._t_local = center, t_row, local
        return ChunkCalls(joint_ac, joint_an, center_ac, center_an, keep, m_row, m_sample)

    def reset(self) -> None:
        """Restore the template rows after the chunk's lines were written."""
        self.joint.reshape(-1)[self._touched] = ZERO
        for c, buf in enumerate(self.centers):
            sel = self._t_center == c
            buf[self._t_row[sel], self._t_local[sel]] = ZERO
        self._touched = np.zeros(0, dtype=np.int64)
        self._t_center = self._t_row = self._t_local = np.zeros(0, dtype=np.int64)
