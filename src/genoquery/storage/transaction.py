"""Writing a store's index: a copy changed under the store's write lock, then renamed over the
index in one step, so readers never see a half-written index. Appends, withdrawals, compaction and
upgrades use :func:`index_transaction`; phenotype and gene imports and saved cohorts
:func:`writable_index`, a DuckDB transaction on top of it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from genoquery.errors import StoreError
from genoquery.storage.format import INDEX_FILE
from genoquery.storage.lookup_table import remove_unused_lookup_tables
from genoquery.storage.objects import commit_mirror, mirrored_url
from genoquery.storage.staging import existing_store, fsync_path, staging_name, write_lock


@contextmanager
def index_transaction(store: Path) -> Iterator[Path]:
    """A copy of ``store``'s index to change (under :func:`write_lock`); when the block
    completes the copy replaces the index in one rename, the commit. Readers that opened
    the old index keep reading it; on any error the store is as it was. Then the lookup files
    the index does not name (the replaced index's, or this failed change's) are deleted. In the mirror
    of a store on object storage the commit is the upload and the new pointer
    (:func:`genoquery.storage.objects.commit_mirror`)."""
    copy = store / staging_name(INDEX_FILE)
    try:
        shutil.copyfile(store / INDEX_FILE, copy)
        yield copy
        if mirrored_url(store) is None:
            os.replace(copy, store / INDEX_FILE)
        else:
            commit_mirror(store, copy)
        fsync_path(store)
    finally:
        copy.unlink(missing_ok=True)
        remove_unused_lookup_tables(store)


@contextmanager
def writable_index(store: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a copy of the store's index inside one transaction, under the
    store's write lock; when the block completes the copy replaces the index in one rename
    (:func:`index_transaction`, as ``withdraw`` and ``ingest --batch`` do), so it works while a
    server or another reader has the index open, and on error the store is as it was. Then lookup
    files the index does not name are deleted."""
    path = existing_store(store)
    with write_lock(path), index_transaction(path) as copy, _transaction(path, copy) as con:
        yield con


@contextmanager
def _transaction(path: Path, index: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = duckdb.connect(str(index))
    except duckdb.Error as err:
        raise StoreError(f"{path}: cannot open a copy of the index for writing ({err})") from None
    try:
        con.begin()
        yield con
        con.commit()
        con.execute("CHECKPOINT")  # everything in the copy's file before it is renamed into place
    except BaseException as err:
        try:
            con.rollback()
        except duckdb.Error:
            pass  # the failed commit already ended the transaction
        if isinstance(err, duckdb.Error):
            raise StoreError(f"{path}: writing the index failed, nothing was changed ({err})") from None
        raise
    finally:
        con.close()
