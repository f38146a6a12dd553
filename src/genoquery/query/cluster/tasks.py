"""One function per partition: run in this process, or on a Dask cluster's workers.

A task gets a :class:`~genoquery.query.store.Store` and one partition. On a cluster each worker
opens the store by its path itself, once per thread, and checks that its index file is the one
the client opened (:mod:`~genoquery.query.cluster.stamp`), so every partition answers from one
state of the store. Tasks that raise are retried (:data:`RETRIES`), and the scheduler reruns the
tasks of a worker that died; a task whose workers died three times (Dask's ``allowed-failures``)
or a lost scheduler is a :class:`~genoquery.errors.ClusterError`. An input problem
(:class:`~genoquery.errors.GenoqueryError`) is returned, not raised, so it is not retried, and the
client raises the first one in partition order. Results come back in partition order whatever
order they finish in; a tqdm bar on the client counts them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any

from tqdm import tqdm

from genoquery.errors import ClusterError, GenoqueryError
from genoquery.query.cluster.stamp import index_stamp
from genoquery.query.store import Store

RETRIES = 3
KEEP_OPENED = 4  # stores a worker thread keeps open (the latest it read)
_opened: dict[tuple, Store] = {}  # in a worker: (thread, target) -> the store it opened


@dataclass(frozen=True)
class Target:
    """What tasks read: the store at ``path`` whose index file is ``stamp``."""

    path: Path
    stamp: tuple[int, int, int]


@dataclass(frozen=True)
class _Failed:
    """A task's input problem, sent back as a value."""

    error: GenoqueryError


def run_partitions(
    client,
    task: Callable[..., Any],
    parts: Sequence,
    args: tuple,
    *,
    local: Store,
    target: Target,
    weights: Sequence[int],
    desc: str,
    unit: str,
    progress: bool,
) -> list:
    """``task(store, part, *args)`` for each of ``parts``, in order: on ``local`` in this process when
    ``client`` is None, else on the workers of ``client`` (a ``distributed.Client``), each on its own
    :class:`Store` of ``target``. The bar advances by a part's ``weights`` entry as it completes."""
    with tqdm(total=sum(weights), desc=desc, unit=unit, disable=not progress) as bar:
        if client is None:
            results = []
            for part, weight in zip(parts, weights, strict=True):
                results.append(task(local, part, *args))
                bar.update(weight)
            return results
        return _on_cluster(client, task, parts, args, target, weights, bar)


def _on_cluster(client, task, parts, args, target: Target, weights, bar: tqdm) -> list:
    return list(ordered_results(client, partial(_on_handle, target, task), parts, args, weights, bar))


def ordered_results(
    client,
    func: Callable[..., Any],
    parts: Sequence,
    args: tuple,
    weights: Sequence[int],
    bar: tqdm,
    what: str = "question",
) -> Iterator:
    """``func(part, *args)`` for each of ``parts`` on the workers of ``client``, yielded in the order
    of ``parts`` as each becomes ready (a result is released on the cluster once yielded); ``bar``
    advances by a part's ``weights`` entry as it completes, in any order. The first input problem in
    order is raised here; the cluster's failures are a :class:`ClusterError` (finishing ``what``)."""
    distributed = import_module("distributed")
    futures = [client.submit(_remote, func, part, *args, retries=RETRIES, pure=False) for part in parts]
    order = {future.key: i for i, future in enumerate(futures)}
    ready: dict[int, Any] = {}
    following = 0
    try:
        for future in distributed.as_completed(futures):
            i = order[future.key]
            ready[i] = future.result()
            futures[i] = None
            bar.update(weights[i])
            while following in ready:
                result = ready.pop(following)
                following += 1
                if isinstance(result, _Failed):
                    raise result.error
                yield result
    except (distributed.KilledWorker, CancelledError, OSError) as err:  # the cluster's failures, not genoquery's
        raise ClusterError(f"the Dask cluster could not finish the {what}: {type(err).__name__}: {err}") from None
    finally:
        client.cancel([future for future in futures if future is not None])


def _remote(func: Callable[..., Any], *args):
    """``func(*args)`` on a worker, its input problem returned (not retried) rather than raised."""
    try:
        return func(*args)
    except GenoqueryError as err:
        return _Failed(err)


def _on_handle(target: Target, task: Callable[..., Any], part, *args):
    """A scan's task on a worker: on the worker's own handle of ``target``."""
    return task(_handle(target), part, *args)


def _handle(target: Target) -> Store:
    """This worker thread's :class:`Store` of ``target``, opened on first use; an index that is no
    longer the client's is a :class:`ClusterError`."""
    key = (threading.get_ident(), target)
    if key not in _opened:
        _check_stamp(target)
        handle = Store(target.path)
        try:
            _check_stamp(target)
        except ClusterError:
            handle.close()
            raise
        mine = [k for k in _opened if k[0] == key[0]]
        for old in mine[: max(0, len(mine) - KEEP_OPENED + 1)]:
            _opened.pop(old).close()
        _opened[key] = handle
    return _opened[key]


def _check_stamp(target: Target) -> None:
    try:
        stamp = index_stamp(target.path)
    except OSError as err:
        raise ClusterError(
            f"{target.path}: a worker cannot read the store's index ({err}); "
            "workers must see the store at the client's path"
        ) from None
    if stamp != target.stamp:
        raise ClusterError(
            f"{target.path}: the store's index changed while the question ran (an append, withdrawal "
            "or import committed); ask again"
        )
