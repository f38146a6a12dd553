"""The ``genoquery`` command line. Input problems print one line and exit with status 2."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from importlib import import_module
from pathlib import Path
from types import ModuleType

from genoquery.errors import GenoqueryError, GenoqueryWarning, InputFileError, QueryError
from genoquery.ingest import ingest
from genoquery.output import FORMATS, write_table
from genoquery.query.store import open as open_store
from genoquery.storage.format import FORMAT_VERSION

# The modules of commands that need more than the store API, imported only when the command runs:
# ``genoquery --help`` and the query commands never load numba, pysam, msprime, FastAPI or matplotlib.
_COMMAND_MODULES = {
    "assoc": "genoquery.query.association.plots",
    "audit": "genoquery.server.audit",
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


def _module(command: str) -> ModuleType:
    """The module behind ``command`` (see ``_COMMAND_MODULES``), imported on first use."""
    return import_module(_COMMAND_MODULES[command])


def _cmd_ingest(args: argparse.Namespace) -> None:
    store = ingest(
        args.store,
        args.vcfs,
        persons=args.persons,
        overwrite=args.overwrite,
        batch=args.batch,
        complete_callset=args.complete_callset,
        allow_ref_conflicts=args.allow_ref_conflicts,
        match_contig_names=args.match_contig_names,
        rename_duplicate_samples=args.rename_duplicate_samples,
        fields=None if args.fields is None else [f.strip() for f in args.fields.split(",") if f.strip()],
        progress=None if not args.quiet else False,
    )
    print(
        f"{store.path}: {store.info['samples']} samples, {store.info['sites']} sites, "
        f"{store.info['variants']} ALT alleles",
        file=sys.stderr,
    )


def _cmd_variants(args: argparse.Namespace) -> None:
    with open_store(args.store) as store:
        write_table(store.variants(region=args.region, by=args.by), args.format, args.output)


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
        write_table(table, args.format, args.output)


def _cmd_frequencies(args: argparse.Namespace) -> None:
    cohort = None if args.cohort is None else _cohort_spec(args.cohort)
    with open_store(args.store) as store:
        write_table(store.frequencies(args.region, cohort=cohort, by=args.by), args.format, args.output)


def _cmd_carriers(args: argparse.Namespace) -> None:
    if (args.variant is None) == (args.gene is None and args.region is None):
        raise QueryError("give a variant (key or rsID), or --gene or --region with optional filters")
    cohort = None if args.cohort is None else _cohort_spec(args.cohort)
    with open_store(args.store) as store:
        table = store.carriers(
            args.variant,
            cohort,
            gene=args.gene,
            region=args.region,
            af_min=args.af_min,
            af_max=args.af_max,
            pass_only=args.pass_only,
            variant_type=args.type,
        )
        write_table(table, args.format, args.output)


def _cmd_participant(args: argparse.Namespace) -> None:
    with open_store(args.store) as store:
        write_table(store.participant(args.sample_id), args.format, args.output)


def _cmd_genes(args: argparse.Namespace) -> None:
    count = _module("genes").import_genes(args.store, args.file, fmt=args.format)
    print(f"{args.store}: {count} genes imported from {args.file}", file=sys.stderr)


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--af-min", type=float, help="keep variants with whole-cohort AF >= this")
    p.add_argument("--af-max", type=float, help="keep variants with whole-cohort AF <= this")
    p.add_argument("--pass-only", action="store_true", help="keep variants with FILTER = PASS")
    p.add_argument("--type", choices=("snv", "indel", "other"), help="keep one variant type")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="tsv")
    p.add_argument("--output", help="write to this file instead of standard output")


def _lookup_options(p: argparse.ArgumentParser) -> None:
    _filter_options(p)
    p.add_argument("--by", help="statistics per group: ancestry or sex_at_birth")
    _output_options(p)


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
    if not text.startswith("@"):
        return text

    path = Path(text[1:])
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(
            path,
            f"cannot read the sample ID list ({err.__class__.__name__})",
            fix="give @FILE with one sample ID per line",
        ) from None
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


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
    samples = None if args.samples is None else _cohort_spec(args.samples)
    if isinstance(samples, str):
        samples = [s.strip() for s in samples.split(",") if s.strip()]
    with open_store(args.store) as store:
        out = store.export_vcf(args.out, region=args.region, samples=samples)
    print(f"wrote {out}", file=sys.stderr)


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
    report = _module("verify").verify(args.store, args.sources, progress=not args.quiet)
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
        progress=not args.quiet,
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
        for t in _module("tokens").list_tokens(args.store):
            print("\t".join(str(t[k] or "-") for k in ("name", "tier", "sample_id", "created_at", "revoked_at")))


def _cmd_audit(args: argparse.Namespace) -> None:

    records = list(_module("audit").read(args.store))
    for r in records[-args.tail :] if args.tail else records:
        if args.format == "json":
            print(json.dumps(r))
        else:
            params = "&".join(f"{k}={v}" for k, v in r["params"].items())
            print(
                f"{r['time']}\t{r['token'] or '-'}\t{r['tier'] or '-'}\t{r['method']} {r['endpoint']}"
                f"{'?' + params if params else ''}\t{r['status']}\t{'-' if r['rows'] is None else r['rows']}"
            )


def _cmd_assoc(args: argparse.Namespace) -> None:
    cohort = None if args.cohort is None else _cohort_spec(args.cohort)
    covariates = [c.strip() for c in (getattr(args, "covar", None) or "").split(",") if c.strip()]
    with open_store(args.store) as store:
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
            table = store.associate(
                phenotype,
                covariates,
                region=args.region,
                gene=args.gene,
                variants=None if args.variants is None else args.variants.split(","),
                cohort=cohort,
                model=args.model,
                min_mac=args.min_mac,
                progress=False if args.quiet else None,
            )
            for kind, path in (("manhattan", args.manhattan), ("qq", args.qq)):
                if path:
                    getattr(_module("assoc"), kind)(
                        table, path, title=f"{phenotype} ({args.model or 'auto'})" if kind == "manhattan" else None
                    )
        write_table(table, args.format, args.output)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genoquery", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest VCF/VCF.gz/BCF files into a new store, one batch per sample set")
    p.add_argument("store", help="store directory to create")
    p.add_argument(
        "vcfs",
        nargs="+",
        metavar="VCF",
        help="input files: files with the same samples form a batch (split by region is fine), "
        "files with other samples (other centers) other batches",
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_cmd_ingest)

    p = sub.add_parser("variants", help="whole-cohort statistics per ALT allele")
    p.add_argument("store")
    p.add_argument("--region", help="CONTIG[:START[-END]], 1-based inclusive")
    p.add_argument("--by", help="sample grouping: ancestry or sex_at_birth")
    p.add_argument("--format", choices=FORMATS, default="tsv")
    p.add_argument("--output", help="write to this file instead of standard output")
    p.set_defaults(run=_cmd_variants)

    p = sub.add_parser("query", help="variants by key or rsID, region or gene, with filters")
    p.add_argument("store")
    targets = p.add_subparsers(dest="target", required=True)
    for target, metavar, text in (
        ("variant", "KEY|RSID", "a variant key (chr20-1030-A-C, 20-1030-A-C, chr20:1030:A:C) or an rsID"),
        ("region", "REGION", "CONTIG[:START[-END]], 1-based inclusive"),
        ("gene", "GENE", "a gene name or ID imported with 'genoquery genes'"),
    ):
        t = targets.add_parser(target, help=text)
        t.add_argument("what", metavar=metavar, help=text)
        _lookup_options(t)
        t.set_defaults(run=_cmd_query)
    cohort_help = "saved cohort name, filter expression, or @FILE of sample IDs (default: every sample)"
    t = targets.add_parser("frequencies", help="exact AC/AN/AF per ALT allele for a cohort, optionally by group")
    t.add_argument("region", nargs="?", help="CONTIG[:START[-END]], 1-based inclusive (default: everything)")
    t.add_argument("--cohort", help=cohort_help)
    t.add_argument("--by", help="any person-table column (e.g. ancestry, sex_at_birth, center)")
    _output_options(t)
    t.set_defaults(run=_cmd_frequencies)
    t = targets.add_parser("carriers", help="samples carrying a variant, or any filtered variant of a gene/region")
    t.add_argument("variant", nargs="?", metavar="KEY|RSID", help="a variant key or rsID")
    t.add_argument("--gene", help="carriers of every variant of this gene passing the filters")
    t.add_argument("--region", help="carriers of every variant of this region passing the filters")
    t.add_argument("--cohort", help=cohort_help)
    _filter_options(t)
    _output_options(t)
    t.set_defaults(run=_cmd_carriers)
    t = targets.add_parser("participant", help="one participant's ALT alleles with population frequencies")
    t.add_argument("sample_id")
    _output_options(t)
    t.set_defaults(run=_cmd_participant)

    p = sub.add_parser("assoc", help="association: per-allele GWAS (glm), PheWAS, carrier 2x2 tables, plots")
    p.add_argument("store")
    actions = p.add_subparsers(dest="action", required=True)
    covar_help = "comma-separated person-table columns, age (from birth_year), sex, pcs (every pcN)"
    a = actions.add_parser("glm", help="linear or logistic regression of each ALT allele (additive coding)")
    a.add_argument(
        "--phenotype", required=True, help="a person-table column, or condition code(s) CODE[,CODE...] (cases have any)"
    )
    a.add_argument("--covar", help=covar_help)
    where = a.add_mutually_exclusive_group()
    where.add_argument(
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
    a.add_argument("--cohort", help=cohort_help)
    a.add_argument("--manhattan", metavar="FILE.png|svg", help="also write a Manhattan plot")
    a.add_argument("--qq", metavar="FILE.png|svg", help="also write a QQ plot")
    a.add_argument("--quiet", action="store_true", help="no progress bar (shown when standard error is a terminal)")
    _output_options(a)
    a = actions.add_parser("phewas", help="one ALT allele against every condition code and quantitative column")
    a.add_argument("variant", metavar="KEY", help="a variant key")
    a.add_argument(
        "--phenotypes",
        help="comma-separated phenotypes (default: codes with --min-cases cases, numeric person columns)",
    )
    a.add_argument("--covar", help=covar_help)
    a.add_argument("--min-cases", type=int, default=20)
    a.add_argument("--cohort", help=cohort_help)
    a.add_argument("--plot", metavar="FILE.png|svg", help="also write a PheWAS plot")
    _output_options(a)
    a = actions.add_parser("table", help="2x2 table of carriers x cases with odds ratio and Fisher's exact p")
    a.add_argument("variant", nargs="?", metavar="KEY|RSID")
    a.add_argument("--condition", required=True, help="condition code(s) CODE[,CODE...] defining cases")
    a.add_argument("--gene", help="carriers of any variant of this gene passing the filters")
    a.add_argument("--region", help="carriers of any variant of this region passing the filters")
    a.add_argument("--af-max", type=float, help="keep variants with whole-cohort AF <= this")
    a.add_argument("--pass-only", action="store_true", help="keep variants with FILTER = PASS")
    a.add_argument("--type", choices=("snv", "indel", "other"), help="keep one variant type")
    a.add_argument("--cohort", help=cohort_help)
    _output_options(a)
    a = actions.add_parser("ancestry", help="plot one allele's frequency by ancestry group")
    a.add_argument("variant", metavar="KEY", help="a variant key")
    a.add_argument("--plot", required=True, metavar="FILE.png|svg")
    a.add_argument("--cohort", help=cohort_help)
    p.set_defaults(run=_cmd_assoc)

    p = sub.add_parser("genes", help="import gene coordinates (GENCODE-style GTF or BED) into a store")
    p.add_argument("store")
    p.add_argument("file", help="GTF (gene lines; 1-based) or BED (0-based, name column), optionally .gz")
    p.add_argument("--format", choices=("gtf", "bed"), help="default: from the file name")
    p.set_defaults(run=_cmd_genes)

    p = sub.add_parser("phenotypes", help="import a person table or an OMOP-style event table into a store")
    p.add_argument("store")
    p.add_argument(
        "file",
        help="CSV/TSV/Parquet: sample_id (or person_id) + person columns, or "
        "person_id, a code column (e.g. condition_code), a date column, optional value",
    )
    p.add_argument("--kind", choices=("person", "events"), help="default: detected from the columns")
    p.add_argument("--table", help="event table name (default from the code column, e.g. condition_occurrence)")
    p.set_defaults(run=_cmd_phenotypes)

    p = sub.add_parser("cohort", help="save, list or show cohorts (sample ID lists or phenotype filters)")
    p.add_argument("store")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("save", help="save a cohort under a name (replaces one of that name)")
    a.add_argument("name")
    a.add_argument(
        "cohort", help="filter, e.g. \"sex_at_birth = 'Female' AND has_condition('E11')\", or @FILE of sample IDs"
    )
    a = actions.add_parser("list", help="the saved cohorts: name, kind, created_at, definition")
    a.add_argument("--format", choices=("tsv", "json"), default="tsv")
    a = actions.add_parser("show", help="print a cohort's sample IDs (count on standard error)")
    a.add_argument("cohort", help="saved name, filter expression, or @FILE of sample IDs")
    p.set_defaults(run=_cmd_cohort)

    p = sub.add_parser("withdraw", help="withdraw participants: no answer includes them from now on")
    p.add_argument("store")
    p.add_argument("samples", nargs="+", metavar="SAMPLE_ID", help="sample IDs, or @FILE with one per line")
    p.add_argument("--reason", required=True, help="why (recorded with the time, e.g. 'consent withdrawn')")
    p.set_defaults(run=_cmd_withdraw)

    p = sub.add_parser("compact", help="rewrite batches so withdrawn participants' genotypes leave the disk")
    p.add_argument("store")
    p.set_defaults(run=_cmd_compact)

    p = sub.add_parser("upgrade", help="rewrite a store made by an older genoquery in this version's format")
    p.add_argument("store")
    p.set_defaults(run=_cmd_upgrade)

    p = sub.add_parser("verify", help="prove the store equal to its manifest and, re-read with pysam, its sources")
    p.add_argument("store")
    p.add_argument("--sources", nargs="+", default=[], metavar="VCF", help="the ingested VCF/BCF files to re-read")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_verify)

    p = sub.add_parser("export", help="write a region's genotypes as VCF, bgzipped VCF or BCF")
    p.add_argument("store")
    p.add_argument("out", metavar="OUT.vcf[.gz]|OUT.bcf", help="output file; the format follows the name")
    p.add_argument("--region", help="CONTIG[:START[-END]], 1-based inclusive (default: every site)")
    p.add_argument(
        "--samples",
        metavar="ID,ID,...|@FILE",
        help="samples in output order, comma-separated or @FILE with one ID per line (default: all)",
    )
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("serve", help="serve the store: JSON API (/api/v1, /docs) and GA4GH Beacon v2 (/beacon/v2)")
    p.add_argument("store")
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

    p = sub.add_parser("tokens", help="create, list or revoke API tokens (stored hashed in the store)")
    p.add_argument("store")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("create", help="create a token and print it (once)")
    a.add_argument("--tier", required=True, choices=("registered", "controlled", "participant"))
    a.add_argument("--name", required=True, help="who or what uses the token (unique among active tokens)")
    a.add_argument("--sample", help="the participant's sample ID (participant tokens only)")
    actions.add_parser("list", help="name, tier, sample, created, revoked (never the secret)")
    a = actions.add_parser("revoke", help="revoke the active token of this name")
    a.add_argument("--name", required=True)
    p.set_defaults(run=_cmd_tokens)

    p = sub.add_parser("audit", help="show the server's audit log: time, token, tier, request, status, rows")
    p.add_argument("store")
    p.add_argument("--tail", type=int, help="only the last N requests")
    p.add_argument("--format", choices=("tsv", "json"), default="tsv")
    p.set_defaults(run=_cmd_audit)

    p = sub.add_parser("simulate", help="simulate a multi-center cohort (msprime) as bgzipped VCFs")
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--centers", type=int, default=3)
    p.add_argument("--length", type=int, default=1_000_000, help="sequence length in bp")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--missing-rate", type=float, default=0.01)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_cmd_simulate)
    return parser


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
    try:
        return args.run(args) or 0
    except GenoqueryError as err:
        print(f"genoquery: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genoquery: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
