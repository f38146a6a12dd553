"""The ``genoquery`` command line. Input problems print one line and exit with status 2.

Flags follow bcftools where it has the same one: ``-o/--output`` (``-`` for standard output; the
format from the name or ``-O``), ``-r/--regions`` (repeatable, or comma-separated) and ``-R`` (a
file of regions), ``-s/-S`` (samples, ``^`` to exclude), ``--threads``, ``--version``; ``ingest``
reads a VCF from standard input given ``-``.

The ``genoquery`` program (:mod:`genoquery.launch`) hands each command but ``serve`` to a warm
daemon of the same installation when one runs (:mod:`genoquery.daemon`), where a query answers in
0.16-0.29 s instead of the 0.35-1.4 s of a cold process (10^4 samples, benchmarks/RESULTS.md);
``GENOQUERY_DAEMON=0`` turns it off.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gzip
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TextIO

from genoquery.daemon.client import stop_daemons
from genoquery.errors import GenoqueryError, GenoqueryWarning, InputFileError, QueryError
from genoquery.ingest import ingest
from genoquery.output import FORMATS, write_table, write_tables
from genoquery.query.cluster.connect import ADDRESS_VARIABLE, cluster_client
from genoquery.query.store import Store
from genoquery.query.store import open as open_store
from genoquery.storage.format import FORMAT_VERSION
from genoquery.version import __version__

# The modules of commands that need more than the store API, imported only when the command runs:
# ``genoquery --help`` and the query commands never load numba, pysam, msprime, FastAPI or matplotlib.
_COMMAND_MODULES = {
    "assoc": "genoquery.query.association.plots",
    "audit": "genoquery.server.audit",
    "cluster": "genoquery.query.cluster.scans",
    "compact": "genoquery.ingest.compact",
    "genes": "genoquery.index.genes",
    "phenotypes": "genoquery.index.phenotypes",
    "serve": "genoquery.server.app",
    "serve-settings": "genoquery.server.settings",
    "simulate": "genoquery.simulate",
    "tokens": "genoquery.server.auth",
    "upgrade": "genoquery.ingest.upgrade",
    "verify": "genoquery.verify",
    "withdraw": "genoquery.ingest.withdraw",
}


LOG_INTERVAL_S = 10.0  # a progress line in a log at most this often


def _module(command: str) -> ModuleType:
    """The module behind ``command`` (see ``_COMMAND_MODULES``), imported on first use."""
    return import_module(_COMMAND_MODULES[command])


def _progress(args: argparse.Namespace) -> bool:
    """Progress unless ``--quiet``: a bar on a terminal, plain lines in a log (:class:`LogLines`)."""
    return not args.quiet


class LogLines(io.TextIOBase):
    """Standard error when it is not a terminal: a progress bar's redraws (text after ``\\r``)
    become a plain line every ``interval`` seconds, and its last state once it has shown one; a
    redirected bar was otherwise hundreds of carriage-return updates in a log. A bar shorter than
    ``interval`` leaves nothing, so a failing command still prints its one error line. Other text
    passes as written."""

    def __init__(self, stream: TextIO, interval: float = LOG_INTERVAL_S) -> None:
        self.stream, self._interval = stream, interval
        self._bar: str | None = None  # the current bar's latest state (None: no bar drawn)
        self._shown = time.monotonic()
        self._bar_shown = False  # whether the current bar has written a line

    def write(self, text: str) -> int:
        redraw = False
        for piece in re.split(r"(\r|\n)", text):
            if piece == "\r":
                redraw = True
            elif piece == "\n":
                self._end_line()
                redraw = False
            elif piece and redraw:
                self._bar = piece.strip()
                if time.monotonic() - self._shown >= self._interval:
                    self._show(self._bar)
            elif piece:
                self._bar = None
                self.stream.write(piece)
        return len(text)

    def _show(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self._shown, self._bar_shown = time.monotonic(), True

    def _end_line(self) -> None:
        """A newline: the end of a bar (its last state, if it has shown a line) or of other text."""
        if self._bar is None:
            self.stream.write("\n")
        elif self._bar_shown:
            self._show(self._bar)
        self._bar, self._bar_shown = None, False

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def _stdin_vcf(paths: list[str]) -> Iterator[list[str]]:
    """``paths`` with ``-`` replaced by a temporary copy of standard input (VCF, VCF.gz or BCF,
    named by its first bytes), removed afterwards: ingest reads its files more than once."""
    if "-" not in paths:
        yield paths
        return
    if paths.count("-") > 1:
        raise QueryError("standard input (-) can be given once")
    with tempfile.TemporaryDirectory(prefix="genoquery-stdin-") as tmp:
        head = sys.stdin.buffer.read(1 << 16)  # a whole BGZF block: enough to tell BCF from VCF
        name = "stdin.vcf"
        if head[:2] == b"\x1f\x8b":
            first = zlib.decompressobj(31).decompress(head)
            name = "stdin.bcf" if first.startswith(b"BCF") else "stdin.vcf.gz"
        target = Path(tmp) / name
        with open(target, "wb") as out:
            out.write(head)
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield [str(target) if p == "-" else p for p in paths]


def _cmd_ingest(args: argparse.Namespace) -> None:
    with _stdin_vcf(args.vcfs) as vcfs, _cluster(args) as client:
        store = _ingest(args, vcfs, client)
    print(
        f"{store.root}: {store.info['samples']} samples, {store.info['sites']} sites, "
        f"{store.info['variants']} ALT alleles",
        file=sys.stderr,
    )


def _ingest(args: argparse.Namespace, vcfs: list[str], client=None) -> Store:
    return ingest(
        args.store,
        vcfs,
        persons=args.persons,
        overwrite=args.overwrite,
        batch=args.batch,
        complete_callset=args.complete_callset,
        allow_ref_conflicts=args.allow_ref_conflicts,
        match_contig_names=args.match_contig_names,
        rename_duplicate_samples=args.rename_duplicate_samples,
        fields=None if args.fields is None else [f.strip() for f in args.fields.split(",") if f.strip()],
        progress=_progress(args),
        client=client,
    )


def _write(args: argparse.Namespace, table) -> None:
    write_table(table, args.format, args.output, internal=args.internal)


def _regions(args: argparse.Namespace, *positional: str | None) -> list[str] | None:
    """The regions of ``-r`` (each repeatable and comma-separated), ``-R FILE`` and a positional
    REGION, or None for the whole store."""
    regions = [r for r in positional if r is not None] + list(args.regions or [])
    if args.regions_file is not None:
        regions += _regions_file(Path(args.regions_file))
    return regions or None


def _regions_file(path: Path) -> list[str]:
    """Regions of a file as ``bcftools -R`` reads it: tab-separated CHROM, POS or CHROM, BEG, END
    (1-based inclusive), or BED (``.bed``, ``.bed.gz``: 0-based half-open); ``#`` lines skipped."""
    bed = path.name.endswith((".bed", ".bed.gz"))
    try:
        lines = (
            gzip.decompress(path.read_bytes()).decode() if path.name.endswith(".gz") else path.read_text()
        ).splitlines()
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile) as err:
        raise InputFileError(path, f"cannot read the regions file ({err.__class__.__name__})") from None
    regions = []
    for number, line in enumerate(lines, 1):
        fields = line.rstrip("\r").split("\t")
        if not line.strip() or line.startswith(("#", "track ", "browser ")):
            continue
        if len(fields) < 2 or not all(f.strip().isdigit() for f in fields[1:3]):
            raise InputFileError(
                path, f"not a region: {line[:60]!r}", line=number, fix="write CHROM<TAB>POS or CHROM<TAB>BEG<TAB>END"
            )
        start = int(fields[1]) + bed
        end = int(fields[2]) if len(fields) > 2 else start
        regions.append(f"{fields[0]}:{start}-{end}")
    return regions


