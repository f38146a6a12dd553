"""genoquery association beside PLINK 2's ``--glm`` on one VCF: wall time, peak memory, agreement.

Issue 19's benchmark. From one bgzipped VCF (e.g. ``benchmarks/msprime_cohort.py``'s
10^6-sample chr20), it builds a genoquery store and a PLINK 2 fileset, writes a person
table with a quantitative trait (two planted causal alleles plus noise), a binary trait
(logistic in the same alleles, about 20% cases) and three covariates (``age``,
``sex_code``, ``pc1``), then runs, alternately and each in its own process on the same
cores:

- ``genoquery assoc STORE glm --model linear`` and ``plink2 --glm`` on the trait;
- ``genoquery assoc STORE glm --model logistic`` and ``plink2 --glm firth-fallback`` on the
  binary trait;

every ALT allele of the region with a minor allele count of at least ``--min-mac`` (PLINK 2:
``--mac``). For logistic, ``--prescreen 1e-3,score`` adds genoquery runs with ``--prescreen-p
1e-3`` and ``--test score`` to the alternation; ``--baseline SRC`` adds a run of another version's
code (``PYTHONPATH=SRC``, e.g. the ``src`` of ``git archive`` of an earlier commit); ``--daemon``
adds the same command handed to a warm daemon (genoquery.daemon, as a user's second command runs;
started by an untimed run first): its CPU and peak memory columns are then the client's alone. Peak memory is
each process's maximum resident set, CPU time its user + system time (``getrusage``); the load
average is printed before and after.
Agreement: the median relative difference of the betas of the alleles both tested (PLINK 2's A1 is
the ALT allele with ``--glm omit-ref``; of a prescreened run, its Wald/Firth rows only)::

    python benchmarks/assoc_compare.py /tmp/gq/ms/ms1e6/cohort.chr20.vcf.gz /tmp/gq/assoc6 --runs 2
    python benchmarks/assoc_compare.py /tmp/gq/ms/ms1e5/cohort.chr20.vcf.gz /tmp/gq/assoc5 \
        --models logistic --min-mac 20 --prescreen 1e-3,score
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import genoquery
from genoquery.index.phenotypes import import_table

# genoquery commands measured here run cold, each in a process of its own: through a daemon
# (genoquery.daemon) the measured process would be its client alone.
os.environ["GENOQUERY_DAEMON"] = "0"

COVARIATES = ["age", "sex_code", "pc1"]
MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss)"
)


def measured(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident MB) of ``command`` run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True)
    wall, cpu, kb = out.stdout.split()
    return float(wall), float(cpu), int(kb) / 1024


def prepare(vcf: Path, work: Path, seed: int) -> tuple[Path, Path]:
    """The store (``work/gq.gq``, with the person table) and the PLINK 2 fileset prefix."""
    work.mkdir(parents=True, exist_ok=True)
    store, pfile = work / "gq.gq", work / "pl"
    if not store.exists():
        subprocess.run(["genoquery", "ingest", str(store), str(vcf), "--quiet"], check=True)
    if not Path(f"{pfile}.pgen").exists():
        subprocess.run(
            ["plink2", "--vcf", str(vcf), "--make-pgen", "--out", str(pfile), "--threads", "2"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    persons = work / "persons.tsv"
    if not persons.exists():
        table = _traits(store, seed)
        table.to_csv(persons, sep="\t", index=False)
        import_table(store, persons)
        table.rename(columns={"sample_id": "#IID"})[["#IID", "trait", "case"]].assign(
            case=lambda t: t["case"] + 1  # PLINK 2: 1 control, 2 case
        ).to_csv(work / "pheno.tsv", sep="\t", index=False)
        table.rename(columns={"sample_id": "#IID"})[["#IID", *COVARIATES]].to_csv(
            work / "covar.tsv", sep="\t", index=False
        )
    return store, pfile


def _traits(path: Path, seed: int) -> pd.DataFrame:
    """Covariates and both traits, planted on the two alleles nearest AF 0.1 and 0.3."""
    rng = np.random.default_rng(seed)
    with genoquery.open(path) as store:
        ids = store.sample_ids
        variants = store.variants().to_pandas()
        causal = [variants.iloc[(variants["af"] - f).abs().argmin()]["variant_key"] for f in (0.1, 0.3)]
        dosage = np.zeros(len(ids))
        for key, effect in zip(causal, (0.15, 0.1), strict=True):
            row = store.lookup(key).to_pylist()[0]
            g = store.genotypes(f"{row['contig']}:{row['pos']}-{row['pos']}").gt[0]
            dosage += effect * (g == row["allele"]).sum(axis=1)
    n = len(ids)
    age, sex, pc1 = rng.integers(20, 90, n), rng.integers(0, 2, n), rng.normal(size=n)
    noise = rng.normal(size=n)
    trait = dosage + 0.01 * age + 0.2 * sex + 0.1 * pc1 + noise
    logit = -1.6 + 3 * dosage + 0.01 * (age - 55) + 0.2 * pc1
    case = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    print(f"planted {causal}; {case.sum()} cases of {n}", file=sys.stderr)
    return pd.DataFrame({"sample_id": ids, "trait": trait, "case": case, "age": age, "sex_code": sex, "pc1": pc1})


def commands(
    store: Path,
    pfile: Path,
    work: Path,
    region: str,
    min_mac: int,
    model: str,
    screens: list[str],
    baseline: Path | None = None,
    daemon_dir: str | None = None,
) -> dict[str, list[str]]:
    """The genoquery and PLINK 2 commands of one model; for logistic, a genoquery run per entry of
    ``screens`` too (a p threshold: ``--prescreen-p``; ``score``: ``--test score``); with
    ``baseline`` (a genoquery ``src`` directory), the model's run of that code too; with ``daemon_dir``,
    the model's run handed to the daemon of that directory."""
    phenotype = "trait" if model == "linear" else "case"
    glm = "hide-covar omit-ref" + ("" if model == "linear" else " firth-fallback")
    glm_run = [
        *("genoquery", "assoc", str(store), "glm", "--phenotype", phenotype, "--covar", ",".join(COVARIATES)),
        *("--region", region, "--model", model, "--min-mac", str(min_mac), "--quiet", "--format", "parquet"),
    ]
    variants = {"genoquery": [*glm_run, "--output", str(work / f"gq_{model}.parquet")]}
    if baseline is not None:
        variants["genoquery baseline"] = [
            *("env", f"PYTHONPATH={baseline}", *glm_run, "--output", str(work / f"gq_{model}_baseline.parquet"))
        ]
    if daemon_dir is not None:
        daemon = ("env", "GENOQUERY_DAEMON=1", f"GENOQUERY_DAEMON_DIR={daemon_dir}")
        variants["genoquery daemon"] = [*daemon, *glm_run, "--output", str(work / f"gq_{model}_daemon.parquet")]
    for screen in screens if model == "logistic" else []:
        option = ["--test", "score"] if screen == "score" else ["--prescreen-p", screen]
        variants[f"genoquery {' '.join(option)}"] = [*glm_run, *option, "--output", str(work / f"gq_{screen}.parquet")]
    return {
        **variants,
        "plink2": [
            *("plink2", "--pfile", str(pfile), "--pheno", str(work / "pheno.tsv"), "--pheno-name", phenotype),
            *("--covar", str(work / "covar.tsv"), "--covar-variance-standardize", "--glm", *glm.split()),
            *("--mac", str(min_mac), "--threads", "2", "--out", str(work / f"pl_{model}")),
        ],
    }


