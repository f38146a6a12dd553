"""`genoquery phenotypes` / import_table: person and event tables into a store, checked against pandas."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import genoquery
from genoquery.cli import main
from genoquery.errors import GenoqueryError, InputFileError, StoreError
from genoquery.index import phenotypes
from genoquery.index.phenotypes import import_table

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
VCF = FIXTURES / "cohort.chr20.vcf.gz"
PERSONS = FIXTURES / "persons.tsv"
CONDITIONS = FIXTURES / "conditions.tsv"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A store ingested without a person table (so every import below is the first)."""
    path = tmp_path_factory.mktemp("pheno") / "s.gq"
    genoquery.ingest(path, [VCF], progress=False).close()
    return path


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built store for a test that writes to it."""
    shutil.copytree(built, tmp_path / "s.gq")
    return tmp_path / "s.gq"


def sha256(store: Path) -> str:
    return hashlib.sha256((store / "index.duckdb").read_bytes()).hexdigest()


def query(store: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(store / "index.duckdb"), read_only=True)
    try:
        return con.sql(sql).to_arrow_table().to_pandas()
    finally:
        con.close()


def tables(store: Path) -> set[str]:
    return set(query(store, "SELECT table_name FROM information_schema.tables")["table_name"])


def raw_persons() -> pd.DataFrame:
    return pd.read_csv(PERSONS, sep="\t")


def raw_conditions() -> pd.DataFrame:
    return pd.read_csv(CONDITIONS, sep="\t", dtype=str)


def assert_persons_equal(store: Path, expected: pd.DataFrame) -> None:
    got = query(store, "SELECT * FROM persons ORDER BY sample_id").reset_index(drop=True)
    expected = expected.sort_values("sample_id").reset_index(drop=True)
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        a, b = got[column].astype(object).where(got[column].notna(), None), expected[column]
        b = b.astype(object).where(b.notna(), None)
        assert a.tolist() == b.tolist(), column


# --- person tables ---------------------------------------------------------


def test_person_table_tsv(store: Path) -> None:
    result = import_table(store, PERSONS)
    assert (result.kind, result.table, result.rows, result.unknown_ids) == ("person", "persons", 120, [])
    assert_persons_equal(store, raw_persons())
    types = dict(
        query(
            store, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'persons'"
        ).values
    )
    assert types["birth_year"] in ("BIGINT", "INTEGER")
    assert types["pc1"] == "DOUBLE"
    assert types["ldl_mg_dl"] == "DOUBLE"
    assert types["sample_id"] == "VARCHAR"
    prov = query(store, "SELECT * FROM provenance WHERE kind = 'persons'")
    assert len(prov) == 1
    assert prov.sha256[0] == hashlib.sha256(PERSONS.read_bytes()).hexdigest()
    assert prov.records[0] == 120
    assert prov.samples[0] == 120


@pytest.mark.parametrize("fmt", ["csv", "parquet", "csv.gz"])
def test_person_table_formats_and_person_id(store: Path, tmp_path: Path, fmt: str) -> None:
    frame = raw_persons().rename(columns={"sample_id": "person_id"})
    path = tmp_path / f"people.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    result = import_table(store, path, kind="person")
    assert result.rows == 120
    assert not result.unknown_ids
    assert_persons_equal(store, raw_persons())


def test_reimport_replaces_person_table(store: Path, tmp_path: Path) -> None:
    import_table(store, PERSONS)
    smaller = raw_persons().iloc[:50].drop(columns=["pc3", "pc4"]).assign(bmi=22.5)
    smaller.to_csv(tmp_path / "p2.tsv", sep="\t", index=False)
    assert import_table(store, tmp_path / "p2.tsv").rows == 50
    assert_persons_equal(store, smaller)
    assert len(query(store, "SELECT * FROM provenance WHERE kind = 'persons'")) == 1


def test_unknown_ids_are_imported_and_reported(store: Path, tmp_path: Path, capsys) -> None:
    extra = pd.DataFrame({"sample_id": [f"X{i}" for i in range(7)], "sex_at_birth": "Female", "birth_year": 1950})
    frame = pd.concat([raw_persons(), extra], ignore_index=True)
    frame.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    result = import_table(store, tmp_path / "p.tsv")
    assert result.unknown_ids == [f"X{i}" for i in range(7)]
    assert query(store, "SELECT count(*) AS n FROM persons").n[0] == 127  # kept, not dropped
    assert main(["phenotypes", str(store), str(tmp_path / "p.tsv")]) == 0
    err = capsys.readouterr().err
    assert "7 ID(s) are not samples of this store" in err
    assert "X0, X1, X2, X3, X4, ..." in err


# --- event tables ----------------------------------------------------------


def test_event_table_detected(store: Path) -> None:
    result = import_table(store, CONDITIONS)
    assert (result.kind, result.table, result.rows, result.unknown_ids) == (
        "events",
        "condition_occurrence",
        len(raw_conditions()),
        [],
    )
    got = query(
        store, "SELECT table_name, sample_id, code, strftime(date, '%Y-%m-%d') AS date, value FROM events ORDER BY ALL"
    )
    raw = raw_conditions()
    expected = sorted(
        zip(["condition_occurrence"] * len(raw), raw.person_id, raw.condition_code, raw.condition_date, strict=True)
    )
    assert [tuple(r[:4]) for r in got.itertuples(index=False)] == expected
    assert got.value.isna().all()
    assert "persons" not in tables(store)


def test_event_values_other_tables_and_replacement(store: Path, tmp_path: Path) -> None:
    labs = pd.DataFrame(
        {
            "person_id": ["S000001", "S000002", "NOPE"],
            "measurement_code": ["LDL"] * 3,
            "measurement_date": ["2020-01-01", "2021-02-03", ""],
            "value": [120.5, None, 99],
            "unit": ["mg/dl"] * 3,
        }
    )
    labs.to_csv(tmp_path / "labs.csv", index=False)
    result = import_table(store, tmp_path / "labs.csv")
    assert (result.table, result.rows, result.unknown_ids, result.ignored_columns) == (
        "measurement",
        3,
        ["NOPE"],
        ["unit"],
    )
    import_table(store, CONDITIONS)
    import_table(store, CONDITIONS, table="conditions_v2")
    counts = dict(query(store, "SELECT table_name, count(*) FROM events GROUP BY 1").values)
    n = len(raw_conditions())
    assert counts == {"measurement": 3, "condition_occurrence": n, "conditions_v2": n}
    raw_conditions().iloc[:10].to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    import_table(store, tmp_path / "c.tsv")  # replaces condition_occurrence only
    counts = dict(query(store, "SELECT table_name, count(*) FROM events GROUP BY 1").values)
    assert counts == {"measurement": 3, "condition_occurrence": 10, "conditions_v2": n}
    values = query(
        store, "SELECT sample_id, value, date FROM events WHERE table_name = 'measurement' ORDER BY sample_id"
    )
    assert values.sample_id.tolist() == ["NOPE", "S000001", "S000002"]
    assert values.value[1] == 120.5
    assert pd.isna(values.value[2])
    assert pd.isna(values.date[0])


# --- failures leave the store as it was -----------------------------------


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    p = tmp_path
    (p / "noid.tsv").write_text("name\tbirth_year\nA\t1950\n")
    (p / "dup.tsv").write_text("sample_id\tbirth_year\nS000001\t1950\nS000001\t1951\n")
    (p / "nullid.csv").write_text("sample_id,birth_year\nS000001,1950\n,1951\n")
    (p / "baddate.tsv").write_text("person_id\tcondition_code\tcondition_date\nS000001\tE11\t2020-13-45\n")
    (p / "badvalue.csv").write_text("person_id,lab_code,lab_date,value\nS000001,X,2020-01-01,high\n")
    (p / "nocode.csv").write_text("person_id,condition_date\nS000001,2020-01-01\n")
    (p / "garbage.parquet").write_bytes(b"not parquet at all")
    return {
        "missing file": (p / "nope.tsv", {}),
        "no id column": (p / "noid.tsv", {}),
        "duplicate id": (p / "dup.tsv", {}),
        "empty id": (p / "nullid.csv", {}),
        "bad date": (p / "baddate.tsv", {}),
        "bad value": (p / "badvalue.csv", {}),
        "no code column": (p / "nocode.csv", {"kind": "events"}),
        "not parquet": (p / "garbage.parquet", {}),
        "events as person": (CONDITIONS, {"kind": "person"}),
        "unknown kind": (PERSONS, {"kind": "people"}),
        "table for person": (PERSONS, {"table": "x"}),
        "bad table name": (CONDITIONS, {"table": "drop table;"}),
    }


def test_failed_imports_change_nothing(store: Path, tmp_path: Path) -> None:
    import_table(store, PERSONS)
    import_table(store, CONDITIONS)
    before = sha256(store)
    for name, (path, kwargs) in bad_files(tmp_path).items():
        with pytest.raises(GenoqueryError) as err:
            import_table(store, path, **kwargs)
        assert "\n" not in str(err.value), name
        assert sha256(store) == before, name
    assert {p.name for p in store.iterdir()} == {"index.duckdb", "batches", "genoquery.json", "lookup", ".lock"}
    files = list((store / "lookup").iterdir())
    assert len({p.name.split(".")[0] for p in files}) == 1  # the committed index's files only
    assert {p.name.split(".", 1)[1] for p in files} == {
        "arrow",
        "locus.npy",
        "sites.arrow",
        "site_row.npy",
        "id_hash.npy",
        "id_row.npy",
    }


def test_failure_inside_the_transaction_rolls_back(store: Path, tmp_path: Path, monkeypatch) -> None:
    import_table(store, PERSONS)
    before = sha256(store)

    def fail(*args, **kwargs):
        raise duckdb.IOException("disk full (simulated)")

    monkeypatch.setattr(phenotypes, "_record_provenance", fail)  # after DROP/CREATE persons
    raw_persons().iloc[:5].to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    with pytest.raises(StoreError, match="nothing was changed"):
        import_table(store, tmp_path / "p.tsv")
    assert sha256(store) == before
    assert_persons_equal(store, raw_persons())


def test_import_while_the_store_is_open(store: Path) -> None:
    """An import replaces the index (copy, write, rename) as withdraw does: a Store open meanwhile
    keeps answering from the index it opened, and a Store opened after sees the import."""
    opened = genoquery.open(store)
    try:
        before = opened.variants().num_rows
        import_table(store, PERSONS)
        assert opened.variants().num_rows == before
    finally:
        opened.close()
    with genoquery.open(store) as after:
        assert after.persons().num_rows == len(pd.read_csv(PERSONS, sep="\t"))


def test_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        import_table(tmp_path / "nothing", PERSONS)


# --- command line ----------------------------------------------------------


def test_cli_errors_are_one_line_exit_2(store: Path, tmp_path: Path, capsys) -> None:
    before = sha256(store)
    for name, (path, kwargs) in bad_files(tmp_path).items():
        argv = ["phenotypes", str(store), str(path)]
        if "kind" in kwargs and kwargs["kind"] in ("person", "events"):
            argv += ["--kind", kwargs["kind"]]
        elif "kind" in kwargs:
            continue  # argparse rejects it itself
        if "table" in kwargs:
            argv += ["--table", kwargs["table"]]
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("genoquery: error: "), (name, err)
        assert err.count("\n") == 1, (name, err)
        assert sha256(store) == before


def test_cli_subprocess(store: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "phenotypes", str(store), str(CONDITIONS)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "157 rows" in run.stderr
    assert "condition_occurrence" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "genoquery", "phenotypes", str(store), str(CONDITIONS), "--kind", "person"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1
    assert "appears more than once" in run.stderr


def test_input_file_error_names_line(store: Path, tmp_path: Path) -> None:
    (tmp_path / "e.tsv").write_text(
        "person_id\tcondition_code\tcondition_date\nS000001\tE11\t2020-01-01\nS000002\tE11\tyesterday\n"
    )
    with pytest.raises(InputFileError, match=r"line 3.*'yesterday' is not a date"):
        import_table(store, tmp_path / "e.tsv")
