"""Reading a person table (CSV, TSV or Parquet) and turning its columns into sample groups."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.errors import InputFileError
from genoquery.ingest.allele_stats import SampleGroups

SAMPLE_COLUMN = "sample_id"
GROUP_COLUMNS = ("ancestry", "sex_at_birth")


def read_person_table(path: str | Path) -> pa.Table:
    """Read a person table; it must have a ``sample_id`` column with unique values."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file", fix="check the --persons path")
    con = duckdb.connect()
    try:
        if path.suffix.lower() == ".parquet":
            table = con.sql("SELECT * FROM read_parquet(?)", params=[str(path)]).to_arrow_table()
        else:
            delim = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
            table = con.sql("SELECT * FROM read_csv(?, delim=?, header=true)",
                            params=[str(path), delim]).to_arrow_table()
    except duckdb.Error as err:
        raise InputFileError(path, f"cannot read the person table ({err})",
                             fix="give a CSV, TSV or Parquet file with a header row") from None
    finally:
        con.close()
    if SAMPLE_COLUMN not in table.column_names:
        raise InputFileError(path, f"no {SAMPLE_COLUMN!r} column (columns: {', '.join(table.column_names)})",
                             fix=f"name the sample ID column {SAMPLE_COLUMN!r}")
    table = table.set_column(table.column_names.index(SAMPLE_COLUMN), SAMPLE_COLUMN,
                             table[SAMPLE_COLUMN].cast(pa.string()))
    ids = table[SAMPLE_COLUMN].to_pylist()
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputFileError(path, f"sample ID {dup!r} appears more than once",
                             fix="give one row per sample")
    return table


def sample_groups(persons: pa.Table, samples: list[str]) -> tuple[SampleGroups, ...]:
    """One :class:`SampleGroups` per group column present in the person table."""
    row_of = {sid: i for i, sid in enumerate(persons[SAMPLE_COLUMN].to_pylist())}
    rows = np.array([row_of.get(s, -1) for s in samples], dtype=np.int64)
    groupings = []
    for column in GROUP_COLUMNS:
        if column not in persons.column_names:
            continue
        values = persons[column].cast(pa.string()).to_pylist()
        labels = tuple(sorted({v for v in values if v is not None}))
        code_of = {label: i for i, label in enumerate(labels)}
        codes = np.array([code_of.get(values[r], -1) if r >= 0 and values[r] is not None else -1
                          for r in rows], dtype=np.int64)
        groupings.append(SampleGroups(column, labels, codes))
    return tuple(groupings)
