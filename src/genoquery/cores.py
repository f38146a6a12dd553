"""The CPU cores this process may run on, which size the engine's thread pools."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: ``--threads``, or a Dask worker
    confined to its cores, :func:`~genoquery.query.cluster.connect.local_cluster`), else all."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
