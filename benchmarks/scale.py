"""Scale run: simulate (or take) a cohort, ingest it with genoquery and its peers, time every question.

    python benchmarks/scale.py --samples 10000                       # simulates into --workdir
    python benchmarks/scale.py --samples 1000000 --workdir /tmp/gq/scale1e6 \\
        --vcf /tmp/gq/sim1e6/cohort.chr20.vcf.gz --persons /tmp/gq/sim1e6/persons.tsv

Steps, in this order (the slowest peer last, so a deadline cuts the least):

1. the cohort: ``genoquery simulate`` (3 centers, ``--length`` bp, ``--seed``) into WORKDIR/cohort,
   reused when its ``truth.json`` has the same parameters; or ``--vcf``/``--persons`` as given.
   Only the joint chr20 file is used.
2. ingest with ``genoquery ingest --persons`` and ``plink2 --make-pgen`` (child processes: wall
   time, peak resident memory from ``os.wait4``, bytes on disk);
3. questions on the store (in-process medians; ``genoquery query`` CLI as a child process) and the
   same questions asked of plink2 and bcftools: variant lookup, cohort AC/AN/AF over the whole
   region for random 1%, 10% and 50% cohorts, carriers of a rare and of the commonest variant,
   ``genoquery serve`` on the store (a lookup over HTTP, a filter cohort's frequencies over the
   region, and the server's peak memory), and association of the simulated LDL trait without
   covariates (``Store.associate`` in a new process, vs ``plink2 --glm allow-no-covars``);
4. ingest with ``vcf2zarr convert`` (bio2zarr).

A peer past ``--timeout`` (ingests) or ``--query-timeout`` (one query run) is killed and reported as
"did not finish in T s"; bcftools is not asked about a larger cohort once a smaller one timed out.
Each finished step is saved in WORKDIR/scale.json and reused by a later run on the same input
(``--fresh`` to redo everything), and after each step the table (median time, peak memory, ratio to
genoquery) is written to the section "Scale run, N samples" of benchmarks/RESULTS.md with the
machine description and tool versions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import genoquery

sys.path.insert(0, str(Path(__file__).parent))
import httpx
import pyarrow.csv as pacsv
from cyvcf2 import VCF

from genoquery.ingest.zarr_writer import ChunkLayout
from genoquery.server.auth import create_token
from ingest_peers import ingest_commands, measure_ingest
from peers import PeerFailedError, Server, machine, run_measured, tool_versions, warm_page_cache
from query_peers import (
    carrier_command,
    carrier_probes,
    draw_cohort,
    frequency_commands,
    in_process,
    wall,
)

RESULTS = Path(__file__).parent / "RESULTS.md"
PEERS = ("plink2", "bcftools", "vcf2zarr")
FRACTIONS = (0.01, 0.1, 0.5)
TRAIT = "ldl_mg_dl"
SERVER_COHORT = "sex_at_birth = 'Female'"
BLOCKS_IN_FLIGHT = 6  # docs/architecture.md: the ingest's memory bound


class Run:
    """The measurements of one workdir, saved after each step and rendered as a Markdown table."""

    def __init__(self, workdir: Path, signature: dict, fresh: bool) -> None:
        self.path = workdir / "scale.json"
        saved = json.loads(self.path.read_text()) if self.path.exists() and not fresh else {}
        if saved.get("signature") != signature:
            saved = {}
        self.rows: list[dict] = saved.get("rows", [])
        self.signature = signature
        self.started = saved.get("started", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
        self.machine_at_start = saved.get("machine_at_start", machine())

    def done(self, question: str, tool: str) -> dict | None:
        return next((r for r in self.rows if r["question"] == question and r["tool"] == tool), None)

    def add(self, row: dict) -> dict:
        row["load"] = round(os.getloadavg()[0], 1)  # 1-minute load average when the measurement ended
        self.rows = [r for r in self.rows if (r["question"], r["tool"]) != (row["question"], row["tool"])]
        self.rows.append(row)
        self.path.write_text(
            json.dumps(
                {
                    "signature": self.signature,
                    "started": self.started,
                    "machine_at_start": self.machine_at_start,
                    "rows": self.rows,
                },
                indent=1,
            )
        )
        shown = {k: v for k, v in row.items() if k not in ("question", "tool")}
        print(f"{row['question']} | {row['tool']}: {shown}", flush=True)
        return row

    def load_range(self) -> str:
        loads = [r["load"] for r in self.rows if "load" in r]
        return f" 1-minute load average as each measurement ended: {min(loads)}-{max(loads)}." if loads else ""

    def table(self) -> str:
        base: dict[str, float] = {}
        for r in self.rows:
            if r["tool"].startswith("genoquery") and "seconds" in r:
                base.setdefault(r["question"], r["seconds"])
        lines = ["| question | tool | median | peak MiB | on disk | ratio to genoquery |", "|---|---|---|---|---|---|"]
        first: dict[str, int] = {}
        for i, r in enumerate(self.rows):
            first.setdefault(r["question"], i)
        tools = {q: sum(r["question"] == q for r in self.rows) for q in first}
        for r in sorted(self.rows, key=lambda r: first[r["question"]]):
            r = {k: v.replace("|", "\\|") if isinstance(v, str) else v for k, v in r.items()}  # Markdown cells
            note = f" ({r['note']})" if r.get("note") else ""
            if "seconds" not in r:
                lines.append(f"| {r['question']} | {r['tool']}{note} | {r['error'].splitlines()[0]} | | | |")
                continue
            s = r["seconds"]
            median = f"{s:.1f} s" if s >= 10 else f"{s:.3f} s" if s >= 0.01 else f"{s * 1e3:.2f} ms"
            peak = f"{r['peak'] / 2**20:,.0f}" if "peak" in r else "—"
            size = f"{r['bytes'] / 1e6:,.1f} MB" if "bytes" in r else ""
            ratio = f"{s / base[r['question']]:.2f}" if r["question"] in base and tools[r["question"]] > 1 else ""
            lines.append(f"| {r['question']} | {r['tool']}{note} | {median} | {peak} | {size} | {ratio} |")
        return "\n".join(lines)


def write_section(run: Run, samples: int, command: str, complete: bool, versions: dict) -> None:
    """Replace (or append) the section "Scale run, N samples" of RESULTS.md."""
    title = f"## Scale run, {samples:,} samples (`benchmarks/scale.py`)"
    status = "complete" if complete else "in progress (steps still to run are missing)"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        "\n\n".join(
            [
                title,
                f"`{command}`: first started {run.started} (a rerun resumes), {status}; written {now}.",
                f"Machine at start: {run.machine_at_start}. At this writing: {machine()}.{run.load_range()}",
                "Tools: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".",
                run.table(),
                "In-process medians are `Store` calls after one warm-up call (their peak memory is not "
                "separated from the process's: the CLI row asks the same question in a fresh process). Child "
                "processes' peaks are their `os.wait4` maximum resident set (a pipeline's or a process pool's "
                "largest member). Ratios divide by genoquery's first row of the same question. The server rows "
                "are round trips of one httpx client on loopback; their peak is the server process's.",
            ]
        )
        + "\n"
    )
    text = RESULTS.read_text()
    start = text.find(title)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(title))
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start] + body + ("\n" + rest if rest else "")
    RESULTS.write_text(text)


def cohort_input(args) -> tuple[Path, Path | None, dict | None]:
    """The joint chr20 VCF and person table: given, or simulated into WORKDIR/cohort (reused when the
    parameters match). Returns them and the simulation's measurement (None when given or reused)."""
    if args.vcf:
        return args.vcf, args.persons, None
    out = args.workdir / "cohort"
    params = {"n_samples": args.samples, "n_centers": 3, "sequence_length": args.length, "seed": args.seed}
    truth = out / "truth.json"
    vcf, persons = out / "cohort.chr20.vcf.gz", out / "persons.tsv"
    if truth.exists() and params.items() <= json.loads(truth.read_text())["parameters"].items():
        return vcf, persons, None
    cmd = [
        str(Path(sys.executable).parent / "genoquery"),
        "simulate",
        str(out),
        "--samples",
        str(args.samples),
        "--centers",
        "3",
        "--length",
        str(args.length),
        "--seed",
        str(args.seed),
        "--quiet",
    ]
    seconds, peak = run_measured(cmd)
    return (
        vcf,
        persons,
        {
            "question": "simulate",
            "tool": "genoquery simulate",
            "seconds": seconds,
            "peak": peak,
            "bytes": vcf.stat().st_size,
            "note": "3 centers, chr20 and chrX; on disk: the joint chr20 VCF.gz",
        },
    )


