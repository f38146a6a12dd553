"""The INFO and FORMAT fields a store keeps (VCF Zarr ``variant_<ID>``, ``call_<ID>``), read for queries.

Fields are named as bcftools names them: ``FORMAT/DP``, ``INFO/DP`` (``DP`` alone is the
INFO field where a query asks for INFO). A field is kept when some batch holds its array;
what a batch lacks, or a site a batch has no record of, reads as missing. Values keep the
arrays' coding (:mod:`genoquery.storage.format`): Integer int32 (-1 missing, -2 fill), Float
float32 (NaN ``0x7F800001`` missing, ``0x7F800002`` fill), String and Character text (``.``
missing, ``""`` fill), Flag bool. :func:`vcf_text` turns them back into VCF text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from genoquery.arrow import to_numpy
from genoquery.errors import QueryError
from genoquery.storage.batches import Batch
from genoquery.storage.format import FLOAT_FILL, FLOAT_MISSING, INT_FILL, INT_MISSING, STR_FILL, STR_MISSING

KINDS = {"INFO": "variant_", "FORMAT": "call_"}
_FLOAT_BITS = np.array([FLOAT_MISSING, FLOAT_FILL], dtype=np.float32).view(np.int32).tolist()


@dataclass(frozen=True)
class KeptField:
    """One kept field: ``kind`` INFO or FORMAT, its ``id``, and its header's Number, Type and Description."""

    kind: str
    id: str
    number: str
    type: str
    description: str

    @property
    def array(self) -> str:
        """The field's array in a batch's VCF Zarr group: ``variant_<ID>`` or ``call_<ID>``."""
        return KINDS[self.kind] + self.id

    @property
    def scalar(self) -> bool:
        """One value per site (INFO) or call (FORMAT): no trailing dimension."""
        return self.number in ("0", "1")

    @property
    def header_line(self) -> str:
        return f'##{self.kind}=<ID={self.id},Number={self.number},Type={self.type},Description="{self.description}">'

    @property
    def missing(self) -> object:
        return {"Integer": INT_MISSING, "Float": FLOAT_MISSING, "Flag": False}.get(self.type, STR_MISSING)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({"Integer": np.int32, "Float": np.float32, "Flag": bool}.get(self.type, object))


def kept_fields(batches: Sequence[Batch]) -> list[KeptField]:
    """Every INFO and FORMAT field some batch keeps, INFO first, each once (the first batch's header)."""
    found: dict[tuple[str, str], KeptField] = {}
    for batch in batches:
        group = batch.genotypes
        for name in sorted(group.array_keys()):
            attrs = group[name].attrs
            for kind, prefix in KINDS.items():
                key = kind.lower()
                if name.startswith(prefix) and f"{key}_number" in attrs:
                    field = KeptField(
                        kind, name[len(prefix) :], attrs[f"{key}_number"], attrs[f"{key}_type"], attrs["description"]
                    )
                    found.setdefault((kind, field.id), field)
    return sorted(found.values(), key=lambda f: f.kind != "INFO")


def resolve(batches: Sequence[Batch], names: Sequence[str], default_kind: str | None = None) -> list[KeptField]:
    """The kept fields ``names`` name (``FORMAT/DP``, ``INFO/DP``, or ``DP`` of ``default_kind``),
    in that order; a name the store does not keep is a :class:`QueryError` naming those it keeps."""
    kept = {(f.kind, f.id): f for f in kept_fields(batches)}
    out = []
    for name in names:
        kind, _, ident = name.rpartition("/")
        key = (kind.upper() or default_kind, ident)
        if key not in kept:
            known = ", ".join(f"{k}/{i}" for k, i in kept) or "none"
            raise QueryError(f"the store keeps no field {name!r}; it keeps: {known}")
        out.append(kept[key])
    return list(dict.fromkeys(out))


