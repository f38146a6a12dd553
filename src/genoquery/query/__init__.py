"""Queries over a store: variant lookup and statistics (more in later modules)."""