def agreement(work: Path, model: str, run: str) -> tuple[int, float]:
    """(alleles both tested, median relative difference of beta: log odds ratios for logistic) of
    genoquery's ``run`` (``model``, or a screen of :func:`commands`: its Wald/Firth rows)."""
    ours = pq.read_table(work / f"gq_{run}.parquet").to_pandas()
    ours = ours[ours["test"] != "score"]
    suffix = "linear" if model == "linear" else "logistic.hybrid"
    (theirs_path,) = work.glob(f"pl_{model}.*.glm.{suffix}")
    theirs = pd.read_csv(theirs_path, sep="\t")
    theirs = theirs.rename(columns={"POS": "pos", "REF": "ref", "A1": "alt"})  # PLINK 2 prints chr20 as 20
    beta = "BETA" if "BETA" in theirs else "OR"
    joined = ours.merge(theirs, on=["pos", "ref", "alt"]).dropna(subset=["beta", beta])
    theirs_beta = joined[beta] if beta == "BETA" else np.log(joined[beta])
    rel = (joined["beta"] - theirs_beta).abs() / theirs_beta.abs().clip(lower=1e-12)
    return len(joined), float(rel.median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("vcf", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--region", default="chr20")
    parser.add_argument("--min-mac", type=int, default=1)
    parser.add_argument("--models", default="linear,logistic")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--prescreen", default="", help="logistic: comma-separated p thresholds and/or 'score'")
    parser.add_argument("--baseline", type=Path, help="a genoquery src directory whose code runs too, alternated")
    parser.add_argument("--daemon", action="store_true", help="the genoquery run through a warm daemon too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genoquery-daemons-") as daemon_dir:
        try:
            compare(args, daemon_dir if args.daemon else None)
        finally:
            if args.daemon:
                subprocess.run(
                    ["env", f"GENOQUERY_DAEMON_DIR={daemon_dir}", "genoquery", "daemon", "stop"], check=False
                )


def compare(args: argparse.Namespace, daemon_dir: str | None) -> None:
    """The side-by-side table of :func:`main`'s arguments."""
    screens = [s for s in args.prescreen.split(",") if s]
    if not shutil.which("plink2"):
        sys.exit("plink2 is not installed (Debian: apt-get install plink2)")
    store, pfile = prepare(args.vcf, args.work, args.seed)
    with genoquery.open(store) as opened:
        n_samples, n_alleles = opened.info["samples"], opened.variants(args.region).num_rows
    print(f"{n_samples:,} samples, {n_alleles:,} ALT alleles in {args.region}, min MAC {args.min_mac}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| model | tool | wall (s), each run | CPU (s), each run | peak MB | wall ratio to plink2, per round |")
    print("|---|---|---|---|---|---|")
    for model in args.models.split(","):
        tools = commands(store, pfile, args.work, args.region, args.min_mac, model, screens, args.baseline, daemon_dir)
        if daemon_dir is not None:  # starts the daemon, then lets it learn the model's kernels
            for _ in range(3):
                subprocess.run(tools["genoquery daemon"], check=True)
                time.sleep(5)
        runs: dict[str, list[tuple[float, float, float]]] = {tool: [] for tool in tools}
        for _ in range(args.runs):  # alternated: a noisy machine slows both alike
            for tool, command in tools.items():
                runs[tool].append(measured(command))
                time.sleep(1)
        for tool, r in runs.items():
            walls, cpus = ", ".join(f"{w:.2f}" for w, _, _ in r), ", ".join(f"{c:.2f}" for _, c, _ in r)
            ratios = ", ".join(f"{w / p[0]:.2f}" for (w, _, _), p in zip(r, runs["plink2"], strict=True))
            print(f"| {model} | {tool} | {walls} | {cpus} | {max(m for *_, m in r):,.0f} | {ratios} |")
        baseline = [f"{model}_baseline"] if args.baseline is not None else []
        baseline += [f"{model}_daemon"] if daemon_dir is not None else []
        for run in [model, *baseline, *(s for s in screens if model == "logistic" and s != "score")]:
            both, median = agreement(args.work, model, run)
            agreed = f"{both:,} alleles fitted by both | median rel. beta diff. {median:.1e}"
            print(f"| {model} | agreement ({run}) | {agreed} | | |")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
