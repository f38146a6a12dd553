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
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                    )
                )
                client = stack.enter_context(distributed.Client(cluster))
            else:
                client = stack.enter_context(distributed.Client(address, timeout=CONNECT_TIMEOUT_S))
        except OSError as err:  # includes the timeouts of an unreachable scheduler
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        print(f"genoquery: Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        yield client