def _sample_ids(args: argparse.Namespace, store: Store) -> list[str] | None:
    """The samples of ``-s LIST`` / ``-S FILE`` (``^`` first: every sample but those, in store
    order, as bcftools) or None; a list may also be ``@FILE``."""
    if args.samples is not None and args.samples_file is not None:
        raise QueryError("give -s (a list of samples) or -S (a file of samples), not both")
    text = args.samples if args.samples is not None else args.samples_file
    if text is None:
        return None
    exclude = text.startswith("^")
    text = text.removeprefix("^")
    if args.samples_file is not None:
        ids = _id_file(Path(text))
    elif text.startswith("@"):
        ids = _id_file(Path(text[1:]))
    else:
        ids = [s.strip() for s in text.split(",") if s.strip()]
    if not exclude:
        return ids
    every, excluded = store.sample_id_array.to_pylist(), set(ids)  # as lists: no pandas (genoquery.arrow)
    unknown = sorted(excluded - set(every))
    if unknown:
        raise QueryError(f"{len(unknown)} sample(s) to exclude are not in this store: {', '.join(unknown[:5])}")
    return [every[i] for i in store.active_samples.tolist() if every[i] not in excluded]


def _id_file(path: Path) -> list[str]:
    """Sample IDs, one per line (``#`` lines skipped)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(
            path,
            f"cannot read the sample ID list ({err.__class__.__name__})",
            fix="give a file with one sample ID per line",
        ) from None
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _cohort(args: argparse.Namespace, store: Store):
    """The cohort of ``--cohort`` or ``-s/-S`` (None: every sample)."""
    samples = _sample_ids(args, store)
    if samples is not None and args.cohort is not None:
        raise QueryError("give --cohort or -s/-S, not both")
    return samples if samples is not None else None if args.cohort is None else _cohort_spec(args.cohort)


def _cmd_variants(args: argparse.Namespace) -> None:
    with open_store(args.store) as store:
        info = [name for text in args.info for name in text.split(",") if name]
        _write(args, store.variants(region=_regions(args), by=args.by, info=info))


def _cmd_query(args: argparse.Namespace) -> None:
    with open_store(args.store) as store:
        table = store.lookup(
            **{args.target: args.what},
            af_min=args.af_min,
            af_max=args.af_max,
            pass_only=args.pass_only,
            variant_type=args.type,
            by=args.by,
        )
        _write(args, table)


def _cluster(args: argparse.Namespace):
    """The Dask client of ``--cluster``/``--workers`` (None: this process alone; assoc's actions but
    glm have neither)."""
    return cluster_client(getattr(args, "cluster", None), getattr(args, "workers", None))


def _cmd_frequencies(args: argparse.Namespace) -> None:
    with open_store(args.store) as store, _cluster(args) as client:
        args.exit_now = client is None  # a Dask client's teardown is left to the interpreter
        regions, cohort = _regions(args, args.region), _cohort(args, store)
        _write(args, store.frequencies(regions, cohort=cohort, by=args.by, client=client, progress=_progress(args)))


def _cmd_carriers(args: argparse.Namespace) -> None:
    regions = _regions(args)
    genes = None if args.genes is None else _names(args.genes)
    if [args.variant, args.gene, regions, genes].count(None) != 3:
        raise QueryError("give a variant (key or rsID), or --gene, --genes or -r REGION with optional filters")
    with open_store(args.store) as store:
        if genes is not None:
            with _cluster(args) as client:
                args.exit_now = client is None  # a Dask client's teardown is left to the interpreter
                table = _module("cluster").gene_carriers(
                    store,
                    genes,
                    _cohort(args, store),
                    client=client,
                    progress=_progress(args),
                    af_min=args.af_min,
                    af_max=args.af_max,
                    pass_only=args.pass_only,
                    variant_type=args.type,
                )
            _write(args, table)
            return
        table = store.carriers(
            args.variant,
            _cohort(args, store),
            gene=args.gene,
            region=regions,
            af_min=args.af_min,
            af_max=args.af_max,
            pass_only=args.pass_only,
            variant_type=args.type,
        )
        _write(args, table)


def _names(text: str) -> list[str]:
    """Comma-separated names, or ``@FILE`` of one a line."""
    return _id_file(Path(text[1:])) if text.startswith("@") else [n.strip() for n in text.split(",") if n.strip()]


def _cmd_participant(args: argparse.Namespace) -> None:
    with open_store(args.store) as store:
        _write(args, store.participant(args.sample_id))


def _cmd_genes(args: argparse.Namespace) -> None:
    count = _module("genes").import_genes(args.store, args.file, fmt=args.format)
    print(f"{args.store}: {count} genes imported from {args.file}", file=sys.stderr)


def _cmd_phenotypes(args: argparse.Namespace) -> None:
    result = _module("phenotypes").import_table(args.store, args.file, kind=args.kind, table=args.table)
    target = "the person table" if result.kind == "person" else f"event table {result.table!r}"
    print(f"{args.store}: {result.rows} rows of {args.file} imported as {target}", file=sys.stderr)
    if result.ignored_columns:
        print(f"ignored columns: {', '.join(result.ignored_columns)}", file=sys.stderr)
    if result.unknown_ids:
        shown = ", ".join(result.unknown_ids[:5]) + (", ..." if len(result.unknown_ids) > 5 else "")
        print(
            f"warning: {len(result.unknown_ids)} ID(s) are not samples of this store (imported, "
            f"matched by no cohort until ingested): {shown}",
            file=sys.stderr,
        )


def _cohort_spec(text: str) -> str | list[str]:
    """A cohort argument: a saved name or filter, or @FILE with one sample ID per line."""
    return _id_file(Path(text[1:])) if text.startswith("@") else text


def _cmd_cohort(args: argparse.Namespace) -> None:
    with open_store(args.store) as store:
        if args.action == "list":
            table = store.cohorts()
            if args.format == "json":
                write_table(table, "json", None)
            for row in table.to_pylist() if args.format == "tsv" else ():
                definition = " ".join(row["definition"].split())
                print(f"{row['name']}\t{row['kind']}\t{row['created_at']:%Y-%m-%d %H:%M:%S}\t{definition}")
            return
        if args.action == "save":
            indexes = store.save_cohort(args.name, _cohort_spec(args.cohort))
            print(f"saved cohort {args.name!r}: {len(indexes)} samples", file=sys.stderr)
            return
        indexes = store.cohort(_cohort_spec(args.cohort))
        ids = store.samples().column("sample_id").to_numpy(zero_copy_only=False)[indexes]
        print(f"{len(indexes)} samples", file=sys.stderr)
        sys.stdout.write("".join(f"{i}\n" for i in ids))


def _cmd_export(args: argparse.Namespace) -> None:
    if args.out is not None and args.output is not None:
        raise QueryError(f"give the output file once: {args.out} or -o {args.output}")
    out = args.out or args.output or "-"
    with open_store(args.store) as store:
        store.export_vcf(
            out,
            region=_regions(args),
            samples=_sample_ids(args, store),
            index=args.write_index,
            progress=_progress(args),
        )
    if out != "-":
        print(f"wrote {out}" + (f" and its {args.write_index} index" if args.write_index else ""), file=sys.stderr)


def _cmd_withdraw(args: argparse.Namespace) -> None:
    ids = [i for text in args.samples for i in ([text] if not text.startswith("@") else _cohort_spec(text))]
    done = _module("withdraw").withdraw(args.store, ids, args.reason)
    print(
        f"withdrew {len(done.withdrawn)} sample(s); statistics recomputed without them"
        + (f"; {len(done.already)} already withdrawn" if done.already else "")
        + ". Run 'genoquery compact' to remove their genotypes from disk.",
        file=sys.stderr,
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    with _cluster(args) as client:
        report = _module("verify").verify(args.store, args.sources, progress=_progress(args), client=client)
    counts = ", ".join(f"{n} {kind}" for kind, n in report.checked.items() if not kind.endswith("problems"))
    for problem in report.problems:
        print(f"MISMATCH {problem}")
    more = sum(n for kind, n in report.checked.items() if kind.endswith("problems")) - len(report.problems)
    if more > 0:
        print(f"... and {more} more")
    print(f"{args.store}: {'verified' if report.ok else 'FAILED'} ({counts})", file=sys.stderr)
    return 0 if report.ok else 1


def _cmd_compact(args: argparse.Namespace) -> None:
    done = _module("compact").compact(args.store)
    print(
        f"rewrote {len(done)} batch(es) without withdrawn genotypes" + (f": {', '.join(done)}" if done else ""),
        file=sys.stderr,
    )


def _cmd_upgrade(args: argparse.Namespace) -> None:
    done = _module("upgrade").upgrade(args.store)
    print(
        f"{args.store}: store format {FORMAT_VERSION}"
        + (f"; rewrote {len(done)} batch(es): {', '.join(done)}" if done else " already; nothing to do"),
        file=sys.stderr,
    )


def _cmd_simulate(args: argparse.Namespace) -> None:
    files = _module("simulate").simulate_cohort(
        args.outdir,
        n_samples=args.samples,
        n_centers=args.centers,
        sequence_length=args.length,
        seed=args.seed,
        missing_rate=args.missing_rate,
        progress=_progress(args),
    )
    print(files, file=sys.stderr)


def _cmd_serve(args: argparse.Namespace) -> None:
    settings = _module("serve-settings").Settings(min_cohort=args.min_cohort, budget=args.budget)
    print(f"serving {args.store} on http://{args.host}:{args.port} (docs: /docs); Ctrl-C stops", file=sys.stderr)
    _module("serve").serve(
        args.store,
        host=args.host,
        port=args.port,
        workers=args.workers,
        settings=settings,
        trusted_proxy=args.trusted_proxy,
    )


def _cmd_tokens(args: argparse.Namespace) -> None:
    if args.action == "create":
        secret = _module("tokens").create_token(args.store, args.tier, args.name, args.sample)
        print(f"token {args.name!r} ({args.tier}); shown once, keep it secret:", file=sys.stderr)
        print(secret)
    elif args.action == "revoke":
        _module("tokens").revoke_token(args.store, args.name)
        print(f"revoked token {args.name!r}", file=sys.stderr)
    else:
        columns = ("name", "tier", "sample_id", "created_at", "revoked_at")
        print("\t".join(columns))
        for t in _module("tokens").list_tokens(args.store):
            print("\t".join(str(t[k] or "-") for k in columns))


def _cmd_daemon(args: argparse.Namespace) -> None:
    print(f"asked {stop_daemons()} daemon(s) to stop", file=sys.stderr)


def _cmd_audit(args: argparse.Namespace) -> None:
    records = list(_module("audit").read(args.store))
    if args.format == "tsv":
        print("time\ttoken\ttier\trequest\tstatus\trows")
    for r in records[-args.tail :] if args.tail else records:
        if args.format == "json":
            print(json.dumps(r))
        else:
            params = "&".join(f"{k}={v}" for k, v in r["params"].items())
            print(
                f"{r['time']}\t{r['token'] or '-'}\t{r['tier'] or '-'}\t{r['method']} {r['endpoint']}"
                f"{'?' + params if params else ''}\t{r['status']}\t{'-' if r['rows'] is None else r['rows']}"
            )


def _keep_freed_memory() -> None:
    """Asks glibc's malloc to keep freed memory for reuse rather than return it to the system:
    arrays up to 256 MB from its heaps (not an mmap each), heaps trimmed only above 1 GB. An
    association scan at 10^6 samples allocates and frees ~10-60 MB arrays per block on three
    threads; each was mmapped, page-faulted in and unmapped afresh (and an unmap stalls the other
    threads' page faults): ~0.5 s of system time of a linear chr20 scan. A no-op elsewhere."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc
        return
    mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
    mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


def _cmd_assoc(args: argparse.Namespace) -> None:
    if args.action == "glm":
        _keep_freed_memory()  # a process of its own, which ends with the scan
    cohort = None if args.cohort is None else _cohort_spec(args.cohort)
    covariates = [c.strip() for c in (getattr(args, "covar", None) or "").split(",") if c.strip()]
    with open_store(args.store) as store, _cluster(args) as client:
        if args.action == "table":
            if (args.variant is None) == (args.gene is None and args.region is None):
                raise QueryError("give a variant (key or rsID), or --gene or --region with optional filters")
            table = store.carrier_table(
                args.variant,
                args.condition.split(","),
                cohort,
                gene=args.gene,
                region=args.region,
                af_max=args.af_max,
                pass_only=args.pass_only,
                variant_type=args.type,
            )
        elif args.action == "phewas":
            phenotypes = None if args.phenotypes is None else args.phenotypes.split(",")
            table = store.phewas(
                args.variant, phenotypes, covariates=covariates, cohort=cohort, min_cases=args.min_cases
            )
            if args.plot:
                _module("assoc").phewas_plot(table, args.plot)
        elif args.action == "ancestry":
            _module("assoc").af_by_ancestry(store, args.variant, args.plot, cohort=cohort)
            print(f"wrote {args.plot}", file=sys.stderr)
            return
        else:
            phenotype = args.phenotype.split(",") if "," in args.phenotype else args.phenotype
            options = {
                "region": args.region,
                "gene": args.gene,
                "variants": None if args.variants is None else args.variants.split(","),
                "cohort": cohort,
                "model": args.model,
                "min_mac": args.min_mac,
                "test": args.test,
                "prescreen_p": args.prescreen_p,
                "progress": _progress(args),
            }
            if client is None and not (args.manhattan or args.qq):  # rows written as they are fitted
                write_tables(
                    store.associate_blocks(phenotype, covariates, **options),
                    args.format,
                    args.output,
                    internal=args.internal,
                )
                args.exit_now = True  # see main: nothing is left to do but the interpreter's teardown
                return
            table = store.associate(phenotype, covariates, client=client, **options)
            for kind, path in (("manhattan", args.manhattan), ("qq", args.qq)):
                if path:
                    getattr(_module("assoc"), kind)(
                        table, path, title=f"{phenotype} ({args.model or 'auto'})" if kind == "manhattan" else None
                    )
        _write(args, table)


# Examples on the README's demo cohort (its Use block: ``simulate cohort/``, ``ingest my.gq``, genes and
# phenotypes imported), shown at the end of each command's --help; tests/test_readme.py runs them in
# this order (after the README's blocks), all but ``serve`` and ``simulate``.
EXAMPLES = {
    "ingest": "genoquery ingest cohort.gq cohort/cohort.chr20.vcf.gz cohort/cohort.chrX.vcf.gz "
    "--persons cohort/persons.tsv\n"
    "bcftools view -r chr20:1-100000 cohort/cohort.chr20.vcf.gz | genoquery ingest chr20.gq -",
    "variants": "genoquery variants my.gq -r chr20:1-200000 -r chrX:1-50000 -o variants.parquet",
    "query variant": "genoquery query my.gq variant chr20-150099-C-T",
    "query region": "genoquery query my.gq region chr20:150000-160000 --af-max 0.01 --pass-only",
    "query gene": "genoquery query my.gq gene GQA1 --type snv",
    "query frequencies": "genoquery query my.gq frequencies chr20:1-1000000 --cohort \"sex_at_birth = 'Female'\" "
    "--by ancestry",
    "query carriers": "genoquery query my.gq carriers chr20-150099-C-T -s ^S000001,S000002",
    "query participant": "genoquery query my.gq participant S000042 -O json",
    "assoc glm": "genoquery assoc my.gq glm --phenotype ldl_mg_dl --covar age,sex -r chr20:1-200000",
    "assoc phewas": "genoquery assoc my.gq phewas chr20-150099-C-T --min-cases 5",
    "assoc table": "genoquery assoc my.gq table chr20-150099-C-T --condition E11",
    "assoc ancestry": "genoquery assoc my.gq ancestry chr20-150099-C-T --plot af.png",
    "genes": "genoquery genes my.gq data/fixtures/genes.gtf",
    "phenotypes": "genoquery phenotypes my.gq cohort/conditions.tsv",
    "cohort save": "genoquery cohort my.gq save women \"sex_at_birth = 'Female'\"",
    "cohort list": "genoquery cohort my.gq list",
    "cohort show": "genoquery cohort my.gq show \"has_condition('E11')\"",
    "export": "genoquery export my.gq -r chr20:1-50000 -s S000001,S000002 -o out.vcf.gz --write-index\n"
    "genoquery export my.gq -r chr20:1-50000 -s ^S000001 | bcftools view -H | head",
    "verify": "genoquery verify my.gq --sources cohort/cohort.chrX.vcf.gz",
    "withdraw": 'genoquery withdraw my.gq S000007 --reason "consent withdrawn"',
    "compact": "genoquery compact my.gq",
    "upgrade": "genoquery upgrade old.gq",
    "tokens create": "genoquery tokens my.gq create --tier registered --name alice",
    "tokens list": "genoquery tokens my.gq list",
    "tokens revoke": "genoquery tokens my.gq revoke --name alice",
    "audit": "genoquery audit my.gq --tail 20",
    "serve": "genoquery serve my.gq --port 8000",
    "daemon": "genoquery daemon stop",
    "simulate": "genoquery simulate cohort/ --samples 3000 --centers 3",
}
STORE_HELP = "a genoquery store directory"
COHORT_HELP = "saved cohort name, filter expression, or @FILE of sample IDs (default: every sample)"


def _command(sub, name: str, path: str = "", **kwargs) -> argparse.ArgumentParser:
    """A subcommand parser whose --help ends with its example (``EXAMPLES[path or name]``)."""
    example = EXAMPLES.get(f"{path} {name}".strip())
    return sub.add_parser(
        name,
        epilog=f"example:\n  {example.replace(chr(10), chr(10) + '  ')}" if example else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=kwargs.get("help"),
        **kwargs,
    )


def _store(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help=STORE_HELP)


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--af-min", type=float, help="keep variants with whole-cohort AF >= this")
    p.add_argument("--af-max", type=float, help="keep variants with whole-cohort AF <= this")
    p.add_argument("--pass-only", action="store_true", help="keep variants with FILTER = PASS")
    p.add_argument("--type", choices=("snv", "indel", "other"), help="keep one variant type")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write here (- for standard output, the default); the format follows "
        "the name: .tsv, .csv, .json, .parquet",
    )
    p.add_argument(
        "-O",
        "--output-type",
        "--format",
        dest="format",
        choices=FORMATS,
        help="output format (default: from -o, else tsv)",
    )
    p.add_argument("--internal", action="store_true", help="also the store's row numbers (site_row, sample_index)")


