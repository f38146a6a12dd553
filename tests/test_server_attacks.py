"""Issue 16's attacks, run as an attacker would against a live ``genoquery serve``.

The store is a simulated cohort of 400 samples (``simulate_cohort``: chr20 and chrX, persons with
PCs and LDL, conditions), one of them withdrawn, served with ``min_cohort`` 50, ``max_suppressed`` 20
and ``rounding`` 10. What the attacker wants (a named person's genotype, phenotype or condition,
an exact count of 1..20, a free or reset budget) is computed here independently of genoquery:
genotypes from the VCF through ``tests/oracle.py`` (``bcftools norm -m-`` and ``query`` via
pysam), persons and conditions from the simulator's TSV files. Each test runs one attack class
with a registered token (and a participant token, or none, where the attack allows) and asserts
the outcome: the attack recovers nothing. On the commit before the fix (171a3a6) every attack
succeeded (recovering what the issue says) except ``by=sample_id``, which held there already;
``test_attack_store_is_the_simulated_one`` only checks the oracle's view of the store.
"""

from __future__ import annotations

import csv
import http.client
import itertools
import json
import math
import re
import shutil
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import genoquery
import oracle
from genoquery.index.phenotypes import import_table
from genoquery.ingest.withdraw import withdraw
from genoquery.simulate import simulate_cohort
from test_server_support import Server, serve

N_SAMPLES, LENGTH, SEED = 400, 30_000, 16
LIMIT, BASE, MIN_COHORT = 20, 10, 50
REGION = f"chr20:1-{LENGTH}"
BIG = "9" * 40  # beyond any 64-bit integer
COPIES = (0, 1, 2)  # ALT copies of a diploid genotype


# --------------------------------------------------------------------------- the world: store, server, truth


@dataclass
class Truth:
    """What the attacker is after, from the VCF (pysam/bcftools) and the simulator's tables."""

    ids: list[str]  # VCF sample order
    active: list[str]  # not withdrawn
    withdrawn: str
    copies: dict[str, dict[str, int | None]]  # variant key -> sample -> ALT copies (None: missing call)
    persons: dict[str, dict[str, str]]
    conditions: dict[str, set[str]]

    def ac(self, key: str, members) -> int:
        return sum(self.copies[key][s] or 0 for s in members)

    def carriers(self, key: str, members) -> list[str]:
        return [s for s in members if self.copies[key][s]]

    def ldl(self, sample: str) -> float | None:
        text = self.persons[sample].get("ldl_mg_dl", "")
        return float(text) if text not in ("", "NA", ".") else None


@dataclass
class World:
    srv: Server
    truth: Truth
    store: Path
    spare: Path  # an unserved copy of the store, for a server with a small budget


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _truth(files, withdrawn: str) -> Truth:
    chr20 = next(p for p in files.joint_vcfs if "chr20" in p.name)
    ids = oracle.sample_names(chr20)
    copies: dict[str, dict[str, int | None]] = {}
    for site in oracle.split_sites(chr20):
        if not site.alts:
            continue
        per = {}
        for sample, text in zip(ids, site.gts, strict=True):
            alleles = re.split(r"[/|]", text)
            per[sample] = None if "." in alleles else alleles.count("1")
        copies[f"{site.contig}-{site.pos}-{site.ref}-{site.alts[0]}"] = per
    persons = {r["sample_id"]: r for r in _read_tsv(files.persons)}
    conditions: dict[str, set[str]] = {s: set() for s in ids}
    for r in _read_tsv(files.conditions):
        conditions.setdefault(r["person_id"], set()).add(r["condition_code"])
    return Truth(ids, [s for s in ids if s != withdrawn], withdrawn, copies, persons, conditions)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("attacks")
    files = simulate_cohort(
        tmp / "sim", n_samples=N_SAMPLES, n_centers=2, sequence_length=LENGTH, seed=SEED, missing_rate=0.01
    )
    store = tmp / "attack.gq"
    genoquery.ingest(store, list(files.joint_vcfs), persons=files.persons, progress=False).close()
    import_table(store, files.conditions)
    withdrawn = oracle.sample_names(files.joint_vcfs[0])[-1]
    withdraw(store, [withdrawn], "attack tests: a withdrawn participant")
    spare = tmp / "spare.gq"
    shutil.copytree(store, spare)
    srv = serve(store, min_cohort=MIN_COHORT, budget=1_000_000)
    yield World(srv, _truth(files, withdrawn), store, spare)
    srv.stop()


def call(srv: Server, token: str | None, method: str, path: str, **kw):
    with srv.client(token) as c:
        return c.request(method, path, **kw)


