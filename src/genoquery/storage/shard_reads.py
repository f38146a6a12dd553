"""Reading consecutive rows of the query encoding's arrays straight from their shard files.

The query arrays (:mod:`genoquery.ingest.zarr_writer`: Zarr v3 sharding, the shard index at the
end of each file and checked with its CRC32C, inner chunks ``bytes`` + Blosc) are read whole
regions at a time. zarr-python decodes each inner chunk into a buffer of its own and copies it
twice (into the shard, then into the result): at 10^5 samples it read a 1 Mb region's 56 MB of
missing-call tokens in 145 ms on 2 threads, against 67 ms on one thread for the same
decompression by numcodecs' Blosc (docs/architecture.md). Here each shard's index is read once
and each inner chunk is decompressed on a thread pool straight into the result, when the chunk
lies wholly inside it (else into a scratch chunk, then copied). An array with any other layout
(another codec, store or key encoding) is read through zarr.

Shards are read by byte ranges: of local files from read-only mappings kept by the reader (see
:func:`_mapped`); on object storage (zarr's
``FsspecStore``) through the store's ranged ``get``, where each shard's index is one suffix
request (kept by the reader: a shard is never rewritten) and the inner chunks a read wants of a
shard are fetched together at the first one's decoding, adjacent ones as one range, the ranges
concurrently: one round trip per shard, not one per chunk (at 10^4 samples a 10% cohort's
frequencies over 1 Mb made 59 requests in 330 ms on loopback S3 one by one, 9 in 113 ms so).
"""

from __future__ import annotations

import bisect
import itertools
import mmap
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, partial
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import google_crc32c
import numcodecs.blosc
import numcodecs.zstd
import numpy as np

from genoquery.cores import usable_cores
from genoquery.errors import StoreError
from genoquery.storage.local_arrays import LocalArray

if TYPE_CHECKING:  # zarr is imported only to read through it (object storage, other layouts)
    import zarr
    from zarr.abc.store import Store as ZarrStore

ABSENT = 2**64 - 1  # offset and length of an inner chunk that was never written (all fill value)
READ_THREADS = usable_cores()
# One pool for every read (its threads start at first use): a pool per read cost ~0.7 ms, and
# tens of ms on a loaded machine, for each block of sites. Jobs never wait on other jobs.
_POOL = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="genoquery-read")
RUNS_PER_THREAD = 4  # reads are split into this many runs of chunks per read thread (balance)
_SCRATCH = threading.local()  # per read thread: one decoded inner chunk, reused by RowReader.visit

# visit(chunk, to, within): ``chunk[within]`` holds ``array[rows][to]``; called on a read thread
Visitor = Callable[[np.ndarray, tuple[slice, ...], tuple[slice, ...]], None]


