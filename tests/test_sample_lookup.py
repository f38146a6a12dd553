"""Sample IDs found by hash (SampleIdIndex) and the cohort path that uses it: every known ID
maps to its store index, every other ID (a prefix, an extension, another spelling) to -1; what
the index does not find is asked of DuckDB, so a miss never loses a sample."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import checks
import genoquery
from genoquery.query.cohorts import indexes_of
from genoquery.query.sample_lookup import SampleIdIndex

ID = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(st.lists(ID, unique=True, min_size=1, max_size=60), st.lists(ID, max_size=20), st.randoms())
def test_each_id_maps_to_its_index_and_no_other(ids, others, rnd) -> None:
    index = SampleIdIndex(pa.array(ids, pa.string()))
    near = [i[:-1] for i in ids if len(i) > 1] + [i + "x" for i in ids[:5]] + [i.upper() for i in ids[:5]]
    asked = ids + others + near
    rnd.shuffle(asked)
    want = [ids.index(a) if a in ids else -1 for a in asked]
    assert index.find(pa.array(asked, pa.string())).tolist() == want


def test_sliced_and_chunked_arrays_are_read_at_their_offset() -> None:
    ids = [f"S{i:04d}" for i in range(50)]
    index = SampleIdIndex(pa.chunked_array([pa.array(ids[:20]), pa.array(ids[20:])]))
    asked = pa.array(["nope", *ids]).slice(11, 30)
    assert index.find(asked).tolist() == list(range(10, 40))
    assert SampleIdIndex(pa.array([], pa.string())).find(pa.array(["S0000"])).tolist() == [-1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("ids") / "s.gq"
    with genoquery.ingest(path, list(checks.FIXTURE_VCFS), progress=False) as s:
        yield s


def test_ids_the_index_misses_are_found_by_duckdb(store) -> None:
    """An index that lacks some IDs (as a hash collision would make it) still resolves them all."""
    ids = store.sample_id_array.to_pylist()
    partial = SampleIdIndex(pa.array([f"~{i}" if k % 2 else i for k, i in enumerate(ids)], pa.string()))
    asked = [*ids[::-1], "NOT_A_SAMPLE"]
    assert indexes_of(store.connection, asked, partial).tolist() == [*range(len(ids) - 1, -1, -1), -1]


def test_a_cohort_listed_again_resolves_alike(store) -> None:
    ids = np.asarray(store.sample_ids)
    chosen = list(ids[3::7][::-1])
    first = store.cohort(chosen)  # by DuckDB's join
    assert store._id_lists == 1
    assert "_sample_id_index" not in vars(store)
    again = store.cohort(chosen)  # by the hash index, built now
    assert "_sample_id_index" in vars(store)
    assert first.tolist() == again.tolist() == sorted(np.flatnonzero(np.isin(ids, chosen)).tolist())
    with pytest.raises(genoquery.QueryError, match="not in this store: NOPE"):
        store.cohort([*chosen, "NOPE"])
