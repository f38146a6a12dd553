"""Stores on object storage (``s3://bucket/prefix``; other fsspec URLs go the same way, untested):
paths, the commit pointer, and the local mirror of the index (docs/scale.md, "Object storage").

Object storage has no rename, so a store there is committed by one object written last, the
**pointer** ``genoquery.json`` (the marker of a local store, plus what the commit names)::

    genoquery.json                 {"format_version", "tool", "generation", "committed_at",
                                    "index": {"key", "size", "sha256"}, "lookup": [same, ...],
                                    "batches": ["batches/NAME", ...]}
    index/index-GEN-SHA.duckdb     the index of that commit (never overwritten)
    lookup/NAME.arrow, NAME.locus.npy   its lookup files (NAME is new for every rebuild)
    batches/NAME/genotypes.vcz/, batches/NAME/query.zarr/   as in a local store, never rewritten

A writer uploads every object the new commit names first (the new batch's group, the lookup
files, the index) and the pointer last, in one PUT, which object stores make atomic: a reader
that reads the pointer and then the immutable objects it names sees the old commit or the new
one. On S3 that PUT is conditional on the ETag of the pointer the writer started from
(:func:`guarded_pointer`), so a writer on another machine that committed meanwhile makes it fail.
A writer killed before the pointer leaves objects no pointer names; the next commit deletes them,
with the index and lookup objects of commits older than the previous one (a reader that has just
read the previous pointer can still fetch what it names).

Readers never query the index over the network (DuckDB's httpfs downloads an extension at run
time, which fails offline): :func:`mirror` keeps a local copy of the pointer, the index and the
lookup files under :func:`cache_root` (``GENOQUERY_CACHE``, default ``~/.cache/genoquery``),
checked against the pointer (size and sha256 after every download), and fetched again when the
pointer changes. The mirror is a store directory without batches: its marker holds the pointer
and the store's ``url``, where :func:`batch_root` finds the batches. The server's own state
(tokens, audit log) lives in the mirror too. Credentials and the endpoint come from fsspec
(for S3: the standard AWS variables, ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ..., or
fsspec's configuration). One writer at a time, as for a local store: the write lock is the
mirror's, so it holds off the writers of one machine, and the conditional PUT those of others.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib import import_module
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

from genoquery.errors import StoreError
from genoquery.storage.checksums import file_sha256
from genoquery.storage.format import BATCHES, INDEX_FILE, LOOKUP_DIR, MARKER
from genoquery.storage.schema import open_index

_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://(.+)$")
SYNC_LOCK = ".sync-lock"


def is_url(store: object) -> bool:
    """Whether ``store`` names a store on object storage (``s3://...``; not ``file://``)."""
    found = isinstance(store, str) and _URL.match(store)
    return bool(found) and found.group(1) not in ("file", "local")


@dataclass(frozen=True)
class ObjectPath:
    """A file or directory on an fsspec filesystem, with the pathlib operations the store's readers
    use (``/``, ``name``, ``open``, ``is_file``, ``stat().st_size``, ``rglob``, ``relative_to``:
    :func:`genoquery.verify.verify` and :func:`genoquery.storage.checksums.file_sha256`);
    ``str()`` is its URL."""

    fs: object = field(repr=False)
    path: str

    def __truediv__(self, name: str) -> ObjectPath:
        return ObjectPath(self.fs, f"{self.path.rstrip('/')}/{name}")

    def __str__(self) -> str:
        return self.fs.unstrip_protocol(self.path)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def open(self, mode: str = "rb"):
        return self.fs.open(self.path, mode)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def stat(self) -> SimpleNamespace:
        return SimpleNamespace(st_size=self.fs.size(self.path))

    def rglob(self, pattern: str) -> Iterator[ObjectPath]:
        for path in self.fs.find(self.path):
            if fnmatch(PurePosixPath(path).name, pattern):
                yield ObjectPath(self.fs, path)

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)