def get(srv: Server, token: str | None, path: str, **params):
    return call(srv, token, "GET", path, params=params)


ATTACKERS = itertools.count(1)


def fresh(srv: Server, tier: str = "registered") -> str:
    """A new token of ``tier`` (a fresh cohort history and budget), as an attacker can register many."""
    return srv.new_token(tier, f"attacker-{next(ATTACKERS)}")


def in_filter(ids) -> str:
    return "sample_id IN (" + ", ".join(f"'{i}'" for i in sorted(ids)) + ")"


def interval(released, cap: int) -> tuple[int, int]:
    """What a released count tells the attacker about the true count, as [lo, hi]: an int that is
    no multiple of the rounding base, or 1..20, is exact; a multiple of 10 above 20 is the truth
    rounded (within 9); null (withheld) or a missing cell tell nothing."""
    if isinstance(released, bool) or not isinstance(released, int):
        return 0, cap
    if released % BASE or released <= LIMIT:
        return released, released
    return max(released - BASE + 1, LIMIT + 1), released + BASE - 1


def exact_small(released) -> bool:
    return isinstance(released, int) and not isinstance(released, bool) and 1 <= released <= LIMIT


def rare_keys(truth: Truth, lo: int = 1, hi: int = LIMIT) -> list[str]:
    return [k for k in truth.copies if lo <= truth.ac(k, truth.active) <= hi]


# --------------------------------------------------------------------------- 1. cohort triples, effect sizes


CELLS = {"ac": (0, 1, 2), "n_het": (0, 1, 0), "n_hom_alt": (0, 0, 1)}  # per genotype of 0, 1, 2 ALT copies


def _cell(truth: Truth, key: str, members, cell: str) -> int:
    copies = [truth.copies[key][s] for s in members]
    return {"ac": sum(c or 0 for c in copies), "n_het": copies.count(1), "n_hom_alt": copies.count(2)}[cell]


def _triple(truth: Truth, how: str) -> tuple[str, dict[str, tuple[str, list[str]]]]:
    """A target t and cohorts X+t, Y+t, X+Y (name -> (filter, members)): by sample IDs, or by values
    (t's LDL, which no one else has, and birth-year ranges without t)."""
    rare = rare_keys(truth)
    candidates = [
        s
        for s in truth.active[5:]
        if truth.ldl(s) is not None
        and sum(truth.ldl(o) == truth.ldl(s) for o in truth.active) == 1
        and sum(bool(truth.copies[k][s]) for k in rare) >= 3
    ]
    if how == "ids":
        target = candidates[0]
        others = [s for s in truth.active if s != target]
        x, y = others[:60], others[60:120]
        xt, yt, xy = in_filter([*x, target]), in_filter([*y, target]), in_filter(x + y)
        return target, {"Xt": (xt, [*x, target]), "Yt": (yt, [*y, target]), "XY": (xy, x + y)}
    years = sorted(int(truth.persons[s]["birth_year"]) for s in truth.active)
    lo, hi = years[70], years[-70]
    target = next(s for s in candidates if lo <= int(truth.persons[s]["birth_year"]) <= hi)
    x = [s for s in truth.active if int(truth.persons[s]["birth_year"]) < lo]
    y = [s for s in truth.active if int(truth.persons[s]["birth_year"]) > hi]
    value = truth.persons[target]["ldl_mg_dl"]
    return target, {
        "Xt": (f"birth_year < {lo} OR ldl_mg_dl = {value}", [*x, target]),
        "Yt": (f"birth_year > {hi} OR ldl_mg_dl = {value}", [*y, target]),
        "XY": (f"birth_year < {lo} OR birth_year > {hi}", x + y),
    }


def _consistent(answers: dict[str, dict], cohorts, cells) -> set[int]:
    """Genotypes of the target consistent with the released cells of X+t, Y+t and X+Y."""
    found = set()
    for g in COPIES:
        ok = True
        for cell in cells:
            add = CELLS[cell][g]
            lo1, hi1 = interval(answers["Xt"].get(cell), 2 * len(cohorts["Xt"][1]))
            lo2, hi2 = interval(answers["Yt"].get(cell), 2 * len(cohorts["Yt"][1]))
            lo12, hi12 = interval(answers["XY"].get(cell), 2 * len(cohorts["XY"][1]))
            lo_x, hi_x, lo_y, hi_y = max(lo1 - add, 0), hi1 - add, max(lo2 - add, 0), hi2 - add
            ok &= lo_x <= hi_x and lo_y <= hi_y and lo_x + lo_y <= hi12 and hi_x + hi_y >= lo12
        if ok:
            found.add(g)
    return found