def batch_records(con: duckdb.DuckDBPyConnection, batch: Batch, lo: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch's records of the ``n`` site rows from ``lo``: their positions among those sites
    and their rows in the batch's arrays, in batch order."""
    rows = con.execute(
        "SELECT batch_row, site_row FROM batch_sites WHERE batch = ? AND site_row BETWEEN ? AND ? ORDER BY batch_row",
        [batch.number, lo, lo + n - 1],
    ).fetchnumpy()
    return rows["site_row"] - lo, rows["batch_row"]


def empty(field: KeptField, batches: Sequence[Batch], shape: tuple[int, ...]) -> np.ndarray:
    """A result of ``shape`` (plus the widest batch's trailing dimension) holding missing values."""
    widths = [b.genotypes[field.array].shape[-1] for b in batches if field.array in b.genotypes]
    tail = () if field.scalar else (max(widths, default=1),)
    return np.full(shape + tail, field.missing, dtype=field.dtype)


def put(out: np.ndarray, where: tuple, values: np.ndarray, field: KeptField) -> None:
    """Write a batch's ``values`` into ``out[where]``: a narrower trailing dimension is padded with fill."""
    if field.scalar:
        out[where] = values
        return
    width = values.shape[-1]
    out[(*where, slice(0, width))] = values
    out[(*where, slice(width, None))] = {"Integer": INT_FILL, "Float": FLOAT_FILL}.get(field.type, STR_FILL)


def read_info(
    con: duckdb.DuckDBPyConnection, batches: Sequence[Batch], field: KeptField, lo: int, n: int
) -> np.ndarray:
    """The INFO field's values at the ``n`` site rows from ``lo`` (sites, [width]); a site that
    several batches have takes the first batch's value."""
    out = empty(field, batches, (n,))
    for batch in reversed(batches):  # the first batch written last
        if field.array not in batch.genotypes:
            continue
        at, rows = batch_records(con, batch, lo, n)
        if len(at):
            put(out, (at,), batch.genotypes[field.array].get_orthogonal_selection((rows,)), field)
    return out


def vcf_text(field: KeptField, values: np.ndarray) -> np.ndarray:
    """The VCF text of each value (``values`` without the trailing dimension of a vector field):
    fill values dropped, an entirely missing value ``.``; Flags are ``True``/``False`` as they are."""
    if field.type == "Flag":
        return values
    return np.char.decode(vcf_bytes(field, values), "utf-8")


def vcf_bytes(field: KeptField, values: np.ndarray) -> np.ndarray:
    """:func:`vcf_text` of a field that is not a Flag, as UTF-8 bytes (numpy ``S``): each distinct
    value is formatted once and the vector's values joined by numpy's string ufuncs, so an export's
    millions of FORMAT values cost no Python string each."""
    if field.scalar:
        values = values[..., np.newaxis]
    flat = values.reshape(-1, values.shape[-1])
    kinds = _kinds(field, flat)
    distinct, inverse = np.unique(flat[kinds == 0], return_inverse=True)
    shown = str if field.type != "Float" else float_text
    table = np.array([b"."] + [shown(v).encode() for v in distinct.tolist()], dtype="S")
    texts = np.full(flat.shape, b"", dtype=table.dtype)  # fill: no text
    texts[kinds == 0] = table[1:][inverse]
    texts[kinds == 1] = b"."
    out = texts[:, 0]
    for j in range(1, flat.shape[1]):
        out = np.strings.add(np.strings.add(out, np.where(kinds[:, j] != 2, b",", b"")), texts[:, j])
    out[(kinds == 1).all(axis=1) | (out == b"")] = b"."
    return out.reshape(values.shape[:-1])


def float_text(value: float) -> str:
    """A float32 as the shortest text that reads back as it (``20``, ``10.5``)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def _kinds(field: KeptField, values: np.ndarray) -> np.ndarray:
    """Per value: 0 a value, 1 missing, 2 fill."""
    if field.type == "Float":
        bits = values.view(np.int32)
        return np.select([bits == _FLOAT_BITS[0], bits == _FLOAT_BITS[1]], [1, 2], 0)
    if field.type == "Integer":
        return np.select([values == INT_MISSING, values == INT_FILL], [1, 2], 0)
    return np.select([values == STR_MISSING, values == STR_FILL], [1, 2], 0)


def _arrow(field: KeptField, values: np.ndarray, vector: bool) -> pa.Array:
    """Values as an Arrow column, missing as null: one value a row, or (``vector``) a list a row
    without its fill values (null when every value is missing)."""
    if field.type == "Flag":
        return pa.array(values, pa.bool_())
    kind = {"Integer": pa.int32(), "Float": pa.float32()}.get(field.type, pa.string())
    kinds = _kinds(field, values)
    if not vector:
        return pa.array(values.tolist(), kind, mask=kinds != 0)
    rows = [
        [None if k == 1 else v for v, k in zip(row, marks, strict=True) if k != 2]
        for row, marks in zip(values.tolist(), kinds.tolist(), strict=True)
    ]
    return pa.array([r if any(v is not None for v in r) else None for r in rows], pa.list_(kind))


def with_info(
    con: duckdb.DuckDBPyConnection, batches: Sequence[Batch], table: pa.Table, kept: Sequence[KeptField]
) -> pa.Table:
    """``table`` (rows with ``site_row`` and ``allele``, 1-based ALT index) with a column
    ``info_<ID>`` per INFO field of ``kept``: Number=A the row's ALT allele's value, Number 0
    and 1 the site's value, other Numbers the site's list of values (fill dropped); missing is null."""
    sites = to_numpy(table["site_row"])
    alleles = to_numpy(table["allele"])
    lo = int(sites.min(initial=0))
    for field in kept:
        values = read_info(con, batches, field, lo, int(sites.max(initial=lo)) - lo + 1)[sites - lo]
        if field.number == "A":
            values = values[np.arange(len(values)), alleles - 1]
        table = table.append_column(
            f"info_{field.id}", _arrow(field, values, vector=field.number not in ("0", "1", "A"))
        )
    return table
