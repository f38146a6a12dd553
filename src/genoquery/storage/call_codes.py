"""The query representation of genotypes: listed calls, missing calls, 2-bit dense codes.

``call_genotype`` holds every call at 2 bytes per sample; statistics for a cohort
would decode all of it. Most calls are homozygous reference, so for queries each
site is encoded once more, at ingest:

- A call is *hom-ref* when every allele it has is REF and it is complete: ``0/0``,
  or ``0`` for a haploid call. Whether a sample's call is haploid at a site comes
  from the site's *haploid pattern*, a bit mask over samples shared by every site
  with the same haploid samples (all of chrX outside the PARs shares one), or none
  when every call is diploid.
- *Missing* calls (``./.``, haploid ``.``, and partial REF calls ``./0``, ``0/.``) are
  listed as uint16 tokens in ``missing_call_token``: bits 0-14 the gap from the site's
  previous missing sample (from -1), bit 15 set for a partial REF call; a token of 0
  advances 32,767 samples without a call. They are most of the calls that are not
  hom-ref at rare sites (1% missingness is 1,000 calls per site at 10^5 samples), need
  no alleles, and take half the bytes of int32 sample indexes.
- A *sparse* site (at most ``samples // SPARSE_DIVISOR`` other non-hom-ref calls;
  most sites, since most variants are rare) lists those calls with their alleles in
  ``listed_call_sample`` and ``listed_call_genotype``.
- A *dense* site stores one 2-bit code per sample, four samples per byte (sample
  ``s`` in byte ``s // 4`` at bits ``2 * (s % 4)``): 0 hom-ref, 1 one copy of
  ALT 1 with REF (``0/1``, ``1/0``), 2 only ALT 1 (``1/1``, haploid ``1``),
  3 anything else: missing, or listed like a sparse site's calls (partial ``./1``,
  other ALT alleles).

Every call that is neither listed nor missing nor coded 1 or 2 is hom-ref. Each
site's listed and missing calls are contiguous ranges (``sites.listed_start``,
``n_listed``, ``missing_start``, ``n_missing_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from genoquery.storage.format import FILL

SPARSE_DIVISOR = 16  # a listed call costs ~3 bytes compressed, a dense site samples/4 bytes
HOM_REF, HET_ALT1, HOM_ALT1, OTHER = 0, 1, 2, 3
PARTIAL_REF = 0x8000  # bit 15 of a missing-call token: ./0 or 0/. rather than ./.
MAX_GAP = 0x7FFF  # a token's gap; the token 0 advances this far without a call


CODE_LOW_BITS = np.uint64(0x5555555555555555)  # the low bit of each of a word's 32 codes


@intrinsic
def popcount(typingctx, x):  # pragma: no cover - compiled
    """The set bits of a uint64: LLVM's ctpop, one POPCNT instruction (numba has no popcount)."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@numba.njit(nogil=True, cache=True, inline="always")
def two_copies(word):  # pragma: no cover - compiled
    """The codes 2 (only ALT 1) among a uint64 of dense codes (32 samples, or fewer in its low
    bytes): each such code's low bit set, every other bit clear."""
    return (word >> np.uint64(1)) & ~word & CODE_LOW_BITS


