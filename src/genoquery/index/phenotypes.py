"""Importing phenotype tables into a store: the person table and OMOP-style event tables.

``import_table(store, file)`` reads a CSV, TSV or Parquet file and writes it into
``STORE/index.duckdb`` in one DuckDB transaction (a failed import leaves the store
as it was):

- a **person table** (``sample_id`` or ``person_id`` plus typed columns) replaces
  the ``persons`` table;
- a **long event table** (person id, a code column ``code``/``*_code``/``*_concept_id``,
  a date column ``date``/``*_date``, optionally a numeric ``value``/``value_as_number``) replaces that event
  table's rows in ``events (table_name, sample_id, code, date, value)``. Its
  ``table_name`` is ``--table`` or, by default, the OMOP table of the code
  column's domain (``condition_code`` -> ``condition_occurrence``).

Rows whose sample ID is not in the store's ``samples`` table are **imported and
reported** (:attr:`ImportResult.unknown_ids`), never dropped: a person table often
covers more people than one callset, and they never match a cohort until a
sample with that ID exists. The ``variant_group_stats`` computed at ingest from
``--persons`` are not recomputed by a re-import.

DuckDB refuses a read-write connection to ``index.duckdb`` while any process has it
open (a running server does), so a write changes a copy of the index and renames it
into place (:func:`~genoquery.storage.transaction.writable_index`); readers that opened the old index keep reading it
and a server reopens its stores on the new one at its next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from genoquery.errors import GenoqueryError, InputFileError
from genoquery.index.merge import rebuild
from genoquery.index.persons import SAMPLE_COLUMN, id_column, person_table, read_table
from genoquery.index.recount import recount_batch
from genoquery.storage.batches import read_batches
from genoquery.storage.checksums import file_sha256
from genoquery.storage.staging import existing_store
from genoquery.storage.transaction import writable_index
from genoquery.version import __version__

KINDS = ("person", "events")
EVENTS_TABLE = """CREATE TABLE IF NOT EXISTS events (
    table_name VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, code VARCHAR NOT NULL, date DATE, value DOUBLE)"""
OMOP_TABLES = {
    "condition": "condition_occurrence",
    "drug": "drug_exposure",
    "procedure": "procedure_occurrence",
    "device": "device_exposure",
    "visit": "visit_occurrence",
    "measurement": "measurement",
    "observation": "observation",
}
TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass
class ImportResult:
    """What an import wrote: ``kind`` person/events, the table, rows and the unknown sample IDs."""

    kind: str
    table: str
    rows: int
    unknown_ids: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _columns_like(columns: list[str], exact: tuple[str, ...], suffixes: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c.lower() in exact or c.lower().endswith(suffixes)]


def _one(candidates: list[str], what: str, path: Path, prefer: tuple[str, ...] = ()) -> str | None:
    preferred = [c for c in candidates if c.lower().endswith(prefer)] if prefer else []
    pool = preferred if len(preferred) == 1 else candidates
    if len(pool) > 1:
        raise InputFileError(path, f"several {what} columns ({', '.join(pool)})", fix=f"keep one {what} column")
    return pool[0] if pool else None


def _event_columns(table: pa.Table, path: Path) -> dict[str, str | None]:
    cols = table.column_names
    return {
        "id": id_column(table),
        "code": _one(_columns_like(cols, ("code",), ("_code", "_concept_id")), "code", path, prefer=("_code",)),
        "date": _one(_columns_like(cols, ("date",), ("_date", "_datetime")), "date", path, prefer=("_start_date",)),
        "value": _one(_columns_like(cols, ("value", "value_as_number"), ()), "value", path),
    }


def detect_kind(table: pa.Table, path: Path) -> str:
    """``events`` when the table has an ID, a code and a date column, else ``person``."""
    if id_column(table) is None:
        raise InputFileError(
            path,
            f"no 'sample_id' or 'person_id' column (columns: {', '.join(table.column_names)})",
            fix="name the sample ID column 'sample_id' or 'person_id'",
        )
    cols = table.column_names
    if _columns_like(cols, ("code",), ("_code", "_concept_id")) and _columns_like(
        cols, ("date",), ("_date", "_datetime")
    ):
        return "events"
    return "person"


def _default_table_name(code_column: str, path: Path) -> str:
    domain = re.sub(r"(_code|_concept_id)$", "", code_column.lower())
    if domain == "code":
        domain = re.sub(r"[^a-z0-9_]+", "_", path.name.split(".")[0].lower()).strip("_")
    return OMOP_TABLES.get(domain, domain)


def event_table(table: pa.Table, path: Path, name: str | None) -> tuple[pa.Table, str, list[str]]:
    """Normalise a long event table to ``sample_id, code, date, value``; returns it, its name, ignored columns."""
    cols = _event_columns(table, path)
    if cols["id"] is None or cols["code"] is None:
        raise InputFileError(
            path,
            "an event table needs a 'person_id' (or 'sample_id') and a code column "
            f"(columns: {', '.join(table.column_names)})",
            fix="name them person_id and e.g. condition_code, or use --kind person",
        )
    name = (name or _default_table_name(cols["code"], path)).lower()
    if not TABLE_NAME.fullmatch(name):
        raise InputFileError(
            path,
            f"event table name {name!r} is not a plain name",
            fix="give --table NAME with lowercase letters, digits and _",
        )
    used = {c for c in cols.values() if c}
    ignored = [c for c in table.column_names if c not in used]
    con = duckdb.connect()
    try:
        con.register("raw", table)
        select = ", ".join(
            [
                f"CAST({_q(cols['id'])} AS VARCHAR) AS sample_id",
                f"CAST({_q(cols['code'])} AS VARCHAR) AS code",
                f"TRY_CAST({_q(cols['date'])} AS DATE) AS date" if cols["date"] else "NULL::DATE AS date",
                f"TRY_CAST({_q(cols['value'])} AS DOUBLE) AS value" if cols["value"] else "NULL::DOUBLE AS value",
            ]
        )
        out = con.sql(f"SELECT {select} FROM raw").to_arrow_table()
    finally:
        con.close()
    for key, kind in (("date", "date (YYYY-MM-DD)"), ("value", "number")):
        if cols[key]:
            bad = pc.and_(pc.is_valid(table[cols[key]]), pc.is_null(out[key]))
            row = pc.index(bad, True).as_py()
            if row >= 0:
                where = {"record": str(row + 1)} if path.suffix.lower() == ".parquet" else {"line": row + 2}
                raise InputFileError(
                    path,
                    f"{cols[key]} {table[cols[key]][row].as_py()!r} is not a {kind}",
                    **where,
                    fix=f"give every {cols[key]} as a {kind} or leave it empty",
                )
    for key in ("sample_id", "code"):
        if out[key].null_count:
            raise InputFileError(path, f"{out[key].null_count} row(s) have no {key}", fix=f"give every event a {key}")
    return out, name, ignored


def _unknown_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Distinct IDs of ``incoming`` not in ``samples``, in order of first appearance."""
    return [
        r[0]
        for r in con.execute(
            "SELECT sample_id FROM (SELECT sample_id, row_number() OVER () AS r FROM incoming) "
            "WHERE sample_id NOT IN (SELECT sample_id FROM samples) GROUP BY sample_id ORDER BY min(r)"
        ).fetchall()
    ]


