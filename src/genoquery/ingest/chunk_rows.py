"""Writing whole chunk rows of a local Zarr format 2 array, chunk files as zarr writes them.

zarr-python's own write of one 64-site chunk row of ``call_genotype`` at 10^6 samples (100
chunks of 1.28 MB) took twice the CPU of compressing its chunks (0.98-1.28 s against 0.50-0.58 s
with ``call_genotype_phased``'s, at load ~12): asyncio tasks, buffer wrappers and a comparison
array per chunk. Here each chunk is cut, compressed by the array's own compressor and stored
under zarr's key, by zarr's rules: C order, a chunk past the array's edge padded with the fill
value (0 for an array without one), and a chunk that is all fill not stored unless the array's
``write_empty_chunks`` says so. ``tests/test_chunk_rows.py`` compares the files with zarr's. A
row's chunks of one value (``call_genotype_phased`` of phased calls: 100 a row at 10^6 samples)
are compressed once.
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import zarr

# Blosc releases the GIL: a chunk row's chunks are compressed two at a time, beside the ingest's
# other threads (zarr used its own pool of threads for them).
_COMPRESSING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="genoquery-chunk-row")


def write_chunk_row(array: zarr.Array, first: int, values: np.ndarray) -> None:
    """Store ``values`` as rows ``first`` to ``first + len(values)`` of ``array`` (of every sample),
    ``first`` the start of a chunk row whose chunks are not stored yet, ``values`` at most its
    length. Rows of the chunk row past them are fill, as zarr leaves them; a later zarr write of
    them reads these chunks back as it reads its own."""
    chunks = array.chunks
    if first % chunks[0] or len(values) > chunks[0]:
        raise ValueError(f"rows {first}-{first + len(values)} are not in one chunk row of {chunks[0]} from its start")
    if values.shape[1:] != array.shape[1:] or array.metadata.fill_value not in (None, 0, False):
        raise ValueError("a chunk row is written across the whole array, whose fill value is 0")
    (compressor,) = array.compressors
    directory = Path(array.store_path.store.root) / array.store_path.path
    separator = array.metadata.dimension_separator
    keep_empty = array.async_array.config.write_empty_chunks
    row = first // chunks[0]
    constant: dict[bytes, bytes] = {}  # a chunk of one value, compressed once a row (Blosc is deterministic)

    def compressed(part: np.ndarray) -> bytes:
        if part.min() != part.max():
            return compressor.encode(part)
        value = part.reshape(-1)[:1].tobytes()
        if value not in constant:
            constant[value] = compressor.encode(part)
        return constant[value]

    def store(index: tuple[int, ...]) -> None:
        cut = (slice(None), *(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks[1:], strict=True)))
        part = values[cut]
        if part.shape != chunks:
            padded = np.zeros(chunks, values.dtype)
            padded[tuple(slice(0, n) for n in part.shape)] = part
            part = padded
        path = directory / separator.join(map(str, (row, *index)))
        if keep_empty or part.any():
            path.write_bytes(compressed(np.ascontiguousarray(part)))

    grid = itertools.product(*(range(math.ceil(n / c)) for n, c in zip(values.shape[1:], chunks[1:], strict=True)))
    for _ in _COMPRESSING.map(store, grid):
        pass
