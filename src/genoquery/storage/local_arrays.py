"""The arrays of a local Zarr v3 group, described from their metadata alone.

Importing zarr costs about as much as numpy, DuckDB and pyarrow together (0.15-0.2 s on a quiet
machine), most of a query command's cold start (issue 22). The query arrays of a local store are
read by :mod:`genoquery.storage.shard_reads` from their files, which needs only each array's
metadata: its ``zarr.json``, or the group's consolidated metadata. :class:`LocalArray` holds that
metadata; an array :mod:`~genoquery.storage.shard_reads` cannot read is read through zarr,
imported then.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from importlib import import_module
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LocalArray:
    """A Zarr v3 array in the local directory ``path``, with its ``metadata`` (its ``zarr.json``
    as a dict)."""

    path: Path
    metadata: dict

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.metadata["shape"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.metadata["data_type"])

    @property
    def fill_value(self) -> np.generic:
        return self.dtype.type(self.metadata["fill_value"])

    @property
    def attrs(self) -> dict:
        return self.metadata.get("attributes", {})

    def __getitem__(self, key):
        """``array[key]`` through zarr (imported here)."""
        return self._opened[key]

    @cached_property
    def _opened(self):
        return capped_zarr().open_array(str(self.path), mode="r")


def capped_zarr():
    """The zarr module, imported, its decoding pool capped at the core count unless the user
    configured it: its default (cores + 4 threads, each running multi-threaded Blosc) read 100 MB
    of missing calls in 306 ms on 2 cores, 2 threads in 84 ms."""
    zarr = import_module("zarr")
    if zarr.config.get("threading.max_workers") is None:
        zarr.config.set({"threading.max_workers": os.cpu_count() or 1})
    return zarr


def local_group(path: Path) -> dict[str, LocalArray]:
    """The arrays of the local Zarr v3 group at ``path``, by name: from the consolidated metadata
    of its ``zarr.json`` when it has some, else from each child's ``zarr.json``."""
    group = json.loads((path / "zarr.json").read_text())
    consolidated = (group.get("consolidated_metadata") or {}).get("metadata")
    if consolidated is None:
        children = (p for p in path.iterdir() if (p / "zarr.json").is_file())
        consolidated = {p.name: json.loads((p / "zarr.json").read_text()) for p in children}
    return {
        name: LocalArray(path / name, meta)
        for name, meta in consolidated.items()
        if "/" not in name and meta.get("node_type") == "array"
    }
