"""What every request needs: store connections, the caller, budgets, disclosure, cohorts."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import Request

from genoquery.errors import EmptyCohortError, GenoqueryError
from genoquery.query.cohorts import identifying_columns
from genoquery.query.store import Store
from genoquery.query.store import open as open_store
from genoquery.server.auth import Authenticator, Principal, Tier, require
from genoquery.server.budget import Budget
from genoquery.server.disclosure import Disclosure
from genoquery.server.problems import ApiError
from genoquery.server.settings import Settings
from genoquery.server.state import AccessDb
from genoquery.storage.format import INDEX_FILE
from genoquery.storage.objects import mirror, mirrored_url

_facts: ContextVar[Any] = ContextVar("genoquery_index_facts")
_leased: ContextVar[tuple] = ContextVar("genoquery_leased_index")  # the stamp of the store a request took
FOLLOW_S = 5.0  # how often a server of a store on object storage reads its pointer for commits made elsewhere
log = logging.getLogger("genoquery.server")


class IndexCache:
    """The ``size`` most recently used values computed on one index (``stamp``); values of
    another index are dropped when one of the current index is stored. Not thread-safe: callers lock."""

    def __init__(self, size: int) -> None:
        self.size, self.stamp, self.values = size, None, OrderedDict()

    def get(self, stamp: tuple, key: Hashable) -> Any:
        """The value for ``key`` on index ``stamp``, or :data:`MISSING`."""
        if stamp != self.stamp or key not in self.values:
            return MISSING
        self.values.move_to_end(key)
        return self.values[key]

    def put(self, stamp: tuple, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        if stamp != self.stamp:
            self.values.clear()
            self.stamp = stamp
        self.values[key] = value
        if len(self.values) > self.size:
            self.values.popitem(last=False)


MISSING = object()


class StorePool:
    """``size`` read-only :class:`Store` objects (a DuckDB connection is one query at a time).
    DuckDB runs each query on one thread here: the requests are the parallelism (a key lookup
    costs 1.3 ms of CPU on one thread against 1.8 ms on two). ``facts_of(store)`` is computed
    once per index and is :meth:`facts` for the request that took the store; :meth:`answer`
    keeps the ``cache_size`` most recently used answers of the current index, :meth:`remember`
    the ``memo_size`` most recently used values (cohorts' members) of the index a request reads."""

    def __init__(
        self, path: Path, size: int, facts_of: Callable[[Store], Any], cache_size: int = 0, memo_size: int = 0
    ) -> None:
        self.path, self.size, self._facts_of = path, size, facts_of
        self._url, self._followed = mirrored_url(path), time.monotonic()  # a store on object storage
        self._facts: dict[tuple, Any] = {}  # of the newest indexes, by stamp
        self._free: queue.Queue[tuple[Store, tuple]] = queue.Queue()
        self._lock, self._reopening = threading.Lock(), threading.Lock()
        for _ in range(size):
            entry = self._open()
            if not self._facts:  # at start, so a broken index shows at once
                self._facts_for(*entry)
            self._free.put(entry)
        self._answers, self._memos = IndexCache(cache_size), IndexCache(memo_size)

    def _open(self) -> tuple[Store, tuple]:
        stamp = self._stamp()
        store = open_store(self.path)
        store.connection.execute("SET threads = 1")
        return store, stamp

    def _stamp(self) -> tuple:
        """The index file's identity: an append, withdrawal or compaction replaces it (a new inode).
        The mirror of a store on object storage is first brought up to the store's pointer, at most
        every :data:`FOLLOW_S` seconds, so that commits made on other machines are served too."""
        if self._url is not None and time.monotonic() - self._followed > FOLLOW_S:
            self._followed = time.monotonic()
            try:
                mirror(self._url)
            except GenoqueryError as err:  # the object store is out of reach: keep serving what is mirrored
                log.warning("%s", err)
        stat = (self.path / INDEX_FILE).stat()
        return stat.st_ino, stat.st_mtime_ns

    @contextmanager
    def _lease(self) -> Iterator[tuple[Store, tuple]]:
        s, stamp = self._free.get()
        if stamp != self._stamp():
            self._free.put((s, stamp))
            self._reopen()
            s, stamp = self._free.get()
        try:
            _facts.set(self._facts_for(s, stamp))
            _leased.set(stamp)
            yield s, stamp
        finally:
            self._free.put((s, stamp))

    def _reopen(self) -> None:
        """Reopen every store on the index that replaced theirs, waiting for those in use, so requests
        that start after the swap never read the replaced index."""
        with self._reopening:
            stores = [self._free.get() for _ in range(self.size)]
            try:
                if any(stamp != self._stamp() for _, stamp in stores):
                    for s, _ in stores:
                        s.close()
                    stores = [self._open() for _ in range(self.size)]
            finally:
                for entry in stores:
                    self._free.put(entry)

    def _facts_for(self, store: Store, stamp: tuple) -> Any:
        """``facts_of`` of the index ``stamp`` (computed with ``store`` the first time)."""
        with self._lock:
            if stamp in self._facts:
                return self._facts[stamp]
        facts = self._facts_of(store)
        with self._lock:
            self._facts[stamp] = facts
            while len(self._facts) > 2:  # a request still on the index before the newest may need its facts
                del self._facts[next(iter(self._facts))]
        return facts

    def facts(self) -> Any:
        """``facts_of`` of the index of the store this request took (of the current index if it took none),
        so one request never mixes two indexes."""
        facts = _facts.get(None)
        if facts is None:
            with self.store():
                facts = _facts.get()
        return facts

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A store for one request, reopened first if the index was replaced since it was opened,
        so a withdrawal or an append shows in the next request (a request never sees a mix: take
        one store per request)."""
        with self._lease() as (s, _):
            yield s

    def answer(self, key: Hashable, compute: Callable[[Store], Any]) -> Any:
        """``compute(store)``, or the value it gave for ``key`` on the current index. The cache is
        emptied when the index is replaced, so no answer outlives an append or a withdrawal."""
        stamp = self._stamp()
        with self._lock:
            value = self._answers.get(stamp, key)
        if value is not MISSING:
            return value
        with self._lease() as (s, used):
            value = compute(s)
        self._keep(self._answers, used, key, value)
        return value

    def remember(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` for ``key`` on the index of the store this request took, or the value it
        gave before on that index."""
        stamp = _leased.get()
        with self._lock:
            value = self._memos.get(stamp, key)
        if value is MISSING:
            value = compute()
            self._keep(self._memos, stamp, key, value)
        return value

    def _keep(self, cache: IndexCache, stamp: tuple, key: Hashable, value: Any) -> None:
        """Keep a value computed on index ``stamp`` if that is still the current index."""
        if stamp == self._stamp():
            with self._lock:
                cache.put(stamp, key, value)

    def close(self) -> None:
        while not self._free.empty():
            self._free.get()[0].close()


@dataclass
class Cohort:
    """A resolved cohort: its sample indexes (None: every sample) and, below the controlled tier,
    its membership digest (the rounding key of its counts)."""

    indexes: np.ndarray | None
    digest: str | None


def _secret(db: AccessDb) -> bytes:
    con = db.con
    with con:
        con.execute("INSERT OR IGNORE INTO secrets VALUES ('rounding', ?)", [secrets.token_bytes(32)])
    return con.execute("SELECT value FROM secrets WHERE name = 'rounding'").fetchone()[0]


MAX_GROUPS = 32
"""A ``by`` breakdown below the controlled tier needs a column with at most this many values."""
PARTICIPANT_ONLY = "a participant token sees only its own data: /api/v1/me"


@dataclass(frozen=True)
class IndexFacts:
    """What answers need to know of one index (an append or a withdrawal replaces it): ``info``
    (``Store.info`` with the contigs), the samples not withdrawn, disclosure control over them,
    the person-table columns that identify participants (never in a filter below the controlled
    tier) and those a breakdown may use there (text or yes/no columns of at most
    :data:`MAX_GROUPS` values; a numeric column would name one person's value per group)."""

    info: dict
    n_samples: int
    disclosure: Disclosure
    identifying: tuple[str, ...]
    groupable: frozenset[str]


def _groupable(store: Store, identifying: tuple[str, ...]) -> frozenset[str]:
    persons = store.persons()
    hidden = {c.lower() for c in identifying}
    out = set()
    for column in persons.schema:
        name = column.name
        if name.lower() in hidden:
            continue
        if not (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_boolean(column.type)
        ):
            continue
        if pc.count_distinct(persons[name]).as_py() <= MAX_GROUPS:
            out.add(name.lower())
    return frozenset(out)


class Context:
    def __init__(self, path: Path, settings: Settings) -> None:
        self.path, self.settings = path, settings
        self.db = AccessDb(path)
        self._secret = _secret(self.db)
        self.pool = StorePool(path, settings.pool, self._facts_of, settings.lookup_cache, settings.cohort_cache)
        self.auth = Authenticator(self.db, settings.token_cache_s)
        self.budget = Budget(self.db, settings.budget, settings.budget_window_s)

    def _facts_of(self, store: Store) -> IndexFacts:
        haploid = {
            r["contig"] for r in store.sql("SELECT DISTINCT contig FROM variants WHERE n_hemi > 0", []).to_pylist()
        }
        active = store.active_samples
        disclosure = Disclosure(self.settings, self._secret, self.db, active, len(store.sample_ids), haploid)
        identifying = tuple(identifying_columns(store.connection))
        return IndexFacts(
            dict(store.info, contigs=store.contigs),
            len(active),
            disclosure,
            identifying,
            _groupable(store, identifying),
        )

    @property
    def info(self) -> dict:
        return self.pool.facts().info

    @property
    def n_samples(self) -> int:
        """Samples not withdrawn (of the index this request reads)."""
        return self.pool.facts().n_samples

    @property
    def disclosure(self) -> Disclosure:
        return self.pool.facts().disclosure

    @property
    def everyone(self) -> str:
        """The membership digest of the whole store."""
        return self.pool.facts().disclosure.everyone

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
        if principal.tier == Tier.PARTICIPANT:
            raise ApiError(403, PARTICIPANT_ONLY)
        if text is None:
            return Cohort(None, self.everyone)
        kind, definition = self.definition(store, principal, text)
        if kind == "ids":
            require(principal, Tier.CONTROLLED, "a cohort given as sample IDs")
        if not principal.aggregate_only:
            return Cohort(self._members(store, kind, definition, ()), None)
        # below the controlled tier: identifiers are not filter columns, and an empty cohort (or one
        # whose filter fails on the values it meets) is refused exactly like a small one
        try:
            indexes = self._members(store, kind, definition, self.pool.facts().identifying)
        except EmptyCohortError:
            raise ApiError(403, self.disclosure.refusal) from None
        return Cohort(indexes, self.disclosure.check_cohort(principal, indexes, f"{kind}:{definition}"))

    def _members(self, store: Store, kind: str, definition, forbidden: tuple[str, ...]) -> np.ndarray:
        """A cohort's sample indexes; a filter's members are remembered per index (researchers
        reuse cohorts), keyed by the columns it was checked against."""
        if kind != "filter":
            return store.cohort(definition)
        return self.pool.remember(
            ("filter", definition, forbidden),
            lambda: _frozen(store.cohort(definition, forbidden_columns=forbidden)),
        )

    def check_grouping(self, store: Store, principal: Principal, by: str | None) -> None:
        """Refuse (400) a breakdown column below the controlled tier that is numeric, identifying,
        or has more than :data:`MAX_GROUPS` values: its groups would be one person each."""
        if by is None or not principal.aggregate_only:
            return
        if by.lower() not in self.pool.facts().groupable:
            allowed = ", ".join(sorted(self.pool.facts().groupable)) or "none"
            raise ApiError(
                400,
                f"'by={by}' is not a breakdown column below the controlled tier: breakdowns need a text or "
                f"yes/no person-table column of at most {MAX_GROUPS} values that does not identify people "
                f"(this store: {allowed})",
            )

    def definition(self, store: Store, principal: Principal, text: str):
        """``(kind, definition)``: the token's own cohort of that name, a saved one, or a filter."""
        row = self.db.con.execute(
            "SELECT kind, definition FROM server_cohorts WHERE principal = ? AND name = ?", [principal.key, text]
        ).fetchone()
        if row is None:
            saved = store.cohorts().to_pylist()
            row = next(((c["kind"], c["definition"]) for c in saved if c["name"] == text), None)
        if row is None:
            return "filter", text
        return row[0], (json.loads(row[1]) if row[0] == "ids" else row[1])

    def group_members(self, store: Store, column: str, within: np.ndarray | None) -> dict[str, np.ndarray]:
        """Sample indexes per value (as text) of a person-table column, within a cohort (the
        groups with a member there)."""
        # read and grouped once per index (at every request it cost a breakdown 60-90 ms at 10^5)
        groups = self.pool.remember(("groups", column.lower()), lambda: _whole_store_groups(store, column))
        if within is None:
            return groups
        kept = {g: members[np.isin(members, within)] for g, members in groups.items()}
        return {g: members for g, members in kept.items() if len(members)}


def _whole_store_groups(store: Store, column: str) -> dict[str, np.ndarray]:
    """Sample indexes (sorted, read-only) per value of a person-table column, samples not withdrawn."""
    names = {c.lower(): c for c in store.persons().column_names}
    if column.lower() not in names:
        raise GenoqueryError(f"no person-table column {column!r}; columns: {', '.join(names.values())}")
    col = names[column.lower()].replace('"', '""')
    table = store.sql(
        f'SELECT CAST(p."{col}" AS VARCHAR) AS g, s.sample_index AS i FROM persons p '
        "JOIN samples s ON s.sample_id = p.sample_id WHERE s.withdrawn_at IS NULL "
        'AND p."' + col + '" IS NOT NULL',
        [],
    )
    groups = np.asarray(table["g"].to_numpy(zero_copy_only=False), dtype=object)
    idx = table["i"].to_numpy()
    return {g: _frozen(np.sort(idx[groups == g])) for g in dict.fromkeys(groups.tolist())}


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # shared by the requests that ask for the same cohort
    return array


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


def comma_separated(text: str | None) -> list[str]:
    """The items of a comma-separated query parameter, stripped (none for None or blanks)."""
    return [] if text is None else [t.strip() for t in text.split(",") if t.strip()]


def page_bounds(ctx: Context, offset: int, limit: int) -> tuple[int, int]:
    if limit > ctx.settings.max_page:
        raise ApiError(413, f"limit {limit} is over the page size of {ctx.settings.max_page}; page with offset")
    return offset, limit
