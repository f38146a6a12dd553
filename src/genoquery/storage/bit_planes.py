"""Rows of a batch's VCF Zarr call arrays read from their chunks' bit planes.

``call_genotype`` (int8) and ``call_genotype_phased`` (bool) are written as Zarr format 2 chunks
of Blosc with zstd after bitshuffle, one Blosc block per chunk (:mod:`genoquery.ingest.zarr_writer`).
Blosc decodes such a chunk in two steps: zstd, then a bit transpose of the whole chunk, which is
~80% of the time (one chunk row of 64 sites x 10^6 samples: 12 ms of zstd against 70 ms for
Blosc's whole decode, one thread). After zstd alone, a chunk of ``n`` one-byte elements (C order)
is 8 bit planes of ``n / 8`` bytes, plane ``b`` holding bit ``b`` of every element: element ``i``
at byte ``i // 8``, bit ``i % 8``. A site's calls are one run of elements, so the rows asked for
are transposed back from the planes and the rest of the chunk never is. One variant's genotypes
at 10^6 samples read 100 chunks this way.

Any other layout (another codec or shuffle, several Blosc blocks, a split trailing dimension,
object storage) is read through zarr, which gives the same values (tested on hypothesis-drawn
arrays and selections), as are selections of more than a quarter of their chunks' rows (the
whole chunk's decode is then the cheaper).
"""

from __future__ import annotations

import functools
import os
import struct
import threading
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
import zarr
from numcodecs import Blosc, zstd
from zarr.storage import LocalStore

BLOSC_HEADER = struct.Struct("<BBBBiii")  # version, versionlz, flags, typesize, nbytes, blocksize, cbytes
MEMCPYED, BITSHUFFLE, BYTE_SHUFFLE = 0x02, 0x04, 0x01
ZSTD = 4  # Blosc's compressor code, in flags bits 5-7
# Rows are read from the planes while they are at most this share of their chunks' rows: zstd alone
# plus the transpose of 64 rows x 20,000 elements cost 1.4 ms, Blosc's whole decode 0.7 ms.
FEW_ROWS = 0.25
SMALL_CHUNK = 1024  # compressed bytes up to which a chunk's planes are kept (see _small_planes)
_SCRATCH = threading.local()  # per thread: one chunk's planes, reused (a fresh 1 MB buffer faults in)


def read_rows(array: zarr.Array, rows: slice | np.ndarray, samples: slice | np.ndarray) -> np.ndarray:
    """``array.get_orthogonal_selection((rows, samples))`` of a VCF Zarr call array (variants,
    samples[, ploidy]): ``rows`` and ``samples`` each a slice (step 1) or a sorted int array."""
    chunks = _chunks(array)
    row_runs = _runs(rows, array.shape[0], chunks.shape[0]) if chunks else []
    if chunks is None or sum(r1 - r0 for _, r0, r1, _ in row_runs) > len(row_runs) * chunks.shape[0] * FEW_ROWS:
        return array.get_orthogonal_selection((rows, samples))
    sample_runs = _runs(samples, array.shape[1], chunks.shape[1])
    width = sample_runs[-1][2] if sample_runs else 0
    out = np.empty((row_runs[-1][2] if row_runs else 0, width, *array.shape[2:]), dtype=array.dtype)
    for r, r0, r1, within in row_runs:
        chunk_rows = np.arange(within.start, within.stop) if isinstance(within, slice) else within
        for c, s0, s1, columns in sample_runs:
            out[r0:r1, s0:s1] = chunks.rows((r, c), chunk_rows)[:, columns]
    return out


