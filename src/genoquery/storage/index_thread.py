"""Index queries run beside other work of the same answer (reads of calls, counting).

DuckDB releases the GIL while it runs a query, and Zarr's reads while they decode, so a query
whose inputs do not depend on the reads can run meanwhile: a region's variant columns while its
cohort is counted, a participant's sites and ancestry statistics while their calls are read.
One pool serves the process (a pool per answer started a thread each time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import copy_context
from typing import TypeVar

import duckdb

from genoquery.storage.schema import index_cursor

T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="genoquery-index")


@contextmanager
def on_index_thread(
    con: duckdb.DuckDBPyConnection, query: Callable[[duckdb.DuckDBPyConnection], T]
) -> Iterator[Future[T]]:
    """``query(cursor)`` run on the index thread pool, on a cursor of ``con`` of its own (see
    :func:`index_cursor`), in the caller's context (so :func:`genoquery.deadline.check` sees the
    request's deadline). The block gets its future; leaving the block waits for the query, also
    after an error, so the caller may close ``con`` once it has left."""
    future = _POOL.submit(copy_context().run, _on_cursor, con, query)
    try:
        yield future
    finally:
        wait([future])


def _on_cursor(con: duckdb.DuckDBPyConnection, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    cursor = index_cursor(con)
    try:
        return query(cursor)
    finally:
        cursor.close()
