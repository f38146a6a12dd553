"""Chunk rows written without zarr's write path are zarr's files, byte for byte."""

from __future__ import annotations

import numcodecs
import numpy as np
import pytest
import zarr

import checks
from genoquery.ingest.chunk_rows import write_chunk_row


def _array(group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str) -> zarr.Array:
    compressor = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, compressors=compressor, fill_value=None)


@pytest.mark.parametrize("dtype", ["int8", "bool"])
def test_chunk_rows_are_the_files_zarr_writes(tmp_path, dtype) -> None:
    """Whole rows, an all-zero chunk (not stored), chunks of one other value, the samples' short
    last chunk, the array's short last row, and a row begun here and finished by zarr."""
    rng = np.random.default_rng(7)
    values = (rng.random((14, 7, 2)) < 0.2).astype(dtype)
    values[0:4, 3:6] = 0
    values[4:8, 0:6] = 1  # two chunks of one value, compressed once
    trees = {}
    for how in ("zarr", "direct"):
        group = zarr.open_group(str(tmp_path / how), mode="w", zarr_format=2)
        array = _array(group, "calls", (0, 7, 2), (4, 3, 2), dtype)
        for first, n in ((0, 4), (4, 4), (8, 2), (10, 2), (12, 2)):
            array.resize((first + n, 7, 2))
            if how == "direct" and first % 4 == 0:
                write_chunk_row(array, first, values[first : first + n])
            else:
                array[first : first + n] = values[first : first + n]
        np.testing.assert_array_equal(array[:], values)
        trees[how] = checks.tree_digest(tmp_path / how)
    assert trees["direct"] == trees["zarr"]
    assert "calls/0.1.0" not in trees["direct"]


def test_rows_that_do_not_start_a_chunk_row_are_refused(tmp_path) -> None:
    group = zarr.open_group(str(tmp_path / "g"), mode="w", zarr_format=2)
    array = _array(group, "calls", (8, 7, 2), (4, 3, 2), "int8")
    with pytest.raises(ValueError, match="one chunk row"):
        write_chunk_row(array, 2, np.zeros((2, 7, 2), np.int8))