def _runs(selection: slice | np.ndarray, n: int, per_chunk: int) -> list[tuple[int, int, int, slice | np.ndarray]]:
    """``(chunk, start, stop, within)`` for each chunk along an axis of length ``n`` holding some
    of ``selection`` (a slice of step 1, or sorted indexes): the result's positions
    ``start:stop`` come from the chunk's ``within`` (a slice where they are consecutive)."""
    if isinstance(selection, slice):
        lo, hi, step = selection.indices(n)
        if step != 1:
            return _runs(np.arange(lo, hi, step), n, per_chunk)
        chunks = range(lo // per_chunk, -(-hi // per_chunk))
        spans = [(c, max(lo, c * per_chunk), min(hi, (c + 1) * per_chunk)) for c in chunks]
        return [(c, a - lo, b - lo, slice(a - c * per_chunk, b - c * per_chunk)) for c, a, b in spans if a < b]
    index = np.asarray(selection, dtype=np.int64)
    if not len(index):
        return []
    chunks = np.arange(index[0] // per_chunk, index[-1] // per_chunk + 1)
    bounds = np.searchsorted(index, np.append(chunks, chunks[-1] + 1) * per_chunk).tolist()
    return [
        (c, a, b, _as_slice(index[a:b] - c * per_chunk))
        for c, a, b in zip(chunks.tolist(), bounds[:-1], bounds[1:], strict=True)
        if a < b
    ]


def _as_slice(within: np.ndarray) -> slice | np.ndarray:
    """Sorted distinct positions as a slice when they are consecutive (a copy, not a gather)."""
    if int(within[-1]) - int(within[0]) + 1 == len(within):
        return slice(int(within[0]), int(within[-1]) + 1)
    return within


@dataclass(frozen=True)
class _Chunks:
    """An array's chunk files: ``directory/R{sep}C[{sep}0]``, each of ``shape`` one-byte elements
    (C order); a chunk never written holds ``fill`` (the element's byte)."""

    directory: str
    separator: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fill: int

    @cached_property
    def per_row(self) -> int:
        """Elements of one row of a chunk (its samples x ploidy)."""
        return int(np.prod(self.shape[1:]))

    def rows(self, chunk: tuple[int, int], rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (within the chunk) of one chunk, all its samples: (rows, samples[, ploidy])."""
        per_row = self.per_row
        key = self.separator.join(map(str, (*chunk, *[0] * (len(self.shape) - 2))))
        out = np.empty((len(rows), per_row), dtype=np.uint8)
        try:
            with open(self.directory + key, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            out[:] = self.fill
            return out.view(self.dtype).reshape(len(rows), *self.shape[1:])
        planes = _planes(data, per_row * self.shape[0])
        if planes is None:  # a layout Blosc alone decodes: the whole chunk, then the rows
            whole = np.empty(per_row * self.shape[0], dtype=np.uint8)
            Blosc().decode(data, out=whole)
            out[:] = whole.reshape(self.shape[0], per_row)[rows]
        elif planes.ndim == 1:  # stored uncompressed and unshuffled
            out[:] = planes.reshape(self.shape[0], per_row)[rows]
        else:
            _transposed_rows(planes, rows.astype(np.int64), per_row, out)
        return out.view(self.dtype).reshape(len(rows), *self.shape[1:])


def _chunks(array: zarr.Array) -> _Chunks | None:
    """The chunk files of ``array`` when this module reads it (see the module docstring)."""
    meta = array.metadata
    if (
        meta.zarr_format != 2
        or not isinstance(array.store, LocalStore)
        or not isinstance(meta.compressor, Blosc)
        or meta.compressor.shuffle != Blosc.BITSHUFFLE
        or meta.compressor.cname != "zstd"
        or meta.filters
        or meta.order != "C"
        or np.dtype(array.dtype).itemsize != 1
        or tuple(meta.chunks[2:]) != tuple(array.shape[2:])
    ):
        return None
    fill = np.array(meta.fill_value or 0, dtype=array.dtype).view(np.uint8)  # zarr: None reads as 0
    directory = os.path.join(array.store.root, array.path, "")
    return _Chunks(directory, meta.dimension_separator, tuple(meta.chunks), np.dtype(array.dtype), int(fill))


def _planes(data: bytes, nbytes: int) -> np.ndarray | None:
    """The bit planes (8, nbytes / 8) of a one-block, typesize-1 Blosc buffer of zstd after
    bitshuffle; the elements themselves (1-d) when Blosc stored them as they are; None for any
    other Blosc buffer."""
    _, _, flags, typesize, size, blocksize, cbytes = BLOSC_HEADER.unpack_from(data)
    if size != nbytes or cbytes != len(data) or typesize != 1:
        return None
    if flags & MEMCPYED:
        return np.frombuffer(data, dtype=np.uint8, offset=BLOSC_HEADER.size, count=nbytes)
    if flags & BYTE_SHUFFLE or not flags & BITSHUFFLE or flags >> 5 != ZSTD or blocksize < size or size % 8:
        return None
    if len(data) <= SMALL_CHUNK:
        return _small_planes(data, nbytes)
    planes = getattr(_SCRATCH, "planes", None)
    if planes is None or len(planes) < nbytes:
        planes = _SCRATCH.planes = np.empty(nbytes, dtype=np.uint8)
    return _decoded(data, planes[:nbytes])


@functools.lru_cache(maxsize=16)
def _small_planes(data: bytes, nbytes: int) -> np.ndarray:
    """The planes of a chunk that compressed to at most :data:`SMALL_CHUNK` bytes, decoded once:
    such chunks are (nearly) constant and repeat across the store (phase flags of phased input
    are all true: 66 bytes for 640,000 flags, whose zstd took as long as a genotype chunk's)."""
    return _decoded(data, np.empty(nbytes, dtype=np.uint8))


def _decoded(data: bytes, planes: np.ndarray) -> np.ndarray:
    """The one block of ``data`` (checked by :func:`_planes`) decoded into ``planes`` (uint8, the
    chunk's bytes), as a read-only (8, bytes / 8) view: one compiled kernel reads them all."""
    (start,) = struct.unpack_from("<i", data, BLOSC_HEADER.size)  # the one block's offset
    (length,) = struct.unpack_from("<i", data, start)
    frame = memoryview(data)[start + 4 : start + 4 + length]
    if length == len(planes):  # Blosc kept an incompressible stream as it was (still bitshuffled)
        planes[:] = np.frombuffer(frame, dtype=np.uint8)
    else:
        zstd.decompress(frame, planes)
    view = planes.reshape(8, len(planes) // 8).view()
    view.flags.writeable = False
    return view


@numba.njit(nogil=True, cache=True)
def _transposed_rows(planes: np.ndarray, rows: np.ndarray, per_row: int, out: np.ndarray) -> None:  # pragma: no cover
    """``out[k]`` = the ``per_row`` one-byte elements of row ``rows[k]``, from the bit planes
    (8, n / 8): eight elements at a time from one byte of each plane, through an 8 x 8 bit
    transpose (Hacker's Delight, 7-3), skipped where all eight are zero (most calls are ``0/0``);
    elements before the row's first whole byte and after its last one by one."""
    for k in range(len(rows)):
        first = rows[k] * per_row
        start = min((first + 7) & ~7, first + per_row)
        stop = start + (first + per_row - start) // 8 * 8
        for e in list(range(first, start)) + list(range(stop, first + per_row)):
            value = 0
            for b in range(8):
                value |= ((planes[b, e >> 3] >> (e & 7)) & 1) << b
            out[k, e - first] = value
        for e in range(start, stop, 8):
            x = np.uint64(0)
            for b in range(8):
                x |= np.uint64(planes[b, e >> 3]) << np.uint64(8 * b)
            i = e - first
            if x == 0:
                out[k, i : i + 8] = 0
                continue
            t = (x ^ (x >> np.uint64(7))) & np.uint64(0x00AA00AA00AA00AA)
            x = x ^ t ^ (t << np.uint64(7))
            t = (x ^ (x >> np.uint64(14))) & np.uint64(0x0000CCCC0000CCCC)
            x = x ^ t ^ (t << np.uint64(14))
            t = (x ^ (x >> np.uint64(28))) & np.uint64(0x00000000F0F0F0F0)
            x = x ^ t ^ (t << np.uint64(28))
            for j in range(8):
                out[k, i + j] = (x >> np.uint64(8 * j)) & np.uint64(0xFF)
