"""The Dask client a command runs on: a scheduler's address, or a ``LocalCluster`` started here."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import import_module

from genoquery.errors import ClusterError

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 10


@contextmanager
def cluster_client(address: str | None = None, workers: int | None = None) -> Iterator[object | None]:
    """A ``distributed.Client`` of the scheduler at ``address`` (default: the environment's
    ``DASK_SCHEDULER_ADDRESS``), or of a ``LocalCluster`` of ``workers`` processes of one thread
    each, closed on exit (the cluster too, when started here); None when neither is given, for the
    single-process path. The dashboard's link is printed on standard error."""
    if workers is not None and workers < 1:
        raise ClusterError(f"--workers must be at least 1, not {workers}")
    if address is not None and workers is not None:
        raise ClusterError("give --cluster ADDRESS or --workers N, not both")
    address = address or (os.environ.get(ADDRESS_VARIABLE) if workers is None else None)
    if not address and workers is None:
        yield None
        return
    distributed = import_module("distributed")
    with ExitStack() as stack:
        try:
            if workers is not None:
                cluster = stack.enter_context(local_cluster(workers))
                client = stack.enter_context(distributed.Client(cluster))
            else:
                client = stack.enter_context(distributed.Client(address, timeout=CONNECT_TIMEOUT_S))
        except OSError as err:  # includes the timeouts of an unreachable scheduler
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        print(f"genoquery: Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        yield client


def local_cluster(workers: int, cores: int | None = None):
    """A ``distributed.LocalCluster`` of ``workers`` processes of one thread each, whose BLAS and
    OpenMP thread counts are this process's. Dask's nannies otherwise give each worker one
    (``OMP_NUM_THREADS=1``, ...), and the association's BLAS sums then add in another order than
    in this process: at 10^5 samples a third of a linear scan's betas differed, by up to 8e-11
    relative. With this process's settings the workers' answers are the same, bit for bit.

    With ``cores``, each worker is confined to that many of this process's cores (worker i to the
    i-th group of them, round robin; again when its nanny restarts it), and its thread pools
    (:func:`~genoquery.cores.usable_cores`: reads, counts) and numba's to as many threads, so that
    a cluster of n workers uses n groups of cores: the fair measure of scaling by workers."""
    dask = import_module("dask")
    environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    kept = {name: value for name, value in environ.items() if not name.endswith("_NUM_THREADS")}
    options = {}
    if cores is not None:
        kept["NUMBA_NUM_THREADS"] = str(cores)
        options["plugins"] = {import_module("genoquery.query.cluster.cores").OnCores(cores)}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": kept}):
        return import_module("distributed").LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", **options
        )
