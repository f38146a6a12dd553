"""Helpers shared by the side-by-side benchmark scripts: child processes measured with a time limit,
sizes on disk, tool versions and the machine description."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import httpx

# genoquery commands measured here run cold, each in a process of its own: through a daemon
# (genoquery.daemon) the measured process would be its client alone.
os.environ["GENOQUERY_DAEMON"] = "0"


class PeerFailedError(RuntimeError):
    """A measured command exited with an error (the message ends with its standard error)."""


class TimedOutError(PeerFailedError):
    """A measured command was killed at its time limit."""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:  # exited and reaped just before the limit
        pass


# The measured command runs as the grandchild of a small interpreter: a child forked from this
# (large) process would inherit its resident set as the starting point of ru_maxrss.
_WRAPPER = """
import os, sys, time
start = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
elapsed = time.monotonic() - start
with open(sys.argv[1], "w") as f:
    f.write(f"{elapsed} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd: list[str], timeout: float | None = None) -> tuple[float, int]:
    """Run ``cmd``; return (wall seconds, peak resident memory in bytes).

    The peak is the command's own rusage (``os.wait4``): the largest resident set of the
    command and of the descendants it waited for (a pipeline's or a process pool's largest
    member, not their sum). At ``timeout`` seconds the whole process group is killed and
    :class:`TimedOutError` raised; a non-zero exit raises :class:`PeerFailedError`.
    """
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r") as result:
        # stderr to a file, not a pipe: progress bars would fill a pipe and stall
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _WRAPPER, result.name, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid,)) if timeout else None
        if timer:
            timer.start()
        code = proc.wait()
        if timer:
            timer.cancel()
        if code == -signal.SIGKILL and timeout and time.monotonic() - start >= timeout:
            raise TimedOutError(f"did not finish in {timeout:.0f} s")
        if code != 0:
            errors.seek(0)
            raise PeerFailedError(
                f"{Path(cmd[0]).name} failed ({code}): {errors.read().decode(errors='replace')[-2000:]}"
            )
        elapsed, maxrss = result.read().split()
    return float(elapsed), int(maxrss) * 1024


def warm_page_cache(path: Path) -> None:
    """Read a file once so that the first tool timed is not the only one reading it from disk."""
    with path.open("rb") as f:
        while f.read(64 << 20):
            pass


def directory_size(path: Path) -> int:
    """Bytes on disk of a file or of every file below a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def tool_versions() -> dict[str, str]:
    """Versions of genoquery and of the peers it is compared with."""
    versions = {"genoquery": metadata.version("genoquery")}
    for package in ("bio2zarr", "zarr", "pysam"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    versions["plink2"] = _first_line(["plink2", "--version"]) if shutil.which("plink2") else "absent"
    versions["bcftools"] = _first_line(["bcftools", "--version"]) if shutil.which("bcftools") else "absent"
    return versions


def machine() -> str:
    """One line: cores, memory, CPU model, kernel, Python and the current load average."""
    fields = {
        k.strip(): v.strip()
        for k, v in (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
    }
    memory = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({fields.get('model name', platform.processor())}), "
        f"{memory / 2**20:.1f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}; "
        f"load average {load}"
    )


class Server:
    """``genoquery serve STORE`` (one worker) on a free loopback port, started and awaited; stop()
    returns its peak resident memory in bytes (``os.wait4``)."""

    def __init__(self, store: Path, *options: str) -> None:

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genoquery", "serve", str(store), "--port", str(port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._wait_healthy()

    def _wait_healthy(self) -> None:

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise PeerFailedError(f"genoquery serve did not start: {self.proc.stderr.read()[-2000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, _, usage = os.wait4(self.proc.pid, 0)
        return usage.ru_maxrss * 1024