@dataclass(frozen=True)
class _Layout:
    """Where an array's inner chunks are: ``directory`` holds ``c/I/J...`` shard files of
    ``shard`` elements per axis, each of ``chunk``-shaped inner chunks (C order, index at the end),
    or, not ``indexed``, files of one chunk each (an array without sharding: ``shard`` is
    ``chunk``). Chunks are compressed with ``codec`` (``blosc`` or ``zstd``). With a ``store``
    (object storage), ``directory`` is the array's key prefix in it."""

    directory: Path | str
    shape: tuple[int, ...]
    chunk: tuple[int, ...]
    shard: tuple[int, ...]
    dtype: np.dtype
    codec: str = "blosc"
    indexed: bool = True
    store: ZarrStore | None = None  # None: local files

    @cached_property
    def per_shard(self) -> tuple[int, ...]:
        """Inner chunks per shard along each axis (asked for every chunk read: computed once)."""
        return tuple(s // c for s, c in zip(self.shard, self.chunk, strict=True))

    def decompress(self, packed: bytes, out: np.ndarray) -> None:
        """One chunk's bytes ``packed`` decompressed into ``out`` (C-contiguous, the chunk's shape)."""
        (numcodecs.blosc.decompress if self.codec == "blosc" else numcodecs.zstd.decompress)(packed, out)


def _layout(array: LocalArray | zarr.Array) -> _Layout | None:
    """The layout of ``array`` if this module can read it (see the module docstring), else None."""
    if isinstance(array, LocalArray):
        return _layout_of(array.metadata, array.path)
    storage = import_module("zarr.storage")  # loaded: ``array`` is one of zarr's
    if isinstance(array.store, storage.LocalStore):
        return _layout_of(array.metadata.to_dict(), Path(array.store.root) / array.path)
    if isinstance(array.store, storage.FsspecStore):
        return _layout_of(array.metadata.to_dict(), array.path, array.store)
    return None


def _layout_of(meta: dict, directory: Path | str, store: ZarrStore | None = None) -> _Layout | None:
    """The layout of the array of Zarr v3 metadata ``meta`` (its ``zarr.json``) at ``directory``
    (of ``store``): sharded with the index at the end, or (local files only) unsharded, its chunks
    ``bytes`` (little-endian) then Blosc or Zstd, keys ``c/I/J``; else None."""
    key = meta["chunk_key_encoding"]
    dtype = _numeric_dtype(meta["data_type"])
    if dtype is None or key["name"] != "default" or key.get("configuration", {}).get("separator") != "/":
        return None
    chunk, codecs, indexed = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]), meta.get("codecs", []), False
    if len(codecs) == 1 and codecs[0]["name"] == "sharding_indexed":
        config = codecs[0]["configuration"]
        if [c["name"] for c in config["index_codecs"]] != ["bytes", "crc32c"] or config["index_location"] != "end":
            return None
        inner, codecs, indexed = tuple(config["chunk_shape"]), config["codecs"], True
    elif store is None:
        inner = chunk
    else:
        return None
    names = [c["name"] for c in codecs]
    endian = (codecs[0].get("configuration") or {}).get("endian", "little") if codecs else None
    if len(names) != 2 or names[0] != "bytes" or names[1] not in ("blosc", "zstd") or endian not in ("little", None):
        return None
    return _Layout(directory, tuple(meta["shape"]), inner, chunk, dtype, names[1], indexed, store)


def _numeric_dtype(data_type) -> np.dtype | None:
    """The NumPy dtype of a Zarr v3 ``data_type`` of fixed-size numbers or booleans, else None."""
    try:
        dtype = np.dtype(data_type)
    except TypeError:
        return None
    return dtype if dtype.kind in "biuf" and dtype.byteorder != ">" else None


