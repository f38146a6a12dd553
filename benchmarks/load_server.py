"""Load benchmark of ``genoquery serve`` on loopback (bounded in time).

    python benchmarks/load_server.py --store STORE [--persons TSV] [--duration 60] [--clients 32] [--workers 2]
                                     [--rate 1000] [--cohort-rate 5] [--keys N] [--client wrk|asyncio]

Starts ``genoquery serve STORE --workers N`` on a free loopback port (on a copy of the store,
with a registered token and a budget large enough not to refuse the run) and drives it with
``--clients`` keep-alive HTTP/1.1 connections. The client is ``wrk`` (Debian package, installed
by ``./run.sh bench``) with the Lua script :data:`WRK_SCRIPT` when it is on PATH: it takes a
fraction of the CPU a Python client would take from the server on a 2-core machine. Without it
(or with ``--client asyncio``) a minimal asyncio client does the same. Two phases, ``--duration``
s each:

1. **saturation** (closed loop): ``clients - 1`` connections send public variant lookups by key
   (``/api/v1/variants/{key}``, random keys of the store) as fast as they are answered, and one
   connection sends registered-tier cohort frequency queries over ``--window`` (20 kb,
   ``/api/v1/frequencies?cohort=...``) at ``--cohort-rate`` per second (Poisson arrivals).
   Reports requests/s, errors and latency percentiles per kind. In a closed loop latency is
   ``clients / throughput`` (Little's law), so latency at a given load is measured by:
2. **fixed rate**: lookups are sent on a schedule of ``--rate`` per second (Poisson arrivals),
   each by a free connection; latency of each request from its send (the lookups'
   ``requests_per_s`` says whether the server and the connections kept up).

Prints one JSON document with both phases, the server's CPU time per request (its capacity on
idle cores is ``cores x 1000 / ms``, whatever else runs on the machine) and the machine's load
average. The server's lookup cache (``Settings.lookup_cache``) starts empty: keys drawn at random
from N variants hit it more as the run goes on (``--keys``: draw from fewer, a hot set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

import genoquery
from genoquery.index.phenotypes import import_table
from genoquery.server.auth import create_token

COHORT = "sex_at_birth = 'Female'"
WRK_SCRIPT = r"""
-- wrk script of load_server.py; arguments: KEYS_FILE TARGET TOKEN INTERVAL_MS. TARGET "": GET
-- /api/v1/variants/{random key of KEYS_FILE}; else GET TARGET with the token. INTERVAL_MS > 0:
-- requests are due on a schedule with that mean interval (exponential: Poisson arrivals), each
-- sent by the next free connection. Prints one JSON line at the end.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gq_timespec;
int clock_gettime(int clock, gq_timespec *now);
]]
local clock = ffi.new("gq_timespec")
local threads, keys, target, headers, interval, due, bad = {}, {}, "", {}, 0, nil, {}
errors = ""

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do keys[#keys + 1] = line end
  target, interval = args[2], tonumber(args[4])
  if args[3] ~= "" then headers["Authorization"] = "Bearer " .. args[3] end
  math.randomseed(os.time() + #threads)
end

function request()
  if target ~= "" then return wrk.format("GET", target, headers) end
  return wrk.format("GET", "/api/v1/variants/" .. keys[math.random(#keys)], headers)
end

local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

function delay()
  if interval <= 0 then return 0 end
  local now = now_ms()
  due = math.max(due or now, now - 1000) - interval * math.log(1 - math.random())  -- at most 1 s behind
  return math.max(0, math.floor(due - now))
end

function response(status, headers, body)
  if status ~= 200 then
    bad[status] = (bad[status] or 0) + 1
    local parts = {}
    for code, n in pairs(bad) do parts[#parts + 1] = string.format('"%d": %d', code, n) end
    errors = table.concat(parts, ", ")
  end
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    local e = thread:get("errors")
    if e ~= nil and e ~= "" then parts[#parts + 1] = e end
  end
  for _, kind in ipairs({"connect", "read", "write", "timeout"}) do
    local n = summary.errors[kind]
    if n > 0 then parts[#parts + 1] = string.format('"%s": %d', kind, n) end
  end
  local seconds = summary.duration / 1e6
  io.write(string.format('{"seconds": %.3f, "errors": {%s}, "requests": %d, "requests_per_s": %.1f, '
    .. '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n', seconds, table.concat(parts, ", "),
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


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


def percentiles(ms: list[float], seconds: float) -> dict:
    if not ms:
        return {"requests": 0}
    a = np.asarray(ms)
    return {
        "requests": len(a),
        "requests_per_s": round(len(a) / seconds, 1),
        **{f"p{p}_ms": round(float(np.percentile(a, p)), 3) for p in (50, 90, 99)},
        "max_ms": round(float(a.max()), 3),
    }


# --------------------------------------------------------------------------- asyncio client


async def asyncio_phase(port: int, keys: list[str], token: str, args: argparse.Namespace, rate: float | None) -> dict:
    """Both kinds of requests, as the wrk client sends them (``rate`` None: saturation)."""
    lat: dict[str, list[float]] = {"lookup": [], "cohort_frequencies": []}
    errors: dict[str, int] = {}
    cohort_target = f"/api/v1/frequencies?region={args.window}&cohort={quote(COHORT)}"
    stop = time.perf_counter() + args.duration
    due = {"lookup": time.perf_counter(), "cohort_frequencies": time.perf_counter()}  # next send of each schedule

    async def client(k: int, kind: str, per_s: float | None) -> None:
        conn = Connection("127.0.0.1", port)
        await conn.open()
        rng = random.Random(k)
        while True:
            if per_s:
                now = time.perf_counter()
                due[kind] = max(due[kind], now - 1) + rng.expovariate(per_s)  # at most 1 s behind
                await asyncio.sleep(max(0.0, due[kind] - now))
            if time.perf_counter() >= stop:
                break
            if kind == "lookup":
                target, headers = f"/api/v1/variants/{rng.choice(keys)}", ""
            else:
                target, headers = cohort_target, f"Authorization: Bearer {token}\r\n"
            t0 = time.perf_counter()
            status = await conn.get(target, headers)
            lat[kind].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(
        client(0, "cohort_frequencies", args.cohort_rate), *(client(k, "lookup", rate) for k in range(1, args.clients))
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "errors": errors,
        **{kind: percentiles(v, seconds) for kind, v in lat.items()},
    }


# --------------------------------------------------------------------------- wrk client


def wrk_process(
    port: int, connections: int, duration: float, keys_file: Path, target: str, token: str, interval_ms: float
) -> subprocess.Popen:
    """``wrk`` with :data:`WRK_SCRIPT` (written next to ``keys_file``): random keys of ``keys_file``,
    or ``target`` with the token."""
    script = keys_file.with_name("load.lua")
    script.write_text(WRK_SCRIPT)
    return subprocess.Popen(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(keys_file),
            target,
            token,
            f"{interval_ms:g}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wrk_result(proc: subprocess.Popen) -> dict:
    """The JSON line :data:`WRK_SCRIPT` prints when ``wrk`` ends."""
    out, err = proc.communicate()
    line = next((x for x in out.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    return json.loads(line)


def wrk_phase(port: int, keys_file: Path, token: str, args: argparse.Namespace, rate: float | None) -> dict:
    cohort = f"/api/v1/frequencies?region={args.window}&cohort={quote(COHORT)}"
    procs = {
        "lookup": wrk_process(port, args.clients - 1, args.duration, keys_file, "", "", 1000 / rate if rate else 0),
        "cohort_frequencies": wrk_process(port, 1, args.duration, keys_file, cohort, token, 1000 / args.cohort_rate),
    }
    results = {kind: wrk_result(p) for kind, p in procs.items()}
    errors: dict[str, int] = {}
    for r in results.values():
        for code, n in r.pop("errors").items():
            errors[code] = errors.get(code, 0) + n
    return {"seconds": max(r.pop("seconds") for r in results.values()), "errors": errors, **results}


# --------------------------------------------------------------------------- phases and server


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


def measured(proc: subprocess.Popen, clients: int, run) -> dict:
    """Run a phase (``run()``); add totals and the server's CPU milliseconds per request (what the
    load costs, whatever else runs on the machine)."""
    before = server_cpu_s(proc.pid)
    result = run()
    cpu = server_cpu_s(proc.pid) - before
    requests = sum(result[k].get("requests", 0) for k in ("lookup", "cohort_frequencies"))
    return {
        "clients": clients,
        "requests": requests,
        "requests_per_s": round(requests / result["seconds"], 1),
        **result,
        "server_cpu_s": round(cpu, 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(requests, 1), 3),
    }


def start_server(store: Path, workers: int) -> tuple[subprocess.Popen, int]:

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genoquery",
            "serve",
            str(store),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--budget",
            str(10**9),
        ]
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def wrk_version() -> str | None:
    """``wrk``'s version when it is on PATH."""
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"wrk (\S+)", out)
    return f"wrk {match[1] if match else '?'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--store", type=Path, required=True, help="a store (it is copied: tokens and audit go to the copy)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=32, help="connections (one of them for cohort queries)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1000.0, help="lookups/s of the fixed-rate phase")
    parser.add_argument("--cohort-rate", type=float, default=5.0, help="cohort frequency queries per second (about)")
    parser.add_argument("--window", default="chr20:100000-120000", help="region of the cohort frequency queries")
    parser.add_argument(
        "--persons",
        type=Path,
        help="a person table to import into the copy (the cohort queries need one with sex_at_birth)",
    )
    parser.add_argument(
        "--keys",
        type=int,
        default=100_000,
        help="lookups draw from this many random variants of the store (fewer: a hot set the lookup cache holds)",
    )
    parser.add_argument(
        "--client", choices=("wrk", "asyncio"), default=None, help="load generator (default: wrk when it is on PATH)"
    )
    args = parser.parse_args(argv)
    if args.clients < 2:
        parser.error("--clients must be at least 2 (one sends the cohort queries)")
    if args.keys < 1:
        parser.error("--keys must be at least 1")
    client = wrk_version() if args.client != "asyncio" else None
    if args.client == "wrk" and client is None:
        parser.error("wrk is not on PATH (Debian: apt-get install wrk)")

    tmp = Path(tempfile.mkdtemp(prefix="gq-load-"))
    try:
        store = tmp / "served.gq"
        shutil.copytree(args.store, store)
        if args.persons:
            import_table(store, args.persons)
        with genoquery.open(store) as s:
            keys = s.variants()["variant_key"].to_pylist()
        sample = random.Random(1).sample(keys, min(len(keys), args.keys))
        keys_file = tmp / "keys.txt"
        keys_file.write_text("\n".join(sample) + "\n")
        token = create_token(store, "registered", "load-benchmark")
        proc, port = start_server(store, args.workers)
        try:

            def phase(rate: float | None):
                if client:
                    return lambda: wrk_phase(port, keys_file, token, args, rate)
                return lambda: asyncio.run(asyncio_phase(port, sample, token, args, rate))

            load_before = os.getloadavg()
            result = {
                "store": str(args.store),
                "variants": len(keys),
                "keys_asked": len(sample),
                "workers": args.workers,
                "cpus": os.cpu_count(),
                "client": client or "asyncio",
                "saturation": measured(proc, args.clients, phase(None)),
                "fixed_rate": dict(target_per_s=args.rate, **measured(proc, args.clients, phase(args.rate))),
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "audit_lines": sum(1 for _ in (store / "audit.jsonl").open()),
            }
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
