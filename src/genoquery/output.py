"""Writing result tables as TSV, CSV, JSON or Parquet, to a file or standard output (``-``).

What leaves here is the public table: the store's internal row numbers (:data:`INTERNAL_COLUMNS`)
are dropped unless asked for, QUAL and other float32 values are written as the VCF had them
(``89.52``, not the float32's ``89.5199966430664``) and, in Parquet, low-cardinality text is
dictionary-encoded and integers take the narrowest type holding their values.

JSON is schema ``genoquery.table/1``: an array with one object per row, keys the column names; a
count is always a JSON number (a missing one ``null``), an AF or other statistic without a value
(AN = 0) ``null``. The writers are imported when used (pyarrow.parquet alone takes 17 ms of a
query's start).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import sys
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow as pa

from genoquery.arrow import from_numpy, to_numpy
from genoquery.errors import OutputError, QueryError

FORMATS = ("tsv", "csv", "json", "parquet")
JSON_SCHEMA = "genoquery.table/1"
SUFFIXES = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
INTERNAL_COLUMNS = ("site_row", "sample_index")
"""Row numbers of the store's index and genotype columns: stable within one store version only."""
DICTIONARY_COLUMNS = ("contig", "filter", "zygosity", "ancestry", "sex_at_birth", "center", "status", "model")
"""Text columns with few distinct values, dictionary-encoded in Parquet."""


def output_format(path: str | None, fmt: str | None) -> str:
    """``fmt`` when given, else the format ``path``'s suffix names, else TSV (standard output)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise QueryError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    if path is None or path == "-":
        return "tsv"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise QueryError(
            f"cannot tell the output format of {path!r} from its name: end it in "
            f"{', '.join(SUFFIXES)}, or give -O {'|'.join(FORMATS)}"
        )
    return SUFFIXES[suffix]


def public(table: pa.Table, internal: bool = False) -> pa.Table:
    """``table`` without :data:`INTERNAL_COLUMNS` (unless ``internal``)."""
    if internal:
        return table
    return table.select([name for name in table.column_names if name not in INTERNAL_COLUMNS])


def write_table(table: pa.Table, fmt: str | None = None, path: str | None = None, *, internal: bool = False) -> None:
    """Write the public columns of ``table`` (see :func:`public`) in ``fmt`` (default: from
    ``path``'s suffix, else TSV) to ``path``, or to standard output when ``path`` is None or ``-``."""
    write_tables(iter([table]), fmt, path, internal=internal, narrow=True)


def write_tables(
    tables: Iterator[pa.Table],
    fmt: str | None = None,
    path: str | None = None,
    *,
    internal: bool = False,
    narrow: bool = False,
) -> None:
    """:func:`write_table` of tables with the same columns, one after another, each written (and
    flushed) as it comes, so that a long computation's rows reach the file while it runs and only
    one table is held at a time: TSV/CSV rows under one header, one JSON array, one Parquet file
    with a row group per table. The first table is taken before anything is written (an error
    computing it leaves no output). Parquet integers keep their types unless ``narrow`` (which
    needs the only table)."""
    fmt = output_format(path, fmt)
    first = public(next(tables), internal)
    rest = (public(t, internal) for t in tables)
    if path is None or path == "-":
        _write_all(first, rest, fmt, None, narrow)
        return
    try:
        _write_all(first, rest, fmt, path, narrow)
    except OSError as err:
        if err.filename not in (None, path):  # another file's (a store's), not the output's
            raise
        Path(path).unlink(missing_ok=True)
        raise OutputError(
            f"{path}: cannot write it ({err.strerror or err}); nothing was written: free space or raise the "
            "file size limit, or give another -o path"
        ) from err


def _write_all(first: pa.Table, rest: Iterator[pa.Table], fmt: str, path: str | None, narrow: bool) -> None:
    """The tables in ``fmt`` to the file ``path``, or to standard output where it is None."""
    to_stdout = path is None
    if fmt == "parquet":
        _write_parquet(first, rest, sys.stdout.buffer if to_stdout else path, narrow)
        if to_stdout:
            sys.stdout.buffer.flush()
        return
    with contextlib.nullcontext(sys.stdout) if to_stdout else open(path, "w") as handle:
        if fmt == "json":
            _write_json(handle, itertools.chain([first], rest))
            return
        for i, table in enumerate(itertools.chain([first], rest)):
            handle.write(_delimited(table, fmt, header=i == 0))
            handle.flush()


def _write_parquet(first: pa.Table, rest: Iterator[pa.Table], where, narrow: bool) -> None:
    compact = _compact(first, narrow)
    with import_module("pyarrow.parquet").ParquetWriter(where, compact.schema) as writer:
        writer.write_table(compact)
        for table in rest:
            writer.write_table(_compact(table, False).cast(compact.schema))


def _write_json(handle: TextIO, tables: Iterator[pa.Table]) -> None:
    """One JSON array of every table's rows (schema :data:`JSON_SCHEMA`), written table by table."""
    handle.write("[")
    separator = ""
    for table in tables:
        for row in _json_rows(table):
            handle.write(separator + json.dumps(row, default=str))
            separator = ", "
        handle.flush()
    handle.write("]\n")


def _delimited(table: pa.Table, fmt: str, header: bool) -> str:
    """``table`` as TSV or CSV text, with or without the header line."""
    pacsv = import_module("pyarrow.csv")
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(
        include_header=header,
        delimiter="\t" if fmt == "tsv" else ",",
        quoting_style="needed" if fmt == "csv" else "none",
    )
    pacsv.write_csv(_lists_as_text(table), buffer, options)
    return buffer.getvalue().decode().replace('"', "") if fmt == "tsv" else buffer.getvalue().decode()


def _json_rows(table: pa.Table) -> list[dict]:
    """Rows as JSON values: NaN is null, a float32 the shortest decimal that reads back as it."""
    short = {f.name for f in table.schema if pa.types.is_float32(f.type)}
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float):
                if math.isnan(value):
                    row[key] = None
                elif key in short:
                    row[key] = float(str(np.float32(value)))  # numpy prints the shortest decimal
    return rows


