"""The ``genoquery`` program: each command runs in a warm daemon where one matches this
interpreter (:mod:`genoquery.daemon`), else in this process, cold. The first command of a kind
starts the daemon for the next ones; ``GENOQUERY_DAEMON=0`` turns it off."""

from __future__ import annotations

import os
import sys
from importlib import import_module

from genoquery.daemon import client

WARM_MODULES = (
    "genoquery.cli",
    "genoquery.query.store",
    "genoquery.query.cohorts",
    "genoquery.query.carriers",
    "genoquery.query.frequencies",
    "genoquery.query.genotypes",
    "genoquery.stats.cohort_counts",
    "genoquery.query.association.plots",
    "genoquery.query.association.scan",
    "genoquery.query.association.design",
    "genoquery.query.association.store_dosages",
    "pandas",
    "pyarrow.csv",
    "pyarrow.parquet",
    "pyarrow.pandas_compat",
    "genoquery.ingest.pipeline",
    "genoquery.verify",
)
"""What the daemon imports before it serves: the modules of the query, association, ingest and
verify commands and the libraries they load on first use (those of ``serve`` and ``simulate`` are
left to the commands). None starts a thread of Python's: the parent forks."""


def main() -> int:
    """Run ``genoquery ARGS`` (``sys.argv``); the exit status."""
    argv = sys.argv[1:]
    if len(argv) == 3 and argv[0] == "--daemon":  # started by genoquery.daemon.client.start_daemon
        serve_daemon(argv[1], int(argv[2]))
        return 0
    status = client.run_remotely(argv)
    if status is not None:
        return status
    return import_module("genoquery.cli").main()


def serve_daemon(address: str, starter: int) -> None:
    """Be the daemon at the socket ``address`` until idle (``GENOQUERY_DAEMON_IDLE`` seconds),
    once the process ``starter`` that started it (running its command cold) has ended."""
    cli = import_module("genoquery.cli")
    idle_s = float(os.environ.get(client.IDLE_VARIABLE, client.IDLE_S))
    import_module("genoquery.daemon.server").serve(address, cli.main, _warm, idle_s, starter)


def _warm() -> None:
    for name in WARM_MODULES:
        import_module(name)
    import_module("genoquery.cli").build_parser()


if __name__ == "__main__":
    sys.exit(main())
