"""Observed calls: missingness, phasing and the GT text of a chunk of sites.

Missing calls. Per site and center the rate is ``missing_rate * X`` with
``X ~ Gamma(shape 0.25, mean 1)``: most site/center pairs have almost no
missing calls, a few have many (coverage differs by site and by sequencing
run), and the mean per call stays about ``missing_rate``. Within a center a
missing call falls on a sample with probability proportional to its
``call_weight`` (quantised to eighths). A missing diploid call is fully
missing (``./.``, or ``.|.`` in a phased center) 90% of the time, else one
allele is missing (``./1``, ``0/.``); a haploid call is ``.``.

Phasing. Samples of phased centers keep haplotype order (``a|b``, from the
template). In unphased centers a heterozygous call is written ``a/b`` with
alleles ascending (as GATK does), or, with probability
``READ_BACKED_PHASED``, read-backed phased: ``a|b`` in haplotype order.

Text. The lines are built in a persistent byte buffer holding template rows
(all-REF calls). For a sparse (rare) site only the bytes of its non-REF
alleles are written, for a dense (common) site the whole row with vectorised
numpy; then missing alleles and read-backed separators. :meth:`CallBuffers.reset`
restores the template after the chunk is written, so the cost of rare sites
grows with their allele count, not with the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.simulate.design import READ_BACKED_PHASED, CohortDesign
from genoquery.simulate.layout import DOT, PIPE, SLASH, ZERO, RowLayout

MISSING_SHAPE = 0.25
FULL_MISSING_FRACTION = 0.9
MAX_ALT = 3
WEIGHT_SLOTS = 8


def unique_int(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: numpy 2.4's hash-based np.unique is far slower here)."""
    v = np.sort(values)
    return v[np.concatenate([[True], v[1:] != v[:-1]])] if len(v) else v


@dataclass
class ChunkCalls:
    """Allele counts of a chunk's rows (VCF INFO AC/AN) for the joint file and each center."""

    rows: np.ndarray  # (E,) row of each true non-REF entry (entries are grouped by row)
    joint_ac: np.ndarray  # (c, 3) copies of ALT 1..3 among called alleles
    joint_an: np.ndarray  # (c,) called alleles
    center_ac: np.ndarray  # (K, c, 3)
    center_an: np.ndarray  # (K, c)
    center_keep: np.ndarray  # (K, c) the center has a non-REF or missing allele at this row
    missing_row: np.ndarray  # row and joint sample index of every call with a missing allele,
    missing_sample: np.ndarray  # sorted by row


