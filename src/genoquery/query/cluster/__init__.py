"""Scans on a Dask distributed cluster (issue 21): the same answers as one process, computed by
partition on the cluster's workers and combined on the client.

- :mod:`~genoquery.query.cluster.connect`: the client of ``--cluster ADDRESS`` (or
  ``DASK_SCHEDULER_ADDRESS``) or of a ``LocalCluster`` of ``--workers N`` processes;
- :mod:`~genoquery.query.cluster.partitions`: a store's regions cut where its variant chunks begin;
- :mod:`~genoquery.query.cluster.tasks`: running one function per partition, in the process or on
  the workers (each opens the store by path), with retries and a progress bar on the client;
- :mod:`~genoquery.query.cluster.scans`: cohort frequencies, carriers of many genes and
  association by partition.

Dask is imported only when a cluster is used: the single-process path never loads it.
"""