def _record_provenance(con: duckdb.DuckDBPyConnection, path: Path, kind: str, rows: int) -> None:
    con.execute("DELETE FROM provenance WHERE kind = ?", [kind])
    con.execute(
        "INSERT INTO provenance VALUES (?, ?, ?, ?, ?, (SELECT count(DISTINCT sample_id) FROM incoming), ?, ?, NULL)",
        [
            str(path.absolute()),
            path.stat().st_size,
            file_sha256(path),
            kind,
            rows,
            f"genoquery {__version__}",
            datetime.now(UTC),
        ],
    )


def import_table(
    store: str | Path, file: str | Path, kind: str | None = None, table: str | None = None
) -> ImportResult:
    """Import a person table (``kind='person'``) or an event table (``'events'``) into ``store``.

    ``kind`` is detected from the columns when not given; ``table`` names an event
    table (default: from the code column, e.g. ``condition_occurrence``). Re-import
    replaces the person table or that event table's rows. The store must not be
    open in this process.
    """
    path = Path(file)
    if kind is not None and kind not in KINDS:
        raise GenoqueryError(f"unknown kind {kind!r}; choose {' or '.join(KINDS)}")
    existing_store(store)
    raw = read_table(path, fix="check the file path")
    kind = kind or detect_kind(raw, path)
    ignored: list[str] = []
    if kind == "person":
        if table is not None:
            raise GenoqueryError("--table names an event table; a person table is always 'persons'")
        incoming, name = person_table(raw, path), "persons"
    else:
        incoming, name, ignored = event_table(raw, path, table)
    with writable_index(store) as con:
        con.register("incoming", incoming)
        if kind == "person":
            con.execute("DROP TABLE IF EXISTS persons")
            con.execute("CREATE TABLE persons AS SELECT * FROM incoming")
            recompute_group_stats(con, existing_store(store), incoming)
        else:
            con.execute(EVENTS_TABLE)
            con.execute("DELETE FROM events WHERE table_name = ?", [name])
            con.execute("INSERT INTO events SELECT ?, sample_id, code, date, value FROM incoming", [name])
        unknown = _unknown_ids(con)
        _record_provenance(con, path, "persons" if kind == "person" else f"events:{name}", incoming.num_rows)
        con.unregister("incoming")
    return ImportResult(kind, name, incoming.num_rows, unknown, ignored)


def recompute_group_stats(con: duckdb.DuckDBPyConnection, store: Path, persons: pa.Table) -> None:
    """Replace every batch's counts per group with counts per group of the new person table's
    ``ancestry`` and ``sex_at_birth`` (from the query encoding of every record), and re-derive
    the whole-store statistics, so :meth:`Store.variants` by group follows the imported table."""
    for batch in read_batches(con, store):
        recount_batch(con, batch, persons, groups_only=True)
    rebuild(con, checkpoint=False)  # inside writable_index's transaction


__all__ = ["SAMPLE_COLUMN", "ImportResult", "detect_kind", "import_table"]
