"""``genoquery verify --sources`` re-reads a VCF Zarr source (vcf2zarr's output) with zarr and
compares it call by call: a clean store verifies; a changed source, or a store whose calls were
changed after ingest, fails with a message naming the source, record and sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from genoquery.cli import main
from genoquery.storage.format import VCF_GROUP
from genoquery.verify import verify
from test_ingest_vcz import DATA, _ingest, convert


@pytest.fixture(scope="module")
def vcz(tmp_path_factory) -> Path:
    """multiallelic.vcf (partial and missing calls, several ALT alleles) as bio2zarr converts it."""
    return convert(DATA / "multiallelic.vcf", tmp_path_factory.mktemp("verify_vcz"))[1]


def test_a_clean_store_verifies_against_its_vcz_source(vcz, tmp_path, capsys) -> None:
    _ingest(tmp_path / "s.gq", [vcz]).close()
    report = verify(tmp_path / "s.gq", [vcz])
    assert report.ok, report.problems
    n_variants, n_samples = zarr.open_group(str(vcz), mode="r")["call_genotype"].shape[:2]
    assert (report.checked["sources"], report.checked["calls"]) == (1, n_variants * n_samples)
    assert main(["verify", str(tmp_path / "s.gq"), "--sources", str(vcz)]) == 0
    assert "verified" in capsys.readouterr().err


def test_a_changed_vcz_source_is_not_an_input(vcz, tmp_path) -> None:
    _ingest(tmp_path / "s.gq", [vcz]).close()
    changed = tmp_path / "changed.vcz"
    shutil.copytree(vcz, changed)
    calls = zarr.open_group(str(changed), mode="r+")["call_genotype"]
    calls[0, 0, 0] = 1 - int(calls[0, 0, 0])
    report = verify(tmp_path / "s.gq", [changed])
    assert not report.ok
    assert report.problems == [f"{changed}: its sha256 is not that of any ingested file (changed, or not an input)"]


def test_calls_changed_in_the_store_differ_from_the_vcz_source(vcz, tmp_path) -> None:
    _ingest(tmp_path / "s.gq", [vcz]).close()
    batch = next((tmp_path / "s.gq" / "batches").iterdir())
    stored = zarr.open_group(str(batch / VCF_GROUP), mode="r+")["call_genotype"]
    before = np.asarray(stored[2, 1])
    stored[2, 1, 0] = 1 - int(before[0]) if before[0] in (0, 1) else 0
    after = np.asarray(stored[2, 1]).tolist()
    source = zarr.open_group(str(vcz), mode="r")
    sample = str(source["sample_id"][1])
    pos = int(source["variant_position"][2])
    contig = str(source["contig_id"][int(source["variant_contig"][2])])
    report = verify(tmp_path / "s.gq", [vcz])
    genotype = [p for p in report.problems if "sample" in p]
    assert genotype == [
        f"{vcz} record 3 ({contig}:{pos}), sample {sample}: source {before.tolist()}, store {after} (1 samples differ)"
    ]
    assert any("sha256 differs from the manifest" in p for p in report.problems)  # the file check sees it too
