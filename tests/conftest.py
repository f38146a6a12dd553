"""Shared fixtures: the package under test, data paths, store paths, and the one sanctioned skip.

A test may skip only because an external tool that ``./run.sh test`` installs (bcftools,
plink2, Debian's htslib-test files) is absent on this machine: :func:`skip_without_tool` is
that skip, and any other skip fails the run (:func:`pytest_runtest_makereport`).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import pytest

import genoquery

TESTS = Path(__file__).parent
DATA = TESTS / "data"
sys.path.insert(0, str(TESTS))  # tests/oracle.py, tests/checks.py, tests/vcf_strategies.py

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


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A store path in its own empty directory (so the directory listing shows any staging leftovers)."""
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
