"""Requests while a batch is appended to the served store (``genoquery ingest STORE --batch``).

Centers 1 and 2 are served; center 3 is appended while a client asks, without pause, for
variant lookups (controlled tier: exact; public tier: released and cached by the server),
a controlled cohort's frequencies and the store's info. Every answer must be the whole old
answer or the whole new one (no 5xx, no mix of the two indexes), every answer to a request
sent after the append returned must be the new one, and the new answers must count the
appended samples: they equal the Python API on a store of the three centers ingested together.
"""

from __future__ import annotations

import json
import threading
import time

import pandas as pd

import checks
import genoquery
from genoquery.ingest.withdraw import withdraw
from test_server_support import serve

CENTERS = tuple(sorted(checks.FIXTURES.glob("center*.vcf.gz")))
STATS = ("ac", "an", "n_het", "n_hom_alt", "n_hemi", "n_missing")
FEMALE = "sex_at_birth = 'Female'"
REGION = "chr20:1-50000"


def _ingest(path, centers) -> None:
    genoquery.ingest(path, list(centers), persons=checks.FIXTURE_PERSONS, progress=False).close()


def _requests(common: list[str], late: str) -> list[tuple[str, str | None, dict]]:
    """(path, token, params) of the requests asked during the append."""
    lookups = [(f"/api/v1/variants/{k}", tier, {}) for k in [*common, late] for tier in ("ctl", None)]
    return [*lookups, ("/api/v1/frequencies", "ctl", {"region": REGION, "cohort": FEMALE}), ("/api/v1/info", "ctl", {})]


def _ask(srv, requests) -> list[tuple[int, str]]:
    clients = {token: srv.client(token) for token in {t for _, t, _ in requests}}
    try:
        return [
            (r.status_code, r.text)
            for r in (clients[token].get(path, params=params) for path, token, params in requests)
        ]
    finally:
        for c in clients.values():
            c.close()


def _stats(rows: list[dict]) -> list[tuple]:
    return [(r["variant_key"], *(r[c] for c in STATS)) for r in rows]


def test_answers_during_an_append_are_the_old_or_the_new_ones(tmp_path) -> None:
    served, joint = tmp_path / "served.gq", tmp_path / "joint.gq"
    _ingest(served, CENTERS[:2])
    _ingest(joint, CENTERS)
    with genoquery.open(served) as before, genoquery.open(joint) as after:
        old_keys = set(before.variants()["variant_key"].to_pylist())
        keys = after.variants()["variant_key"].to_pylist()
        common = [k for k in keys if k in old_keys][::60][:3]
        late = next(k for k in keys if k not in old_keys)
        expected_old = {k: _stats(before.lookup(k).to_pylist()) for k in common}
        expected_new = {k: _stats(after.lookup(k).to_pylist()) for k in [*common, late]}
        females_old = _stats(before.frequencies(REGION, cohort=FEMALE).to_pylist())
        females_new = _stats(after.frequencies(REGION, cohort=FEMALE).to_pylist())
        n_old, n_new = len(before.sample_ids), len(after.sample_ids)
    srv = serve(served)
    try:
        requests = _requests(common, late)
        old = _ask(srv, requests)
        seen: list[tuple[float, int, tuple[int, str]]] = []  # (when its round started, request, answer)
        stop = threading.Event()

        def ask_without_pause() -> None:
            while not stop.is_set():
                started = time.monotonic()
                seen.extend((started, i, answer) for i, answer in enumerate(_ask(srv, requests)))

        asker = threading.Thread(target=ask_without_pause)
        asker.start()
        try:
            genoquery.ingest(served, [CENTERS[2]], batch="late", progress=False).close()
            appended = time.monotonic()
            while not any(started > appended for started, _, _ in seen) and time.monotonic() < appended + 60:
                time.sleep(0.05)  # until a whole round started after the append
        finally:
            stop.set()
            asker.join()
        new = _ask(srv, requests)
    finally:
        srv.stop()

    assert all(status < 500 for _, _, (status, _) in seen)
    assert all(answer in (old[i], new[i]) for _, i, answer in seen)
    # a round of requests started after the append returned is answered from the new index
    after_append = [answer == new[i] for started, i, answer in seen if started > appended]
    assert after_append
    assert all(after_append)
    by_request = {(path, token): (o, n) for (path, token, _), o, n in zip(requests, old, new, strict=True)}
    for k in common:
        (status_old, body_old), (status_new, body_new) = by_request[(f"/api/v1/variants/{k}", "ctl")]
        assert status_old == status_new == 200
        assert _stats(json.loads(body_old)["items"]) == expected_old[k]
        assert _stats(json.loads(body_new)["items"]) == expected_new[k]
        assert (json.loads(body_old)["cohort_size"], json.loads(body_new)["cohort_size"]) == (n_old, n_new)
        public_old, public_new = (json.loads(b)["cohort_size"] for _, b in by_request[(f"/api/v1/variants/{k}", None)])
        assert abs(public_old - n_old) < 10
        assert public_new == n_new == 120
    (status_old, _), (status_new, body_new) = by_request[(f"/api/v1/variants/{late}", "ctl")]
    assert (status_old, status_new) == (404, 200)
    assert _stats(json.loads(body_new)["items"]) == expected_new[late]
    (_, body_old), (_, body_new) = by_request[("/api/v1/frequencies", "ctl")]
    for body, expected in ((body_old, females_old), (body_new, females_new)):
        assert json.loads(body)["total"] == len(expected)
        assert _stats(json.loads(body)["items"]) == expected[:100]
    (_, info_old), (_, info_new) = by_request[("/api/v1/info", "ctl")]
    assert (json.loads(info_old)["samples"], json.loads(info_new)["samples"]) == (n_old, n_new) == (72, 120)


