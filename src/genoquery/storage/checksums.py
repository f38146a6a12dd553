"""File checksums for provenance and the batch manifests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as hex, read 4 MiB at a time (``path`` may be an
    :class:`~genoquery.storage.objects.ObjectPath`)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(directory: Path) -> tuple[int, str]:
    """The total size in bytes of the files under ``directory``, and a sha256 over each file's
    path relative to it and its :func:`file_sha256`, in path order: one digest for a directory
    input (a VCF Zarr store) as :func:`file_sha256` is for a file."""
    digest, size = hashlib.sha256(), 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        size += path.stat().st_size
        digest.update(f"{path.relative_to(directory).as_posix()}\0{file_sha256(path)}\n".encode())
    return size, digest.hexdigest()
