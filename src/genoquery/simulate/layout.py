"""Fixed byte layout of the sample columns of a VCF line (FORMAT = GT only).

A diploid call takes 4 bytes ``a|b\\t`` (or ``a/b\\t``), a haploid call 2
bytes ``a\\t``; the last tab of a line is a newline. Allele indexes are single
digits (at most 4 alleles), so every record of a contig has the same layout:
a template row holding ``0|0``/``0/0``/``0`` calls, in which only the
positions of non-REF or missing alleles change. :class:`RowLayout` gives the
byte column of every haplotype's allele character, for the joint file and
for each center file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.simulate.design import CohortDesign

ZERO, DOT, TAB, NEWLINE = ord("0"), ord("."), ord("\t"), ord("\n")


@dataclass(frozen=True)
class RowLayout:
    """Template and allele byte columns of one file's sample columns on one contig."""

    template: np.ndarray     # (width,) uint8, a line of all-REF calls, ending with '\n'
    sample_col: np.ndarray   # (n,) byte column of each sample's first allele
    ploidy: np.ndarray       # (n,) 1 or 2

    @property
    def width(self) -> int:
        return len(self.template)


def build_layout(ploidy: np.ndarray, phased: np.ndarray) -> RowLayout:
    """Layout for samples with the given ploidy (1/2) and phasing, in file order."""
    ploidy = np.asarray(ploidy, dtype=np.int64)
    widths = 2 * ploidy
    start = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    template = np.full(int(widths.sum()), TAB, dtype=np.uint8)
    template[start] = ZERO
    dip = start[ploidy == 2]
    template[dip + 1] = np.where(phased[ploidy == 2], ord("|"), ord("/"))
    template[dip + 2] = ZERO
    if len(template):
        template[-1] = NEWLINE
    return RowLayout(template, start, ploidy)


@dataclass(frozen=True)
class CohortLayout:
    """Joint-file layout plus, for every joint byte column, its center file and column there."""

    joint: RowLayout
    centers: list[RowLayout]
    col_center: np.ndarray   # (joint width,) center index of each joint byte column
    col_local: np.ndarray    # (joint width,) byte column in that center's line
    hap_col: np.ndarray      # (H,) joint byte column of each haplotype's allele


def build_cohort_layout(design: CohortDesign, ploidy: np.ndarray, hap_sample: np.ndarray,
                        hap_slot: np.ndarray) -> CohortLayout:
    """Layouts of the joint file and the center files of one contig."""
    joint = build_layout(ploidy, design.phased)
    col_center = np.repeat(design.center, 2 * ploidy).astype(np.int64)
    col_local = np.empty(joint.width, dtype=np.int64)
    centers = []
    for k in range(design.n_centers):
        members = design.center_members(k)
        layout = build_layout(ploidy[members], design.phased[members])
        centers.append(layout)
        joint_start = joint.sample_col[members]
        for j in range(4):   # byte j of each call (only 2 bytes for haploid calls)
            ok = j < 2 * ploidy[members]
            col_local[joint_start[ok] + j] = layout.sample_col[ok] + j
    hap_col = joint.sample_col[hap_sample] + 2 * hap_slot.astype(np.int64)
    return CohortLayout(joint, centers, col_center, col_local, hap_col)