@pytest.mark.parametrize("how", ["ids", "values"])
def test_cohort_triples_recover_no_genotype(world, how):
    """(X+t) + (Y+t) - (X+Y): the three cohorts differ pairwise by 50+ members, so each passes the
    differencing check, and with exact counts the sum is twice the target's allele copies. Run on
    PheWAS ``ac`` (exact before the fix) and association ``ac`` for sites the target carries or not,
    and on ``/frequencies`` (ac, n_het, n_hom_alt) for every chr20 site."""
    srv, truth = world.srv, world.truth
    target, cohorts = _triple(truth, how)
    rare = rare_keys(truth)
    keys = [k for k in rare if truth.copies[k][target]][:3]
    keys += [k for k in rare_keys(truth, 2) if truth.copies[k][target] == 0][:3]
    token = fresh(srv)
    answers: dict[str, dict[str, dict[str, dict]]] = {"phewas": {}, "frequencies": {}, "association": {}}
    for name, (text, _) in cohorts.items():
        for endpoint, params in (
            ("frequencies", {"region": REGION}),
            ("association", {"phenotype": "ldl_mg_dl", "variants": ",".join(keys)}),
        ):
            r = get(srv, token, f"/api/v1/{endpoint}", cohort=text, limit=1000, **params)
            assert r.status_code < 500, r.text
            for row in r.json().get("items", []) if r.status_code == 200 else []:
                answers[endpoint].setdefault(row["variant_key"], {})[name] = row
    for key in keys:
        for name, (text, _) in cohorts.items():
            r = get(srv, token, "/api/v1/phewas", variant=key, phenotypes="ldl_mg_dl", cohort=text, min_cases=21)
            assert r.status_code < 500, r.text
            rows = r.json().get("items", []) if r.status_code == 200 else []
            answers["phewas"].setdefault(key, {})[name] = rows[0] if rows else {}
    derived, right, exact = {}, 0, []
    for endpoint, cells in (("phewas", ("ac",)), ("association", ("ac",)), ("frequencies", tuple(CELLS))):
        for key, rows in answers[endpoint].items():
            if truth.copies[key][target] is None:
                continue
            rows = {name: rows.get(name, {}) for name in cohorts}
            found = _consistent(rows, cohorts, cells)
            assert truth.copies[key][target] in found, (endpoint, key, rows)  # the attacker reasons soundly
            if len(found) == 1:
                derived[(endpoint, key)] = g = found.pop()
                right += g == truth.copies[key][target]
            for (name, (_, members)), cell in itertools.product(cohorts.items(), cells):
                released = rows[name].get(cell)
                if exact_small(released) and released == _cell(truth, key, members, cell):
                    exact.append((endpoint, name, key, cell, released))
    assert not derived, f"genotypes of {target} derived at {len(derived)} sites, {right} right: {derived}"
    assert not exact, f"{len(exact)} exact counts of 1..20 of the three cohorts, e.g. {exact[:5]}"


def _finite(x) -> bool:
    return isinstance(x, float | int) and not isinstance(x, bool) and math.isfinite(x)


def test_rare_variant_effect_sizes_do_not_reveal_the_carriers_phenotype(world):
    """For a variant with one carrier, PheWAS/association ``beta`` is the carrier's phenotype minus
    the others' mean: whoever knows the carrier (the carrier's relatives, or the participant) and
    the cohort's mean reads the carrier's LDL."""
    srv, truth = world.srv, world.truth
    singletons = [
        k
        for k in rare_keys(truth, 1, 1)
        if truth.ldl(truth.carriers(k, truth.active)[0]) is not None and truth.copies[k][truth.withdrawn] == 0
    ][:4]
    assert singletons
    token = fresh(srv)
    recovered, exact = [], []
    for key in singletons:
        (carrier,) = truth.carriers(key, truth.active)
        others = [truth.ldl(s) for s in truth.active if s != carrier and truth.ldl(s) is not None]
        mean = sum(others) / len(others)
        for path, params in (
            ("/api/v1/phewas", {"variant": key, "phenotypes": "ldl_mg_dl", "min_cases": 21}),
            ("/api/v1/association", {"variants": key, "phenotype": "ldl_mg_dl"}),
        ):
            r = get(srv, token, path, **params)
            assert r.status_code == 200, r.text  # whole-store questions of the registered tier
            for row in r.json()["items"]:
                exact += [(path, key, c, row[c]) for c in ("ac", "mac", "n_carriers") if row.get(c) == 1]
                beta = row.get("beta")
                if not _finite(beta) and _finite(row.get("statistic")) and _finite(row.get("se")):
                    beta = row["statistic"] * row["se"]  # t = beta / se
                if _finite(beta):
                    estimate = beta + mean
                    if abs(estimate - truth.ldl(carrier)) <= 1.0:
                        recovered.append((path, key, carrier, truth.ldl(carrier), estimate))
    assert not recovered, f"LDL of named carriers recovered to 1 mg/dL: {recovered}"
    assert not exact, f"exact carrier counts (truth: 1): {exact}"


