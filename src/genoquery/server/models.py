"""Typed request and response bodies, so the OpenAPI document says exactly what comes back.

Every ``/api/v1`` answer is schema :data:`API_SCHEMA` (its ``schema`` field): a count is
always a JSON integer or ``null``. A count the disclosure rule withholds (1..20; the
threshold is configurable) is ``null`` and named in the ``suppressed`` list beside it (the
row's, or the answer's for ``cohort_size``, ``samples`` and ``size``); so is a withheld AF or
statistic. A ``null`` not named there has no value (AF with AN = 0, a size not given).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

API_SCHEMA = "genoquery.api/1"
"""The version of the JSON answers' shape; a change that breaks a client gets a new number."""
Count = int | None  # an exact or rounded count; null when withheld (named in `suppressed`) or not given
SUPPRESSED = "cells withheld by disclosure control: each is null here"


class Versioned(BaseModel):
    """An ``/api/v1`` answer: it names its schema version."""

    api_schema: Literal["genoquery.api/1"] = Field(
        API_SCHEMA, alias="schema", description="version of this answer's shape (docs/architecture.md, Server)"
    )


class Page(Versioned):
    total: int = Field(description="rows in the whole answer")
    offset: int
    limit: int
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


class VariantRow(BaseModel):
    model_config = ConfigDict(extra="allow")  # the group column of a `by` breakdown
    variant_key: str
    contig: str
    pos: int
    ref: str
    alt: str
    id: str | None
    filter: str | None
    qual: float | None
    allele: int
    ac: Count
    an: Count
    af: float | None
    n_het: Count
    n_hom_alt: Count
    n_hemi: Count
    n_missing: Count
    suppressed: list[str] = Field(default_factory=list, description=SUPPRESSED)


class VariantPage(Page):
    cohort_size: Count = Field(
        description="samples in the cohort (rounded in aggregate tiers, where the rows of a `by` group that "
        "fails the cohort rules are left out)"
    )
    suppressed: list[str] = Field(default_factory=list, description=SUPPRESSED + " (`cohort_size`)")
    items: list[VariantRow]


class CarrierRow(BaseModel):
    variant_key: str
    sample_id: str
    zygosity: Literal["het", "hom_alt", "hemi", "partial"]
    allele_copies: int
    gt: str


class CarrierPage(Page):
    items: list[CarrierRow]


class GenotypeSite(BaseModel):
    variant_key: str = Field(description="the site: contig-pos-ref-alts (ALT alleles comma-separated)")
    contig: str
    pos: int
    alleles: list[str]
    gt: list[str] = Field(description="VCF GT text per sample, in the order of sample_ids")
    fields: dict[str, list[str] | str | bool] = Field(
        default_factory=dict,
        description="the kept fields asked for (`fields=`), by KIND/ID: a FORMAT field's VCF text per "
        "sample in the order of sample_ids, an INFO field's VCF text (a Flag: true or false)",
    )


class GenotypeAnswer(Page):
    sample_ids: list[str]
    items: list[GenotypeSite]


class ParticipantRow(BaseModel):
    model_config = ConfigDict(extra="allow")  # ancestry columns when the store has them
    variant_key: str
    zygosity: str
    gt: str
    allele_copies: int
    ac: Count
    an: Count
    af: float | None
    suppressed: list[str] = Field(default_factory=list, description=SUPPRESSED)


class ParticipantAnswer(Page):
    sample_id: str
    items: list[ParticipantRow]


class TableAnswer(Page):
    """Rows of an association, PheWAS or carrier table (columns as in the Python API). Counts
    (n, n_cases, n_controls, ac, an, mac, n_carriers, case_ac, n_variants, the 2x2 cells) are
    integers or null; below the controlled tier each row's ``suppressed`` names its withheld cells."""

    items: list[dict[str, float | int | str | bool | list[str] | None]]


class CohortIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
    definition: str | None = Field(
        None,
        max_length=4000,
        validation_alias=AliasChoices("definition", "filter"),
        description="a filter expression over the person table (as GET returns it; `filter` is accepted too)",
    )
    samples: list[str] | None = Field(None, max_length=100_000, description="sample IDs (controlled tier)")


class CohortOut(Versioned):
    name: str
    kind: Literal["filter", "ids"]
    scope: Literal["store", "token"] = Field(description="saved in the store, or defined through this API")
    definition: str | None = Field(description="the filter; null for sample lists below the controlled tier")
    size: Count = Field(description="members; null when not given (listings below the controlled tier) or withheld")
    suppressed: list[str] = Field(default_factory=list, description=SUPPRESSED + " (`size`)")


class CohortList(Versioned):
    items: list[CohortOut]


class StoreInfo(Versioned):
    samples: Count = Field(description="samples not withdrawn; below the controlled tier randomly rounded")
    suppressed: list[str] = Field(default_factory=list, description=SUPPRESSED + " (`samples`)")
    sites: int
    variants: int
    contigs: list[str]
    groupings: list[str]
    tool: str
    tier: str = Field(description="the caller's tier")
    budget_remaining: int | None = Field(description="answers about rare alleles left in this window; null: unbudgeted")
    disclosure: dict[str, int]


class Health(Versioned):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS = {s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 422, 429)}
