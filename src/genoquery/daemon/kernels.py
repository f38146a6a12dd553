"""The numba kernels a command used, so the daemon's parent can load them for the next commands.

A kernel is compiled, or loaded from numba's cache, in the process that first calls it with
given argument types: in a daemon, that is a command's forked child, and the next child would
load it again (~0.3 s for a cohort count's kernels). Each child lists the signatures its kernels
were given (:func:`used`); the parent loads those from numba's cache (:func:`load`), once.
Kernels compiled with ``parallel=True`` are left to the children: loading one starts numba's
threading layer, and a child forked from a process whose OpenMP threads run is terminated by
them as soon as it runs parallel code ("fork() called from a process already using GNU OpenMP").
"""

from __future__ import annotations

import sys
from importlib import import_module

Signatures = dict[tuple[str, str], list[tuple]]
"""(module, function name) -> the argument types of each compiled version (numba types)."""


def used() -> Signatures:
    """The signatures of every compiled numba kernel in genoquery's loaded modules."""
    found: Signatures = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("genoquery.") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            signatures = getattr(value, "signatures", None)
            if signatures and getattr(value, "__module__", None) == name and _serial(value):
                found[(name, attribute)] = list(signatures)
    return found


def load(signatures: Signatures) -> int:
    """Compile (from numba's cache, where it holds them) the kernels ``signatures`` lists that this
    process has not; the number loaded. A kernel that no longer exists is skipped."""
    loaded = 0
    for (module_name, attribute), arguments in signatures.items():
        try:
            kernel = getattr(import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue
        if not _serial(kernel):
            continue
        for types in arguments:
            if types not in kernel.signatures:
                kernel.compile(types)
                loaded += 1
    return loaded


def _serial(kernel) -> bool:
    """Whether ``kernel`` is a numba dispatcher of a kernel without ``parallel=True``."""
    options = getattr(kernel, "targetoptions", None)
    return hasattr(kernel, "compile") and isinstance(options, dict) and not options.get("parallel")