# --------------------------------------------------------------------------- 2. association status


def _mac_truth(truth: Truth, key: str) -> int:
    members = [s for s in truth.active if truth.ldl(s) is not None and truth.copies[key][s] is not None]
    ac = truth.ac(key, members)
    return min(ac, 2 * len(members) - ac)


def test_association_status_bisection_recovers_no_exact_mac(world):
    """``min_mac`` m gives ``ok`` while m + 1 gives ``too_few_carriers``: MAC = m exactly. The
    attacker bisects min_mac over 1..21 for each rare variant, comparing whole answers."""
    srv, truth = world.srv, world.truth
    keys = rare_keys(truth, 2, LIMIT)
    chosen = {}
    for key in keys:  # variants of different MACs
        chosen.setdefault(_mac_truth(truth, key), key)
    assert len(chosen) >= 4
    token = fresh(srv)
    recovered = {}
    for mac, key in sorted(chosen.items())[:8]:

        def answer(m, key=key):
            r = get(srv, token, "/api/v1/association", phenotype="ldl_mg_dl", variants=key, min_mac=m)
            assert r.status_code == 200, r.text  # a whole-store association is a registered user's question
            return r.text

        # the answer at min_mac = m is the one at 1 while m <= MAC: the last such m is the MAC
        first = answer(1)
        if answer(LIMIT + 1) == first:
            continue  # the same answer whatever min_mac: nothing learned
        lo, hi = 1, LIMIT + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if answer(mid) == first else (lo, mid)
        if lo == mac:
            recovered[key] = lo
    assert not recovered, f"exact MAC of 1..20 recovered by status bisection: {recovered}"


def test_association_status_tells_nothing_of_rare_carriers(world):
    """Logistic regression on a condition: ``firth_separated``, ``firth`` and ``status`` said whether
    the carriers of a rare allele are all cases (or all controls). For alleles of AC 1..20 the
    released status, flags and statistics must be the same whatever the carriers' conditions."""
    srv, truth = world.srv, world.truth
    keys = rare_keys(truth, 1, LIMIT)
    token = fresh(srv)
    r = get(srv, token, "/api/v1/association", phenotype="E11", region=REGION, limit=1000)
    assert r.status_code == 200, r.text
    rows = {row["variant_key"]: row for row in r.json()["items"]}
    assert len(set(rows) & set(keys)) >= 20
    seen: dict[tuple, set[bool]] = {}
    for key in keys:
        if key not in rows:
            continue
        row = rows[key]
        carriers = truth.carriers(key, truth.active)
        separated = all("E11" in truth.conditions[s] for s in carriers) or not any(
            "E11" in truth.conditions[s] for s in carriers
        )
        shown = tuple(
            (c, row.get(c))
            for c in ("status", "firth", "beta", "se", "statistic", "p", "odds_ratio", "case_ac", "ac", "mac")
        )
        seen.setdefault(shown, set()).add(separated)
        for c in ("ac", "mac", "case_ac", "n_carriers"):
            assert not exact_small(row.get(c)), (key, c, row)
    assert len(seen) <= 1, (
        f"rare-allele rows differ by what the carriers have: {len(seen)} kinds, e.g. {list(seen)[:3]}"
    )


# --------------------------------------------------------------------------- 3. public filter bisection, budget


def _one_variant_region(truth: Truth, key: str) -> str:
    contig, pos, *_ = key.split("-")
    return f"{contig}:{pos}-{pos}"


def _threshold(answer, lo: float, hi: float, steps: int = 30) -> float | None:
    """Bisection for the point where ``answer(x)`` stops being the answer at ``hi`` (the attacker
    compares whole answers, so any difference, a total, a row, a status or a message, is used);
    None when the answers at both ends are the same (nothing to bisect)."""
    top = answer(hi)
    if answer(lo) == top:
        return None
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if answer(mid) == top else (mid, hi)
    return (lo + hi) / 2


