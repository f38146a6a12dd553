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
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numcodecs.blosc
import numpy as np
import zarr
from zarr.storage import LocalStore

from genoquery.errors import StoreError

ABSENT = 2**64 - 1  # offset and length of an inner chunk that was never written (all fill value)
READ_THREADS = os.cpu_count() or 1
# One pool for every read (its threads start at first use): a pool per read cost ~0.7 ms, and
# tens of ms on a loaded machine, for each block of sites. Jobs never wait on other jobs.
_POOL = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="genoquery-read")


@dataclass(frozen=True)
class _Layout:
    """Where an array's inner chunks are: ``directory`` holds ``c/I/J...`` shard files of
    ``shard`` elements per axis, each of ``chunk``-shaped inner chunks (C order, index at the end)."""

    directory: Path
    shape: tuple[int, ...]
    chunk: tuple[int, ...]
    shard: tuple[int, ...]
    dtype: np.dtype

    @property
    def per_shard(self) -> tuple[int, ...]:
        return tuple(s // c for s, c in zip(self.shard, self.chunk, strict=True))


def _layout(array: zarr.Array) -> _Layout | None:
    """The layout of ``array`` if this module can read it (see the module docstring), else None."""
    meta = array.metadata.to_dict()
    codecs = meta.get("codecs", [])
    if not isinstance(array.store, LocalStore) or len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
        return None
    config = codecs[0]["configuration"]
    inner = [c["name"] for c in config["codecs"]]
    index = [c["name"] for c in config["index_codecs"]]
    endian = config["codecs"][0].get("configuration", {}).get("endian", "little")
    key = meta["chunk_key_encoding"]
    if (
        inner != ["bytes", "blosc"]
        or index != ["bytes", "crc32c"]
        or config["index_location"] != "end"
        or endian not in ("little", None)
        or key["name"] != "default"
        or key.get("configuration", {}).get("separator") != "/"
        or np.dtype(array.dtype).byteorder == ">"
    ):
        return None
    return _Layout(
        Path(array.store.root) / array.path,
        tuple(array.shape),
        tuple(config["chunk_shape"]),
        tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]),
        np.dtype(array.dtype),
    )


class RowReader:
    """Reads ``array[rows]``: a range of rows (axis 0), every element of the other axes."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.layout = _layout(array)

    def empty(self, rows: slice) -> np.ndarray:
        return np.empty((rows.stop - rows.start, *tuple(self.array.shape[1:])), dtype=self.array.dtype)

    def jobs(
        self, rows: slice, out: np.ndarray, files: ExitStack, kept: dict | None = None
    ) -> Iterator[Callable[[], None]]:
        """Jobs that fill ``out`` with ``array[rows]``, to run on any thread; shard files are
        opened (and their indexes read) here and closed by ``files``. ``kept`` carries decoded
        chunks from one read of this array to the next, of consecutive row ranges: the last
        chunk row, when only partly read, is kept (under the array's directory) for the next
        read instead of being decoded twice."""
        if self.layout is None:

            def read_with_zarr() -> None:
                out[...] = self.array[rows]

            yield read_with_zarr
            return
        lay = self.layout
        first, last = rows.start // lay.chunk[0], (rows.stop - 1) // lay.chunk[0]
        trailing = [range(-(-n // c)) for n, c in zip(lay.shape[1:], lay.chunk[1:], strict=True)]
        shards: dict[tuple[int, ...], tuple[int, np.ndarray] | None] = {}
        before, after = (
            (kept.pop(lay.directory, {}), kept.setdefault(lay.directory, {})) if kept is not None else ({}, None)
        )
        for position in itertools.product(range(first, last + 1), *trailing):
            to, within = self._placement(position, rows)
            keep = after if position[0] == last and within[0].stop < lay.chunk[0] else None
            if position in before:
                yield self._copy_job(before[position], to, within, out, keep, position)
                continue
            shard = tuple(p // k for p, k in zip(position, lay.per_shard, strict=True))
            if shard not in shards:
                shards[shard] = _open_shard(lay, shard, files)
            local = tuple(p % k for p, k in zip(position, lay.per_shard, strict=True))
            offset, nbytes = (
                (ABSENT, ABSENT)
                if shards[shard] is None
                else (int(v) for v in shards[shard][1][np.ravel_multi_index(local, lay.per_shard)])
            )
            if offset == ABSENT and nbytes == ABSENT:
                yield self._fill_job(to, out)
                continue
            yield self._decode_job(shards[shard][0], offset, nbytes, to, within, out, keep, position)

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
        fd: int,
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
            packed = os.pread(fd, nbytes, offset)
            if len(packed) != nbytes:
                raise StoreError(
                    f"{lay.directory}: a shard file is shorter than its index says; run `genoquery verify` on the store"
                )
            if whole:  # straight into the result: C order, and the chunk spans the other axes
                numcodecs.blosc.decompress(packed, out[to[0]])
                return
            scratch = np.empty(lay.chunk, dtype=lay.dtype)
            numcodecs.blosc.decompress(packed, scratch)
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


def _open_shard(lay: _Layout, shard: tuple[int, ...], files: ExitStack) -> tuple[int, np.ndarray] | None:
    """An open shard file and its index ((inner chunks, 2) uint64 offset, length), or None if
    the shard was never written (every chunk is the fill value)."""
    path = lay.directory.joinpath("c", *map(str, shard))
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    files.callback(os.close, fd)
    n_chunks = int(np.prod(lay.per_shard))
    size = os.fstat(fd).st_size
    tail = os.pread(fd, 16 * n_chunks + 4, size - 16 * n_chunks - 4)
    if size < 16 * n_chunks + 4 or google_crc32c.value(tail[:-4]) != int.from_bytes(tail[-4:], "little"):
        raise StoreError(f"{path}: the shard index fails its CRC32C check; run `genoquery verify` on the store")
    return fd, np.frombuffer(tail[:-4], dtype="<u8").reshape(n_chunks, 2)


def read_rows_together(wanted: list[tuple[RowReader, slice]], kept: dict | None = None) -> list[np.ndarray]:
    """``reader.array[rows]`` for each pair, decoded on :data:`READ_THREADS` threads. Reads of
    consecutive row ranges that pass the same ``kept`` (initially empty) decode the chunks they
    share once (see :meth:`RowReader.jobs`)."""
    outs = [reader.empty(rows) for reader, rows in wanted]
    with ExitStack() as files:
        jobs = [
            job
            for (reader, rows), out in zip(wanted, outs, strict=True)
            if rows.stop > rows.start
            for job in reader.jobs(rows, out, files, kept)
        ]
        if len(jobs) == 1:
            jobs[0]()
        elif jobs:
            list(_POOL.map(lambda job: job(), jobs))
    return outs
