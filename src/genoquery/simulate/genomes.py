"""msprime runs for the simulated regions of chr20 and chrX.

Each contig is its own ancestry + mutation simulation of ``sequence_length``
bp. Sample individuals map one-to-one to cohort samples, in their ancestry's
population. On chrX, males are simulated as haploid individuals (one X) and
population sizes are scaled by 3/4; the region is placed after PAR1 so every
male call is haploid.

One extra haploid sample from EUR plays the reference genome: REF at a site
is the allele this haplotype carries, so some ALT alleles are ancestral and
common (as with GRCh38), and sites where no cohort haplotype differs from
the reference are not variants.

Positions: msprime's discrete genome puts sites at distinct integer
positions 0..L-1, so no two sites collide; VCF POS = msprime position + 1 +
the contig's ``offset`` (1-based, strictly increasing). Mutations follow
msprime's default JC69 model over ACGT, so a site has at most 4 alleles
(allele indexes 0..3) and some sites are multi-allelic.
"""

from __future__ import annotations

from dataclasses import dataclass

import msprime
import numpy as np
import tskit

from genoquery.simulate.demography import (
    MUTATION_RATE,
    POPULATIONS,
    RECOMBINATION_RATE,
    out_of_africa_admixture,
)
from genoquery.simulate.design import CohortDesign


@dataclass(frozen=True)
class ContigSpec:
    """A contig of GRCh38 (name and length) and where the simulated region starts on it."""

    name: str
    length: int
    offset: int  # VCF POS = msprime position + 1 + offset
    haploid_males: bool
    size_scale: float  # population size factor for the demography


CHR20 = ContigSpec("chr20", 64_444_167, offset=0, haploid_males=False, size_scale=1.0)
CHRX = ContigSpec("chrX", 156_040_895, offset=2_781_479, haploid_males=True, size_scale=0.75)
"""chrX region starts right after PAR1 (GRCh38 chrX:10,001-2,781,479)."""
CONTIGS: tuple[ContigSpec, ...] = (CHR20, CHRX)


@dataclass
class SimulatedContig:
    """A mutated tree sequence plus the map from its nodes to VCF haplotype columns.

    Haplotypes are numbered in VCF order: sample 0's alleles first (two, or
    one for a haploid call), then sample 1's, etc.
    """

    spec: ContigSpec
    ts: tskit.TreeSequence
    hap_node: np.ndarray  # (H,) node id of each VCF haplotype
    hap_sample: np.ndarray  # (H,) joint-order sample index
    hap_slot: np.ndarray  # (H,) 0 = first allele of the call, 1 = second
    ploidy: np.ndarray  # (n_samples,) 1 or 2
    ref_node: int  # the reference-genome haplotype (not written)


def simulate_contig(
    design: CohortDesign, spec: ContigSpec, sequence_length: int, ancestry_seed: int, mutation_seed: int
) -> SimulatedContig:
    """Simulate ``spec`` for the cohort of ``design``."""
    n = design.n_samples
    ploidy = np.where(spec.haploid_males & ~design.female, 1, 2)
    sample_sets, members = [], []
    for pop_index, pop in enumerate(POPULATIONS):
        for p in (2, 1):
            idx = np.flatnonzero((design.ancestry == pop_index) & (ploidy == p))
            if len(idx):
                sample_sets.append(msprime.SampleSet(len(idx), population=pop, ploidy=p))
                members.append(idx)
    sample_sets.append(msprime.SampleSet(1, population="EUR", ploidy=1))  # reference genome
    ts = msprime.sim_ancestry(
        samples=sample_sets,
        demography=out_of_africa_admixture(spec.size_scale),
        sequence_length=sequence_length,
        recombination_rate=RECOMBINATION_RATE,
        random_seed=ancestry_seed,
    )
    ts = msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=mutation_seed)

    # individuals appear in SampleSet order; their nodes are consecutive sample nodes
    order = np.concatenate(members)  # individual i -> joint sample order[i]
    sample_nodes = ts.samples()
    node_ind = ts.nodes_individual[sample_nodes]
    ref_node = int(sample_nodes[node_ind == n][0])
    sample_nodes, node_ind = sample_nodes[node_ind < n], node_ind[node_ind < n]
    joint_sample = order[node_ind]
    by_sample = np.lexsort((sample_nodes, joint_sample))
    hap_node = sample_nodes[by_sample].astype(np.int32)
    hap_sample = joint_sample[by_sample]
    first = np.concatenate([[True], hap_sample[1:] != hap_sample[:-1]])
    hap_slot = np.where(first, 0, 1).astype(np.int8)
    return SimulatedContig(spec, ts, hap_node, hap_sample, hap_slot, ploidy, ref_node)