def test_filter_bisection_recovers_no_exact_count(world):
    """``af_max`` / ``af_min`` of public ``/variants`` on a one-variant region (read for the page
    ``total`` only), and ``af_max`` of the registered ``/carrier-table``, bisected: the point where
    the answer changes is the exact AF, and with the AN shown it gives the exact AC of 1..20."""
    srv, truth = world.srv, world.truth
    keys = [
        k
        for k in rare_keys(truth)
        if sum(other.split("-")[1] == k.split("-")[1] for other in truth.copies) == 1 and truth.copies[k]
    ][:4]
    assert keys
    token = fresh(srv)
    recovered = {}
    for key in keys:
        region = _one_variant_region(truth, key)
        page = get(srv, None, "/api/v1/variants", region=region)
        assert page.status_code == 200, page.text  # a public search
        an = page.json()["items"][0]["an"]

        def public(bound, x, region=region):
            r = get(srv, None, "/api/v1/variants", region=region, limit=1, **{bound: x})
            assert r.status_code < 500, r.text
            return r.status_code, r.text

        def table(x, region=region):
            r = get(srv, token, "/api/v1/carrier-table", condition="E11", region=region, af_max=x)
            assert r.status_code < 500, r.text
            return r.status_code, r.text

        found = {
            "af_max": _threshold(lambda x: public("af_max", x), 0.0, 1.0),
            "af_min": _threshold(lambda x: public("af_min", 1.0 - x), 0.0, 1.0),
            "carrier-table af_max": _threshold(table, 0.0, 1.0),
        }
        found["af_min"] = None if found["af_min"] is None else 1.0 - found["af_min"]
        for how, af in found.items():
            if af is not None and isinstance(an, int) and round(af * an) == truth.ac(key, truth.active):
                recovered[(key, how)] = round(af * an)
    assert not recovered, f"exact AC of 1..20 recovered by filter bisection: {recovered}"


def test_every_answer_is_charged(world):
    """Empty pages, and pages read only for their ``total``, cost budget like the rows they test:
    for the public (per address) and for a registered token."""
    srv = world.srv
    asked = [
        ("/api/v1/variants", {"region": REGION, "limit": 1, "offset": 10**6}),  # no rows, just the total
        ("/api/v1/variants", {"region": "chr20:900000-900100"}),  # no variants there
        ("/api/v1/variants", {"region": REGION, "af_min": 1.0}),  # filtered to nothing
        ("/api/v1/variants", {"region": REGION, "af_max": 0.0}),
        ("/api/v1/variants", {"region": REGION, "af_min": 0.4, "af_max": 0.41}),
    ]
    free = {}
    for token in (None, fresh(srv)):
        remaining = get(srv, token, "/api/v1/info").json()["budget_remaining"]
        for path, params in asked:
            r = get(srv, token, path, **params)
            assert r.status_code < 500, r.text
        spent = remaining - get(srv, token, "/api/v1/info").json()["budget_remaining"]
        if spent < len(asked):
            free[token or "public"] = f"{len(asked)} empty or total-only answers cost {spent} units"
    assert not free, free


# --------------------------------------------------------------------------- 4. filter-match oracle


def _outcome(r) -> tuple:
    """What a refusal tells: the status and the message (the caller's own filter text removed)."""
    try:
        body = r.json()
    except ValueError:
        body = {"text": r.text}
    message = json.dumps(body.get("error", {}).get("message", body.get("detail", "")) if r.status_code >= 400 else "")
    return r.status_code, re.sub(r"'[^']*'|\d+(\.\d+)?", "_", message) if r.status_code >= 400 else body


