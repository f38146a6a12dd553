"""simulate_cohort: a multi-center biobank cohort as VCFs plus person and EHR tables.

One pass over the variant sites of each contig writes all VCFs at once:
the joint callset file of the contig and every center file (chr20 records,
then chrX records), so a sample's calls are the same text in both. Random
streams are split from ``numpy.random.SeedSequence(seed)``, one per purpose,
so the output depends only on the seed and the parameters (not on threads or
``progress``).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genoquery.errors import GenoqueryError
from genoquery.simulate.annotate import SiteAnnotator, record_prefixes, vcf_header
from genoquery.simulate.calls import CallBuffers
from genoquery.simulate.demography import MUTATION_RATE, POPULATIONS, RECOMBINATION_RATE
from genoquery.simulate.design import design_cohort
from genoquery.simulate.genomes import CONTIGS, simulate_contig
from genoquery.simulate.layout import build_layout
from genoquery.simulate.phenotypes import MAX_PCA_SITES, GenotypeCollector, simulate_phenotypes
from genoquery.simulate.sites import iter_site_chunks
from genoquery.simulate.vcf_file import IndexedVcfWriter

BUFFER_BYTES = 32 << 20
"""Bytes of sample-column text per chunk of sites (bounds memory at any cohort size)."""


@dataclass(frozen=True)
class CohortFiles:
    """Paths written by :func:`simulate_cohort` (each VCF has a ``.tbi`` next to it)."""

    out_dir: Path
    center_vcfs: tuple[Path, ...]  # center1.vcf.gz ... (chr20 and chrX)
    joint_vcfs: tuple[Path, ...]  # cohort.chr20.vcf.gz, cohort.chrX.vcf.gz
    persons: Path
    conditions: Path
    truth: Path

    def __str__(self) -> str:
        names = [p.name for p in (*self.center_vcfs, *self.joint_vcfs, self.persons, self.conditions, self.truth)]
        return f"{self.out_dir}: " + ", ".join(names)


def _check(
    n_samples: int, n_centers: int, sequence_length: int, seed: int, missing_rate: float, phased_fraction: float
) -> None:
    problems = []
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        problems.append(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        problems.append(f"n_samples must be an integer >= 2, got {n_samples!r}")
    elif not isinstance(n_centers, (int, np.integer)) or not 1 <= n_centers <= n_samples:
        problems.append(f"n_centers must be an integer from 1 to n_samples, got {n_centers!r}")
    longest = min(c.length - c.offset for c in CONTIGS)
    if not isinstance(sequence_length, (int, np.integer)) or not 1_000 <= sequence_length <= longest:
        problems.append(f"sequence_length must be an integer from 1000 to {longest} bp, got {sequence_length!r}")
    if not 0 <= missing_rate <= 0.5:
        problems.append(f"missing_rate must be in [0, 0.5], got {missing_rate!r}")
    if not 0 <= phased_fraction <= 1:
        problems.append(f"phased_fraction must be in [0, 1], got {phased_fraction!r}")
    if problems:
        raise GenoqueryError("simulate: " + "; ".join(problems))


def simulate_cohort(
    out_dir: str | os.PathLike[str],
    *,
    n_samples: int = 3000,
    n_centers: int = 3,
    sequence_length: int = 1_000_000,
    seed: int = 1,
    missing_rate: float = 0.01,
    phased_fraction: float = 0.5,
    progress: bool = False,
) -> CohortFiles:
    """Simulate a cohort and write its files into ``out_dir`` (created if absent; files replaced).

    ``sequence_length`` bp are simulated on chr20 (POS 1..L) and on chrX
    (POS 2,781,480..; after PAR1). ``missing_rate`` is the mean fraction of
    missing calls. ``phased_fraction`` is the fraction of centers delivering
    phased calls (rounded; with 0 < fraction < 1 and several centers, at
    least one phased and one unphased center). ``progress`` shows tqdm bars.
    The output depends only on the other arguments. Invalid arguments raise
    :class:`~genoquery.errors.GenoqueryError`.
    """
    _check(n_samples, n_centers, sequence_length, seed, missing_rate, phased_fraction)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = {
        "n_samples": int(n_samples),
        "n_centers": int(n_centers),
        "sequence_length": int(sequence_length),
        "seed": int(seed),
        "missing_rate": float(missing_rate),
        "phased_fraction": float(phased_fraction),
    }
    streams = np.random.SeedSequence(int(seed)).spawn(8)
    rng_design, rng_calls, rng_annot, rng_collect, rng_pheno = (np.random.default_rng(s) for s in streams[:5])
    msprime_seeds = [int(x) + 1 for x in streams[5].generate_state(2 * len(CONTIGS), dtype=np.uint32) >> 1]

    design = design_cohort(rng_design, n_samples, n_centers, phased_fraction)
    center_members = [design.center_members(k) for k in range(n_centers)]
    joint_paths = {c.name: out / f"cohort.{c.name}.vcf.gz" for c in CONTIGS}
    center_paths = [out / f"center{k + 1}.vcf.gz" for k in range(n_centers)]
    collector = GenotypeCollector(rng_collect, n_samples, max(1, sequence_length // MAX_PCA_SITES))
    annotator = SiteAnnotator(rng_annot)
    n_records: dict[str, int] = {}
    regions: dict[str, dict[str, int]] = {}

    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        centers = [
            IndexedVcfWriter(p, vcf_header(design.sample_id[m], params), pool)
            for p, m in zip(center_paths, center_members, strict=True)
        ]
        for ci, spec in enumerate(CONTIGS):
            joint = IndexedVcfWriter(joint_paths[spec.name], vcf_header(design.sample_id, params), pool)
            sim = simulate_contig(design, spec, sequence_length, msprime_seeds[2 * ci], msprime_seeds[2 * ci + 1])
            layout = build_layout(design, sim.ploidy, sim.hap_sample, sim.hap_slot)
            max_rows = int(np.clip(BUFFER_BYTES // max(layout.width, 1), 16, 4096))
            buffers = CallBuffers(design, layout, sim.ploidy, sim.hap_sample, sim.hap_slot, max_rows)
            bar = _progress_bar(progress, sim.ts.num_sites, spec.name)
            for chunk in iter_site_chunks(sim, max_rows):
                bar.update(chunk.n_visited)
                if not len(chunk):
                    continue
                lens, haps, alleles = chunk.entries()
                calls = buffers.fill(rng_calls, lens, haps, alleles, chunk.dense, missing_rate)
                ids, quals, filters = annotator.annotate(chunk.alt_count, buffers.n_haps)
                pos = np.array(chunk.pos, dtype=np.int64)
                ref_len = np.array([len(r) for r in chunk.ref], dtype=np.int64)
                every = np.arange(len(chunk))
                joint.write_rows(
                    spec.name,
                    record_prefixes(
                        spec.name,
                        chunk.pos,
                        ids,
                        chunk.ref,
                        chunk.alts,
                        quals,
                        filters,
                        calls.joint_ac,
                        calls.joint_an,
                        every,
                    ),
                    buffers.rows,
                    every,
                    pos,
                    ref_len,
                )
                for k, writer in enumerate(centers):
                    kept = np.flatnonzero(calls.center_keep[k])
                    if len(kept):
                        pre = record_prefixes(
                            spec.name,
                            chunk.pos,
                            ids,
                            chunk.ref,
                            chunk.alts,
                            quals,
                            filters,
                            calls.center_ac[k],
                            calls.center_an[k],
                            kept,
                        )
                        writer.write_rows(
                            spec.name,
                            pre,
                            buffers.rows,
                            kept,
                            pos[kept],
                            ref_len[kept],
                            (int(layout.center_start[k]), int(layout.center_width[k])),
                        )
                collector.add(
                    spec.name,
                    chunk,
                    calls.rows,
                    haps,
                    sim.hap_sample,
                    sim.ploidy,
                    buffers.n_haps,
                    calls.missing_row,
                    calls.missing_sample,
                )
                buffers.reset()
                regions.setdefault(spec.name, {"first_pos": int(pos[0])})["last_pos"] = int(pos[-1])
            bar.close()
            joint.close()
            n_records[joint.path.name] = joint.n_records
            del sim, buffers, layout
        for writer in centers:
            writer.close()
            n_records[writer.path.name] = writer.n_records

    persons, conditions, traits = simulate_phenotypes(rng_pheno, design, collector)
    files = CohortFiles(
        out,
        tuple(center_paths),
        tuple(joint_paths.values()),
        out / "persons.tsv",
        out / "conditions.tsv",
        out / "truth.json",
    )
    persons.to_csv(files.persons, sep="\t", index=False, na_rep="", lineterminator="\n")
    conditions.to_csv(files.conditions, sep="\t", index=False, lineterminator="\n")
    truth = {
        "seed": int(seed),
        "parameters": params,
        "model": {
            "demography": "Browning et al. 2018 out-of-Africa + admixed American (AmericanAdmixture_4B11)",
            "populations": list(POPULATIONS),
            "mutation_rate": MUTATION_RATE,
            "recombination_rate": RECOMBINATION_RATE,
            "mutation_model": "JC69 (msprime default)",
            "chrX": "males haploid, population sizes x0.75, region after PAR1",
        },
        "contigs": {c.name: {"length": c.length, "pos_offset": c.offset, **regions.get(c.name, {})} for c in CONTIGS},
        "n_records": n_records,
        "n_samples_by_ancestry": {p: int((design.ancestry == i).sum()) for i, p in enumerate(POPULATIONS)},
        "n_samples_by_center": {f"center{k + 1}": len(m) for k, m in enumerate(center_members)},
        "phased_centers": [f"center{k + 1}" for k in design.phased_centers],
        "traits": traits,
    }
    files.truth.write_text(json.dumps(truth, indent=2) + "\n")
    return files


def _progress_bar(enabled: bool, total: int, name: str):
    return tqdm(total=total, desc=f"simulate {name}", unit="site", disable=not enabled)
