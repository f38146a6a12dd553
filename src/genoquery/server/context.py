"""What every request needs: store connections, the caller, budgets, disclosure, cohorts."""

from __future__ import annotations

import queue
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import Request

import genoquery
from genoquery.errors import GenoqueryError
from genoquery.index.schema import INDEX_FILE
from genoquery.query.store import Store
from genoquery.server.auth import Authenticator, Principal, require
from genoquery.server.budget import Budget
from genoquery.server.disclosure import Disclosure, digest
from genoquery.server.problems import ApiError
from genoquery.server.settings import Settings
from genoquery.server.state import AccessDb


class StorePool:
    """``size`` read-only :class:`Store` objects (a DuckDB connection is one query at a time).
    DuckDB runs each query on one thread here: the requests are the parallelism (a key lookup
    costs 1.3 ms of CPU on one thread against 1.8 ms on two)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self._free: queue.Queue[tuple[Store, tuple]] = queue.Queue()
        for _ in range(size):
            self._free.put(self._open())

    def _open(self) -> tuple[Store, tuple]:
        stamp = self._stamp()
        store = genoquery.open(self.path)
        store.connection.execute("SET threads = 1")
        return store, stamp

    def _stamp(self) -> tuple:
        """The index file's identity: an append, withdrawal or compaction replaces it (a new inode)."""
        stat = (self.path / INDEX_FILE).stat()
        return stat.st_ino, stat.st_mtime_ns

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A store for one request, reopened first if the index was replaced since it was opened,
        so a withdrawal or an append shows in the next request (a request never sees a mix)."""
        s, stamp = self._free.get()
        if stamp != self._stamp():
            s.close()
            s, stamp = self._open()
        try:
            yield s
        finally:
            self._free.put((s, stamp))

    def close(self) -> None:
        while not self._free.empty():
            self._free.get()[0].close()


@dataclass
class Cohort:
    """A resolved cohort: its sample indexes (None: every sample) and membership digest."""

    indexes: np.ndarray | None
    digest: str


def _secret(db: AccessDb) -> bytes:
    con = db.con
    with con:
        con.execute("INSERT OR IGNORE INTO secrets VALUES ('rounding', ?)", [secrets.token_bytes(32)])
    return con.execute("SELECT value FROM secrets WHERE name = 'rounding'").fetchone()[0]


class Context:
    def __init__(self, path: Path, settings: Settings) -> None:
        self.path, self.settings = path, settings
        self.pool = StorePool(path, settings.pool)
        self.db = AccessDb(path)
        self.auth = Authenticator(self.db, settings.token_cache_s)
        self.budget = Budget(self.db, settings.budget, settings.budget_window_s)
        with self.pool.store() as s:
            self.info = dict(s.info, contigs=s.contigs)
            haploid = {r["contig"] for r in s.sql("SELECT DISTINCT contig FROM variants WHERE n_hemi > 0", []).to_pylist()}
            self.n_samples = len(s.active_samples)
        self.disclosure = Disclosure(settings, _secret(self.db), self.db, self.n_samples, haploid)
        self.everyone = self.disclosure.everyone

    def close(self) -> None:
        self.pool.close()

    # ------------------------------------------------------------------ cohorts

    def cohort(self, store: Store, principal: Principal, text: str | None) -> Cohort:
        """Resolve a ``cohort`` parameter for ``principal``: a cohort defined through the API by this
        token, a cohort saved in the store, or a filter expression; checked by disclosure control in
        the aggregate tiers (sample lists need the controlled tier)."""
        # Withdrawn samples are in no answer: Store.cohort leaves them out of filters and refuses
        # them in ID lists, whole-store statistics are recounted without them, and StorePool reopens
        # stores when a withdrawal replaced the index.
        if text is None:
            return Cohort(None, self.everyone)
        kind, definition = self.definition(store, principal, text)
        if kind == "ids":
            require(principal, "controlled", "a cohort given as sample IDs")
        indexes = store.cohort(definition)
        if principal.aggregate_only:
            return Cohort(indexes, self.disclosure.check_cohort(principal, indexes))
        return Cohort(indexes, digest(indexes))

    def definition(self, store: Store, principal: Principal, text: str):
        """``(kind, definition)``: the token's own cohort of that name, a saved one, or a filter."""
        import json

        row = self.db.con.execute("SELECT kind, definition FROM server_cohorts WHERE principal = ? AND name = ?",
                                  [principal.key, text]).fetchone()
        if row is None:
            saved = store.cohorts().to_pylist()
            row = next(((c["kind"], c["definition"]) for c in saved if c["name"] == text), None)
        if row is None:
            return "filter", text
        return row[0], (json.loads(row[1]) if row[0] == "ids" else row[1])

    def group_members(self, store: Store, column: str, within: np.ndarray | None) -> dict[str, np.ndarray]:
        """Sample indexes per value (as text) of a person-table column, within a cohort."""
        names = {c.lower(): c for c in store.persons().column_names}
        if column.lower() not in names:
            raise GenoqueryError(f"no person-table column {column!r}; columns: {', '.join(names.values())}")
        col = names[column.lower()].replace('"', '""')
        table = store.sql(f'SELECT CAST(p."{col}" AS VARCHAR) AS g, s.sample_index AS i FROM persons p '
                          "JOIN samples s ON s.sample_id = p.sample_id WHERE s.withdrawn_at IS NULL "
                          'AND p."' + col + '" IS NOT NULL', [])
        groups = np.asarray(table["g"].to_numpy(zero_copy_only=False), dtype=object)
        idx = table["i"].to_numpy()
        if within is not None:
            keep = np.isin(idx, within)
            groups, idx = groups[keep], idx[keep]
        return {g: np.sort(idx[groups == g]) for g in dict.fromkeys(groups.tolist())}


async def context(request: Request) -> Context:
    return request.app.state.context


async def caller(request: Request) -> Principal:
    """The caller from the Authorization header (401 for a wrong or revoked token); kept for the audit log.
    A coroutine, so FastAPI does not hand it to a thread (the token check is a cached SQLite read)."""
    client = request.client.host if request.client else "unknown"
    principal = request.app.state.context.auth.principal(request.headers.get("authorization"), client)
    request.state.principal = principal
    return principal


def rows_returned(request: Request, rows: int) -> None:
    request.state.rows = rows


def page_bounds(ctx: Context, offset: int, limit: int) -> tuple[int, int]:
    if limit > ctx.settings.max_page:
        raise ApiError(413, f"limit {limit} is over the page size of {ctx.settings.max_page}; page with offset")
    return offset, limit
