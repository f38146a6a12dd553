"""The daemon that runs commands warm (genoquery.daemon): the same bytes, statuses and effects as a
command run cold, the client's own standard streams, directory and environment, Ctrl-C and a killed
client reaching the command, no daemon where others could reach its socket, and its end (stop,
idle). That a command really ran in the daemon is shown by the client's CPU time: the client never
imports numpy, DuckDB or pyarrow, which a cold command must."""

from __future__ import annotations

import gzip
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks import FIXTURE_VCFS, FIXTURES, ingest_fixture
from genoquery.daemon import client, server
from genoquery.index.phenotypes import import_table

CHR20 = str(FIXTURE_VCFS[0])
GQ = [sys.executable, "-m", "genoquery"]
COLD_IMPORTS_CPU_S = 0.1
"""Less CPU than ``import numpy, duckdb, pyarrow`` takes (~0.2-0.3 s): a client above it did not
hand its command over."""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("daemon") / "fixture.gq"
    ingest_fixture(path).close()
    import_table(path, FIXTURES / "conditions.tsv")
    return path


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> dict:
    """The environment of commands served by one daemon (started and ready), stopped at the end."""
    directory = tmp_path_factory.mktemp("daemons") / "d"
    env = {**os.environ, client.ENABLE_VARIABLE: "1", client.DIRECTORY_VARIABLE: str(directory)}
    env[client.IDLE_VARIABLE] = "300"
    _run(env, "query", "--help")  # starts it
    _wait_ready(env)
    yield env
    pid = _daemon_pid(env)
    subprocess.run([*GQ, "daemon", "stop"], env=env, check=True, capture_output=True)
    _wait_gone(pid)


