"""Ingest on a Dask cluster, writing the store one process writes, byte for byte.

A batch's files are its partitions. The client counts each file's records (its index's count,
else a counting pass on the workers), so each partition knows its first row of the batch. Workers
decode their file (:mod:`~genoquery.ingest.cluster.task`), count and encode its blocks, and write
the ``call_genotype``, ``call_genotype_phased`` and ``call_<ID>`` chunk rows that lie wholly in
their rows (:mod:`~genoquery.ingest.cluster.rows`); they return the rows of chunk rows shared
with the files beside them, and the blocks' index rows and query encoding, numbered within the
file. The client (:mod:`~genoquery.ingest.cluster.commit`) takes the partitions in order: it
writes the shared chunk rows, renumbers the query encoding (dense rows, listed and missing
calls, haploid patterns), appends it, adds the index rows, and commits through the staging
rename as one process does.
"""
