"""Plots of association results: Manhattan, QQ, PheWAS, allele frequency by ancestry.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no GUI
backend, safe in threads and servers) and, given ``path``, also writes it there in the
format of its suffix (``.png``, ``.svg``, ``.pdf``). matplotlib is imported here only, and
this module only when a plot is asked for, so that ``import genoquery`` stays fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure
from scipy import stats

from genoquery.errors import QueryError

if TYPE_CHECKING:
    from genoquery.query.store import Store

GENOME_WIDE = 5e-8


def _figure(width: float = 9, height: float = 4) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _done(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def _tested(results: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Rows with a p-value, and their -log10 p."""
    p = results["p"].to_numpy(zero_copy_only=False).astype(float)
    keep = np.isfinite(p) & (p > 0)
    if not keep.any():
        raise QueryError("no tested allele to plot (every p-value is missing)")
    return results.filter(pa.array(keep)), -np.log10(p[keep])


def manhattan(results: pa.Table, path: str | os.PathLike | None = None, title: str | None = None) -> Figure:
    """-log10 p against position (contigs side by side, in result order), with the genome-wide
    (5e-8) and Bonferroni lines. ``results`` is a :meth:`Store.associate` table."""
    tested, y = _tested(results)
    contigs = tested["contig"].to_pylist()
    pos = tested["pos"].to_numpy().astype(float)
    fig = _figure()
    ax = fig.add_subplot()
    offset, ticks, names = 0.0, [], []
    for i, contig in enumerate(dict.fromkeys(contigs)):
        on = np.array([c == contig for c in contigs])
        x = pos[on] - pos[on].min() + offset
        ax.scatter(x, y[on], s=6, color=("#1f4e79", "#6fa8dc")[i % 2])
        ticks.append((x.min() + x.max()) / 2), names.append(contig)
        offset = x.max() + max(1.0, 0.02 * (x.max() - x.min()))
    ax.axhline(-np.log10(GENOME_WIDE), color="#c00000", lw=0.8, ls="--", label="5e-8")
    ax.axhline(-np.log10(0.05 / len(y)), color="#7f7f7f", lw=0.8, ls=":", label=f"Bonferroni ({len(y)} tests)")
    ax.set_xticks(ticks, names)
    ax.set_ylabel("-log10 p")
    ax.set_title(title or "Manhattan plot")
    ax.legend(loc="upper right", fontsize=8)
    return _done(fig, path)


def qq(results: pa.Table, path: str | os.PathLike | None = None, title: str | None = None) -> Figure:
    """Observed against expected -log10 p under the null, with the genomic inflation factor
    lambda (median chi-square of the p-values over its null median, 0.4549)."""
    _, observed = _tested(results)
    observed = np.sort(observed)[::-1]
    n = len(observed)
    expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
    inflation = np.median(stats.chi2.isf(10.0**-observed, 1)) / stats.chi2.ppf(0.5, 1)
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    ax.scatter(expected, observed, s=6, color="#1f4e79")
    top = max(expected.max(), observed.max())
    ax.plot([0, top], [0, top], color="#c00000", lw=0.8)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(title or f"QQ plot (lambda = {inflation:.3f}, {n} tests)")
    return _done(fig, path)


def phewas_plot(table: pa.Table, path: str | os.PathLike | None = None, title: str | None = None) -> Figure:
    """-log10 p per phenotype of a :meth:`Store.phewas` table; triangles point up for a positive
    effect, down for a negative one; the Bonferroni line over the phenotypes tested."""
    tested, y = _tested(table)
    beta = tested["beta"].to_numpy(zero_copy_only=False)
    names = tested["phenotype"].to_pylist()
    fig = _figure(max(5, 0.5 * len(names) + 2), 4)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    for up, marker in ((True, "^"), (False, "v")):
        on = (beta > 0) == up
        ax.scatter(x[on], y[on], marker=marker, s=40, color="#1f4e79" if up else "#c55a11")
    ax.axhline(-np.log10(0.05 / len(y)), color="#7f7f7f", lw=0.8, ls=":", label="Bonferroni 0.05")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("-log10 p")
    ax.set_title(title or f"PheWAS of {table['variant_key'][0].as_py()}")
    ax.legend(loc="upper right", fontsize=8)
    return _done(fig, path)


def af_by_ancestry(store: Store, variant: str, path: str | os.PathLike | None = None, cohort=None) -> Figure:
    """The allele frequency of one ALT allele (a key) in each ancestry group of the person table
    (exact, from :meth:`Store.frequencies`), with the group sizes (called alleles) on the bars."""
    found = store.lookup(variant)
    if found.num_rows != 1:
        raise QueryError(f"{variant!r} names {found.num_rows} ALT alleles; give one variant key")
    contig, pos, key = (found[c][0].as_py() for c in ("contig", "pos", "variant_key"))
    table = store.frequencies(f"{contig}:{pos}-{pos}", cohort=cohort, by="ancestry")
    table = table.filter(pc.equal(table["variant_key"], key))
    groups, af, an = (table[c].to_pylist() for c in ("ancestry", "af", "an"))
    fig = _figure(max(4, len(groups) + 2), 4)
    ax = fig.add_subplot()
    bars = ax.bar([str(g) for g in groups], [a if a is not None else 0 for a in af], color="#1f4e79")
    ax.bar_label(bars, labels=[f"AN={n}" for n in an], fontsize=8)
    ax.set_ylabel(f"frequency of {found['alt'][0].as_py()}")
    ax.set_title(f"{key} by ancestry")
    return _done(fig, path)
