"""The server's access database ``STORE/access.sqlite``: tokens, budget use, cohort history.

It is SQLite, not a table of ``index.duckdb``, because DuckDB lets one process write a
database only while no other process has it open: a running server holds the index
read-only, and ``genoquery tokens create|revoke`` must work while it runs (a revoked
token must stop working at once). SQLite in WAL mode lets the CLI and every uvicorn
worker read and write it concurrently; each write is one transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from genoquery.storage.staging import existing_store

ACCESS_DB = "access.sqlite"
PRIVATE = 0o600
BUSY_SECONDS = 10.0
"""How long a connection waits for another's lock on the access database."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL, sample_id TEXT,
    secret_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS budget_spent (
    principal TEXT NOT NULL, slot INTEGER NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (principal, slot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cohort_history (
    principal TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL, members BLOB NOT NULL,
    PRIMARY KEY (principal, digest));
CREATE TABLE IF NOT EXISTS cohort_definitions (
    principal TEXT NOT NULL, definition TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (principal, definition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS server_cohorts (
    principal TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, definition TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (principal, name));
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


def connect(store: str | Path) -> sqlite3.Connection:
    """A connection to the store's access database (created on first use), autocommit off. The
    database, its ``-wal`` and ``-shm`` hold token hashes and the rounding secret: they are made
    mode 0600 (owner only), a new database before SQLite opens it (SQLite gives its ``-wal`` and
    ``-shm`` the database's mode), an existing one's files here."""
    path = existing_store(store) / ACCESS_DB
    if not path.exists():
        # Only a new file is opened here: closing any descriptor of a database that this process
        # has open drops SQLite's POSIX locks on it, and a connection of another thread then read
        # a stale snapshot (a revoked token stayed valid).
        with contextlib.suppress(FileExistsError):  # another thread or process made it meanwhile
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    con = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level="IMMEDIATE", check_same_thread=False)
    _write_ahead_log(con)
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(SCHEMA)
    for name in (ACCESS_DB, ACCESS_DB + "-wal", ACCESS_DB + "-shm"):
        _private(path.parent / name)
    return con


def _write_ahead_log(con: sqlite3.Connection) -> None:
    """Put the database in WAL mode. SQLite answers "database is locked" at once, without its busy
    handler, while another connection holds a lock during that switch (uvicorn workers starting
    together on a new store did, 19 in 150 trials of 8 processes): retried here for up to
    :data:`BUSY_SECONDS`."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _private(path: Path) -> None:
    """Make ``path`` (if it exists and is ours) readable and writable by its owner only."""
    try:
        if path.stat().st_mode & 0o777 != PRIVATE:
            path.chmod(PRIVATE)
    except (FileNotFoundError, PermissionError):
        pass  # not there (no -shm yet), or another user's file: the store's owner's business


class AccessDb:
    """One SQLite connection per thread on a store's access database."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self._local = threading.local()

    @property
    def con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = connect(self.store)
        return con