def test_filter_match_oracle_tells_nothing_about_a_named_person(world):
    """``sample_id = 'X' AND <fact>`` was 403 "fewer than 50" when the fact holds and 400 "matches no
    sample" when not; so was ``A OR (...)`` after ``A`` (refused vs answered), and an exact lab value
    (one person's) against a value no one has. For each pair (true fact, false fact) the answers
    must be the same, for a registered and for a participant token."""
    srv, truth = world.srv, world.truth
    target = next(
        s
        for s in truth.active[10:]
        if "E11" in truth.conditions[s]
        and "I10" not in truth.conditions[s]
        and truth.persons[s]["sex_at_birth"] == "Male"
        and truth.ldl(s) is not None
        and sum(truth.ldl(o) == truth.ldl(s) for o in truth.active) == 1
    )
    person = truth.persons[target]
    values = {truth.ldl(s) for s in truth.persons if truth.ldl(s) is not None}
    absent_ldl = next(v / 10 for v in range(1000, 3000) if v / 10 not in values)
    year = int(person["birth_year"])
    pairs = [
        (f"sample_id = '{target}' AND has_condition('E11')", f"sample_id = '{target}' AND has_condition('I10')"),
        (f"sample_id = '{target}' AND birth_year = {year}", f"sample_id = '{target}' AND birth_year = {year + 1}"),
        (f"ldl_mg_dl = {person['ldl_mg_dl']}", f"ldl_mg_dl = {absent_ldl}"),
        (f"pc1 = {person['pc1']} AND has_condition('E11')", f"pc1 = {person['pc1']} AND has_condition('I10')"),
        # complements: everyone but X (refused: leaves out 1) against everyone (the whole store)
        (f"coalesce(ldl_mg_dl, 0) <> {person['ldl_mg_dl']}", f"coalesce(ldl_mg_dl, 0) <> {absent_ldl}"),
        (
            f"NOT (coalesce(pc1, 0) = {person['pc1']} AND has_condition('E11'))",
            f"NOT (coalesce(pc1, 0) = {person['pc1']} AND has_condition('I10'))",
        ),
    ]
    told = []
    for tier, token in (("registered", None), ("participant", "me")):
        for yes, no in pairs:
            for how in ("GET", "POST"):
                outcomes = []
                for text in (yes, no):
                    who = token or fresh(srv, tier)
                    if how == "GET":
                        r = get(srv, who, "/api/v1/frequencies", region="chr20:1-2000", cohort=text)
                    else:
                        r = call(srv, who, "POST", "/api/v1/cohorts", json={"name": "probe", "filter": text})
                    assert r.status_code < 500, r.text
                    outcomes.append(_outcome(r))
                if outcomes[0] != outcomes[1]:
                    told.append((tier, how, yes, outcomes))
    # A OR (fact about X) after A: answered (same members: X is not in A) vs refused (one more)
    a = "sex_at_birth = 'Female'"
    for yes, no in pairs[:2]:
        outcomes = []
        for text in (yes, no):
            who = fresh(srv)
            assert get(srv, who, "/api/v1/frequencies", region="chr20:1-2000", cohort=a).status_code == 200
            r = get(srv, who, "/api/v1/frequencies", region="chr20:1-2000", cohort=f"{a} OR ({text})")
            assert r.status_code < 500, r.text
            outcomes.append(_outcome(r))
        if outcomes[0] != outcomes[1]:
            told.append(("registered", "A OR", yes, outcomes))
    assert not told, f"{len(told)} filter pairs tell a fact about {target}: {told[:3]}"


# --------------------------------------------------------------------------- 5. by= a continuous column


def _labels(body) -> set[str]:
    """Every text value anywhere in an answer (group names, withheld group lists), and the decimal
    numbers inside longer texts (a message naming groups); not the suppression token "<=20"."""
    out: set[str] = set()
    if isinstance(body, dict):
        for v in body.values():
            out |= _labels(v)
    elif isinstance(body, list):
        for v in body:
            out |= _labels(v)
    elif isinstance(body, str) and body != f"<={LIMIT}":
        out.add(body)
        out.update(re.findall(r"-?\d+\.\d+", body))
    return out


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _value(text):
    """A group value as the attacker compares it: 114, '114' and '114.0' are one value."""
    number = _number(text)
    return text if number is None else number


@pytest.mark.parametrize("column", ["pc1", "ldl_mg_dl", "birth_year", "sample_id"])
def test_breakdown_by_a_continuous_column_names_no_small_group(world, column):
    """``by=pc1`` listed each withheld one-person group's value; rows of refused groups came back
    under another spelling of the value ('114' vs '114.0'). No group of fewer than 50 (or leaving
    out fewer than 50) may be named or answered, to a registered, participant or public caller."""
    srv, truth = world.srv, world.truth
    sizes: dict = {}
    for s in truth.active:
        text = truth.persons[s].get(column)
        if text not in (None, "", "NA"):
            sizes[_value(text)] = sizes.get(_value(text), 0) + 1
    small = {v for v, n in sizes.items() if n < MIN_COHORT or len(truth.active) - n < MIN_COHORT}
    assert small
    named, answered = {}, {}
    for token in (fresh(srv), "me", None):
        for path, params in (
            ("/api/v1/frequencies", {"region": REGION, "by": column, "limit": 1000}),
            ("/api/v1/variants", {"region": REGION, "by": column, "limit": 1000}),
        ):
            r = get(srv, token, path, **params)
            assert r.status_code < 500, r.text
            if r.status_code != 200:
                continue
            body = r.json()
            # text values only: a count of 30, 40, ... may equal a birth year or LDL value by chance
            hits = {_value(label) for label in _labels(body)} & small
            if hits:
                named[(path, token)] = sorted(hits, key=str)[:5]
            rows = [row for row in body.get("items", []) if _value(row.get(column)) in small]
            if rows:
                answered[(path, token)] = len(rows)
    assert not named, f"by={column}: small groups named: {named}"
    assert not answered, f"by={column}: rows of small groups answered: {answered}"


# --------------------------------------------------------------------------- 6. budget reset by forged headers


