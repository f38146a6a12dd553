"""The phenotype vector and covariate matrix of an association test, from the person and event tables.

A phenotype is a person-table column (quantitative, or 0/1 / boolean for a binary
trait) or condition codes: cases have any of the codes in the event table
(``condition_occurrence`` by default), controls have none. Covariates are
person-table columns plus three conveniences: ``age`` (``REFERENCE_YEAR`` minus
``birth_year``, in years, when the table has no ``age`` column), ``sex`` (the
``sex_at_birth`` column when there is no ``sex``) and ``pcs`` (every ``pc1``,
``pc2``, ... column). A text or categorical covariate is one-hot coded with its
first level in sorted order as the reference (as statsmodels' ``C()`` does).
An intercept is always the first column.

Analysed samples are the cohort's samples with a person row and a value for the
phenotype and every covariate; samples missing any of them are left out of every
test (PLINK 2 does the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genoquery.errors import QueryError

if TYPE_CHECKING:
    from genoquery.query.store import Store

REFERENCE_YEAR = date.today().year  # age = REFERENCE_YEAR - birth_year; a constant shift leaves allele effects alone
CONDITIONS = "condition_occurrence"
PC_COLUMN = re.compile(r"pc\d+", re.IGNORECASE)


@dataclass(frozen=True)
class Design:
    """Analysed samples (sorted store sample indexes), phenotype ``y`` (n,) float64 (0/1 when
    ``binary``), covariates (n, k) float64 with the intercept first, and their names."""

    phenotype: str
    samples: np.ndarray
    y: np.ndarray
    covariates: np.ndarray
    names: list[str]
    binary: bool


def person_frame(store: Store) -> pd.DataFrame:
    """The person table joined to the store's samples: one row per sample with a person row,
    indexed by sample index (ascending), its columns but ``sample_id``."""
    columns = store.sql(  # not store.persons(): the whole table as Arrow, 0.24 s at 10^6 persons, to count columns
        "SELECT count(*) AS n FROM duckdb_columns() "
        "WHERE table_name = 'persons' AND database_name = current_database()",
        [],
    )["n"][0].as_py()
    if columns <= 1:  # no person table, or its sample_id only
        raise QueryError("this store has no person table; import one with 'genoquery phenotypes STORE FILE'")
    # joined in DuckDB: pandas' isin over Arrow strings took 5 s of a GWAS at 10^6 samples
    joined = store.sql(
        # without sample_id, which no design reads: 10^6 strings made pandas objects (~0.1 s)
        "SELECT s.sample_index AS _gq_sample_index, p.* EXCLUDE (sample_id) FROM persons AS p JOIN samples AS s "
        "ON s.sample_id = p.sample_id ORDER BY s.sample_index",
        [],
    ).to_pandas()
    index = joined.pop("_gq_sample_index").to_numpy(dtype=np.int64)
    return joined.set_index(pd.Index(index))


def condition_codes(store: Store, table: str = CONDITIONS) -> pd.Series:
    """Cases per code of an event table (distinct samples of the store), most cases first."""
    if not store.sql(
        "SELECT 1 FROM duckdb_tables() WHERE table_name = 'events' AND database_name = current_database()", []
    ).num_rows:
        return pd.Series(dtype=np.int64)
    rows = store.sql(
        "SELECT e.code, count(DISTINCT s.sample_index) AS n FROM events e JOIN samples s "
        "ON s.sample_id = e.sample_id WHERE e.table_name = ? GROUP BY e.code ORDER BY n DESC, e.code",
        [table],
    ).to_pydict()
    return pd.Series(rows["n"], index=rows["code"], dtype=np.int64)


def cases(store: Store, codes: list[str], table: str = CONDITIONS) -> np.ndarray:
    """Sorted sample indexes with any of ``codes`` in the event table; unknown codes raise."""
    known = condition_codes(store, table)
    unknown = [c for c in codes if c not in known.index]
    if unknown:
        raise QueryError(
            f"no {table} events with code(s) {', '.join(map(repr, unknown))} in this store "
            f"(codes: {', '.join(known.index[:20]) or 'none; import events with genoquery phenotypes'})"
        )
    found = store.sql(
        "SELECT DISTINCT s.sample_index FROM events e JOIN samples s ON s.sample_id = e.sample_id "
        "WHERE e.table_name = ? AND e.code IN (SELECT unnest(?))",
        [table, list(codes)],
    )
    return np.sort(found["sample_index"].to_numpy())


def _phenotype(
    store: Store, persons: pd.DataFrame, phenotype: str | list[str], binary: bool | None
) -> tuple[str, pd.Series, bool]:
    """(name, values per person row with NaN when missing, whether binary)."""
    if isinstance(phenotype, str) and phenotype in persons.columns and phenotype != "sample_id":
        column = persons[phenotype]
        if column.dtype == bool or column.dtype == "boolean":
            column = column.astype("float64")
        if not pd.api.types.is_numeric_dtype(column):
            raise QueryError(
                f"phenotype {phenotype!r} is not numeric ({column.dtype}); give a numeric column or condition codes"
            )
        values = column.astype("float64")
        is_binary = bool(values.dropna().isin([0.0, 1.0]).all())
        if binary and not is_binary:
            raise QueryError(f"phenotype {phenotype!r} is not binary (0/1) and cannot be tested by logistic regression")
        return phenotype, values, is_binary
    codes = [phenotype] if isinstance(phenotype, str) else list(phenotype)
    if not codes or not all(isinstance(c, str) for c in codes):
        raise QueryError(f"phenotype must be a person-table column or condition code(s); got {phenotype!r}")
    known = condition_codes(store)
    if any(c not in known.index for c in codes) and isinstance(phenotype, str):
        columns = ", ".join(c for c in persons.columns if c != "sample_id")
        raise QueryError(
            f"phenotype {phenotype!r} is neither a person-table column ({columns}) nor a "
            f"condition code ({', '.join(known.index[:20]) or 'no events imported'})"
        )
    case = np.isin(persons.index.to_numpy(), cases(store, codes))
    return "|".join(codes), pd.Series(case.astype(np.float64), index=persons.index), True


def _covariate(persons: pd.DataFrame, name: str) -> pd.DataFrame:
    """One covariate's columns (several for a one-hot coded categorical one), NaN when missing."""
    if name in persons.columns and name != "sample_id":
        column = persons[name]
    elif name == "age" and "birth_year" in persons.columns:
        column = REFERENCE_YEAR - pd.to_numeric(persons["birth_year"], errors="coerce")
    elif name == "sex" and "sex_at_birth" in persons.columns:
        column = persons["sex_at_birth"]
    else:
        columns = ", ".join(c for c in persons.columns if c != "sample_id")
        raise QueryError(
            f"unknown covariate {name!r}; person-table columns: {columns} (and age from "
            "birth_year, sex for sex_at_birth, pcs for every pcN column)"
        )
    if column.dtype == bool or pd.api.types.is_numeric_dtype(column):
        return pd.DataFrame({name: column.astype("float64")})
    text = column.astype("string")
    levels = sorted(text.dropna().unique())
    return pd.DataFrame(
        {f"{name}={level}": np.where(text.isna(), np.nan, (text == level).astype(np.float64)) for level in levels[1:]},
        index=persons.index,
    )


