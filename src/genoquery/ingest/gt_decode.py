"""Bulk decoding of VCF text genotype columns with numpy.

A VCF data line's sample columns are decoded here without a per-genotype
Python loop. The fast path accepts exactly the calls it can prove it reads
correctly: haploid or diploid GT with single-digit allele indexes or ``.``,
``/`` or ``|`` separators, GT first in FORMAT. :func:`decode_gt` returns
``None`` for anything else, and the caller falls back to htslib (cyvcf2).

Output conventions follow VCF Zarr: allele indexes as int8, ``-1`` for a
missing allele, ``-2`` for the fill of a haploid call in a diploid array.
Phasing follows htslib/cyvcf2: ``|`` is phased, ``/`` is not, and a haploid
call counts as phased.
"""

from __future__ import annotations

import numpy as np

TAB = 9
COLON = 58
DOT = 46
PIPE = 124
SLASH = 47
ZERO = 48
NINE = 57


def _alleles(chars: np.ndarray) -> np.ndarray | None:
    """Map single allele characters to int8 codes; None if any is not a digit or '.'."""
    codes = chars.astype(np.int16) - ZERO
    is_digit = (codes >= 0) & (codes <= 9)
    is_dot = chars == DOT
    if not np.all(is_digit | is_dot):
        return None
    codes[is_dot] = -1
    return codes.astype(np.int8)


def decode_gt(samples: bytes, n_samples: int, gt_only: bool,
              out_gt: np.ndarray, out_phased: np.ndarray) -> int | None:
    """Decode one line's sample columns into ``out_gt`` (S, 2) and ``out_phased`` (S,).

    ``samples`` is the text after the ninth tab, without the line ending.
    ``gt_only`` says FORMAT is exactly ``GT``. Returns the number of sample
    columns found (the caller checks it against the header), or None when the
    line holds a call the fast path does not handle.
    """
    buf = np.frombuffer(samples, dtype=np.uint8)
    if gt_only and len(buf) == 4 * n_samples - 1:
        cols = np.empty(4 * n_samples, dtype=np.uint8)
        cols[:-1] = buf
        cols[-1] = TAB
        cols = cols.reshape(n_samples, 4)
        if np.all(cols[:, 3] == TAB):
            return _decode_diploid(cols[:, 0], cols[:, 1], cols[:, 2], out_gt, out_phased)
    return _decode_ragged(buf, gt_only, out_gt, out_phased)


def _decode_diploid(first: np.ndarray, sep: np.ndarray, second: np.ndarray,
                    out_gt: np.ndarray, out_phased: np.ndarray) -> int | None:
    """Decode fixed-width diploid calls ``a/b`` or ``a|b``."""
    is_pipe = sep == PIPE
    if not np.all(is_pipe | (sep == SLASH)):
        return None
    a0 = _alleles(first)
    a1 = _alleles(second)
    if a0 is None or a1 is None:
        return None
    out_gt[: len(a0), 0] = a0
    out_gt[: len(a0), 1] = a1
    out_phased[: len(a0)] = is_pipe
    return len(a0)


def _decode_ragged(buf: np.ndarray, gt_only: bool,
                   out_gt: np.ndarray, out_phased: np.ndarray) -> int | None:
    """Decode sample columns of varying width (haploid mixed with diploid, extra FORMAT fields).

    A GT value ends at a tab or the end of the line, or, when FORMAT has more
    fields than GT, at a colon.
    """
    n = len(buf)
    tabs = np.flatnonzero(buf == TAB)
    n_cols = len(tabs) + 1
    if n_cols > len(out_gt):
        return n_cols
    starts = np.empty(n_cols, dtype=np.int64)
    starts[0] = 0
    starts[1:] = tabs + 1
    padded = np.full(n + 4, TAB, dtype=np.uint8)
    padded[:n] = buf

    def ends_at(offset: int) -> np.ndarray:
        chars = padded[starts + offset]
        return (chars == TAB) if gt_only else ((chars == TAB) | (chars == COLON))

    sep = padded[starts + 1]
    haploid = ends_at(1)
    diploid = ((sep == SLASH) | (sep == PIPE)) & ends_at(3)
    if not np.all(haploid | diploid):
        return None
    first = _alleles(padded[starts])
    second = _alleles(np.where(diploid, padded[starts + 2], ZERO).astype(np.uint8))
    if first is None or second is None:
        return None
    out_gt[:n_cols, 0] = first
    out_gt[:n_cols, 1] = np.where(diploid, second, -2)
    out_phased[:n_cols] = haploid | (sep == PIPE)
    return n_cols
