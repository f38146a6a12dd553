"""Scans by partition (:mod:`~genoquery.query.cluster.partitions`) on a Dask cluster, with the
answers of one process: cohort frequencies and association over regions or contigs, carriers of
many genes. Each partition is the single-process question asked of its region (or genes) on a
worker; the client concatenates the answers in order. Every statistic and test is of one allele,
so a region's answer is its partitions' answers one after the other. A question of one partition
(one variant, one gene, a short region) runs in this process and never touches the cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from genoquery.errors import QueryError
from genoquery.query.association.design import Design
from genoquery.query.association.scan import fitted_blocks, prepared_design, screen_threshold, tested_alleles
from genoquery.query.cluster.partitions import Partition, partitions
from genoquery.query.cluster.tasks import Target, run_partitions
from genoquery.query.frequencies import cohort_frequencies

if TYPE_CHECKING:
    from genoquery.query.store import Store

GENES_PER_TASK = 64


def _target(store: Store) -> Target:
    return Target(store.path, store.index_stamp)


def _by_partition(store: Store, client, task, parts: list[Partition], args: tuple, desc: str, progress: bool) -> list:
    return run_partitions(
        client,
        task,
        parts,
        args,
        local=store,
        target=_target(store),
        weights=[p.sites for p in parts],
        desc=desc,
        unit="site",
        progress=progress,
    )


def frequencies(
    store: Store, region: str | Sequence[str] | None, cohort, by: str | None, client, progress: bool = False
) -> pa.Table:
    """:meth:`Store.frequencies` by partition on ``client``'s workers. The whole store's own
    statistics are read from the index, here; a cohort is resolved here, once, for every partition."""
    if cohort is None and (by is None or by in store.info["groupings"]):
        return store.frequencies(region, by=by)
    parts = partitions(store, region)
    if len(parts) <= 1:
        return store.frequencies(region, cohort, by)
    members = store.cohort(cohort) if cohort is not None else store.active_samples
    shared = client.submit(_same, members, pure=False)
    tables = _by_partition(store, client, _frequencies, parts, (shared, by), "frequencies", progress)
    return pa.concat_tables(tables)


def _same(value):
    """``value`` itself: a task holding it, sent to each worker once rather than with every
    partition, and computed again should the workers holding it die (scattered data is lost)."""
    return value


def _frequencies(store: Store, part: Partition, members: np.ndarray, by: str | None) -> pa.Table:
    return cohort_frequencies(store, part.region, None, by, members)


def associate(
    store: Store,
    phenotype,
    covariates: Sequence[str],
    *,
    region: str | Sequence[str] | None,
    client,
    progress: bool = False,
    **options,
) -> pa.Table:
    """:meth:`Store.associate` of the alleles of ``region`` (None: every contig) by partition on
    ``client``'s workers; ``options``: its ``cohort``, ``model``, ``min_mac``, ``test`` and
    ``prescreen_p``. The design (samples, phenotype, covariates) is built here, once, for every
    partition."""
    parts = partitions(store, region)
    if len(parts) <= 1:
        return store.associate(phenotype, covariates, region=region, progress=progress, **options)
    test, prescreen_p = options.get("test", "wald"), options.get("prescreen_p")
    screen_threshold(options["model"], test, prescreen_p)  # before any work
    design, model = prepared_design(store, phenotype, list(covariates), options["cohort"], options["model"])
    screen = screen_threshold(model, test, prescreen_p)
    shared = client.submit(_same, design, pure=False)  # as the cohort of frequencies
    tables = _by_partition(
        store,
        client,
        _associate,
        parts,
        (shared, model, options["min_mac"], screen),
        f"associate {design.phenotype}",
        progress,
    )
    return pa.concat_tables(tables)


def _associate(
    store: Store, part: Partition, design: Design, model: str, min_mac: int, screen: float | None
) -> pa.Table:
    wanted = tested_alleles(store, part.region, None, None)
    return pa.concat_tables(fitted_blocks(store, wanted, design, model, min_mac, False, screen))


def gene_carriers(
    store: Store, genes: Sequence[str], cohort=None, *, client=None, progress: bool = False, **filters
) -> pa.Table:
    """Carriers of each of ``genes`` (names or IDs) as :meth:`Store.carriers` with ``gene=`` and
    ``filters`` (``af_min``, ``af_max``, ``pass_only``, ``variant_type``), with the gene as given in a
    first column ``gene``, gene after gene; on ``client``'s workers, :data:`GENES_PER_TASK` genes a
    task, when given more than one gene."""
    genes = list(genes)
    if not genes:
        raise QueryError("give at least one gene")
    groups = [genes[i : i + GENES_PER_TASK] for i in range(0, len(genes), GENES_PER_TASK)]
    tables = run_partitions(
        client if len(genes) > 1 else None,
        _gene_carriers,
        groups,
        (cohort, filters),
        local=store,
        target=_target(store),
        weights=[len(g) for g in groups],
        desc="carriers",
        unit="gene",
        progress=progress,
    )
    return pa.concat_tables([t for group in tables for t in group])


def _gene_carriers(store: Store, genes: list[str], cohort, filters: dict) -> list[pa.Table]:
    tables = [store.carriers(cohort=cohort, gene=gene, **filters) for gene in genes]
    return [
        t.add_column(0, "gene", pa.array([g] * t.num_rows, pa.string())) for g, t in zip(genes, tables, strict=True)
    ]
