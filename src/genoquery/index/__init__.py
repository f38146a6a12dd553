"""The DuckDB index: variants, statistics, samples, contigs, persons and provenance."""