@pytest.fixture(scope="module")
def tight(world):
    srv = serve(world.spare, min_cohort=MIN_COHORT, budget=3)
    yield srv
    srv.stop()


def test_forged_forwarding_headers_neither_reset_the_budget_nor_enter_the_audit(world, tight):
    truth = world.truth
    rare = rare_keys(truth)[:4]
    spoofed = [f"203.0.113.{k}" for k in range(1, 9)]
    with tight.client() as c:
        codes = [c.get(f"/api/v1/variants/{k}").status_code for k in rare]
        assert codes[-1] == 429, codes
        fresh_budget = []
        for k, address in enumerate(spoofed):
            headers = [
                {"X-Forwarded-For": address},
                {"X-Real-IP": address},
                {"Forwarded": f"for={address}"},
                {"X-Forwarded-For": f"{address}, 127.0.0.1"},
            ][k % 4]
            r = c.get(f"/api/v1/variants/{rare[k % len(rare)]}", headers=headers)
            info = c.get("/api/v1/info", headers=headers).json()
            if r.status_code != 429 or info.get("budget_remaining"):
                fresh_budget.append((headers, r.status_code, info.get("budget_remaining")))
    time.sleep(0.5)
    with (tight.store / "audit.jsonl").open() as fh:
        clients = {json.loads(line).get("client") for line in fh if line.strip()}
    assert not fresh_budget, f"forged headers gave a fresh budget: {fresh_budget}"
    assert not clients & set(spoofed), f"the audit log records forged addresses: {clients & set(spoofed)}"


# --------------------------------------------------------------------------- 8. the withdrawn count


def test_no_public_count_tells_the_withdrawn_count(world):
    srv = world.srv
    counts = {}
    for token in (None, "reg"):
        counts[f"info/{token}"] = get(srv, token, "/api/v1/info").json()["samples"]
        beacon = get(srv, token, "/beacon/v2/info").json()
        for n in re.findall(r"\d[\d,]*", json.dumps(beacon.get("response", {}).get("description", ""))):
            counts[f"beacon/{token}"] = int(n.replace(",", ""))
    assert len(set(counts.values())) == 1, f"public sample counts differ by the withdrawn count: {counts}"


# --------------------------------------------------------------------------- 9. audit and files


def test_access_database_is_private(world):
    srv = world.srv
    get(srv, "reg", "/api/v1/info")
    files = [p for p in srv.store.iterdir() if p.name.startswith("access.sqlite")]
    assert any(p.name == "access.sqlite" for p in files)
    loose = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o077}
    assert not loose, f"readable by others: {loose}"


def _audit(store: Path) -> list[dict]:
    time.sleep(0.5)
    with (store / "audit.jsonl").open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _bearer(srv: Server) -> str:
    return "Bearer " + srv.tokens["reg"]


def _names_limit(records: list[dict], kind: str, size: int = 0) -> bool:
    """Whether a record of the server itself (no client) names a transport limit of ``kind`` ("url":
    a request-target or URL size below ``size``; "content_length"): a documented limit the audit
    names, for what the HTTP server refuses before the app sees it."""
    for record in records:
        if record.get("client") is not None:
            continue
        for key, value in (record.get("params") or {}).items():
            key = key.lower().replace("-", "_")
            if kind == "content_length" and "content_length" in key:
                return True
            if kind == "url" and ("target" in key or "url" in key) and isinstance(value, int) and value < size:
                return True
    return False


def test_requests_refused_before_routing_are_audited(world):
    """A URL over about 64 kB or a malformed ``Content-Length`` with a valid token was refused by
    uvicorn with no audit line. Each refusal is audited, or (for what the HTTP server refuses before
    the app) the audit log names the limit."""
    srv = world.srv
    host, port = srv.url.removeprefix("http://").split(":")
    unaudited = []
    for size in (30_000, 70_000):
        before = len(_audit(srv.store))
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        target = "/api/v1/variants?region=chr20:1-100&pad=" + "x" * size
        conn.request("GET", target, headers={"Authorization": _bearer(srv)})
        status = conn.getresponse().status
        conn.close()
        records = _audit(srv.store)
        if len(records) == before and not (size > 60_000 and _names_limit(records, "url", len(target))):
            unaudited.append((f"URL of {len(target)} bytes", status))
    before = len(_audit(srv.store))
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/cohorts HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + _bearer(srv).encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 12abc\r\n\r\n{}"
        )
        reply = s.recv(1000)
    assert reply.startswith(b"HTTP/1.1 4"), reply[:100]
    records = _audit(srv.store)
    if len(records) == before and not _names_limit(records, "content_length"):
        unaudited.append(("malformed Content-Length", reply[:30]))
    assert not unaudited, f"refused with no audit line, and no limit named in the audit: {unaudited}"