def ingest(run: Run, name: str, spec, timeout: float, samples: int) -> dict:
    """One tool's ingest, unless saved (and its output still there) from an earlier run."""
    row = run.done("ingest", name)
    if row and ("error" in row or spec[1].exists()):
        return row
    row = {"question": "ingest", "tool": name, **measure_ingest(name, *spec, timeout)}
    if name == "genoquery":
        layout = ChunkLayout().fitted(samples)
        bound = BLOCKS_IN_FLIGHT * layout.variant_chunk * samples * 3
        sites = layout.variant_chunk
        row["note"] = f"chunk buffers {BLOCKS_IN_FLIGHT} x {sites} sites x samples x 3 B = {bound / 2**20:,.0f} MiB"
    return run.add(row)


def measured(run: Run, question: str, tool: str, measure) -> dict:
    """Record ``measure()`` (seconds, or (seconds, peak bytes)) unless this question and tool are saved."""
    row = run.done(question, tool)
    if row:
        return row
    row = {"question": question, "tool": tool}
    try:
        result = measure()
    except PeerFailedError as failure:
        row["error"] = str(failure)
    else:
        row.update(zip(("seconds", "peak"), result if isinstance(result, tuple) else (result,), strict=True))
    return run.add(row)


def phenotype_file(persons: Path, out: Path) -> Path:
    """plink2's phenotype file (#IID, TRAIT) from the person table."""

    table = pacsv.read_csv(
        persons,
        parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(include_columns=["sample_id", TRAIT]),
    )
    with out.open("w") as f:
        f.write(f"#IID\t{TRAIT}\n")
        for sample, value in zip(table["sample_id"].to_pylist(), table[TRAIT].to_pylist(), strict=True):
            f.write(f"{sample}\t{'NA' if value is None else value}\n")
    return out


