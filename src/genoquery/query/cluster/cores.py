"""Confining a LocalCluster's workers to their own cores (:func:`~genoquery.query.cluster.connect.local_cluster`)."""

from __future__ import annotations

import os

from distributed.diagnostics.plugin import WorkerPlugin


class OnCores(WorkerPlugin):
    """Confines a LocalCluster's worker (named 0, 1, ...) to its group of ``cores`` of the cores
    its process may use (worker i to the i-th group, round robin), before it runs a task."""

    name = "genoquery-cores"

    def __init__(self, cores: int) -> None:
        self.cores = cores

    def setup(self, worker) -> None:
        allowed = sorted(os.sched_getaffinity(0))
        first = int(worker.name) * self.cores
        os.sched_setaffinity(0, {allowed[(first + i) % len(allowed)] for i in range(self.cores)})