@contextmanager
def remote_errors(url: str) -> Iterator[None]:
    """Turn what the object store or its client raises into one-line :class:`StoreError`\\ s."""
    try:
        yield
    except FileNotFoundError as err:
        raise StoreError(f"{url}: not found ({err}); check the bucket and prefix") from None
    except PermissionError as err:
        raise StoreError(f"{url}: access denied ({err}); check the credentials' permissions") from None
    except Exception as err:
        name = type(err).__name__
        if name == "NoCredentialsError":
            raise StoreError(
                f"{url}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
                "or fsspec's configuration"
            ) from None
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or isinstance(
            err, (ConnectionError, TimeoutError)
        ):
            raise StoreError(f"{url}: cannot reach the object store ({err}); check AWS_ENDPOINT_URL") from None
        if isinstance(err, OSError) or type(err).__module__.startswith(("botocore", "aiobotocore")):
            raise StoreError(f"{url}: the object store refused the request ({err})") from None
        raise


def root(url: str) -> ObjectPath:
    """The store at ``url`` as an :class:`ObjectPath` on its fsspec filesystem."""
    try:
        fs, path = import_module("fsspec").url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise StoreError(f"{url}: not a store URL genoquery can open ({err})") from None
    return ObjectPath(fs, path.rstrip("/"))


def mirrored_url(store: Path) -> str | None:
    """The URL of the store that the directory ``store`` mirrors (:func:`mirror`), or None."""
    marker = store / MARKER
    return json.loads(marker.read_text()).get("url") if marker.is_file() else None


def batch_root(store: Path) -> Path | ObjectPath:
    """Where the batches of the store whose index is in ``store`` live: ``store`` itself, or for
    a mirror (:func:`mirror`) the object store it mirrors."""
    url = mirrored_url(store)
    return store if url is None else root(url)


def zarr_location(path: Path | ObjectPath):
    """What ``zarr.open_group`` opens for a group at ``path``: its path, or an fsspec store."""
    if isinstance(path, ObjectPath):
        return import_module("zarr.storage").FsspecStore.from_url(str(path), read_only=True)
    return str(path)


def cache_root() -> Path:
    """The local directory of mirrors and staged writes (``GENOQUERY_CACHE``, else the XDG cache)."""
    if "GENOQUERY_CACHE" in os.environ:
        return Path(os.environ["GENOQUERY_CACHE"]).absolute()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genoquery"


def mirror_path(url: str) -> Path:
    """The local mirror directory of the store at ``url``."""
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return cache_root() / "stores" / digest


def read_pointer(store: ObjectPath) -> dict | None:
    """The store's pointer (its committed state), or None where there is no store."""
    with remote_errors(str(store)):
        try:
            text = store.fs.cat_file((store / MARKER).path)
        except FileNotFoundError:
            if not store.fs.exists(store.path.split("/")[0]):
                raise
            return None
    try:
        return json.loads(text)
    except ValueError:
        raise StoreError(f"{store}: its {MARKER} is not a genoquery pointer (not JSON)") from None


def guarded_pointer(store: ObjectPath) -> tuple[dict | None, dict]:
    """The store's pointer, and the options that make the PUT of the next pointer conditional on
    it: on S3 ``If-Match`` its ETag (``If-None-Match: *`` where there is none), so that a writer on
    another machine that commits meanwhile makes this commit fail instead of being overwritten.
    The ETag is read first: a commit between the two reads shows in the pointer read second."""
    if "s3" not in tuple(store.fs.protocol):
        return read_pointer(store), {}
    with remote_errors(str(store)):
        try:
            etag = store.fs.info((store / MARKER).path, refresh=True)["ETag"]
        except FileNotFoundError:
            etag = None
    return read_pointer(store), {"IfMatch": etag} if etag else {"mode": "create"}


