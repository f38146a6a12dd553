"""The ``genes`` table: import from a GENCODE-style GTF or a BED, and look genes up by name or ID.

Stored coordinates are 1-based inclusive whatever the source (a BED's 0-based
half-open ``start`` gets 1 added). Contig names are stored in the store's own
naming when the file differs only by a ``chr`` prefix (``20`` -> ``chr20``);
genes on contigs the store does not hold are kept as written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import duckdb

from genoquery.errors import InputFileError, QueryError, UnknownItemError
from genoquery.storage.regions import resolve_contig
from genoquery.storage.schema import GENES
from genoquery.storage.transaction import writable_index

FORMATS = ("gtf", "bed")
_SUFFIXES = {".gtf": "gtf", ".gff2": "gtf", ".bed": "bed"}


class Gene(NamedTuple):
    """One row of the ``genes`` table; ``start`` and ``end`` are 1-based inclusive."""

    gene_id: str
    gene_name: str | None
    contig: str
    start: int
    end: int
    strand: str | None


def _read_csv(path: Path, n_columns: int) -> str:
    """DuckDB's CSV reader over a tab-separated file: no quoting, short lines padded, long lines cut."""
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n_columns))
    quoted = str(path).replace("'", "''")
    return (
        f"read_csv('{quoted}', delim='\t', quote='', escape='', header=false, auto_detect=false, "
        f"null_padding=true, strict_mode=false, columns={{{columns}}})"
    )


def _attribute(name: str) -> str:
    return f"nullif(regexp_extract(c8, '(?:^|;)\\s*{name}\\s+\"?([^\";]*)\"?', 1), '')"


_GTF_ROWS = """
CREATE TEMP TABLE gtf_rows AS
SELECT c0 AS contig, c2 AS feature, try_cast(c3 AS BIGINT) AS start, try_cast(c4 AS BIGINT) AS "end",
       c6 AS strand, {gene_id} AS gene_id, {gene_name} AS gene_name, {gene_type} AS gene_type,
       c0 || '\t' || coalesce(c1, '') || '\t' || coalesce(c2, '') || '\t' || coalesce(c3, '') || '\t'
          || coalesce(c4, '') || ' ...' AS line, c8 IS NULL AS short
FROM {source} WHERE NOT starts_with(c0, '#') AND trim(c0) <> ''
"""

# Gene lines when the file has them; otherwise each gene's extent over all its features.
_GTF_GENES = """
CREATE TEMP TABLE incoming AS
SELECT gene_id, gene_name, gene_type, contig, start, "end", strand, line FROM gtf_rows WHERE feature = 'gene'
UNION ALL
SELECT gene_id, any_value(gene_name), any_value(gene_type), contig, min(start), max("end"), any_value(strand),
       any_value(line)
FROM gtf_rows WHERE NOT EXISTS (SELECT 1 FROM gtf_rows WHERE feature = 'gene') GROUP BY gene_id, contig
"""

_BED_GENES = """
CREATE TEMP TABLE incoming AS
SELECT c3 AS gene_id, c3 AS gene_name, NULL::VARCHAR AS gene_type, c0 AS contig,
       try_cast(c1 AS BIGINT) + 1 AS start, try_cast(c2 AS BIGINT) AS "end", c5 AS strand,
       concat_ws('\t', c0, c1, c2, c3) AS line
FROM {source}
WHERE NOT (starts_with(c0, '#') OR starts_with(c0, 'track') OR starts_with(c0, 'browser')) AND trim(c0) <> ''
"""


