"""Allele statistics and the counting kernels shared by ingest, the index and queries."""
