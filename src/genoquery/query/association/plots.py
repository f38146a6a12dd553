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


def _legend_outside(fig: Figure, ax) -> None:
    """The legend to the right of the axes, where it covers no point and no line."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)


def manhattan(results: pa.Table, path: str | os.PathLike | None = None, title: str | None = None) -> Figure:
    """-log10 p against position, with the genome-wide (5e-8) and Bonferroni lines and the
    alleles past 5e-8 in red. One contig: its positions in Mb; several: side by side in result
    order (each from its first tested position), alternating colours, a tick per contig. The
    legend is outside the axes. ``results`` is a :meth:`Store.associate` table."""
    tested, y = _tested(results)
    contigs = np.asarray(tested["contig"].to_pylist(), dtype=object)
    mb = tested["pos"].to_numpy().astype(float) / 1e6
    names = list(dict.fromkeys(contigs.tolist()))
    fig = _figure()
    ax = fig.add_subplot()
    x, offset, ticks = np.empty(len(y)), 0.0, []
    for i, contig in enumerate(names):
        on = contigs == contig
        x[on] = mb[on] - (mb[on].min() if len(names) > 1 else 0.0) + offset
        ax.scatter(x[on], y[on], s=6, color=("#1f4e79", "#6fa8dc")[i % 2], rasterized=True)
        ticks.append((x[on].min() + x[on].max()) / 2)
        offset = x[on].max() + max(0.05, 0.02 * (x[on].max() - x[on].min()))
    hits = y > -np.log10(GENOME_WIDE)
    if hits.any():
        ax.scatter(x[hits], y[hits], s=10, color="#c00000", zorder=3, label=f"p < 5e-8 ({int(hits.sum())})")
    ax.axhline(-np.log10(GENOME_WIDE), color="#c00000", lw=0.8, ls="--", label="genome-wide 5e-8")
    ax.axhline(-np.log10(0.05 / len(y)), color="#7f7f7f", lw=0.8, ls=":", label=f"Bonferroni ({len(y):,} tests)")
    if len(names) == 1:
        ax.set_xlabel(f"position on {names[0]} (Mb)")
    else:
        ax.set_xticks(ticks, names)
        ax.set_xlabel("contig")
    top = max(y.max(), -np.log10(GENOME_WIDE)) * 1.08
    ax.set_ylim(-0.02 * top, top)
    ax.set_ylabel("-log10 p")
    ax.set_title(title or "Manhattan plot")
    _legend_outside(fig, ax)
    return _done(fig, path)


def _legend_outside(fig: Figure, ax) -> None:
    """The legend right of the axes, where it covers no point and no line."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)


def qq(results: pa.Table, path: str | os.PathLike | None = None, title: str | None = None) -> Figure:
    """Observed against expected -log10 p under the null, with the 95% band of each order
    statistic (the i-th smallest of n uniform p-values is Beta(i, n - i + 1)) and the genomic
    inflation factor lambda (median chi-square of the p-values over its null median, 0.4549)."""
    _, observed = _tested(results)
    observed = np.sort(observed)[::-1]
    n = len(observed)
    rank = np.arange(1, n + 1)
    expected = -np.log10((rank - 0.5) / n)
    inflation = np.median(stats.chi2.isf(10.0**-observed, 1)) / stats.chi2.ppf(0.5, 1)
    fig = _figure(6, 5)
    ax = fig.add_subplot()
    low, high = (-np.log10(stats.beta.ppf(q, rank, n - rank + 1)) for q in (0.975, 0.025))
    ax.fill_between(expected, low, high, color="#d9d9d9", lw=0, label="95% band under the null")
    ax.scatter(expected, observed, s=6, color="#1f4e79", rasterized=True, label=f"{n:,} tests")
    top = expected.max()  # the diagonal over the expected range: strong signals do not squash the x axis
    ax.plot([0, top], [0, top], color="#c00000", lw=0.8, label="expected")
    ax.set_xlim(0, top * 1.05)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(title or f"QQ plot, lambda_GC = {inflation:.3f}")
    _legend_outside(fig, ax)
    return _done(fig, path)


def phewas_plot(table: pa.Table, path: str | os.PathLike | None = None, title: str | None = None) -> Figure:
    """-log10 p per phenotype of a :meth:`Store.phewas` table, strongest first; triangles point up
    for a positive effect, down for a negative one (the key says so); the Bonferroni line over
    the phenotypes tested. Labels and legend sit outside the axes."""
    tested, y = _tested(table)
    order = np.argsort(-y, kind="stable")
    y = y[order]
    beta = tested["beta"].to_numpy(zero_copy_only=False)[order]
    names = [tested["phenotype"][int(i)].as_py() for i in order]
    fig = _figure(max(6, 0.45 * len(names) + 3), 4.5)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    for up, marker, label in ((True, "^", "effect > 0"), (False, "v", "effect < 0")):
        on = (beta > 0) == up
        ax.scatter(x[on], y[on], marker=marker, s=40, color="#1f4e79" if up else "#c55a11", label=label)
    ax.axhline(-np.log10(0.05 / len(y)), color="#7f7f7f", lw=0.8, ls=":", label=f"Bonferroni 0.05 ({len(y)} tests)")
    ax.set_xticks(x, names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.7, len(names) - 0.3)
    top = max(y.max(), -np.log10(0.05 / len(y))) * 1.12
    ax.set_ylim(-0.04 * top, top)  # a triangle at p = 1 shows whole
    ax.set_ylabel("-log10 p")
    ax.set_title(title or f"PheWAS of {table['variant_key'][0].as_py()}")
    _legend_outside(fig, ax)
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
