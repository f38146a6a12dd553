"""Which index file a store holds: every commit replaces it by a rename (a new inode)."""

from __future__ import annotations

import os
from pathlib import Path

from genoquery.storage.format import INDEX_FILE


def index_stamp(store: Path) -> tuple[int, int, int]:
    """The inode, size and modification time of ``store``'s index file now."""
    info = os.stat(store / INDEX_FILE)
    return info.st_ino, info.st_size, info.st_mtime_ns
