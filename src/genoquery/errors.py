"""User-facing errors.

Every problem caused by input (a file, a region string, a store path, a query)
raises a subclass of :class:`GenoqueryError`. The command line prints such an
error as one line and exits with status 2; anything else is a bug.
"""

from __future__ import annotations


class GenoqueryWarning(UserWarning):
    """Something of the input that genoquery does not keep; the command line prints it as one line."""


class GenoqueryError(Exception):
    """Base class for errors a user can fix; the message says what and how. Picklable whatever
    its constructor takes (a Dask worker's error reaches the client as it was raised)."""

    def __reduce__(self):
        return _restored, (type(self), self.args, self.__dict__)


def _restored(cls: type, args: tuple, state: dict) -> GenoqueryError:
    """An error of ``cls`` with ``args`` and attributes ``state``, without calling its constructor."""
    error = Exception.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InputFileError(GenoqueryError):
    """A source file is missing, unreadable, truncated or malformed."""

    def __init__(
        self, path: str, problem: str, *, line: int | None = None, record: str | None = None, fix: str | None = None
    ) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f" (record {record})"
        message = f"{where}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)
        self.path = str(path)
        self.line = line
        self.record = record


class StoreError(GenoqueryError):
    """A store path is missing, is not a store, or cannot be written."""


class RegionError(GenoqueryError):
    """A region string is malformed or names an unknown contig."""


class QueryError(GenoqueryError):
    """A query is malformed or asks for something the store does not hold."""


class ClusterError(GenoqueryError):
    """The Dask cluster asked for cannot be reached or started, or its workers disagree with the
    client about the store (:mod:`genoquery.query.cluster`)."""


class NotFoundError(GenoqueryError):
    """The query names something the store does not hold: a variant, rsID, gene or contig (the
    server answers 404)."""


class UnknownItemError(QueryError, NotFoundError):
    """A variant key, rsID or gene that is not in the store."""


class UnknownContigError(RegionError, NotFoundError):
    """A region on a contig that is not in the store."""


class TimeLimitError(GenoqueryError):
    """A query ran past the time limit set for it (:mod:`genoquery.deadline`); the server answers 503."""


class EmptyCohortError(QueryError):
    """A cohort filter matches no sample, or fails on the values it meets. Both depend on the data,
    so the server refuses them exactly like a cohort too small to report."""


class OutputError(GenoqueryError):
    """An output file could not be written (its disk is full, a file size limit, no permission);
    the partial file is removed."""
