"""Atomic creation of a store: build beside the target, then rename into place.

A store is a directory with a ``genoquery.json`` marker. It is built in a
hidden sibling ``.NAME.staging-PID-TOKEN`` and renamed onto the target only
when complete, so an interrupted or failed ingest leaves the target exactly as
it was. A SIGKILLed ingest leaves only its staging directory, which the next
ingest to the same target removes once its process is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genoquery.errors import StoreError

MARKER = "genoquery.json"
GENOTYPES = "genotypes.zarr"  # the Zarr group inside a store
FORMAT_VERSION = 1


def is_store(path: Path) -> bool:
    return (path / MARKER).is_file()


def write_marker(path: Path, info: dict) -> None:
    (path / MARKER).write_text(json.dumps({"format_version": FORMAT_VERSION, **info}, indent=2))


def update_marker(path: Path, **changes) -> None:
    """Change entries of an existing store's marker, atomically (temp file, then rename)."""
    info = json.loads((path / MARKER).read_text())
    temporary = path / (MARKER + ".tmp")
    temporary.write_text(json.dumps({**info, **changes}, indent=2))
    os.replace(temporary, path / MARKER)


def existing_store(path: str | os.PathLike) -> Path:
    """The absolute path of an existing store (after :func:`recover`), or a :class:`StoreError`."""
    path = Path(path).absolute()
    recover(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store; create one with 'genoquery ingest'")
    if not is_store(path):
        raise StoreError(f"{path}: not a genoquery store (no {MARKER})")
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


def _remove_stale(parent: Path, name: str) -> None:
    recover(parent / name)
    for leftover in parent.glob(f".{name}.staging-*"):
        try:
            pid = int(leftover.name.rsplit("staging-", 1)[1].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(leftover, ignore_errors=True)


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists():
        if not target.parent.is_dir():
            raise StoreError(f"{target}: parent directory {target.parent} does not exist; create it first")
        return
    if not is_store(target):
        raise StoreError(f"{target}: exists and is not a genoquery store; "
                         "choose a new path (genoquery never overwrites other files)")
    if not overwrite:
        raise StoreError(f"{target}: a store already exists here; "
                         "pass --overwrite to replace it, or choose a new path")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_store(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh staging directory; on normal exit it replaces ``target`` atomically."""
    target = Path(target).absolute()
    _remove_stale(target.parent, target.name)
    _check_target(target, overwrite)
    token = secrets.token_hex(4)
    staging = target.parent / f".{target.name}.staging-{os.getpid()}-{token}"
    staging.mkdir()
    try:
        yield staging
        if not is_store(staging):
            raise RuntimeError("staging directory has no marker; the build did not finish")
        if target.exists():
            retired = target.parent / f".{target.name}.staging-{os.getpid()}-{token}-old"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
