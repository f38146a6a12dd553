"""What FORMAT fields cost genoquery's ingest and export, beside bcftools on the same file.

    python benchmarks/format_fields_cost.py VCF WORKDIR [--sites N]

Sequencing centers deliver GT with DP, GQ and AD for every call. This takes the first ``--sites``
records of VCF (any GT-only file, e.g. ``genoquery simulate``'s cohort) and writes them to
WORKDIR/rich.vcf.gz with GT:DP:GQ:AD per call (seeded values; DP missing for 1% of calls), then
times, each a child process, best of ``--repeat``:

- ``genoquery ingest`` keeping every field (the default) and keeping none (``--fields FORMAT/GT``:
  GT only), and ``bcftools view -Ob`` of the same file as the reference parse;
- ``genoquery export`` of the whole store to .vcf.gz, against ``bcftools view -Oz``.

Prints a Markdown table with the ratios measured in this run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pysam

from peers import tool_versions


def rich_vcf(source: Path, out: Path, sites: int, seed: int = 5) -> None:
    """``source``'s first ``sites`` records with DP, GQ and AD added to every call (bgzipped, indexed)."""
    rng = np.random.default_rng(seed)
    header_lines = [
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
    ]
    with pysam.BGZFile(str(out), "w") as sink, pysam.BGZFile(str(source), "r") as text:
        written = 0
        for raw in text:
            line = raw.decode().rstrip("\n")
            if line.startswith("##"):
                sink.write((line + "\n").encode())
                continue
            if line.startswith("#"):
                sink.write(("\n".join(header_lines) + "\n" + line + "\n").encode())
                continue
            fields = line.split("\t")
            n = len(fields) - 9
            dp = rng.poisson(30, n)
            alt_reads = rng.binomial(dp, 0.5)
            ad = np.char.add(np.char.add((dp - alt_reads).astype(str), ","), alt_reads.astype(str))
            if "," in fields[4]:  # Number=R: one depth per allele
                ad = np.char.add(ad, ",0" * fields[4].count(","))
            dp_text = dp.astype(str).astype(object)
            dp_text[rng.random(n) < 0.01] = "."
            calls = np.char.add(np.array(fields[9:], dtype=str), ":")
            calls = np.char.add(np.char.add(calls, dp_text.astype(str)), ":")
            calls = np.char.add(np.char.add(calls, rng.integers(0, 99, n).astype(str)), ":")
            calls = np.char.add(calls, ad)
            fields[8] = "GT:DP:GQ:AD"
            sink.write(("\t".join(fields[:9]) + "\t" + "\t".join(calls.tolist()) + "\n").encode())
            written += 1
            if written == sites:
                break
    pysam.tabix_index(str(out), preset="vcf", force=True, keep_original=True)


def best(argv: list[str], repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vcf", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rich = args.workdir / "rich.vcf.gz"
    if not rich.exists():
        rich_vcf(args.vcf, rich, args.sites)
    gq, bcftools = [sys.executable, "-m", "genoquery"], shutil.which("bcftools") or "bcftools"
    stores = {name: args.workdir / f"{name}.gq" for name in ("fields", "gt")}

    def clear(path: Path):
        return lambda: shutil.rmtree(path, ignore_errors=True)

    rows = {
        "ingest, every field": best(
            [*gq, "ingest", str(stores["fields"]), str(rich), "--quiet"], args.repeat, clear(stores["fields"])
        ),
        "ingest, GT only": best(
            [*gq, "ingest", str(stores["gt"]), str(rich), "--quiet", "--fields", "FORMAT/GT"],
            args.repeat,
            clear(stores["gt"]),
        ),
        "bcftools view -Ob (parse and write BCF)": best(
            [bcftools, "view", "-Ob", "-o", str(args.workdir / "rich.bcf"), str(rich)], args.repeat
        ),
        "export to .vcf.gz, every field": best(
            [*gq, "export", str(stores["fields"]), str(args.workdir / "out.vcf.gz"), "--quiet"], args.repeat
        ),
        "bcftools view -Oz": best(
            [bcftools, "view", "-Oz", "-o", str(args.workdir / "b.vcf.gz"), str(rich)], args.repeat
        ),
    }
    reference = rows["bcftools view -Ob (parse and write BCF)"]
    print(f"{rich.name}: {rich.stat().st_size / 1e6:.1f} MB, {args.sites} sites; {tool_versions()}\n")
    print("| step | best s | / bcftools view -Ob |")
    print("|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.2f} | {seconds / reference:.2f} |")


if __name__ == "__main__":
    main()