@contextmanager
def _sync_lock(local: Path) -> Iterator[None]:
    """One process at a time updates a mirror (blocking: readers wait for a download)."""
    try:
        local.mkdir(parents=True, exist_ok=True)
        handle = open(local / SYNC_LOCK, "a")
    except OSError as err:
        raise StoreError(
            f"{local}: cannot write the local mirror of a store on object storage ({err.strerror}); "
            "set GENOQUERY_CACHE to a writable directory"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mirror(url: str) -> Path:
    """The local mirror of the store at ``url`` (see the module docstring), brought up to its
    pointer: the index and lookup files are downloaded only when the pointer names others than
    the mirror holds, and each is checked against the pointer's size and sha256."""
    store = root(url)
    pointer = read_pointer(store)
    if pointer is None:
        raise StoreError(f"{url}: no such store (no {MARKER}); create one with 'genoquery ingest'")
    local = mirror_path(url)
    with _sync_lock(local):
        marker = local / MARKER
        held = json.loads(marker.read_text()) if marker.is_file() else {}
        index = local / INDEX_FILE
        if _pointer_of(held) != pointer or held.get("mirrored_index") != _stamp(index):
            with remote_errors(url):
                for entry in pointer["lookup"]:  # named by content: kept when already here
                    target = local / entry["key"]
                    if not (target.is_file() and target.stat().st_size == entry["size"]):
                        _download(store / entry["key"], target, entry)
                _download(store / pointer["index"]["key"], index, pointer["index"])
            _write_mirror_marker(local, pointer, url)
            _remove_other_lookup_files(local, pointer)
    return local


def _stamp(index: Path) -> list[int] | None:
    """The identity of the mirror's index file as checked against the pointer: a file replaced or
    written since (inode, size, mtime) is downloaded again, without hashing it at every open."""
    if not index.is_file():
        return None
    stat = index.stat()
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


def _pointer_of(marker: dict) -> dict:
    """The pointer a mirror's marker holds (without the mirror's own entries)."""
    return {k: v for k, v in marker.items() if k not in ("url", "mirrored_index")}


def _write_mirror_marker(local: Path, pointer: dict, url: str) -> None:
    """The mirror's marker: the pointer its index matches, the store's URL, the index's stamp."""
    stamp = {"url": url, "mirrored_index": _stamp(local / INDEX_FILE)}
    temporary = local / f".{MARKER}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps({**pointer, **stamp}, indent=2))
    os.replace(temporary, local / MARKER)


def _download(source: ObjectPath, target: Path, entry: dict) -> None:
    """Fetch ``source`` into ``target`` (a temporary name, checked, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        source.fs.get_file(source.path, str(partial))
        size, digest = partial.stat().st_size, file_sha256(partial)
        if (size, digest) != (entry["size"], entry["sha256"]):
            raise StoreError(
                f"{source}: {size} bytes with sha256 {digest[:12]}..., the pointer names {entry['size']} bytes "
                f"with {entry['sha256'][:12]}...; run `genoquery verify` on the store"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _remove_other_lookup_files(local: Path, pointer: dict) -> None:
    named = {PurePosixPath(e["key"]).name for e in pointer["lookup"]}
    directory = local / LOOKUP_DIR
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.name not in named:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- writing


def _entry(path: Path, key: str) -> dict:
    return {"key": key, "size": path.stat().st_size, "sha256": file_sha256(path)}


def publish(local: Path, index_file: Path, url: str, previous: tuple[dict | None, dict], info: dict) -> dict:
    """Commit the index ``index_file`` with the lookup files and batch directories of the local
    store directory ``local`` to the store at ``url``, whose pointer was ``previous`` (with its
    write condition, :func:`guarded_pointer`; None: a new store): upload what the new commit names
    and the old one does not, then write the pointer, then delete what neither the new pointer nor
    the previous one names. ``info`` goes into the pointer (the marker's fields). Returns the new
    pointer."""
    previous, condition = previous
    store = root(url)
    con = open_index(index_file)
    try:
        batches = [p for (p,) in con.execute("SELECT path FROM batches ORDER BY batch").fetchall()]
        lookup_name = import_module("genoquery.storage.lookup_table").lookup_table_name(con)
    finally:
        con.close()
    old = previous or {"generation": 0, "lookup": [], "index": None, "batches": []}
    generation = old["generation"] + 1
    index = _entry(index_file, "")
    index["key"] = f"index/index-{generation}-{index['sha256'][:16]}.duckdb"
    known = {e["key"]: e for e in old["lookup"]}
    lookup = [
        known.get(f"{LOOKUP_DIR}/{p.name}") or _entry(p, f"{LOOKUP_DIR}/{p.name}")
        for p in sorted((local / LOOKUP_DIR).glob(f"{lookup_name}.*"))
        if lookup_name is not None
    ]
    pointer = {
        **info,
        "generation": generation,
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "index": index,
        "lookup": lookup,
        "batches": batches,
    }
    with remote_errors(url):
        for path in batches:
            if path not in old["batches"]:
                _upload_tree(local / path, store / path)
        for entry in lookup:
            if entry["key"] not in known:
                store.fs.put_file(str(local / entry["key"]), (store / entry["key"]).path)
        store.fs.put_file(str(index_file), (store / index["key"]).path)
        try:
            store.fs.pipe_file((store / MARKER).path, json.dumps(pointer, indent=2).encode(), **condition)  # commit
        except OSError as err:
            if not _lost_race(err):
                raise
            raise StoreError(
                f"{url}: another writer committed while this one uploaded; nothing was committed, run the command again"
            ) from None
        _collect_garbage(store, pointer, old)
    return pointer


def _lost_race(err: OSError) -> bool:
    """Whether a conditional PUT failed because the pointer changed (or appeared) meanwhile."""
    code = getattr(err.__cause__, "response", {}).get("Error", {}).get("Code")
    return isinstance(err, FileExistsError) or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _upload_tree(directory: Path, target: ObjectPath) -> None:
    """Upload the files under ``directory`` to the same relative keys under ``target``, after
    deleting what is there (a killed writer's part of it: no pointer names it)."""
    if target.fs.exists(target.path):
        target.fs.rm(target.path, recursive=True)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    target.fs.put([str(p) for p in files], [(target / p.relative_to(directory).as_posix()).path for p in files])


def _collect_garbage(store: ObjectPath, pointer: dict, previous: dict) -> None:
    """Delete the objects that neither ``pointer`` nor ``previous`` names (killed writers' and
    replaced commits'), batches included."""
    named = {e["key"] for c in (pointer, previous) for e in [*c["lookup"], c["index"]] if e}
    groups = set(pointer["batches"]) | set(previous["batches"])
    found = [] if not store.fs.exists(store.path) else store.fs.find(store.path)
    stale = []
    for path in found:
        key = str(PurePosixPath(path).relative_to(store.path))
        top = key.split("/")[0]
        if top in ("index", LOOKUP_DIR) and key not in named:
            stale.append(path)
        elif top == BATCHES and "/".join(key.split("/")[:2]) not in groups:
            stale.append(path)
    if stale:
        store.fs.rm(stale)


@contextmanager
def staged_remote(url: str, overwrite: bool, staging: Path) -> Iterator[Path]:
    """Yield the local directory ``staging`` (made here) to build a new store in for ``url``; on
    normal exit it is published there (:func:`publish`). An existing store is replaced only with
    ``overwrite``; on error nothing there changes. ``staging`` is removed in any case."""
    previous, condition = guarded_pointer(root(url))
    if previous is not None and not overwrite:
        raise StoreError(f"{url}: a store already exists here; pass --overwrite to replace it, or choose a new path")
    staging.mkdir(parents=True)
    try:
        yield staging
        publish(staging, staging / INDEX_FILE, url, (previous, condition), json.loads((staging / MARKER).read_text()))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def commit_mirror(local: Path, index: Path) -> None:
    """Commit a change made in the mirror ``local`` (:func:`genoquery.storage.transaction.index_transaction`):
    ``index`` (the changed copy) and the lookup files and batch directories beside it are
    published to the mirrored store, then ``index`` becomes the mirror's index and the batch
    directories are removed (the mirror holds no batches)."""
    held = json.loads((local / MARKER).read_text())
    url = held["url"]
    current, condition = guarded_pointer(root(url))
    if current != _pointer_of(held):
        raise StoreError(f"{url}: another writer committed meanwhile; nothing was changed, run the command again")
    info = {k: held[k] for k in ("format_version", "tool") if k in held}
    pointer = publish(local, index, url, (current, condition), info)
    os.replace(index, local / INDEX_FILE)
    _write_mirror_marker(local, pointer, url)
    shutil.rmtree(local / BATCHES, ignore_errors=True)
