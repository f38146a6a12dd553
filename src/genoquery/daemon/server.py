"""The daemon: a parent that holds the imports and kernels, and a forked child per command.

The parent never runs a command and never starts a thread of its own, so forking it is safe: a
child starts where a cold process would be after its imports, with nothing of an earlier command
in it (no open store, cache or connection). The child takes the client's standard streams (file
descriptors passed over the socket), working directory, environment and umask, runs the command
line, and exits; the parent sends the client the child's PID first (so the client can pass on
Ctrl-C) and its exit status last (128 + N for a child killed by signal N, as a shell reports it).
A child ends itself when its client goes away, as a command whose terminal closed would.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import resource
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genoquery.daemon import kernels
from genoquery.daemon.client import WORD, read_exactly

REQUEST_TIMEOUT_S = 10.0
"""Longest wait for a client's request once connected."""
STARTER_WAIT_S = 60.0
"""Longest wait for the command that started a daemon before its imports begin."""
Runner = Callable[[list[str]], int]


@dataclass
class _Child:
    pid: int
    connection: socket.socket


class Daemon:
    """Serves commands on the Unix socket ``address`` until idle for ``idle_s`` seconds or asked
    to stop; ``run`` runs one command line (without the program's name) and returns its status."""

    def __init__(self, address: str, run: Runner, idle_s: float) -> None:
        self.address, self.run, self.idle_s = address, run, idle_s
        self.kernels_path = Path(address).with_suffix(".kernels")
        self.known: kernels.Signatures = {}
        self.children: dict[int, _Child] = {}  # by pidfd
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.native_threads = 0

    def serve(self) -> None:
        """Load the kernels earlier daemons learnt, then serve until idle or stopped."""
        if threading.active_count() != 1:  # a fork would copy its locks, held, without it
            raise RuntimeError(f"{threading.enumerate()} run in the daemon's parent: it cannot fork safely")
        self.native_threads = _native_threads()  # the libraries' own (OpenBLAS, jemalloc), fork-safe
        self._learn(self.kernels_path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)
        self.listener.bind(self.address)
        self.listener.listen(64)
        self.selector.register(self.listener, selectors.EVENT_READ)
        while self.listener is not None or self.children:
            events = self.selector.select(None if self.children else self.idle_s)
            if not events and not self.children:
                self._close_listener()
            for key, _ in events:
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._reap(key.fd)

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            self._start(connection)
        except (OSError, ValueError, KeyError, struct.error):  # a client that went away or spoke nonsense
            connection.close()

    def _start(self, connection: socket.socket) -> None:
        """Read one request from ``connection``; fork its command, or stop when asked."""
        connection.settimeout(REQUEST_TIMEOUT_S)
        pid, uid, _gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            raise ValueError(f"process {pid} of user {uid}")
        head, fds, _flags, _address = socket.recv_fds(connection, WORD.size, 3)
        try:
            size = WORD.unpack(head)[0]
            if size == -1:
                self._close_listener()
                connection.close()
                return
            body = read_exactly(connection, size)
            if body is None:
                raise ValueError("the request ended early")
            request = json.loads(body)
            if len(fds) != 3:
                raise ValueError("three standard streams expected")
            self._check_threads()
            connection.settimeout(None)
            child = os.fork()
            if child == 0:
                os._exit(self._child(connection, fds, request))
        finally:
            for fd in fds:
                os.close(fd)
        connection.sendall(WORD.pack(child))
        pidfd = os.pidfd_open(child)
        self.children[pidfd] = _Child(child, connection)
        self.selector.register(pidfd, selectors.EVENT_READ)

    def _child(self, connection: socket.socket, fds: list[int], request: dict) -> int:
        """Run the request's command in this forked child; its exit status."""
        try:
            self.selector.close()
            self.listener.close()
            for pidfd, other in self.children.items():
                os.close(pidfd)
                other.connection.close()
            _take_over(fds, request)
            threading.Thread(target=_end_when_gone, args=(connection,), daemon=True).start()
            status = _status_of(self.run, request["argv"])
            _record_kernels(self.known, Path(f"{self.address}.{os.getpid()}.kernels"))
            return status
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
            return 1

    def _reap(self, pidfd: int) -> None:
        """A child ended: send its client the exit status, and learn the kernels it loaded."""
        child = self.children.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(child.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError), child.connection:
            child.connection.sendall(WORD.pack(code if code >= 0 else 128 - code))
        learnt = Path(f"{self.address}.{child.pid}.kernels")
        if self._learn(learnt):
            _write_atomically(self.kernels_path, pickle.dumps(self.known))
        learnt.unlink(missing_ok=True)

    def _learn(self, path: Path) -> bool:
        """Load the kernels listed in ``path`` (if any) into this process; whether any were new."""
        try:
            signatures = pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return False
        before = sum(map(len, self.known.values()))
        kernels.load(signatures)
        for name, types in signatures.items():
            self.known[name] = sorted(set(self.known.get(name, [])) | set(types), key=repr)
        return sum(map(len, self.known.values())) > before

    def _check_threads(self) -> None:
        """Refuse to fork, and end (forgetting the kernels learnt), once a library started threads
        in this process after its imports (as numba's OpenMP layer does): a child could inherit
        their state without them. The client then runs its command itself; no daemon is started
        at this address for an hour (``ADDRESS.log``)."""
        if _native_threads() <= self.native_threads:  # OpenBLAS stops its own at each fork
            return
        Path(f"{self.address}.log").write_text(f"{_native_threads()} threads after {self.native_threads}: ended\n")
        self.kernels_path.unlink(missing_ok=True)
        self._close_listener()
        raise ValueError("threads started in the daemon's parent")

    def _close_listener(self) -> None:
        """Take no more commands (the running ones finish), and free the socket's name."""
        if self.listener is None:
            return
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)


