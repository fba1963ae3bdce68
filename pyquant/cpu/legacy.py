"""The legacy 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, bit-exact with ggml.

Every float operation is float32 and in C's order (libggml-base is built without FMA contraction, and so is
this: no ``fastmath``). C's float -> small-integer casts compile to ``cvttss2si``/``cvttps2dq`` followed by
taking the low byte; :func:`cvtt` reproduces that, including the out-of-range case (a subnormal scale makes
``1/d`` infinite, and ``0*inf`` is NaN), so even those blocks come out byte for byte as ggml's.

Inputs to the quantizers are finite (:mod:`pyquant.quant` refuses NaN and Inf): the block maxima are then
found with integer max/min over the float bit patterns, which LLVM vectorizes and which order finite
floats exactly as C's float comparisons do; the cases where C's scan order matters (a tie between +a and -a,
or +0 against -0) fall back to the sequential scan.

Speed: Numba runs LLVM's loop vectorizer but not its SLP vectorizer, and LLVM fully unrolls an inner loop of
a constant 32 (or 16) trips before the loop vectorizer sees it, leaving scalar code. The inner loops therefore
run to ``qk = n // nb`` (always 32, but not a compile-time constant). Arrays are indexed 2-D (``x[r, i]``, no
row views), so Numba finds no aliases and marks the parallel body's array arguments ``noalias``, which spares
the vectorized loops their runtime overlap checks.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from . import IGNORED, UNSUPPORTED, WEIGHTED, Kernels, register
from .common import JIT, PJIT, bits_f32, f32, f32_bits, get_half, offsets, put_half, row_bad
from .kquants_a import NLANE as QKX_NLANE
from .kquants_a import qkx_search
from .kquants_b import NLANE, make_qx_quants_lanes

QK = 32  # every legacy type has 32-element blocks


def _offsets(qtype, *names):
    return offsets(qtype, *names, block_size=QK)


# block sizes in bytes and field offsets, from the one layout table (module globals are compile-time constants)
Q4_0_B, Q4_0_D, Q4_0_QS = _offsets(T.Q4_0, "d", "qs")
Q4_1_B, Q4_1_D, Q4_1_M, Q4_1_QS = _offsets(T.Q4_1, "d", "m", "qs")
Q5_0_B, Q5_0_D, Q5_0_QH, Q5_0_QS = _offsets(T.Q5_0, "d", "qh", "qs")
Q5_1_B, Q5_1_D, Q5_1_M, Q5_1_QH, Q5_1_QS = _offsets(T.Q5_1, "d", "m", "qh", "qs")
Q8_0_B, Q8_0_D, Q8_0_QS = _offsets(T.Q8_0, "d", "qs")
Q8_1_B, Q8_1_D, Q8_1_S, Q8_1_QS = _offsets(T.Q8_1, "d", "s", "qs")

_I32_MIN = np.int32(-2147483648)
_TWO31 = f32(2147483648.0)
_ABS = np.uint32(0x7FFFFFFF)
_FLT_MAX = f32(3.4028234663852886e38)
_PINF = np.int32(0x7F800000)  # +Inf's bit pattern: every pattern at or above it (as int32) is +Inf or a NaN
_NINF = np.uint32(0xFF800000)  # -Inf's: every pattern at or above it (as uint32) is -Inf or a NaN


# ----------------------------------------------------------------------------------------------- scalar helpers


@njit(**JIT, inline="always")
def cvtt(v):
    """C's float -> int conversion as x86 does it (cvttss2si): truncate; NaN or out of range gives INT32_MIN."""
    if abs(v) < _TWO31:
        return np.int32(v)
    return _I32_MIN


@njit(**JIT, inline="always")
def to_i8(v):
    """C's ``(int8_t)v`` for a float: the low byte of cvtt, sign-extended (as an int32)."""
    return np.int32(np.int8(cvtt(v)))


@njit(**JIT, inline="always")
def roundf_i8(v):
    """C's ``(int8_t)roundf(v)``: round half away from zero, then the low byte of cvtt (sign-extended)."""
    if abs(v) < _TWO31:
        q = np.int32(v)
        r = v - f32(q)  # the fraction, exact
        if r >= f32(0.5):
            q = np.int32(q + np.int32(1))
        elif r <= f32(-0.5):
            q = np.int32(q - np.int32(1))
        return np.int32(np.int8(q))
    return np.int32(0)  # roundf keeps inf/NaN/huge, cvtt gives INT32_MIN, whose low byte is 0


