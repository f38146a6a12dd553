"""A running ``genoquery serve`` for the server tests (no tests here).

:func:`server` builds the 120-sample fixture store with its conditions, creates tokens
through :mod:`genoquery.server.auth` (as ``genoquery tokens create`` does), and starts
``python -m genoquery serve`` on a free loopback port; one server per set of options
per test session, stopped at exit; :func:`serve` does the same for a store of the test's
own. The rounding secret is fixed, so answers are reproducible from run to run.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import httpx

import checks
from genoquery.index.phenotypes import import_table
from genoquery.server.auth import create_token, revoke_token
from genoquery.server.state import connect

SECRET = b"genoquery-tests-rounding-secret!"
TOKENS = {
    "reg": ("registered", None),
    "ctl": ("controlled", None),
    "me": ("participant", "S000001"),
    "old": ("controlled", None),
}


@dataclass
class Server:
    url: str
    store: Path
    tokens: dict[str, str] = field(default_factory=dict)
    min_cohort: int = 30
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        _stop(self.proc)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def new_token(self, tier: str, name: str) -> str:

        self.tokens[name] = create_token(self.store, tier, name)
        return name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@cache
def fixture_store() -> Path:
    """The fixture cohort with persons, genes and conditions, in a directory removed at exit."""

    tmp = Path(tempfile.mkdtemp(prefix="gq-server-tests-"))
    atexit.register(shutil.rmtree, tmp, True)
    path = tmp / "fixture.gq"
    checks.ingest_fixture(path).close()
    import_table(path, checks.FIXTURES / "conditions.tsv")
    return path


@cache
def server(min_cohort: int = 30, budget: int = 100_000) -> Server:
    """A server on a copy of the fixture store (each has its own tokens, budgets and audit log)."""
    store = fixture_store().parent / f"served-{min_cohort}-{budget}.gq"
    shutil.copytree(fixture_store(), store)
    return serve(store, min_cohort, budget)


def serve(
    store: Path,
    min_cohort: int = 30,
    budget: int = 100_000,
    options: tuple[str, ...] = (),
    token_tiers: dict[str, tuple[str, str | None]] = TOKENS,
) -> Server:
    """``genoquery serve store`` (through the CLI and ``server.app.serve``, as a user runs it) on a
    free loopback port, with the fixed rounding secret, the tokens of ``token_tiers`` (name: tier,
    participant sample; ``old`` revoked) and further ``options`` (``--trusted-proxy ADDR``); stopped
    by :meth:`Server.stop` or at exit."""

    con = connect(store)
    with con:
        con.execute("INSERT INTO secrets VALUES ('rounding', ?)", [SECRET])
    con.close()
    tokens = {name: create_token(store, tier, name, sample) for name, (tier, sample) in token_tiers.items()}
    if "old" in tokens:
        revoke_token(store, "old")
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
            "--min-cohort",
            str(min_cohort),
            "--budget",
            str(budget),
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    atexit.register(_stop, proc)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, proc)
    return Server(url, store, tokens, min_cohort, proc)


def wait_until_healthy(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    """Wait for the server at ``url`` to answer its health check; stop it and raise if it ends or
    does not answer within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(
                f"the server did not start: {proc.stderr.read() if proc.poll() is not None else 'timeout'}"
            )
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
