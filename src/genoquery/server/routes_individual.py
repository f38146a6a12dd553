"""Individual-level answers (controlled tier): carriers, genotypes, VCF export; the participant view."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from genoquery.query.fields import vcf_text
from genoquery.query.genotypes import Genotypes
from genoquery.query.gt_text import gt_text
from genoquery.server.auth import Principal, Tier, require
from genoquery.server.context import Context, caller, comma_separated, context, page_bounds, rows_returned
from genoquery.server.limits import check_carriers, check_cost
from genoquery.server.models import ERRORS, CarrierPage, GenotypeAnswer, ParticipantAnswer
from genoquery.server.problems import ApiError
from genoquery.server.release import page_of, released_participant
from genoquery.server.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["individual-level"], responses=ERRORS)

Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=Settings.max_page, description="rows per page (at most the page size)")]
Text = Annotated[str | None, Query(max_length=200)]
Samples = Annotated[str | None, Query(max_length=100_000, description="comma-separated sample IDs (default: all)")]


Fields = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="kept FORMAT and INFO fields, comma-separated, named as bcftools names them "
        "(FORMAT/DP, INFO/DP; DP alone is FORMAT): each site's `fields` holds their VCF text",
    ),
]


def _field_texts(g: Genotypes, sites: slice) -> list[dict]:
    """Per site of ``sites``: each field read into ``g`` as VCF text, by ``KIND/ID``: a FORMAT
    field's per sample (in the order of ``g.sample_ids``), an INFO field's one value."""
    texts = {f"{f.kind}/{f.id}": vcf_text(f, g.fields[f.array][sites]).tolist() for f in g.kept}
    n = len(range(*sites.indices(g.sites.num_rows)))
    return [{name: values[k] for name, values in texts.items()} for k in range(n)]


@router.get(
    "/carriers",
    response_model=CarrierPage,
    summary="Samples carrying a variant, or any filtered variant of a gene or region",
)
def carriers(
    request: Request,
    variant: Text = None,
    gene: Text = None,
    region: Text = None,
    af_min: Annotated[float | None, Query(ge=0, le=1)] = None,
    af_max: Annotated[float | None, Query(ge=0, le=1)] = None,
    pass_only: bool = False,
    type: Literal["snv", "indel", "other"] | None = None,
    cohort: Annotated[str | None, Query(max_length=4000)] = None,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, Tier.CONTROLLED, "carrier IDs")
    if (variant is None) == (gene is None and region is None):
        raise ApiError(400, "give a variant (key or rsID), or a gene or region with optional filters")
    offset, limit = page_bounds(ctx, offset, limit)
    with ctx.pool.store() as store:
        chosen = ctx.cohort(store, principal, cohort)
        check_cost(ctx, store, principal, chosen.indexes, "carriers", region, gene, variant)
        check_carriers(ctx, store, principal, chosen.indexes, "carriers", region, gene)
        table = store.carriers(
            variant,
            chosen.indexes,
            gene=gene,
            region=region,
            af_min=af_min,
            af_max=af_max,
            pass_only=pass_only,
            variant_type=type,
        )
    rows = table.select(["variant_key", "sample_id", "zygosity", "allele_copies", "gt"]).slice(offset, limit)
    rows_returned(request, rows.num_rows)
    return page_of(rows.to_pylist(), table.num_rows, offset, limit)


@router.get("/genotypes", response_model=GenotypeAnswer, summary="The genotype matrix of a region")
def genotypes(
    request: Request,
    region: Annotated[str, Query(max_length=200)],
    samples: Samples = None,
    fields: Fields = None,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    require(principal, Tier.CONTROLLED, "genotypes")
    offset, limit = page_bounds(ctx, offset, limit)
    wanted = None if samples is None else comma_separated(samples)
    calls = limit * (len(wanted) if wanted is not None else ctx.n_samples)
    if calls > ctx.settings.max_genotype_calls:
        raise ApiError(
            413,
            f"{calls} calls per page is over the limit of {ctx.settings.max_genotype_calls}; "
            "ask for fewer samples or sites (limit), or use /api/v1/export.vcf",
        )
    with ctx.pool.store() as store:  # the whole region is read (3 bytes per call), then paged
        g = store.genotypes(
            region, wanted, max_bytes=3 * ctx.settings.max_genotype_calls, fields=comma_separated(fields)
        )
    sites = g.sites.slice(offset, limit).to_pylist()
    values = _field_texts(g, slice(offset, offset + limit))
    items = []
    for k, site in enumerate(sites, start=offset):
        alleles = [site["ref"], *site["alt"]]
        items.append(
            {
                "variant_key": f"{site['contig']}-{site['pos']}-{site['ref']}-{','.join(site['alt'])}",
                "contig": site["contig"],
                "pos": site["pos"],
                "alleles": alleles,
                "gt": gt_text(g.gt[k], g.phased[k]).to_pylist(),
                "fields": values[k - offset],
            }
        )
    rows_returned(request, len(items))
    return dict(page_of(items, g.sites.num_rows, offset, limit), sample_ids=list(g.sample_ids))


@router.get(
    "/export.vcf",
    summary="Stream a region's genotypes as VCF or bgzipped VCF",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/x-vcf": {}, "application/gzip": {}}}},
)
def export(
    request: Request,
    region: Annotated[str | None, Query(max_length=200)] = None,
    samples: Samples = None,
    compress: bool = False,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> StreamingResponse:
    require(principal, Tier.CONTROLLED, "VCF export")
    workdir = tempfile.mkdtemp(prefix="gq-export-")
    out = FilePath(workdir) / ("export.vcf.gz" if compress else "export.vcf")
    try:
        with ctx.pool.store() as store:
            store.export_vcf(out, region=region, samples=None if samples is None else comma_separated(samples))
    except BaseException:
        _remove(workdir)
        raise
    rows_returned(request, _count_records(out) if not compress else None)
    return StreamingResponse(
        _chunks(out),
        media_type="application/gzip" if compress else "text/x-vcf",
        headers={"Content-Disposition": f'attachment; filename="{out.name}"'},
        background=BackgroundTask(_remove, workdir),
    )


def _count_records(path: FilePath) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if not line.startswith(b"#"))


def _chunks(path: FilePath):
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


def _remove(workdir: str) -> None:
    for name in os.listdir(workdir):
        os.unlink(os.path.join(workdir, name))
    os.rmdir(workdir)


def _participant_page(ctx: Context, principal: Principal, sample_id: str, offset: int, limit: int) -> dict:
    """The participant view; for a participant token the population counts go through disclosure
    control (an AC of 1..20 would tell a person how many others carry their variant)."""
    released = principal.tier == Tier.PARTICIPANT
    with ctx.pool.store() as store:  # all pages of a view from one computation per index

        def view() -> list[dict]:
            table = store.participant(sample_id)
            if released:
                return released_participant(ctx, store, table)
            return [dict(r, suppressed=[]) for r in table.to_pylist()]

        rows = ctx.pool.remember(("participant", sample_id, released), view)
    return dict(page_of(rows[offset : offset + limit], len(rows), offset, limit), sample_id=sample_id)


@router.get(
    "/participants/{sample_id}",
    response_model=ParticipantAnswer,
    summary="One participant's ALT alleles with population frequencies",
)
def participant(
    request: Request,
    sample_id: Annotated[str, Path(max_length=200)],
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    if not (principal.tier == Tier.PARTICIPANT and principal.sample_id == sample_id):
        require(principal, Tier.CONTROLLED, "another participant's data")
    offset, limit = page_bounds(ctx, offset, limit)
    answer = _participant_page(ctx, principal, sample_id, offset, limit)
    rows_returned(request, len(answer["items"]))
    return answer


@router.get("/me", response_model=ParticipantAnswer, summary="The calling participant's own data")
def me(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 100,
    principal: Principal = Depends(caller),
    ctx: Context = Depends(context),
) -> dict:
    if principal.tier != Tier.PARTICIPANT:
        raise ApiError(403 if principal.tier != Tier.PUBLIC else 401, "/api/v1/me needs a participant token")
    offset, limit = page_bounds(ctx, offset, limit)
    answer = _participant_page(ctx, principal, principal.sample_id, offset, limit)
    rows_returned(request, len(answer["items"]))
    return answer
