"""The legacy 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, bit-exact with ggml.

Every float operation is float32 and in C's order (libggml-base is built without FMA contraction, and so is
this: no ``fastmath``). C's float -> small-integer casts compile to ``cvttss2si``/``cvttps2dq`` followed by
taking the low byte; :func:`cvtt` reproduces that, including the out-of-range case (a subnormal scale makes
``1/d`` infinite, and ``0*inf`` is NaN), so even those blocks come out byte for byte as ggml's.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from ..formats import layout
from . import IGNORED, UNSUPPORTED, WEIGHTED, Kernels, register
from .common import JIT, PJIT, f32, fp16_to_fp32, fp32_to_fp16

QK = 32  # every legacy type has 32-element blocks


def _offsets(qtype, *names):
    lay = layout(qtype)
    assert lay.block_size == QK
    return (lay.type_size,) + tuple(lay.field(n).offset for n in names)


# block sizes in bytes and field offsets, from the one layout table (module globals are compile-time constants)
Q4_0_B, Q4_0_D, Q4_0_QS = _offsets(T.Q4_0, "d", "qs")
Q4_1_B, Q4_1_D, Q4_1_M, Q4_1_QS = _offsets(T.Q4_1, "d", "m", "qs")
Q5_0_B, Q5_0_D, Q5_0_QH, Q5_0_QS = _offsets(T.Q5_0, "d", "qh", "qs")
Q5_1_B, Q5_1_D, Q5_1_M, Q5_1_QH, Q5_1_QS = _offsets(T.Q5_1, "d", "m", "qh", "qs")
Q8_0_B, Q8_0_D, Q8_0_QS = _offsets(T.Q8_0, "d", "qs")
Q8_1_B, Q8_1_D, Q8_1_S, Q8_1_QS = _offsets(T.Q8_1, "d", "s", "qs")

_I32_MIN = np.int32(-2147483648)
_TWO31 = f32(2147483648.0)


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
            q += np.int32(1)
        elif r <= f32(-0.5):
            q -= np.int32(1)
    else:
        q = _I32_MIN
    return np.int32(np.int8(q))


@njit(**JIT, inline="always")
def _put_half(o, pos, f):
    h = fp32_to_fp16(f)
    o[pos] = np.uint8(h & np.uint16(0xFF))
    o[pos + 1] = np.uint8(h >> np.uint16(8))


@njit(**JIT, inline="always")
def _get_half(row, pos):
    return fp16_to_fp32(np.uint16(row[pos]) | (np.uint16(row[pos + 1]) << np.uint16(8)))


@njit(**JIT, inline="always")
def _nonfinite_half(row, pos):
    """Whether the half at ``pos`` is an infinity or a NaN (exponent bits all ones)."""
    return (row[pos + 1] & np.uint8(0x7C)) == np.uint8(0x7C)


@njit(**JIT)
def _mul_add_c(q, d, m):
    """``q*d + m`` with x86's NaN choice as GCC orders it: when both the product and ``m`` are NaN, the product's
    NaN comes out (LLVM may swap an fadd's operands, so the NaN case is spelled out)."""
    p = q * d
    if p != p:
        return p
    return p + m


@njit(**JIT, inline="always")
def _put_u32(o, pos, v):
    o[pos] = np.uint8(v & np.uint32(0xFF))
    o[pos + 1] = np.uint8((v >> np.uint32(8)) & np.uint32(0xFF))
    o[pos + 2] = np.uint8((v >> np.uint32(16)) & np.uint32(0xFF))
    o[pos + 3] = np.uint8((v >> np.uint32(24)) & np.uint32(0xFF))


@njit(**JIT, inline="always")
def _get_u32(row, pos):
    return (
        np.uint32(row[pos])
        | (np.uint32(row[pos + 1]) << np.uint32(8))
        | (np.uint32(row[pos + 2]) << np.uint32(16))
        | (np.uint32(row[pos + 3]) << np.uint32(24))
    )


@njit(**JIT, inline="always")
def _absmax_signed(xr, base):
    """The value of largest magnitude in a block, the first one on ties; 0 when all are 0 (q4_0/q5_0 ref)."""
    amax = f32(0)
    mx = f32(0)
    for j in range(QK):
        v = xr[base + j]
        a = abs(v)
        if amax < a:
            amax = a
            mx = v
    return mx


@njit(**JIT, inline="always")
def _absmax(xr, base):
    """``amax = MAX(amax, fabsf(v))`` over a block (q8_0/q8_1 ref)."""
    amax = f32(0)
    for j in range(QK):
        a = abs(xr[base + j])
        amax = amax if amax > a else a
    return amax


@njit(**JIT, inline="always")
def _minmax(xr, base):
    """Block min and max as q4_1/q5_1 ref compute them (from FLT_MAX / -FLT_MAX)."""
    mn = f32(3.4028234663852886e38)
    mx = f32(-3.4028234663852886e38)
    for j in range(QK):
        v = xr[base + j]
        if v < mn:
            mn = v
        if v > mx:
            mx = v
    return mn, mx


# ----------------------------------------------------------------------------------------------- reference


@njit(**PJIT)
def quantize_rows_q4_0(x, out):
    """ggml's quantize_row_q4_0_ref, row by row."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for ib in range(nb):
            base = ib * QK
            p = ib * Q4_0_B
            d = _absmax_signed(xr, base) / f32(-8)
            id = f32(1) / d if d != f32(0) else f32(0)
            _put_half(o, p + Q4_0_D, d)
            for j in range(QK // 2):
                x0 = xr[base + j] * id
                x1 = xr[base + QK // 2 + j] * id
                q0 = min(np.int32(15), to_i8(x0 + f32(8.5)))
                q1 = min(np.int32(15), to_i8(x1 + f32(8.5)))
                o[p + Q4_0_QS + j] = np.uint8((q0 | (q1 << np.int32(4))) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q4_1(x, out):
    """ggml's quantize_row_q4_1_ref, row by row."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for ib in range(nb):
            base = ib * QK
            p = ib * Q4_1_B
            mn, mx = _minmax(xr, base)
            d = (mx - mn) / f32(15)
            id = f32(1) / d if d != f32(0) else f32(0)
            _put_half(o, p + Q4_1_D, d)
            _put_half(o, p + Q4_1_M, mn)
            for j in range(QK // 2):
                x0 = (xr[base + j] - mn) * id
                x1 = (xr[base + QK // 2 + j] - mn) * id
                q0 = min(np.int32(15), to_i8(x0 + f32(0.5)))
                q1 = min(np.int32(15), to_i8(x1 + f32(0.5)))
                o[p + Q4_1_QS + j] = np.uint8((q0 | (q1 << np.int32(4))) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q5_0(x, out):
    """ggml's quantize_row_q5_0_ref, row by row."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for ib in range(nb):
            base = ib * QK
            p = ib * Q5_0_B
            d = _absmax_signed(xr, base) / f32(-16)
            id = f32(1) / d if d != f32(0) else f32(0)
            _put_half(o, p + Q5_0_D, d)
            qh = np.uint32(0)
            for j in range(QK // 2):
                x0 = xr[base + j] * id
                x1 = xr[base + QK // 2 + j] * id
                q0 = min(np.int32(31), to_i8(x0 + f32(16.5))) & np.int32(0xFF)
                q1 = min(np.int32(31), to_i8(x1 + f32(16.5))) & np.int32(0xFF)
                o[p + Q5_0_QS + j] = np.uint8((q0 & np.int32(0x0F)) | ((q1 & np.int32(0x0F)) << np.int32(4)))
                qh |= np.uint32((q0 & np.int32(0x10)) >> np.int32(4)) << np.uint32(j)
                qh |= np.uint32((q1 & np.int32(0x10)) >> np.int32(4)) << np.uint32(j + QK // 2)
            _put_u32(o, p + Q5_0_QH, qh)


@njit(**PJIT)
def quantize_rows_q5_1(x, out):
    """ggml's quantize_row_q5_1_ref, row by row."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for ib in range(nb):
            base = ib * QK
            p = ib * Q5_1_B
            mn, mx = _minmax(xr, base)
            d = (mx - mn) / f32(31)
            id = f32(1) / d if d != f32(0) else f32(0)
            _put_half(o, p + Q5_1_D, d)
            _put_half(o, p + Q5_1_M, mn)
            qh = np.uint32(0)
            for j in range(QK // 2):
                x0 = (xr[base + j] - mn) * id
                x1 = (xr[base + QK // 2 + j] - mn) * id
                q0 = cvtt(x0 + f32(0.5)) & np.int32(0xFF)  # (uint8_t), no clamp in ggml
                q1 = cvtt(x1 + f32(0.5)) & np.int32(0xFF)
                o[p + Q5_1_QS + j] = np.uint8((q0 & np.int32(0x0F)) | ((q1 & np.int32(0x0F)) << np.int32(4)))
                qh |= np.uint32((q0 & np.int32(0x10)) >> np.int32(4)) << np.uint32(j)
                qh |= np.uint32((q1 & np.int32(0x10)) >> np.int32(4)) << np.uint32(j + QK // 2)
            _put_u32(o, p + Q5_1_QH, qh)


@njit(**PJIT)
def quantize_rows_q8_0(x, out):
    """ggml's quantize_row_q8_0_ref, row by row (quantize_q8_0 ignores an importance matrix)."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for ib in range(nb):
            base = ib * QK
            p = ib * Q8_0_B
            d = _absmax(xr, base) / f32(127)
            id = f32(1) / d if d != f32(0) else f32(0)
            _put_half(o, p + Q8_0_D, d)
            for j in range(QK):
                o[p + Q8_0_QS + j] = np.uint8(roundf_i8(xr[base + j] * id) & np.int32(0xFF))


@njit(**PJIT)
def quantize_rows_q8_1(x, out):
    """ggml's quantize_row_q8_1_ref, row by row."""
    nb = x.shape[1] // QK
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for ib in range(nb):
            base = ib * QK
            p = ib * Q8_1_B
            d = _absmax(xr, base) / f32(127)
            id = f32(1) / d if d != f32(0) else f32(0)
            _put_half(o, p + Q8_1_D, d)
            s = np.int32(0)
            for j in range(QK):
                q = roundf_i8(xr[base + j] * id)
                o[p + Q8_1_QS + j] = np.uint8(q & np.int32(0xFF))
                s += q
            _put_half(o, p + Q8_1_S, f32(s) * d)


# ----------------------------------------------------------------------------------------------- dequantize


@njit(**PJIT)
def dequantize_rows_q4_0(data, out):
    """ggml's dequantize_row_q4_0, row by row."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for ib in range(nb):
            p = ib * Q4_0_B
            base = ib * QK
            d = _get_half(row, p + Q4_0_D)
            for j in range(QK // 2):
                b = np.int32(row[p + Q4_0_QS + j])
                y[base + j] = f32((b & np.int32(0x0F)) - np.int32(8)) * d
                y[base + QK // 2 + j] = f32((b >> np.int32(4)) - np.int32(8)) * d


@njit(**PJIT)
def dequantize_rows_q4_1(data, out):
    """ggml's dequantize_row_q4_1, row by row."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for ib in range(nb):
            p = ib * Q4_1_B
            base = ib * QK
            d = _get_half(row, p + Q4_1_D)
            m = _get_half(row, p + Q4_1_M)
            if _nonfinite_half(row, p + Q4_1_D) or _nonfinite_half(row, p + Q4_1_M):
                for j in range(QK // 2):
                    b = np.int32(row[p + Q4_1_QS + j])
                    y[base + j] = _mul_add_c(f32(b & np.int32(0x0F)), d, m)
                    y[base + QK // 2 + j] = _mul_add_c(f32(b >> np.int32(4)), d, m)
                continue
            for j in range(QK // 2):
                b = np.int32(row[p + Q4_1_QS + j])
                y[base + j] = f32(b & np.int32(0x0F)) * d + m
                y[base + QK // 2 + j] = f32(b >> np.int32(4)) * d + m


@njit(**PJIT)
def dequantize_rows_q5_0(data, out):
    """ggml's dequantize_row_q5_0, row by row."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for ib in range(nb):
            p = ib * Q5_0_B
            base = ib * QK
            d = _get_half(row, p + Q5_0_D)
            qh = _get_u32(row, p + Q5_0_QH)
            for j in range(QK // 2):
                b = np.uint32(row[p + Q5_0_QS + j])
                h0 = ((qh >> np.uint32(j)) << np.uint32(4)) & np.uint32(0x10)
                h1 = (qh >> np.uint32(j + 12)) & np.uint32(0x10)
                y[base + j] = f32(np.int32((b & np.uint32(0x0F)) | h0) - np.int32(16)) * d
                y[base + QK // 2 + j] = f32(np.int32((b >> np.uint32(4)) | h1) - np.int32(16)) * d


@njit(**PJIT)
def dequantize_rows_q5_1(data, out):
    """ggml's dequantize_row_q5_1, row by row."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for ib in range(nb):
            p = ib * Q5_1_B
            base = ib * QK
            d = _get_half(row, p + Q5_1_D)
            m = _get_half(row, p + Q5_1_M)
            qh = _get_u32(row, p + Q5_1_QH)
            slow = _nonfinite_half(row, p + Q5_1_D) or _nonfinite_half(row, p + Q5_1_M)
            for j in range(QK // 2):
                b = np.uint32(row[p + Q5_1_QS + j])
                h0 = ((qh >> np.uint32(j)) << np.uint32(4)) & np.uint32(0x10)
                h1 = (qh >> np.uint32(j + 12)) & np.uint32(0x10)
                if slow:
                    y[base + j] = _mul_add_c(f32(np.int32((b & np.uint32(0x0F)) | h0)), d, m)
                    y[base + QK // 2 + j] = _mul_add_c(f32(np.int32((b >> np.uint32(4)) | h1)), d, m)
                    continue
                y[base + j] = f32(np.int32((b & np.uint32(0x0F)) | h0)) * d + m
                y[base + QK // 2 + j] = f32(np.int32((b >> np.uint32(4)) | h1)) * d + m


@njit(**PJIT)
def dequantize_rows_q8_0(data, out):
    """ggml's dequantize_row_q8_0, row by row."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for ib in range(nb):
            p = ib * Q8_0_B
            base = ib * QK
            d = _get_half(row, p + Q8_0_D)
            for j in range(QK):
                y[base + j] = f32(np.int8(row[p + Q8_0_QS + j])) * d


@njit(**PJIT)
def dequantize_rows_q8_1(data, out):
    """Q8_1 has no dequantize_row in ggml; its definition: y = d * q, d the half at byte 0 (s is unused)."""
    nb = out.shape[1] // QK
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for ib in range(nb):
            p = ib * Q8_1_B
            base = ib * QK
            d = _get_half(row, p + Q8_1_D)
            for j in range(QK):
                y[base + j] = f32(np.int8(row[p + Q8_1_QS + j])) * d


register(T.Q8_0, Kernels(quantize_rows_q8_0, dequantize_rows_q8_0, imatrix=IGNORED))
register(T.Q8_1, Kernels(quantize_rows_q8_1, dequantize_rows_q8_1, imatrix=UNSUPPORTED))
