"""The program's side of the daemon: find one that matches this interpreter, hand it the command.

Imports only the standard library modules Python's start has mostly loaded already (a few ms):
this runs before every command. A daemon matches when it was started from the same interpreter,
import path, genoquery sources, CPU affinity and import-time environment (:func:`daemon_key`), so
a command never runs in a process that imported other code than its own would. Its socket lives
in a directory only this user can open (:func:`daemon_directory`); the server checks the peer's
user ID too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import signal
import socket
import stat
import struct
import sys
import time
from importlib import import_module

ENABLE_VARIABLE = "GENOQUERY_DAEMON"
"""``0`` runs every command in a process of its own, cold (no daemon is used or started)."""
DIRECTORY_VARIABLE = "GENOQUERY_DAEMON_DIR"
"""The directory of the daemons' sockets (default ``$XDG_RUNTIME_DIR/genoquery-daemon``, else
``/tmp/genoquery-daemon-UID``); it must belong to the user and be closed to others."""
IDLE_VARIABLE = "GENOQUERY_DAEMON_IDLE"
"""Seconds a daemon waits for a command before it exits (default :data:`IDLE_S`)."""
IDLE_S = 900.0
NOT_SERVED = frozenset({"serve", "daemon"})
"""Commands always run in their own process: a server runs for hours; ``daemon`` is about it."""
_KEY_PREFIXES = (
    *("ARROW_", "GENOQUERY_", "LANG", "LC_", "LD_", "MALLOC_", "MKL_", "NUMBA_", "OMP_", "OPENBLAS_", "PYTHON"),
)
"""Environment variables that libraries (and Python's choice of the standard streams' encoding)
read at start: a daemon serves only clients whose values are its own (the daemon's own
``GENOQUERY_DAEMON*`` settings aside)."""
LIMITS = ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_RSS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE")
"""Resource limits (``ulimit``) the command's process takes from the client's."""
FAILED_RECENTLY_S = 3600.0
"""A daemon that failed to start (its ``.log``) is not started again for this long."""
WORD = struct.Struct("!i")
"""The protocol's integers: a request's length (-1: stop), a PID, an exit status."""


def wanted(argv: list[str]) -> bool:
    """Whether the command ``argv`` (without the program's name) may run in a daemon."""
    if sys.platform != "linux" or os.environ.get(ENABLE_VARIABLE, "1") == "0":
        return False
    command = next((word for word in argv if not word.startswith("-")), None)
    return command is not None and command not in NOT_SERVED


def daemon_directory() -> str | None:
    """The user's private directory of daemon sockets, made if missing; None where it exists but
    another user could reach into it (then no daemon is used)."""
    path = os.environ.get(DIRECTORY_VARIABLE)
    if not path:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        path = os.path.join(runtime, "genoquery-daemon") if runtime else f"/tmp/genoquery-daemon-{os.getuid()}"
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    return path if private else None


def daemon_key() -> str:
    """16 hex digits naming the daemon that may run this process's commands."""
    cwd = os.getcwd()
    parts = [sys.executable, str(os.getuid()), repr(sorted(os.sched_getaffinity(0)))]
    parts += [
        f"{k}={v}"
        for k, v in sorted(os.environ.items())
        if k.startswith(_KEY_PREFIXES) and not k.startswith(ENABLE_VARIABLE)
    ]
    parts += [f"{p}:{_mtime_ns(p)}" for p in sys.path if p not in ("", cwd)]
    parts.append(_source_stamp(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=8).hexdigest()


def socket_path() -> str | None:
    """The socket of the daemon matching this process, or None where there can be none."""
    directory = daemon_directory()
    return None if directory is None else os.path.join(directory, f"{daemon_key()}.sock")


def run_remotely(argv: list[str]) -> int | None:
    """Run ``genoquery ARGV`` in the matching daemon and return its exit status; None where the
    command did not start there (no daemon yet: one is started for the next command)."""
    if not wanted(argv):
        return None
    try:
        address = socket_path()
    except OSError:  # no working directory (deleted): the command says so itself, cold
        return None
    if address is None:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address)
    except OSError:
        connection.close()
        start_daemon(address)
        return None
    with connection:
        return _run_over(connection, argv)


def _run_over(connection: socket.socket, argv: list[str]) -> int | None:
    """Send the command and this process's standard streams; relay signals to the command's
    process until its exit status comes back."""
    request = json.dumps(
        {
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "umask": _umask(),
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "limits": {name: resource.getrlimit(getattr(resource, name)) for name in LIMITS},
        }
    ).encode()
    try:
        socket.send_fds(connection, [WORD.pack(len(request))], [0, 1, 2])
        connection.sendall(request)
        pid = _read_word(connection)
    except OSError:  # a closed standard stream, or the daemon was ending
        return None
    if pid is None:
        return None
    relayed = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    for signum in relayed:
        signal.signal(signum, lambda signum, _frame: _signal(pid, signum))
    try:
        status = _read_word(connection)
    finally:
        for signum in relayed:
            signal.signal(signum, signal.SIG_DFL)
    if status is None:
        print("genoquery: error: the daemon running this command ended; run it again", file=sys.stderr)
        return 1
    return status


def start_daemon(address: str) -> None:
    """Start a daemon for ``address`` in the background, detached from this terminal, unless one
    failed to start there within :data:`FAILED_RECENTLY_S` (see ``ADDRESS.log``)."""
    with contextlib.suppress(OSError):
        if time.time() - os.stat(f"{address}.log").st_mtime < FAILED_RECENTLY_S:
            return
    subprocess = import_module("subprocess")
    subprocess.Popen(
        [sys.executable, "-m", "genoquery.launch", "--daemon", address, str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd=os.path.dirname(address),  # its import path then holds no directory of the user
    )


def stop_daemons(directory: str | None = None) -> int:
    """Ask every daemon in ``directory`` (default :func:`daemon_directory`) to exit once its
    commands end, and forget daemons that failed to start; the number asked."""
    directory = directory or daemon_directory()
    asked = 0
    for name in sorted(os.listdir(directory)) if directory else []:
        if name.endswith(".log"):  # a daemon that failed to start may be tried again
            os.unlink(os.path.join(directory, name))
        if not name.endswith(".sock"):
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            try:
                connection.connect(os.path.join(directory, name))
                connection.sendall(WORD.pack(-1))
                asked += 1
            except OSError:
                continue
    return asked


def _read_word(connection: socket.socket) -> int | None:
    """One :data:`WORD`, or None where the connection ended first."""
    data = read_exactly(connection, WORD.size)
    return None if data is None else WORD.unpack(data)[0]


def read_exactly(connection: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from ``connection``, or None where it ended first."""
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(min(size - len(data), 1 << 16))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _signal(pid: int, signum: int) -> None:
    """Pass a signal this process received on to the command's process."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _source_stamp(package: str) -> str:
    """The newest modification time and the number of genoquery's source files."""
    newest = count = 0
    stack = [package]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir() and entry.name != "__pycache__":
                    stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    newest, count = max(newest, entry.stat().st_mtime_ns), count + 1
    return f"{newest}:{count}"
