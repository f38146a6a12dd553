"""True genotypes of each variant site, as sparse non-REF entries.

Instead of decoding every site to a dense vector of all haplotypes (what
``ts.variants()`` does, O(samples) per site), the haplotypes carrying each
mutation are read from the subtree below it (``Tree.preorder``), which is
proportional to the allele count: most sites are rare. A site whose REF (the
reference haplotype's allele) is not the ancestral state is decoded densely.

Output per chunk of sites: VCF 1-based positions, REF and ALT strings and,
for every haplotype that does not carry REF, (row, haplotype, allele index),
with allele indexes in VCF order (0 = REF, ALTs 1..3). ALTs are the
non-REF alleles present in the cohort, in msprime allele order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from genoquery.simulate.genomes import SimulatedContig


@dataclass
class SiteChunk:
    """Consecutive variant sites of one contig and their non-REF haplotypes."""

    pos: list[int] = field(default_factory=list)           # VCF POS, 1-based
    ref: list[str] = field(default_factory=list)
    alts: list[list[str]] = field(default_factory=list)
    alt_count: list[np.ndarray] = field(default_factory=list)  # true copies of each ALT in the cohort
    rows: list[np.ndarray] = field(default_factory=list)
    haps: list[np.ndarray] = field(default_factory=list)
    alleles: list[np.ndarray] = field(default_factory=list)
    n_visited: int = 0   # msprime sites consumed (including non-variant ones), for progress

    def __len__(self) -> int:
        return len(self.pos)

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Concatenated (row, haplotype, allele) arrays: int64, int64, int8."""
        if not self.rows:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8))
        return (np.concatenate(self.rows), np.concatenate(self.haps), np.concatenate(self.alleles))


def _site_entries(tree, site, node_hap: np.ndarray, n_haps: int, ref_node: int):
    """(ref, alts, alt_counts, haps, alleles) of one site, or None if no cohort ALT."""
    states = [site.ancestral_state]
    hap_parts, state_parts = [], []
    ref_state = 0
    for mut in site.mutations:
        if mut.derived_state not in states:
            states.append(mut.derived_state)
        si = states.index(mut.derived_state)
        below = node_hap[tree.preorder(mut.node)]
        below = below[below >= 0]
        hap_parts.append(below)
        state_parts.append(np.full(len(below), si, dtype=np.int8))
        if tree.is_descendant(ref_node, mut.node):
            ref_state = si   # mutations are ordered parent before child: deepest wins
    haps, st = hap_parts[0], state_parts[0]
    if len(hap_parts) > 1:   # recurrent/back mutations: a haplotype takes the last (deepest) state
        haps = np.concatenate(hap_parts)[::-1]
        st = np.concatenate(state_parts)[::-1]
        haps, first = np.unique(haps, return_index=True)
        st = st[first]
    counts = np.bincount(st, minlength=len(states))
    counts[0] += n_haps - len(haps)
    alt_states = [s for s in range(len(states)) if s != ref_state and counts[s] > 0]
    if not alt_states:
        return None
    code = np.zeros(len(states), dtype=np.int8)
    code[alt_states] = np.arange(1, len(alt_states) + 1)
    if ref_state == 0:
        keep = code[st] != 0
        haps, alleles = haps[keep], code[st[keep]]
    else:   # REF is derived: every haplotype outside the REF subtree carries an ALT
        full = np.full(n_haps, code[0], dtype=np.int8)
        full[haps] = code[st]
        haps = np.flatnonzero(full)
        alleles = full[haps]
    return (states[ref_state], [states[s] for s in alt_states], counts[alt_states],
            haps.astype(np.int64), alleles)


def iter_site_chunks(contig: SimulatedContig, max_rows: int) -> Iterator[SiteChunk]:
    """Yield chunks of at most ``max_rows`` variant sites in position order."""
    ts = contig.ts
    n_haps = len(contig.hap_node)
    node_hap = np.full(ts.num_nodes, -1, dtype=np.int64)
    node_hap[contig.hap_node] = np.arange(n_haps)
    offset = contig.spec.offset
    chunk = SiteChunk()
    for tree in ts.trees():
        for site in tree.sites():
            chunk.n_visited += 1
            got = _site_entries(tree, site, node_hap, n_haps, contig.ref_node)
            if got is None:
                continue
            ref, alts, alt_count, haps, alleles = got
            row = len(chunk.pos)
            chunk.pos.append(int(site.position) + 1 + offset)
            chunk.ref.append(ref)
            chunk.alts.append(alts)
            chunk.alt_count.append(alt_count)
            chunk.rows.append(np.full(len(haps), row, dtype=np.int64))
            chunk.haps.append(haps)
            chunk.alleles.append(alleles)
            if len(chunk.pos) >= max_rows:
                yield chunk
                chunk = SiteChunk()
    if chunk.pos or chunk.n_visited:
        yield chunk
