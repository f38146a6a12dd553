"""VCF INFO fields as VCF Zarr ``variant_<ID>`` arrays, with bio2zarr's conventions.

Every INFO field the batch's headers declare is kept (issue 17: nothing dropped silently),
except one whose ID would take a name VCF Zarr reserves (``variant_position`` ...), which is
reported instead. Its array's shape follows the header's Number: ``1`` and Flags one value per
record; ``A`` a column per ALT allele (``alt_alleles``), ``R`` per allele (``alleles``); a count
``N``, ``G`` or ``.`` as many columns as the longest value (``INFO_<ID>_dim``). Types: Integer
as int32 (-1 missing, -2 fill), Float as float32 (missing and fill the NaNs ``0x7F800001`` and
``0x7F800002``), String and Character as text (``.`` missing, ``""`` fill), Flag as bool. A
field absent from a record is missing in every column; a shorter value is padded with fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoquery.errors import InputFileError
from genoquery.ingest.vcf_source import HeaderField
from genoquery.storage.format import FLOAT_FILL, FLOAT_MISSING, INT_FILL, INT_MISSING, STR_FILL, STR_MISSING

RESERVED = {"position", "contig", "length", "allele", "id", "id_mask", "quality", "filter"}


@dataclass(frozen=True)
class InfoArray:
    """How one INFO field is stored: its array ``name``, ``dims``, ``width`` (None: one value per
    record), ``dtype`` and the ``missing``/``fill`` values."""

    field: HeaderField
    width: int | None
    dtype: object
    missing: object
    fill: object

    @property
    def name(self) -> str:
        return f"variant_{self.field.id}"

    @property
    def dims(self) -> tuple[str, ...]:
        if self.width is None:
            return ("variants",)
        extra = {"A": "alt_alleles", "R": "alleles"}.get(self.field.number, f"INFO_{self.field.id}_dim")
        return ("variants", extra)

    @property
    def shape_tail(self) -> tuple[int, ...]:
        return () if self.width is None else (self.width,)


def kept_fields(declared: list[HeaderField]) -> tuple[list[HeaderField], list[str]]:
    """The fields to keep (first declaration of each ID) and the IDs refused, with why."""
    kept, refused, seen = [], [], set()
    for field in declared:
        if field.id in seen:
            continue
        seen.add(field.id)
        if field.id.lower() in RESERVED:
            refused.append(f"INFO/{field.id} (its array would be VCF Zarr's variant_{field.id})")
        else:
            kept.append(field)
    return kept, refused


def parse_info(text: str | None) -> dict[str, str | None]:
    """``KEY=VALUE;FLAG`` as a dict (a Flag's value is None); ``.`` or None is empty."""
    if text is None or text == ".":
        return {}
    out: dict[str, str | None] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        out[key] = value if sep else None
    return out


def layout(field: HeaderField, max_alleles: int, longest: int) -> InfoArray:
    """The array of ``field`` for a batch whose widest record has ``max_alleles`` alleles and
    whose longest value of this field has ``longest`` comma-separated items."""
    kind = field.kind
    if kind == "Flag":
        return InfoArray(field, None, bool, False, False)
    widths = {"1": None, "A": max(1, max_alleles - 1), "R": max_alleles}
    width = widths[field.number] if field.number in widths else max(1, longest)
    if field.number.isdigit() and int(field.number) > 1:
        width = max(int(field.number), longest)
    if kind == "Integer":
        return InfoArray(field, width, np.int32, INT_MISSING, INT_FILL)
    if kind == "Float":
        return InfoArray(field, width, np.float32, FLOAT_MISSING, FLOAT_FILL)
    return InfoArray(field, width, str, STR_MISSING, STR_FILL)


def values(spec: InfoArray, infos: list[dict], n_alleles: list[int], where) -> np.ndarray:
    """The array rows of records whose parsed INFO are ``infos`` and which have ``n_alleles``
    alleles each; ``where(row)`` names a record in errors (``path`` and ``line`` of
    :class:`InputFileError`)."""
    field = spec.field
    shape = (len(infos), *spec.shape_tail)
    out = np.full(shape, spec.missing, dtype=object if spec.dtype is str else spec.dtype)
    if spec.dtype is bool:
        out[:] = [field.id in info for info in infos]
        return out
    for row, info in enumerate(infos):
        if field.id not in info:
            continue
        text = info[field.id]
        items = [text] if spec.width is None else (text or "").split(",")
        allowed = {"A": n_alleles[row] - 1, "R": n_alleles[row]}.get(field.number, spec.width)
        if spec.width is not None and len(items) > allowed:
            raise InputFileError(
                **where(row),
                problem=f"INFO/{field.id} has {len(items)} values where Number={field.number} allows {allowed}",
                fix="correct the value or its ##INFO header line",
            )
        if spec.width is not None and len(items) < spec.width:
            out[row, len(items) :] = spec.fill
        for k, item in enumerate(items):
            if item in (".", None) or (spec.dtype is str and item == ""):
                continue
            try:
                value = item if spec.dtype is str else spec.dtype(int(item) if spec.dtype is np.int32 else float(item))
            except (ValueError, OverflowError):
                raise InputFileError(
                    **where(row),
                    problem=f"INFO/{field.id} value {item!r} is not of Type={field.kind}",
                    fix="correct the value or its ##INFO header line",
                ) from None
            if spec.width is None:
                out[row] = value
            else:
                out[row, k] = value
    return out


def longest_values(texts: list[str | None], fields: list[HeaderField]) -> dict[str, int]:
    """Per field, the most comma-separated items any of ``texts`` gives it."""
    longest = dict.fromkeys((f.id for f in fields), 0)
    for text in texts:
        for key, value in parse_info(text).items():
            if key in longest and value is not None:
                longest[key] = max(longest[key], value.count(",") + 1)
    return longest
