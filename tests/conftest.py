"""Shared fixtures: the package under test (skipped until its ingest lands), data paths, store paths."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
DATA = TESTS / "data"
sys.path.insert(0, str(TESTS))  # tests/oracle.py, tests/checks.py, tests/vcf_strategies.py

# zarr 3 warns about consolidated metadata on every open; it is not what these tests look at.
warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)


@pytest.fixture(scope="session")
def gq():
    """The genoquery package, or a skip while its ingest/open are not implemented yet."""
    try:
        import genoquery
    except ImportError as err:
        pytest.skip(f"genoquery does not import yet ({err}); the ingest implementation has not landed")
    for name in ("ingest", "open", "GenoqueryError"):
        if not hasattr(genoquery, name):
            pytest.skip(f"genoquery.{name} does not exist yet")
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