class RowReader:
    """Reads ``array[rows]``: a range of rows (axis 0), every element of the other axes."""

    def __init__(self, array: LocalArray | zarr.Array) -> None:
        self.array = array
        self.layout = _layout(array)
        self._indexes: dict[tuple[int, ...], object] = {}  # shard indexes (object storage), mappings (local)

    def empty(self, rows: slice) -> np.ndarray:
        return np.empty((rows.stop - rows.start, *tuple(self.array.shape[1:])), dtype=self.array.dtype)

    def jobs(self, rows: slice, out: np.ndarray, kept: dict | None = None) -> Iterator[Callable[[], None]]:
        """Jobs that fill ``out`` with ``array[rows]``, to run on any thread; shard files are
        opened (and their indexes read) here. ``kept`` carries decoded
        chunks from one read of this array to the next, of consecutive row ranges: the last
        chunk row, when only partly read, is kept (under the array's directory) for the next
        read instead of being decoded twice."""
        if self.layout is None:

            def read_with_zarr() -> None:
                out[...] = self.array[rows]

            yield read_with_zarr
            return
        lay = self.layout
        last = (rows.stop - 1) // lay.chunk[0]
        before, after = (
            (kept.pop(lay.directory, {}), kept.setdefault(lay.directory, {})) if kept is not None else ({}, None)
        )
        for position, to, within, chunk_at in self._chunks(rows, skip=before):
            keep = after if position[0] == last and within[0].stop < lay.chunk[0] else None
            if position in before:
                yield self._copy_job(before[position], to, within, out, keep, position)
            elif chunk_at is None:
                yield self._fill_job(to, out)
            else:
                yield self._decode_job(*chunk_at, to, within, out, keep, position)

    def _n_chunks(self, rows: slice, columns: slice | None = None) -> int:
        """How many inner chunks :meth:`_chunks` yields for ``rows`` (and ``columns``)."""
        lay = self.layout
        n = (rows.stop - 1) // lay.chunk[0] - rows.start // lay.chunk[0] + 1
        for axis, (size, chunk) in enumerate(zip(lay.shape[1:], lay.chunk[1:], strict=True)):
            if axis == 0 and columns is not None:
                n *= (columns.stop - 1) // chunk - columns.start // chunk + 1
            else:
                n *= -(-size // chunk)
        return n

    def _chunks(self, rows: slice, skip: dict | None = None, columns: slice | None = None) -> Iterator[tuple]:
        """``(position, to, within, (read, offset, nbytes) or None if never written)`` of each inner
        chunk of ``array[rows]`` (see :meth:`_placement`), or only of those holding ``columns``
        (of axis 1); shards are opened (on object storage the chunks' ranges
        announced to their shard), but not for positions in ``skip`` (for those the last item is
        None too)."""
        lay = self.layout
        first, last = rows.start // lay.chunk[0], (rows.stop - 1) // lay.chunk[0]
        trailing = [range(-(-n // c)) for n, c in zip(lay.shape[1:], lay.chunk[1:], strict=True)]
        if columns is not None:
            trailing[0] = range(columns.start // lay.chunk[1], (columns.stop - 1) // lay.chunk[1] + 1)
        shards: dict[tuple[int, ...], tuple[Callable, np.ndarray] | None] = {}
        for position in itertools.product(range(first, last + 1), *trailing):
            to, within = self._placement(position, rows)
            if skip and position in skip:
                yield position, to, within, None
                continue
            shard = tuple(p // k for p, k in zip(position, lay.per_shard, strict=True))
            if shard not in shards:
                shards[shard] = _open_shard(lay, shard, self._indexes)
            if shards[shard] is None:
                yield position, to, within, None
                continue
            read, index = shards[shard]
            flat = 0  # the chunk's number within its shard (C order)
            for p, k in zip(position, lay.per_shard, strict=True):
                flat = flat * k + p % k
            offset, nbytes = index[flat].tolist()
            if offset == ABSENT and nbytes == ABSENT:
                yield position, to, within, None
                continue
            if lay.store is not None:
                read.want(offset, nbytes)
            yield position, to, within, (read, offset, nbytes)

    def read_columns(self, columns: slice) -> np.ndarray:
        """``array[:, columns]`` of a 2-D array: only the inner chunks holding ``columns`` are decoded."""
        rows = slice(0, self.array.shape[0])
        out = np.empty((rows.stop, columns.stop - columns.start), self.array.dtype)

        def place(chunk: np.ndarray, to: tuple[slice, ...], within: tuple[slice, ...]) -> None:
            lo, hi = max(to[1].start, columns.start), min(to[1].stop, columns.stop)
            out[to[0], lo - columns.start : hi - columns.start] = chunk[within[0], lo - to[1].start : hi - to[1].start]

        self.visit(rows, place, columns=columns)
        return out

    def visit(self, rows: slice, visitor: Visitor, columns: slice | None = None) -> None:
        """Call ``visitor`` on every inner chunk of ``array[rows]`` (or only on those holding
        ``columns`` of axis 1) as it is decoded, on the read threads, without assembling the rows:
        each thread decodes into one scratch chunk of its own (L2-sized for the dense codes), so a
        reduction over many rows never writes them to memory. Calls for different chunks run
        concurrently; ``to`` places each within ``array[rows]``. An array this module cannot read
        (see the module docstring) is read whole through zarr and visited once."""
        if rows.stop <= rows.start:
            return
        if self.layout is None:
            whole = self.array[rows]
            everything = tuple(slice(0, n) for n in whole.shape)
            visitor(whole, everything, everything)
            return
        jobs = (
            self._visit_job(chunk_at, to, within, visitor)
            for _, to, within, chunk_at in self._chunks(rows, columns=columns)
        )
        _run_as_made(jobs, self._n_chunks(rows, columns), self.layout.store is None)

    def visit_with(self, other: RowReader, rows: slice, visitor: Callable[..., None]) -> None:
        """:meth:`visit` of this array and ``other`` (arrays of as many rows) together: ``visitor(mine,
        theirs, to)`` is called on the read threads with both arrays' rows ``to`` (of
        ``array[rows]``), decoded into scratch chunks of the thread's own, a chunk row at a time
        when both arrays are sharded with the same rows per inner chunk and span their other
        axes in one chunk; else on rows read whole (through :func:`read_rows_together`)."""
        if rows.stop <= rows.start:
            return
        mine, theirs = self.layout, other.layout
        if (
            mine is None
            or theirs is None
            or mine.chunk[0] != theirs.chunk[0]
            or mine.chunk[1:] != mine.shape[1:]
            or theirs.chunk[1:] != theirs.shape[1:]
        ):
            a, b = read_rows_together([(self, rows), (other, rows)])
            visitor(a, b, slice(0, rows.stop - rows.start))
            return
        pairs = zip(self._chunks(rows), other._chunks(rows), strict=True)
        jobs = (
            self._pair_job(at, their_at, to, within, other, visitor) for (_, to, within, at), (*_, their_at) in pairs
        )
        _run_as_made(jobs, self._n_chunks(rows), mine.store is None and theirs.store is None)

    def _pair_job(self, at, their_at, to, within, other: RowReader, visitor: Callable[..., None]) -> Callable[[], None]:
        def decode_and_visit() -> None:
            chunks = getattr(_SCRATCH, "pair", None)
            if chunks is None or (chunks[0].shape, chunks[1].shape) != (self.layout.chunk, other.layout.chunk):
                chunks = _SCRATCH.pair = (
                    np.empty(self.layout.chunk, self.layout.dtype),
                    np.empty(other.layout.chunk, other.layout.dtype),
                )
            self._decode_into(at, chunks[0])
            other._decode_into(their_at, chunks[1])
            visitor(chunks[0][within[0]], chunks[1][within[0]], to[0])

        return decode_and_visit

    def _visit_job(self, chunk_at: tuple | None, to: tuple, within: tuple, visitor: Visitor) -> Callable[[], None]:
        lay = self.layout

        def decode_and_visit() -> None:
            scratch = getattr(_SCRATCH, "chunk", None)
            if scratch is None or scratch.shape != lay.chunk or scratch.dtype != lay.dtype:
                scratch = _SCRATCH.chunk = np.empty(lay.chunk, dtype=lay.dtype)
            self._decode_into(chunk_at, scratch)
            visitor(scratch, to, within)

        return decode_and_visit

    def _decode_into(self, chunk_at: tuple | None, chunk: np.ndarray) -> None:
        """The inner chunk ``chunk_at`` (``(read, offset, nbytes)`` of :meth:`_chunks`; None:
        never written, the fill value) decoded into ``chunk``, of the layout's chunk shape."""
        if chunk_at is None:
            chunk[...] = self.array.fill_value
        else:
            read, offset, nbytes = chunk_at
            self.layout.decompress(_read_exact(read, nbytes, offset, self.layout), chunk)

    def _placement(self, position: tuple[int, ...], rows: slice) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Where inner chunk ``position`` goes: (its part in ``out``, that part within the chunk)."""
        lay = self.layout
        start = [p * c for p, c in zip(position, lay.chunk, strict=True)]
        lo, hi = max(start[0], rows.start), min(start[0] + lay.chunk[0], rows.stop)
        to = [slice(lo - rows.start, hi - rows.start)]
        within = [slice(lo - start[0], hi - start[0])]
        for s, c, n in zip(start[1:], lay.chunk[1:], lay.shape[1:], strict=True):
            to.append(slice(s, min(s + c, n)))
            within.append(slice(0, min(s + c, n) - s))
        return tuple(to), tuple(within)

    def _decode_job(
        self,
        read: Callable[[int, int], bytes],
        offset: int,
        nbytes: int,
        to: tuple[slice, ...],
        within: tuple[slice, ...],
        out: np.ndarray,
        keep: dict | None,
        position: tuple,
    ) -> Callable[[], None]:
        lay = self.layout
        whole = to[0].stop - to[0].start == lay.chunk[0] and lay.chunk[1:] == lay.shape[1:]

        def decode() -> None:
            packed = _read_exact(read, nbytes, offset, lay)
            if whole:  # straight into the result: C order, and the chunk spans the other axes
                lay.decompress(packed, out[to[0]])
                return
            scratch = np.empty(lay.chunk, dtype=lay.dtype)
            lay.decompress(packed, scratch)
            out[to] = scratch[within]
            if keep is not None:
                keep[position] = scratch

        return decode

    @staticmethod
    def _copy_job(
        chunk: np.ndarray,
        to: tuple[slice, ...],
        within: tuple[slice, ...],
        out: np.ndarray,
        keep: dict | None,
        position: tuple,
    ) -> Callable[[], None]:
        def copy() -> None:
            out[to] = chunk[within]
            if keep is not None:
                keep[position] = chunk

        return copy

    def _fill_job(self, to: tuple[slice, ...], out: np.ndarray) -> Callable[[], None]:
        def fill() -> None:
            out[to] = self.array.fill_value

        return fill


def _read_exact(read: Callable[[int, int], bytes], nbytes: int, offset: int, lay: _Layout) -> bytes:
    """``nbytes`` of an inner chunk at ``offset`` of a shard, through its reader."""
    packed = read(nbytes, offset)
    if len(packed) != nbytes:
        raise StoreError(
            f"{lay.directory}: a shard file is shorter than its index says; run `genoquery verify` on the store"
        )
    return packed


def _open_shard(
    lay: _Layout, shard: tuple[int, ...], indexes: dict
) -> tuple[Callable[[int, int], bytes], np.ndarray] | None:
    """A shard's byte reader (``read(nbytes, offset)``) and its index ((inner chunks, 2) uint64
    offset, length), or None if the shard was never written (every chunk is the fill value).
    ``indexes`` keeps the raw indexes of shards on object storage, and the mappings and checked
    indexes of local shards (mapped again if the file was replaced since: a shard is never
    rewritten in place, but a replaced file is read anew)."""
    n_chunks = int(np.prod(lay.per_shard))
    if lay.store is not None:
        key = "/".join([lay.directory, "c", *map(str, shard)])
        if shard not in indexes:
            indexes[shard] = _tail(lay.store, key, 16 * n_chunks + 4)
        path, tail = key, indexes[shard]
        if tail is None:
            return None
        read, size = _StoreShard(lay.store, key), len(tail)
    else:
        path = lay.directory.joinpath("c", *map(str, shard))
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return None
        mapped = indexes.get(shard)
        if mapped is not None and mapped[0] == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
            return mapped[1:]
        view, size = _mapped(path), stat.st_size
        read = partial(_slice_of, view)
        if not lay.indexed:  # the file is the one chunk
            index = np.array([[0, size]], dtype=np.uint64)
            indexes[shard] = ((stat.st_ino, stat.st_size, stat.st_mtime_ns), read, index)
            return read, index
        tail = bytes(view[max(size - 16 * n_chunks - 4, 0) :])
    if size < 16 * n_chunks + 4 or google_crc32c.value(tail[:-4]) != int.from_bytes(tail[-4:], "little"):
        raise StoreError(f"{path}: the shard index fails its CRC32C check; run `genoquery verify` on the store")
    index = np.frombuffer(tail[:-4], dtype="<u8").reshape(n_chunks, 2)
    if lay.store is None:
        indexes[shard] = ((stat.st_ino, stat.st_size, stat.st_mtime_ns), read, index)
    return read, index


def _mapped(path: Path) -> memoryview:
    """A local shard file mapped read-only (empty for an empty file). The mapping is kept by the
    reader (:meth:`RowReader._chunks`), so its pages stay mapped from one read to the next: inner
    chunks are decompressed straight from the page cache. ``os.pread`` copied each chunk first:
    at 10^6 samples the 248 MB of a 1 Mb region's dense codes took 108 ms of CPU to read and
    decompress so, 83 ms from a kept mapping, 95 ms from a mapping made per read (page faults)."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return memoryview(b"")
        return memoryview(mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ))


def _slice_of(view: memoryview, nbytes: int, offset: int) -> memoryview:
    """``nbytes`` of ``view`` from ``offset`` (fewer past its end), without a copy."""
    return view[offset : offset + nbytes]


def _tail(store: ZarrStore, key: str, nbytes: int) -> bytes | None:
    """The last ``nbytes`` of ``key`` in ``store`` (None: no such key)."""
    request = import_module("zarr.abc.store").SuffixByteRequest(nbytes)
    buffer = import_module("zarr.core.sync").sync(store.get(key, _prototype(), request))
    return None if buffer is None else buffer.to_bytes()


def _prototype():
    """zarr's default buffer prototype (zarr is loaded: only stores of zarr ask for it)."""
    return import_module("zarr.core.buffer").default_buffer_prototype()


class _StoreShard:
    """``read(nbytes, offset)`` of a shard in a zarr store: the ranges its jobs will read are
    announced with :meth:`want`, and fetched together, concurrently, when the first is read."""

    def __init__(self, store: ZarrStore, key: str) -> None:
        self.store, self.key = store, key
        self._wanted: list[tuple[int, int]] = []
        self._fetched: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()

    def want(self, offset: int, nbytes: int) -> None:
        self._wanted.append((offset, nbytes))

    def __call__(self, nbytes: int, offset: int) -> bytes:
        sync = import_module("zarr.core.sync").sync  # loaded: ``store`` is one of zarr's
        with self._lock:
            if (offset, nbytes) not in self._fetched:
                ranges, self._wanted = self._wanted or [(offset, nbytes)], []
                self._fetched.update(zip(ranges, sync(self._fetch(ranges)), strict=True))
            return self._fetched.pop((offset, nbytes))

    async def _fetch(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The bytes of ``ranges`` ((offset, nbytes)): touching ranges merged into one request."""
        spans: list[list[int]] = []  # [start, end] of each request
        for offset, nbytes in sorted(ranges):
            if spans and offset <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], offset + nbytes)
            else:
                spans.append([offset, offset + nbytes])
        request = import_module("zarr.abc.store").RangeByteRequest
        fetched = (self.store.get(self.key, _prototype(), request(a, b)) for a, b in spans)
        buffers = await import_module("asyncio").gather(*fetched)
        got = [b"" if b is None else b.to_bytes() for b in buffers]
        starts = [a for a, _ in spans]
        out = []
        for offset, nbytes in ranges:
            i = bisect.bisect_right(starts, offset) - 1
            at = offset - starts[i]
            out.append(got[i][at : at + nbytes])
        return out


def read_rows_together(wanted: list[tuple[RowReader, slice]], kept: dict | None = None) -> list[np.ndarray]:
    """``reader.array[rows]`` for each pair, decoded on :data:`READ_THREADS` threads. Reads of
    consecutive row ranges that pass the same ``kept`` (initially empty) decode the chunks they
    share once (see :meth:`RowReader.jobs`)."""
    outs = [reader.empty(rows) for reader, rows in wanted]
    _run(
        [
            job
            for (reader, rows), out in zip(wanted, outs, strict=True)
            if rows.stop > rows.start
            for job in reader.jobs(rows, out, kept)
        ]
    )
    return outs


def _run(jobs: list[Callable[[], None]]) -> None:
    """Run ``jobs`` (one per inner chunk) on the read threads, in runs of consecutive jobs, about
    :data:`RUNS_PER_THREAD` runs per thread, not a task per chunk. A single job runs on the
    caller's thread. (With a task per chunk, and the layout's chunks per shard recomputed for each,
    a 10% cohort's AF over 1 Mb at 10^5 samples, ~340 chunks, took 75-82 ms of CPU against 60-64.)"""
    if len(jobs) <= 1:
        for job in jobs:
            job()
        return
    size = _run_size(len(jobs))
    list(_POOL.map(_run_in_order, [jobs[i : i + size] for i in range(0, len(jobs), size)]))


def _run_size(n: int) -> int:
    """Jobs per run when ``n`` jobs are split into about :data:`RUNS_PER_THREAD` runs per read thread."""
    return -(-n // (READ_THREADS * RUNS_PER_THREAD))


def _run_as_made(jobs: Iterator[Callable[[], None]], n: int, stream: bool) -> None:
    """:func:`_run` of the ``n`` jobs ``jobs`` makes, each run of them handed to the read threads
    as soon as it is made (with ``stream``), so that they decode while the caller places the next
    chunks (~12 us of Python a chunk: 4 ms before the first decoding, for the 315 code chunks of
    1 Mb at 10^5 samples). Not on object storage, whose chunks are all announced to their shard
    before the first is fetched (see :class:`_StoreShard`)."""
    if not stream or n <= 1:
        _run(list(jobs))
        return
    size = _run_size(n)
    submitted, run = [], []
    try:
        for job in jobs:
            run.append(job)
            if len(run) == size:
                submitted.append(_POOL.submit(_run_in_order, run))
                run = []
    except BaseException:
        for future in submitted:
            future.exception()  # no job outlives the call
        raise
    if run:
        submitted.append(_POOL.submit(_run_in_order, run))
    for future in submitted:
        future.result()


def _run_in_order(jobs: list[Callable[[], None]]) -> None:
    for job in jobs:
        job()
