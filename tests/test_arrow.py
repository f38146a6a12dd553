"""genoquery.arrow: NumPy arrays and strings to Arrow and back as pyarrow converts them, without pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.feather
import pytest

from genoquery.arrow import FEW_RUNS, FEW_TO_TAKE, from_numpy, from_rows, strings, take_rows, take_strings, to_numpy

VALUES = [
    np.arange(7, dtype=np.int8),
    np.arange(7, dtype=np.int64) * -3,
    np.linspace(0, 1, 7, dtype=np.float32),
    np.array([1, 0, 1, 1, 0, 0, 1, 1, 1, 0], dtype=bool),
    np.arange(20, dtype=np.int32)[::3],  # not contiguous
    np.zeros(0, dtype=np.int16),
    np.zeros(0, dtype=bool),
]


@pytest.mark.parametrize("values", VALUES, ids=lambda v: f"{v.dtype}[{len(v)}]")
def test_from_numpy_and_back_as_pyarrow(values):
    array = from_numpy(values)
    array.validate(full=True)
    assert array.equals(pa.array(values))
    assert np.array_equal(to_numpy(array), values)
    assert to_numpy(array).dtype == values.dtype
    if len(values) > 2:  # an offset into the buffers, and several chunks
        assert np.array_equal(to_numpy(array.slice(2)), values[2:])
        assert np.array_equal(to_numpy(pa.chunked_array([array.slice(1), array])), np.concatenate([values[1:], values]))


def test_nulls_from_a_mask_and_replaced_on_the_way_back():
    mask = np.array([False, True, False, False, True])
    array = from_numpy(np.arange(5, dtype=np.int64), mask)
    array.validate(full=True)
    assert array.equals(pa.array(np.arange(5), mask=mask))
    assert to_numpy(array, null=-1).tolist() == [0, -1, 2, 3, -1]
    assert to_numpy(array.slice(1), null=-1).tolist() == [-1, 2, 3, -1]
    with pytest.raises(ValueError, match="2 nulls"):
        to_numpy(array)


def test_to_numpy_is_a_new_writable_array():
    values = np.arange(4)
    out = to_numpy(from_numpy(values))
    out[0] = 9
    assert values[0] == 0
    assert to_numpy(pa.chunked_array([], pa.int16())).dtype == np.int16


@pytest.mark.parametrize("values", [["het", "hom_alt", ""], ["é", "S1", "ü-2"], []], ids=["ascii", "utf-8", "none"])
def test_strings_as_pyarrow(values):
    array = strings(values)
    array.validate(full=True)
    assert array.equals(pa.array(values, pa.string()))


def test_strings_with_nulls():
    array = strings(["a", "", "c"], np.array([False, True, False]))
    array.validate(full=True)
    assert array.to_pylist() == ["a", None, "c"]


TAKEN = [np.array([2, 0, 2, 3]), np.zeros(0, np.int64), np.arange(FEW_TO_TAKE + 1) % 4]


@pytest.mark.parametrize("indices", TAKEN, ids=["few", "none", "many"])
@pytest.mark.parametrize("offset", [0, 1], ids=["whole", "slice"])
def test_take_strings_as_pyarrow(indices, offset):
    array = strings(["S1", "é", "", "S333", "x"])[offset:]
    taken = take_strings(array, indices)
    taken.validate(full=True)
    assert taken.equals(array.take(pa.array(indices)))


ROWS = [np.array([1, 2, 3, 7, 8, 0]), np.zeros(0, np.int64), np.arange(2 * FEW_RUNS + 2, dtype=np.int64)[::2] % 9]


@pytest.mark.parametrize("indices", ROWS, ids=["runs", "none", "many-runs"])
def test_take_rows_as_pyarrow(indices):
    table = pa.table({"s": strings(list("abcdefghi")), "i": from_numpy(np.arange(9) * 3), "l": pa.array([[1]] * 9)})
    taken = take_rows(table, indices)
    taken.validate(full=True)
    assert taken.equals(table.take(pa.array(indices, pa.int64())))


def test_take_strings_of_nulls_as_pyarrow():
    array = strings(["a", "", "c"], np.array([False, True, False]))
    assert take_strings(array, np.array([1, 2])).equals(array.take(pa.array([1, 2])))


def test_rows_as_pyarrow_makes_them():
    schema = pa.schema([("key", pa.string()), ("pos", pa.int64()), ("allele", pa.int16()), ("qual", pa.float32())])
    rows = [("chr20-1-A-C", 1, 1, 30.5), (None, 2, 2, None), ("é", 3, 1, 0.1)]
    table = from_rows(rows, schema)
    table.validate(full=True)
    assert table.equals(pa.Table.from_struct_array(pa.array(rows, pa.struct(schema))))
    assert from_rows([], schema).equals(schema.empty_table())


def test_strings_refuse_what_is_not_text():
    with pytest.raises(TypeError):
        strings(["S1", 2])


def test_few_strings_and_rows_taken_without_pyarrow_compute():
    """In NumPy and slices (pyarrow.compute not imported, as in a new process): as ``Array.take``."""
    code = """
