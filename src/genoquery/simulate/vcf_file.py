"""A bgzipped VCF being written record by record, indexed with tabix on close.

Lines are written as a prefix (CHROM..FORMAT and a tab) plus a row of the
sample-column byte buffer. Each record's uncompressed start offset, POS and
REF length are kept (a few bytes per record) to build the .tbi.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from genoquery.bgzf import BgzfWriter
from genoquery.simulate.tabix import ContigRecords, write_tbi


class IndexedVcfWriter:
    """Write ``path`` (BGZF) and ``path + '.tbi'``; contigs must come in header order, sorted."""

    def __init__(self, path: str | os.PathLike[str], header: bytes, pool: ThreadPoolExecutor | None = None) -> None:
        self.path = Path(path)
        self._out = BgzfWriter(self.path, pool)
        self._out.write(header)
        self._contigs: list[str] = []
        self._starts: list[list[np.ndarray]] = []
        self._beg: list[list[np.ndarray]] = []
        self._end: list[list[np.ndarray]] = []
        self.n_records = 0

    def write_rows(
        self,
        contig: str,
        prefixes: list[bytes],
        buffer: np.ndarray,
        rows: np.ndarray,
        pos: np.ndarray,
        ref_len: np.ndarray,
        columns: tuple[int, int] | None = None,
    ) -> None:
        """Write records ``prefixes[i] + buffer[rows[i]]`` at 1-based ``pos[i]`` (copied before return).

        ``columns=(start, width)`` writes only that byte range of each row, its last byte
        (a tab) replaced by the line's newline.
        """
        if not self._contigs or self._contigs[-1] != contig:
            self._contigs.append(contig)
            self._starts.append([])
            self._beg.append([])
            self._end.append([])
        starts = np.empty(len(rows), dtype=np.int64)
        out = self._out
        if columns is None:
            for i, (prefix, r) in enumerate(zip(prefixes, rows.tolist(), strict=True)):
                starts[i] = out.tell()
                out.write(prefix)
                out.write(buffer[r].data)
        else:
            lo, hi = columns[0], columns[0] + columns[1] - 1
            for i, (prefix, r) in enumerate(zip(prefixes, rows.tolist(), strict=True)):
                starts[i] = out.tell()
                out.write(prefix)
                out.write(buffer[r, lo:hi].data)
                out.write(b"\n")
        out.consolidate()  # the buffer rows are reused by the caller after this returns
        self._starts[-1].append(starts)
        self._beg[-1].append(np.asarray(pos, dtype=np.int64) - 1)
        self._end[-1].append(np.asarray(pos, dtype=np.int64) - 1 + np.asarray(ref_len, dtype=np.int64))
        self.n_records += len(rows)

    def close(self) -> None:
        """Finish the BGZF file and write its .tbi."""
        total = self._out.tell()
        self._out.close()
        records = []
        per_contig = [np.concatenate(s) if s else np.zeros(0, np.int64) for s in self._starts]
        all_starts = np.concatenate([*per_contig, np.array([total], dtype=np.int64)])
        all_v = self._out.virtual_offsets(all_starts)
        at = 0
        for name, starts, beg, end in zip(self._contigs, per_contig, self._beg, self._end, strict=True):
            n = len(starts)
            records.append(
                ContigRecords(
                    name,
                    np.concatenate(beg) if beg else np.zeros(0, np.int64),
                    np.concatenate(end) if end else np.zeros(0, np.int64),
                    all_v[at : at + n],
                    all_v[at + 1 : at + n + 1],
                )
            )
            at += n
        write_tbi(str(self.path) + ".tbi", records)
