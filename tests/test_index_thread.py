"""storage/index_thread.on_index_thread: an index query run beside the caller's work, on a cursor
of its own, in the caller's context (its deadline), waited for when the block is left."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from genoquery.deadline import check, deadline
from genoquery.errors import TimeLimitError
from genoquery.storage.index_thread import on_index_thread


@pytest.fixture
def con(tmp_path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "index.duckdb"))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    yield con
    con.close()


def test_the_query_runs_on_another_thread_on_a_cursor_of_its_own(con):
    seen = {}

    def query(cursor: duckdb.DuckDBPyConnection) -> int:
        seen["thread"], seen["cursor"] = threading.get_ident(), cursor
        return cursor.execute("SELECT sum(x) FROM t").fetchall()[0][0]

    with on_index_thread(con, query) as total:
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(1000,)]  # the caller's own queries meanwhile
    assert total.result() == sum(range(1000))
    assert seen["thread"] != threading.get_ident()
    assert seen["cursor"] is not con
    with pytest.raises(duckdb.ConnectionException):  # closed once the query was done
        seen["cursor"].execute("SELECT 1")


def test_leaving_the_block_waits_for_the_query_also_after_an_error(con):
    done = threading.Event()

    def slow(cursor: duckdb.DuckDBPyConnection) -> None:
        time.sleep(0.3)
        cursor.execute("SELECT 1")
        done.set()

    with pytest.raises(RuntimeError, match="the caller failed"), on_index_thread(con, slow):
        raise RuntimeError("the caller failed")
    assert done.is_set()  # the caller may close the connection now


def test_the_query_sees_the_callers_deadline(con):
    with deadline(0.01), on_index_thread(con, lambda cursor: (time.sleep(0.05), check())) as late:
        pass
    with pytest.raises(TimeLimitError):
        late.result()
    with on_index_thread(con, lambda cursor: (time.sleep(0.05), check())) as free:  # no deadline here
        pass
    assert free.result() == (None, None)
