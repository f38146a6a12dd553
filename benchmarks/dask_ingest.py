"""Ingest on a Dask LocalCluster beside the single process (issue 21).

    python benchmarks/dask_ingest.py /tmp/c1e4/cohort.chr20.vcf.gz /tmp/c1e4/cohort.chrX.vcf.gz \
        --persons /tmp/c1e4/persons.tsv --scratch /tmp/bench --repeat 3

Ingests the files (``genoquery simulate`` writes them, indexed: each is read in regions of about
``PARTITION_CALLS`` calls) into a new store in ``--scratch``, in this process and on LocalClusters
of 1 and 2 worker processes (one thread each, as ``--workers`` starts them; each worker confined
to ``--cores`` cores of its own, 1 by default, its thread pools and numba's sized to them, so that
2 workers against 1 measure scaling), the three alternating round by round so that a load from
other jobs falls on all of them (the load average printed around each round); each is warmed
once first, and the warm-up stores of the clusters are checked equal to the single process's,
file by file (but the index and the lookup files, which carry times and random names;
``tests/test_dask_ingest.py`` compares those). Prints the medians, their ratios (to the single
process and to 1 worker), the CPU seconds of this process and the workers (getrusage around each
run: the machine's other jobs do not count), each worker's peak resident memory, and this
process's peak before the single-process runs (the client's own) and after them.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

from distributed import Client

import genoquery
from genoquery.query.cluster.connect import local_cluster

sys.path.insert(0, str(Path(__file__).parent))
from dask_scans import _cluster_cpu_s, _cpu_s, _peak_rss_mb, close_clusters, print_load, report_runs


def batch_digests(store: Path) -> dict[str, str]:
    """sha256 of every file of the store's batches (its Zarr arrays), by relative path."""
    files = (p for p in (store / "batches").rglob("*") if p.is_file())
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vcfs", nargs="+", type=Path)
    parser.add_argument("--persons", type=Path)
    parser.add_argument("--scratch", type=Path, required=True, help="directory for the stores written")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=1, help="cores of each worker (0: unconfined)")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    clients: dict[str, Client | None] = {}
    for n in (1, 2):
        start = time.perf_counter()
        clients[f"{n} worker{'s' * (n > 1)}"] = Client(local_cluster(n, cores=args.cores or None))
        print(f"LocalCluster({n}) started in {time.perf_counter() - start:.1f} s")
    clients["1 process"] = None

    def ingest(name: str, client) -> Path:
        store = args.scratch / f"{name.replace(' ', '_')}.gq"
        genoquery.ingest(store, args.vcfs, persons=args.persons, overwrite=True, progress=False, client=client).close()
        return store

    stores = {name: ingest(name, client) for name, client in clients.items()}  # warm-up
    print(f"this process: peak RSS {_peak_rss_mb():.0f} MB as the clusters' client (before any single-process run)")
    want = batch_digests(stores["1 process"])
    for name, store in stores.items():
        assert batch_digests(store) == want, name
    with genoquery.open(stores["1 process"]) as store:
        print(f"{len(args.vcfs)} files: {store.info['samples']} samples, {store.info['sites']} sites")
    runs: dict[str, list[float]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    own: dict[str, list[float]] = {name: [] for name in clients}  # this process's CPU: the client's commit
    for _ in range(args.repeat):  # alternating, so that other jobs' load falls on all of them
        print_load()
        for name, client in clients.items():
            used, mine = _cluster_cpu_s(client), _cpu_s()
            start = time.perf_counter()
            ingest(name, client)
            runs[name].append(time.perf_counter() - start)
            cpu[name].append(_cluster_cpu_s(client) - used)
            own[name].append(_cpu_s() - mine)
    print_load()
    report_runs(runs, cpu, own)
    print(f"this process: peak RSS {_peak_rss_mb():.0f} MB after the single-process runs")
    close_clusters(clients)
    for store in stores.values():
        shutil.rmtree(store)


if __name__ == "__main__":
    main()
