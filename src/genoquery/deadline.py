"""A time limit for the work of one request: ``with deadline(seconds): ...`` and :func:`check`.

The engine's long loops (per block of sites counted, per block of alleles tested, per block of
calls read) call :func:`check`, which raises :class:`~genoquery.errors.TimeLimitError` once the
deadline of the current context has passed, and costs one ContextVar read otherwise (0.06-0.12 µs).
The deadline is a :class:`contextvars.ContextVar`: the server sets it per request, and it follows
the request into the thread pool (Starlette's ``run_in_threadpool`` copies the context) and into
:func:`ahead`'s thread, but not into other threads the engine starts itself (those run short pieces
of one checked step). Without a deadline (the Python API, the command line) :func:`check` does nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import TypeVar

from genoquery.errors import TimeLimitError

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("genoquery_deadline", default=None)
_END = object()
T = TypeVar("T")


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Within the block, :func:`check` fails after ``seconds`` (None: no limit); an enclosing
    deadline that ends sooner stays in force."""
    if seconds is None:
        yield
        return
    ends = time.monotonic() + seconds
    outer = _deadline.get()
    if outer is not None and outer[0] <= ends:
        yield
        return
    token = _deadline.set((ends, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (negative once passed); None without one."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def check() -> None:
    """Raise :class:`TimeLimitError` if the current deadline has passed."""
    current = _deadline.get()
    if current is not None and time.monotonic() > current[0]:
        raise TimeLimitError(
            f"the request took longer than its time limit of {current[1]:g} s and was stopped; "
            "narrow the region, the cohort or the list of variants, or try again later"
        )


def ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, each next one made on a second thread while the caller works on the current one
    (for work that releases the GIL: decoding, numpy, compiled kernels), in the caller's context,
    so :func:`check` there sees the request's deadline; up to ``depth`` items ahead of the caller.
    An error making an item is raised when that item is asked for."""
    prefetch = Prefetch(items, depth)
    try:
        yield from prefetch
    finally:
        prefetch.close()


class Prefetch(Iterator[T]):
    """:func:`ahead` started now: ``items`` are made on a second thread from the moment it is
    created (up to ``depth`` ahead), so they can be read while the caller prepares what it will do
    with them. :meth:`close` it (a ``with`` block, or after the last item) to stop the thread."""

    def __init__(self, items: Iterator[T], depth: int = 1) -> None:
        self._items, self._context = items, copy_context()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genoquery-ahead")
        # one worker: the submitted next() calls run one at a time, in order
        self._pending = deque(self._submit() for _ in range(max(depth, 1)))

    def _submit(self) -> Future:
        return self._pool.submit(self._context.run, next, self._items, _END)

    def __next__(self) -> T:
        if not self._pending:
            raise StopIteration
        item = self._pending.popleft().result()
        if item is _END:
            self.close()
            raise StopIteration
        self._pending.append(self._submit())
        return item

    def close(self) -> None:
        """Drops the items not yet started and waits for the one being made, if any."""
        for pending in self._pending:
            pending.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