def code_bits(flags: np.ndarray) -> np.ndarray:
    """(rows, n) bool as (rows, ceil(n / 4)) uint8 in the dense codes' layout: sample ``s`` at
    the low bit of its code, bit ``2 * (s % 4)`` of byte ``s // 4``; zero past ``n``."""
    padded = np.zeros((len(flags), (flags.shape[1] + 3) // 4 * 4), dtype=np.uint8)
    padded[:, : flags.shape[1]] = flags
    return padded[:, 0::4] | padded[:, 1::4] << 2 | padded[:, 2::4] << 4 | padded[:, 3::4] << 6


@numba.njit(nogil=True, cache=True, inline="always")
def _no_alt_missing(a0, a1):  # pragma: no cover - compiled
    """``./.``, haploid ``.``, or a partial REF call ``./0`` / ``0/.``."""
    return (a0 == -1 and (a1 == -1 or a1 == FILL or a1 == 0)) or (a0 == 0 and a1 == -1)


@numba.njit(nogil=True, cache=True, inline="always")
def _code(a0, a1):  # pragma: no cover - compiled
    """The 2-bit code of a call that is not hom-ref: HET_ALT1, HOM_ALT1 or OTHER."""
    if (a0 == 1 and a1 == 0) or (a0 == 0 and a1 == 1):
        return HET_ALT1
    if a0 == 1 and (a1 == 1 or a1 == FILL):
        return HOM_ALT1
    return OTHER


@numba.njit(nogil=True, cache=True, inline="always")
def next_missing(token, sample):  # pragma: no cover - compiled
    """Step through a site's missing-call tokens from ``sample`` (-1 before the first):
    the next sample, and whether the token is a call (False for a 32,767-sample skip)."""
    gap = token & MAX_GAP
    if gap == 0:
        return sample + MAX_GAP, False
    return sample + gap, True


ALT1_ONLY = np.uint64(0xFEFEFEFEFEFEFEFE)  # bits no allele of a 0/0, 0/1, 1/0 or 1/1 call sets
LOW_BYTES = np.uint64(0x00FF00FF00FF00FF)
LANE_SUM = np.uint64(0x0001000100010001)  # times a word of four 16-bit lanes: their sum in the top lane


@numba.njit(nogil=True, cache=True, inline="always")
def _calls_word(gt, v, s):  # pragma: no cover - compiled
    """The 8 allele bytes of samples ``s .. s + 3`` at site ``v``, little-endian in a uint64."""
    word = np.uint64(0)
    for j in range(4):
        word |= np.uint64(np.uint8(gt[v, s + j, 0])) << np.uint64(16 * j)
        word |= np.uint64(np.uint8(gt[v, s + j, 1])) << np.uint64(16 * j + 8)
    return word


@numba.njit(nogil=True, cache=True, inline="always")
def _classify_call(gt, v, s, counts, previous, haploid):  # pragma: no cover - compiled
    """:func:`_classify` of one call, into ``counts`` (carriers, others, tokens); returns the last
    missing sample."""
    a0 = gt[v, s, 0]
    a1 = gt[v, s, 1]
    if a0 == 0 and a1 == 0:
        return previous
    if a1 == FILL:
        haploid[v] = True
        if a0 == 0:
            return previous
    if _no_alt_missing(a0, a1):
        counts[2] += 1 + (s - previous - 1) // MAX_GAP
        return s
    counts[0] += 1
    counts[1] += _code(a0, a1) == OTHER
    return previous


@numba.njit(nogil=True, cache=True)
def _classify(gt, carriers, other, tokens, haploid):  # pragma: no cover - compiled
    """Per site: calls with an ALT allele, those the 2-bit code cannot hold, missing-call tokens,
    and whether any call is haploid. Four samples at a time: when their 8 alleles are all 0 or 1,
    the carriers among them are counted without a branch per call (a common site's calls took
    most of the time, mispredicted branches); other groups of four one call at a time."""
    n_samples = gt.shape[1]
    counts = np.zeros(3, np.int64)
    for v in range(gt.shape[0]):
        counts[:] = 0
        previous = -1
        for w in range(n_samples // 4):
            word = _calls_word(gt, v, 4 * w)
            if word & ALT1_ONLY == 0:
                lanes = (word | word >> np.uint64(8)) & LOW_BYTES  # each call's a0 | a1, 0 or 1
                counts[0] += np.int64((lanes * LANE_SUM) >> np.uint64(48))
                continue
            for s in range(4 * w, 4 * w + 4):
                previous = _classify_call(gt, v, s, counts, previous, haploid)
        for s in range(n_samples - n_samples % 4, n_samples):
            previous = _classify_call(gt, v, s, counts, previous, haploid)
        carriers[v] = counts[0]
        other[v] = counts[1]
        tokens[v] = counts[2]


@numba.njit(nogil=True, cache=True, inline="always")
def _encode_calls(gt, v, lo, hi, d, out, k, m, previous):  # pragma: no cover - compiled
    """:func:`_encode` of samples ``lo .. hi - 1`` of site ``v``, one call at a time, into ``out``
    (its arrays, in its order); returns the next listed row ``k``, the next token ``m`` and the
    last missing sample."""
    codes, row_site, row_sample, row_a0, row_a1, token_site, token = out
    for s in range(lo, hi):
        a0 = gt[v, s, 0]
        a1 = gt[v, s, 1]
        if a0 == 0 and (a1 == 0 or a1 == FILL):
            continue
        code = _code(a0, a1)
        if d >= 0:
            codes[d, s >> 2] |= np.uint8(code << ((s & 3) * 2))
        if _no_alt_missing(a0, a1):
            gap = s - previous
            while gap > MAX_GAP:
                token_site[m] = v
                token[m] = 0
                m += 1
                gap -= MAX_GAP
            token_site[m] = v
            token[m] = gap | (PARTIAL_REF if a0 == 0 or a1 == 0 else 0)
            m += 1
            previous = s
        elif d < 0 or code == OTHER:
            row_site[k] = v
            row_sample[k] = s
            row_a0[k] = a0
            row_a1[k] = a1
            k += 1
    return k, m, previous


@numba.njit(nogil=True, cache=True)
def _encode(
    gt, dense_of_site, codes, row_site, row_sample, row_a0, row_a1, token_site, token
):  # pragma: no cover - compiled
    """Fill ``codes`` (dense sites), the listed calls and the missing-call tokens. A dense site's
    samples go four at a time: when their 8 alleles are all 0 or 1 (diploid, no missing allele,
    nothing beyond ALT 1), each code is the sum of its two alleles, packed as one byte without a
    branch per call (a block encodes in half the time); other groups of four, and a sparse
    site's calls, one call at a time."""
    out = (codes, row_site, row_sample, row_a0, row_a1, token_site, token)
    k = 0
    m = 0
    n_samples = gt.shape[1]
    for v in range(gt.shape[0]):
        d = dense_of_site[v]
        previous = -1
        start = 0
        if d >= 0:
            start = n_samples - n_samples % 4
            for w in range(n_samples // 4):
                word = _calls_word(gt, v, 4 * w)
                if word & ALT1_ONLY == 0:
                    sums = (word & LOW_BYTES) + ((word >> np.uint64(8)) & LOW_BYTES)  # 4 x 16-bit a0 + a1
                    packed = sums | sums >> np.uint64(14) | sums >> np.uint64(28) | sums >> np.uint64(42)
                    codes[d, w] = np.uint8(packed & np.uint64(0xFF))
                else:
                    k, m, previous = _encode_calls(gt, v, 4 * w, 4 * w + 4, d, out, k, m, previous)
        k, m, previous = _encode_calls(gt, v, start, n_samples, d, out, k, m, previous)


@dataclass
class CallCodes:
    """The query encoding of one block of sites.

    Per site: ``carriers`` (sites,) int64 counts calls with an ALT allele (partial
    calls such as ``./1`` included); ``dense`` marks dense sites, whose
    codes are the rows of ``codes`` (dense sites, ceil(samples / 4)) uint8 in site
    order; ``haploid_pattern`` is the pattern id or -1. Listed calls: ``row_site``
    (block row), ``row_sample``, ``row_a0``, ``row_a1``, by site then sample; missing-call
    tokens: ``token_site``, ``token`` (uint16, see the module docstring).
    """

    carriers: np.ndarray
    dense: np.ndarray
    codes: np.ndarray
    haploid_pattern: np.ndarray
    row_site: np.ndarray
    row_sample: np.ndarray
    row_a0: np.ndarray
    row_a1: np.ndarray
    token_site: np.ndarray
    token: np.ndarray


class HaploidPatterns:
    """The distinct haploid masks seen so far, packed little-endian, one id each."""

    def __init__(self, n_samples: int) -> None:
        self.n_samples = n_samples
        self._ids: dict[bytes, int] = {}
        self.masks: list[np.ndarray] = []

    def ids(self, gt: np.ndarray, haploid: np.ndarray) -> np.ndarray:
        """Pattern id of each site of ``gt`` (sites, samples, 2), -1 when no call is haploid;
        ``haploid`` (sites,) bool says which sites have a haploid call (the others are not read)."""
        out = np.full(len(gt), -1, dtype=np.int64)
        for v in np.flatnonzero(haploid):
            out[v] = self.id_of(np.packbits(gt[v, :, 1] == FILL, bitorder="little"))
        return out

    def id_of(self, mask: np.ndarray) -> int:
        """The id of a packed mask, a new one (the next) if not seen before."""
        found = self._ids.setdefault(mask.tobytes(), len(self._ids))
        if found == len(self.masks):
            self.masks.append(mask)
        return found

    def merged_ids(self, masks: list[np.ndarray]) -> np.ndarray:
        """This instance's ids of another's ``masks`` (in the other's id order), adding the new ones
        in that order, then -1: ``merged_ids(masks)[ids]`` renumbers the other's ``ids`` (-1 stays).
        Instances of consecutive parts merged in order number the patterns as one of the whole would."""
        return np.array([self.id_of(mask) for mask in masks] + [-1], dtype=np.int64)

    def array(self) -> np.ndarray:
        """All masks, (patterns, ceil(samples / 8)) uint8."""
        width = -(-self.n_samples // 8)
        return np.stack(self.masks) if self.masks else np.zeros((0, width), dtype=np.uint8)


def encode_block(gt: np.ndarray, patterns: HaploidPatterns) -> CallCodes:
    """Encode ``gt`` (sites, samples, 2) int8 in VCF Zarr coding (see the module docstring)."""
    gt = np.ascontiguousarray(gt)
    n_sites, n_samples = gt.shape[0], gt.shape[1]
    carriers, other, tokens = (np.zeros(n_sites, dtype=np.int64) for _ in range(3))
    haploid = np.zeros(n_sites, dtype=np.bool_)
    _classify(gt, carriers, other, tokens, haploid)
    dense = carriers > n_samples // SPARSE_DIVISOR
    dense_of_site = np.where(dense, np.cumsum(dense) - 1, -1)
    codes = np.zeros((int(dense.sum()), -(-n_samples // 4)), dtype=np.uint8)
    n_rows, n_tokens = int(np.where(dense, other, carriers).sum()), int(tokens.sum())
    rows = (
        np.empty(n_rows, np.int64),
        np.empty(n_rows, np.int32),
        np.empty(n_rows, np.int8),
        np.empty(n_rows, np.int8),
    )
    token_rows = (np.empty(n_tokens, np.int64), np.empty(n_tokens, np.uint16))
    _encode(gt, dense_of_site, codes, *rows, *token_rows)
    return CallCodes(carriers, dense, codes, patterns.ids(gt, haploid), *rows, *token_rows)


@numba.njit(nogil=True, cache=True)
def _count_coded(codes, members):  # pragma: no cover - compiled
    """How many calls of ``members`` are coded 1 or 2."""
    n = 0
    for r in range(codes.shape[0]):
        for s in members:
            c = (codes[r, s >> 2] >> ((s & 3) * 2)) & 3
            n += (c == 1) | (c == 2)
    return n


@numba.njit(nogil=True, cache=True)
def _fill_coded(codes, members, row, sample, code):  # pragma: no cover - compiled
    """Write the calls of ``members`` coded 1 or 2 (outputs one longer than their count): every
    call is written and only those count, so nothing branches on the codes, which are
    unpredictable: 218 ms against 264 ms with a branch per call, for 64 dense sites of 10^6
    samples (17.9 M carriers; medians of 6, interleaved)."""
    n = 0
    for r in range(codes.shape[0]):
        for s in members:
            c = (codes[r, s >> 2] >> ((s & 3) * 2)) & 3
            row[n], sample[n], code[n] = r, s, c
            n += (c == 1) | (c == 2)


def coded_carriers(codes: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calls coded 1 (``0/1``) or 2 (``1/1``, haploid ``1``) among ``members`` (sorted int64
    sample indexes) of dense sites' ``codes`` (sites, ceil(samples / 4)) uint8: code row
    (int64), sample (int64) and code (uint8) of each, by row then sample. Counted, then
    filled, with no unpacked copy of the codes."""
    n = _count_coded(codes, members)
    out = (np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.uint8))
    if n:
        _fill_coded(codes, members, *out)
    return tuple(column[:n] for column in out)