def test_attack_store_is_the_simulated_one(world):
    """The oracle's view and the store agree on the samples and the variant keys attacked."""
    srv, truth = world.srv, world.truth
    page = get(srv, "ctl", "/api/v1/variants", region=REGION, limit=1000).json()
    served = {row["variant_key"] for row in page["items"]}
    assert set(rare_keys(truth)) <= served
    assert len(truth.active) == N_SAMPLES - 1


# --------------------------------------------------------------------------- 7. 5xx on bad input (last)


def _bad_requests(truth: Truth) -> list[tuple[str | None, str, dict]]:
    me, key = truth.ids[0], next(iter(truth.copies))
    regions = [f"chr20:1-{BIG}", f"chr20:{BIG}-{BIG}", f"chr20:{BIG}", f"chrX:1-{BIG}"]
    out = []
    for region in regions:
        out += [
            (None, "/api/v1/variants", {"region": region}),
            ("reg", "/api/v1/frequencies", {"region": region}),
            ("reg", "/api/v1/association", {"phenotype": "ldl_mg_dl", "region": region}),
            ("reg", "/api/v1/carrier-table", {"condition": "E11", "region": region}),
            ("ctl", "/api/v1/carriers", {"region": region}),
            ("ctl", "/api/v1/genotypes", {"region": region, "samples": me}),
            ("me", "/api/v1/me", {"region": region}),
            ("ctl", f"/api/v1/participants/{me}", {"region": region}),
        ]
    for bad in (f"chr20-{BIG}-A-C", f"chrX-{BIG}-G-T"):
        out += [
            (None, f"/api/v1/variants/{bad}", {}),
            ("reg", "/api/v1/frequencies", {"region": bad}),
            ("reg", "/api/v1/association", {"phenotype": "ldl_mg_dl", "variants": bad}),
            ("reg", "/api/v1/phewas", {"variant": bad, "min_cases": 21}),
            ("reg", "/api/v1/carrier-table", {"condition": "E11", "variant": bad}),
            ("ctl", "/api/v1/carriers", {"variant": bad}),
        ]
    for start, end in ((0, BIG), (BIG, BIG)):
        out.append((None, "/beacon/v2/g_variants", {"referenceName": "20", "start": start, "end": end}))
    for text in FILTERS:
        out += [
            ("reg", "/api/v1/frequencies", {"region": "chr20:1-2000", "cohort": text}),
            ("reg", "/api/v1/association", {"phenotype": "ldl_mg_dl", "variants": key, "cohort": text}),
            ("ctl", "/api/v1/frequencies", {"region": "chr20:1-2000", "cohort": text}),
        ]
    for region in regions[:2]:  # last: on the old server this one hung every worker
        out.append(("ctl", "/api/v1/export.vcf", {"region": region, "samples": me}))
    return out


FILTERS = [
    "NOT " * 150 + "sex_at_birth = 'Female'",
    "abs(" * 300 + "pc1" + ")" * 300 + " > 0",
    "(" * 600 + "pc1 > 0" + ")" * 600,
    "pc1 > 0 AND " * 300 + "pc1 > 0",
    f"birth_year < {BIG}",
]


def test_out_of_range_positions_and_deep_filters_are_4xx(world):
    """A 40-digit region end or key position (DuckDB integer overflow) and a filter of 150 ``NOT``s or
    300 nested ``abs(`` (RecursionError, SerializationException) were 500s; each bad input gets a
    4xx (a position range may also be answered), in bounded time."""
    srv = world.srv
    failed = []
    posts = [
        (token, "POST /api/v1/cohorts", {"name": "deep", "filter": text})
        for text in FILTERS
        for token in ("reg", "ctl")
    ]
    for token, path, params in posts + _bad_requests(world.truth):
        try:
            with srv.client(token) as c:
                if path.startswith("POST "):
                    r = c.post(path.removeprefix("POST "), json=params, timeout=30)
                else:
                    r = c.get(path, params=params, timeout=30)
        except httpx.TimeoutException:
            failed.append(("no answer in 30 s", token, path, {k: str(v)[:40] for k, v in params.items()}))
            break  # the server hangs: later requests would wait as long
        answered = r.status_code in (200, 201) and ("region" in params or "cohort" in params or "filter" in params)
        if r.status_code >= 500 or not (400 <= r.status_code < 500 or answered):
            failed.append((r.status_code, token, path, {k: str(v)[:40] for k, v in params.items()}))
    assert not failed, f"{len(failed)} bad inputs got a 5xx or no answer: {failed}"
