"""Scans on a Dask LocalCluster beside the single process, on one store (issue 21).

    python benchmarks/dask_scans.py /tmp/gq23/s1e5.gq --region chr20 --phenotype ldl_mg_dl --repeat 5

Times ``Store.frequencies`` of a random 10% cohort (sample IDs, as ``scale.py`` draws them) over
``--region`` and, with ``--phenotype``, the linear association of that column, in this process
and on LocalClusters of 1 and 2 worker processes (one thread each, as ``--workers`` starts them;
each worker confined to ``--cores`` cores of its own, 1 by default, its thread pools and numba's
sized to them, so that 2 workers against 1 measure scaling), the three alternating round by round
so that a load from other jobs falls on all of them; each is warmed once first (the workers open
the store and load numba's cached kernels). Prints the medians, their ratios (to the single
process and to 1 worker), the load average around each round, the clusters' start-up time and
each worker's peak resident memory, and checks that every answer equals the single process's.
CPU seconds (this process's and the workers', read with getrusage around each run) tell the
cluster's overhead apart from other jobs' load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from distributed import Client

import genoquery
from genoquery.query.cluster.connect import local_cluster

sys.path.insert(0, str(Path(__file__).parent))
from query_peers import draw_cohort


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """This process's user + system CPU seconds so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cluster_cpu_s(client) -> float:
    """CPU seconds of this process and of every worker of ``client`` (None: this process's)."""
    return _cpu_s() + (sum(client.run(_cpu_s).values()) if client is not None else 0.0)


def _questions(store: genoquery.Store, args: argparse.Namespace) -> dict:
    """Each question timed, as a function of the Dask client (None: this process)."""
    cohort = draw_cohort(store, args.fraction, seed=1)
    questions = {
        f"{args.fraction:.0%} cohort frequencies": lambda client: store.frequencies(
            args.region, cohort, client=client, progress=False
        )
    }
    if args.phenotype:
        questions[f"linear association of {args.phenotype}"] = lambda client: store.associate(
            args.phenotype, [], region=args.region, model="linear", client=client, progress=False
        )
    return questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("--region", default=None, help="default: the whole store")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--phenotype", help="also time the linear association of this person-table column")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cores", type=int, default=1, help="cores of each worker (0: unconfined)")
    args = parser.parse_args()
    with genoquery.open(args.store) as store:
        clients = {"1 process": None}
        for n in (1, 2):
            start = time.perf_counter()
            cluster = local_cluster(n, cores=args.cores or None)
            clients[f"{n} worker{'s' * (n > 1)}"] = Client(cluster)
            print(f"LocalCluster({n}) started in {time.perf_counter() - start:.1f} s")
        print(f"{args.store}: {store.info['samples']} samples, region {args.region or 'all'}")
        for question, ask in _questions(store, args).items():
            want = ask(None)
            for client in clients.values():  # warm: workers open the store, load numba's cached kernels
                assert ask(client).equals(want)
            runs: dict[str, list[float]] = {name: [] for name in clients}
            cpu: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(args.repeat):  # alternating, so that other jobs' load falls on all of them
                print_load()
                for name, client in clients.items():
                    used = _cluster_cpu_s(client)
                    start = time.perf_counter()
                    got = ask(client)
                    runs[name].append(time.perf_counter() - start)
                    cpu[name].append(_cluster_cpu_s(client) - used)
                    assert got.equals(want), name
            print_load()
            print(f"{question} ({want.num_rows} alleles):")
            report_runs(runs, cpu)
        print(f"this process: peak RSS {_peak_rss_mb():.0f} MB")
        close_clusters(clients)


def print_load() -> None:
    """The machine's load averages (1, 5, 15 minutes): other jobs share its cores."""
    print("  load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" at {time.strftime('%H:%M:%S')}")


def report_runs(runs: dict[str, list[float]], cpu: dict[str, list[float]], own: dict | None = None) -> None:
    """One line per way of running: median wall time (s), its ratio to the single process's and to
    1 worker's, and the median CPU of this process and the workers (and of this process alone,
    ``own``)."""
    single, one = statistics.median(runs["1 process"]), statistics.median(runs["1 worker"])
    for name, times in runs.items():
        median = statistics.median(times)
        mine = f", of which this process {statistics.median(own[name]):.2f} s" if own else ""
        print(
            f"  {name:>10}: median {median:.2f} s of {len(times)} ({min(times):.2f}-{max(times):.2f}), "
            f"{single / median:.2f}x the single process, {one / median:.2f}x 1 worker; "
            f"CPU {statistics.median(cpu[name]):.2f} s (this process and the workers){mine}"
        )


def close_clusters(clients: dict) -> None:
    """Print each cluster's peak RSS per worker, then close its client and cluster."""
    for name, client in clients.items():
        if client is not None:
            peaks = client.run(_peak_rss_mb)
            print(f"{name}: peak RSS per worker " + ", ".join(f"{v:.0f} MB" for v in peaks.values()))
            client.close()
            client.cluster.close()


if __name__ == "__main__":
    main()
