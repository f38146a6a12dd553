"""Helpers shared by the side-by-side benchmark scripts: sizes on disk and tool versions."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path


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
