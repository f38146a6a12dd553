"""Cohorts: filter expressions and sample-ID lists, checked against pandas over the raw fixture tables."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genoquery
from genoquery.cli import main
from genoquery.errors import QueryError
from genoquery.index.phenotypes import import_table

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
VCF = FIXTURES / "cohort.chr20.vcf.gz"
PERSONS = FIXTURES / "persons.tsv"
CONDITIONS = FIXTURES / "conditions.tsv"
CODES = ("E11", "I10", "J45", "Z99")  # Z99: no one has it

# --- the oracle: pandas over the raw files, SQL three-valued logic as pandas' nullable booleans ----

HEADER_ORDER = list(pysam.VariantFile(str(VCF)).header.samples)  # genotype column order
RAW = pd.read_csv(PERSONS, sep="\t").convert_dtypes()
CONDS = pd.read_csv(CONDITIONS, sep="\t", dtype=str)


def oracle_indexes(mask: pd.Series, persons: pd.DataFrame = RAW) -> np.ndarray:
    """Header positions of the persons whose mask is True (NA counts as not matching)."""
    chosen = set(persons.sample_id[mask.fillna(False).astype(bool)])
    return np.array([i for i, s in enumerate(HEADER_ORDER) if s in chosen], dtype=np.int64)


def has(codes: tuple[str, ...], persons: pd.DataFrame = RAW) -> pd.Series:
    people = set(CONDS.person_id[CONDS.condition_code.isin(codes)])
    return persons.sample_id.isin(people).astype("boolean")


def isin(column: pd.Series, values: tuple) -> pd.Series:
    """SQL IN: NULL when the value is NULL (no NULL in the list)."""
    return column.isin(values).astype("boolean").mask(column.isna())


# --- the store -------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cohorts") / "s.gq"
    genoquery.ingest(path, [VCF], persons=PERSONS, progress=False).close()
    import_table(path, CONDITIONS)
    return path


@pytest.fixture(scope="module")
def store(built: Path):
    with genoquery.open(built) as opened:
        yield opened


@pytest.fixture
def writable(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built, tmp_path / "s.gq")
    return tmp_path / "s.gq"


def check(store, expr: str, mask: pd.Series) -> None:
    expected = oracle_indexes(mask)
    if expected.size == 0:
        with pytest.raises(QueryError, match="matches no sample"):
            store.cohort(expr)
        return
    got = store.cohort(expr)
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got, expected, err_msg=expr)


def test_store_sample_order_is_the_vcf_header(store) -> None:
    assert store.samples().column("sample_id").to_pylist() == HEADER_ORDER


@pytest.mark.parametrize(
    ("expr", "mask"),
    [
        (
            "sex_at_birth = 'Female' AND birth_year < 1970 AND has_condition('E11')",
            (RAW.sex_at_birth == "Female") & (RAW.birth_year < 1970) & has(("E11",)),
        ),
        ("has_condition('E11', 'J45')", has(("E11", "J45"))),
        ("has_event('condition_occurrence', 'I10') AND NOT has_condition('E11')", has(("I10",)) & ~has(("E11",))),
        (
            "ancestry IN ('EUR', 'AFR') OR center = 'center3'",
            isin(RAW.ancestry, ("EUR", "AFR")) | (RAW.center == "center3"),
        ),
        ("ldl_mg_dl IS NULL", RAW.ldl_mg_dl.isna().astype("boolean")),
        ("NOT (ldl_mg_dl > 120)", ~(RAW.ldl_mg_dl > 120)),
        (
            "birth_year BETWEEN 1950 AND 1960 AND lower(sex_at_birth) = 'male'",
            (RAW.birth_year >= 1950) & (RAW.birth_year <= 1960) & (RAW.sex_at_birth == "Male"),
        ),
        ("center LIKE '%2' AND abs(pc1) < 0.3", RAW.center.str.endswith("2") & (RAW.pc1.abs() < 0.3)),
        ("coalesce(ldl_mg_dl, 0) < 100", RAW.ldl_mg_dl.fillna(0) < 100),
        ("2024 - birth_year >= 70", 2024 - RAW.birth_year >= 70),
        (
            "CASE WHEN sex_at_birth = 'Female' THEN birth_year < 1960 ELSE birth_year > 1990 END",
            ((RAW.sex_at_birth == "Female") & (RAW.birth_year < 1960))
            | ((RAW.sex_at_birth != "Female") & (RAW.birth_year > 1990)),
        ),
        ("CAST(birth_year AS VARCHAR) LIKE '19_5'", RAW.birth_year.astype(str).str.match(r"^19.5$")),
        ("sample_id IN ('S000003', 'S000120')", isin(RAW.sample_id, ("S000003", "S000120"))),
        ("TRUE", pd.Series(True, index=RAW.index, dtype="boolean")),
    ],
)
def test_examples_against_pandas(store, expr: str, mask: pd.Series) -> None:
    check(store, expr, mask)


# --- property-based: random filters drawn against the fixture tables ------

NUMERIC = ("pc1", "pc2", "pc3", "pc4", "ldl_mg_dl")
CATEGORICAL = ("sex_at_birth", "ancestry", "center")
OPS = {"<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__", "=": "__eq__", "<>": "__ne__"}


def midpoints(column: str) -> list[float]:
    """Thresholds strictly between observed values: no ties between decimal literals and parsed doubles."""
    v = np.unique(RAW[column].dropna().to_numpy(dtype=float))
    return [float(x) for x in np.concatenate([[v[0] - 1], (v[:-1] + v[1:]) / 2, [v[-1] + 1]])]


@st.composite
def atoms(draw) -> tuple[str, pd.Series]:
    kind = draw(st.sampled_from(["num", "year", "between", "cat", "in", "like", "null", "cond"]))
    if kind == "num":
        column = draw(st.sampled_from(NUMERIC))
        t = draw(st.sampled_from(midpoints(column)))
        op = draw(st.sampled_from(["<", ">", "<=", ">="]))
        return f"{column} {op} {t!r}", getattr(RAW[column], OPS[op])(t)
    if kind == "year":
        t = draw(st.integers(1935, 2005))
        op = draw(st.sampled_from(list(OPS)))
        shift = draw(st.integers(-3, 3))
        lhs = f"birth_year + {shift}" if shift else "birth_year"
        return f"{lhs} {op} {t}", getattr(RAW.birth_year + shift, OPS[op])(t)
    if kind == "between":
        a, b = sorted(draw(st.lists(st.integers(1935, 2005), min_size=2, max_size=2)))
        return f"birth_year BETWEEN {a} AND {b}", (RAW.birth_year >= a) & (RAW.birth_year <= b)
    if kind == "cat":
        column = draw(st.sampled_from(CATEGORICAL))
        value = draw(st.sampled_from(sorted(RAW[column].unique())))
        op = draw(st.sampled_from(["=", "<>"]))
        return f"{column} {op} '{value}'", getattr(RAW[column], OPS[op])(value)
    if kind == "in":
        column = draw(st.sampled_from(CATEGORICAL))
        values = tuple(
            draw(st.lists(st.sampled_from(sorted(RAW[column].unique())), min_size=1, max_size=3, unique=True))
        )
        return f"{column} IN ({', '.join(repr(v) for v in values)})", isin(RAW[column], values)
    if kind == "like":
        digit = draw(st.sampled_from("123"))
        return f"center LIKE '%{digit}'", RAW.center.str.endswith(digit)
    if kind == "null":
        negate = draw(st.booleans())
        mask = RAW.ldl_mg_dl.isna().astype("boolean")
        return (f"ldl_mg_dl IS {'NOT ' if negate else ''}NULL", ~mask if negate else mask)
    codes = tuple(draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True)))
    return f"has_condition({', '.join(repr(c) for c in codes)})", has(codes)


def filters(depth: int = 2) -> st.SearchStrategy[tuple[str, pd.Series]]:
    if depth == 0:
        return atoms()

    @st.composite
    def combined(draw) -> tuple[str, pd.Series]:
        how = draw(st.sampled_from(["atom", "and", "or", "not"]))
        if how == "atom":
            return draw(atoms())
        left, lmask = draw(filters(depth - 1))
        lmask = lmask.astype("boolean")  # SQL's three-valued logic; pandas cannot mix Arrow and masked booleans
        if how == "not":
            return f"NOT ({left})", ~lmask
        right, rmask = draw(filters(depth - 1))
        rmask = rmask.astype("boolean")
        return (f"({left}) AND ({right})", lmask & rmask) if how == "and" else (f"({left}) OR ({right})", lmask | rmask)

    return combined()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters())
def test_random_filters_match_pandas(store, case: tuple[str, pd.Series]) -> None:
    check(store, *case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(HEADER_ORDER), min_size=1, max_size=30))
def test_random_id_lists(store, ids: list[str]) -> None:
    expected = np.array(sorted({HEADER_ORDER.index(i) for i in ids}), dtype=np.int64)
    np.testing.assert_array_equal(store.cohort(ids), expected)
    np.testing.assert_array_equal(store.cohort(np.array(ids)), expected)
    np.testing.assert_array_equal(store.cohort(expected[::-1].copy()), expected)


# --- errors ----------------------------------------------------------------

BAD = {
    "bad column": ("height > 180", "unknown column 'height'"),
    "syntax error": ("birth_year >", "syntax error"),
    "unbalanced": ("(birth_year > 1950", "syntax error"),
    "second statement": ("1; DROP TABLE variants", "syntax error"),
    "statement in parens": ("1) ; DROP TABLE variants; SELECT (1", "syntax error|single filter"),
    "subquery IN": ("sample_id IN (SELECT sample_id FROM samples)", "subqueries are not allowed"),
    "subquery EXISTS": ("EXISTS (SELECT 1 FROM variants)", "subqueries are not allowed"),
    "scalar subquery": ("birth_year < (SELECT max(pos) FROM variants)", "subqueries are not allowed"),
    "escape parens": ("1 = 1) OR EXISTS (SELECT 1", "subqueries are not allowed"),
    "union": ("birth_year = 1) UNION SELECT sample_index FROM samples WHERE (1 = 1", "single filter"),
    "table function": ("read_csv('x')", "function 'read_csv' is not allowed"),
    "file reader in comparison": ("birth_year = getvariable('x')", "function 'getvariable' is not allowed"),
    "aggregate": ("count(*) > 1", "is not allowed"),
    "window": ("row_number() OVER () = 1", "window functions"),
    "other table": ("variants.pos > 1", "names another table"),
    "qualified column": ("persons.birth_year > 1", "names another table"),
    "samples column": ("sample_index < 5", "unknown column 'sample_index'"),
    "schema function": ("main.lower(center) = 'x'", "not allowed"),
    "parameter": ("birth_year = $1", "single filter|parameters"),
    "star": ("* IS NULL", "not allowed"),
    "collate": ("center COLLATE nocase = 'CENTER1'", "COLLATE"),
    "list cast": ("birth_year::INT[] = [1]", "cast to 'list'"),
    "has_condition column": ("has_condition(center)", "quoted codes"),
    "has_condition empty": ("has_condition()", "at least one code"),
    "unknown event table": ("has_event('drug_exposure', 'X')", "no 'drug_exposure' events"),
    "type error": ("sex_at_birth > 5", "cannot be evaluated"),
    "matches no one": ("birth_year > 3000", "matches no sample"),
    "empty expression": ("   ", "empty cohort"),
    "a sample id": ("S000001", "unknown column 'S000001'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_expressions(store, name: str) -> None:
    expr, message = BAD[name]
    with pytest.raises(QueryError, match=message) as err:
        store.cohort(expr)
    assert "\n" not in str(err.value)
    assert store.variants().num_rows > 0  # the store still answers


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "empty cohort"),
        (
            ["S000001", "NOPE", "S000002", "ALSO_NOPE"],
            "2 sample ID\\(s\\) of the cohort are not in this store: NOPE, ALSO_NOPE",
        ),
        ([1, 2], "sample IDs must be text"),
        (np.array([], dtype=np.int64), "empty cohort"),
        (np.array([0, 120]), "out of range"),
        (np.array([-1]), "out of range"),
        (3.5, "a cohort is"),
    ],
)
def test_bad_id_lists(store, ids, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        store.cohort(ids)


def test_no_person_table(tmp_path: Path) -> None:
    with genoquery.ingest(tmp_path / "bare.gq", [VCF], progress=False) as bare:
        with pytest.raises(QueryError, match="no person table"):
            bare.cohort("birth_year > 1950")
        np.testing.assert_array_equal(bare.cohort(["S000002", "S000001"]), [0, 1])


def test_partial_person_table_and_unknown_persons(writable: Path, tmp_path: Path) -> None:
    """Samples without a person row never match; persons that are not samples are never returned."""
    part = pd.read_csv(PERSONS, sep="\t").iloc[::2]
    extra = pd.DataFrame({"sample_id": ["GHOST1", "GHOST2"], "sex_at_birth": "Female", "birth_year": 1940})
    frame = pd.concat([part, extra], ignore_index=True)
    frame.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    assert import_table(writable, tmp_path / "p.tsv").unknown_ids == ["GHOST1", "GHOST2"]
    frame = frame.convert_dtypes()
    with genoquery.open(writable) as s:
        for expr, mask in [
            ("birth_year < 1960", frame.birth_year < 1960),
            ("ldl_mg_dl IS NULL", frame.ldl_mg_dl.isna().astype("boolean")),
            ("has_condition('E11')", has(("E11",), frame)),
        ]:
            np.testing.assert_array_equal(s.cohort(expr), oracle_indexes(mask, frame), err_msg=expr)


# --- saved cohorts ---------------------------------------------------------


def test_save_list_reuse(writable: Path) -> None:
    with genoquery.open(writable) as s:
        assert s.cohorts().num_rows == 0
        women = s.save_cohort("older_women", "sex_at_birth = 'Female' AND birth_year < 1970")
        ids = s.save_cohort("few", ["S000010", "S000002"])
        np.testing.assert_array_equal(women, oracle_indexes((RAW.sex_at_birth == "Female") & (RAW.birth_year < 1970)))
        np.testing.assert_array_equal(s.cohort("older_women"), women)
        np.testing.assert_array_equal(s.cohort("few"), ids)
        np.testing.assert_array_equal(ids, [HEADER_ORDER.index("S000002"), HEADER_ORDER.index("S000010")])
        listed = s.cohorts().to_pylist()
        assert [(r["name"], r["kind"]) for r in listed] == [("few", "ids"), ("older_women", "filter")]
        assert listed[1]["definition"] == "sex_at_birth = 'Female' AND birth_year < 1970"
        s.save_cohort("few", "has_condition('E11')")  # replaces
        np.testing.assert_array_equal(s.cohort("few"), oracle_indexes(has(("E11",))))
        assert s.cohorts().num_rows == 2
        s.save_cohort("copy", "older_women")  # a saved name saves its definition
        assert s.cohorts().to_pylist()[0]["definition"] == listed[1]["definition"]
        assert s.variants().num_rows > 0  # reopened after the write
        if hasattr(s, "lookup"):  # helpers cached on the old connection are rebuilt
            assert s.lookup(region="chr20").num_rows == s.variants().num_rows


def test_saved_filter_follows_reimported_persons(writable: Path, tmp_path: Path) -> None:
    with genoquery.open(writable) as s:
        s.save_cohort("born_early", "birth_year < 1960")
    shifted = pd.read_csv(PERSONS, sep="\t").assign(birth_year=lambda f: f.birth_year - 10)
    shifted.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    import_table(writable, tmp_path / "p.tsv")
    with genoquery.open(writable) as s:
        np.testing.assert_array_equal(s.cohort("born_early"), oracle_indexes(RAW.birth_year - 10 < 1960))


@pytest.mark.parametrize(
    ("name", "cohort", "message"),
    [
        ("birth_year", "birth_year < 1960", "is a person-table column"),
        ("two words", "birth_year < 1960", "must be a word"),
        ("x;drop", "birth_year < 1960", "must be a word"),
        ("ok", "read_csv('x')", "not allowed"),
        ("ok", "birth_year > 3000", "matches no sample"),
        ("ok", [], "empty cohort"),
        ("ok", ["NOPE"], "not in this store"),
    ],
)
def test_save_errors_change_nothing(writable: Path, name: str, cohort, message: str) -> None:

    before = hashlib.sha256((writable / "index.duckdb").read_bytes()).hexdigest()
    with genoquery.open(writable) as s:
        with pytest.raises(QueryError, match=message):
            s.save_cohort(name, cohort)
        assert s.cohorts().num_rows == 0
    assert hashlib.sha256((writable / "index.duckdb").read_bytes()).hexdigest() == before


def test_save_with_another_open_store(writable: Path) -> None:
    """Saving replaces the index (copy, write, rename): another open Store keeps its snapshot."""
    with genoquery.open(writable) as s, genoquery.open(writable) as other:
        s.save_cohort("x", "birth_year < 1960")
        assert s.cohort("x").size == s.cohort("birth_year < 1960").size
        assert other.variants().num_rows
        assert "x" not in other.cohorts()["name"].to_pylist()


# --- command line ----------------------------------------------------------


def test_cli_save_list_show(writable: Path, tmp_path: Path, capsys) -> None:
    store = str(writable)
    assert main(["cohort", store, "save", "women", "sex_at_birth = 'Female'"]) == 0
    assert "saved cohort 'women'" in capsys.readouterr().err
    (tmp_path / "ids.txt").write_text("# my samples\nS000005\n\nS000001\n")
    assert main(["cohort", store, "save", "mine", f"@{tmp_path / 'ids.txt'}"]) == 0
    capsys.readouterr()
    assert main(["cohort", store, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["mine", "ids"], ["women", "filter"]]
    assert main(["cohort", store, "show", "women"]) == 0
    out = capsys.readouterr()
    expected = [HEADER_ORDER[i] for i in oracle_indexes(RAW.sex_at_birth == "Female")]
    assert out.out.split() == expected
    assert f"{len(expected)} samples" in out.err
    assert main(["cohort", store, "show", "mine"]) == 0
    assert capsys.readouterr().out.split() == ["S000001", "S000005"]
    assert main(["cohort", store, "show", "has_condition('J45') AND birth_year > 1980"]) == 0
    mask = has(("J45",)) & (RAW.birth_year > 1980)
    assert capsys.readouterr().out.split() == [HEADER_ORDER[i] for i in oracle_indexes(mask)]


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "1; DROP TABLE variants"],
        ["show", "sample_id IN (SELECT sample_id FROM samples)"],
        ["show", "read_csv('/etc/passwd') IS NULL"],
        ["show", "nope > 1"],
        ["show", "birth_year > 3000"],
        ["show", "@/nonexistent/ids.txt"],
        ["save", "birth_year", "birth_year > 1"],
        ["save", "x", "height > 1"],
    ],
)
def test_cli_errors_one_line_exit_2(writable: Path, argv: list[str], capsys) -> None:
    assert main(["cohort", str(writable), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genoquery: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_cli_subprocess_no_traceback(built: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "cohort", str(built), "show", "birth_year < (SELECT 1)"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr
    assert "subqueries are not allowed" in run.stderr
