"""Ingest on a Dask cluster, writing the store one process writes, byte for byte.

A batch's partitions are the regions of its indexed files (:mod:`~genoquery.ingest.regions`, cut
through each file's tabix or CSI index) and its files without an index. The client counts each
partition's records (a whole file's index count, else a counting pass on the workers), so each
knows its first row of the batch and a region the line number of its first record. Workers
decode their partition (:mod:`~genoquery.ingest.cluster.task`), count and encode its blocks, and
write the ``call_genotype``, ``call_genotype_phased`` and ``call_<ID>`` chunk rows that lie wholly
in their rows (:mod:`~genoquery.ingest.cluster.rows`); they return the rows of chunk rows shared
with the partitions beside them, and the blocks' index rows and query encoding, numbered within
the partition. The client (:mod:`~genoquery.ingest.cluster.commit`) takes the partitions in order: it
writes the shared chunk rows, renumbers the query encoding (dense rows, listed and missing
calls, haploid patterns), appends it, adds the index rows, and commits through the staging
rename as one process does.
"""
