"""Withdrawing participants' consent: from then on no answer includes them.

``withdraw`` marks the samples in the index (``samples.withdrawn_at`` and
``withdrawn_reason``), recounts their batches without them and re-derives every
statistic, in one index transaction (:func:`~genoquery.storage.staging.index_transaction`):
afterwards the store's statistics equal those of a store ingested without them, and
queries leave them out of every cohort. Their genotypes stay in the batch's Zarr
group until ``compact`` rewrites it (:mod:`genoquery.ingest.compact`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from genoquery.errors import StoreError
from genoquery.index.merge import rebuild
from genoquery.index.persons import stored_persons
from genoquery.index.recount import recount_batch
from genoquery.query.cohorts import shown
from genoquery.storage.batches import read_batches
from genoquery.storage.staging import existing_store, remove_leftovers, write_lock
from genoquery.storage.transaction import index_transaction


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: the samples it withdrew and those withdrawn before."""

    withdrawn: list[str]
    already: list[str]


def withdraw(store: str | os.PathLike, sample_ids: Sequence[str], reason: str) -> Withdrawal:
    """Withdraw ``sample_ids`` from ``store`` for ``reason`` (recorded with the time)."""
    path = existing_store(store)
    ids = list(dict.fromkeys(sample_ids))
    if not ids:
        raise StoreError("no sample IDs to withdraw")
    if not reason or not reason.strip():
        raise StoreError("give the reason for the withdrawal (--reason); it is recorded with the time")
    with write_lock(path), index_transaction(path) as index:
        con = duckdb.connect(str(index))
        try:
            remove_leftovers(path, {p for (p,) in con.execute("SELECT path FROM batches").fetchall()})
            found = dict(
                con.execute(
                    "SELECT sample_id, withdrawn_at IS NOT NULL FROM samples WHERE sample_id IN (SELECT unnest(?))",
                    [ids],
                ).fetchall()
            )
            unknown = [i for i in ids if i not in found]
            if unknown:
                raise StoreError(
                    f"{len(unknown)} sample ID(s) are not in {path}: {shown(unknown)}; nothing was withdrawn"
                )
            new = [i for i in ids if not found[i]]
            if new:
                _mark(con, path, new, reason.strip())
                con.execute("CHECKPOINT")
        finally:
            con.close()
    return Withdrawal(new, [i for i in ids if found[i]])


def _mark(con: duckdb.DuckDBPyConnection, store: Path, ids: list[str], reason: str) -> None:
    """Mark ``ids`` withdrawn, recount their batches, re-derive the statistics, log it."""
    now = datetime.now(UTC)
    con.execute(
        "UPDATE samples SET withdrawn_at = ?, withdrawn_reason = ? WHERE sample_id IN (SELECT unnest(?))",
        [now, reason, ids],
    )
    affected = {
        b
        for (b,) in con.execute(
            "SELECT DISTINCT batch FROM samples WHERE sample_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
    }
    persons = stored_persons(con)
    for batch in read_batches(con, store):
        if batch.number in affected:
            recount_batch(con, batch, persons, groups_only=False)
    rebuild(con)
    con.execute("INSERT INTO store_log VALUES (?, 'withdraw', ?, ?)", [now, json.dumps(ids), reason])