def questions(run: Run, args, store_path: Path, vcf: Path, pfile: str | None, persons: Path | None) -> None:
    """Every query question, asked of genoquery (in-process and CLI) and of the installed peers."""
    gq_cli = str(Path(sys.executable).parent / "genoquery")
    use_bcftools = "bcftools" not in args.skip_peers and shutil.which("bcftools")
    limit = args.query_timeout
    work = args.workdir / "queries"
    work.mkdir(exist_ok=True)
    with genoquery.open(store_path) as store:
        variants = store.variants()
        region = variants["contig"][0].as_py()  # the VCF's one contig, whole
        named = [
            v
            for v in variants.select(["contig", "pos", "id", "variant_key"]).to_pylist()
            if v["id"] and ";" not in v["id"]
        ]
        probe = named[len(named) // 2]
        q = f"variant lookup by key, p50 ({probe['variant_key']})"
        measured(run, q, "genoquery Store.lookup", lambda: in_process(lambda: store.lookup(probe["variant_key"]), 200))
        measured(
            run,
            q,
            "genoquery query variant (CLI)",
            lambda: wall([gq_cli, "query", str(store_path), "variant", probe["variant_key"]], args.repeat),
        )
        if use_bcftools:
            measured(
                run,
                q,
                "bcftools view -G -r POS (INFO AC/AN)",
                lambda: wall(
                    ["bcftools", "view", "-H", "-G", "-r", f"{probe['contig']}:{probe['pos']}", str(vcf)],
                    args.repeat,
                    limit,
                ),
            )
        if pfile:
            measured(
                run,
                q,
                f"plink2 --snp {probe['id']} --freq",
                lambda: wall(
                    [
                        "plink2",
                        "--pfile",
                        pfile,
                        "--snp",
                        probe["id"],
                        "--freq",
                        "--threads",
                        str(args.threads),
                        "--out",
                        str(work / "snp"),
                    ],
                    args.repeat,
                    limit,
                ),
            )

        bcftools_gave_up = None
        for fraction in FRACTIONS:
            cohort = draw_cohort(store, fraction, args.seed)
            keep = work / f"cohort-{fraction}.txt"
            keep.write_text("".join(f"{s}\n" for s in cohort))
            q = (
                f"cohort AC/AN/AF, random {fraction:.0%} ({len(cohort):,} samples), "
                f"{region} ({variants.num_rows:,} alleles)"
            )
            measured(
                run,
                q,
                "genoquery Store.frequencies",
                lambda: in_process(lambda: store.frequencies(region, cohort=cohort), args.repeat),  # noqa: B023 - called at once, in this iteration
            )
            for tool, cmd in frequency_commands(store_path, region, keep, vcf, pfile, work).items():
                if not tool.startswith("bcftools"):
                    measured(run, q, tool, lambda: wall(cmd, args.repeat, limit))  # noqa: B023 - called at once, in this iteration
                elif use_bcftools and bcftools_gave_up:
                    run.add(
                        {
                            "question": q,
                            "tool": tool,
                            "error": f"not run: did not finish in {limit:.0f} s for {bcftools_gave_up}",
                        }
                    )
                elif use_bcftools and "error" in measured(run, q, tool, lambda: wall(cmd, 1, limit)):  # noqa: B023 - called at once, in this iteration
                    bcftools_gave_up = f"the {fraction:.0%} cohort"

        for label, variant in carrier_probes(store, region).items():
            key = variant["variant_key"]
            q = f"carriers of a {label} variant ({key}, AF {variant['af']:.3g})"
            measured(
                run,
                q,
                "genoquery Store.carriers",
                lambda: in_process(lambda: store.carriers(key), 50 if variant["ac"] == 1 else args.repeat),  # noqa: B023 - called at once, in this iteration
            )
            measured(
                run,
                q,
                "genoquery query carriers (CLI)",
                lambda: wall([gq_cli, "query", str(store_path), "carriers", key], args.repeat, limit),  # noqa: B023 - called at once, in this iteration
            )
            if use_bcftools:
                measured(
                    run,
                    q,
                    "bcftools query -r POS -i 'GT=\"alt\"'",
                    lambda: wall(carrier_command(vcf, variant), args.repeat, limit),  # noqa: B023 - called at once, in this iteration
                )

        served(run, store_path, region, probe["variant_key"], args.repeat)
        q = f"association, {TRAIT} ~ each variant of {region}"
        store_call = f"genoquery.open({str(store_path)!r})"
        call = f"import genoquery; {store_call}.associate({TRAIT!r}, region={region!r}, min_mac=1)"  # as plink2: all
        measured(
            run,
            q,
            "genoquery Store.associate (new process)",  # a time limit and a peak of its own
            lambda: wall([sys.executable, "-c", call], 1, limit),
        )
        if pfile and persons:
            pheno = phenotype_file(persons, work / "pheno.tsv")
            measured(
                run,
                q,
                "plink2 --glm allow-no-covars",
                lambda: wall(
                    [
                        "plink2",
                        "--pfile",
                        pfile,
                        "--pheno",
                        str(pheno),
                        "--pheno-name",
                        TRAIT,
                        "--glm",
                        "allow-no-covars",
                        "--threads",
                        str(args.threads),
                        "--out",
                        str(work / "glm"),
                    ],
                    1,
                    limit,
                ),
            )


def served(run: Run, store_path: Path, region: str, key: str, repeat: int) -> None:
    """``genoquery serve`` on the store, asked over HTTP for one variant (p50 of 200) and for the
    frequencies of a filter cohort over the whole region; its peak memory goes with both rows."""
    lookup_q = f"server: variant lookup by key over HTTP, p50 ({key})"
    cohort_q = f"server: frequencies of {SERVER_COHORT} over {region} (registered token, first page)"
    if run.done(lookup_q, "genoquery serve") and run.done(cohort_q, "genoquery serve"):
        return

    token = create_token(store_path, "registered", f"scale-{os.getpid()}")
    server = Server(store_path, "--budget", str(10**9))
    try:
        with httpx.Client(base_url=server.url, timeout=None) as client:
            lookup = in_process(lambda: client.get(f"/api/v1/variants/{key}").raise_for_status(), 200)
            cohort = in_process(
                lambda: client.get(
                    "/api/v1/frequencies",
                    params={"region": region, "cohort": SERVER_COHORT},
                    headers={"Authorization": f"Bearer {token}"},
                ).raise_for_status(),
                repeat,
            )
    finally:
        peak = server.stop()
    run.add({"question": lookup_q, "tool": "genoquery serve", "seconds": lookup, "peak": peak})
    run.add({"question": cohort_q, "tool": "genoquery serve", "seconds": cohort, "peak": peak})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000, help="samples to simulate (without --vcf)")
    parser.add_argument("--length", type=int, default=1_000_000, help="bp simulated per contig")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed, and the cohorts' draw")
    parser.add_argument("--vcf", type=Path, help="use this indexed joint VCF.gz instead of simulating")
    parser.add_argument("--persons", type=Path, help="its person table (for --persons and association)")
    parser.add_argument("--workdir", type=Path, help="default: /tmp/genoquery-scale-SAMPLES")
    parser.add_argument("--skip-peers", default="", help=f"comma-separated, from {', '.join(PEERS)}")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each ingest may take")
    parser.add_argument("--query-timeout", type=float, default=600, help="seconds one peer query run may take")
    parser.add_argument("--repeat", type=int, default=5, help="runs per median")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fresh", action="store_true", help="measure again what scale.json already holds")
    parser.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    args.skip_peers = {p for p in args.skip_peers.split(",") if p}
    if args.skip_peers - set(PEERS):
        parser.error(f"--skip-peers: unknown {', '.join(sorted(args.skip_peers - set(PEERS)))}")
    args.workdir = args.workdir or Path(f"/tmp/genoquery-scale-{args.samples}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    versions = tool_versions()
    command = "python benchmarks/scale.py " + " ".join(sys.argv[1:])

    vcf, persons, simulated = cohort_input(args)

    samples = len(VCF(str(vcf)).samples)
    stat = vcf.stat()
    run = Run(
        args.workdir,
        {
            "vcf": str(vcf.resolve()),
            "bytes": stat.st_size,
            "mtime": stat.st_mtime,
            "persons": str(persons),
            "seed": args.seed,
        },
        args.fresh,
    )
    if simulated:
        run.add(simulated)

    def report(complete: bool = False) -> None:
        if not args.no_results:
            write_section(run, samples, command, complete, versions)

    print(f"input: {vcf} ({stat.st_size / 1e6:,.1f} MB, {samples:,} samples); workdir {args.workdir}", flush=True)
    warm_page_cache(vcf)
    specs = ingest_commands(vcf, args.workdir, args.threads, persons)
    if "error" in ingest(run, "genoquery", specs["genoquery"], args.timeout, samples):
        report()
        raise SystemExit("genoquery ingest failed; see the table")
    pfile = None
    if "plink2" not in args.skip_peers:
        if specs["plink2"] is None:
            run.add({"question": "ingest", "tool": "plink2", "error": "not installed"})
        elif "error" not in ingest(run, "plink2", specs["plink2"], args.timeout, samples):
            pfile = str(args.workdir / "pl" / "out")
    report()
    questions(run, args, specs["genoquery"][1], vcf, pfile, persons)
    report()
    if "vcf2zarr" not in args.skip_peers:
        if specs["vcf2zarr"] is None:
            run.add({"question": "ingest", "tool": "vcf2zarr", "error": "not installed"})
        else:
            ingest(run, "vcf2zarr", specs["vcf2zarr"], args.timeout, samples)
    report(complete=True)
    print("\n" + run.table())


if __name__ == "__main__":
    main()
