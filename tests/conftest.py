"""Shared fixtures: the package under test, data paths, store paths, and the one sanctioned skip.

A test may skip only because an external tool that ``./run.sh test`` installs (bcftools,
plink2, Debian's htslib-test files) is absent on this machine: :func:`skip_without_tool` is
that skip, and any other skip fails the run (:func:`pytest_runtest_makereport`).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import sys
import warnings
from pathlib import Path

import fsspec
import pytest
from moto.server import ThreadedMotoServer

import genoquery

TESTS = Path(__file__).parent
DATA = TESTS / "data"
sys.path.insert(0, str(TESTS))  # tests/oracle.py, tests/checks.py, tests/vcf_strategies.py
# Commands run in a process of their own, as when no daemon runs: the tests of the daemon itself
# (tests/test_daemon.py) turn it on with a private directory; others must not leave daemons behind.
os.environ["GENOQUERY_DAEMON"] = "0"

# zarr 3 warns about consolidated metadata on every open; it is not what these tests look at.
warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)

MISSING_TOOL = "external tool missing: "


def skip_without_tool(name: str, present: bool | None = None, install: str = "") -> pytest.MarkDecorator:
    """A skip mark for tests that need the external tool ``name`` (on PATH, unless ``present``
    says whether it is installed); the only skip this suite allows."""
    present = shutil.which(name) is not None if present is None else present
    hint = f" ({install})" if install else ""
    return pytest.mark.skipif(not present, reason=f"{MISSING_TOOL}{name}{hint}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip for any reason but a missing external tool is a failure: a test that cannot run
    here must say so loudly, not pass quietly."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not reason.removeprefix("Skipped: ").startswith(MISSING_TOOL):
            report.outcome = "failed"
            report.longrepr = f"skipped for a reason other than a missing external tool: {reason}"
    return report


@pytest.fixture(scope="session")
def gq():
    """The genoquery package under test (an import error fails the collection, never skips)."""
    return genoquery


@pytest.fixture
def data() -> Path:
    return DATA


S3_BUCKET = "genoquery-tests"


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> str:
    """A real S3-protocol server on loopback (moto's, on a free port) for the session, with a
    bucket :data:`S3_BUCKET`; the AWS variables point at it and ``GENOQUERY_CACHE`` (the local
    mirrors of stores on object storage) at a temporary directory. Returns the endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "genoquery-test",
        "AWS_SECRET_ACCESS_KEY": "genoquery-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "GENOQUERY_CACHE": str(tmp_path_factory.mktemp("genoquery-cache")),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    fsspec.filesystem("s3").mkdir(S3_BUCKET)
    yield endpoint
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


def s3_store_url(request) -> str:
    """A new store URL in the session's bucket, under a prefix of its own."""
    request.getfixturevalue("s3")
    return f"s3://{S3_BUCKET}/{secrets.token_hex(6)}/cohort.gq"


@pytest.fixture
def store_path(request, tmp_path: Path) -> Path | str:
    """A store path in its own empty directory (so the directory listing shows any staging
    leftovers). Parametrised indirectly with ``s3`` (``checks.LOCAL_AND_S3``), a URL of a store on
    the loopback S3 server instead: the same test then runs on both."""
    if getattr(request, "param", "local") == "s3":
        return s3_store_url(request)
    parent = tmp_path / "stores"
    parent.mkdir()
    return parent / "cohort.gq"


@pytest.fixture
def write_vcf(tmp_path: Path):
    """write_vcf(name, text) -> path of a small VCF written in the test's tmp dir."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