@njit(**JIT, inline="always")
def _qk(n, nb):
    """32, computed so that LLVM cannot see it (see the module docstring)."""
    return n // nb if nb > 0 else 0


@njit(**JIT, inline="always")
def _nonfinite_half(data, r, pos):
    """Whether the half at ``pos`` is an infinity or a NaN (exponent bits all ones)."""
    return (data[r, pos + 1] & np.uint8(0x7C)) == np.uint8(0x7C)


@njit(**JIT)
def _mul_add_c(q, d, m):
    """``q*d + m`` with the NaN x86 gives for GCC's operand order: when the product and ``m`` are both NaN the
    product's comes out (LLVM may swap an fadd's operands, so the NaN case is spelled out)."""
    p = q * d
    if p != p:
        return p
    return p + m


@njit(**JIT, inline="always")
def _put_u32(o, r, pos, v):
    o[r, pos] = np.uint8(v & np.uint32(0xFF))
    o[r, pos + 1] = np.uint8((v >> np.uint32(8)) & np.uint32(0xFF))
    o[r, pos + 2] = np.uint8((v >> np.uint32(16)) & np.uint32(0xFF))
    o[r, pos + 3] = np.uint8((v >> np.uint32(24)) & np.uint32(0xFF))


@njit(**JIT, inline="always")
def _get_u32(data, r, pos):
    return (
        np.uint32(data[r, pos])
        | (np.uint32(data[r, pos + 1]) << np.uint32(8))
        | (np.uint32(data[r, pos + 2]) << np.uint32(16))
        | (np.uint32(data[r, pos + 3]) << np.uint32(24))
    )


