"""Atomic creation of a store: build beside the target, then rename into place.

A store is a directory with a ``genoquery.json`` marker. It is built in a
hidden sibling ``.NAME.staging-PID-TOKEN`` and renamed onto the target only
when complete, so an interrupted or failed ingest leaves the target exactly as
it was. A SIGKILLed ingest leaves only its staging directory, which the next
ingest to the same target removes once its process is gone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genoquery.errors import StoreError
from genoquery.storage.format import BATCHES, FORMAT_VERSION, LOCK, MARKER, UPGRADABLE_VERSIONS
from genoquery.storage.objects import cache_root, is_url, mirror, read_pointer, root, staged_remote

BATCH_NAME = re.compile(r"[^A-Za-z0-9_-]")


def check_batch_name(name: str) -> str:
    """``name`` if it can name a batch (letters, digits, ``_``, ``-``), else a :class:`StoreError`."""
    if not name or BATCH_NAME.search(name) or len(name) > 64:
        raise StoreError(f"batch name {name!r}: use 1 to 64 letters, digits, '_' or '-'")
    return name


def is_store(path: str | os.PathLike) -> bool:
    """Whether a store is at ``path`` (a directory, or a URL on object storage)."""
    if is_url(path):
        return read_pointer(root(path)) is not None
    return (Path(path) / MARKER).is_file()


def write_marker(path: Path, info: dict) -> None:
    (path / MARKER).write_text(json.dumps({"format_version": FORMAT_VERSION, **info}, indent=2))


def update_marker(path: Path, **changes) -> None:
    """Change entries of an existing store's marker, atomically (temp file, then rename)."""
    info = json.loads((path / MARKER).read_text())
    temporary = path / (MARKER + ".tmp")
    temporary.write_text(json.dumps({**info, **changes}, indent=2))
    os.replace(temporary, path / MARKER)


def read_marker(path: Path, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> dict:
    """The store's marker, or a :class:`StoreError` if its format is not one of ``versions``
    (saying how to upgrade it, where ``genoquery upgrade`` can)."""
    marker = json.loads((path / MARKER).read_text())
    found = marker.get("format_version")
    if found not in versions:
        fix = (
            f"upgrade it with `genoquery upgrade {path}`"
            if found in UPGRADABLE_VERSIONS
            else "ingest its VCFs again with this version"
        )
        raise StoreError(f"{path}: store format {found}, and this genoquery reads format {FORMAT_VERSION}; {fix}")
    return marker


def existing_store(path: str | os.PathLike, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> Path:
    """The absolute path of an existing store (after :func:`recover`) in one of the format
    ``versions``, or a :class:`StoreError`. A URL gives the store's local mirror, brought up to
    date (:func:`genoquery.storage.objects.mirror`)."""
    if is_url(path):
        local = mirror(path)
        read_marker(local, versions)
        return local
    path = Path(path).absolute()
    recover(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store; create one with 'genoquery ingest'")
    if not is_store(path):
        raise StoreError(f"{path}: not a genoquery store (no {MARKER})")
    read_marker(path, versions)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(target: Path) -> None:
    """Finish or undo a replacement that a killed process left half done.

    Between retiring the old store and renaming the new one into place the
    target is briefly absent; if a process died there, put the old store back.
    """
    if target.exists():
        return
    for retired in target.parent.glob(f".{target.name}.staging-*-old"):
        if is_store(retired):
            os.rename(retired, target)
            return


def _dead_writer(path: Path) -> bool:
    """Whether ``path`` (named ``...staging-PID-TOKEN...``) was left by a process that is gone."""
    try:
        pid = int(path.name.rsplit("staging-", 1)[1].split("-")[0])
    except (IndexError, ValueError):
        return False
    return not _pid_alive(pid)


@contextmanager
def write_lock(store: Path) -> Iterator[None]:
    """Hold the store's write lock (``STORE/.lock``): one append, withdrawal or import at a time."""
    with open(store / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"{store}: another genoquery process is writing to this store; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(store: Path, batch_paths: set[str]) -> None:
    """Under the write lock: remove what killed writers left in ``store``: staged index copies,
    staged batch directories, and batch directories that the index does not list (``batch_paths``)."""
    for leftover in [*store.glob(".*.staging-*"), *store.glob(f"{BATCHES}/.*.staging-*")]:
        if _dead_writer(leftover):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for directory in store.glob(f"{BATCHES}/[!.]*"):
        if directory.is_dir() and f"{BATCHES}/{directory.name}" not in batch_paths:
            shutil.rmtree(directory)


def staging_name(name: str) -> str:
    """A hidden sibling name for building ``name`` in this process: ``.NAME.staging-PID-TOKEN``."""
    return f".{name}.staging-{os.getpid()}-{secrets.token_hex(4)}"


def fsync_path(path: Path) -> None:
    """Make a file's bytes, or the renames inside a directory, durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(parent: Path, name: str) -> None:
    recover(parent / name)
    for leftover in parent.glob(f".{name}.staging-*"):
        if _dead_writer(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists():
        if not target.parent.is_dir():
            raise StoreError(f"{target}: parent directory {target.parent} does not exist; create it first")
        return
    if not is_store(target):
        raise StoreError(
            f"{target}: exists and is not a genoquery store; choose a new path (genoquery never overwrites other files)"
        )
    if not overwrite:
        raise StoreError(f"{target}: a store already exists here; pass --overwrite to replace it, or choose a new path")


@contextmanager
def staged_store(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh staging directory; on normal exit it replaces ``target`` atomically (on
    object storage: :func:`genoquery.storage.objects.staged_remote`)."""
    if is_url(target):
        parent = cache_root() / "staging"
        if parent.is_dir():
            _remove_stale(parent, "store")  # what killed ingests to object storage left here
        with staged_remote(target, overwrite, parent / staging_name("store")) as staging:
            yield staging
        return
    target = Path(target).absolute()
    _remove_stale(target.parent, target.name)
    _check_target(target, overwrite)
    staging = target.parent / staging_name(target.name)
    staging.mkdir()
    try:
        yield staging
        if not is_store(staging):
            raise RuntimeError("staging directory has no marker; the build did not finish")
        if target.exists():
            retired = target.parent / f"{staging.name}-old"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
        fsync_path(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