def serve(address: str, run: Runner, warm: Callable[[], None], idle_s: float, starter: int | None = None) -> None:
    """Be the daemon at ``address`` unless another is: import what ``warm`` imports, then serve.
    With ``starter`` (the PID of the command that started it, which runs cold meanwhile), the
    imports wait until that process ends, or :data:`STARTER_WAIT_S`, so as not to slow it down.
    ``ADDRESS.lock`` holds the daemon's PID while it runs; errors go to ``ADDRESS.log``."""
    with open(f"{address}.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another daemon took this address
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if starter is not None:
                _wait_for_exit(starter, STARTER_WAIT_S)
            warm()
            Daemon(address, run, idle_s).serve()
        except Exception:
            Path(f"{address}.log").write_text(traceback.format_exc())
            raise


def _wait_for_exit(pid: int, timeout_s: float) -> None:
    """Until process ``pid`` has ended, or ``timeout_s`` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)


def _native_threads() -> int:
    """The threads of this process, Python's and the libraries' alike."""
    return len(os.listdir("/proc/self/task"))


def _take_over(fds: list[int], request: dict) -> None:
    """Make this process the client's: its standard streams, directory, environment, umask,
    priority and resource limits (those it may lower)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, int(request["nice"]))
    for name, (soft, hard) in request["limits"].items():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            resource.setrlimit(getattr(resource, name), (int(soft), int(hard)))
    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["genoquery", *request["argv"]]
    encoding, errors = sys.stdout.encoding, sys.stdout.errors  # as Python chose them at start
    sys.stdin = sys.__stdin__ = open(0, encoding=encoding, errors=errors, closefd=False)
    sys.stdout = sys.__stdout__ = open(
        1, "w", buffering=1 if os.isatty(1) else -1, encoding=encoding, errors=errors, closefd=False
    )
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False)


def _status_of(run: Runner, argv: list[str]) -> int:
    """Run the command line; its exit status, as a Python program's would be."""
    try:
        status = run(argv)
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)
    except KeyboardInterrupt:
        status = 130
    except Exception:
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return status


def _end_when_gone(connection: socket.socket) -> None:
    """End this process (as SIGTERM would) once its client's end of ``connection`` closes."""
    with contextlib.suppress(OSError):
        while connection.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def _record_kernels(known: kernels.Signatures, path: Path) -> None:
    """Write the kernels this child loaded that the parent had not, for the parent to load."""
    new = {}
    for name, types in kernels.used().items():
        fresh = [t for t in types if t not in known.get(name, [])]
        if fresh:
            new[name] = fresh
    if new:
        _write_atomically(path, pickle.dumps(new))


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
