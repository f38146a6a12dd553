"""The same questions of a store on local disk and of the same store on a loopback S3 server.

    python benchmarks/object_storage.py --cohort /tmp/gq20/sim1e4 --workdir /tmp/gq20/os

The cohort is a ``genoquery simulate`` directory (its joint chr20 file and persons). Its store is
ingested twice, into WORKDIR/local.gq and into ``s3://bench/cohort.gq`` on moto's S3 server,
started here on a free loopback port (its objects in memory); the local mirror of the S3 store is
in WORKDIR/cache. Then, in this one process and alternating between the two stores so that load
from other jobs falls on both: open (the S3 store's mirror already up to date: the pointer is
read and compared), a lookup by key, cohort AC/AN/AF of the whole region for a random 10% cohort,
carriers of the commonest variant, a genotype slice (100 kb x 100 samples); medians of
``--rounds`` and their ratio S3 / local. A cold open (no mirror: the index and lookup files are
downloaded and hashed) is timed once. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import fsspec
import numpy as np
from moto.server import ThreadedMotoServer

import genoquery
from genoquery.storage.objects import mirror_path


def _server() -> ThreadedMotoServer:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return server


def _timed(task: Callable[[], object]) -> float:
    started = time.perf_counter()
    task()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", type=Path, required=True, help="a `genoquery simulate` output directory")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ["GENOQUERY_CACHE"] = str(args.workdir / "cache")
    shutil.rmtree(args.workdir / "cache", ignore_errors=True)
    server = _server()
    try:
        fsspec.filesystem("s3").mkdir("bench")
        vcf, persons = args.cohort / "cohort.chr20.vcf.gz", args.cohort / "persons.tsv"
        url, local = "s3://bench/cohort.gq", args.workdir / "local.gq"
        ingest = {}
        for where in (local, url):
            ingest[str(where)] = _timed(
                lambda w=where: genoquery.ingest(w, [vcf], persons=persons, overwrite=True, progress=False).close()
            )
        shutil.rmtree(mirror_path(url))
        cold_open = _timed(lambda: genoquery.open(url).close())
        stores = {"local": genoquery.open(local), "s3": genoquery.open(url)}
        variants = stores["local"].variants()
        key = variants.column("variant_key")[len(variants) // 2].as_py()
        commonest = variants.column("variant_key")[int(np.argmax(variants.column("ac").to_numpy()))].as_py()
        rng = np.random.default_rng(1)
        ids = stores["local"].sample_ids
        cohort = sorted(rng.choice(ids, size=len(ids) // 10, replace=False).tolist())
        few = sorted(rng.choice(ids, size=100, replace=False).tolist())
        first = int(variants.column("pos")[0].as_py())
        questions = {
            "open (mirror up to date)": lambda s: genoquery.open(url if s is stores["s3"] else local).close(),
            "lookup by key": lambda s: s.lookup(key),
            "cohort AF, 10% cohort, whole region": lambda s: s.frequencies("chr20", cohort=cohort),
            "carriers of the commonest variant": lambda s: s.carriers(commonest),
            "genotypes 100 kb x 100 samples": lambda s: s.genotypes(f"chr20:{first}-{first + 100_000}", few),
        }
        times: dict[str, dict[str, list[float]]] = {q: {"local": [], "s3": []} for q in questions}
        for name, question in questions.items():
            for where in ("local", "s3"):  # warm-up: numba compiles, page cache, connections
                question(stores[where])
            for _ in range(args.rounds):
                for where in ("local", "s3"):
                    times[name][where].append(_timed(lambda q=question, w=where: q(stores[w])))
        samples = stores["local"].info["samples"]
        print(f"{samples} samples, {len(variants)} ALT alleles; medians of {args.rounds} rounds, ms\n")
        print("| question | local | loopback S3 | S3 / local |")
        print("|---|---:|---:|---:|")
        for name in questions:
            a, b = (statistics.median(times[name][w]) * 1e3 for w in ("local", "s3"))
            print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f} |")
        print(f"\ncold open of the S3 store (index and lookup files downloaded): {cold_open * 1e3:.0f} ms")
        print(f"ingest: local {ingest[str(local)]:.1f} s, S3 {ingest[url]:.1f} s")
        index = mirror_path(url) / "index.duckdb"
        print(f"index {index.stat().st_size / 1e6:.1f} MB")
        for store in stores.values():
            store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
