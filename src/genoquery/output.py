"""Writing result tables as TSV, CSV, JSON or Parquet (files or standard output)."""

from __future__ import annotations

import io
import json
import math
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from genoquery.errors import QueryError

FORMATS = ("tsv", "csv", "json", "parquet")


def _json_value(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_table(table: pa.Table, fmt: str, path: str | None = None) -> None:
    """Write ``table`` in ``fmt`` to ``path`` or, without a path, to standard output."""
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if path is None:
            raise QueryError("parquet output needs --output FILE")
        pq.write_table(table, path)
        return
    if fmt == "json":
        rows = [{k: _json_value(v) for k, v in row.items()} for row in table.to_pylist()]
        text = json.dumps(rows, default=str) + "\n"
    else:
        buffer = io.BytesIO()
        options = pacsv.WriteOptions(
            delimiter="\t" if fmt == "tsv" else ",", quoting_style="needed" if fmt == "csv" else "none"
        )
        pacsv.write_csv(table, buffer, options)
        text = buffer.getvalue().decode().replace('"', "") if fmt == "tsv" else buffer.getvalue().decode()
    if path is None:
        sys.stdout.write(text)
    else:
        with open(path, "w") as handle:
            handle.write(text)
