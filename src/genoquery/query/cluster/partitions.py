"""A store's regions cut into partitions where its variant chunks begin.

A partition is the sites of consecutive chunk rows of the batch with the most records (each batch
has its own rows; one set of cuts serves them all), never splitting a position: as many rows as
hold about :data:`PARTITION_CALLS` calls of all the store's samples, at least one. Cuts depend on
the store alone, not on the cluster, so a question has the same partitions whether they run in
one process or on any number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from genoquery.storage.regions import Region, parse_region

if TYPE_CHECKING:
    from genoquery.query.store import Store

# Calls a partition: 5,120 sites (20 chunk rows) of 10^5 samples, 512 (8 rows of 64) of 10^6. A
# partition's fixed costs (its index queries, the cohort's cells) were ~20 ms at 10^5 samples, beside
# ~14 ms of counting per 1,024 sites for a 10% cohort's frequencies.
PARTITION_CALLS = 1 << 29


@dataclass(frozen=True)
class Partition:
    """``region`` (``CONTIG:START-END``) holds the store's sites ``first_site`` .. ``last_site``
    (site rows, consecutive), ``sites`` of them."""

    region: str
    first_site: int
    last_site: int

    @property
    def sites(self) -> int:
        return self.last_site - self.first_site + 1


def partitions(store: Store, region: str | Sequence[str] | None = None, chunks: int | None = None) -> list[Partition]:
    """The partitions of ``region`` (a region, a list of them, or None: every contig), in genome
    order, of ``chunks`` chunk rows each (default: from :data:`PARTITION_CALLS`); a partition
    without a site is left out."""
    texts = store.contigs if region is None else store.regions(region)
    primary, rows = _chunking(store)
    if chunks is None:
        chunks = PARTITION_CALLS // (rows * max(store.info["samples"], 1))
    step = rows * max(chunks, 1)
    found = []
    for text in texts:
        r = parse_region(text, store.contigs)
        cuts = store.sql(
            "SELECT DISTINCT pos FROM batch_sites WHERE batch = ? AND batch_row % ? = 0 AND contig = ? "
            "AND pos > ? AND pos <= ? ORDER BY pos",
            [primary, step, r.contig, r.start, r.end],
        )["pos"].to_pylist()
        starts = [r.start, *cuts]
        spans = store.sql(
            "SELECT c.k, min(s.site_row) AS lo, max(s.site_row) AS hi FROM sites s ASOF JOIN cuts c "
            "ON s.pos >= c.start WHERE s.contig = ? AND s.pos BETWEEN ? AND ? GROUP BY c.k ORDER BY c.k",
            [r.contig, r.start, r.end],
            cuts=pa.table({"k": range(len(starts)), "start": starts}),
        ).to_pylist()
        ends = [*(c - 1 for c in cuts), r.end]
        found += [Partition(str(Region(r.contig, starts[s["k"]], ends[s["k"]])), s["lo"], s["hi"]) for s in spans]
    return found


def _chunking(store: Store) -> tuple[int, int]:
    """The number of the batch with the most records (the first of those) and the chunk length
    along ``variants`` of its ``call_genotype``."""
    rows = store.sql("SELECT batch FROM batch_sites GROUP BY batch ORDER BY count(*) DESC, batch LIMIT 1", [])
    if not rows.num_rows:
        return 0, 1
    number = rows["batch"][0].as_py()
    return number, next(b for b in store.batches if b.number == number).calls[0].chunks[0]
