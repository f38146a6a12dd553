"""Per-allele regressions of a phenotype on additive dosage plus covariates, vectorised across alleles.

Samples with a missing genotype are excluded from that allele's test (PLINK 2's rule),
exactly: statistics over all analysed samples are computed once, and each allele's
missing samples are subtracted from them.

**Linear** (OLS, t test). The covariates ``C`` (n, k) are orthonormalised once
(``C = QR``) and the phenotype residualised once, ``y* = y - Q Q'y`` (this changes
only the covariates' coefficients). Per allele with dosage ``g`` over the samples
``S`` it is called in, with ``G = Q_S'Q_S = I - Q_m'Q_m`` (``m``: its missing samples):
``gMg = g'g - g'Q G^-1 Q'g``, ``gMy = g'y* - g'Q G^-1 Q_S'y*``, ``yMy = y*_S'y*_S -
y*_S'Q_S G^-1 Q_S'y*_S``; ``beta = gMy / gMg``, ``se^2 = (yMy - beta gMy) / (|S| - k - 1) / gMg``.
The sums over ``g`` visit carriers only, those over ``m`` missing samples only (one
compiled pass per batch), so a rare allele costs its few calls; a dense site's ALT 1 is
summed from its 2-bit codes, never listed: decoded a tile of samples at a time into an L1
buffer of dosages and multiplied there by the samples' covariates, phenotype and counts, its
two-copy calls counted as bit masks (:func:`coded_products`).

**Logistic** (Wald z test). Newton-Raphson (IRLS) on a batch of alleles at once, each
from the null model's coefficients, one compiled pass over the samples per allele and step
(memory O(alleles x k^2)); an allele whose carriers are all cases or all controls
(quasi-complete separation: no finite MLE), or whose fit has not converged after
``MAX_ITER`` steps or drifts beyond ``MAX_LOGIT``, is refitted with Firth's penalised
likelihood (Jeffreys prior, ``l(b) + log|I(b)| / 2``), as PLINK 2's ``firth-fallback``
does, with step halving on the penalised likelihood; its standard error is from the
penalised fit's information matrix.

**Score test** (optional: ``test="score"``, or a prescreen). The null model (covariates only)
is fitted once; an allele's score is ``U = g'(y - mu)`` and its efficient information
``V = g'Wg - g'WX (X'WX)^-1 X'Wg`` (``W = diag(mu (1 - mu))``), summed over its carriers only;
``U^2 / V`` is chi-squared with one degree of freedom. An allele with missing calls has the null
model refitted over its called samples first (Newton from the common null, a pass over the
samples per step), so its statistic is exactly the score test on the samples it is called in.
With a prescreen threshold, alleles whose score p is at most the threshold get the exact fit
above; the others keep their score test.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from scipy import special

from genoquery.deadline import check
from genoquery.errors import QueryError
from genoquery.query.association.design import Design
from genoquery.query.association.dosages import AlleleDosages, CodedAlleles
from genoquery.storage.call_codes import code_bits, popcount, two_copies

MAX_ITER = 50  # Newton steps of a plain logistic fit before it is declared not converged
FIRTH_MAX_ITER = 500  # Firth steps converge linearly near some optima (0.65-0.9 per step): cheap, few alleles
TOLERANCE = 1e-10  # largest coefficient change at convergence
MAX_STEP = 5.0  # largest coefficient change per Newton step (logistf's maxstep)
MAX_LOGIT = 30.0  # |coefficient| beyond which a plain fit is treated as diverging (separation)
OK, TOO_FEW, NOT_CONVERGED, FIRTH_SEPARATED, FIRTH_NOT_CONVERGED, COLLINEAR, SEPARATED = (
    "ok",
    "too_few_carriers",
    "not_converged",
    "firth_separated",
    "firth_nonconvergence",
    "collinear",
    "separated",  # a score-tested allele whose carriers are all cases or all controls
)
TESTS = ("wald", "score")  # the logistic statistics a caller chooses (``test=``)


@dataclass(frozen=True)
class AlleleCounts:
    """Per allele over its analysed samples: ``n`` (called), ``ac`` (ALT copies), ``an``
    (called alleles, haploid calls count one), ``n_carriers``, ``case_ac`` (copies in cases, binary traits)."""

    n: np.ndarray
    ac: np.ndarray
    an: np.ndarray
    n_carriers: np.ndarray
    case_ac: np.ndarray
    case_carriers: np.ndarray
    case_n: np.ndarray


@dataclass(frozen=True)
class Fit:
    """Per allele: ``beta`` (log odds ratio for logistic), ``se``, ``statistic`` (t or z),
    ``p``, ``status``, ``firth`` (whether the Firth fit is reported) and ``test`` (the test of
    ``statistic`` and ``p``: t, wald, firth or score; None when there is none)."""

    beta: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p: np.ndarray
    status: np.ndarray
    firth: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class NullModel:
    """The logistic null model over the analysed samples: ``rows`` (store samples, 2 + k) float64,
    each sample's ``y - mu``, ``mu (1 - mu)`` and covariates ``x`` (zeros for a sample outside the
    analysis); the information ``xwx = X'WX`` (k, k), score ``xr = X'(y - mu)`` (k,) and
    log-likelihood ``loglik`` (nats)."""

    rows: np.ndarray
    xwx: np.ndarray
    xr: np.ndarray
    loglik: float


class Covariates:
    """The analysed samples' orthonormal covariate basis and residualised phenotype."""

    def __init__(self, design: Design, n_samples: int) -> None:
        q = orthonormal_basis(design.covariates)
        if q is None:
            raise QueryError(
                f"the covariates {', '.join(design.names[1:])} are collinear among the "
                f"{len(design.y)} analysed samples; leave one out"
            )
        self.design = design
        self.q = q
        self.y_star = design.y - q @ (q.T @ design.y)
        # once, not per block: OpenBLAS runs a dot product of 10^6 on two threads, whose spinning
        # afterwards cost ~2 s of CPU over a 1 Mb scan's 66 blocks (OPENBLAS_NUM_THREADS=1: 3.9 s, else 5.9 s)
        self.yy = float(self.y_star @ self.y_star)
        self.row = np.full(n_samples, -1, dtype=np.int64)  # store sample index -> analysed row
        self.row[design.samples] = np.arange(len(design.samples))
        self._weights: dict[tuple[int, int, int], np.ndarray] = {}
        self._columns: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._null: dict[bytes, NullModel] = {}

    def weights(self, offset: int, n: int, y: np.ndarray) -> np.ndarray:
        """(n, 3 + k) float64 C-ordered, for the store samples ``offset`` .. ``offset + n - 1`` (a
        genotype batch) in sample order: columns analysed (0/1), case (0/1), ``y`` (``y`` or
        ``y*``), then ``Q``; a row of zeros for a sample outside the analysis."""
        key = (offset, n, id(y))
        if key not in self._weights:
            at, rows = self._analysed(offset, n)
            w = np.zeros((n, 3 + self.q.shape[1]))
            w[at, 0] = 1.0
            if self.design.binary:
                w[at, 1] = self.design.y[rows]
            w[at, 2] = y[rows]
            w[at, 3:] = self.q[rows]
            self._weights[key] = w
        return self._weights[key]

    def _analysed(self, offset: int, n: int) -> tuple[slice | np.ndarray, slice | np.ndarray]:
        """(positions among the store samples ``offset`` .. ``offset + n - 1``, their analysed rows)
        of the analysed ones among them: slices when they are a run of consecutive analysed rows (every
        sample analysed), so the weights are copied, not gathered by a mask (0.19 s at 10^6 samples)."""
        row = self.row[offset : offset + n]
        at = np.flatnonzero(row >= 0)
        if len(at) and at[-1] - at[0] == len(at) - 1 and row[at[-1]] - row[at[0]] == len(at) - 1:
            first, last = int(at[0]), int(at[-1]) + 1
            return slice(first, last), slice(int(row[first]), int(row[first]) + len(at))
        return at, row[at]

    def columns(self, offset: int, n: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The weights of :meth:`weights` as dense code rows are summed against them, made once
        per batch: (3 + k, 4 ceil(n / 4)) float64 C-ordered, a column per row, zero past ``n``,
        and the analysed and case columns as :func:`~genoquery.storage.call_codes.code_bits` (2,
        ceil(n / 4)). Without a binary trait the case column, all zeros, is left out (2 + k rows:
        :meth:`coded_sums`)."""
        key = (offset, n, id(y))
        if key not in self._columns:
            at, rows = self._analysed(offset, n)
            binary = self.design.binary
            columns = np.zeros((2 + binary + self.q.shape[1], (n + 3) // 4 * 4))
            columns[0, at] = 1.0
            if binary:
                columns[1, at] = self.design.y[rows]
            columns[1 + binary, at] = y[rows]
            columns[2 + binary :, at] = self.q[rows].T
            analysed = columns[:1, :n] != 0
            case = columns[1:2, :n] != 0 if binary else np.zeros_like(analysed)
            self._columns[key] = columns, code_bits(np.concatenate([analysed, case]))
        return self._columns[key]

    def coded_sums(self, coded: CodedAlleles, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`coded_products` of the code rows against :meth:`columns`, with the columns of
        :meth:`weights` (a zero case column put back without a binary trait: the dense-code kernel
        sums 6 columns, 3 passes of two, instead of 7, 4 passes, with 3 covariates)."""
        dose, two = coded_products(
            coded.codes, coded.haploid, coded.pattern, *self.columns(coded.offset, coded.haploid.shape[1], y)
        )
        return (dose if self.design.binary else np.insert(dose, 1, 0.0, axis=1)), two

    def null_model(self, x: np.ndarray, null: np.ndarray) -> NullModel:
        """The logistic null model (coefficients ``null`` on the covariates ``x`` of the analysed
        samples) as :class:`NullModel`; made once per scan."""
        key = null.tobytes()
        if key not in self._null:
            eta = x @ null
            mu, y = special.expit(eta), self.design.y
            rows = np.zeros((len(self.row), 2 + x.shape[1]))
            used = self.design.samples
            rows[used, 0], rows[used, 1], rows[used, 2:] = y - mu, mu * (1 - mu), x
            loglik = float(np.sum(y * eta - np.logaddexp(0, eta)))
            self._null = {key: NullModel(rows, (x * (mu * (1 - mu))[:, None]).T @ x, x.T @ (y - mu), loglik)}
        return self._null[key]


def orthonormal_basis(x: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis (n, k) C-ordered of the columns of ``x`` (n, k) by Householder QR, None
    when they are collinear (``|r_jj| <= 1e-10 max |r_jj|``)."""
    q, r = np.linalg.qr(x)
    diag = np.abs(np.diag(r))
    return np.ascontiguousarray(q) if diag.min() > 1e-10 * diag.max() else None


@intrinsic
def _prefetch(typingctx, rows, row, column):  # pragma: no cover - compiled
    """Asks the CPU to load ``rows[row, column]``'s cache line (LLVM's prefetch: read, kept in
    every cache level) without waiting for it, as numba cannot."""

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        at = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1], args[2]])
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        read, all_levels, data = ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)
        builder.call(function, [builder.bitcast(at, byte), read, all_levels, data])
        return context.get_dummy_value()

    return types.void(rows, row, column), codegen


PREFETCH_AHEAD = 32
"""Listed calls whose weights row :func:`_sums` asks for ahead of its use. At 10^6 samples the
weights (56 MB) are out of the caches and each call's row a cache miss: 1.9 M calls, 55-69 ms
without, 32-40 ms prefetching the row's first line 8-64 calls ahead, 21 ms both of its lines 32
ahead, 25 ms 16 ahead."""


@numba.njit(nogil=True, cache=True)
def _sums(
    w, haploid, pattern, carrier, sample, dosage, missing, missing_sample, counts, qg, gg, gy, qm, qy_m, yy_m
):  # pragma: no cover - compiled
    """Per allele ``a``: ``counts[a]`` = (missing, ac, carriers, haploid missing, case ac, case
    carriers, case missing); over carriers ``qg = Q'g``, ``gg``, ``gy``; over missing samples
    ``qm = Q_m'Q_m`` (upper triangle), ``qy_m = Q_m'y``, ``yy_m = y_m'y_m``. ``w`` holds each store
    sample's weights (:meth:`Covariates.weights`): one row read per listed call, not four arrays,
    its first and last element (the row's cache lines, up to 8 columns) prefetched
    :data:`PREFETCH_AHEAD` calls ahead. Samples outside the analysis are skipped."""
    k, last = w.shape[1] - 3, w.shape[1] - 1
    for a in range(len(carrier) - 1):
        for c in range(carrier[a], carrier[a + 1]):
            if c + PREFETCH_AHEAD < len(sample):
                _prefetch(w, sample[c + PREFETCH_AHEAD], 0)
                _prefetch(w, sample[c + PREFETCH_AHEAD], last)
            ws = w[sample[c]]
            if ws[0] == 0.0:
                continue
            d = dosage[c]
            case = np.int64(ws[1])
            counts[a, 1] += d
            counts[a, 2] += 1
            counts[a, 4] += d * case
            counts[a, 5] += case
            gg[a] += d * d
            gy[a] += d * ws[2]
            for i in range(k):
                qg[a, i] += d * ws[3 + i]
        p = pattern[a]
        for m in range(missing[a], missing[a + 1]):
            s = missing_sample[m]
            if m + PREFETCH_AHEAD < len(missing_sample):
                _prefetch(w, missing_sample[m + PREFETCH_AHEAD], 0)
                _prefetch(w, missing_sample[m + PREFETCH_AHEAD], last)
            ws = w[s]
            if ws[0] == 0.0:
                continue
            y = ws[2]
            counts[a, 0] += 1
            counts[a, 6] += np.int64(ws[1])
            if p >= 0 and haploid[p, s]:
                counts[a, 3] += 1
            yy_m[a] += y * y
            for i in range(k):
                qy_m[a, i] += ws[3 + i] * y
                for j in range(i, k):  # upper triangle; the caller mirrors it
                    qm[a, i, j] += ws[3 + i] * ws[3 + j]


TILE_BYTES = 128
"""Code bytes (512 samples) per tile of :func:`_coded_sums`: the weights' tile (7 columns: 28 KB)
stays in L1/L2 while every code row is decoded and multiplied against it. 200 rows x 10^5
samples: 13.5 ms in 128-byte tiles, 14.6 ms in 256, 16.5 ms in 512."""
# Per code byte (4 samples, sample s at bits 2 * (s % 4)), flattened: each sample's ALT 1 copies (at
# 4 * byte + s), 0 unless coded 1 or 2
BYTE_DOSES = np.array([(b >> 2 * i & 3) * ((b >> 2 * i & 3) < 3) for b in range(256) for i in range(4)], np.float64)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _coded_sums(codes, doses, hap_bits, pattern, masks, columns, out, two):  # pragma: no cover - compiled
    """Adds to ``out[t]`` the dosages of code row ``t`` times each weight column (``columns``) and to
    ``two[t]`` the (analysed, case) counts of its two-copy calls; see :func:`coded_products`.

    Per tile of :data:`TILE_BYTES` code bytes, four rows at a time: each row's bytes are decoded
    to float64 dosages in an L1 buffer (a byte's four copied from ``doses``, :data:`BYTE_DOSES`;
    haploid calls coded 2 less one), its two-copy calls counted 32 samples per uint64
    (:func:`~genoquery.storage.call_codes.two_copies`, less the haploid ones of ``hap_bits``)
    against the ``masks``, popcounted, then the four rows are multiplied by two weight columns
    per pass (eight independent sums). No float matrix is assembled and no BLAS call made: 200
    rows x 10^5 samples, 13.5 ms against 19 ms decoding 64 x 2048 tiles and multiplying them with
    OpenBLAS (whose second thread, beside the thread reading the next block, cost more CPU than it
    saved); counting the two-copy calls by word, not by byte, made it 1.1-1.26x faster."""
    rows, n_bytes = codes.shape
    n_columns = columns.shape[0]
    dose = np.zeros((4, 4 * TILE_BYTES))
    diploid = np.zeros(n_bytes, dtype=np.uint8)
    for lo in range(0, n_bytes, TILE_BYTES):
        hi = min(n_bytes, lo + TILE_BYTES)
        m, first, whole = 4 * (hi - lo), 4 * lo, lo + (hi - lo) // 8 * 8
        used_words, case_words = masks[0, lo:whole].view(np.uint64), masks[1, lo:whole].view(np.uint64)
        for t0 in range(0, rows, 4):
            block = min(4, rows - t0)
            for i in range(block):
                t = t0 + i
                row, byte_row, p = dose[i], codes[t], pattern[t]
                for b in range(lo, hi):
                    at, j = 4 * np.intp(byte_row[b]), 4 * (b - lo)
                    row[j], row[j + 1], row[j + 2], row[j + 3] = doses[at], doses[at + 1], doses[at + 2], doses[at + 3]
                haploid = hap_bits[p] if p >= 0 else diploid
                if p >= 0:
                    for b in range(lo, hi):  # haploid calls coded 2: one copy
                        hap = two_copies(np.uint64(byte_row[b])) & np.uint64(haploid[b])
                        for q in range(4):
                            row[4 * (b - lo) + q] -= np.float64(hap >> np.uint64(2 * q) & np.uint64(1))
                words, hap_words = byte_row[lo:whole].view(np.uint64), haploid[lo:whole].view(np.uint64)
                used = case = np.uint64(0)
                for w in range(len(words)):
                    hom = two_copies(words[w]) & ~hap_words[w]
                    used += popcount(hom & used_words[w])
                    case += popcount(hom & case_words[w])
                for b in range(whole, hi):
                    hom = two_copies(np.uint64(byte_row[b])) & ~np.uint64(haploid[b])
                    used += popcount(hom & np.uint64(masks[0, b]))
                    case += popcount(hom & np.uint64(masks[1, b]))
                two[t, 0] += used
                two[t, 1] += case
            for i in range(block, 4):
                dose[i, :m] = 0.0
            d0, d1, d2, d3 = dose[0], dose[1], dose[2], dose[3]
            for j in range(0, n_columns, 2):
                k = min(j + 1, n_columns - 1)  # an odd last column: summed twice, kept once
                x, y = columns[j, first : first + m], columns[k, first : first + m]
                x0 = x1 = x2 = x3 = y0 = y1 = y2 = y3 = 0.0
                for s in range(m):
                    x0 += d0[s] * x[s]
                    x1 += d1[s] * x[s]
                    x2 += d2[s] * x[s]
                    x3 += d3[s] * x[s]
                    y0 += d0[s] * y[s]
                    y1 += d1[s] * y[s]
                    y2 += d2[s] * y[s]
                    y3 += d3[s] * y[s]
                for i, (xi, yi) in enumerate(((x0, y0), (x1, y1), (x2, y2), (x3, y3))):
                    if i < block:
                        out[t0 + i, j] += xi
                        if k > j:
                            out[t0 + i, k] += yi


def coded_products(
    codes: np.ndarray, haploid: np.ndarray, pattern: np.ndarray, columns: np.ndarray, masks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(dose @ columns.T, two)`` of code rows (rows, ceil(n / 4)) uint8, with ``dose`` their
    (rows, n) dosages (``haploid`` (patterns, n) masks, ``pattern`` per row, -1: diploid),
    ``columns`` the weights (:meth:`Covariates.columns`: (columns, 4 ceil(n / 4)) float64, zero
    past n) and ``two`` the first two columns (0/1; ``masks`` as
    :func:`~genoquery.storage.call_codes.code_bits`) summed over each row's two-copy calls,
    (rows, 2) float64 (:func:`_coded_sums`)."""
    out, two = np.zeros((len(codes), len(columns))), np.zeros((len(codes), 2))
    hap_bits = code_bits(haploid) if (pattern >= 0).any() else np.zeros((1, codes.shape[1]), dtype=np.uint8)
    codes, masks = np.ascontiguousarray(codes), np.ascontiguousarray(masks)  # rows viewed as uint64 words
    _coded_sums(codes, BYTE_DOSES, hap_bits, pattern, masks, columns, out, two)
    return out, two


def _add_coded(coded: CodedAlleles, products: tuple[np.ndarray, np.ndarray], counts: np.ndarray, sums: tuple) -> None:
    """Adds the code rows' carriers to ``counts`` (columns as :func:`_sums`) and ``qg, gg, gy``
    from their :func:`coded_products` ``(dose, two)``: with ``two`` the two-copy calls, a carrier
    is ``d - two`` and ``d^2 = d + 2 two``."""
    dose, two = products
    qg, gg, gy = sums
    a = coded.allele  # alleles differ within a part
    counted = np.stack([dose[:, 0], dose[:, 0] - two[:, 0], dose[:, 1], dose[:, 1] - two[:, 1]], axis=1)
    counts[a[:, None], [1, 2, 4, 5]] += np.rint(counted).astype(np.int64)  # sums of 0/1 x 0/1/2: exact in float64
    gy[a] += dose[:, 2]
    qg[a] += dose[:, 3:]
    gg[a] += dose[:, 0] + 2 * two[:, 0]


def allele_sums(
    cov: Covariates,
    haploid: np.ndarray,
    hap_analysed: np.ndarray,
    dosages: AlleleDosages,
    y: np.ndarray,
    helper: Executor | None = None,
) -> tuple[AlleleCounts, tuple[np.ndarray, ...]]:
    """Counts and the carrier/missing sums of :func:`_sums` of one batch of alleles (``y``: the
    vector summed against, ``y*`` for linear models). With a ``helper`` thread and code rows, the
    listed calls are summed there while this thread sums the code rows (both kernels release the
    GIL); the results are added in the same order either way."""
    n_alleles, k = len(dosages.allele), cov.q.shape[1]
    counts = np.zeros((n_alleles, 7), dtype=np.int64)
    qg, qy_m = np.zeros((n_alleles, k)), np.zeros((n_alleles, k))
    gg, gy, yy_m = np.zeros(n_alleles), np.zeros(n_alleles), np.zeros(n_alleles)
    qm = np.zeros((n_alleles, k, k))
    hap = haploid if len(haploid) else np.zeros((1, 1), dtype=bool)
    listed = (
        cov.weights(0, len(cov.row), y),
        hap,
        dosages.pattern,
        dosages.carrier,
        dosages.sample,
        dosages.dosage,
        dosages.missing,
        dosages.missing_sample,
        counts,
        qg,
        gg,
        gy,
        qm,
        qy_m,
        yy_m,
    )
    for c in dosages.coded:
        cov.columns(c.offset, c.haploid.shape[1], y)  # made here, once, not on two threads
    summing = helper.submit(_sums, *listed) if helper is not None and dosages.coded else None
    if summing is None:
        _sums(*listed)
    products = [cov.coded_sums(c, y) for c in dosages.coded]
    if summing is not None:
        summing.result()
    for coded, product in zip(dosages.coded, products, strict=True):
        _add_coded(coded, product, counts, (qg, gg, gy))
    qm += np.triu(qm, 1).transpose(0, 2, 1)
    n = len(cov.design.y) - counts[:, 0]
    hap_called = (
        np.where(dosages.pattern >= 0, hap_analysed[np.maximum(dosages.pattern, 0)], 0) - counts[:, 3]
        if len(hap_analysed)
        else np.zeros(n_alleles, np.int64)
    )
    n_cases = int(cov.design.y.sum()) if cov.design.binary else 0
    return (
        AlleleCounts(
            n=n,
            ac=counts[:, 1],
            an=2 * n - hap_called,
            n_carriers=counts[:, 2],
            case_ac=counts[:, 4],
            case_carriers=counts[:, 5],
            case_n=n_cases - counts[:, 6],
        ),
        (qg, gg, gy, qm, qy_m, yy_m),
    )


def linear(cov: Covariates, counts: AlleleCounts, sums: tuple[np.ndarray, ...], testable: np.ndarray) -> Fit:
    """OLS of ``y`` on intercept, covariates and dosage for each allele (see the module docstring)."""
    qg, gg, gy, qm, qy_m, yy_m = sums
    k = cov.q.shape[1]
    g_inv = np.linalg.solve(np.eye(k) - qm, np.stack([-qy_m, qg], axis=2))  # G^-1 [Q_S'y*, Q'g]
    qy_s = -qy_m
    g_m_g = gg - np.einsum("ai,ai->a", qg, g_inv[:, :, 1])
    g_m_y = gy - np.einsum("ai,ai->a", qg, g_inv[:, :, 0])
    y_m_y = cov.yy - yy_m - np.einsum("ai,ai->a", qy_s, g_inv[:, :, 0])
    df = counts.n - k - 1
    ok = testable & (g_m_g > 1e-9 * np.maximum(gg, 1)) & (df > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(ok, g_m_y / g_m_g, np.nan)
        se = np.where(ok, np.sqrt(np.maximum(y_m_y - beta * g_m_y, 0) / np.maximum(df, 1) / g_m_g), np.nan)
        t = beta / se
    p = 2 * special.stdtr(np.maximum(df, 1), -np.abs(t))  # stats.t.sf's own function, without importing scipy.stats
    status = np.where(ok, OK, np.where(testable, COLLINEAR, TOO_FEW)).astype(object)
    test = np.where(ok, "t", None).astype(object)
    return Fit(beta, se, t, np.where(ok, p, np.nan), status, np.zeros(len(beta), dtype=bool), test)


def _separated(counts: AlleleCounts) -> np.ndarray:
    """Alleles whose carriers are all cases or all controls: the dosage's MLE is infinite. (Other
    separations, e.g. by carriers and covariates together, show as a fit that does not converge.)"""
    return (counts.case_carriers == 0) | (counts.case_carriers == counts.n_carriers)


@intrinsic
def _as_float(typingctx, bits):  # pragma: no cover - compiled
    """The float64 whose IEEE 754 bits are the int64 ``bits`` (LLVM's bitcast, which numba does not
    give scalars)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


LN2 = math.log(2)
EXP_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(13, -1, -1))  # 1/13!, ..., 1/1!, 1/0!


@numba.njit(nogil=True, cache=True)
def _exp_neg(t):  # pragma: no cover - compiled
    """``exp(t)`` for ``t <= 0`` without a branch or a libm call, so a loop calling it vectorises
    (numba here has no SVML): ``t = n ln 2 + r`` with ``|r| <= ln 2 / 2``, ``exp(r)`` by its
    Taylor polynomial of degree 13 (truncation below 4e-18 relative), times ``2^n`` built from its
    exponent bits. ``ln 2`` is one float64, not Cody-Waite's two parts: numba compiles this with
    its caller's fastmath flags, whose reassociation folded the two parts into one anyway. So the
    relative error grows with ``|n|`` (``ln 2``'s rounding, 2.3e-17 each): against ``math.exp``,
    at most 12 ulp (1.6e-15) for ``t >= -40`` (below, ``mu`` is within 5e-18 of 0 or 1) and 2.4e-14
    at -708. ``t`` below -708 gives ``exp(-708)`` (~3e-308: no subnormal ``2^n``)."""
    t = max(t, -708.0)
    n = np.floor(t * (1 / LN2) + 0.5)
    r = t - n * LN2
    p = EXP_TAYLOR[0]
    for c in EXP_TAYLOR[1:]:
        p = p * r + c
    return p * _as_float((np.int64(n) + 1023) << 52)


LOGIT_TILE = 512
"""Samples per tile of :func:`_logistic_terms`: the tile's covariates, dosages and weights
(~40 KB at k = 4) stay in L1/L2 while a group of alleles is computed on it."""
LOGIT_GROUP = 8
"""Alleles of :func:`_logistic_terms` that share each tile of the covariates read from memory."""


@numba.njit(nogil=True, cache=True, parallel=True, fastmath=True)
def _logistic_terms(
    xt, y, row, alleles, c_off, c_sample, c_dose, m_off, m_sample, coef, inverse, firth, group, info, score, loglik
):  # pragma: no cover - compiled
    """One pass over the analysed samples per allele ``alleles[a]`` at ``coef[a]`` (covariates
    ``xt`` (k, n), then dosage): the information ``X'WX`` (upper triangle), the score ``X'(y -
    mu)`` (Firth: plus ``h (1/2 - mu)`` with the leverage ``h = w x' inverse x``) and the
    log-likelihood, skipping the allele's missing samples. Carriers (``c_sample``, ``c_dose``) and
    missing samples (``m_sample``) are store samples, CSR by allele (``c_off``, ``m_off``),
    ascending, mapped to analysed rows by ``row`` (-1: not analysed, skipped).

    Alleles are shared between the cores ``group`` at a time; per tile of :data:`LOGIT_TILE`
    samples, the tile's covariates are copied once for the group, and each allele's carriers and
    missing samples are scattered into the tile as a dense dosage row and a 0/1 analysed row, so
    every loop over the tile's samples is branch-free and vectorises (``exp`` as
    :func:`_exp_neg`). The log-likelihood's ``log(1 + exp(-|eta|))`` terms are multiplied over
    the tile (each factor in (1, 2]: at most 2^512) and their product's log taken once."""
    k, n = xt.shape
    k1 = k + 1
    for first in numba.prange((coef.shape[0] + group - 1) // group):
        start, stop = first * group, min(coef.shape[0], first * group + group)
        ci, mi = c_off[alleles[start:stop]], m_off[alleles[start:stop]]
        xs, scratch = np.empty((k1, LOGIT_TILE)), np.empty((6, LOGIT_TILE))
        used, eta, mu, w, r, wx = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5]
        for lo in range(0, n, LOGIT_TILE):
            m = min(n, lo + LOGIT_TILE) - lo
            xs[:k, :m] = xt[:, lo : lo + m]
            for a in range(start, stop):
                _scatter(xs[k, :m], 0.0, c_dose, lo, row, c_off[alleles[a] + 1], c_sample, ci, a - start)
                _scatter(used[:m], 1.0, None, lo, row, m_off[alleles[a] + 1], m_sample, mi, a - start)
                for s in range(m):
                    eta[s] = coef[a, k] * xs[k, s]
                for j in range(k):
                    for s in range(m):
                        eta[s] += coef[a, j] * xs[j, s]
                ll, run = 0.0, 1.0
                for s in range(m):
                    e = _exp_neg(-abs(eta[s]))
                    inv = 1.0 / (1.0 + e)
                    mu[s] = inv if eta[s] >= 0 else e * inv
                    w[s] = used[s] * mu[s] * (1.0 - mu[s])
                    r[s] = used[s] * (y[lo + s] - mu[s])
                    ll += used[s] * (y[lo + s] * eta[s] - max(eta[s], 0.0))
                    run *= 1.0 + used[s] * e
                loglik[a] += ll - np.log(run)
                if firth:
                    _firth_score(xs, inverse[a], mu, w, r, wx, m)
                _accumulate(xs, w, r, wx, m, info[a], score[a])


@numba.njit(nogil=True, cache=True)
def _scatter(out, fill, dose, lo, row, end, sample, next_at, at):  # pragma: no cover - compiled
    """One allele's dense row ``out`` over the tile of samples from ``lo`` (``len(out)`` of them):
    ``fill``, but ``dose`` (None: 0) at its listed samples in the tile, ``next_at[at] .. end - 1``
    (store ``sample``s, ascending, mapped to rows by ``row``; -1: not analysed), advancing
    ``next_at[at]`` past them. Carriers' dosages over 0, or missing samples' flags over 1."""
    out[:] = fill
    c = next_at[at]
    while c < end:
        r = row[sample[c]]
        if r >= lo + len(out):
            break
        if r >= 0:
            out[r - lo] = 0.0 if dose is None else dose[c]
        c += 1
    next_at[at] = c


@numba.njit(nogil=True, cache=True, fastmath=True)
def _firth_score(xs, inverse, mu, w, r, quad, m):  # pragma: no cover - compiled
    """Adds Firth's ``h (1/2 - mu)`` to the tile's residuals ``r``, ``h = w x' inverse x`` (``quad``: scratch)."""
    quad[:m] = 0.0
    for j in range(xs.shape[0]):
        for i in range(xs.shape[0]):
            for s in range(m):
                quad[s] += inverse[j, i] * xs[j, s] * xs[i, s]
    for s in range(m):
        r[s] += w[s] * quad[s] * (0.5 - mu[s])


@numba.njit(nogil=True, cache=True, fastmath=True)
def _accumulate(xs, w, r, wx, m, info, score):  # pragma: no cover - compiled
    """Adds the tile's ``X'WX`` (upper triangle) to ``info`` and ``X'r`` to ``score``."""
    k1 = xs.shape[0]
    for j in range(k1):
        t = 0.0
        for s in range(m):
            t += r[s] * xs[j, s]
            wx[s] = w[s] * xs[j, s]
        score[j] += t
        for i in range(j, k1):
            t = 0.0
            for s in range(m):
                t += wx[s] * xs[i, s]
            info[j, i] += t


class _Alleles:
    """Some alleles (``alleles``: indexes into ``dosages``' alleles) of a batch's
    :class:`AlleleDosages`, with the covariates ``xt`` (k, n) C-ordered (a row per covariate),
    phenotype ``y`` and the store samples' analysed rows ``row`` (-1: not analysed)."""

    def __init__(
        self, xt: np.ndarray, y: np.ndarray, row: np.ndarray, dosages: AlleleDosages, alleles: np.ndarray
    ) -> None:
        self.xt, self.y, self.row, self.dosages, self.alleles = xt, y, row, dosages, alleles
        self.b = len(alleles)

    def take(self, alleles: np.ndarray) -> _Alleles:
        """These alleles (indexes into this set) only."""
        return _Alleles(self.xt, self.y, self.row, self.dosages, self.alleles[alleles])

    def terms(self, coef: np.ndarray, inverse: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(information (b, k + 1, k + 1), score (b, k + 1), log-likelihood (b,)) at ``coef``;
        the Firth-modified score when ``inverse`` (the information's inverse) is given."""
        b, k1 = coef.shape
        info, score, loglik = np.zeros((b, k1, k1)), np.zeros((b, k1)), np.zeros(b)
        d = self.dosages
        _logistic_terms(
            self.xt,
            self.y,
            self.row,
            self.alleles,
            d.carrier,
            d.sample,
            d.dosage,
            d.missing,
            d.missing_sample,
            np.ascontiguousarray(coef),
            np.zeros((b, k1, k1)) if inverse is None else inverse,
            inverse is not None,
            max(1, min(LOGIT_GROUP, -(-b // numba.get_num_threads()))),  # every core busy when few alleles move
            info,
            score,
            loglik,
        )
        return info + np.triu(info, 1).transpose(0, 2, 1), score, loglik


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^-1 b`` per allele; NaN for an allele whose matrix is singular (a diverging fit)."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        out = np.full(b.shape, np.nan)
        for j in range(len(a)):
            try:
                out[j] = np.linalg.solve(a[j], b[j])
            except np.linalg.LinAlgError:
                pass
        return out


Direction = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Per allele at a point: the Newton step, the (penalised) log-likelihood, the Newton decrement and
the (plain) information matrix."""


def _direction(batch: _Alleles, coef: np.ndarray, firth: bool) -> Direction:
    """At ``coef``: the Newton step ``I^-1 U`` (Firth: ``U`` the modified score), the (penalised)
    log-likelihood, the Newton decrement ``U' I^-1 U`` and the information ``I``."""
    info, score, objective = batch.terms(coef, None)
    if firth:
        objective = objective + 0.5 * np.linalg.slogdet(info)[1]
        inverse = np.nan_to_num(_solve(info, np.broadcast_to(np.eye(info.shape[1]), info.shape)))
        score = batch.terms(coef, inverse)[1]
    return _step(info, score, objective)


def _step(info: np.ndarray, score: np.ndarray, objective: np.ndarray) -> Direction:
    """The :data:`Direction` of an information matrix, score and objective."""
    step = _solve(info, score[:, :, None])[:, :, 0]
    return step, objective, np.einsum("bi,bi->b", step, score), info


def _newton(
    batch: _Alleles, coef: np.ndarray, firth: bool, max_iter: int, active: np.ndarray, first: Direction | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton-Raphson from ``coef`` (b, k + 1) for the ``active`` alleles, penalised (Firth) or
    not, from their :data:`Direction` ``first`` at ``coef`` when given; returns the coefficients,
    whether each active fit converged, and the information matrix there. Each step works on the
    alleles still moving only; a fit stops where the next full step is below the tolerance.

    Steps are at most ``MAX_STEP`` and halved (as R's glm and logistf do) until the (penalised)
    likelihood does not fall; Firth steps also until the Newton decrement falls: the modified
    score's Jacobian is not the information matrix, and full steps can cycle around the optimum
    when an allele has one or two carriers."""
    coef, done = coef.copy(), np.zeros(len(coef), dtype=bool)
    moving = np.flatnonzero(active)
    step, objective, decrement, info = (
        first if first is not None else _direction(batch.take(moving), coef[moving], firth)
    )
    final = np.broadcast_to(np.eye(coef.shape[1]), (len(coef), *info.shape[1:])).copy()
    for _ in range(max_iter):
        if not len(moving):
            break
        check()  # the request's time limit (genoquery.deadline), per step over a block of alleles
        sub = batch.take(moving)
        step *= np.minimum(1, MAX_STEP / np.maximum(np.abs(step).max(axis=1), 1e-300))[:, None]
        t_step, t_objective, t_decrement = np.empty_like(step), np.empty_like(objective), np.empty_like(decrement)
        t_info = np.empty((len(moving), *info.shape[1:]))
        halving = np.arange(len(moving))
        for _halving in range(30):
            part = sub.take(halving)
            t_step[halving], t_objective[halving], t_decrement[halving], t_info[halving] = _direction(
                part, coef[moving[halving]] + step[halving], firth
            )
            worse = (t_objective[halving] < objective[halving] - 1e-9 * (1 + np.abs(objective[halving]))) | (
                firth & (t_decrement[halving] >= decrement[halving])
            )
            if not worse.any():
                break
            halving = halving[worse]
            step[halving] /= 2
        coef[moving] += step
        diverged = ~np.isfinite(coef[moving]).all(axis=1) | ~np.isfinite(t_step).all(axis=1)
        coef[moving[diverged]] = 0
        scale = TOLERANCE * (1 + np.abs(coef[moving]).max(axis=1))
        stop = diverged | (np.abs(step).max(axis=1) < scale) | (np.abs(t_step).max(axis=1) < scale)
        done[moving[stop & ~diverged]] = True
        final[moving[stop & ~diverged]] = t_info[stop & ~diverged]
        keep = ~stop
        moving, step, objective, decrement = moving[keep], t_step[keep], t_objective[keep], t_decrement[keep]
        info = t_info[keep]
    return coef, done, final


def null_logistic(cov: Covariates) -> np.ndarray:
    """The null model's coefficients on the orthonormal covariate basis (Newton-Raphson)."""
    x, y = cov.q, cov.design.y
    coef = np.zeros(x.shape[1])
    for _ in range(MAX_ITER):
        mu = special.expit(x @ coef)
        step = np.linalg.solve((x * (mu * (1 - mu))[:, None]).T @ x, x.T @ (y - mu))
        coef += step
        if np.abs(step).max() < TOLERANCE * (1 + np.abs(coef).max()):
            return coef
    raise QueryError(
        f"the null logistic model of {cov.design.phenotype!r} on the covariates does not converge "
        "(a covariate separates cases from controls); leave it out"
    )


def logistic(
    cov: Covariates,
    null: np.ndarray,
    counts: AlleleCounts,
    dosages: AlleleDosages,
    testable: np.ndarray,
    screen: float | None = None,
) -> Fit:
    """Logistic regression of each testable allele, Firth's where the plain fit fails. With
    ``screen`` (a p-value; -inf: none passes) the score test first, and the exact fit only for
    alleles whose score p is at most ``screen``."""
    n_alleles = len(dosages.allele)
    beta, se, z = np.full(n_alleles, np.nan), np.full(n_alleles, np.nan), np.full(n_alleles, np.nan)
    status = np.where(testable, OK, TOO_FEW).astype(object)
    firth = np.zeros(n_alleles, dtype=bool)
    test = np.full(n_alleles, None, dtype=object)
    separated = _separated(counts) & testable
    x = cov.q * np.sqrt(len(cov.design.y))  # O(1) entries; a reparametrisation of the covariates
    null = null / np.sqrt(len(cov.design.y))
    chosen = np.flatnonzero(testable)
    missing = counts.n < len(cov.design.y)  # alleles with analysed samples not called
    exact = chosen
    if screen is not None and len(chosen):
        u, v, converged = score(cov, x, null, dosages, chosen, missing[chosen])
        usable = converged & np.isfinite(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            z[chosen] = np.where(usable, u / np.sqrt(v), np.nan)
            beta[chosen], se[chosen] = np.where(usable, u / v, np.nan), np.where(usable, 1 / np.sqrt(v), np.nan)
        status[chosen] = np.where(~converged, NOT_CONVERGED, np.where(~usable, COLLINEAR, OK))
        status[chosen[usable & separated[chosen]]] = SEPARATED
        test[chosen[usable]] = "score"
        exact = chosen[usable & (2 * special.ndtr(-np.abs(z[chosen])) <= screen)]
    if len(exact):
        beta[exact], se[exact], status[exact], firth[exact] = _exact(
            cov, x, null, dosages, exact, separated[exact], missing[exact]
        )
        z[exact] = beta[exact] / se[exact]
        test[exact] = np.where(np.isfinite(beta[exact]), np.where(firth[exact], "firth", "wald"), None)
    return Fit(beta, se, z, 2 * special.ndtr(-np.abs(z)), status, firth, test)


def _at_null(null: np.ndarray, b: int) -> np.ndarray:
    """(b, k + 1) coefficients of ``b`` alleles' models at the null: covariates ``null``, dosage 0."""
    return np.concatenate([np.tile(null, (b, 1)), np.zeros((b, 1))], axis=1)


def _exact(
    cov: Covariates,
    x: np.ndarray,
    null: np.ndarray,
    dosages: AlleleDosages,
    chosen: np.ndarray,
    separated: np.ndarray,
    missing: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(beta, se, status, firth) of each ``chosen`` allele by Newton-Raphson from the ``null``
    coefficients, Firth's penalised fit where the carriers are ``separated`` or the plain fit fails.
    The first plain step of an allele without ``missing`` analysed samples comes from its carrier
    sums (:func:`_null_terms`), not a pass over the samples."""
    batch = _alleles(cov, x, dosages, chosen)
    start = _at_null(null, batch.b)
    plain = ~separated
    coef, converged, info = _newton(
        batch, start, False, MAX_ITER, plain, _first(cov, x, null, dosages, chosen, missing, plain, batch)
    )
    failed = ~(converged & (np.abs(coef[:, -1]) < MAX_LOGIT))
    coef[failed] = start[failed]
    if failed.any():
        f_coef, f_conv, f_info = _newton(batch, start, True, FIRTH_MAX_ITER, failed)
        coef[failed], info[failed] = f_coef[failed], f_info[failed]
        converged = np.where(failed, f_conv, converged)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(_solve(info, np.broadcast_to(np.eye(info.shape[1]), info.shape))[:, -1, -1])
    status = np.where(
        ~converged, NOT_CONVERGED, np.where(~failed, OK, np.where(plain, FIRTH_NOT_CONVERGED, FIRTH_SEPARATED))
    )
    return np.where(converged, coef[:, -1], np.nan), np.where(converged, se, np.nan), status, failed


def _first(
    cov: Covariates,
    x: np.ndarray,
    null: np.ndarray,
    dosages: AlleleDosages,
    chosen: np.ndarray,
    missing: np.ndarray,
    active: np.ndarray,
    batch: _Alleles,
) -> Direction:
    """The plain :data:`Direction` at the null model of the ``active`` ones of the ``chosen``
    alleles (``batch``): from carrier sums where no analysed sample is ``missing``, else by a pass
    over the samples."""
    moving = np.flatnonzero(active)
    info, score, loglik = _null_terms(cov, x, null, dosages, chosen[moving])
    passes = np.flatnonzero(missing[moving])
    if len(passes):
        info[passes], score[passes], loglik[passes] = batch.take(moving[passes]).terms(
            _at_null(null, len(passes)), None
        )
    return _step(info, score, loglik)


@numba.njit(nogil=True, cache=True)
def _carrier_score(rows, carrier, sample, dosage, alleles, u, gwg, xwg):  # pragma: no cover - compiled
    """Per allele ``alleles[a]`` of a CSR layout (``carrier`` offsets into ``sample``, store sample
    indexes, and ``dosage``), over its carriers only: ``u[a] = g'(y - mu)``, ``gwg[a] = g'Wg`` and
    ``xwg[a] = X'Wg``, from each sample's row of :attr:`NullModel.rows`."""
    k = rows.shape[1] - 2
    for a in range(len(alleles)):
        for c in range(carrier[alleles[a]], carrier[alleles[a] + 1]):
            r, d = rows[sample[c]], dosage[c]
            dw = d * r[1]
            u[a] += d * r[0]
            gwg[a] += d * dw
            for j in range(k):
                xwg[a, j] += dw * r[2 + j]


def _null_terms(
    cov: Covariates, x: np.ndarray, null: np.ndarray, dosages: AlleleDosages, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(information (b, k + 1, k + 1), score (b, k + 1), log-likelihood (b,)) of each ``chosen``
    allele's model (covariates ``x``, then dosage) at the null model (``null``, dosage coefficient
    0) over every analysed sample, from sums over its carriers only: what a pass over the samples
    (:meth:`_Alleles.terms`) gives for an allele without missing calls."""
    model, k = cov.null_model(x, null), len(null)
    u, gwg, xwg = np.zeros(len(chosen)), np.zeros(len(chosen)), np.zeros((len(chosen), k))
    _carrier_score(model.rows, dosages.carrier, dosages.sample, dosages.dosage, chosen, u, gwg, xwg)
    info = np.empty((len(chosen), k + 1, k + 1))
    info[:, :k, :k], info[:, :k, k], info[:, k, :k], info[:, k, k] = model.xwx, xwg, xwg, gwg
    score = np.concatenate([np.broadcast_to(model.xr, (len(chosen), k)), u[:, None]], axis=1)
    return info, score, np.full(len(chosen), model.loglik)


def score(
    cov: Covariates, x: np.ndarray, null: np.ndarray, dosages: AlleleDosages, chosen: np.ndarray, missing: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, V, converged) per ``chosen`` allele: the score of the dosage at the null model (the
    covariates' coefficients ``null`` on ``x``) over the allele's called samples, and its efficient
    information ``V = g'Wg - g'WX (X'WX)^-1 X'Wg`` (NaN when the dosage is in the covariates' span:
    ``V <= 1e-9 g'Wg``). Alleles without ``missing`` analysed samples cost their carriers
    (:func:`_null_terms`); the others' null model is refitted over their called samples
    (:func:`_null_on_called`), whose convergence ``converged`` reports."""
    info, grad, _ = _null_terms(cov, x, null, dosages, chosen)
    converged = np.ones(len(chosen), dtype=bool)
    with_missing = np.flatnonzero(missing)
    if len(with_missing):
        refit = _null_on_called(_alleles(cov, x, dosages, chosen[with_missing]), null)
        info[with_missing], grad[with_missing], converged[with_missing] = refit
    gwg = info[:, -1, -1]
    v = gwg - np.einsum("ai,ai->a", info[:, -1, :-1], _solve(info[:, :-1, :-1], info[:, :-1, -1:])[:, :, 0])
    return grad[:, -1], np.where(v > 1e-9 * gwg, v, np.nan), converged


def _null_on_called(batch: _Alleles, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The null model refitted over each allele's called samples (Newton-Raphson on the
    covariates' coefficients from ``null``, the dosage's held at 0): the information (b, k + 1,
    k + 1) and score (b, k + 1) of :meth:`_Alleles.terms` there, and whether each fit converged."""
    k = len(null)
    coef = _at_null(null, batch.b)
    info, grad = np.zeros((batch.b, k + 1, k + 1)), np.zeros((batch.b, k + 1))
    converged = np.zeros(batch.b, dtype=bool)
    moving = np.arange(batch.b)
    for _ in range(MAX_ITER):
        check()  # the request's time limit (genoquery.deadline)
        info[moving], grad[moving], _ = batch.take(moving).terms(coef[moving], None)
        step = _solve(info[moving, :k, :k], grad[moving, :k, None])[:, :, 0]
        coef[moving, :k] += step
        done = np.abs(step).max(axis=1) < TOLERANCE * (1 + np.abs(coef[moving, :k]).max(axis=1))
        converged[moving[done]] = True
        moving = moving[~done & np.isfinite(step).all(axis=1)]
        if not len(moving):
            break
    return info, grad, converged


def _alleles(cov: Covariates, x: np.ndarray, dosages: AlleleDosages, chosen: np.ndarray) -> _Alleles:
    """The ``chosen`` alleles of ``dosages``, over the analysed samples (covariates ``x``)."""
    return _Alleles(np.ascontiguousarray(x.T), cov.design.y, cov.row, dosages, chosen)
