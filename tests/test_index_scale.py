"""benchmarks/index_scale.py, the synthetic genome-scale index: the store it writes is what the
index's own code derives from its counts (every statistic adds up across groups, chrX males
hemizygous, lookups find its keys and rsIDs), and the append and withdrawal it times leave a
store whose statistics are those of the new counts."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

import genoquery
from genoquery.storage.format import INDEX_FILE

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import index_scale

SAMPLES = 2000


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "store.gq"
    index_scale.build(path, 3000, SAMPLES, seed=3)
    return path


def test_statistics_add_up(store: Path) -> None:
    n_variants, n_contigs = _sql(store, "SELECT count(*), count(DISTINCT contig) FROM variants")[0]
    assert 2900 <= n_variants <= 3100
    assert n_contigs == len(index_scale.CONTIGS)
    assert _sql(
        store,
        "SELECT count(*) FROM variants WHERE ac <> n_het + 2 * n_hom_alt + n_hemi OR an > ? OR ac > an",
        [2 * SAMPLES],
    ) == [(0,)]
    assert _sql(store, "SELECT count(*) FROM variants WHERE n_hemi > 0 AND contig <> 'chrX'") == [(0,)]
    assert _sql(store, "SELECT count(*) > 0 FROM variants WHERE n_hemi > 0") == [(True,)]
    groups = _sql(
        store,
        "SELECT grouping, count(*), count(*) FILTER (WHERE total_ac <> v.ac OR total_missing <> v.n_missing) FROM ("
        "  SELECT site_row, allele, grouping, sum(ac) AS total_ac, sum(n_missing) AS total_missing, count(*) AS n"
        "  FROM variant_group_stats GROUP BY ALL) g JOIN variants v USING (site_row, allele) "
        "WHERE g.n = CASE grouping WHEN 'ancestry' THEN 4 ELSE 2 END GROUP BY grouping ORDER BY grouping",
    )
    assert groups == [("ancestry", n_variants, 0), ("sex_at_birth", n_variants, 0)]
    male_het = _sql(
        store,
        "SELECT sum(g.n_het) FROM variant_group_stats g JOIN variants v USING (site_row, allele) "
        "WHERE v.contig = 'chrX' AND g.group_value = 'Male'",
    )
    assert male_het == [(0,)]


def test_lookups_find_its_keys_and_ids(store: Path) -> None:
    key, vid, ac = _sql(store, "SELECT variant_key, id, ac FROM variants WHERE id IS NOT NULL LIMIT 1")[0]
    opened = genoquery.open(store)
    try:
        assert opened.lookup(key)["ac"].to_pylist() == [ac]
        assert opened.lookup(vid)["variant_key"].to_pylist() == [key]
    finally:
        opened.close()


def _sql(store: Path, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{store / INDEX_FILE}' AS i (READ_ONLY)")
        con.execute("USE i")
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def test_append_and_withdrawal(tmp_path: Path) -> None:
    path = tmp_path / "store.gq"
    index_scale.build(path, 2000, SAMPLES, seed=4)
    sites = _sql(path, "SELECT count(*) FROM sites WHERE contig IN ('chr21', 'chr22')")[0][0]
    rng = np.random.default_rng(5)
    appended = index_scale.append(path, 300, 40, rng)
    assert appended.written > 0
    assert _sql(path, "SELECT count(*), sum(n_samples) FROM batches") == [(2, SAMPLES + 300)]
    # on each of chr21 and chr22: 20 existing sites and 20 new positions (a new one may meet an existing site)
    assert _sql(path, "SELECT count(*) FROM batch_sites WHERE batch = 1") == [(80,)]
    shared, total = _sql(
        path, "SELECT count(*) FILTER (WHERE n_batches = 2), count(*) FROM sites WHERE contig IN ('chr21', 'chr22')"
    )[0]
    assert shared >= 40
    assert total == sites + 80 - shared
    before = _sql(path, "SELECT sum(ac) FROM batch_allele_counts WHERE grouping = ''")[0][0]
    index_scale.withdraw(path, 10)
    assert _sql(path, "SELECT count(*) FROM samples WHERE withdrawn_at IS NOT NULL") == [(10,)]
    after, stored = _sql(
        path,
        "SELECT (SELECT sum(ac) FROM batch_allele_counts WHERE grouping = ''), (SELECT sum(ac) FROM variants)",
    )[0]
    assert after == stored
    assert after <= before


def test_a_change_reuses_the_derived_tables_blocks(tmp_path: Path) -> None:
    """Re-derived in place, the statistics' new tables took new blocks beside the old ones' and
    the index file kept both: 1.7x its size after one append at this size (1.6x at 10^6 alleles)."""
    path = tmp_path / "store.gq"
    index_scale.build(path, 20_000, SAMPLES, seed=6)
    built = (path / INDEX_FILE).stat().st_size
    index_scale.append(path, 200, 2000, np.random.default_rng(7))
    assert (path / INDEX_FILE).stat().st_size < 1.25 * built
