"""Disclosure.count_columns (many rows at once, the participant view) releases each row exactly
as Disclosure.counts (one row, the test tables) does: the same withheld cells (0..20, and a count
whose complement in its row is 0..20) and the same randomly rounded values under the same keys."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genoquery.server.disclosure import Disclosure
from genoquery.server.release import released_participant
from genoquery.server.settings import Settings

CELLS = ("ac", "an", "ancestry_ac", "ancestry_an")
# counts near the edges that matter: 0, 1..20, 21, multiples of the rounding, and large ones
COUNT = st.one_of(st.none(), st.integers(0, 45), st.integers(0, 10**6))


@st.composite
def rows(draw) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(0, 30))):
        row = {c: draw(COUNT) for c in CELLS}
        if draw(st.booleans()) and row["ac"] is not None:  # AN - AC (the REF copies) small
            row["an"] = row["ac"] + draw(st.integers(0, 25))
        out.append(row)
    return out


@pytest.mark.parametrize("rounding", [1, 10])
@settings(max_examples=60, deadline=None)
@given(table=rows())
def test_count_columns_equals_counts_row_by_row(rounding, table) -> None:
    disclosure = Disclosure(Settings(rounding=rounding), b"s" * 32, None, np.arange(100), 100, set())
    cells = {c: pa.array([r[c] for r in table], pa.int64()) for c in CELLS}
    released, hidden = disclosure.count_columns(cells, [f"row{i}|" for i in range(len(table))], {c: c for c in CELLS})
    for i, row in enumerate(table):
        want, withheld = disclosure.counts(row, CELLS, f"row{i}|")
        assert {c: released[c][i] for c in CELLS} == want
        assert {c for c in CELLS if hidden[c][i]} == withheld


def test_a_participants_counts_are_rounded_under_the_public_pages_keys() -> None:
    """The whole store's AC/AN as the public variant page rounds them (Disclosure.stat_row, no
    group), the ancestry group's as its ``by=ancestry`` row does: one rounding per count."""
    disclosure = Disclosure(Settings(), b"s" * 32, None, np.arange(10**4), 10**4, set())
    counts = [(123 + 7 * i, 20_001 + 3 * i, 41 + 2 * i, 4_005 + i) for i in range(40)]  # none a multiple of 10
    view = pa.table(
        {
            "variant_key": [f"chr1-{100 + i}-A-G" for i in range(40)],
            "ac": [c[0] for c in counts],
            "an": [c[1] for c in counts],
            "af": [c[0] / c[1] for c in counts],
            "ancestry": ["EUR"] * 40,
            "ancestry_af": [c[2] / c[3] for c in counts],
            "ancestry_ac": [c[2] for c in counts],
            "ancestry_an": [c[3] for c in counts],
        }
    )
    groups = {"EUR": np.arange(5_000), "SAS": np.arange(5_000, 5_049)}  # 49 < min_cohort (50)
    ctx = SimpleNamespace(
        disclosure=disclosure, everyone=disclosure.everyone, group_members=lambda store, by, within: groups
    )
    for row, (ac, an, g_ac, g_an) in zip(released_participant(ctx, None, view), counts, strict=True):
        whole = disclosure.stat_row({"variant_key": row["variant_key"], "ac": ac, "an": an}, ctx.everyone)
        group = disclosure.stat_row({"variant_key": row["variant_key"], "ac": g_ac, "an": g_an}, ctx.everyone, "EUR")
        assert (row["ac"], row["an"]) == (whole["ac"], whole["an"])
        assert (row["ancestry_ac"], row["ancestry_an"]) == (group["ac"], group["an"])
        assert row["af"] == row["ac"] / row["an"]
        assert row["suppressed"] == []
    small = view.set_column(view.column_names.index("ancestry"), "ancestry", pa.array(["SAS"] * 40))
    for row in released_participant(ctx, None, small):  # the group's AN would tell its size
        assert (row["ancestry_ac"], row["ancestry_an"], row["ancestry_af"]) == (None, None, None)
        assert row["suppressed"] == ["ancestry_ac", "ancestry_af", "ancestry_an"]
        assert row["ac"] is not None