import sys
import numpy as np
import pyarrow as pa
from genoquery.arrow import strings, take_rows, take_strings
array = strings(["S1", "é", "", "S333", "x"])
for taken in (take_strings(array, np.array([3, 1, 2, 3, 0])), take_strings(array[1:], np.array([0, 3])),
              take_strings(array, np.zeros(0, np.int64))):
    taken.validate(full=True)
    print(taken.type, taken.to_pylist())
table = pa.table({"s": array, "i": array})
print(take_rows(table, np.array([3, 4, 0])).to_pydict())
print("pyarrow.compute" in sys.modules)
"""
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.splitlines() == [
        "string ['S333', 'é', '', 'S333', 'S1']",
        "string ['é', 'x']",
        "string []",
        "{'s': ['S333', 'x', 'S1'], 'i': ['S333', 'x', 'S1']}",
        "False",
    ]


def test_many_rows_gathered_in_numpy_as_table_take(tmp_path):
    """Rows in more runs than :data:`FEW_RUNS`, of string and number columns with nulls (a sliced
    table too), gathered in NumPy without importing pyarrow.compute: as ``Table.take``."""
    code = f"""
import sys
import numpy as np
import pyarrow as pa
import pyarrow.feather
from genoquery.arrow import from_numpy, strings, take_rows
n = 500
rng = np.random.default_rng(5)
null = rng.random(n) < 0.2
table = pa.table({{
    "s": strings([f"v{{i}}" * (i % 4) for i in range(n)], null),
    "i": from_numpy(np.arange(n, dtype=np.int64) * 3, null[::-1]),
    "f": from_numpy(np.linspace(0, 1, n).astype(np.float32), null),
    "a": from_numpy(np.arange(n, dtype=np.int16)),
}}).slice(7)
indices = rng.choice(len(table), size=300)
taken = take_rows(table, indices)
taken.validate(full=True)
print("pyarrow.compute" in sys.modules)
np.save("{tmp_path}/indices.npy", indices)
pa.feather.write_feather(table, "{tmp_path}/table.arrow")
pa.feather.write_feather(taken, "{tmp_path}/taken.arrow")
"""
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.splitlines() == ["False"]
    indices = np.load(tmp_path / "indices.npy")
    assert len(np.flatnonzero(np.diff(indices, prepend=-2) != 1)) > FEW_RUNS
    table, taken = (pa.feather.read_table(tmp_path / f) for f in ("table.arrow", "taken.arrow"))
    assert taken.equals(table.take(pa.array(indices)))


def test_no_conversion_imports_pandas():
    code = """
import sys
import numpy as np
import pyarrow as pa
from genoquery.arrow import from_numpy, from_rows, strings, to_numpy
to_numpy(from_numpy(np.arange(3), np.array([0, 1, 0], bool)), null=0)
to_numpy(from_numpy(np.ones(3, bool)))
strings(["a"]).dictionary_encode()
from_rows([("a", 1), (None, None)], pa.schema([("s", pa.string()), ("i", pa.int8())]))
print("pandas" in sys.modules)
"""
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
