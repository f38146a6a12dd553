"""A warm process that runs command lines for the ``genoquery`` program, so a command's cold start
is Python's start and a fork, not the imports of numpy, DuckDB, pyarrow, numba and pandas.

:mod:`genoquery.daemon.client` is all the program loads before it knows whether a daemon will run
the command: it hands the daemon its argument list, working directory, environment and its own
standard input, output and error (as file descriptors over a Unix socket), then waits for the exit
status. :mod:`genoquery.daemon.server` forks a child per command from a parent that holds the
imports and the numba kernels the commands used (:mod:`genoquery.daemon.kernels`), so each
command runs in a process of its own, as when run cold. See docs/architecture.md, "Cold start
of a command".
"""
