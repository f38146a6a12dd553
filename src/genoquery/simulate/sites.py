"""True genotypes of each variant site: sparse for rare alleles, dense for common ones.

The haplotypes below each mutation are read from its subtree
(``Tree.preorder``), in time proportional to the allele count (decoding
every site over all haplotypes, as ``ts.variants()`` does, costs O(samples)
per site and most sites are rare). A rare site is kept as sparse
(haplotype, allele) entries; a site is kept dense (one int8 allele index per
haplotype) when more than 1/:data:`DENSE_DIVISOR` of the haplotypes lie
below its mutations or the reference haplotype does (REF is then a derived
allele and most haplotypes carry an ALT).

REF is the allele of the reference haplotype; ALTs are the other alleles
present in the cohort, in msprime allele order (ancestral state, then
mutations in table order). Allele indexes are VCF's: 0 = REF, 1..3 = ALT.
Positions are VCF 1-based: msprime position + 1 + the contig offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import tskit

from genoquery.simulate.genomes import SimulatedContig

DENSE_DIVISOR = 8


@dataclass
class SiteChunk:
    """Consecutive variant sites of one contig and their true non-REF alleles."""

    pos: list[int] = field(default_factory=list)  # VCF POS, 1-based
    ref: list[str] = field(default_factory=list)
    alts: list[list[str]] = field(default_factory=list)
    alt_count: list[np.ndarray] = field(default_factory=list)  # true copies of each ALT in the cohort
    hap_parts: list[np.ndarray] = field(default_factory=list)  # sparse rows: non-REF haplotypes
    allele_parts: list[np.ndarray | int] = field(default_factory=list)  # int: one ALT for all of them
    dense: dict[int, np.ndarray] = field(default_factory=dict)  # row -> (H,) int8 allele of every haplotype
    n_visited: int = 0  # msprime sites consumed (including non-variant ones), for progress

    def __len__(self) -> int:
        return len(self.pos)

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse rows as (entries per row, haplotype, allele): int64 (c,), int64 (E,), int8 (E,).

        Dense rows have no entries here (see ``dense``).
        """
        lens = np.array([len(h) for h in self.hap_parts], dtype=np.int64)
        if not len(lens) or not lens.sum():
            return lens, np.zeros(0, np.int64), np.zeros(0, np.int8)
        haps = np.concatenate(self.hap_parts)
        scalar = np.array([a if isinstance(a, int) else 0 for a in self.allele_parts], dtype=np.int8)
        alleles = np.repeat(scalar, lens)
        ends = np.cumsum(lens)
        for i, a in enumerate(self.allele_parts):
            if not isinstance(a, int):
                alleles[ends[i] - lens[i] : ends[i]] = a
        return lens, haps, alleles

    def _add(self, pos: int, ref: str, alts: list[str], alt_count: np.ndarray) -> int:
        self.pos.append(pos)
        self.ref.append(ref)
        self.alts.append(alts)
        self.alt_count.append(alt_count)
        return len(self.pos) - 1


_EMPTY = np.zeros(0, dtype=np.int64)


def _site(
    tree: tskit.Tree,
    ancestral: str,
    nodes: list[int],
    derived: list[str],
    node_hap: np.ndarray,
    n_haps: int,
    ref_node: int,
):
    """Alleles of one site: (ref, alts, alt_counts, haps, alleles, dense) or None if no cohort ALT.

    Sparse result: ``haps``/``alleles`` list the non-REF haplotypes (``alleles`` may be the
    int 1 for all). Dense result: ``haps`` is None and ``dense`` holds every haplotype's allele.
    """
    states = [ancestral]
    parts, part_state = [], []
    ref_state = 0
    for node, state in zip(nodes, derived, strict=True):
        if state not in states:
            states.append(state)
        below = node_hap[tree.preorder(node)]
        parts.append(below[below >= 0])
        part_state.append(states.index(state))
        if tree.is_descendant(ref_node, node):
            ref_state = part_state[-1]  # later mutations are deeper: the last one above wins
    if len(parts) == 1:
        haps = parts[0]
        if not len(haps) or (ref_state == 0 and len(haps) <= n_haps // DENSE_DIVISOR):
            # the common case: one rare mutation, every carrier has ALT 1
            return (ancestral, [states[1]], np.array([len(haps)]), haps, 1, None) if len(haps) else None
        st = np.full(len(haps), part_state[0], dtype=np.int8)
    else:  # recurrent/back mutations: a haplotype takes the last (deepest) state
        haps = np.concatenate(parts)[::-1]
        st = np.repeat(np.array(part_state, dtype=np.int8), [len(p) for p in parts])[::-1]
        haps, first = np.unique(haps, return_index=True)
        st = st[first]
    counts = np.bincount(st, minlength=len(states))
    counts[0] += n_haps - len(haps)
    alt_states = [s for s in range(len(states)) if s != ref_state and counts[s] > 0]
    if not alt_states:
        return None
    code = np.zeros(len(states), dtype=np.int8)
    code[alt_states] = np.arange(1, len(alt_states) + 1)
    ref, alts = states[ref_state], [states[s] for s in alt_states]
    if ref_state == 0 and len(haps) <= n_haps // DENSE_DIVISOR:
        keep = st != 0
        return ref, alts, counts[alt_states], haps[keep], code[st[keep]], None
    dense = np.full(n_haps, code[0], dtype=np.int8)
    dense[haps] = code[st]
    return ref, alts, counts[alt_states], None, None, dense


def iter_site_chunks(contig: SimulatedContig, max_rows: int) -> Iterator[SiteChunk]:
    """Yield chunks of at most ``max_rows`` variant sites in position order."""
    ts = contig.ts
    n_haps = len(contig.hap_node)
    node_hap = np.full(ts.num_nodes, -1, dtype=np.int64)
    node_hap[contig.hap_node] = np.arange(n_haps)
    ref_node = contig.ref_node
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
            got = _site(tree, ancestral[site], mut_node[m0:m1], mut_state[m0:m1], node_hap, n_haps, ref_node)
            if got is None:
                continue
            ref, alts, alt_count, haps, alleles, dense = got
            row = chunk._add(int(position[site]) + 1 + offset, ref, alts, alt_count)
            if dense is None:
                chunk.hap_parts.append(haps)
                chunk.allele_parts.append(alleles)
            else:
                chunk.dense[row] = dense
                chunk.hap_parts.append(_EMPTY)
                chunk.allele_parts.append(0)
            if len(chunk.pos) >= max_rows:
                yield chunk
                chunk = SiteChunk()
    if chunk.pos or chunk.n_visited:
        yield chunk
