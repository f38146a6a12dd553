"""Keeping htslib's own stderr messages out of genoquery's one-line errors.

cyvcf2 links htslib statically; its ``hts_set_log_level`` is reached through
ctypes on the cyvcf2 extension module. Records are read with htslib silent
(a failure surfaces as an exception that genoquery words itself); a header is
opened with htslib's error messages captured so they can be quoted.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import cyvcf2.cyvcf2 as _cyvcf2_module

HTS_LOG_OFF = 0
HTS_LOG_ERROR = 1

try:
    _set_log_level = ctypes.CDLL(_cyvcf2_module.__file__).hts_set_log_level
except (OSError, AttributeError):  # an htslib build without the symbol exported
    _set_log_level = None


def set_htslib_log_level(level: int) -> None:
    if _set_log_level is not None:
        _set_log_level(level)


@contextmanager
def htslib_errors() -> Iterator[list[str]]:
    """Capture htslib's error lines written during the block (file descriptor 2).

    Yields a list that holds the captured lines, without htslib's ``[E::fn]``
    prefixes, once the block ends. Use only where no other thread writes to stderr.
    """
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        set_htslib_log_level(HTS_LOG_ERROR)
        try:
            yield captured
        finally:
            set_htslib_log_level(HTS_LOG_OFF)
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                captured.append(line.split("] ", 1)[-1].strip())


set_htslib_log_level(HTS_LOG_OFF)
