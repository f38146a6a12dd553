"""Region strings, 1-based and inclusive as in samtools: ``chr20``, ``chr20:1000``, ``chr20:1,000-2,000``."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from genoquery.errors import RegionError, UnknownContigError

_REGION = re.compile(r"^(?P<contig>[^:\s]+)(?::(?P<start>[\d,]+)(?:-(?P<end>[\d,]*))?)?$")
MAX_POS = 2**31 - 1
# The largest position a query may name: the lookup files encode a locus as contig * 2**40 + pos
# (genoquery.storage.lookup_table.LOCUS_SHIFT), and a larger number overflowed DuckDB's integers.
MAX_POSITION = 2**40 - 1


@dataclass(frozen=True)
class Region:
    """A contig interval; ``start`` and ``end`` are 1-based inclusive."""

    contig: str
    start: int = 1
    end: int = MAX_POS

    def __str__(self) -> str:
        return f"{self.contig}:{self.start}-{self.end}"


def parse_region(text: str, contigs: list[str] | None = None) -> Region:
    """Parse a region string; with ``contigs``, the contig must be one of them, named with or
    without ``chr`` (``20`` finds ``chr20``; see :func:`resolve_contig`)."""
    match = _REGION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise RegionError(
            f"bad region {text!r}: write CONTIG, CONTIG:POS or CONTIG:START-END "
            "(1-based, inclusive), for example chr20:1000-2000"
        )
    contig = match["contig"]
    start = int(match["start"].replace(",", "")) if match["start"] else 1
    end_text = match["end"]
    if end_text:
        end = int(end_text.replace(",", ""))
    elif match["start"] and end_text is None:
        end = start
    else:
        end = MAX_POS
    for value in (start, end):
        if value > MAX_POSITION:
            raise RegionError(
                f"bad region {text!r}: position {value} is beyond the largest position {MAX_POSITION:,} "
                f"(2^40 - 1); give positions in 1..{MAX_POSITION}, or the contig alone for all of it"
            )
    if start < 1 or end < start:
        raise RegionError(f"bad region {text!r}: start must be >= 1 and end >= start")
    if contigs is not None:
        named = resolve_contig(contig, contigs)
        if named is None:
            raise UnknownContigError(
                f"region {text!r}: contig {contig!r} is not in the store; " + contig_hint(contig, contigs)
            )
        contig = named
    return Region(contig, start, end)


def resolve_contig(name: str, contigs: list[str]) -> str | None:
    """The store's name for ``name``: itself, or with ``chr`` added or removed (M = MT) when unambiguous."""
    if name in contigs:
        return name
    bare = name[3:] if name.lower().startswith("chr") else name
    candidates = {bare, "chr" + bare, "Chr" + bare, "CHR" + bare}
    if bare.upper() in ("M", "MT"):
        candidates |= {"M", "MT", "chrM", "chrMT"}
    found = [c for c in contigs if c in candidates]
    return found[0] if len(found) == 1 else None


def contig_hint(name: str, contigs: list[str]) -> str:
    """Names the store's contigs, nearest to ``name`` first, for an error message."""
    near = difflib.get_close_matches(name, contigs, n=3, cutoff=0.4)
    listed = ", ".join(contigs[:10]) + (" ..." if len(contigs) > 10 else "")
    return (f"did you mean {', '.join(near)}? " if near else "") + f"the store has: {listed or 'no contigs'}"
