"""The ``genoquery`` command line. Input problems print one line and exit with status 2."""

from __future__ import annotations

import argparse
import sys

from genoquery.errors import GenoqueryError
from genoquery.output import FORMATS, write_table


def _cmd_ingest(args: argparse.Namespace) -> None:
    from genoquery.ingest import ingest

    store = ingest(args.store, args.vcfs, persons=args.persons, overwrite=args.overwrite,
                   progress=None if not args.quiet else False)
    print(f"{store.path}: {store.info['samples']} samples, {store.info['sites']} sites, "
          f"{store.info['variants']} ALT alleles", file=sys.stderr)


def _cmd_variants(args: argparse.Namespace) -> None:
    from genoquery.query.store import open as open_store

    with open_store(args.store) as store:
        write_table(store.variants(region=args.region, by=args.by), args.format, args.output)


def _cmd_simulate(args: argparse.Namespace) -> None:
    from genoquery.simulate import simulate_cohort

    files = simulate_cohort(args.outdir, n_samples=args.samples, n_centers=args.centers,
                            sequence_length=args.length, seed=args.seed,
                            missing_rate=args.missing_rate, progress=not args.quiet)
    print(files, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genoquery", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest VCF/VCF.gz/BCF files into a new store")
    p.add_argument("store", help="store directory to create")
    p.add_argument("vcfs", nargs="+", metavar="VCF", help="input files (same samples; split by region is fine)")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except GenoqueryError as err:
        print(f"genoquery: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genoquery: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