def _lists_as_text(table: pa.Table) -> pa.Table:
    """List columns (INFO fields of several values) as VCF text: values comma-separated, a
    missing value ``.``, an empty cell for a null list."""
    for i, field in enumerate(table.schema):
        if pa.types.is_list(field.type):
            text = [
                None if v is None else ",".join("." if x is None else str(x) for x in v) for v in table[i].to_pylist()
            ]
            table = table.set_column(i, field.name, pa.array(text, pa.string()))
    return table


def _compact(table: pa.Table, narrow: bool = True) -> pa.Table:
    """Parquet's columns: float32 as the float64 of its shortest decimal, low-cardinality text
    dictionary-encoded, and (if ``narrow``) integers in the narrowest type that holds them."""
    pc = import_module("pyarrow.compute")
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_float32(field.type):
            values = to_numpy(column, null=np.nan)
            shortest = values.astype(str).astype(np.float64)  # numpy prints a float32's shortest decimal
            column = from_numpy(shortest, to_numpy(column.is_null()))
        elif field.name in DICTIONARY_COLUMNS and pa.types.is_string(field.type):
            column = column.dictionary_encode()
        elif narrow and pa.types.is_integer(field.type) and len(column) and column.null_count < len(column):
            low, high = pc.min_max(column).values()
            column = column.cast(_narrowest(low.as_py(), high.as_py()))
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _narrowest(low: int, high: int) -> pa.DataType:
    for dtype in (pa.int8(), pa.int16(), pa.int32()):
        bound = 1 << (dtype.bit_width - 1)
        if -bound <= low and high < bound:
            return dtype
    return pa.int64()
