"""The store's format and the code every layer above shares to read and write it: names,
versions and fill values (:mod:`~genoquery.storage.format`), staging, the write lock and the
index write transaction, the index schema and lookup files, the call encoding and its readers."""
