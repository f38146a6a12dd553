"""Fixed byte layout of the sample columns of a VCF line (FORMAT = GT only).

A diploid call takes 4 bytes ``a|b\\t`` (or ``a/b\\t``), a haploid call 2
bytes ``a\\t``; the last tab of a line is a newline. Allele indexes are single
digits (at most 4 alleles), so every record of a contig has the same layout:
a template row of all-REF calls (``0|0``, ``0/0``, ``0``) in which only the
bytes of non-REF or missing alleles (and the separator of a read-backed
phased call) change.

Samples of a center are contiguous in the joint file, so a center file's
sample columns are a byte range of the joint line (its last tab becoming the
newline): ``joint_row[start[k] : start[k] + width[k]]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.simulate.design import CohortDesign

ZERO, DOT, TAB, NEWLINE = ord("0"), ord("."), ord("\t"), ord("\n")
PIPE, SLASH = ord("|"), ord("/")


@dataclass(frozen=True)
class RowLayout:
    """Template line and byte columns for one contig (joint order)."""

    template: np.ndarray  # (width,) uint8, the sample columns of an all-REF record, ending with '\n'
    sample_col: np.ndarray  # (n_samples,) byte column of each sample's first allele
    hap_col: np.ndarray  # (H,) byte column of each haplotype's allele
    center_start: np.ndarray  # (K,) first byte of each center's columns
    center_width: np.ndarray  # (K,) bytes of each center's columns, including its final tab

    @property
    def width(self) -> int:
        return len(self.template)


def build_layout(design: CohortDesign, ploidy: np.ndarray, hap_sample: np.ndarray, hap_slot: np.ndarray) -> RowLayout:
    """Layout for the cohort's samples (joint order) with per-sample ploidy 1 or 2."""
    ploidy = np.asarray(ploidy, dtype=np.int64)
    widths = 2 * ploidy
    sample_col = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    template = np.full(int(widths.sum()), TAB, dtype=np.uint8)
    template[sample_col] = ZERO
    dip = ploidy == 2
    template[sample_col[dip] + 1] = np.where(design.phased[dip], PIPE, SLASH)
    template[sample_col[dip] + 2] = ZERO
    template[-1] = NEWLINE
    hap_col = sample_col[hap_sample] + 2 * hap_slot.astype(np.int64)
    center_width = np.bincount(design.center, weights=widths, minlength=design.n_centers).astype(np.int64)
    center_start = np.concatenate([[0], np.cumsum(center_width)[:-1]]).astype(np.int64)
    return RowLayout(template, sample_col, hap_col, center_start, center_width)
