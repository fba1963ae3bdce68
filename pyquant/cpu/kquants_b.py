"""Q3_K, Q6_K and Q8_K rows: ggml's ``quantize_row_<t>_ref``, ``quantize_<t>`` (imatrix) and ``dequantize_row_<t>``.

Block layouts (ggml-common.h), byte offsets inside one block of QK_K = 256 elements:

- Q3_K (110 B): hmask[32] @0, qs[64] @32, scales[12] @96 (sixteen 6-bit scales), d (half) @108;
- Q6_K (210 B): ql[128] @0, qh[64] @128, scales[16] (int8) @192, d (half) @208;
- Q8_K (292 B): d (float) @0, qs[256] (int8) @4, bsums[16] (int16) @260.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from . import UNSUPPORTED, WEIGHTED, Kernels, register
from .common import JIT, PJIT, bits_f32, f32, f32_bits, fp16_to_fp32, fp32_to_fp16

QK_K = 256
Q3_K_BYTES = 110
Q6_K_BYTES = 210
Q8_K_BYTES = 292


@njit(**JIT)
def _nint(fval):
    """ggml's nearest_int bit for bit, also outside |fval| < 2^22 where it is not rint (inf, NaN, huge)."""
    i = np.int32(f32_bits(fval + f32(12582912.0)) & np.uint32(0x007FFFFF))
    return i - np.int32(0x00400000)


@njit(**JIT)
def _half(row, pos):
    return fp16_to_fp32(np.uint16(row[pos]) | (np.uint16(row[pos + 1]) << np.uint16(8)))


@njit(**JIT)
def _put_half(row, pos, f):
    h = fp32_to_fp16(f)
    row[pos] = np.uint8(h & np.uint16(0xFF))
    row[pos + 1] = np.uint8(h >> np.uint16(8))


# ----------------------------------------------------------------------------------------------- Q8_K


@njit(**PJIT)
def quantize_rows_q8_K(x, out):
    """ggml's quantize_row_q8_K_ref, one row per prange iteration."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        for i in range(nb):
            xb = i * QK_K
            ob = i * Q8_K_BYTES
            mx = f32(0.0)
            amax = f32(0.0)
            for j in range(QK_K):
                ax = abs(xr[xb + j])
                if ax > amax:
                    amax = ax
                    mx = xr[xb + j]
            if amax == f32(0.0):
                # ggml leaves bsums unwritten here; zero is what a zero-initialised buffer holds
                for j in range(Q8_K_BYTES):
                    o[ob + j] = np.uint8(0)
                continue
            # -127/max overflows to -inf for |max| < ~3.7e-37; nearest_int then yields 0x...00 bytes and d = -0
            iscale = f32(-127.0) / mx
            for j in range(QK_K):
                v = _nint(iscale * xr[xb + j])
                if v > 127:
                    v = np.int32(127)
                o[ob + 4 + j] = np.uint8(v & 0xFF)  # C's (int8_t) store keeps the low byte
            for j in range(QK_K // 16):
                s = np.int32(0)
                for ii in range(16):
                    s += np.int32(np.int8(o[ob + 4 + 16 * j + ii]))
                o[ob + 260 + 2 * j] = np.uint8(s & 0xFF)
                o[ob + 261 + 2 * j] = np.uint8((s >> 8) & 0xFF)
            u = f32_bits(f32(1.0) / iscale)
            o[ob] = np.uint8(u & np.uint32(0xFF))
            o[ob + 1] = np.uint8((u >> np.uint32(8)) & np.uint32(0xFF))
            o[ob + 2] = np.uint8((u >> np.uint32(16)) & np.uint32(0xFF))
            o[ob + 3] = np.uint8((u >> np.uint32(24)) & np.uint32(0xFF))


@njit(**PJIT)
def dequantize_rows_q8_K(data, out):
    """ggml's dequantize_row_q8_K: y = d * q."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for i in range(nb):
            ob = i * Q8_K_BYTES
            u = (
                np.uint32(row[ob])
                | (np.uint32(row[ob + 1]) << np.uint32(8))
                | (np.uint32(row[ob + 2]) << np.uint32(16))
                | (np.uint32(row[ob + 3]) << np.uint32(24))
            )
            d = bits_f32(u)
            yb = i * QK_K
            for j in range(QK_K):
                y[yb + j] = d * f32(np.int8(row[ob + 4 + j]))


# ----------------------------------------------------------------------------------------------- Q3_K


@njit(**JIT)
def _q3_scale(row, sb, j):
    """The j-th 6-bit scale of a Q3_K block (0..63, before the -32), as the quantizer and dequantizer read it."""
    if j < 8:
        lo = np.int32(row[sb + j] & np.uint8(0xF))
    else:
        lo = np.int32(row[sb + j - 8] >> np.uint8(4))
    hi = (np.int32(row[sb + 8 + (j % 4)]) >> (2 * (j // 4))) & 3
    return lo | (hi << 4)


@njit(**PJIT)
def dequantize_rows_q3_K(data, out):
    """ggml's dequantize_row_q3_K."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        dl = np.empty(16, dtype=np.float32)
        for i in range(nb):
            ob = i * Q3_K_BYTES
            d_all = _half(row, ob + 108)
            for j in range(16):
                dl[j] = d_all * f32(_q3_scale(row, ob + 96, j) - 32)
            for h in range(2):
                for j in range(4):
                    shift = 2 * j
                    hbit = 4 * h + j
                    yb = i * QK_K + 128 * h + 32 * j
                    qb = ob + 32 + 32 * h
                    for half in range(2):
                        s = dl[8 * h + 2 * j + half]
                        for l in range(16):
                            k = 16 * half + l
                            q = (np.int32(row[qb + k]) >> shift) & 3
                            hb = (np.int32(row[ob + k]) >> hbit) & 1
                            y[yb + k] = s * f32(q + 4 * hb - 4)


# ----------------------------------------------------------------------------------------------- Q6_K


@njit(**PJIT)
def dequantize_rows_q6_K(data, out):
    """ggml's dequantize_row_q6_K: y = (d * scale) * q, rounded in that order."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        ds = np.empty(16, dtype=np.float32)
        for i in range(nb):
            ob = i * Q6_K_BYTES
            d = _half(row, ob + 208)
            for j in range(16):
                ds[j] = d * f32(np.int8(row[ob + 192 + j]))
            for h in range(2):
                ql = ob + 64 * h
                qh = ob + 128 + 32 * h
                yb = i * QK_K + 128 * h
                for l in range(32):
                    is_ = 8 * h + l // 16
                    a = np.int32(row[ql + l])
                    b = np.int32(row[ql + 32 + l])
                    c = np.int32(row[qh + l])
                    y[yb + l] = ds[is_] * f32(((a & 0xF) | ((c & 3) << 4)) - 32)
                    y[yb + 32 + l] = ds[is_ + 2] * f32(((b & 0xF) | (((c >> 2) & 3) << 4)) - 32)
                    y[yb + 64 + l] = ds[is_ + 4] * f32(((a >> 4) | (((c >> 4) & 3) << 4)) - 32)
                    y[yb + 96 + l] = ds[is_ + 6] * f32(((b >> 4) | (((c >> 6) & 3) << 4)) - 32)


register(T.Q8_K, Kernels(quantize_rows_q8_K, dequantize_rows_q8_K, imatrix=UNSUPPORTED))
