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
    hap_parts: list[np.ndarray] = field(default_factory=list)
    allele_parts: list[np.ndarray | int] = field(default_factory=list)  # int: same ALT for all haps
    n_visited: int = 0   # msprime sites consumed (including non-variant ones), for progress

    def __len__(self) -> int:
        return len(self.pos)

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entries per site, haplotype, allele) arrays: int64 (c,), int64 (E,), int8 (E,), by site."""
        lens = np.array([len(h) for h in self.hap_parts], dtype=np.int64)
        if not len(lens):
            return lens, np.zeros(0, np.int64), np.zeros(0, np.int8)
        haps = np.concatenate(self.hap_parts)
        scalar = np.array([a if isinstance(a, int) else 0 for a in self.allele_parts], dtype=np.int8)
        alleles = np.repeat(scalar, lens)
        ends = np.cumsum(lens)
        for i, a in enumerate(self.allele_parts):
            if not isinstance(a, int):
                alleles[ends[i] - lens[i]:ends[i]] = a
        return lens, haps, alleles


def _site_entries(tree, ancestral: str, nodes: list[int], derived: list[str], node_hap: np.ndarray,
                  n_haps: int, ref_node: int):
    """(ref, alts, alt_counts, haps, alleles) of one site, or None if no cohort haplotype carries an ALT.

    ``nodes``/``derived``: the site's mutations in table order (parents before children).
    """
    states = [ancestral]
    hap_parts, state_of_part = [], []
    ref_state = 0
    for node, state in zip(nodes, derived):
        if state not in states:
            states.append(state)
        si = states.index(state)
        below = node_hap[tree.preorder(node)]
        hap_parts.append(below[below >= 0])
        state_of_part.append(si)
        if tree.is_descendant(ref_node, node):
            ref_state = si   # later mutations are deeper: the last one above the reference wins
    if len(hap_parts) == 1:
        haps = hap_parts[0]
        if ref_state == 0:   # the common case: one mutation, REF ancestral, every carrier has ALT 1
            return (states[0], [states[1]], np.array([len(haps)]), haps, 1) if len(haps) else None
        st = np.full(len(haps), state_of_part[0], dtype=np.int8)
    else:   # recurrent/back mutations: a haplotype takes the last (deepest) state
        haps = np.concatenate(hap_parts)[::-1]
        st = np.repeat(np.array(state_of_part, dtype=np.int8), [len(h) for h in hap_parts])[::-1]
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
    # table columns, read once (tskit objects per site/mutation are slow)
    position = ts.sites_position
    ancestral = ts.sites_ancestral_state.tolist()
    mut_node = ts.mutations_node.tolist()
    mut_state = ts.mutations_derived_state.tolist()
    mut_start = np.searchsorted(ts.mutations_site, np.arange(ts.num_sites + 1)).tolist()
    chunk = SiteChunk()
    for tree in ts.trees():
        left, right = tree.interval
        lo, hi = np.searchsorted(position, [left, right]).tolist()
        for site in range(lo, hi):
            chunk.n_visited += 1
            m0, m1 = mut_start[site], mut_start[site + 1]
            if m0 == m1:
                continue
            got = _site_entries(tree, ancestral[site], mut_node[m0:m1], mut_state[m0:m1], node_hap,
                                n_haps, contig.ref_node)
            if got is None:
                continue
            ref, alts, alt_count, haps, alleles = got
            chunk.pos.append(int(position[site]) + 1 + offset)
            chunk.ref.append(ref)
            chunk.alts.append(alts)
            chunk.alt_count.append(alt_count)
            chunk.hap_parts.append(haps)
            chunk.allele_parts.append(alleles)
            if len(chunk.pos) >= max_rows:
                yield chunk
                chunk = SiteChunk()
    if chunk.pos or chunk.n_visited:
        yield chunk
