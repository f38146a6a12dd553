"""Tabix (.tbi) index for a VCF written by :class:`~genoquery.simulate.bgzf.BgzfWriter`.

The writer knows every record's virtual offset, so the index is built from
those instead of re-reading the file (``pysam.tabix_index`` decompresses and
parses all of it: about 500 MB/s, a minute for a large cohort). The layout
follows the tabix specification (htslib ``hts_idx_save``, TBI format):
UCSC binning with 14-bit leaf bins and depth 5, a linear index of 16 kb
windows, a pseudo-bin 37450 with the contig's offset range and record count,
and VCF column settings (``format=2``, seq=1, beg=2, end=0, meta ``#``).

Coordinates: record ``beg`` is 0-based (VCF POS - 1), ``end`` is exclusive
(``beg + len(REF)``), as htslib computes them for VCF without INFO/END.
Tests check that queries through this index return what a
``pysam.tabix_index`` index returns.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from genoquery.bgzf import BgzfWriter

MIN_SHIFT = 14
DEPTH = 5
META_BIN = 37450
_TBI_CONF = struct.pack("<6i", 2, 1, 2, 0, ord("#"), 0)


@dataclass
class ContigRecords:
    """Records of one contig in file order: 0-based begin, exclusive end, virtual offsets."""

    name: str
    beg: np.ndarray
    end: np.ndarray
    voff_start: np.ndarray
    voff_end: np.ndarray


def reg2bin(beg: np.ndarray, end: np.ndarray) -> np.ndarray:
    """UCSC bin of each 0-based half-open interval (vectorised hts_reg2bin, min_shift 14, depth 5)."""
    beg = np.asarray(beg, dtype=np.int64)
    last = np.asarray(end, dtype=np.int64) - 1
    out = np.zeros(beg.shape, dtype=np.int64)
    done = np.zeros(beg.shape, dtype=bool)
    shift, first = MIN_SHIFT, ((1 << 3 * DEPTH) - 1) // 7
    for _ in range(DEPTH):
        same = ~done & ((beg >> shift) == (last >> shift))
        out[same] = first + (beg[same] >> shift)
        done |= same
        shift += 3
        first -= 1 << 3 * (DEPTH - 1 - _)
    return out


def _contig_index(rec: ContigRecords) -> bytes:
    n = len(rec.beg)
    bins = reg2bin(rec.beg, rec.end)
    # chunks: maximal runs of consecutive records in the same bin
    starts = np.flatnonzero(np.concatenate([[True], bins[1:] != bins[:-1]]))
    ends = np.concatenate([starts[1:], [n]]) - 1
    chunk_bin = bins[starts]
    order = np.argsort(chunk_bin, kind="stable")
    parts: list[bytes] = []
    uniq, first_idx, counts = np.unique(chunk_bin[order], return_index=True, return_counts=True)
    parts.append(struct.pack("<i", len(uniq) + 1))
    for b, i0, cnt in zip(uniq.tolist(), first_idx.tolist(), counts.tolist(), strict=True):
        sel = order[i0 : i0 + cnt]
        pairs = np.empty((cnt, 2), dtype="<u8")
        pairs[:, 0] = rec.voff_start[starts[sel]]
        pairs[:, 1] = rec.voff_end[ends[sel]]
        parts.append(struct.pack("<Ii", b, cnt) + pairs.tobytes())
    parts.append(struct.pack("<IiQQQQ", META_BIN, 2, int(rec.voff_start[0]), int(rec.voff_end[-1]), n, 0))
    # linear index: smallest start offset of a record overlapping each 16 kb window
    w_beg = rec.beg >> MIN_SHIFT
    w_end = (rec.end - 1) >> MIN_SHIFT
    n_intv = int(w_end.max()) + 1
    linear = np.full(n_intv, np.iinfo(np.uint64).max, dtype=np.uint64)
    for span in np.unique(w_end - w_beg).tolist():
        sel = (w_end - w_beg) == span
        for k in range(span + 1):
            np.minimum.at(linear, w_beg[sel] + k, rec.voff_start[sel])
    missing = linear == np.iinfo(np.uint64).max
    if missing[0]:
        linear[0] = rec.voff_start[0]
    # fill gaps with the previous window's offset (htslib update_loff)
    idx = np.where(missing & (np.arange(n_intv) > 0), 0, np.arange(n_intv))
    np.maximum.accumulate(idx, out=idx)
    linear = linear[idx]
    parts.append(struct.pack("<i", n_intv) + linear.astype("<u8").tobytes())
    return b"".join(parts)


def write_tbi(path: str | os.PathLike[str], contigs: list[ContigRecords]) -> None:
    """Write a BGZF-compressed .tbi for records of ``contigs`` (in file order, each sorted by beg)."""
    contigs = [c for c in contigs if len(c.beg)]
    names = b"".join(c.name.encode() + b"\0" for c in contigs)
    body = [b"TBI\1", struct.pack("<i", len(contigs)), _TBI_CONF, struct.pack("<i", len(names)), names]
    body += [_contig_index(c) for c in contigs]
    body.append(struct.pack("<Q", 0))  # n_no_coor
    with BgzfWriter(path) as out:
        out.write(b"".join(body))