def expand_covariates(persons: pd.DataFrame, covariates: list[str]) -> list[str]:
    """Covariate names with ``pcs`` replaced by the person table's ``pcN`` columns (in N order)."""
    pcs = sorted((c for c in persons.columns if PC_COLUMN.fullmatch(c)), key=lambda c: int(c[2:]))
    return [c for name in covariates for c in (pcs if name == "pcs" else [name])]


def build_design(
    store: Store,
    phenotype: str | list[str],
    covariates: list[str],
    members: np.ndarray | None,
    binary: bool | None = None,
) -> Design:
    """The design of ``phenotype`` ~ intercept + ``covariates`` over ``members`` (sorted sample
    indexes; None for every sample). ``binary=True`` requires a 0/1 trait (logistic models)."""
    persons = person_frame(store)
    if members is not None:
        member = np.isin(persons.index.to_numpy(), members)
        if not member.all():  # a copy of every column otherwise
            persons = persons[member]
    name, y, is_binary = _phenotype(store, persons, phenotype, binary)
    names = expand_covariates(persons, list(covariates))
    # in numpy (every column is float64): pandas' concat, row filter, nunique and to_numpy took ~0.5 s at 10^6
    parts = [_covariate(persons, c) for c in names]
    columns = np.array(["intercept", *(c for part in parts for c in part.columns)], dtype=object)
    matrix = np.ones((len(persons), len(columns)), order="F")
    for j, values in enumerate((part[c] for part in parts for c in part.columns), start=1):
        matrix[:, j] = values.to_numpy(np.float64)
    complete = ~np.isnan(matrix).any(axis=1) & y.notna().to_numpy()
    if not complete.all():
        matrix = matrix[complete]
    varies = [bool((column != column[0]).any()) if len(column) else False for column in matrix.T]
    keep = (columns == "intercept") | np.array(varies)  # levels absent here dropped
    matrix, columns = np.asfortranarray(matrix[:, keep]), columns[keep].tolist()
    if len(matrix) <= matrix.shape[1] + 1:
        raise QueryError(
            f"too few samples with {name} and every covariate: {len(matrix)} for {matrix.shape[1] + 1} parameters"
        )
    values = y[complete].to_numpy()
    if is_binary and len(np.unique(values)) < 2:
        raise QueryError(
            f"phenotype {name!r} has only {'cases' if values[0] else 'controls'} among the "
            f"{len(values)} analysed samples"
        )
    return Design(name, persons.index.to_numpy(np.int64)[complete], values, matrix, columns, is_binary)
