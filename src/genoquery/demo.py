"""The README's demo: simulate a three-center cohort, ingest it, print real answers, then
start the query server on it and show real requests.

    python -m genoquery.demo [--samples 3000] [--out demo-out]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import genoquery
from genoquery.errors import GenoqueryError
from genoquery.index.phenotypes import import_table
from genoquery.server.showcase import run as serve_examples
from genoquery.simulate import simulate_cohort

SHOWN = ["variant_key", "id", "filter", "ac", "an", "af", "n_het", "n_hom_alt", "n_hemi", "n_missing"]


def _print_table(title: str, table: pa.Table, columns: list[str]) -> None:
    print(f"\n{title}")
    frame = table.select([c for c in columns if c in table.column_names]).to_pandas().fillna({"id": "."})
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _causal_variant(truth_path: Path) -> str | None:
    truth = json.loads(truth_path.read_text())
    for trait in truth.get("traits", {}).values():
        for v in trait.get("causal_variants", []):
            return f"{v['contig']}-{v['pos']}-{v['ref']}-{v['alt']}"
    return None


def run(samples: int, out: Path, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"1. simulating {samples} samples from 3 genome centers (msprime, seed {seed}) ...")
    files = simulate_cohort(
        out / "cohort", n_samples=samples, n_centers=3, sequence_length=1_000_000, seed=seed, progress=True
    )
    print(f"   {files}")
    print("2. ingesting the first two centers' files (one batch each, merged) with the person table,")
    print("   then appending the third center's batch (no existing chunk is rewritten) ...")
    genoquery.ingest(
        out / "demo.gq", files.center_vcfs[:2], persons=files.persons, overwrite=True, progress=True
    ).close()
    store = genoquery.ingest(out / "demo.gq", files.center_vcfs[2:], batch="center3", progress=True)
    batches = ", ".join(f"{b.name} ({b.n_samples} samples)" for b in store.batches)
    print(f"   {store}\n   batches: {batches}; a site a center's file lacks is not called for its samples")

    variants = store.variants()
    common = variants.filter(pc.field("af") > 0.05)
    key = _causal_variant(files.truth) or common["variant_key"][0].as_py()
    chosen = variants.filter(pc.field("variant_key") == key)
    region = f"{chosen['contig'][0].as_py()}:{chosen['pos'][0].as_py()}"
    _print_table(f"3. {key} (a planted causal variant), whole cohort:", chosen, SHOWN)
    by_ancestry = store.variants(region=region, by="ancestry").filter(pc.field("variant_key") == key)
    _print_table("   by genetic ancestry group:", by_ancestry, ["ancestry", *SHOWN[3:]])

    window = store.variants(region="chr20:1-250000").filter(pc.field("ac") > 0)
    order = pc.sort_indices(window, sort_keys=[("af", "ascending"), ("pos", "ascending")])
    _print_table("4. rarest variants in chr20:1-250000:", window.take(order[:5]), SHOWN)
    order = pc.sort_indices(window, sort_keys=[("af", "descending"), ("pos", "ascending")])
    _print_table("   commonest variants in chr20:1-250000:", window.take(order[:5]), SHOWN)

    chr_x = store.variants(region="chrX", by="sex_at_birth")
    first_common = chr_x.filter(pc.field("af") > 0.2)["variant_key"][0].as_py()
    _print_table(
        "5. a chrX variant by sex at birth (males are haploid: n_hemi):",
        chr_x.filter(pc.field("variant_key") == first_common),
        ["sex_at_birth", *SHOWN[3:]],
    )
    store = _cohort_answers(store, files, key, region, window)
    rare = window.filter(pc.field("ac") == 2)["variant_key"][0].as_py()
    print()
    serve_examples(store.path, rare, key)
    print(f"\nDone in {time.monotonic() - started:.0f} s. Store: {store.path}")
    print(f"Try: {sys.executable} -m genoquery variants {store.path} --region chr20:1-100000 --by ancestry")


def _cohort_answers(store: genoquery.Store, files, key: str, region: str, window: pa.Table) -> genoquery.Store:
    """Steps 6-8: a phenotype cohort's exact frequency, carriers of a rare variant, one participant."""
    path = store.path
    store.close()  # importing phenotypes writes the index through its own connection
    import_table(path, files.conditions)
    store = genoquery.open(path)
    cohort = "sex_at_birth = 'Female' AND has_condition('E11')"
    size = len(store.cohort(cohort))
    in_cohort = store.frequencies(region, cohort=cohort).filter(pc.field("variant_key") == key)
    _print_table(f"6. {key} among women with type 2 diabetes (E11, {size} samples), counted exactly:", in_cohort, SHOWN)
    rare = window.filter(pc.field("ac") == 2)["variant_key"][0].as_py()
    _print_table(f"7. carriers of the rare variant {rare}:", store.carriers(rare), ["sample_id", "zygosity", "gt"])
    sample = store.samples()["sample_id"][0].as_py()
    mine = store.participant(sample)
    rarest = mine.take(pc.sort_indices(mine, sort_keys=[("af", "ascending")])[:3])
    _print_table(
        f"8. participant {sample}: {mine.num_rows} ALT alleles carried; the rarest three:",
        rarest,
        ["variant_key", "zygosity", "gt", "af", "ancestry", "ancestry_af"],
    )
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genoquery-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        run(args.samples, args.out, args.seed)
    except GenoqueryError as err:
        print(f"genoquery: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
