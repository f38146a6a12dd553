"""Property: for any valid VCF (tests/vcf_strategies.py), ingest equals the bcftools oracle.

Every genotype and phase flag, every site field and every per-allele
statistic is compared, for text VCF, bgzipped VCF and BCF; a second property
splits a document into files by contig and gives them shuffled, with a
persons table, and compares the per-group statistics.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checks
import oracle
from vcf_strategies import VcfDoc, vcf_documents

# Random examples while developing; a fixed sequence in CI (CI=true), so a submission's
# result does not depend on the draw.
SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _materialise(doc: VcfDoc, workdir: Path, fmt: str, name: str = "doc") -> Path:
    text = workdir / f"{name}.vcf"
    text.write_text(doc.text)
    if fmt == "vcf":
        return text
    if fmt == "vcf.gz":
        return checks.bgzip(text, workdir / f"{name}.vcf.gz")
    return checks.to_bcf(text, workdir / f"{name}.bcf")


@settings(max_examples=30, **SETTINGS)
@given(doc=vcf_documents(), fmt=st.sampled_from(["vcf", "vcf", "vcf.gz", "bcf"]))
def test_ingest_equals_oracle(gq, doc, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = _materialise(doc, tmp, fmt)
        reference = tmp / "doc.vcf"
        store_path = tmp / "store.gq"
        store = gq.ingest(store_path, [src])
        checks.assert_sites_match(store_path, [reference])
        checks.assert_genotypes_match(store_path, [reference])
        checks.assert_variants_match(store, [reference])
        assert [r["sample_id"] for r in store.samples().to_pylist()] == list(doc.samples)
        checks.assert_ids_match(store_path, [reference])


@st.composite
def split_documents(draw):
    doc = draw(vcf_documents(min_samples=1, max_samples=8).filter(lambda d: len(d.contigs) >= 2))
    groups = draw(
        st.lists(st.sampled_from(["AFR", "EUR", "EAS"]), min_size=len(doc.samples), max_size=len(doc.samples))
    )
    order = draw(st.permutations(range(len(doc.contigs))))
    return doc, groups, order


@settings(max_examples=12, **SETTINGS)
@given(case=split_documents())
def test_split_files_and_groups_equal_oracle(gq, case):
    doc, groups, order = case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        whole = _materialise(doc, tmp, "vcf")
        parts = [checks.subset_targets(whole, tmp / f"part{i}.vcf", contig) for i, contig in enumerate(doc.contigs)]
        parts = [p for p in parts if oracle.sites(p)]  # a contig may hold no records
        if not parts:
            parts = [whole]
        persons = tmp / "persons.tsv"
        persons.write_text(
            "sample_id\tancestry\n" + "".join(f"{s}\t{g}\n" for s, g in zip(doc.samples, groups, strict=True))
        )
        store_path = tmp / "store.gq"
        given_order = [parts[i] for i in order if i < len(parts)] + parts[len(order) :]
        store = gq.ingest(store_path, given_order, persons=persons)
        checks.assert_genotypes_match(store_path, [whole])
        checks.assert_variants_match(store, [whole])
        members: dict[str, list[str]] = {}
        for s, g in zip(doc.samples, groups, strict=True):
            members.setdefault(g, []).append(s)
        if doc.n_records:
            checks.assert_group_stats_match(store, [whole], "ancestry", members)
        shutil.rmtree(store_path, ignore_errors=True)
