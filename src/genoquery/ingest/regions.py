"""Regions of an indexed VCF.gz or BCF file, cut through its tabix (.tbi) or CSI index, so that
the file can be read in parts (a Dask ingest's partitions within a file).

A region is the records of one contig whose POS lies in ``start`` .. ``end`` (1-based, inclusive;
``end`` None: to the contig's end), read from the index's ``offset`` (a BGZF virtual offset: the
compressed block's file offset << 16 | the offset within the block) at or before its first record.
Cuts fall on the index's windows (``1 << min_shift`` bases, 16 kb in both formats as htslib
writes them), where the index gives the offset of the first record overlapping each window: the
tabix linear index, or the ``loff`` of CSI's bins of the finest level. Regions hold about
``records`` records each, estimated from the compressed bytes between windows and the contig's
record count (both in the index); the exact counts are a counting pass's
(:func:`~genoquery.ingest.records.count_region`). Only the index is read here.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

from genoquery.ingest.vcf_source import VcfSource

TBI_MAGIC, CSI_MAGIC = b"TBI\x01", b"CSI\x01"
TBI_SHIFT, TBI_DEPTH = 14, 5  # a tabix index's fixed binning scheme


@dataclass(frozen=True)
class FileRegion:
    """Records of ``contig`` with ``start <= POS <= end`` (1-based; ``end`` None: to the contig's
    end), reading from the virtual offset ``offset``; ``index`` is its place in the file's order."""

    contig: str
    start: int
    end: int | None
    offset: int
    index: int

    def __str__(self) -> str:
        return f"{self.contig}:{self.start}-" + ("" if self.end is None else str(self.end))


@dataclass
class _Contig:
    """One contig's entries in an index: its records, its first and last virtual offsets, and the
    offset of the first record overlapping each window of the finest level that has one."""

    name: str
    records: int
    first: int
    last: int
    windows: dict[int, int]


def index_file(source: VcfSource) -> Path | None:
    """The tabix or CSI index beside ``source`` (``.csi`` first for BCF, ``.tbi`` for VCF.gz)."""
    if source.kind not in ("vcf.gz", "bcf"):
        return None
    suffixes = (".csi", ".tbi") if source.kind == "bcf" else (".tbi", ".csi")
    return next((p for s in suffixes if (p := Path(f"{source.path}{s}")).is_file()), None)


def file_regions(source: VcfSource, records: int) -> list[FileRegion] | None:
    """``source``'s regions in file order, of about ``records`` records each, the first read from
    the file's beginning (its header); None when it has no index (or an index this module cannot
    read) or holds at most ``records`` records (read whole)."""
    path = index_file(source)
    if path is None:
        return None
    try:
        shift, contigs = _read_index(path, [name for name, _ in source.contigs])
    except (OSError, EOFError, struct.error, ValueError, IndexError):  # not an index of a kind read here
        return None
    contigs = sorted((c for c in contigs if c.records > 0), key=lambda c: c.first)
    if sum(c.records for c in contigs) <= records:
        return None
    regions: list[FileRegion] = []
    for contig in contigs:
        starts = _cuts(contig, records)
        for i, (window, offset) in enumerate(starts):
            end = (starts[i + 1][0] << shift) if i + 1 < len(starts) else None
            regions.append(FileRegion(contig.name, (window << shift) + 1, end, offset, len(regions)))
    return [FileRegion(r.contig, r.start, r.end, 0, 0) if r.index == 0 else r for r in regions]


def _cuts(contig: _Contig, records: int) -> list[tuple[int, int]]:
    """The windows where ``contig``'s regions begin, with their offsets: the first record, then
    every window whose compressed bytes since the previous cut hold about ``records`` records."""
    span = max(1, (contig.last >> 16) - (contig.first >> 16))
    step = span * records / contig.records  # compressed bytes of ``records`` records, on average
    cuts = [(0, contig.first)]
    for window, offset in sorted(contig.windows.items()):
        at = offset >> 16
        if window > 0 and at - (cuts[-1][1] >> 16) >= step and (contig.last >> 16) - at >= step / 2:
            cuts.append((window, max(offset, contig.first)))
    return cuts


def _read_index(path: Path, header_contigs: list[str]) -> tuple[int, list[_Contig]]:
    """The min_shift of a .tbi or .csi index and its contigs (named by the index, else by the
    header's contig dictionary: a BCF's CSI index keeps no names)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    magic = data[:4]
    if magic == TBI_MAGIC:
        shift, depth = TBI_SHIFT, TBI_DEPTH
        n_ref, at = struct.unpack_from("<i", data, 4)[0], 4
        names, at = _tabix_names(data, at + 4)
    elif magic == CSI_MAGIC:
        shift, depth, l_aux = struct.unpack_from("<3i", data, 4)
        names = _tabix_names(data, 16)[0] if l_aux >= 28 else header_contigs
        n_ref, at = struct.unpack_from("<i", data, 16 + l_aux)[0], 20 + l_aux
    else:
        raise ValueError("not a tabix or CSI index")
    leaf = ((1 << 3 * depth) - 1) // 7  # the first bin of the finest level
    pseudo = ((1 << 3 * depth + 3) - 1) // 7 + 1  # htslib's bin of per-contig statistics
    contigs = []
    for ref in range(n_ref):
        contig = _Contig(names[ref], 0, 0, 0, {})
        (n_bin,), at = struct.unpack_from("<i", data, at), at + 4
        for _ in range(n_bin):
            if magic == CSI_MAGIC:
                bin_id, loff, n_chunk = struct.unpack_from("<IQi", data, at)
                at += 16
            else:
                bin_id, n_chunk = struct.unpack_from("<Ii", data, at)
                loff, at = 0, at + 8
            chunks = struct.unpack_from(f"<{2 * n_chunk}Q", data, at)
            at += 16 * n_chunk
            if bin_id == pseudo:
                contig.first, contig.last, contig.records = chunks[0], chunks[1], chunks[2]
            elif magic == CSI_MAGIC and bin_id >= leaf:
                contig.windows[bin_id - leaf] = loff
        if magic == TBI_MAGIC:
            (n_intv,), at = struct.unpack_from("<i", data, at), at + 4
            contig.windows = dict(enumerate(struct.unpack_from(f"<{n_intv}Q", data, at)))
            at += 8 * n_intv
        contigs.append(contig)
    return shift, contigs


def _tabix_names(data: bytes, at: int) -> tuple[list[str], int]:
    """The contig names of a tabix header (format .. skip, l_nm, names) at ``at``, and the offset
    after them."""
    (l_nm,) = struct.unpack_from("<i", data, at + 24)
    names = data[at + 28 : at + 28 + l_nm].split(b"\0")
    return [n.decode() for n in names if n], at + 28 + l_nm