def _run(env: dict, *args: str, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    """The command's result and its process's CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*GQ, *args], env=env, capture_output=True, check=False, **kwargs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _socket(env: dict, cwd: Path | None = None) -> str:
    """The socket of the daemon serving ``env``'s commands: asked of a new process like theirs
    (this one's import path has pytest's entries)."""
    code = "from genoquery.daemon import client; print(client.socket_path())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _wait_ready(env: dict, timeout_s: float = 120.0) -> None:
    address, end = _socket(env), time.monotonic() + timeout_s
    while time.monotonic() < end:
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(address) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"no daemon answered at {address} within {timeout_s} s")


def _daemon_pid(env: dict) -> int:
    return int(Path(_socket(env) + ".lock").read_text())


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs after {timeout_s} s")


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


COMMANDS = {
    "variants tsv": ["variants", "{store}", "-r", "chr20:1-20000", "-O", "tsv"],
    "parquet to stdout": ["variants", "{store}", "-r", "chr20", "-O", "parquet", "-o", "-"],
    "variant by rsID": ["query", "{store}", "variant", "rs1234568", "-O", "json"],
    "unknown variant": ["query", "{store}", "variant", "chr20-1-A-G"],
    "cohort frequencies": ["query", "{store}", "frequencies", "chr20", "--cohort", "sex_at_birth = 'Female'"],
    "participant": ["query", "{store}", "participant", "S000002"],
    "carriers": ["query", "{store}", "carriers", "chr20-153-C-G", "-O", "json"],
    "export to stdout": ["export", "{store}", "-r", "chr20:1-5000", "-s", "S000001,S000003", "-o", "-"],
    "logistic association": ["assoc", "{store}", "glm", "--phenotype", "E11", "-r", "chr20:1-200000", "--quiet"],
    "phewas": ["assoc", "{store}", "phewas", "chr20-153-C-G", "--min-cases", "5"],
    "help": ["query", "--help"],
    "bad region": ["variants", "{store}", "-r", "chr99:1-5"],
    "no store": ["variants", "nowhere.gq"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_gives_the_same_bytes_and_status_through_the_daemon(store, warm, name):
    argv = [word.format(store=store) for word in COMMANDS[name]]
    cold, cold_cpu = _run({**warm, client.ENABLE_VARIABLE: "0"}, *argv)
    for _ in range(2):  # the second forked after the daemon loaded the first's kernels
        served, served_cpu = _run(warm, *argv)
        assert (served.returncode, served.stdout, served.stderr) == (cold.returncode, cold.stdout, cold.stderr)
        assert served.stdout or served.stderr
        assert served_cpu < COLD_IMPORTS_CPU_S < cold_cpu, (served_cpu, cold_cpu)


def test_the_command_runs_in_the_clients_directory_with_its_environment(store, warm, tmp_path):
    argv = ["query", str(store), "frequencies", "chr20:1-20000", "--cohort", "@ids.txt", "-o", "out.tsv"]
    outputs = []
    for enable in ("1", "0"):
        directory = tmp_path / enable
        directory.mkdir()
        (directory / "ids.txt").write_text("S000001\nS000004\n")
        env = {**warm, client.ENABLE_VARIABLE: enable, "GENOQUERY_CACHE": str(directory / "cache")}
        done, _ = _run(env, *argv, cwd=directory)
        assert done.returncode == 0, done.stderr
        outputs.append((directory / "out.tsv").read_bytes())
        assert (directory / "out.tsv").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") > 10


def test_standard_input_is_the_clients(store, warm, tmp_path):
    text = gzip.decompress(Path(CHR20).read_bytes())
    done, _ = _run(warm, "ingest", str(tmp_path / "piped.gq"), "-", "--quiet", input=text)
    assert done.returncode == 0, done.stderr.decode()
    region = ["-r", "chr20", "-O", "tsv"]
    piped, _ = _run(warm, "variants", str(tmp_path / "piped.gq"), *region)
    direct, _ = _run(warm, "ingest", str(tmp_path / "direct.gq"), CHR20, "--quiet")
    assert direct.returncode == 0
    assert piped.stdout == _run(warm, "variants", str(tmp_path / "direct.gq"), *region)[0].stdout


def _ingest_waiting_on_stdin(env: dict, target: Path, **kwargs) -> subprocess.Popen:
    """An ingest reading a VCF from a pipe nobody writes, once its process in the daemon reads."""
    env = {**env, "TMPDIR": str(target.parent)}  # where it stages standard input, made before reading
    argv = [*GQ, "ingest", str(target), "-"]
    waiting = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    _wait_for(lambda: any(target.parent.glob("genoquery-stdin-*")))
    return waiting


def test_ctrl_c_reaches_the_command_and_changes_nothing(warm, tmp_path):
    waiting = _ingest_waiting_on_stdin(warm, tmp_path / "never.gq")
    waiting.send_signal(signal.SIGINT)
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 130
    assert b"interrupted; nothing was changed" in stderr
    assert not (tmp_path / "never.gq").exists()


def test_a_killed_client_ends_its_command_which_ran_at_its_priority(warm, tmp_path):
    daemon = _daemon_pid(warm)
    waiting = _ingest_waiting_on_stdin(warm, tmp_path / "never.gq", preexec_fn=lambda: os.nice(7))
    (command,) = set(_children(daemon))
    assert int(Path(f"/proc/{command}/stat").read_text().rsplit(")", 1)[1].split()[16]) == 7  # nice
    waiting.kill()
    waiting.wait()
    _wait_gone(command)
    assert not (tmp_path / "never.gq").exists()


def test_the_clients_resource_limits_bind_the_command(store, warm, tmp_path):
    """``ulimit -f 4`` (4 KB files): the output fails alike, cold and served, in one line, and
    leaves no partial file."""
    results = []
    for enable in ("1", "0"):
        out = tmp_path / f"big{enable}.tsv"
        limited = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # noqa: E731
        done, _ = _run(
            {**warm, client.ENABLE_VARIABLE: enable}, "variants", str(store), "-o", str(out), preexec_fn=limited
        )
        results.append((done.returncode, done.stderr.replace(bytes(out), b"OUT")))
    assert results[0] == results[1]
    assert results[0][0] == 2
    assert results[0][1].startswith(b"genoquery: error: OUT: cannot write it (File too large)")
    assert not list(tmp_path.glob("big*"))  # the partial file is removed


def test_a_failed_command_status_is_the_clients(store, warm):
    done, _ = _run(warm, "query", str(store), "carriers", "chr20-153-C-G", "--cohort", "no_such_cohort")
    assert done.returncode == 2
    assert done.stderr.startswith(b"genoquery: error:")


def test_kernels_a_command_loaded_are_learnt_by_the_daemon(store, warm):
    _run(warm, "query", str(store), "frequencies", "chr20", "--cohort", "sex_at_birth = 'Male'")
    address = _socket(warm)
    learnt = Path(address).with_suffix(".kernels")
    _wait_for(lambda: learnt.exists())
    assert b"cohort_counts" in learnt.read_bytes()


def test_no_daemon_where_others_could_reach_its_socket(store, tmp_path):
    directory = tmp_path / "open"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    env = {**os.environ, client.ENABLE_VARIABLE: "1", client.DIRECTORY_VARIABLE: str(directory)}
    done, _ = _run(env, "variants", str(store), "-r", "chr20:1-5000")
    assert done.returncode == 0
    time.sleep(1.0)
    assert list(directory.iterdir()) == []


def test_an_idle_daemon_ends_and_frees_its_socket(tmp_path):
    env = {**os.environ, client.ENABLE_VARIABLE: "1", client.DIRECTORY_VARIABLE: str(tmp_path / "d")}
    env[client.IDLE_VARIABLE] = "1"
    _run(env, "query", "--help")
    _wait_for(lambda: Path(_socket(env) + ".lock").exists() and Path(_socket(env) + ".lock").read_text(), 120)
    _wait_gone(_daemon_pid(env), 120)
    assert not Path(_socket(env)).exists()


def test_a_daemon_serves_only_its_own_interpreter_and_environment(tmp_path):
    env = {**os.environ, client.DIRECTORY_VARIABLE: str(tmp_path)}
    address = _socket(env)
    assert _socket({**env, client.ENABLE_VARIABLE: "1", client.IDLE_VARIABLE: "5"}) == address
    assert _socket(env, cwd=tmp_path) == address  # nor does the directory a command is run in
    assert _socket({**env, "NUMBA_NUM_THREADS": "1"}) != address
    assert _socket({**env, "PYTHONPATH": str(tmp_path)}) != address


def test_commands_that_must_not_be_served(monkeypatch):
    monkeypatch.setenv(client.ENABLE_VARIABLE, "1")
    assert client.wanted(["query", "s.gq", "variant", "rs1"])
    assert not client.wanted(["serve", "s.gq"])
    assert not client.wanted(["daemon", "stop"])
    monkeypatch.setenv(client.ENABLE_VARIABLE, "0")
    assert not client.wanted(["query", "s.gq", "variant", "rs1"])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_parent_whose_libraries_started_threads_forks_no_more(tmp_path):
    """As numba's OpenMP layer would: the daemon ends, forgets its kernels and is not restarted."""
    address = str(tmp_path / "k.sock")
    daemon = server.Daemon(address, run=lambda argv: 0, idle_s=1)
    daemon.native_threads = 0  # fewer than this process runs now
    daemon.kernels_path.write_bytes(b"learnt")
    with pytest.raises(ValueError, match="threads started"):
        daemon._check_threads()
    assert not daemon.kernels_path.exists()
    assert "ended" in Path(address + ".log").read_text()
    daemon.native_threads = 10_000
    daemon._check_threads()  # fewer threads than at start (OpenBLAS stops its own at a fork): fine


def test_a_deleted_working_directory_runs_the_command_cold(store, warm, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    program = Path(sys.executable).parent / "genoquery"
    script = f"cd {gone} && rmdir {gone} && exec {program} query {store} variant rs1234568"
    done = subprocess.run(["bash", "-c", script], env=warm, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert b"rs1234568" in done.stdout
