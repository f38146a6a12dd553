"""Reading a person table (CSV, TSV or Parquet) and turning its columns into sample groups."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.errors import InputFileError
from genoquery.stats.allele_stats import SampleGroups

SAMPLE_COLUMN = "sample_id"
ID_ALIASES = ("person_id",)  # accepted instead of sample_id (OMOP names it person_id)
GROUP_COLUMNS = ("ancestry", "sex_at_birth")


def read_table(path: str | Path, fix: str = "check the --persons path") -> pa.Table:
    """Read a CSV, TSV (also ``.gz``) or Parquet file with a header row, column types inferred."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file", fix=fix)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    con = duckdb.connect()
    try:
        if suffixes[-1:] == [".parquet"]:
            table = con.sql("SELECT * FROM read_parquet(?)", params=[str(path)]).to_arrow_table()
        else:
            delim = "\t" if {".tsv", ".txt", ".tab"} & set(suffixes) else ","
            header = con.sql("SELECT * FROM read_csv(?, delim=?, header=true) LIMIT 0", params=[str(path), delim])
            # IDs are text whatever they look like: a sample named 1e3 or TRUE must not become 1000.0 or true
            ids = {c: "VARCHAR" for c in header.columns if c in (SAMPLE_COLUMN, *ID_ALIASES)}
            table = con.sql(
                "SELECT * FROM read_csv(?, delim=?, header=true, types=?)", params=[str(path), delim, ids]
            ).to_arrow_table()
    except duckdb.Error as err:
        raise InputFileError(
            path, f"cannot read the table ({err})", fix="give a CSV, TSV or Parquet file with a header row"
        ) from None
    finally:
        con.close()
    return table


def id_column(table: pa.Table) -> str | None:
    """The table's sample ID column: ``sample_id``, else ``person_id``, else None."""
    for name in (SAMPLE_COLUMN, *ID_ALIASES):
        if name in table.column_names:
            return name
    return None


def person_table(table: pa.Table, path: str | Path) -> pa.Table:
    """Check a person table: one row per sample ID (``sample_id`` or ``person_id``, as text)."""
    column = id_column(table)
    if column is None:
        raise InputFileError(
            path,
            f"no {SAMPLE_COLUMN!r} column (columns: {', '.join(table.column_names)})",
            fix=f"name the sample ID column {SAMPLE_COLUMN!r} (or 'person_id')",
        )
    table = table.set_column(table.column_names.index(column), SAMPLE_COLUMN, table[column].cast(pa.string()))
    ids = table[SAMPLE_COLUMN]
    if ids.null_count:
        raise InputFileError(path, f"{ids.null_count} row(s) have no sample ID", fix="give every row a sample ID")
    pc = import_module("pyarrow.compute")  # 35 ms: only persons being imported are checked
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = next(v["values"] for v in counts.to_pylist() if v["counts"] > 1)
        raise InputFileError(path, f"sample ID {dup!r} appears more than once", fix="give one row per sample")
    return table


def read_person_table(path: str | Path) -> pa.Table:
    """Read a person table; it must have a ``sample_id`` (or ``person_id``) column with unique values."""
    return person_table(read_table(path), path)


def sample_groups(persons: pa.Table, samples: list[str]) -> tuple[SampleGroups, ...]:
    """One :class:`SampleGroups` per group column present in the person table."""
    return tuple(groups_of(persons, samples, c) for c in GROUP_COLUMNS if c in persons.column_names)


def groups_of(persons: pa.Table, samples: list[str], column: str) -> SampleGroups:
    """The samples grouped by a person-table column's values (as text; -1 where unknown)."""
    row_of = {sid: i for i, sid in enumerate(persons[SAMPLE_COLUMN].to_pylist())}
    values = persons[column].cast(pa.string()).to_pylist()
    labels = tuple(sorted({v for v in values if v is not None}))
    code_of = {label: i for i, label in enumerate(labels)}
    rows = (row_of.get(s, -1) for s in samples)
    codes = np.fromiter(
        (code_of.get(values[r], -1) if r >= 0 and values[r] is not None else -1 for r in rows),
        dtype=np.int64,
        count=len(samples),
    )
    return SampleGroups(column, labels, codes)


def stored_persons(con: duckdb.DuckDBPyConnection) -> pa.Table | None:
    """The person table of the index ``con`` is connected to, or None when none was imported."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'persons' AND database_name = current_database()"
    ).fetchall()[0][0]
    return con.sql("SELECT * FROM persons").to_arrow_table() if found else None
