"""Load benchmark of ``genoquery serve`` on loopback (bounded in time).

    python benchmarks/load_server.py --store STORE [--duration 60] [--clients 32] [--workers 2]

Starts ``genoquery serve STORE --workers N`` on a free loopback port (with a registered token
and a budget large enough not to refuse the run), then drives it from one asyncio process
with ``--clients`` keep-alive HTTP/1.1 connections (a minimal client on asyncio streams:
httpx's own overhead would take the CPU the server needs on a 2-core machine):

1. **saturation** (closed loop, ``--duration`` s): every client sends its next request as soon
   as the previous one is answered. Requests are public variant lookups by key
   (``/api/v1/variants/{key}``, random keys), and one in ``--cohort-every`` is a registered-tier
   cohort frequency query over a 20 kb window (``/api/v1/frequencies?cohort=...``).
   Reports requests/s, errors, and latency percentiles per kind. With 32 clients in a closed
   loop, latency = 32 / throughput (Little's law), so latency at a given load is measured by:
2. **fixed rate** (open loop, ``--rate`` lookups/s for ``--duration`` s over the same clients):
   requests are sent on a schedule whatever the answers, latency from the scheduled time.

Prints one JSON document with both phases, the server's CPU time per request (its capacity
on idle cores, whatever else runs on the machine) and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COHORT = "sex_at_birth = 'Female'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    """One keep-alive HTTP/1.1 connection: GET, read status and body (Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, target: str, headers: str = "") -> int:
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n{headers}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def percentiles(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3)}


async def saturation(port: int, keys: list[str], token: str, clients: int, duration: float, cohort_every: int,
                     window: str) -> dict:
    from urllib.parse import quote

    lat: dict[str, list[float]] = {"lookup": [], "cohort_frequencies": []}
    errors: dict[str, int] = {}
    cohort_target = f"/api/v1/frequencies?region={window}&cohort={quote(COHORT)}"
    auth = f"Authorization: Bearer {token}\r\n"
    stop = time.perf_counter() + duration
    counter = 0

    async def client(k: int) -> None:
        nonlocal counter
        conn = Connection("127.0.0.1", port)
        await conn.open()
        rng = random.Random(k)
        while time.perf_counter() < stop:
            counter += 1
            if counter % cohort_every == 0:
                kind, target, headers = "cohort_frequencies", cohort_target, auth
            else:
                kind, target, headers = "lookup", f"/api/v1/variants/{rng.choice(keys)}", ""
            t0 = time.perf_counter()
            status = await conn.get(target, headers)
            lat[kind].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    total = sum(len(v) for v in lat.values())
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": total,
            "requests_per_s": round(total / elapsed, 1), "errors": errors,
            **{kind: percentiles(v) for kind, v in lat.items()}}


async def fixed_rate(port: int, keys: list[str], clients: int, duration: float, rate: float) -> dict:
    """Open loop: request i is due at i / rate; each connection takes the next due request.
    Requests still unsent ``duration`` s after the start are not sent (counted as ``not_sent``)."""
    lat: list[float] = []
    errors: dict[str, int] = {}
    start = time.perf_counter() + 0.2
    n_total = int(duration * rate)
    next_i = 0

    async def client(k: int) -> None:
        nonlocal next_i
        conn = Connection("127.0.0.1", port)
        await conn.open()
        rng = random.Random(1000 + k)
        while next_i < n_total and time.perf_counter() < start + duration:
            i = next_i
            next_i += 1
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await conn.get(f"/api/v1/variants/{rng.choice(keys)}")
            lat.append((time.perf_counter() - due) * 1000)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
        conn.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    return {"clients": clients, "target_per_s": rate, "seconds": round(elapsed, 1), "requests": len(lat),
            "not_sent": n_total - len(lat), "achieved_per_s": round(len(lat) / elapsed, 1), "errors": errors,
            "lookup": percentiles(lat)}


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its child processes (the workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measured(proc: subprocess.Popen, phase) -> dict:
    """Run a phase; add the server's CPU milliseconds per request (what the load costs, whatever
    else runs on the machine)."""
    before = server_cpu_s(proc.pid)
    result = asyncio.run(phase)
    cpu = server_cpu_s(proc.pid) - before
    result["server_cpu_s"] = round(cpu, 1)
    result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(result["requests"], 1), 3)
    return result


def start_server(store: Path, workers: int) -> tuple[subprocess.Popen, int]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "genoquery", "serve", str(store), "--port", str(port),
                             "--workers", str(workers), "--budget", str(10**9)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a store (it is copied: tokens and audit go to the copy)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1000.0, help="lookups/s of the fixed-rate phase")
    parser.add_argument("--cohort-every", type=int, default=100, help="one cohort frequency query per N requests")
    parser.add_argument("--window", default="chr20:100000-120000", help="region of the cohort frequency queries")
    args = parser.parse_args(argv)

    import genoquery
    from genoquery.server.auth import create_token

    tmp = Path(tempfile.mkdtemp(prefix="gq-load-"))
    try:
        store = tmp / "served.gq"
        shutil.copytree(args.store, store)
        with genoquery.open(store) as s:
            keys = s.variants()["variant_key"].to_pylist()
        token = create_token(store, "registered", "load-benchmark")
        proc, port = start_server(store, args.workers)
        try:
            load_before = os.getloadavg()
            result = {"store": str(args.store), "variants": len(keys), "workers": args.workers, "cpus": os.cpu_count(),
                      "saturation": measured(proc, saturation(port, keys, token, args.clients, args.duration,
                                                              args.cohort_every, args.window)),
                      "fixed_rate": measured(proc, fixed_rate(port, keys, args.clients, args.duration, args.rate)),
                      "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                      "audit_lines": sum(1 for _ in (store / "audit.jsonl").open())}
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
