"""A fixed set of genotype buffers that an ingest's blocks are read into and handed back to.

Each block's calls (``gt`` and ``phased``, :class:`~genoquery.storage.site_block.SiteBlock`)
take one of ``size`` buffer pairs; the reader waits for one to be handed back once a block is
written. So the calls in flight are at most ``size`` blocks however the stages' speeds differ,
and no block's pages are mapped and faulted in afresh (at 10^6 samples a 64-site block is 192 MB:
~90 such maps per Mb of msprime chr20, each zeroed by the kernel).
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from genoquery.storage.site_block import PLOIDY, SiteBlock


class PoolClosedError(Exception):
    """The pool was closed while a block was waited for: the ingest is stopping."""


class BlockPool:
    """``size`` buffer pairs for blocks of ``capacity`` sites x ``n_samples``, allocated as first taken."""

    def __init__(self, size: int, capacity: int, n_samples: int) -> None:
        self.capacity, self.n_samples = capacity, n_samples
        self.unmade = size
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def block(self) -> SiteBlock:
        """An empty block on a free buffer pair, waiting for one if all are in use."""
        with self.lock:
            make = self.unmade > 0
            self.unmade -= make
        if make:
            return SiteBlock(self.capacity, self.n_samples)
        while not self.closed.is_set():
            try:
                gt, phased = self.free.get(timeout=0.2)
            except queue.Empty:
                continue
            return SiteBlock(self.capacity, self.n_samples, gt=gt, phased=phased)
        raise PoolClosedError

    def give_back(self, block: SiteBlock) -> None:
        """Return a written block's buffers (dropped once the pool is closed); the block must
        not be read after."""
        with self.lock:
            if not self.closed.is_set():
                self.free.put((block.gt, block.phased))
        block.gt = np.empty((0, self.n_samples, PLOIDY), np.int8)
        block.phased = np.empty((0, self.n_samples), bool)

    def close(self) -> None:
        """Drop the free buffers, and wake every wait for one with :class:`PoolClosedError`."""
        with self.lock:
            self.closed.set()
            while not self.free.empty():
                self.free.get()
