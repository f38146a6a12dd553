"""CallReader.blocks: any subset of a batch's sites, in blocks of any budget, with or without their
missing calls, reads back exactly the calls of those sites read all at once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import checks
from genoquery.storage.site_calls import SITE_COLUMNS, SiteCalls


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    with checks.ingest_fixture(tmp_path_factory.mktemp("reader") / "fixture.gq") as store:
        batch = store.batches[0]
        sites = store.sql(f"SELECT {SITE_COLUMNS} FROM batch_sites WHERE batch = ? ORDER BY batch_row", [batch.number])
        yield batch.reader, sites


def per_site(blocks: list[SiteCalls]) -> dict[int, tuple]:
    """Each site's listed samples and alleles, missing-call tokens and code row, by site_row."""
    out = {}
    for b in blocks:
        for i, row in enumerate(b.site_row.tolist()):
            code = b.codes[b.dense[i]].tobytes() if b.dense[i] >= 0 else None
            listed, missed = slice(b.listed[i], b.listed[i + 1]), slice(b.missing[i], b.missing[i + 1])
            out[row] = (
                b.listed_sample[listed].tolist(),
                b.listed_gt[listed].tolist(),
                b.missing_tokens[missed].tolist(),
                code,
            )
    return out


@pytest.mark.parametrize("every", [1, 3, 7])
@pytest.mark.parametrize("budget", [1 << 30, 4_000])
def test_subsets_of_sites_read_as_the_whole(batch, every, budget):
    reader, sites = batch
    whole = per_site(list(reader.blocks(sites, budget=1 << 30, missing=True)))
    for part in (0, 2, 3):  # listed calls, missing calls and dense codes are all read
        assert any(w[part] for w in whole.values()), part
    subset = sites.take(pa.array(np.arange(0, sites.num_rows, every)))
    with_missing = list(reader.blocks(subset, budget=budget, missing=True))
    assert per_site(with_missing) == {r: whole[r] for r in subset["site_row"].to_pylist()}
    without = list(reader.blocks(subset, budget=budget))
    assert all(len(b.missing_tokens) == 0 and not b.missing.any() for b in without)
    assert per_site(without) == {r: (*whole[r][:2], [], whole[r][3]) for r in subset["site_row"].to_pylist()}
