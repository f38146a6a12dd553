"""CI's lint step (``.ci/lint``, which ``./run.sh lint`` and ``.ci/run`` run before the tests)
fails on a broken style rule, an unformatted file or an upward import, and passes on the tree
as committed. Each case runs the real script on a copy of the project with one fault put in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
COPIED = ("src", "tests", "benchmarks", "pyproject.toml", ".ci")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's linted files (no venv, no caches)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", "results")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=ignore)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def lint(project: Path) -> subprocess.CompletedProcess:
    """``.ci/lint`` on ``project`` with this test run's venv; ``genoquery`` resolves to the copy."""
    env = dict(os.environ, GENOQUERY_VENV=sys.prefix, PYTHONPATH=str(project / "src"))
    return subprocess.run([str(project / ".ci" / "lint")], cwd=project, env=env, capture_output=True, text=True)


def test_the_committed_tree_passes(project):
    result = lint(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_an_import_inside_a_function_fails(project):
    errors = project / "src" / "genoquery" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _late() -> object:\n    import json\n\n    return json\n")
    result = lint(project)
    assert result.returncode != 0
    assert "PLC0415" in result.stdout


def test_an_unformatted_file_fails(project):
    errors = project / "src" / "genoquery" / "errors.py"
    errors.write_text(errors.read_text() + "\nLATE = {'a':1}\n")
    result = lint(project)
    assert result.returncode != 0
    assert "would be reformatted" in result.stdout + result.stderr


def test_an_upward_import_breaks_the_layers(project):
    """The storage layer importing the server (layers up) is refused by the layers contract."""
    module = project / "src" / "genoquery" / "storage" / "schema.py"
    module.write_text(module.read_text() + "\nfrom genoquery.server import problems as _problems  # noqa: E402, F401\n")
    result = lint(project)
    assert result.returncode != 0
    assert "genoquery.storage is not allowed to import genoquery.server" in result.stdout
