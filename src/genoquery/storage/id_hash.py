"""64-bit FNV-1a hashes of Arrow string arrays (UTF-8 bytes), computed from their buffers in one
compiled pass: sample IDs for cohorts given as lists (:mod:`genoquery.query.sample_lookup`) and
variant IDs in the lookup files (:mod:`genoquery.storage.lookup_table`)."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from genoquery.storage.lookup_table import FNV_OFFSET, FNV_PRIME

_FNV_OFFSET = np.uint64(FNV_OFFSET)
_FNV_PRIME = np.uint64(FNV_PRIME)


def hashed_bytes(ids: pa.Array | pa.ChunkedArray, width: int | None = None) -> tuple[np.ndarray, ...]:
    """``(bytes (width, n) uint8 zero-padded, lengths (n,) int64, FNV-1a hashes (n,) uint64)`` of
    string IDs (UTF-8), read from the Arrow buffers (no Python object per ID); an ID longer than
    ``width`` is cut (its length tells it apart, its hash covers its first ``width`` bytes).
    ``width`` defaults to the longest ID."""
    data, offsets = _utf8(ids)
    lengths = np.diff(offsets)
    width = int(lengths.max(initial=0)) if width is None else width
    columns = np.zeros((width, len(lengths)), np.uint8)
    hashes = np.empty(len(lengths), np.uint64)
    _hash_ids(data, offsets, columns, hashes, width)
    return columns, lengths, hashes


def id_hashes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The FNV-1a hash (uint64) of each whole ID (as :func:`hashed_bytes`, without its bytes)."""
    data, offsets = _utf8(ids)
    hashes = np.empty(len(offsets) - 1, np.uint64)
    _hash_ids(data, offsets, np.zeros((0, len(hashes)), np.uint8), hashes, np.iinfo(np.int64).max)
    return hashes


def _utf8(ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes (uint8) of string IDs and each one's int64 offset into them (n + 1)."""
    array = (ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids).cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + len(array) + 1]
    text = array.buffers()[2]
    return (np.frombuffer(text, np.uint8) if text is not None else np.zeros(0, np.uint8)), offsets


@numba.njit(nogil=True, cache=True)
def _hash_ids(data, offsets, columns, hashes, limit):  # pragma: no cover - compiled
    """Each ID's FNV-1a hash over its first ``limit`` bytes into ``hashes`` and its first
    ``len(columns)`` bytes into ``columns``, in one pass (byte column by byte column in NumPy:
    5.1 ms for 100,000 IDs of 8 bytes)."""
    for i in range(len(hashes)):
        h = _FNV_OFFSET
        for j in range(min(offsets[i + 1] - offsets[i], limit)):
            b = data[offsets[i] + j]
            if j < columns.shape[0]:
                columns[j, i] = b
            h = (h ^ np.uint64(b)) * _FNV_PRIME
        hashes[i] = h
