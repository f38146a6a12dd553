"""Differencing attacks on the registered tier, run against a running server.

The attacker wants one person's genotype at every chr20 site. Expectations come from the
Python API (exact counts of the same cohorts), and the attacker's reasoning is written
here: each released count ``r`` means "the true count is 0" (r = 0),
"0..20" or "a linked cell was withheld" (``"<=20"``; a cohort's 0 is withheld too) or "within
9 of r, above 20" (rounded); a genotype ``g`` of the target is *consistent*
with the answers when some counts of the other members fit every released cell. The
genotype is *derived* when exactly one of 0, 1, 2 is consistent.

- Classic: frequencies of cohort A, then of A minus the target: the server refuses the
  second cohort (it differs from the first by one member), and with exact counts the
  attack would have worked.
- Overlapping cohorts: the other samples are split into blocks P, Q, R, S of about
  ``min_cohort`` members; the attacker asks for every block plus the target (X+t) and every
  union of two blocks (X+Y). Every two of these differ by at least ``min_cohort`` members, so
  all are answered; with exact counts any (X+t) + (Y+t) - (X+Y) = 2 copies of g. Over all six
  triples, ac, n_het and n_hom_alt, no genotype may be derived from the released answers.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow.csv as pacsv
import pytest

import genoquery
from checks import FIXTURES
from genoquery.server.disclosure import Disclosure
from genoquery.server.settings import Settings
from test_server_support import server

REGION = "chr20:1-50000"
PERSONS = pacsv.read_csv(FIXTURES / "persons.tsv", parse_options=pacsv.ParseOptions(delimiter="\t"))
LIMIT, BASE = 20, 10
# (ac, n_het, n_hom_alt) contributed by a diploid genotype with 0, 1, 2 ALT copies
CONTRIBUTION = {0: (0, 0, 0), 1: (1, 1, 0), 2: (2, 0, 1)}
CELLS = ("ac", "n_het", "n_hom_alt")


def in_filter(ids) -> str:
    """A filter choosing exactly ``ids`` without naming them: sample_id is not a filter column below
    the controlled tier, but a value unique to each person (the PC1 coordinate) does the same."""
    pc1 = dict(zip(*(PERSONS[c].to_pylist() for c in ("sample_id", "pc1")), strict=True))
    return "pc1 IN (" + ", ".join(repr(pc1[i]) for i in sorted(ids)) + ")"


def interval(released, size: int) -> tuple[int, int]:
    """What a released count says about the true count (attacker's knowledge), as [lo, hi]."""
    if released == 0:
        return 0, 0
    if released is None:
        return 0, 2 * size  # withheld: 0..20 (0 in a cohort), or a linked cell was
    return max(released - BASE + 1, LIMIT + 1), released + BASE - 1


def consistent(answers: dict, blocks: dict, pairs, key: str) -> set[int]:
    """Genotypes of the target consistent with every triple (X+t, Y+t, X+Y) and cell at ``key``."""
    out = set()
    for g, add in CONTRIBUTION.items():
        ok = True
        for (x, y), (k, cell) in itertools.product(pairs, enumerate(CELLS)):
            lo1, hi1 = interval(answers[x + "t"][key][cell], len(blocks[x]) + 1)
            lo2, hi2 = interval(answers[y + "t"][key][cell], len(blocks[y]) + 1)
            lo12, hi12 = interval(answers[x + y][key][cell], len(blocks[x]) + len(blocks[y]))
            # counts of X and Y alone: [lo1 - add, hi1 - add] and [lo2 - add, hi2 - add], both >= 0
            lo_x, hi_x = max(lo1 - add[k], 0), hi1 - add[k]
            lo_y, hi_y = max(lo2 - add[k], 0), hi2 - add[k]
            if hi_x < lo_x or hi_y < lo_y or lo_x + lo_y > hi12 or hi_x + hi_y < lo12:
                ok = False
                break
        if ok:
            out.add(g)
    return out


@pytest.fixture(scope="module")
def srv():
    return server()


def frequencies(srv, token: str, cohort) -> dict:
    with srv.client(token) as c:
        r = c.get("/api/v1/frequencies", params={"region": REGION, "cohort": cohort, "limit": 1000})
    assert r.status_code == 200, r.text
    return {row["variant_key"]: row for row in r.json()["items"]}


def test_classic_differencing_attack_is_refused(srv):
    with genoquery.open(srv.store) as store:
        a = "sex_at_birth = 'Female'"
        members = store.samples()["sample_id"].to_numpy(zero_copy_only=False)[store.cohort(a)]
        target = str(members[0])
        minus = f"{a} AND sample_id <> '{target}'"
        pc1 = dict(zip(*(PERSONS[c].to_pylist() for c in ("sample_id", "pc1")), strict=True))
        minus_by_value = f"{a} AND pc1 <> {pc1[target]!r}"
        exact = {r["variant_key"]: r["ac"] for r in store.frequencies(REGION, cohort=a).to_pylist()}
        exact_minus = {r["variant_key"]: r["ac"] for r in store.frequencies(REGION, cohort=minus).to_pylist()}
        mine = {r["variant_key"]: r["allele_copies"] for r in store.participant(target).to_pylist()}
    # with exact counts the attack works: the difference is the target's allele copies
    assert {k: exact[k] - exact_minus[k] for k in exact if exact[k] != exact_minus[k]} == {
        k: v for k, v in mine.items() if k in exact
    }
    token = srv.new_token("registered", "classic-attacker")
    frequencies(srv, token, a)
    with srv.client(token) as c:
        r = c.get("/api/v1/frequencies", params={"region": REGION, "cohort": minus})
        assert r.status_code == 400  # sample_id identifies participants: no filter column below controlled
        assert "it identifies participants" in r.json()["error"]["message"]
        r = c.get("/api/v1/frequencies", params={"region": REGION, "cohort": minus_by_value})
        assert r.status_code == 403
        assert "differ by at least" in r.json()["error"]["message"]
        r = c.post("/api/v1/cohorts", json={"name": "a_minus_one", "filter": minus_by_value})
        assert r.status_code == 403
        # nor through a breakdown into small groups: a numeric column is no breakdown below controlled
        r = c.get("/api/v1/frequencies", params={"region": REGION, "cohort": a, "by": "birth_year"})
        assert r.status_code == 400
        assert "not a breakdown column" in r.json()["error"]["message"]


@pytest.mark.parametrize("target_index", [0, 41, 97])
def test_overlapping_cohorts_attack_derives_no_genotype(srv, target_index):
    with genoquery.open(srv.store) as store:
        ids = [str(i) for i in store.samples()["sample_id"].to_pylist()]
        # persons a filter can pick one by one without naming them (a PC1 value of their own)
        pc1 = PERSONS["pc1"].to_pylist()
        unique = [i for i, v in zip(PERSONS["sample_id"].to_pylist(), pc1, strict=True) if pc1.count(v) == 1]
        target = unique[target_index]
        others = [i for i in unique if i != target and i in ids]
        size = srv.min_cohort
        blocks = {name: others[k * size : (k + 1) * size] for k, name in enumerate("PQR")}
        assert all(len(b) == size for b in blocks.values())
        cohorts = {x + "t": blocks[x] + [target] for x in blocks}
        cohorts.update({x + y: blocks[x] + blocks[y] for x, y in itertools.combinations(blocks, 2)})
        exact = {
            name: {r["variant_key"]: r for r in store.frequencies(REGION, cohort=members).to_pylist()}
            for name, members in cohorts.items()
        }
        carried = {r["variant_key"]: r["allele_copies"] for r in store.participant(target).to_pylist()}
        calls = store.genotypes(REGION, [target])
    keys = [
        k
        for k, gt in zip(
            (f"{s['contig']}-{s['pos']}-{s['ref']}-{s['alt'][0]}" for s in calls.sites.to_pylist()),
            calls.gt[:, 0, :].tolist(),
            strict=True,
        )
        if min(gt) >= 0 and k in exact["Pt"]
    ]  # diploid, called, bi-allelic key
    pairs = list(itertools.combinations(blocks, 2))
    token = srv.new_token("registered", f"overlap-attacker-{target_index}")
    answers = {name: frequencies(srv, token, in_filter(members)) for name, members in cohorts.items()}
    derived_exact = derived_released = 0
    for key in keys:
        truth = carried.get(key, 0)
        with_exact = _exact_consistent(exact, pairs, key)
        assert with_exact == {truth}  # the attack works on exact counts
        derived_exact += 1
        found = consistent(answers, blocks, pairs, key)
        assert truth in found
        derived_released += len(found) == 1
    assert derived_exact == len(keys) > 50
    assert derived_released == 0


def _exact_consistent(exact: dict, pairs, key: str) -> set[int]:
    out = set()
    for g, add in CONTRIBUTION.items():
        if all(
            exact[x + "t"][key][c] + exact[y + "t"][key][c] - exact[x + y][key][c] == 2 * add[k]
            for x, y in pairs
            for k, c in enumerate(CELLS)
        ):
            out.add(g)
    return out


@pytest.mark.parametrize(
    ("status", "test", "withheld"),
    [("ok", "wald", False), ("ok", "score", False), ("firth_separated", "firth", True), ("separated", "score", True)],
)
def test_separated_carriers_withhold_a_rows_statistics_whichever_test(status, test, withheld):
    """Carriers all cases or all controls (a 2x2 cell of 0) withhold the status, statistics and
    the ``test`` column, whether a Firth fit or a score test reports them; large counts otherwise."""
    disclosure = Disclosure(Settings(), b"k" * 32, None, np.arange(10_000), 10_000, set())
    row = {"variant_key": "chr20-1-A-C", "n": 5000, "ac": 300, "an": 10_000, "mac": 300, "n_carriers": 290}
    row |= {"case_ac": 300, "beta": 0.5, "se": 0.1, "statistic": 5.0, "p": 5.7e-7, "status": status, "test": test}
    out = disclosure.table_row(row, "everyone", row["variant_key"])
    assert (out["status"] == "suppressed") == withheld
    assert out["p"] is None and out["test"] is None if withheld else (out["p"] == 5.7e-7 and out["test"] == test)
    assert ({"status", "p", "test"} <= set(out["suppressed"])) == withheld
