"""VCF FORMAT fields as VCF Zarr ``call_<ID>`` arrays, with bio2zarr's conventions.

Which fields are kept: every FORMAT field the batch's headers declare but GT (``call_genotype``)
and those of Number=G (genotype likelihoods such as PL and GL: a value per genotype per sample,
the largest arrays of a callset), unless ``--fields`` names the fields to keep
(:func:`select_fields`). Values are read by htslib (cyvcf2's ``Variant.format``), which also
checks them as bcftools does, and stored as :mod:`genoquery.ingest.info_arrays` stores INFO
values: Integer as int32 (-1 missing, -2 fill), Float as float32 (the NaNs ``0x7F800001``
missing, ``0x7F800002`` fill: htslib's own missing and vector-end values), String and Character
as text (``.`` missing, ``""`` fill; a Number other than 1 is split at commas, as bio2zarr does).
Shapes are (variants, samples) for Number=1, else (variants, samples, width) with the trailing
dimension ``alleles`` (R), ``alt_alleles`` (A) or ``FORMAT_<ID>_dim``. A sample whose column
stops before the field (VCF allows trailing fields to be dropped) is missing, then fill; a
record whose FORMAT lacks the field is missing in every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genoquery.errors import InputFileError
from genoquery.ingest.info_arrays import kept_fields
from genoquery.ingest.vcf_source import HeaderField, VcfSource
from genoquery.storage.format import FLOAT_FILL, FLOAT_MISSING, INT_FILL, INT_MISSING, STR_FILL, STR_MISSING

HTSLIB_INT_MISSING, HTSLIB_INT_END = -(2**31), -(2**31) + 1  # bcf_int32_missing, bcf_int32_vector_end
NOT_BY_DEFAULT = "G"  # the Number of fields kept only when --fields names them
CALL_ARRAYS = {"genotype", "genotype_phased", "genotype_mask"}  # call_<ID> names VCF Zarr gives GT


@dataclass(frozen=True)
class CallField:
    """How one FORMAT field is stored: ``call_<ID>``, its dtype and missing/fill values."""

    field: HeaderField

    @property
    def name(self) -> str:
        return f"call_{self.field.id}"

    @property
    def scalar(self) -> bool:
        """One value per call (Number=1): no trailing dimension."""
        return self.field.number == "1"

    @property
    def dims(self) -> tuple[str, ...]:
        if self.scalar:
            return ("variants", "samples")
        extra = {"A": "alt_alleles", "R": "alleles"}.get(self.field.number, f"FORMAT_{self.field.id}_dim")
        return ("variants", "samples", extra)

    @property
    def dtype(self) -> np.dtype:
        return {"Integer": np.dtype(np.int32), "Float": np.dtype(np.float32)}.get(self.field.kind, np.dtype(object))

    @property
    def missing(self) -> object:
        return {"i": INT_MISSING, "f": FLOAT_MISSING}.get(self.dtype.kind, STR_MISSING)

    @property
    def fill(self) -> object:
        return {"i": INT_FILL, "f": FLOAT_FILL}.get(self.dtype.kind, STR_FILL)

    def width(self, max_alleles: int, longest: int) -> int:
        """The trailing dimension's final size: alleles for R, ALT alleles for A, else the
        header's count or the most values any record gave (``longest``), at least 1."""
        fixed = {"R": max_alleles, "A": max(1, max_alleles - 1)}.get(self.field.number)
        if fixed is not None:
            return fixed
        count = int(self.field.number) if self.field.number.isdigit() else 1
        return max(1, count, longest)

    @property
    def attributes(self) -> dict:
        """Description as bio2zarr; Number and Type as declared, for rewrites of the group."""
        return {
            "description": self.field.description,
            "format_number": self.field.number,
            "format_type": self.field.kind,
        }


def select_fields(
    sources: Sequence[VcfSource], names: Sequence[str] | None
) -> tuple[list[HeaderField], list[CallField], list[str]]:
    """The INFO and FORMAT fields to keep (first declaration of each ID), and the fields not kept
    with why or how to keep them.

    ``names`` are bcftools-style (``INFO/AC``, ``FORMAT/DP``); None keeps every INFO field and
    every FORMAT field but those of Number=G. GT is always kept (as ``call_genotype``). A name the
    headers do not declare is an error naming the fields they do.
    """
    infos, refused = kept_fields([f for s in sources for f in s.info_fields])
    formats: dict[str, HeaderField] = {}
    for field in (f for s in sources for f in s.format_fields if f.id != "GT"):
        formats.setdefault(field.id, field)
    declared = [f"INFO/{f.id}" for f in infos] + [f"FORMAT/{i}" for i in formats]
    unknown = [n for n in names or () if n not in declared and n != "FORMAT/GT"]
    if unknown:
        raise InputFileError(
            sources[0].path,
            f"--fields names {', '.join(unknown)}, which the header does not declare "
            f"(it declares {', '.join([*declared, 'FORMAT/GT'])})",
            fix="name fields as INFO/ID or FORMAT/ID, as bcftools does",
        )
    wanted = set(declared if names is None else names)
    kept_info = [f for f in infos if f"INFO/{f.id}" in wanted]
    dropped = [f"INFO/{f.id}" for f in infos if f"INFO/{f.id}" not in wanted]
    kept_format = []
    for key, field in formats.items():
        if key.lower() in CALL_ARRAYS:
            refused.append(f"FORMAT/{key} (its array would be VCF Zarr's call_{key})")
        elif f"FORMAT/{key}" in wanted and (names is not None or field.number != NOT_BY_DEFAULT):
            kept_format.append(CallField(field))
        else:
            dropped.append(f"FORMAT/{key}")
    if dropped:
        refused.append(f"{', '.join(dropped)} (to keep them, name them in --fields)")
    return kept_info, kept_format, refused


def call_values(spec: CallField, values: np.ndarray | None, n_samples: int, n_alleles: int, where: dict) -> np.ndarray:
    """One record's values of a field as htslib returns them (``Variant.format``: (samples, k),
    or text per sample; None when the record's FORMAT lacks the field) in VCF Zarr coding:
    (samples,) for Number=1, else (samples, k). ``where`` (``path``, ``line``) names the record in
    errors: more values than the field's Number allows at the record (1, ALT alleles, alleles)."""
    if values is None:
        return np.full(n_samples if spec.scalar else (n_samples, 1), spec.missing, dtype=spec.dtype)
    if spec.dtype.kind == "O":
        texts = values.astype(object).reshape(-1)
        if spec.scalar:
            return texts
        items = [t.split(",") for t in texts]
        out = np.full((len(items), max(map(len, items))), STR_FILL, dtype=object)
        for sample, parts in enumerate(items):
            out[sample, : len(parts)] = parts
    else:
        out = values.reshape(n_samples, -1)
        if spec.dtype.kind == "i":
            out = np.where(out == HTSLIB_INT_MISSING, INT_MISSING, np.where(out == HTSLIB_INT_END, INT_FILL, out))
        out = out.astype(spec.dtype, copy=False)
    allowed = {"1": 1, "A": n_alleles - 1, "R": n_alleles}.get(spec.field.number)
    if allowed is not None and out.shape[1] > max(1, allowed):
        raise InputFileError(
            **where,
            problem=f"FORMAT/{spec.field.id} has {out.shape[1]} values where Number={spec.field.number} "
            f"allows {allowed}",
            fix="correct the value or its ##FORMAT header line",
        )
    return out[:, 0] if spec.scalar else out
