"""What each way of storing a store's genotypes costs in bytes and in decode time (issue 18).

    python benchmarks/genotype_codecs.py STORE [--batch NAME]

A store holds every call twice: the VCF Zarr ``call_genotype`` (int8, Blosc zstd + bitshuffle,
chunks of variant_chunk x 10,000 samples) and the query encoding's ``call_genotype_code`` (2-bit
codes of dense sites, Blosc LZ4). Issue 18 asks for a store no larger than vcf2zarr's: this
measures, on the batch's real arrays, (1) the dense codes under other Blosc codecs (bytes and
single-thread decode time of all of them: what a cohort's AF over the region decodes), and (2)
decoding the dense sites from ``call_genotype`` instead (a single genotype representation), from a
sample of its chunks. Timings are single-threaded, best of ``--repeat``; compare them as ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from numcodecs import Blosc

CODECS = [
    ("lz4", 5, Blosc.SHUFFLE),  # the store's
    ("lz4", 5, Blosc.BITSHUFFLE),
    ("zstd", 1, Blosc.NOSHUFFLE),
    ("zstd", 3, Blosc.NOSHUFFLE),
    ("zstd", 5, Blosc.BITSHUFFLE),
    ("zstd", 7, Blosc.NOSHUFFLE),
]
SHUFFLES = {Blosc.NOSHUFFLE: "none", Blosc.SHUFFLE: "byte", Blosc.BITSHUFFLE: "bit"}


def best(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def code_tiles(codes: zarr.Array) -> list[np.ndarray]:
    """The dense codes in the store's inner chunks (rows x bytes), as decoded arrays."""
    rows, width = codes.chunks  # zarr 3 names the inner chunks
    data = codes[:]
    return [
        np.ascontiguousarray(data[r : r + rows, c : c + width])
        for r, c in itertools.product(range(0, data.shape[0], rows), range(0, data.shape[1], width))
    ]


def codes_under_codecs(codes: zarr.Array, repeat: int) -> None:
    tiles = code_tiles(codes)
    raw = sum(t.nbytes for t in tiles)
    print(f"dense codes: {codes.shape[0]:,} sites x {codes.shape[1]:,} bytes = {raw / 1e6:.1f} MB decoded\n")
    print("| Blosc codec | shuffle | MB stored | ratio | decode all, 1 thread | GB/s |")
    print("|---|---|---|---|---|---|")
    for cname, level, shuffle in CODECS:
        codec = Blosc(cname=cname, clevel=level, shuffle=shuffle)
        encoded = [codec.encode(t) for t in tiles]
        seconds = best(lambda encoded=encoded, codec=codec: [codec.decode(e) for e in encoded], repeat)
        stored = sum(len(e) for e in encoded)
        print(
            f"| {cname} {level} | {SHUFFLES[shuffle]} | {stored / 1e6:.1f} | {stored / raw:.3f} | "
            f"{seconds:.3f} s | {raw / seconds / 1e9:.2f} |"
        )


def call_genotype_decode(vcf_group: Path, n_dense: int, repeat: int, sample: int = 40) -> None:
    """Decode a sample of ``call_genotype``'s chunks (as vcztools and sgkit read them) and scale
    to the dense sites: what reading them from the VCF Zarr arrays alone would cost."""
    root = vcf_group / "call_genotype"
    meta = json.loads((root / ".zarray").read_text())
    codec = numcodecs.get_codec(meta["compressor"])
    files = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    picked = [f.read_bytes() for f in np.random.default_rng(1).permutation(np.array(files, dtype=object))[:sample]]
    seconds = best(lambda: [codec.decode(b) for b in picked], repeat)
    decoded = sum(len(codec.decode(b)) for b in picked)
    chunk_sites, chunk_samples = meta["chunks"][0], meta["chunks"][1]
    per_site = seconds / len(picked) / chunk_sites * -(-meta["shape"][1] // chunk_samples)
    print(
        f"\ncall_genotype: {meta['shape'][0]:,} x {meta['shape'][1]:,} x {meta['shape'][2]}, chunks "
        f"{meta['chunks']}, {meta['compressor']['cname']} {meta['compressor']['clevel']}: "
        f"{decoded / seconds / 1e9:.2f} GB/s decoded, 1 thread; the {n_dense:,} dense sites "
        f"from it: {per_site * n_dense:.2f} s (their codes: see the table)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--batch", default=None, help="batch directory name (default: the first)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    numcodecs.blosc.set_nthreads(1)
    batch = args.store / "batches" / (args.batch or sorted(p.name for p in (args.store / "batches").iterdir())[0])
    codes = zarr.open_array(str(batch / "query.zarr" / "call_genotype_code"), mode="r")
    codes_under_codecs(codes, args.repeat)
    call_genotype_decode(batch / "genotypes.vcz", codes.shape[0], args.repeat)


if __name__ == "__main__":
    main()