@njit(**JIT, inline="always")
def _pack_qh(qh, q0, q1, j):
    """Bit 4 of levels q0 (element j) and q1 (element j+16) into bits j and j+16 of qh."""
    qh |= np.uint32((q0 & np.int32(0x10)) >> np.int32(4)) << np.uint32(j)
    qh |= np.uint32((q1 & np.int32(0x10)) >> np.int32(4)) << np.uint32(j + QK // 2)
    return qh


# ----------------------------------------------------------------------------------------------- block scans


@njit(**JIT)
def _absmax_signed_scan(x, r, base):
    """The value of largest magnitude, the first one on ties, 0 when all are 0: the scan of q4_0/q5_0 ref."""
    amax = f32(0)
    mx = f32(0)
    for j in range(QK):
        v = x[r, base + j]
        a = abs(v)
        if amax < a:
            amax = a
            mx = v
    return mx


@njit(**JIT, inline="always")
def _absmax_signed(x, r, base, qk):
    """``_absmax_signed_scan`` for finite input, with integer maxima over the bit patterns, and whether the block
    holds a NaN or Inf.

    The largest int32 pattern is the largest non-negative value (patterns of negative floats are negative);
    the largest uint32 pattern is the most negative value. The larger magnitude wins; a tie between +a and -a
    needs the scan, since C keeps whichever comes first. A NaN or Inf is a pattern at or above +Inf's (as int32)
    or -Inf's (as uint32): the same maxima find them, so the row needs no separate finiteness pass.
    """
    pmax = np.int32(-1)
    umax = np.uint32(0)
    for j in range(qk):
        u = f32_bits(x[r, base + j])
        s = np.int32(u)
        pmax = s if s > pmax else pmax
        umax = u if u > umax else umax
    nonfinite = (pmax >= _PINF) | (umax >= _NINF)
    nmag = np.int32(umax & _ABS) if umax > _ABS else np.int32(-1)
    if pmax > nmag:
        return (bits_f32(pmax) if pmax > 0 else f32(0)), nonfinite
    if nmag > pmax:
        return (bits_f32(umax) if nmag > 0 else f32(0)), nonfinite
    if pmax <= 0:
        return f32(0), nonfinite  # all zeros (C's max stays +0.0f)
    return _absmax_signed_scan(x, r, base), nonfinite


@njit(**JIT, inline="always")
def _absmax(x, r, base, qk):
    """``amax = MAX(amax, fabsf(v))`` over a block (q8_0/q8_1 ref), as the largest magnitude bit pattern, and
    whether the block holds a NaN or Inf (a magnitude pattern at or above Inf's)."""
    m = np.uint32(0)
    for j in range(qk):
        a = f32_bits(x[r, base + j]) & _ABS
        m = a if a > m else m
    return bits_f32(m), m >= np.uint32(_PINF)


@njit(**JIT)
def _minmax_scan(x, r, base):
    """Block min and max as q4_1/q5_1 ref compute them (from FLT_MAX and -FLT_MAX, strict comparisons)."""
    mn = _FLT_MAX
    mx = -_FLT_MAX
    for j in range(QK):
        v = x[r, base + j]
        if v < mn:
            mn = v
        if v > mx:
            mx = v
    return mn, mx


@njit(**JIT, inline="always")
def _minmax(x, r, base, qk):
    """``_minmax_scan`` for finite input, from integer extremes of the bit patterns.

    As int32, non-negative floats order as their values and negative ones in reverse; as uint32 every negative
    is above every non-negative, the most negative highest. So the max is the largest int32 if that is
    non-negative, else the smallest; the min is the largest uint32 if that is negative, else the smallest int32.
    C's comparisons call -0 and +0 equal and keep the first seen, so a zero min or max is left to the scan.
    A NaN or Inf shows as an int32 pattern at or above +Inf's or a uint32 one at or above -Inf's (returned last).
    """
    smax = np.int32(-2147483648)
    smin = np.int32(2147483647)
    umax = np.uint32(0)
    for j in range(qk):
        u = f32_bits(x[r, base + j])
        s = np.int32(u)
        smax = s if s > smax else smax
        smin = s if s < smin else smin
        umax = u if u > umax else umax
    nonfinite = (smax >= _PINF) | (umax >= _NINF)
    mx = bits_f32(smax) if smax >= 0 else bits_f32(smin)
    mn = bits_f32(umax) if umax > _ABS else bits_f32(smin)
    if mn == f32(0) or mx == f32(0):
        mn, mx = _minmax_scan(x, r, base)
    return mn, mx, nonfinite


@njit(**JIT)
def _sigma2(xr):
    """``sum(x*x)/n_per_row`` over the whole row, summed in order (ggml's quantize_row_<t>_impl)."""
    s = f32(0)
    for j in range(xr.shape[0]):
        s += xr[j] * xr[j]
    return s / f32(xr.shape[0])


@njit(**JIT, inline="always")
def _block_weights(xr, base, w, sigma2, weight):
    """ggml's ``weight[j] = qw[j] * sqrtf(sigma2 + xb[j]*xb[j])`` for one block."""
    for j in range(QK):
        v = xr[base + j]
        weight[j] = w[base + j] * np.sqrt(sigma2 + v * v)


# ----------------------------------------------------------------------------------------------- reference
#
# Each row is done in two passes: the block scales first (a block's scan, division and reciprocal form a long
# dependency chain; with nothing else between them, the chains of successive blocks overlap), then the levels.
# When every block's scale and reciprocal are finite, the scaled values are small (|x*id| <= nmax and a bit), so
# the levels pass may use a plain conversion (``trunc_small``); otherwise it uses the exact emulation of C's.


@njit(**JIT, inline="always")
def trunc_small(v):
    """``(int)v`` for |v| < 2^31: what :func:`to_i8` and :func:`cvtt` give there, without the range test."""
    return np.int32(v)


@njit(**JIT, inline="always")
def roundf_small(v):
    """``(int)roundf(v)`` for |v| < 2^31: :func:`roundf_i8` there, without the range test."""
    q = np.int32(v)
    r = v - f32(q)
    if r >= f32(0.5):
        q = np.int32(q + np.int32(1))
    elif r <= f32(-0.5):
        q = np.int32(q - np.int32(1))
    return q


@njit(**JIT, inline="always")
def _finite(f):
    return abs(f) <= _FLT_MAX


@njit(**JIT, inline="always")
def _levels_q4_0(x, r, out, ids, nb, qk, conv):
    for ib in range(nb):
        base = ib * QK
        p = ib * Q4_0_B + Q4_0_QS
        id = ids[ib]
        for j in range(qk // 2):
            q0 = min(np.int32(15), conv(x[r, base + j] * id + f32(8.5)))
            q1 = min(np.int32(15), conv(x[r, base + QK // 2 + j] * id + f32(8.5)))
            out[r, p + j] = np.uint8((q0 | (q1 << np.int32(4))) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q4_0(x, out, bad):
    """ggml's quantize_row_q4_0_ref, row by row."""
    n = x.shape[1]
    nb = n // QK
    for r in prange(x.shape[0]):
        qk = _qk(n, nb)
        nonfinite = False
        ids = np.empty(nb, np.float32)
        small = True
        for ib in range(nb):
            amax, nf = _absmax_signed(x, r, ib * QK, qk)
            nonfinite |= nf
            d = amax / f32(-8)
            id = f32(1) / d if d != f32(0) else f32(0)
            small &= _finite(id)
            ids[ib] = id
            put_half(out, r, ib * Q4_0_B + Q4_0_D, d)
        bad[r] = np.uint8(nonfinite)
        if nonfinite:
            continue  # :mod:`pyquant.quant` raises, naming the row; its bytes are never seen
        if small:
            _levels_q4_0(x, r, out, ids, nb, qk, trunc_small)
        else:
            _levels_q4_0(x, r, out, ids, nb, qk, to_i8)


@njit(**JIT, inline="always")
def _levels_q4_1(x, r, out, mins, ids, nb, qk, conv):
    for ib in range(nb):
        base = ib * QK
        p = ib * Q4_1_B + Q4_1_QS
        mn = mins[ib]
        id = ids[ib]
        for j in range(qk // 2):
            q0 = min(np.int32(15), conv((x[r, base + j] - mn) * id + f32(0.5)))
            q1 = min(np.int32(15), conv((x[r, base + QK // 2 + j] - mn) * id + f32(0.5)))
            out[r, p + j] = np.uint8((q0 | (q1 << np.int32(4))) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q4_1(x, out, bad):
    """ggml's quantize_row_q4_1_ref, row by row."""
    n = x.shape[1]
    nb = n // QK
    for r in prange(x.shape[0]):
        qk = _qk(n, nb)
        nonfinite = False
        mins = np.empty(nb, np.float32)
        ids = np.empty(nb, np.float32)
        small = True
        for ib in range(nb):
            mn, mx, nf = _minmax(x, r, ib * QK, qk)
            nonfinite |= nf
            d = (mx - mn) / f32(15)
            id = f32(1) / d if d != f32(0) else f32(0)
            small &= _finite(d) & _finite(id)
            ids[ib] = id
            mins[ib] = mn
            put_half(out, r, ib * Q4_1_B + Q4_1_D, d)
            put_half(out, r, ib * Q4_1_B + Q4_1_M, mn)
        bad[r] = np.uint8(nonfinite)
        if nonfinite:
            continue  # :mod:`pyquant.quant` raises, naming the row; its bytes are never seen
        if small:
            _levels_q4_1(x, r, out, mins, ids, nb, qk, trunc_small)
        else:
            _levels_q4_1(x, r, out, mins, ids, nb, qk, to_i8)


@njit(**JIT, inline="always")
def _levels_q5_0(x, r, out, ids, nb, qk, conv):
    for ib in range(nb):
        base = ib * QK
        p = ib * Q5_0_B + Q5_0_QS
        id = ids[ib]
        qh = np.uint32(0)
        for j in range(qk // 2):
            q0 = min(np.int32(31), conv(x[r, base + j] * id + f32(16.5))) & np.int32(0xFF)
            q1 = min(np.int32(31), conv(x[r, base + QK // 2 + j] * id + f32(16.5))) & np.int32(0xFF)
            out[r, p + j] = np.uint8((q0 & np.int32(0x0F)) | ((q1 & np.int32(0x0F)) << np.int32(4)))
            qh = _pack_qh(qh, q0, q1, j)
        _put_u32(out, r, ib * Q5_0_B + Q5_0_QH, qh)


@njit(**PJIT)
def quantize_rows_q5_0(x, out, bad):
    """ggml's quantize_row_q5_0_ref, row by row."""
    n = x.shape[1]
    nb = n // QK
    for r in prange(x.shape[0]):
        qk = _qk(n, nb)
        nonfinite = False
        ids = np.empty(nb, np.float32)
        small = True
        for ib in range(nb):
            amax, nf = _absmax_signed(x, r, ib * QK, qk)
            nonfinite |= nf
            d = amax / f32(-16)
            id = f32(1) / d if d != f32(0) else f32(0)
            small &= _finite(id)
            ids[ib] = id
            put_half(out, r, ib * Q5_0_B + Q5_0_D, d)
        bad[r] = np.uint8(nonfinite)
        if nonfinite:
            continue  # :mod:`pyquant.quant` raises, naming the row; its bytes are never seen
        if small:
            _levels_q5_0(x, r, out, ids, nb, qk, trunc_small)
        else:
            _levels_q5_0(x, r, out, ids, nb, qk, to_i8)


@njit(**JIT, inline="always")
def _levels_q5_1(x, r, out, mins, ids, nb, qk, conv):
    for ib in range(nb):
        base = ib * QK
        p = ib * Q5_1_B + Q5_1_QS
        mn = mins[ib]
        id = ids[ib]
        qh = np.uint32(0)
        for j in range(qk // 2):
            q0 = conv((x[r, base + j] - mn) * id + f32(0.5)) & np.int32(0xFF)  # (uint8_t), no clamp in ggml
            q1 = conv((x[r, base + QK // 2 + j] - mn) * id + f32(0.5)) & np.int32(0xFF)
            out[r, p + j] = np.uint8((q0 & np.int32(0x0F)) | ((q1 & np.int32(0x0F)) << np.int32(4)))
            qh = _pack_qh(qh, q0, q1, j)
        _put_u32(out, r, ib * Q5_1_B + Q5_1_QH, qh)


@njit(**PJIT)
def quantize_rows_q5_1(x, out, bad):
    """ggml's quantize_row_q5_1_ref, row by row."""
    n = x.shape[1]
    nb = n // QK
    for r in prange(x.shape[0]):
        qk = _qk(n, nb)
        nonfinite = False
        mins = np.empty(nb, np.float32)
        ids = np.empty(nb, np.float32)
        small = True
        for ib in range(nb):
            mn, mx, nf = _minmax(x, r, ib * QK, qk)
            nonfinite |= nf
            d = (mx - mn) / f32(31)
            id = f32(1) / d if d != f32(0) else f32(0)
            small &= _finite(d) & _finite(id)
            ids[ib] = id
            mins[ib] = mn
            put_half(out, r, ib * Q5_1_B + Q5_1_D, d)
            put_half(out, r, ib * Q5_1_B + Q5_1_M, mn)
        bad[r] = np.uint8(nonfinite)
        if nonfinite:
            continue  # :mod:`pyquant.quant` raises, naming the row; its bytes are never seen
        if small:
            _levels_q5_1(x, r, out, mins, ids, nb, qk, trunc_small)
        else:
            _levels_q5_1(x, r, out, mins, ids, nb, qk, cvtt)


@njit(**JIT, inline="always")
def _levels_q8_0(x, r, out, ids, nb, qk, conv):
    for ib in range(nb):
        base = ib * QK
        p = ib * Q8_0_B + Q8_0_QS
        id = ids[ib]
        for j in range(qk):
            out[r, p + j] = np.uint8(conv(x[r, base + j] * id) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q8_0(x, out, bad):
    """ggml's quantize_row_q8_0_ref, row by row (quantize_q8_0 ignores an importance matrix)."""
    n = x.shape[1]
    nb = n // QK
    for r in prange(x.shape[0]):
        qk = _qk(n, nb)
        nonfinite = False
        ids = np.empty(nb, np.float32)
        small = True
        for ib in range(nb):
            amax, nf = _absmax(x, r, ib * QK, qk)
            nonfinite |= nf
            d = amax / f32(127)
            id = f32(1) / d if d != f32(0) else f32(0)
            small &= _finite(id)
            ids[ib] = id
            put_half(out, r, ib * Q8_0_B + Q8_0_D, d)
        bad[r] = np.uint8(nonfinite)
        if nonfinite:
            continue  # :mod:`pyquant.quant` raises, naming the row; its bytes are never seen
        if small:
            _levels_q8_0(x, r, out, ids, nb, qk, roundf_small)
        else:
            _levels_q8_0(x, r, out, ids, nb, qk, roundf_i8)


@njit(**JIT, inline="always")
def _levels_q8_1(x, r, out, ds, ids, nb, qk, conv):
    for ib in range(nb):
        base = ib * QK
        p = ib * Q8_1_B + Q8_1_QS
        id = ids[ib]
        s = np.int32(0)
        for j in range(qk):
            q = np.int32(np.int8(conv(x[r, base + j] * id)))
            out[r, p + j] = np.uint8(q & np.int32(0xFF))
            s = np.int32(s + q)
        put_half(out, r, ib * Q8_1_B + Q8_1_S, f32(s) * ds[ib])


@njit(**PJIT)
def quantize_rows_q8_1(x, out, bad):
    """ggml's quantize_row_q8_1_ref, row by row."""
    n = x.shape[1]
    nb = n // QK
    for r in prange(x.shape[0]):
        qk = _qk(n, nb)
        nonfinite = False
        ds = np.empty(nb, np.float32)
        ids = np.empty(nb, np.float32)
        small = True
        for ib in range(nb):
            amax, nf = _absmax(x, r, ib * QK, qk)
            nonfinite |= nf
            d = amax / f32(127)
            id = f32(1) / d if d != f32(0) else f32(0)
            small &= _finite(id)
            ids[ib] = id
            ds[ib] = d
            put_half(out, r, ib * Q8_1_B + Q8_1_D, d)
        bad[r] = np.uint8(nonfinite)
        if nonfinite:
            continue  # :mod:`pyquant.quant` raises, naming the row; its bytes are never seen
        if small:
            _levels_q8_1(x, r, out, ds, ids, nb, qk, roundf_small)
        else:
            _levels_q8_1(x, r, out, ds, ids, nb, qk, roundf_i8)


# ----------------------------------------------------------------------------------------------- imatrix


@njit(**PJIT)
def quantize_rows_q4_0_imatrix(x, w, out, bad):
    """ggml's quantize_q4_0 with quant_weights (quantize_row_q4_0_impl): make_qx_quants (lane-parallel) on weighted blocks."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        weight = np.empty(QK, np.float32)
        L = np.empty(QK, np.int8)
        isc = np.empty(NLANE, np.float32)
        slx = np.empty(NLANE, np.float32)
        sl2 = np.empty(NLANE, np.float32)
        sigma2 = _sigma2(xr)
        for ib in range(nb):
            base = ib * QK
            p = ib * Q4_0_B
            _block_weights(xr, base, w, sigma2, weight)
            d = make_qx_quants_lanes(QK, xr[base : base + QK], L, 8, weight, isc, slx, sl2)
            put_half(out, r, p + Q4_0_D, d)
            for j in range(QK // 2):
                out[r, p + Q4_0_QS + j] = np.uint8((np.int32(L[j]) | (np.int32(L[j + QK // 2]) << np.int32(4))) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q4_1_imatrix(x, w, out, bad):
    """ggml's quantize_q4_1 with quant_weights (quantize_row_q4_1_impl): make_qkx3_quants on weighted blocks."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        weight = np.empty(QK, np.float32)
        L = np.empty(QK, np.uint8)
        lanes = np.empty(8 * QKX_NLANE, np.float32)
        sigma2 = _sigma2(xr)
        for ib in range(nb):
            base = ib * QK
            p = ib * Q4_1_B
            _block_weights(xr, base, w, sigma2, weight)
            # make_qkx3_quants(QK, 15, x, weight, L, &the_min, Laux, -0.9f, 0.05f, 36, false), 8 steps side by side
            d, the_min = qkx_search(QK, 15, xr, base, weight, L, 0, f32(-0.9), f32(0.05), 36, False, True, lanes)
            put_half(out, r, p + Q4_1_D, d)
            put_half(out, r, p + Q4_1_M, -the_min)
            for j in range(QK // 2):
                out[r, p + Q4_1_QS + j] = np.uint8((np.int32(L[j]) | (np.int32(L[j + QK // 2]) << np.int32(4))) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q5_0_imatrix(x, w, out, bad):
    """ggml's quantize_q5_0 with quant_weights (quantize_row_q5_0_impl): make_qx_quants (lane-parallel) on weighted blocks."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        weight = np.empty(QK, np.float32)
        L = np.empty(QK, np.int8)
        isc = np.empty(NLANE, np.float32)
        slx = np.empty(NLANE, np.float32)
        sl2 = np.empty(NLANE, np.float32)
        sigma2 = _sigma2(xr)
        for ib in range(nb):
            base = ib * QK
            p = ib * Q5_0_B
            _block_weights(xr, base, w, sigma2, weight)
            d = make_qx_quants_lanes(QK, xr[base : base + QK], L, 16, weight, isc, slx, sl2)
            put_half(out, r, p + Q5_0_D, d)
            qh = np.uint32(0)
            for j in range(QK // 2):
                q0 = np.int32(L[j]) & np.int32(0xFF)
                q1 = np.int32(L[j + QK // 2]) & np.int32(0xFF)
                out[r, p + Q5_0_QS + j] = np.uint8((q0 & np.int32(0x0F)) | ((q1 & np.int32(0x0F)) << np.int32(4)))
                qh = _pack_qh(qh, q0, q1, j)
            _put_u32(out, r, p + Q5_0_QH, qh)


@njit(**PJIT)
def quantize_rows_q5_1_imatrix(x, w, out, bad):
    """ggml's quantize_q5_1 with quant_weights (quantize_row_q5_1_impl): make_qkx3_quants on weighted blocks."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        weight = np.empty(QK, np.float32)
        L = np.empty(QK, np.uint8)
        lanes = np.empty(8 * QKX_NLANE, np.float32)
        sigma2 = _sigma2(xr)
        for ib in range(nb):
            base = ib * QK
            p = ib * Q5_1_B
            _block_weights(xr, base, w, sigma2, weight)
            # make_qkx3_quants(QK, 31, x, weight, L, &the_min, Laux, -0.9f, 0.05f, 36, false), 8 steps side by side
            d, the_min = qkx_search(QK, 31, xr, base, weight, L, 0, f32(-0.9), f32(0.05), 36, False, True, lanes)
            put_half(out, r, p + Q5_1_D, d)
            put_half(out, r, p + Q5_1_M, -the_min)
            qh = np.uint32(0)
            for j in range(QK // 2):
                q0 = np.int32(L[j])
                q1 = np.int32(L[j + QK // 2])
                out[r, p + Q5_1_QS + j] = np.uint8((q0 & np.int32(0x0F)) | ((q1 & np.int32(0x0F)) << np.int32(4)))
                qh = _pack_qh(qh, q0, q1, j)
            _put_u32(out, r, p + Q5_1_QH, qh)


# ----------------------------------------------------------------------------------------------- dequantize


@njit(**PJIT)
def dequantize_rows_q4_0(data, out):
    """ggml's dequantize_row_q4_0, row by row."""
    n = out.shape[1]
    nb = n // QK
    for r in prange(out.shape[0]):
        qk = _qk(n, nb)
        for ib in range(nb):
            p = ib * Q4_0_B
            base = ib * QK
            d = get_half(data, r, p + Q4_0_D)
            for j in range(qk // 2):
                b = np.int32(data[r, p + Q4_0_QS + j])
                out[r, base + j] = f32((b & np.int32(0x0F)) - np.int32(8)) * d
                out[r, base + QK // 2 + j] = f32((b >> np.int32(4)) - np.int32(8)) * d


@njit(**PJIT)
def dequantize_rows_q4_1(data, out):
    """ggml's dequantize_row_q4_1, row by row."""
    n = out.shape[1]
    nb = n // QK
    for r in prange(out.shape[0]):
        qk = _qk(n, nb)
        for ib in range(nb):
            p = ib * Q4_1_B
            base = ib * QK
            d = get_half(data, r, p + Q4_1_D)
            m = get_half(data, r, p + Q4_1_M)
            if _nonfinite_half(data, r, p + Q4_1_D) or _nonfinite_half(data, r, p + Q4_1_M):
                for j in range(QK // 2):
                    b = np.int32(data[r, p + Q4_1_QS + j])
                    out[r, base + j] = _mul_add_c(f32(b & np.int32(0x0F)), d, m)
                    out[r, base + QK // 2 + j] = _mul_add_c(f32(b >> np.int32(4)), d, m)
                continue
            for j in range(qk // 2):
                b = np.int32(data[r, p + Q4_1_QS + j])
                out[r, base + j] = f32(b & np.int32(0x0F)) * d + m
                out[r, base + QK // 2 + j] = f32(b >> np.int32(4)) * d + m


@njit(**PJIT)
def dequantize_rows_q5_0(data, out):
    """ggml's dequantize_row_q5_0, row by row."""
    n = out.shape[1]
    nb = n // QK
    for r in prange(out.shape[0]):
        qk = _qk(n, nb)
        for ib in range(nb):
            p = ib * Q5_0_B
            base = ib * QK
            d = get_half(data, r, p + Q5_0_D)
            qh = _get_u32(data, r, p + Q5_0_QH)
            for j in range(qk // 2):
                b = np.uint32(data[r, p + Q5_0_QS + j])
                h0 = ((qh >> np.uint32(j)) << np.uint32(4)) & np.uint32(0x10)
                h1 = (qh >> np.uint32(j + 12)) & np.uint32(0x10)
                out[r, base + j] = f32(np.int32((b & np.uint32(0x0F)) | h0) - np.int32(16)) * d
                out[r, base + QK // 2 + j] = f32(np.int32((b >> np.uint32(4)) | h1) - np.int32(16)) * d


@njit(**PJIT)
def dequantize_rows_q5_1(data, out):
    """ggml's dequantize_row_q5_1, row by row."""
    n = out.shape[1]
    nb = n // QK
    for r in prange(out.shape[0]):
        qk = _qk(n, nb)
        for ib in range(nb):
            p = ib * Q5_1_B
            base = ib * QK
            d = get_half(data, r, p + Q5_1_D)
            m = get_half(data, r, p + Q5_1_M)
            qh = _get_u32(data, r, p + Q5_1_QH)
            if _nonfinite_half(data, r, p + Q5_1_D) or _nonfinite_half(data, r, p + Q5_1_M):
                for j in range(QK // 2):
                    b = np.uint32(data[r, p + Q5_1_QS + j])
                    h0 = ((qh >> np.uint32(j)) << np.uint32(4)) & np.uint32(0x10)
                    h1 = (qh >> np.uint32(j + 12)) & np.uint32(0x10)
                    out[r, base + j] = _mul_add_c(f32(np.int32((b & np.uint32(0x0F)) | h0)), d, m)
                    out[r, base + QK // 2 + j] = _mul_add_c(f32(np.int32((b >> np.uint32(4)) | h1)), d, m)
                continue
            for j in range(qk // 2):
                b = np.uint32(data[r, p + Q5_1_QS + j])
                h0 = ((qh >> np.uint32(j)) << np.uint32(4)) & np.uint32(0x10)
                h1 = (qh >> np.uint32(j + 12)) & np.uint32(0x10)
                out[r, base + j] = f32(np.int32((b & np.uint32(0x0F)) | h0)) * d + m
                out[r, base + QK // 2 + j] = f32(np.int32((b >> np.uint32(4)) | h1)) * d + m


@njit(**PJIT)
def dequantize_rows_q8_0(data, out):
    """ggml's dequantize_row_q8_0, row by row."""
    n = out.shape[1]
    nb = n // QK
    for r in prange(out.shape[0]):
        qk = _qk(n, nb)
        for ib in range(nb):
            p = ib * Q8_0_B
            base = ib * QK
            d = get_half(data, r, p + Q8_0_D)
            for j in range(qk):
                out[r, base + j] = f32(np.int8(data[r, p + Q8_0_QS + j])) * d


@njit(**PJIT)
def dequantize_rows_q8_1(data, out):
    """Q8_1 has no dequantize_row in ggml; its definition: y = d * q, d the half at byte 0 (s is unused)."""
    n = out.shape[1]
    nb = n // QK
    for r in prange(out.shape[0]):
        qk = _qk(n, nb)
        for ib in range(nb):
            p = ib * Q8_1_B
            base = ib * QK
            d = get_half(data, r, p + Q8_1_D)
            for j in range(qk):
                out[r, base + j] = f32(np.int8(data[r, p + Q8_1_QS + j])) * d


register(T.Q4_0, Kernels(quantize_rows_q4_0, dequantize_rows_q4_0, quantize_rows_q4_0_imatrix, WEIGHTED))
register(T.Q4_1, Kernels(quantize_rows_q4_1, dequantize_rows_q4_1, quantize_rows_q4_1_imatrix, WEIGHTED))
register(T.Q5_0, Kernels(quantize_rows_q5_0, dequantize_rows_q5_0, quantize_rows_q5_0_imatrix, WEIGHTED))
register(T.Q5_1, Kernels(quantize_rows_q5_1, dequantize_rows_q5_1, quantize_rows_q5_1_imatrix, WEIGHTED))
register(T.Q8_0, Kernels(quantize_rows_q8_0, dequantize_rows_q8_0, imatrix=IGNORED))
register(T.Q8_1, Kernels(quantize_rows_q8_1, dequantize_rows_q8_1, imatrix=UNSUPPORTED))
