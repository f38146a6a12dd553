"""GA4GH Beacon v2: ``/beacon/v2/info``, ``/map``, ``/configuration`` and ``/g_variants``.

``g_variants`` answers a sequence query (``start`` alone: the variant at 0-based ``start``)
or a range query (``start``..``end``, 0-based half-open as in Beacon), optionally with
``referenceBases``, ``alternateBases`` (``N`` matches any base) and ``variantType`` (SNP,
MNP, INDEL, INS, DEL). A variant "exists" when some sample carries it (AC > 0). Granularity
follows the caller's tier: public and registered get ``boolean`` or ``count`` (the number of
matching variants, never of people), controlled tokens get ``record``. Queries touching a
rare allele spend the caller's budget (see :mod:`genoquery.server.budget`). Errors are
Beacon error responses.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from genoquery.server.auth import Principal, Tier
from genoquery.server.beacon_meta import API_VERSION, BEACON_ID, ENTRY, SCHEMA
from genoquery.server.beacon_meta import meta as _meta
from genoquery.server.context import Context, caller, context, rows_returned
from genoquery.server.problems import ApiError
from genoquery.server.routes_store import released_samples
from genoquery.version import __version__

GRANULARITY = ("boolean", "count", "record")
VARIANT_TYPES = ("SNP", "MNP", "INDEL", "INS", "DEL")


class BeaconError(BaseModel):
    errorCode: int  # noqa: N815 - Beacon's names
    errorMessage: str  # noqa: N815


class BeaconErrorResponse(BaseModel):
    """The Beacon v2 ``beaconErrorResponse`` (every error under ``/beacon/v2``)."""

    meta: dict[str, Any]
    error: BeaconError


router = APIRouter(
    prefix="/beacon/v2",
    tags=["beacon"],
    responses={s: {"model": BeaconErrorResponse} for s in (400, 401, 403, 404, 413, 422, 429)},
)


@router.get("/info", summary="Beacon information")
def info(request: Request, principal: Principal = Depends(caller), ctx: Context = Depends(context)) -> dict:
    samples = released_samples(ctx, principal)
    shown = f"at most {ctx.settings.max_suppressed}" if samples is None else samples
    return {
        "meta": _meta(),
        "response": {
            "id": BEACON_ID,
            "name": f"genoquery beacon on {ctx.path.name}",
            "apiVersion": API_VERSION,
            "environment": "dev",
            "version": f"v{__version__}",
            "description": f"Genomic variants of {shown} samples (genoquery store)",
            "organization": {"id": "genoquery", "name": "genoquery local server"},
        },
    }


@router.get("/configuration", summary="Beacon configuration")
def configuration() -> dict:
    return {
        "meta": _meta(),
        "response": {
            "$schema": "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/framework/json/configuration/"
            "beaconConfigurationSchema.json",
            "maturityAttributes": {"productionStatus": "DEV"},
            "securityAttributes": {
                "defaultGranularity": "boolean",
                "securityLevels": ["PUBLIC", "REGISTERED", "CONTROLLED"],
            },
            "entryTypes": {
                ENTRY: {
                    "id": ENTRY,
                    "name": "Genomic Variants",
                    "partOfSpecification": "Beacon v2.0.0",
                    "defaultSchema": {
                        "id": "ga4gh-beacon-variant-v2.0.0",
                        "name": "Default schema for a genomic variation",
                        "referenceToSchemaDefinition": "https://raw.githubusercontent.com/ga4gh-beacon/"
                        "beacon-v2/main/models/json/beacon-v2-default-model/genomicVariations/defaultSchema.json",
                        "schemaVersion": API_VERSION,
                    },
                    "nonFilteredQueriesAllowed": True,
                }
            },
        },
    }


@router.get("/map", summary="Beacon map of endpoints")
def beacon_map(request: Request) -> dict:
    root = str(request.base_url).rstrip("/") + "/beacon/v2"
    return {
        "meta": _meta(),
        "response": {
            "$schema": "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/framework/json/configuration/"
            "beaconMapSchema.json",
            "endpointSets": {
                ENTRY: {
                    "entryType": ENTRY,
                    "rootUrl": f"{root}/g_variants",
                    "openAPIEndpointsDefinition": str(request.base_url).rstrip("/") + "/openapi.json",
                }
            },
        },
    }


def _allowed(principal: Principal, requested: str) -> str:
    if principal.tier == Tier.PARTICIPANT:
        raise ApiError(403, "a participant token sees only its own data: /api/v1/me")
    top = "record" if principal.tier == Tier.CONTROLLED else "count"
    return requested if GRANULARITY.index(requested) <= GRANULARITY.index(top) else top


def _bases_match(wanted: str | None, have) -> Any:
    if wanted is None or set(wanted) == {"N"}:
        return None
    if "N" not in wanted:
        return pc.equal(have, wanted)
    pattern = "^" + wanted.replace("N", "[ACGTN]") + "$"
    return pc.match_substring_regex(have, pattern)


def _type_mask(table, variant_type: str):
    ref_len, alt_len = pc.utf8_length(table["ref"]), pc.utf8_length(table["alt"])
    same = pc.equal(ref_len, alt_len)
    return {
        "SNP": pc.and_(same, pc.equal(ref_len, 1)),
        "MNP": pc.and_(same, pc.greater(ref_len, 1)),
        "INDEL": pc.invert(same),
        "INS": pc.less(ref_len, alt_len),
        "DEL": pc.greater(ref_len, alt_len),
    }[variant_type]


@router.get("/g_variants", summary="Beacon genomic variant query")
def g_variants(
    request: Request,
    referenceName: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9_.]+$")],  # noqa: N803
    start: Annotated[int, Query(ge=0, le=2**31 - 2, description="0-based")],
    end: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="0-based, exclusive")] = None,
    referenceBases: Annotated[str | None, Query(max_length=1000, pattern=r"^[ACGTN]+$")] = None,  # noqa: N803
    alternateBases: Annotated[str | None, Query(max_length=1000, pattern=r"^[ACGTN]+$")] = None,  # noqa: N803
    variantType: Literal["SNP", "MNP", "INDEL", "INS", "DEL"] | None = None,  # noqa: N803
    requestedGranularity: Literal["boolean", "count", "record"] = "boolean",  # noqa: N803
    skip: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    granularity = _allowed(principal, requestedGranularity)
    last = start + 1 if end is None else end
    if last <= start:
        raise ApiError(400, f"end ({end}) must be greater than start ({start})")
    if last - start > 10_000_000:
        raise ApiError(413, "a range query spans at most 10,000,000 bases")
    with ctx.pool.store() as store:
        table = store.lookup(region=f"{referenceName}:{start + 1}-{last}")
    keep = pc.greater(table["ac"], 0)
    for mask in (
        _bases_match(referenceBases, table["ref"]),
        _bases_match(alternateBases, table["alt"]),
        _type_mask(table, variantType) if variantType else None,
    ):
        if mask is not None:
            keep = pc.and_(keep, mask)
    table = table.filter(keep)
    if principal.aggregate_only and table.num_rows and pc.min(table["ac"]).as_py() <= ctx.settings.max_suppressed:
        ctx.budget.charge(principal)
    params = {
        k: v
        for k, v in {
            "referenceName": referenceName,
            "start": start,
            "end": end,
            "referenceBases": referenceBases,
            "alternateBases": alternateBases,
            "variantType": variantType,
        }.items()
        if v is not None
    }
    found = table.num_rows
    meta = _meta(
        returnedGranularity=granularity,
        receivedRequestSummary={
            "apiVersion": API_VERSION,
            "requestedSchemas": [SCHEMA],
            "pagination": {"skip": skip, "limit": limit},
            "requestedGranularity": requestedGranularity,
            "requestParameters": {"g_variant": params},
        },
    )
    rows_returned(request, found)
    if granularity == "boolean":
        return {"meta": meta, "responseSummary": {"exists": found > 0}}
    summary = {"exists": found > 0, "numTotalResults": found}
    if granularity == "count":
        return {"meta": meta, "responseSummary": summary}
    results = [_record(r) for r in table.slice(skip, limit).to_pylist()]
    return {
        "meta": meta,
        "responseSummary": summary,
        "response": {
            "resultSets": [
                {
                    "id": ctx.path.name,
                    "setType": "dataset",
                    "exists": found > 0,
                    "resultsCount": found,
                    "results": results,
                }
            ]
        },
    }


def _record(row: dict) -> dict:
    """A genomicVariation in the default model's legacy form, with its whole-store frequency."""
    return {
        "variantInternalId": row["variant_key"],
        "variation": {
            "referenceBases": row["ref"],
            "alternateBases": row["alt"],
            "variantType": "SNP"
            if len(row["ref"]) == len(row["alt"]) == 1
            else ("MNP" if len(row["ref"]) == len(row["alt"]) else "INDEL"),
            "location": {
                "type": "SequenceLocation",
                "sequence_id": row["contig"],
                "interval": {
                    "type": "SequenceInterval",
                    "start": {"type": "Number", "value": row["pos"] - 1},
                    "end": {"type": "Number", "value": row["pos"] - 1 + len(row["ref"])},
                },
            },
        },
        "identifiers": {"variantAlternativeIds": [{"id": row["id"]}]} if row["id"] else {},
        "frequencyInPopulations": [
            {
                "source": "genoquery store",
                "sourceReference": "local",
                "frequencies": [{"population": "all samples", "alleleFrequency": row["af"]}],
            }
        ],
    }