def detect_format(path: Path) -> str:
    """``gtf`` or ``bed`` from the file name (``.gz`` allowed)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bgz"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise InputFileError(
        str(path),
        "cannot tell a GTF from a BED by the file name",
        fix="name it .gtf/.bed (optionally .gz) or pass the format (gtf or bed)",
    )


def _first_problem(con: duckdb.DuckDBPyConnection, fmt: str) -> str | None:
    """The first malformed row of ``incoming``, described, or None."""
    checks = [
        ("gene_id IS NULL", "no gene_id attribute" if fmt == "gtf" else "no name (4th column)"),
        ('start IS NULL OR "end" IS NULL', "start or end is not a whole number"),
        ("start < 1", "start must be >= 1" if fmt == "gtf" else "start must be >= 0"),
        ('"end" < start', "end is before start" if fmt == "gtf" else "end must be larger than start"),
        ("strand IS NOT NULL AND strand NOT IN ('+', '-', '.')", "strand must be +, - or ."),
    ]
    for condition, problem in checks:
        row = con.execute(f"SELECT line FROM incoming WHERE {condition} LIMIT 1").fetchall()
        if row:
            return f"{problem}: {row[0][0]!r}"
    return None


def import_genes(store_path: str | os.PathLike, file: str | os.PathLike, fmt: str | None = None) -> int:
    """Replace the store's ``genes`` table with the genes of a GTF or BED file; returns the gene count.

    A GTF contributes its ``gene`` lines (``gene_id``, ``gene_name``, ``gene_type``
    attributes; 1-based inclusive), or, when it has none, each gene_id's extent over
    its features. A BED contributes one gene per line: the name column is both
    ``gene_id`` and ``gene_name``; ``start`` is 0-based half-open and stored + 1.
    It is one index transaction under the store's write lock
    (:func:`~genoquery.storage.transaction.writable_index`), so an append or withdrawal
    at the same time waits or is refused, and neither loses the other's change.
    """
    path = Path(file)
    if not path.is_file():
        raise InputFileError(str(path), "no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputFileError(str(path), f"unknown gene file format {fmt!r}", fix="use gtf or bed")
    with writable_index(store_path) as con:
        try:
            _read_genes(con, path, fmt)
        except duckdb.Error as err:
            raise InputFileError(str(path), f"cannot read as {fmt.upper()}: {str(err).splitlines()[0]}") from None
        return _store_genes(con, str(path))


def _read_genes(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> None:
    """The file's genes as the temporary table ``incoming``, or an :class:`InputFileError`."""
    if fmt == "gtf":
        con.execute(
            _GTF_ROWS.format(
                source=_read_csv(path, 9),
                gene_id=_attribute("gene_id"),
                gene_name=_attribute("gene_name"),
                gene_type=_attribute("gene_type"),
            )
        )
        short = con.execute("SELECT line FROM gtf_rows WHERE short LIMIT 1").fetchall()
        if short:
            raise InputFileError(str(path), f"a GTF line has fewer than 9 tab-separated columns: {short[0][0]!r}")
        con.execute(_GTF_GENES)
    else:
        con.execute(_BED_GENES.format(source=_read_csv(path, 6)))
    if not con.execute("SELECT count(*) FROM incoming").fetchall()[0][0]:
        raise InputFileError(str(path), f"no genes found in this {fmt.upper()} file")
    problem = _first_problem(con, fmt)
    if problem is not None:
        raise InputFileError(str(path), problem)


def _store_genes(con: duckdb.DuckDBPyConnection, source: str) -> int:
    """Rename contigs to the store's naming and write ``incoming`` as the ``genes`` table."""
    contigs = [r[0] for r in con.execute("SELECT contig FROM contigs ORDER BY contig_index").fetchall()]
    names = [r[0] for r in con.execute("SELECT DISTINCT contig FROM incoming").fetchall()]
    con.execute("CREATE TEMP TABLE contig_names (given VARCHAR, contig VARCHAR)")
    con.executemany("INSERT INTO contig_names VALUES (?, ?)", [(n, resolve_contig(n, contigs) or n) for n in names])
    con.execute(GENES)
    con.execute(
        'INSERT INTO genes SELECT i.gene_id, i.gene_name, i.gene_type, n.contig, i.start, i."end", '
        "nullif(i.strand, '.'), ? FROM incoming i JOIN contig_names n ON n.given = i.contig "
        "ORDER BY n.contig, i.start, i.gene_id",
        [source],
    )
    return con.execute("SELECT count(*) FROM genes").fetchall()[0][0]


def has_genes(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'genes' AND NOT temporary").fetchall()[0][
            0
        ]
    )


def find_gene(con: duckdb.DuckDBPyConnection, name: str) -> list[Gene]:
    """Every ``genes`` row named ``name`` (gene_name or gene_id; then case-insensitive, ID without version)."""
    if not has_genes(con):
        raise QueryError("no genes in this store; import a GTF or BED with 'genoquery genes STORE FILE'")
    columns = 'gene_id, gene_name, contig, start, "end", strand'
    for condition in (
        "gene_name = $n OR gene_id = $n",
        "upper(gene_name) = upper($n) OR split_part(gene_id, '.', 1) = split_part($n, '.', 1)",
    ):
        rows = con.execute(
            f"SELECT {columns} FROM genes WHERE {condition} ORDER BY contig, start", {"n": name}
        ).fetchall()
        if rows:
            return [Gene(*r) for r in rows]
    near = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT coalesce(gene_name, gene_id) AS g, jaro_winkler_similarity(upper(g), upper($n)) AS s "
            "FROM genes WHERE s > 0.7 ORDER BY s DESC, g LIMIT 3",
            {"n": name},
        ).fetchall()
    ]
    count = con.execute("SELECT count(*) FROM genes").fetchall()[0][0]
    raise UnknownItemError(
        f"gene {name!r} is not among the {count} imported genes"
        + (f"; did you mean {', '.join(near)}?" if near else "")
    )
