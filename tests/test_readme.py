"""The README's commands run as written: its "Use" shell block, its Python block, its "Server" block;
then the example at the end of each command's ``--help`` (``genoquery.cli.EXAMPLES``), on the same
demo cohort.

They run in a fresh directory holding what they name: ``data/fixtures`` (a link to the
repository's) and ``old.gq``, a format 2 store (``tests/data/format2_store.tar.gz``) for the
``upgrade`` line. Every shell line must exit 0, the Python block must run without an exception,
and the server block runs as one bash script (its server in the background; port 8000 is
replaced by a free port, the one change), each curl failing on an HTTP error. Commands run as a
user's do, with the daemon on (its own directory, stopped at the end): the first starts it, and
the daemon runs those after it (genoquery.daemon).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import skip_without_tool
from genoquery.cli import EXAMPLES
from genoquery.daemon import client
from test_server_support import free_port

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _block(heading: str, language: str) -> str:
    """The first ``language`` code block after the line ``heading``."""
    after = README.split(f"\n{heading}\n", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", after, re.S).group(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("readme")
    (work / "data").mkdir()
    (work / "data" / "fixtures").symlink_to(ROOT / "data" / "fixtures")
    with tarfile.open(ROOT / "tests" / "data" / "format2_store.tar.gz") as tar:
        tar.extractall(work, filter="data")
    (work / "format2.gq").rename(work / "old.gq")
    yield work
    client.stop_daemons(str(work / "daemons"))


def _env(workdir: Path) -> dict:
    """A user's environment: this venv's programs first, the daemon on (in the work directory)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return dict(os.environ, PATH=path, GENOQUERY_DAEMON="1", GENOQUERY_DAEMON_DIR=str(workdir / "daemons"))


def test_use_block_runs_line_by_line_then_the_python_block(workdir):
    env = _env(workdir)
    lines = [line for line in _block("## Use", "bash").splitlines() if line.strip()]
    assert len(lines) > 15
    for line in lines:
        run = subprocess.run(line, shell=True, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, f"{line}\n{run.stderr[-2000:]}"
    assert (workdir / "m.png").stat().st_size > 1000
    assert (workdir / "out.vcf.gz").stat().st_size > 0
    python = _block("## Use", "python")
    run = subprocess.run(
        [sys.executable, "-c", python], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]


@skip_without_tool("curl")
def test_server_block_runs_as_one_script(workdir):
    """After the Use block (test order within this module): the server block as a script, with
    ``curl --fail`` and a wait for the server, which the README leaves to the reader."""
    port = str(free_port())
    script = _block("## Server", "bash").replace("8000", port).replace("curl ", "curl --fail --silent ")
    serve, rest = script.split("\n", 1)
    health = f"curl --silent localhost:{port}/api/v1/health >/dev/null"
    wait = f"for i in $(seq 120); do {health} && break; sleep 0.5; done\n"
    env = _env(workdir)
    full = f"set -e\n{serve}\nserver=$!\ntrap 'kill $server' EXIT\n{wait}{rest}"
    run = subprocess.run(["bash", "-c", full], cwd=workdir, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"variant_key":"chr20-150099-C-T"' in run.stdout
    assert '"cohort_size":' in run.stdout  # the registered token's cohort frequencies
    assert "revoked token 'alice'" in run.stdout + run.stderr


# Examples not run: ``serve`` runs until stopped (the server block serves the same way), ``simulate`` is
# the Use block's first line.
NOT_RUN = ("serve", "simulate")


@skip_without_tool("bcftools")
def test_every_help_example_runs_on_the_demo_cohort(workdir):
    """After the README's blocks (test order): each ``--help`` example, line by line, exits 0."""
    env = _env(workdir)
    lines = [line for command, text in EXAMPLES.items() if command not in NOT_RUN for line in text.splitlines()]
    assert len(lines) >= len(EXAMPLES)
    for line in lines:
        run = subprocess.run(line, shell=True, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, f"{line}\n{run.stderr[-2000:]}"
    assert (workdir / "out.vcf.gz.csi").stat().st_size > 0
    assert (workdir / "variants.parquet").stat().st_size > 0
    assert (workdir / "chr20.gq" / "index.duckdb").exists()
