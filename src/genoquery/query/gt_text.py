"""VCF GT text of calls, from one table: the VCF export, carrier lists and the server's genotypes.

A call is two int8 allele indexes (-1 missing, -2 in the second slot of a haploid call) and a
phase flag. Its text is ``0/1``, ``1|0``, ``./.``, ``./1``, haploid ``1`` or ``.``; a haploid
call shows no separator whatever its flag.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from genoquery.storage.format import FILL


@cache
def cell_table(width: int) -> np.ndarray:
    """The text of every call followed by a tab, zero-padded to ``width`` bytes (4: alleles
    up to 9, as ``0|1``; 8: up to 127, as ``127|127``), as uint32 or uint64 indexed by
    :func:`call_codes`."""
    pairs = np.arange(1 << 16, dtype=np.uint16).view(np.int8).reshape(-1, 2)
    top = 10 if width == 4 else 128
    valid = (pairs[:, 0] >= -1) & (pairs[:, 0] < top) & (pairs[:, 1] >= FILL) & (pairs[:, 1] < top)
    table = np.zeros((1 << 17, width), dtype=np.uint8)
    for code in np.flatnonzero(valid).tolist():
        a0, a1 = ("." if a < 0 else str(a) for a in pairs[code].tolist())
        for phased, sep in enumerate("/|"):
            text = a0 if pairs[code, 1] == FILL else f"{a0}{sep}{a1}"
            table[code << 1 | phased, : len(text) + 1] = np.frombuffer(f"{text}\t".encode(), np.uint8)
    return table.view(np.uint32 if width == 4 else np.uint64).ravel()


def cell_width(gt: np.ndarray) -> int:
    """The :func:`cell_table` width that holds every call of ``gt``."""
    return 4 if gt.max(initial=0) < 10 else 8


def call_codes(gt: np.ndarray, phased: np.ndarray) -> np.ndarray:
    """Each call's row in :func:`cell_table`: its two int8 alleles read as one uint16, shifted
    left by one, plus the phase flag. ``gt`` is (..., 2) int8, ``phased`` (...) bool."""
    return (np.ascontiguousarray(gt).view(np.uint16)[..., 0].astype(np.uint32) << 1) | phased


def gt_strings(gt: np.ndarray, phased: np.ndarray) -> list[str]:
    """GT text of each call of ``gt`` (calls, 2) int8 with ``phased`` (calls,) bool."""
    width = cell_width(gt)
    cells = cell_table(width)[call_codes(gt, phased)].view(np.uint8).reshape(-1, width)
    return [bytes(cell).split(b"\t", 1)[0].decode() for cell in cells]


def unordered_gt_strings(gt: np.ndarray) -> list[str]:
    """Unphased GT text with each diploid call's alleles in ascending order, missing first
    (``0/1`` for ``1|0``; ``./1``): for answers from the 2-bit codes, which keep neither phase
    nor order."""
    diploid = gt[:, 1] != FILL
    ordered = gt.copy()
    ordered[diploid] = np.sort(gt[diploid], axis=1)
    return gt_strings(ordered, np.zeros(len(gt), dtype=bool))