class CallBuffers:
    """Byte buffer of joint-file sample columns for chunks of one contig."""

    def __init__(
        self,
        design: CohortDesign,
        layout: RowLayout,
        ploidy: np.ndarray,
        hap_sample: np.ndarray,
        hap_slot: np.ndarray,
        max_rows: int,
    ) -> None:
        self.design, self.layout, self.ploidy = design, layout, ploidy
        self.max_rows = max_rows
        self.rows = np.tile(layout.template, (max_rows, 1))
        self.width = layout.width
        self.n_haps = int(ploidy.sum())
        k = design.n_centers
        self.hap_center = design.center[hap_sample].astype(np.int64)
        self.center_haps = np.bincount(design.center, weights=ploidy, minlength=k).astype(np.int64)
        unphased = (ploidy[hap_sample] == 2) & ~design.phased[hap_sample]
        self.unphased_first = unphased & (hap_slot == 0)
        self.unphased_second = unphased & (hap_slot == 1)
        # weighted choice of samples by table lookup: sample i appears ~WEIGHT_SLOTS * weight_i
        # times; centers are contiguous in joint order, hence contiguous in the table
        self.center_size = np.bincount(design.center, minlength=k)
        slots = np.maximum(1, np.rint(WEIGHT_SLOTS * design.call_weight)).astype(np.int64)
        self.slot_sample = np.repeat(np.arange(design.n_samples), slots)
        self.slot_count = np.bincount(design.center, weights=slots, minlength=k).astype(np.int64)
        self.slot_start = np.concatenate([[0], np.cumsum(self.slot_count)[:-1]])
        # dense rows: unphased diploid calls by haplotype index, center haplotype ranges
        first = np.flatnonzero(self.unphased_first)
        self.dense_first, self.dense_second = first, first + 1
        self.dense_first_col = layout.hap_col[first]
        self.center_hap_bounds = np.concatenate([[0], np.cumsum(self.center_haps)])
        self.all_diploid = bool(np.all(ploidy == 2))
        self._reset_zero: list[np.ndarray] = []
        self._reset_slash = np.zeros(0, dtype=np.int64)
        self._reset_rows: list[int] = []

    def _draw_missing(self, rng: np.random.Generator, n_rows: int, missing_rate: float):
        """(row, sample, kind uniform) of missing calls, unique and sorted by row then sample."""
        k = self.design.n_centers
        x = rng.gamma(MISSING_SHAPE, 1 / MISSING_SHAPE, size=(n_rows, k))
        rate = np.clip(missing_rate * x, 0.0, 0.5)
        n_miss = rng.binomial(self.center_size[None, :], rate).ravel()
        row = np.repeat(np.repeat(np.arange(n_rows), k), n_miss)
        center = np.repeat(np.tile(np.arange(k), n_rows), n_miss)
        u = rng.random(len(row))
        sample = self.slot_sample[self.slot_start[center] + (u * self.slot_count[center]).astype(np.int64)]
        n = self.design.n_samples
        key = unique_int(row * n + sample)
        row, sample = key // n, key % n
        return row, sample, rng.random(len(row))

    def fill(
        self,
        rng: np.random.Generator,
        lens: np.ndarray,
        haps: np.ndarray,
        alleles: np.ndarray,
        dense: dict[int, np.ndarray],
        missing_rate: float,
    ) -> ChunkCalls:
        """Write the calls of ``len(lens)`` sites into rows 0.. of the buffer.

        Sparse rows: ``haps``/``alleles`` are the true non-REF alleles, grouped by row
        (``lens`` per row). Dense rows: ``dense[row]`` holds every haplotype's allele.
        """
        n_rows = len(lens)
        if n_rows > self.max_rows:
            raise ValueError("chunk larger than buffers")
        k, width = self.design.n_centers, self.width
        flat_buf = self.rows.reshape(-1)
        rows = np.repeat(np.arange(n_rows), lens)
        flat = rows * width + self.layout.hap_col[haps]
        flat_buf[flat] = ZERO + alleles

        # heterozygous calls of unphased samples, each once, by its first-allele byte
        f1 = flat[self.unphased_first[haps]]
        f1 = f1[flat_buf[f1] != flat_buf[f1 + 2]]
        f2 = flat[self.unphased_second[haps]]
        f2 = f2[flat_buf[f2 - 2] == ZERO]
        p0 = np.concatenate([f1, f2 - 2])
        read_backed = rng.random(len(p0)) < READ_BACKED_PHASED
        a, b = flat_buf[p0], flat_buf[p0 + 2]
        swap = p0[~read_backed & (a > b)]
        flat_buf[swap], flat_buf[swap + 2] = flat_buf[swap + 2], flat_buf[swap]
        seps = p0[read_backed] + 1
        flat_buf[seps] = PIPE
        joint_true = np.bincount(rows * MAX_ALT + alleles - 1, minlength=n_rows * MAX_ALT).reshape(n_rows, MAX_ALT)
        cell = self.hap_center[haps] * n_rows + rows
        center_true = np.bincount(cell * MAX_ALT + alleles - 1, minlength=k * n_rows * MAX_ALT).reshape(
            k, n_rows, MAX_ALT
        )
        for r in sorted(dense):
            self._fill_dense(rng, r, dense[r], joint_true, center_true)

        # missing calls overwrite alleles; remember what they covered for AC
        m_row, m_sample, kind = self._draw_missing(rng, n_rows, missing_rate)
        start = m_row * width + self.layout.sample_col[m_sample]
        diploid = self.ploidy[m_sample] == 2
        full = diploid & (kind < FULL_MISSING_FRACTION)
        second = diploid & (kind >= (1 + FULL_MISSING_FRACTION) / 2)
        miss = np.concatenate([start + 2 * second, start[full] + 2])
        miss_row = np.concatenate([m_row, m_row[full]])
        miss_center = self.design.center[np.concatenate([m_sample, m_sample[full]])].astype(np.int64)
        covered = flat_buf[miss].astype(np.int64) - ZERO - 1
        flat_buf[miss] = DOT
        sep = start[full] + 1  # a fully missing call is never read-backed phased
        flat_buf[sep] = self.layout.template[self.layout.sample_col[m_sample[full]] + 1]
        self._reset_zero = [flat, swap, swap + 2, miss]
        self._reset_slash = seps
        self._reset_rows = sorted(dense)

        # counts: true alleles minus those hidden by missing calls
        alt = covered >= 0
        joint_ac = joint_true.ravel() - np.bincount(miss_row[alt] * MAX_ALT + covered[alt], minlength=n_rows * MAX_ALT)
        joint_an = self.n_haps - np.bincount(miss_row, minlength=n_rows)
        m_cell = miss_center * n_rows + miss_row
        center_ac = center_true.ravel() - np.bincount(
            m_cell[alt] * MAX_ALT + covered[alt], minlength=k * n_rows * MAX_ALT
        )
        center_missing = np.bincount(m_cell, minlength=k * n_rows).reshape(k, n_rows)
        keep = (center_true.sum(-1) > 0) | (center_missing > 0)
        return ChunkCalls(
            rows,
            joint_ac.reshape(n_rows, MAX_ALT),
            joint_an,
            center_ac.reshape(k, n_rows, MAX_ALT),
            self.center_haps[:, None] - center_missing,
            keep,
            m_row,
            m_sample,
        )

    def _fill_dense(
        self, rng: np.random.Generator, r: int, g: np.ndarray, joint_true: np.ndarray, center_true: np.ndarray
    ) -> None:
        """Write one densely decoded row (``g``: allele index of every haplotype) and count it."""
        line = self.rows[r]
        if self.all_diploid:
            calls = line.reshape(-1, 4)
            calls[:, 0] = g[0::2] + ZERO
            calls[:, 2] = g[1::2] + ZERO
        else:
            line[self.layout.hap_col] = g + ZERO
        a, b = g[self.dense_first], g[self.dense_second]
        het = np.flatnonzero(a != b)
        read_backed = rng.random(len(het)) < READ_BACKED_PHASED
        swap = het[~read_backed & (a[het] > b[het])]
        col = self.dense_first_col[swap]
        line[col], line[col + 2] = b[swap] + ZERO, a[swap] + ZERO
        line[self.dense_first_col[het[read_backed]] + 1] = PIPE
        joint_true[r] = np.bincount(g, minlength=MAX_ALT + 1)[1:]
        bounds = self.center_hap_bounds
        for c in range(len(bounds) - 1):
            center_true[c, r] = np.bincount(g[bounds[c] : bounds[c + 1]], minlength=MAX_ALT + 1)[1:]

    def reset(self) -> None:
        """Restore the template rows after the chunk's lines were written."""
        flat_buf = self.rows.reshape(-1)
        for idx in self._reset_zero:
            flat_buf[idx] = ZERO
        flat_buf[self._reset_slash] = SLASH
        if self._reset_rows:
            self.rows[self._reset_rows] = self.layout.template
        self._reset_zero, self._reset_slash, self._reset_rows = [], np.zeros(0, dtype=np.int64), []