def test_a_withdrawal_shows_in_the_next_answer_cached_or_not(tmp_path) -> None:
    """After ``withdraw``, a lookup answered (and cached) before counts the sample no more, and a
    cohort of a token is checked against the sample indexes that remain (none of them withdrawn)."""

    served = tmp_path / "served.gq"
    _ingest(served, CENTERS)
    with genoquery.open(served) as s:
        key = next(k for k in s.variants()["variant_key"].to_pylist() if s.carriers(k).num_rows >= 2)
        leaving = s.carriers(key)["sample_id"][0].as_py()
        expected_after = s.frequencies(cohort=[x for x in s.sample_ids if x != leaving]).to_pylist()
    srv = serve(served)
    try:
        with srv.client("ctl") as c:
            before = c.get(f"/api/v1/variants/{key}").json()
            withdraw(served, [leaving], "consent withdrawn")
            after = c.get(f"/api/v1/variants/{key}").json()
        with srv.client(srv.new_token("registered", "after")) as c:
            women = c.get("/api/v1/frequencies", params={"region": REGION, "cohort": FEMALE})
    finally:
        srv.stop()
    assert (before["cohort_size"], after["cohort_size"]) == (120, 119)
    assert _stats(after["items"]) == _stats([r for r in expected_after if r["variant_key"] == key])
    assert after["items"][0]["ac"] < before["items"][0]["ac"]
    assert women.status_code == 200


def test_a_cohort_asked_again_after_a_withdrawal_leaves_the_sample_out(tmp_path) -> None:
    """The server keeps the members of filter cohorts per index: a withdrawal (a new index)
    must not reuse them."""

    served = tmp_path / "served.gq"
    _ingest(served, CENTERS)
    persons = pd.read_csv(checks.FIXTURE_PERSONS, sep="\t", dtype=str)
    with genoquery.open(served) as s:
        women = sorted(set(persons.loc[persons["sex_at_birth"] == "Female", "sample_id"]) & set(s.sample_ids))
    srv = serve(served)
    params = {"region": REGION, "cohort": FEMALE}
    try:
        with srv.client("ctl") as c:
            sizes = [c.get("/api/v1/frequencies", params=params).json()["cohort_size"] for _ in range(2)]
            withdraw(served, [women[0]], "consent withdrawn")
            sizes.append(c.get("/api/v1/frequencies", params=params).json()["cohort_size"])
    finally:
        srv.stop()
    assert sizes == [len(women), len(women), len(women) - 1]