def _region_options(p: argparse.ArgumentParser, what: str = "variants of") -> None:
    p.add_argument(
        "-r",
        "--regions",
        "--region",
        dest="regions",
        action="append",
        metavar="REGION",
        help=f"{what} CONTIG[:START[-END]], 1-based inclusive; repeat or comma-separate for several",
    )
    p.add_argument(
        "-R",
        "--regions-file",
        metavar="FILE",
        help="regions from a file: CHROM<TAB>POS[<TAB>END] (1-based) or .bed (0-based), as bcftools -R",
    )


def _sample_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-s",
        "--samples",
        metavar="[^]ID,ID,...",
        help="these samples (^: every sample but these), or @FILE",
    )
    p.add_argument(
        "-S", "--samples-file", metavar="[^]FILE", help="samples from a file, one per line (^: exclude them)"
    )


def _cluster_options(p: argparse.ArgumentParser, quiet: bool = False, what: str = "scan") -> None:
    """``--cluster``/``--workers`` (with ``--quiet`` where the command has no other progress bar)."""
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help=f"run the {what} on the Dask scheduler at ADDRESS (default: ${ADDRESS_VARIABLE}, else in this process)",
    )
    p.add_argument("--workers", type=int, metavar="N", help=f"run the {what} on a local Dask cluster of N processes")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bar (drawn only on a terminal)")


