"""Typed request and response bodies, so the OpenAPI document says exactly what comes back.

A count the disclosure rule withholds is the string ``"<=20"`` (the threshold is
configurable) and its name is listed in the row's ``suppressed``; a withheld AF or
statistic is ``null``, also listed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

Count = int | str | None  # an exact or rounded count, or the suppression marker "<=20"


class Page(BaseModel):
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
    suppressed: list[str] = Field(default_factory=list, description="cells withheld by disclosure control")


class VariantPage(Page):
    cohort_size: Count = Field(
        description="samples in the cohort (rounded in aggregate tiers, where the rows of a `by` group that "
        "fails the cohort rules are left out)"
    )
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
    suppressed: list[str] = Field(default_factory=list)


class ParticipantAnswer(Page):
    sample_id: str
    items: list[ParticipantRow]


class TableAnswer(Page):
    """Rows of an association, PheWAS or carrier table (columns as in the Python API)."""

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


class CohortOut(BaseModel):
    name: str
    kind: Literal["filter", "ids"]
    scope: Literal["store", "token"] = Field(description="saved in the store, or defined through this API")
    definition: str | None = Field(description="the filter; null for sample lists below the controlled tier")
    size: Count


class CohortList(BaseModel):
    items: list[CohortOut]


class StoreInfo(BaseModel):
    samples: int | str = Field(
        description='samples not withdrawn; below the controlled tier randomly rounded (or "<=20")'
    )
    sites: int
    variants: int
    contigs: list[str]
    groupings: list[str]
    tool: str
    tier: str = Field(description="the caller's tier")
    budget_remaining: int | None = Field(description="answers about rare alleles left in this window; null: unbudgeted")
    disclosure: dict[str, int]


class Health(BaseModel):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS = {s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 422, 429)}
