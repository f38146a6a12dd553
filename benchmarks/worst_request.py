"""The server's worst requests: what the time and cost limits leave of each endpoint's worst case.

    python benchmarks/worst_request.py --store STORE [--repeat 2]

Starts ``genoquery serve STORE`` (default settings: ``request_time_s`` 10 s, ``max_cost`` 5e9
calls, ``max_tested_alleles`` 10,000) on a copy-free loopback port with a token of each tier, and
sends each endpoint the heaviest request a caller of that tier can make on the store's largest
contig: whole-contig regions, the largest page, a 50% cohort broken down by ancestry, association
over the contig, every carrier of the contig, the whole contig as VCF. Prints one Markdown row per
request (tier, request, status, wall seconds: the slowest of ``--repeat``) and the worst wall time.
A request is bounded when it is answered (2xx) or refused (413 over the cost limit, 503 over the
time limit) within about ``request_time_s``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

import genoquery
from genoquery.server.auth import create_token
from genoquery.server.settings import Settings
from peers import Server

COHORT = "sex_at_birth = 'Female'"


def requests(store: genoquery.Store) -> list[tuple[str, str, dict]]:
    """(tier, path, params) of the heaviest request per endpoint and tier."""
    variants = store.variants().to_pylist()
    contig = max(store.contigs, key=lambda c: sum(r["contig"] == c for r in variants))
    common = max((r for r in variants if r["contig"] == contig), key=lambda r: r["ac"])["variant_key"]
    sample = store.samples()["sample_id"][0].as_py()
    whole = {"region": contig, "limit": 1000}
    tests = {"phenotype": "ldl_mg_dl", "covariates": "pc1,pc2,pc3,pc4", "region": contig, "limit": 1000}
    return [
        ("public", "/api/v1/variants", whole),
        ("public", "/api/v1/variants", dict(whole, af_min=0.001)),
        ("public", "/api/v1/frequencies", dict(whole, by="ancestry")),
        ("public", f"/api/v1/variants/{common}", {"by": "ancestry"}),
        ("public", "/beacon/v2/g_variants", {"referenceName": contig, "start": 0, "end": 2**31 - 1}),
        ("registered", "/api/v1/frequencies", dict(whole, cohort=COHORT, by="ancestry")),
        ("registered", "/api/v1/association", dict(tests, cohort=COHORT)),
        ("registered", "/api/v1/association", dict(tests, region=f"{contig}:1-250000")),
        ("registered", "/api/v1/phewas", {"variant": common}),
        ("registered", "/api/v1/carrier-table", {"region": contig, "condition": "E11"}),
        ("controlled", "/api/v1/carriers", whole),
        ("controlled", "/api/v1/genotypes", whole),
        ("controlled", "/api/v1/association", tests),
        ("controlled", "/api/v1/export.vcf", {"region": contig}),
        ("participant", "/api/v1/me", {"limit": 1000}),
        ("controlled", f"/api/v1/participants/{sample}", {"limit": 1000}),
    ]


def timed(client: httpx.Client, path: str, params: dict, token: str | None) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    with client.stream("GET", path, params=params, headers=headers) as response:
        for _ in response.iter_bytes():
            pass
    return response.status_code, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    stamp = time.strftime("%H%M%S")
    with genoquery.open(args.store) as store:
        planned = requests(store)
        sample = store.samples()["sample_id"][0].as_py()
    tokens = {
        "public": None,
        "registered": create_token(args.store, "registered", f"worst-reg-{stamp}"),
        "controlled": create_token(args.store, "controlled", f"worst-ctl-{stamp}"),
        "participant": create_token(args.store, "participant", f"worst-me-{stamp}", sample),
    }
    server = Server(args.store, "--budget", "1000000")
    rows = []
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for tier, path, params in planned:
                runs = [timed(client, path, params, tokens[tier]) for _ in range(args.repeat)]
                status, seconds = runs[0][0], max(s for _, s in runs)
                rows.append({"tier": tier, "path": path, "params": params, "status": status, "s": seconds})
                print(f"| {tier} | `{path}` {json.dumps(params)} | {status} | {seconds:.2f} |", flush=True)
    finally:
        server.stop()
    worst = max(rows, key=lambda r: r["s"])
    limit = Settings().request_time_s
    print(
        f"\nworst: {worst['s']:.2f} s ({worst['tier']} {worst['path']}, status {worst['status']}); "
        f"time limit {limit:g} s"
    )
    return 0 if all(r["status"] < 500 or r["status"] == 503 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