def _lookup_options(p: argparse.ArgumentParser) -> None:
    _filter_options(p)
    p.add_argument("--by", help="statistics per group: ancestry or sex_at_birth")
    _output_options(p)


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (built once: ~20 ms; the daemon's parent builds it for its
    children, and parsing does not change it)."""
    parser = argparse.ArgumentParser(
        prog="genoquery", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"genoquery {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "ingest", help="ingest VCF/VCF.gz/BCF files into a new store, or append a batch to one")
    p.add_argument(
        "store",
        metavar="STORE",
        help="store directory: created, or with --batch NAME appended to when it exists",
    )
    p.add_argument(
        "vcfs",
        nargs="+",
        metavar="VCF",
        help="input files (- reads one from standard input) or VCF Zarr stores (vcf2zarr convert): files with the "
        "same samples form a batch (split by region is fine), files with other samples (other centers) other batches",
    )
    p.add_argument("--batch", metavar="NAME", help="name of the (single) batch; default: its first file's name")
    p.add_argument(
        "--complete-callset",
        action="store_true",
        help="sites a batch's VCF lacks are hom-ref for its samples (default: not called)",
    )
    p.add_argument(
        "--allow-ref-conflicts",
        action="store_true",
        help="keep records whose REF disagrees with another batch's at a position as separate sites",
    )
    p.add_argument(
        "--match-contig-names",
        action="store_true",
        help="rename contigs spelled differently from another batch's (20 / chr20) to the first spelling",
    )
    p.add_argument(
        "--rename-duplicate-samples",
        action="store_true",
        help="a sample ID already in another batch becomes ID@BATCH in this one (default: an error)",
    )
    p.add_argument(
        "--fields",
        metavar="LIST",
        help="INFO and FORMAT fields to keep, bcftools-style, e.g. INFO/AC,FORMAT/DP (GT is always kept); "
        "default: every INFO field and every FORMAT field but Number=G ones (PL, GL)",
    )
    p.add_argument("--persons", help="person table (CSV/TSV/Parquet with sample_id, ancestry, sex_at_birth)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store atomically")
    _cluster_options(p, quiet=True, what="ingest")
    p.set_defaults(run=_cmd_ingest)

    p = _command(sub, "variants", help="whole-cohort statistics per ALT allele")
    _store(p)
    _region_options(p)
    p.add_argument("--by", help="sample grouping: ancestry or sex_at_birth")
    p.add_argument(
        "-i",
        "--info",
        action="append",
        default=[],
        metavar="FIELDS",
        help="kept INFO fields to add as info_<ID> columns, comma-separated (DP,AF or INFO/DP); repeatable",
    )
    _output_options(p)
    p.set_defaults(run=_cmd_variants)

    p = _command(sub, "query", help="variants by key or rsID, region or gene; cohort frequencies; carriers")
    _store(p)
    targets = p.add_subparsers(dest="target", required=True, metavar="QUERY")
    for target, metavar, text in (
        ("variant", "KEY|RSID", "a variant key (chr20-1030-A-C, 20-1030-A-C, chr20:1030:A:C) or an rsID"),
        ("region", "REGION", "CONTIG[:START[-END]], 1-based inclusive (several: comma-separated)"),
        ("gene", "GENE", "a gene name or ID imported with 'genoquery genes'"),
    ):
        t = _command(targets, target, "query", help=text)
        t.add_argument("what", metavar=metavar, help=text)
        _lookup_options(t)
        t.set_defaults(run=_cmd_query, exit_now=True)  # see main
    t = _command(
        targets, "frequencies", "query", help="exact AC/AN/AF per ALT allele for a cohort, optionally by group"
    )
    t.add_argument("region", nargs="?", help="CONTIG[:START[-END]], 1-based inclusive (default: everything)")
    _region_options(t)
    t.add_argument("--cohort", help=COHORT_HELP)
    _sample_options(t)
    t.add_argument("--by", help="any person-table column (e.g. ancestry, sex_at_birth, center)")
    _cluster_options(t, quiet=True)
    _output_options(t)
    t.set_defaults(run=_cmd_frequencies, exit_now=True)  # see main
    t = _command(
        targets, "carriers", "query", help="samples carrying a variant, or any filtered variant of a gene/region"
    )
    t.add_argument("variant", nargs="?", metavar="KEY|RSID", help="a variant key or rsID")
    t.add_argument("--gene", help="carriers of every variant of this gene passing the filters")
    t.add_argument(
        "--genes",
        metavar="GENE,GENE,...|@FILE",
        help="as --gene for each of these genes (or those of FILE, one a line), with a first column gene",
    )
    _region_options(t, "carriers of every variant passing the filters in")
    t.add_argument("--cohort", help=COHORT_HELP)
    _sample_options(t)
    _filter_options(t)
    _cluster_options(t, quiet=True)
    _output_options(t)
    t.set_defaults(run=_cmd_carriers, exit_now=True)  # see main
    t = _command(targets, "participant", "query", help="one participant's ALT alleles with population frequencies")
    t.add_argument("sample_id", metavar="SAMPLE_ID")
    _output_options(t)
    t.set_defaults(run=_cmd_participant, exit_now=True)  # see main

    p = _command(sub, "assoc", help="association: per-allele GWAS (glm), PheWAS, carrier 2x2 tables, plots")
    _store(p)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    covar_help = "comma-separated person-table columns, age (from birth_year), sex, pcs (every pcN)"
    a = _command(actions, "glm", "assoc", help="linear or logistic regression of each ALT allele (additive coding)")
    a.add_argument(
        "--phenotype", required=True, help="a person-table column, or condition code(s) CODE[,CODE...] (cases have any)"
    )
    a.add_argument("--covar", help=covar_help)
    where = a.add_mutually_exclusive_group()
    where.add_argument(
        "-r",
        "--region",
        action="append",
        help="CONTIG[:START[-END]], 1-based inclusive; repeat for several (default, with no --gene or "
        "--variants: every contig of the store)",
    )
    where.add_argument("--gene", help="a gene imported with 'genoquery genes'")
    where.add_argument("--variants", help="comma-separated variant keys or rsIDs")
    a.add_argument("--model", choices=("linear", "logistic"), help="default: logistic for a 0/1 trait")
    a.add_argument(
        "--min-mac", type=int, default=20, help="test alleles with at least this minor allele count (default 20)"
    )
    a.add_argument(
        "--test",
        default="wald",
        metavar="wald|score",
        help="logistic: wald (default: the exact fit, Firth's where it fails) or score (score test of the null "
        "model, cost per allele its carriers)",
    )
    a.add_argument(
        "--prescreen-p",
        type=float,
        metavar="P",
        help="logistic: the score test first, the exact (Wald/Firth) fit only where its p <= P; column test says which",
    )
    a.add_argument("--cohort", help=COHORT_HELP)
    a.add_argument("--manhattan", metavar="FILE.png|svg", help="also write a Manhattan plot")
    a.add_argument("--qq", metavar="FILE.png|svg", help="also write a QQ plot")
    a.add_argument("--quiet", action="store_true", help="no progress bar (drawn only on a terminal)")
    _cluster_options(a)
    _output_options(a)
    a = _command(actions, "phewas", "assoc", help="one ALT allele against every condition code and quantitative column")
    a.add_argument("variant", metavar="KEY", help="a variant key")
    a.add_argument(
        "--phenotypes",
        help="comma-separated phenotypes (default: codes with --min-cases cases, numeric person columns)",
    )
    a.add_argument("--covar", help=covar_help)
    a.add_argument("--min-cases", type=int, default=20)
    a.add_argument("--cohort", help=COHORT_HELP)
    a.add_argument("--plot", metavar="FILE.png|svg", help="also write a PheWAS plot")
    _output_options(a)
    a = _command(actions, "table", "assoc", help="2x2 table of carriers x cases with odds ratio and Fisher's exact p")
    a.add_argument("variant", nargs="?", metavar="KEY|RSID")
    a.add_argument("--condition", required=True, help="condition code(s) CODE[,CODE...] defining cases")
    a.add_argument("--gene", help="carriers of any variant of this gene passing the filters")
    a.add_argument("--region", help="carriers of any variant of this region passing the filters")
    a.add_argument("--af-max", type=float, help="keep variants with whole-cohort AF <= this")
    a.add_argument("--pass-only", action="store_true", help="keep variants with FILTER = PASS")
    a.add_argument("--type", choices=("snv", "indel", "other"), help="keep one variant type")
    a.add_argument("--cohort", help=COHORT_HELP)
    _output_options(a)
    a = _command(actions, "ancestry", "assoc", help="plot one allele's frequency by ancestry group")
    a.add_argument("variant", metavar="KEY", help="a variant key")
    a.add_argument("--plot", required=True, metavar="FILE.png|svg")
    a.add_argument("--cohort", help=COHORT_HELP)
    p.set_defaults(run=_cmd_assoc)

    p = _command(sub, "genes", help="import gene coordinates (GENCODE-style GTF or BED) into a store")
    _store(p)
    p.add_argument(
        "file", metavar="FILE", help="GTF (gene lines; 1-based) or BED (0-based, name column), optionally .gz"
    )
    p.add_argument("--format", choices=("gtf", "bed"), help="default: from the file name")
    p.set_defaults(run=_cmd_genes)

    p = _command(sub, "phenotypes", help="import a person table or an OMOP-style event table into a store")
    _store(p)
    p.add_argument(
        "file",
        metavar="FILE",
        help="CSV/TSV/Parquet: sample_id (or person_id) + person columns, or "
        "person_id, a code column (e.g. condition_code), a date column, optional value",
    )
    p.add_argument("--kind", choices=("person", "events"), help="default: detected from the columns")
    p.add_argument("--table", help="event table name (default from the code column, e.g. condition_occurrence)")
    p.set_defaults(run=_cmd_phenotypes)

    p = _command(sub, "cohort", help="save, list or show cohorts (sample ID lists or phenotype filters)")
    _store(p)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = _command(actions, "save", "cohort", help="save a cohort under a name (replaces one of that name)")
    a.add_argument("name", metavar="NAME")
    a.add_argument(
        "cohort",
        metavar="COHORT",
        help="filter, e.g. \"sex_at_birth = 'Female' AND has_condition('E11')\", or @FILE of sample IDs",
    )
    a = _command(actions, "list", "cohort", help="the saved cohorts: name, kind, created_at, definition")
    a.add_argument("--format", choices=("tsv", "json"), default="tsv")
    a = _command(actions, "show", "cohort", help="print a cohort's sample IDs (count on standard error)")
    a.add_argument("cohort", metavar="COHORT", help="saved name, filter expression, or @FILE of sample IDs")
    p.set_defaults(run=_cmd_cohort)

    p = _command(sub, "withdraw", help="withdraw participants: no answer includes them from now on")
    _store(p)
    p.add_argument("samples", nargs="+", metavar="SAMPLE_ID", help="sample IDs, or @FILE with one per line")
    p.add_argument("--reason", required=True, help="why (recorded with the time, e.g. 'consent withdrawn')")
    p.set_defaults(run=_cmd_withdraw)

    p = _command(sub, "compact", help="rewrite batches so withdrawn participants' genotypes leave the disk")
    _store(p)
    p.set_defaults(run=_cmd_compact)

    p = _command(sub, "upgrade", help="rewrite a store made by an older genoquery in this version's format")
    _store(p)
    p.set_defaults(run=_cmd_upgrade)

    p = _command(
        sub, "verify", help="prove the store equal to its manifest and, re-read with pysam or zarr, its sources"
    )
    _store(p)
    p.add_argument(
        "--sources",
        nargs="+",
        default=[],
        metavar="VCF",
        help="the ingested VCF/BCF files and VCF Zarr stores to re-read",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars (drawn only on a terminal)")
    _cluster_options(p)
    p.set_defaults(run=_cmd_verify)

    p = _command(sub, "export", help="write genotypes as VCF, bgzipped VCF or BCF (as bcftools view)")
    _store(p)
    p.add_argument(
        "out", nargs="?", metavar="OUT.vcf[.gz]|OUT.bcf", help="output file; the format follows the name (or -o)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="output file; - (the default) is VCF on standard output")
    _region_options(p, "sites of")
    _sample_options(p)
    p.add_argument(
        "--write-index",
        nargs="?",
        const="csi",
        choices=("csi", "tbi"),
        help="also index the output (.vcf.gz: csi or tbi; .bcf: csi), as bcftools --write-index (default csi)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar (drawn only on a terminal)")
    p.set_defaults(run=_cmd_export)

    p = _command(sub, "serve", help="serve the store: JSON API (/api/v1, /docs) and GA4GH Beacon v2 (/beacon/v2)")
    _store(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--min-cohort", type=int, default=50, help="smallest cohort answered below the controlled tier")
    p.add_argument("--budget", type=int, default=1000, help="answers about rare alleles per token per day")
    p.add_argument(
        "--trusted-proxy",
        metavar="ADDR[,ADDR...]",
        help="the reverse proxy whose X-Forwarded-For names the client (budgets, audit); "
        "default: none, the client is the connection's peer and forwarding headers are ignored",
    )
    p.set_defaults(run=_cmd_serve)

    p = _command(sub, "tokens", help="create, list or revoke API tokens (stored hashed in the store)")
    _store(p)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = _command(actions, "create", "tokens", help="create a token and print it (once)")
    a.add_argument("--tier", required=True, choices=("registered", "controlled", "participant"))
    a.add_argument("--name", required=True, help="who or what uses the token (unique among active tokens)")
    a.add_argument("--sample", help="the participant's sample ID (participant tokens only)")
    _command(actions, "list", "tokens", help="name, tier, sample, created, revoked (never the secret)")
    a = _command(actions, "revoke", "tokens", help="revoke the active token of this name")
    a.add_argument("--name", required=True)
    p.set_defaults(run=_cmd_tokens)

    p = _command(sub, "audit", help="show the server's audit log: time, token, tier, request, status, rows")
    _store(p)
    p.add_argument("--tail", type=int, help="only the last N requests")
    p.add_argument("--format", choices=("tsv", "json"), default="tsv")
    p.set_defaults(run=_cmd_audit)

    p = _command(sub, "daemon", help="the warm process that runs commands (GENOQUERY_DAEMON=0: none)")
    p.add_argument("action", choices=("stop",), help="stop: this user's daemons end once their commands do")
    p.set_defaults(run=_cmd_daemon)

    p = _command(sub, "simulate", help="simulate a multi-center cohort (msprime) as bgzipped VCFs")
    p.add_argument("outdir", metavar="OUTDIR")
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--centers", type=int, default=3)
    p.add_argument("--length", type=int, default=1_000_000, help="sequence length in bp")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--missing-rate", type=float, default=0.01)
    p.add_argument("--quiet", action="store_true", help="no progress bars (drawn only on a terminal)")
    p.set_defaults(run=_cmd_simulate)
    for leaf in _leaves(parser):
        leaf.add_argument("--threads", type=int, metavar="N", help="run on at most N CPU cores (default: all)")
    return parser


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers of ``parser`` that run a command (no subcommands of their own)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield parser
    for action in subparsers:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)


def _use_threads(threads: int | None) -> None:
    """Pin the process to ``threads`` of its CPU cores (``--threads``): the engine's thread pools
    then share those cores, as bcftools' worker threads share theirs."""
    if threads is None:
        return
    if threads < 1:
        raise QueryError(f"--threads must be at least 1, not {threads}")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings about the input as one line each; others as Python shows them."""
    if issubclass(category, GenoqueryWarning):
        print(f"genoquery: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    if not sys.stderr.isatty() and not getattr(args, "quiet", True):
        sys.stderr = LogLines(sys.stderr)
    try:
        _use_threads(args.threads)
        code = args.run(args) or 0
        if argv is None and getattr(args, "exit_now", False):
            _exit_now(code)
        return code
    except GenoqueryError as err:
        print(f"genoquery: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genoquery: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if isinstance(sys.stderr, LogLines):
            sys.stderr = sys.stderr.stream


def _exit_now(code: int) -> None:
    """Ends the process at once, without the interpreter's teardown: after a scan or a query
    command the process is done (the store closed, the output written and closed, no other thread
    at work), and tearing down numba, pandas, scipy, zarr and ~0.9 GB of arrays took 0.2-0.35 s of
    a ~4 s ``assoc glm`` at 10^6 samples; even numpy, DuckDB and pyarrow alone take 30-50 ms of a
    0.3 s ``query variant`` (issue 22). Only for a command run as a program (``main()`` without
    ``argv``), never when main is called in a process that goes on."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):  # sys.stderr may be LogLines
        if stream is not None:
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
