"""IQ4_NL, IQ4_XS and MXFP4: ggml's non-linear 4-bit types (``ggml-quants.c``), bit-exact with ggml.

Block layouts (ggml-common.h; offsets read from :data:`pyquant.formats.LAYOUTS`):

- IQ4_NL (32 elements, 18 B): d (half), qs[16];
- IQ4_XS (256 elements, 136 B): d (half), scales_h (uint16), scales_l[4], qs[128]: eight 32-element sub-blocks
  with 6-bit scales ``ls`` (low nibbles in scales_l, high 2 bits in scales_h), ``dl = d * (ls - 32)``;
- MXFP4 (32 elements, 17 B): e (E8M0 exponent), qs[16].

Every qs byte holds element ``j`` (low nibble) and ``j + 16`` (high nibble) of its 32 elements; a nibble indexes
``kvalues_iq4nl`` (IQ4) or ``kvalues_mxfp4`` (doubled e2m1 values, hence the halved E8M0 scale).

Quantizers follow ``ggml_quantize_chunk``: IQ4_NL and IQ4_XS go through ``quantize_iq4_nl`` / ``quantize_iq4_xs``
with or without ``quant_weights`` (both run quantize_row_iq4_nl_impl's scale search with ``ntry = 7``; weights
``x^2`` without an imatrix). ``quantize_row_iq4_nl_ref`` (``ntry = -1``) is a different, cheaper search that
``ggml_quantize_chunk`` never calls, so pyquant does not offer it. MXFP4 is ``quantize_row_mxfp4_ref``, which
``quantize_mxfp4`` calls ignoring the weights. All arithmetic is float32 in C's order; libggml-base has no FMA
instructions at all (it is built for plain x86-64 SSE), and no ``fastmath`` here keeps LLVM from contracting.

MXFP4's exponent is ``(uint8_t)(floorf(log2f(amax)) - 2 + 127)``. log2f rounds a value just below 2^k up to the
integer k when k is large enough (``log2(2^k (1 - j 2^-24))`` is within half an ulp of k for the top 1 to 44
floats of a binade, more for larger |k|), so floor(log2f) is not the exponent of amax there. glibc's log2f is
correctly rounded on all those inputs (checked over every positive float32), so :func:`mxfp4_exponent` takes
log2 in float64 and rounds it to float32, which is the correctly rounded log2f wherever floor can tell (no
float32 rounding midpoint next to an integer comes within 2^-29 ulp of a log2 value, far above float64's
error). Below 2^-125 the float ``floor - 2 + 127`` is negative and C's conversion (cvttss2si, low byte)
wraps: e = 255 down to 232 for the subnormals, scales of 2^127 and below that quantize everything to level 0.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from . import IGNORED, WEIGHTED, Kernels, register
from .common import JIT, PJIT, bits_f32, f32, f32_bits, get_half, offsets, put_half, row_bad
from .search import GROUP_MAX_EPS, nearest_int

QK = 32  # every sub-block here has 32 elements
QK_K = 256

#: ggml's kvalues_iq4nl (int8) and kvalues_mxfp4 (e2m1 values doubled, int8), as float32 (exact).
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)
KVALUES_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], np.float32)

_ABS = np.uint32(0x7FFFFFFF)


NL_B, NL_D, NL_QS = offsets(T.IQ4_NL, "d", "qs")
XS_B, XS_D, XS_SH, XS_SL, XS_QS = offsets(T.IQ4_XS, "d", "scales_h", "scales_l", "qs")
MX_B, MX_E, MX_QS = offsets(T.MXFP4, "e", "qs")


# ----------------------------------------------------------------------------------------------- IQ4


@njit(**JIT, inline="always")
def best_index_iq4nl(x):
    """ggml's ``best_index_int8(16, kvalues_iq4nl, x)``: the nearest value's index, the upper one on a tie.

    The binary search ends with ``val[ml] <= x < val[mu]``, ``mu = ml + 1``: ``mu`` is one plus the count of
    ``val[1..14] <= x``, a branch-free sum. Below val[0] or above val[15] the final comparison picks the end
    (as C's early returns do); a NaN fails every comparison in C, which then returns 15.
    """
    if x != x:
        return np.int32(15)
    mu = np.int32(1)
    for i in range(1, 15):
        mu += np.int32(KVALUES_IQ4NL[i] <= x)
    ml = mu - np.int32(1)
    if x - KVALUES_IQ4NL[ml] < KVALUES_IQ4NL[mu] - x:
        return ml
    return mu


# The 16 candidate scales of quantize_row_iq4_nl_impl (the initial -max/values[0], then ntry = 7: itry = -7..7) run
# side by side in vector lanes. A lane finds best_index_int8's level without a table lookup or a branch: with
# c_i = (values[i] <= a) for i = 1..14 (the binary search's outcome as a count), the two neighbours are
# values[ml] = values[0] + sum c_i (values[i] - values[i-1]) and values[mu] = values[1] + sum c_i (values[i+1] -
# values[i]), sums of small integers and so exact in float32; the pick between them is C's own comparison.
# Each lane adds its terms in C's order over the 32 elements, so every sum is the same float; the choice among
# the candidates is then made in C's order. tests/test_iquants.py checks both against the literal forms.
NTRY_LANES = 16


@njit(**JIT, inline="always")
def _iq4_step(a, i, lo, hi):
    """Step i (1..14) of the neighbour sums: c_i = (values[i] <= a) times the table's differences."""
    c = f32(1.0) if KVALUES_IQ4NL[i] <= a else f32(0.0)
    return lo + c * (KVALUES_IQ4NL[i] - KVALUES_IQ4NL[i - 1]), hi + c * (KVALUES_IQ4NL[i + 1] - KVALUES_IQ4NL[i])


@njit(**JIT, inline="always")
def _iq4_neighbours(a):
    """(values[ml], values[mu]) of best_index_int8's search for a finite ``a``, branch-free. The 14 steps are
    written out with constant indices: a loop over them (or numba.literal_unroll) stays scalar, 7x slower."""
    lo = KVALUES_IQ4NL[0]
    hi = KVALUES_IQ4NL[1]
    lo, hi = _iq4_step(a, 1, lo, hi)
    lo, hi = _iq4_step(a, 2, lo, hi)
    lo, hi = _iq4_step(a, 3, lo, hi)
    lo, hi = _iq4_step(a, 4, lo, hi)
    lo, hi = _iq4_step(a, 5, lo, hi)
    lo, hi = _iq4_step(a, 6, lo, hi)
    lo, hi = _iq4_step(a, 7, lo, hi)
    lo, hi = _iq4_step(a, 8, lo, hi)
    lo, hi = _iq4_step(a, 9, lo, hi)
    lo, hi = _iq4_step(a, 10, lo, hi)
    lo, hi = _iq4_step(a, 11, lo, hi)
    lo, hi = _iq4_step(a, 12, lo, hi)
    lo, hi = _iq4_step(a, 13, lo, hi)
    lo, hi = _iq4_step(a, 14, lo, hi)
    return lo, hi


@njit(**JIT, inline="always")
def iq4_level_value(a):
    """values[best_index_int8(16, kvalues_iq4nl, a)] for a finite ``a`` (the upper neighbour on a tie)."""
    lo, hi = _iq4_neighbours(a)
    return lo if a - lo < hi - a else hi


@njit(**JIT)
def _iq4_sums_lanes(xr, base, weight, ids, sqx, sq2):
    """For every candidate k: sqx[k] = sum_j w*q*x, sq2[k] = sum_j w*q*q with q the level of ids[k] * x[j]."""
    for k in range(NTRY_LANES):
        sqx[k] = f32(0)
        sq2[k] = f32(0)
    for j in range(QK):
        v = xr[base + j]
        w = weight[j]
        for k in range(NTRY_LANES):
            q = iq4_level_value(ids[k] * v)
            sqx[k] = sqx[k] + w * q * v
            sq2[k] = sq2[k] + w * q * q


@njit(**JIT, inline="always")
def _iq4_sums(xr, base, weight, id):
    """One candidate scale of quantize_row_iq4_nl_impl: levels for ``id * x`` and their weighted sums (the
    literal form, C's binary search and table; the tests' reference)."""
    sumqx = f32(0)
    sumq2 = f32(0)
    for j in range(QK):
        v = xr[base + j]
        q = KVALUES_IQ4NL[best_index_iq4nl(id * v)]
        w = weight[j]
        sumqx += w * q * v
        sumq2 += w * q * q
    return sumqx, sumq2


@njit(**JIT, inline="always")
def _iq4_block_max(xr, base):
    """(amax, the element of largest magnitude, the first of equals) of the 32 elements at ``xr[base:]``."""
    amax = f32(0)
    mx = f32(0)
    for j in range(QK):
        v = xr[base + j]
        ax = abs(v)
        if ax > amax:
            amax = ax
            mx = v
    return amax, mx


@njit(**JIT)
def iq4_block_scale(xr, base, weight, lanes):
    """The scale quantize_row_iq4_nl_impl (ntry = 7) picks for the 32 elements at ``xr[base:]``; 0 for a block
    below GROUP_MAX_EPS (C's ``scales[ib] = 0``). ``lanes``: float32 scratch of 3 * NTRY_LANES."""
    amax, mx = _iq4_block_max(xr, base)
    if amax < GROUP_MAX_EPS:
        return f32(0)
    ids = lanes[:NTRY_LANES]
    sqx = lanes[NTRY_LANES:2 * NTRY_LANES]
    sq2 = lanes[2 * NTRY_LANES:]
    d = -mx / f32(-127)  # -max/values[0]
    ids[0] = f32(1) / d
    for k in range(1, NTRY_LANES):
        ids[k] = f32(k - 8 - 127) / mx  # itry = k - 8: (itry + values[0])/max, an int sum converted to float
    _iq4_sums_lanes(xr, base, weight, ids, sqx, sq2)
    d = sqx[0] / sq2[0] if sq2[0] > f32(0) else f32(0)
    best = d * sqx[0]
    for k in range(1, NTRY_LANES):
        if sq2[k] > f32(0) and sqx[k] * sqx[k] > best * sq2[k]:
            d = sqx[k] / sq2[k]
            best = d * sqx[k]
    return d


@njit(**JIT)
def iq4_block_scale_literal(xr, base, weight):
    """iq4_block_scale one candidate at a time, as C runs it (the tests' reference for the lane form)."""
    amax, mx = _iq4_block_max(xr, base)
    if amax < GROUP_MAX_EPS:
        return f32(0)
    d = -mx / f32(-127)
    id = f32(1) / d
    sumqx, sumq2 = _iq4_sums(xr, base, weight, id)
    d = sumqx / sumq2 if sumq2 > f32(0) else f32(0)
    best = d * sumqx
    for itry in range(-7, 8):
        id = f32(itry - 127) / mx
        sumqx, sumq2 = _iq4_sums(xr, base, weight, id)
        if sumq2 > f32(0) and sumqx * sumqx > best * sumq2:
            d = sumqx / sumq2
            best = d * sumqx
    return d


@njit(**JIT, inline="always")
def _iq4_sigma2(xr, base, n):
    """``sigma2 = sum(x^2) * (2/n)`` over the super-block, summed in order (only the weighted path uses it)."""
    s = f32(0)
    for j in range(n):
        v = xr[base + j]
        s += v * v
    return s * (f32(2) / f32(n))


@njit(**JIT, inline="always")
def _iq4_weights(xr, base, w, has_w, sigma2, weight):
    """quantize_row_iq4_nl_impl's weights for one 32-element block: ``qw*sqrtf(sigma2 + x^2)``, else ``x^2``."""
    if has_w:
        for j in range(QK):
            v = xr[base + j]
            weight[j] = w[base + j] * np.sqrt(sigma2 + v * v)
    else:
        for j in range(QK):
            v = xr[base + j]
            weight[j] = v * v


@njit(**JIT, inline="always")
def _iq4_pack(xr, base, id, out, r, pos):
    """Levels ``best_index_int8(id * x)`` of 32 elements into 16 bytes at ``out[r, pos:]`` (j low, j+16 high)."""
    for j in range(QK // 2):
        l0 = best_index_iq4nl(id * xr[base + j])
        l1 = best_index_iq4nl(id * xr[base + QK // 2 + j])
        out[r, pos + j] = np.uint8(l0 | (l1 << np.int32(4)))


@njit(**PJIT)
def _quantize_iq4_nl(x, w, has_w, out, bad):
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        weight = np.empty(QK, np.float32)
        lanes = np.empty(3 * NTRY_LANES, np.float32)
        for ib in range(nb):
            base = ib * QK
            p = ib * NL_B
            sigma2 = _iq4_sigma2(xr, base, QK) if has_w else f32(0)
            _iq4_weights(xr, base, w, has_w, sigma2, weight)
            d = iq4_block_scale(xr, base, weight, lanes)
            put_half(out, r, p + NL_D, d)
            id = f32(1) / d if d != f32(0) else f32(0)
            _iq4_pack(xr, base, id, out, r, p + NL_QS)


@njit(**JIT)
def quantize_rows_iq4_nl(x, out, bad):
    """ggml's quantize_iq4_nl without quant_weights (what ggml_quantize_chunk calls), row by row."""
    _quantize_iq4_nl(x, np.empty(0, np.float32), False, out, bad)


@njit(**JIT)
def quantize_rows_iq4_nl_imatrix(x, w, out, bad):
    """ggml's quantize_iq4_nl with quant_weights, row by row."""
    _quantize_iq4_nl(x, w, True, out, bad)


@njit(**PJIT)
def _quantize_iq4_xs(x, w, has_w, out, bad):
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        weight = np.empty(QK, np.float32)
        scales = np.empty(QK_K // QK, np.float32)
        lanes = np.empty(3 * NTRY_LANES, np.float32)
        for ibl in range(nb):
            sb = ibl * QK_K
            p = ibl * XS_B
            sigma2 = _iq4_sigma2(xr, sb, QK_K) if has_w else f32(0)
            max_scale = f32(0)
            amax_scale = f32(0)
            for ib in range(QK_K // QK):
                _iq4_weights(xr, sb + ib * QK, w, has_w, sigma2, weight)
                s = iq4_block_scale(xr, sb + ib * QK, weight, lanes)
                scales[ib] = s
                if abs(s) > amax_scale:
                    amax_scale = abs(s)
                    max_scale = s
            d = -max_scale / f32(32)  # -0.0 when every block is below GROUP_MAX_EPS: stored as the half 0x8000
            put_half(out, r, p + XS_D, d)
            id = f32(1) / d if d != f32(0) else f32(0)
            sh = np.uint32(0)
            for ib in range(QK_K // QK):
                l = max(np.int32(-32), min(np.int32(31), nearest_int(id * scales[ib])))
                dl = d * f32(l)
                idl = f32(1) / dl if dl != f32(0) else f32(0)
                _iq4_pack(xr, sb + ib * QK, idl, out, r, p + XS_QS + ib * (QK // 2))
                l += np.int32(32)
                lo = np.uint8(l & np.int32(0xF))
                if ib % 2 == 0:
                    out[r, p + XS_SL + ib // 2] = lo
                else:
                    out[r, p + XS_SL + ib // 2] |= lo << np.uint8(4)
                sh |= np.uint32(l >> np.int32(4)) << np.uint32(2 * ib)
            out[r, p + XS_SH] = np.uint8(sh & np.uint32(0xFF))
            out[r, p + XS_SH + 1] = np.uint8(sh >> np.uint32(8))


@njit(**JIT)
def quantize_rows_iq4_xs(x, out, bad):
    """ggml's quantize_iq4_xs without quant_weights (ggml_quantize_chunk's and quantize_row_iq4_xs_ref's path)."""
    _quantize_iq4_xs(x, np.empty(0, np.float32), False, out, bad)


@njit(**JIT)
def quantize_rows_iq4_xs_imatrix(x, w, out, bad):
    """ggml's quantize_iq4_xs with quant_weights, row by row."""
    _quantize_iq4_xs(x, w, True, out, bad)


@njit(**PJIT)
def dequantize_rows_iq4_nl(data, out):
    """ggml's dequantize_row_iq4_nl: y = d * kvalues_iq4nl[q]."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        for ib in range(nb):
            p = ib * NL_B
            base = ib * QK
            d = get_half(data, r, p + NL_D)
            for j in range(QK // 2):
                b = data[r, p + NL_QS + j]
                out[r, base + j] = d * KVALUES_IQ4NL[b & np.uint8(0xF)]
                out[r, base + QK // 2 + j] = d * KVALUES_IQ4NL[b >> np.uint8(4)]


@njit(**PJIT)
def dequantize_rows_iq4_xs(data, out):
    """ggml's dequantize_row_iq4_xs: y = d * (ls - 32) * kvalues_iq4nl[q], ls the sub-block's 6-bit scale."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        for ibl in range(nb):
            p = ibl * XS_B
            d = get_half(data, r, p + XS_D)
            sh = np.int32(data[r, p + XS_SH]) | (np.int32(data[r, p + XS_SH + 1]) << np.int32(8))
            for ib in range(QK_K // QK):
                lo = (np.int32(data[r, p + XS_SL + ib // 2]) >> np.int32(4 * (ib % 2))) & np.int32(0xF)
                ls = lo | (((sh >> np.int32(2 * ib)) & np.int32(3)) << np.int32(4))
                dl = d * f32(ls - np.int32(32))
                base = ibl * QK_K + ib * QK
                q = p + XS_QS + ib * (QK // 2)
                for j in range(QK // 2):
                    b = data[r, q + j]
                    out[r, base + j] = dl * KVALUES_IQ4NL[b & np.uint8(0xF)]
                    out[r, base + QK // 2 + j] = dl * KVALUES_IQ4NL[b >> np.uint8(4)]


# ----------------------------------------------------------------------------------------------- MXFP4


@njit(**JIT, inline="always")
def e8m0_to_fp32_half(e):
    """ggml's GGML_E8M0_TO_FP32_HALF: 2^(e - 128); for e < 2 the subnormals 2^-128, 2^-127."""
    e = np.uint32(e)
    if e < np.uint32(2):
        return bits_f32(np.uint32(0x00200000) << e)
    return bits_f32((e - np.uint32(1)) << np.uint32(23))


@njit(**JIT, inline="always")
def mxfp4_exponent(amax):
    """``amax > 0 ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0`` (see the module docstring for log2f)."""
    if amax > f32(0):
        fl = f32(np.floor(f32(np.log2(np.float64(amax)))))
        t = fl - f32(2) + f32(127)
        return np.uint8(np.int32(t) & np.int32(0xFF))  # cvttss2si, then the low byte (t is -24 .. 252)
    return np.uint8(0)


@njit(**JIT, inline="always")
def best_index_mxfp4(x, kvd):
    """ggml's best_index_mxfp4 with ``kvd[i] = kvalues_mxfp4[i] * d``: the first index of least ``|kvd[i] - x|``."""
    best = np.int32(0)
    best_err = abs(kvd[0] - x)
    for i in range(1, 16):
        err = abs(kvd[i] - x)
        if err < best_err:
            best = np.int32(i)
            best_err = err
    return best


@njit(**PJIT)
def quantize_rows_mxfp4(x, out, bad):
    """ggml's quantize_row_mxfp4_ref (quantize_mxfp4 ignores quant_weights), row by row."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        kvd = np.empty(16, np.float32)
        for ib in range(nb):
            base = ib * QK
            p = ib * MX_B
            m = np.uint32(0)  # the largest |x| as its bit pattern (finite input: the order of the floats)
            for j in range(QK):
                a = f32_bits(x[r, base + j]) & _ABS
                m = a if a > m else m
            e = mxfp4_exponent(bits_f32(m))
            d = e8m0_to_fp32_half(e)
            out[r, p + MX_E] = e
            for i in range(16):
                kvd[i] = KVALUES_MXFP4[i] * d
            for j in range(QK // 2):
                l0 = best_index_mxfp4(x[r, base + j], kvd)
                l1 = best_index_mxfp4(x[r, base + QK // 2 + j], kvd)
                out[r, p + MX_QS + j] = np.uint8(l0 | (l1 << np.int32(4)))


@njit(**PJIT)
def dequantize_rows_mxfp4(data, out):
    """ggml's dequantize_row_mxfp4: y = kvalues_mxfp4[q] * 2^(e - 128)."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        for ib in range(nb):
            p = ib * MX_B
            base = ib * QK
            d = e8m0_to_fp32_half(data[r, p + MX_E])
            for j in range(QK // 2):
                b = data[r, p + MX_QS + j]
                out[r, base + j] = KVALUES_MXFP4[b & np.uint8(0xF)] * d
                out[r, base + QK // 2 + j] = KVALUES_MXFP4[b >> np.uint8(4)] * d


register(T.IQ4_NL, Kernels(quantize_rows_iq4_nl, dequantize_rows_iq4_nl, quantize_rows_iq4_nl_imatrix, WEIGHTED))
register(T.IQ4_XS, Kernels(quantize_rows_iq4_xs, dequantize_rows_iq4_xs, quantize_rows_iq4_xs_imatrix, WEIGHTED))
register(T.MXFP4, Kernels(quantize_rows_mxfp4, dequantize_rows_mxfp4, imatrix=IGNORED))
