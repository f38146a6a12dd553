"""NumPy arrays and Python strings to Arrow arrays and back, without pandas.

pyarrow imports pandas (0.2-0.25 s, most of a query command's cold start) the first time
``pa.array``, ``pa.scalar`` or ``pa.table`` of a NumPy array, or ``fill_null`` of a Python value,
converts anything, to test whether it is a pandas object; and ``to_numpy`` (so ``np.asarray``)
imports it for its null markers. The query paths build and read their arrays here instead, from
and to Arrow's buffers. Likewise :func:`take_strings` and :func:`take_rows` gather a few strings or
rows without importing ``pyarrow.compute`` (35 ms at a process's start, which ``take`` and
``filter`` import).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module

import numpy as np
import pyarrow as pa


def from_numpy(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``values`` (1-D, numeric or bool) as an Arrow array of their type; null where ``mask``
    is true. Shares ``values``' memory when they are contiguous and not bool."""
    values = np.ascontiguousarray(values)
    data = np.packbits(values, bitorder="little") if values.dtype == np.bool_ else values
    validity = None if mask is None else pa.py_buffer(np.packbits(~np.asarray(mask), bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [validity, pa.py_buffer(data)])


def strings(values: Sequence[str], mask: np.ndarray | None = None) -> pa.Array:
    """``values`` as an Arrow string array; null where ``mask`` is true."""
    text = "".join(values)
    data = text.encode()
    if len(data) == len(text):  # ASCII: a character is a byte
        lengths = np.fromiter(map(len, values), np.int64, len(values))
    else:
        encoded = [v.encode() for v in values]
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity = None if mask is None else pa.py_buffer(np.packbits(~np.asarray(mask), bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


FEW_TO_TAKE = 1 << 16
"""Strings gathered in NumPy up to this many (~10 ms at most), else by ``pyarrow.compute.take``
(1-10 ms at 750,000, where NumPy took 43-156 ms): below it, importing pyarrow.compute costs more."""


def take_strings(array: pa.StringArray, indices: np.ndarray) -> pa.StringArray:
    """``array[indices]`` (int indices): gathered from its buffers in NumPy when few
    (:data:`FEW_TO_TAKE`), of type string, and ``pyarrow.compute`` is not imported yet."""
    if len(indices) > FEW_TO_TAKE or array.type != pa.string() or "pyarrow.compute" in sys.modules:
        return import_module("pyarrow.compute").take(array, from_numpy(indices))
    offsets = np.frombuffer(array.buffers()[1], np.int32, count=len(array) + array.offset + 1)[array.offset :]
    data = array.buffers()[2]
    starts, lengths = offsets[indices], offsets[indices + 1] - offsets[indices]
    taken = np.zeros(len(indices) + 1, np.int32)
    np.cumsum(lengths, out=taken[1:])
    at = np.repeat(starts - taken[:-1], lengths) + np.arange(taken[-1], dtype=np.int32)
    text = np.frombuffer(data, np.uint8)[at] if data is not None else np.zeros(0, np.uint8)
    validity = _taken_validity(array, indices)
    return pa.Array.from_buffers(pa.string(), len(indices), [validity, pa.py_buffer(taken), pa.py_buffer(text)])


def _taken_validity(array: pa.Array, indices: np.ndarray) -> pa.Buffer | None:
    """The validity bitmap of ``array[indices]`` (None: no nulls)."""
    if not array.null_count:
        return None
    valid = _bits(array.buffers()[0], array.offset, array.offset + len(array))[indices]
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


FEW_RUNS = 64
"""Rows taken as slices up to this many runs of consecutive rows (~10 us each), else gathered."""


def take_rows(table: pa.Table, indices: np.ndarray) -> pa.Table:
    """``table``'s rows ``indices`` (int), in their order, without importing ``pyarrow.compute``
    when it is not imported yet: the runs of consecutive rows as zero-copy slices when at most
    :data:`FEW_RUNS`, else, up to :data:`FEW_TO_TAKE` rows of string and number columns, each
    column gathered in NumPy; else by ``Table.take``."""
    if "pyarrow.compute" in sys.modules:
        return table.take(from_numpy(indices))
    if not len(indices):
        return table.slice(0, 0)
    starts = np.flatnonzero(np.diff(indices, prepend=-2) != 1)
    if len(starts) <= FEW_RUNS:
        ends = np.append(starts[1:], len(indices))
        return pa.concat_tables(
            [table.slice(indices[a], b - a) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        )
    if len(indices) > FEW_TO_TAKE or not all(map(_gathered_in_numpy, table.schema.types)):
        return table.take(from_numpy(indices))
    columns = [_take_numbers_or_strings(column.combine_chunks(), indices) for column in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _gathered_in_numpy(kind: pa.DataType) -> bool:
    return kind == pa.string() or pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _take_numbers_or_strings(array: pa.Array, indices: np.ndarray) -> pa.Array:
    """``array[indices]`` of a string or number array, gathered in NumPy."""
    if array.type == pa.string():
        return take_strings(array, indices)
    values = _chunk(array, np.dtype(array.type.to_pandas_dtype()), 0)[indices]
    return pa.Array.from_buffers(array.type, len(indices), [_taken_validity(array, indices), pa.py_buffer(values)])


def from_rows(rows: Sequence[tuple], schema: pa.Schema) -> pa.Table:
    """Rows of Python values (None: null) as a table of ``schema``, whose columns are strings or
    of a NumPy type (numbers, bool)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = []
    for values, field in zip(columns, schema, strict=True):
        text = pa.types.is_string(field.type)
        mask = None
        if None in values:
            mask = np.array([v is None for v in values])
            values = [("" if text else 0) if v is None else v for v in values]
        if text:
            arrays.append(strings(values, mask))
        else:
            arrays.append(from_numpy(np.array(values, field.type.to_pandas_dtype()), mask))
    return pa.table(arrays, schema=schema)


def to_numpy(column: pa.Array | pa.ChunkedArray, null: int | float | None = None) -> np.ndarray:
    """A numeric or bool column as a new NumPy array, its nulls replaced by ``null``; a column
    with nulls and no ``null`` raises ValueError."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    dtype = np.dtype(column.type.to_pandas_dtype())  # a NumPy type, pandas not imported
    return np.concatenate([np.zeros(0, dtype), *(_chunk(chunk, dtype, null) for chunk in chunks)])


def _chunk(chunk: pa.Array, dtype: np.dtype, null: int | float | None) -> np.ndarray:
    validity, data = chunk.buffers()[:2]
    start, stop = chunk.offset, chunk.offset + len(chunk)
    if start == stop:  # its buffers may be absent
        return np.zeros(0, dtype)
    values = _bits(data, start, stop) if dtype == np.bool_ else np.frombuffer(data, dtype, count=stop)[start:]
    if not chunk.null_count:
        return values
    if null is None:
        raise ValueError(f"a column of {chunk.null_count} nulls and no value to replace them")
    return np.where(_bits(validity, start, stop), values, np.array(null, dtype=dtype))


def _bits(buffer: pa.Buffer, start: int, stop: int) -> np.ndarray:
    """Bits ``start .. stop - 1`` of an Arrow bitmap, as bool."""
    return np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), count=stop, bitorder="little")[start:].view(np.bool_)
