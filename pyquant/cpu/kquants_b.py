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
from .search import make_q3_quants, make_qx_quants, nearest_int

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


@njit(**JIT)
def _q3_K_finish(x, xb, o, ob, L):
    """The tail both Q3_K quantizers share: requantize with the stored scales, then pack hmask and qs."""
    d_all = _half(o, ob + 108)
    for j in range(16):
        d = d_all * f32(_q3_scale(o, ob + 96, j) - 32)
        if d == f32(0.0):
            continue  # L keeps the search's levels
        for ii in range(16):
            l = nearest_int(x[xb + 16 * j + ii] / d)
            l = max(-4, min(3, l))
            L[16 * j + ii] = l + 4
    for m in range(32):
        o[ob + m] = np.uint8(0)
    # the high bit of quant j goes to hmask[j % 32], bit j // 32
    for j in range(QK_K):
        if L[j] > 3:
            o[ob + (j % 32)] |= np.uint8(1 << (j // 32))
            L[j] -= 4
    for jj in range(0, QK_K, 128):
        for l in range(32):
            o[ob + 32 + jj // 4 + l] = np.uint8(
                L[jj + l] | (L[jj + l + 32] << 2) | (L[jj + l + 64] << 4) | (L[jj + l + 96] << 6)
            )


@njit(**JIT)
def _q3_put_scale(o, ob, j, l):
    """Pack the j-th 6-bit scale l (0..63) into a zeroed scales[12]: low nibbles, then 2-bit high parts."""
    sb = ob + 96
    if j < 8:
        o[sb + j] = np.uint8(l & 0xF)
    else:
        o[sb + j - 8] |= np.uint8((l & 0xF) << 4)
    o[sb + 8 + (j % 4)] |= np.uint8((l >> 4) << (2 * (j // 4)))


@njit(**PJIT)
def quantize_rows_q3_K(x, out):
    """ggml's quantize_row_q3_K_ref."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        L = np.empty(QK_K, dtype=np.int8)
        scales = np.empty(16, dtype=np.float32)
        for i in range(nb):
            xb = i * QK_K
            ob = i * Q3_K_BYTES
            max_scale = f32(0.0)
            amax = f32(0.0)
            for j in range(16):
                s = make_q3_quants(16, 4, xr[xb + 16 * j: xb + 16 * j + 16], L[16 * j: 16 * j + 16], True)
                scales[j] = s
                if abs(s) > amax:
                    amax = abs(s)
                    max_scale = s
            for j in range(12):
                o[ob + 96 + j] = np.uint8(0)
            if max_scale != f32(0.0):
                iscale = f32(-32.0) / max_scale
                for j in range(16):
                    l = np.int32(np.int8(nearest_int(iscale * scales[j])))  # C stores it in an int8_t first
                    l = max(-32, min(31, l)) + 32
                    _q3_put_scale(o, ob, j, l)
                _put_half(o, ob + 108, f32(1.0) / iscale)
            else:
                _put_half(o, ob + 108, f32(0.0))
            _q3_K_finish(xr, xb, o, ob, L)


@njit(**PJIT)
def quantize_imatrix_rows_q3_K(x, qw, out):
    """ggml's quantize_q3_K with quant_weights (quantize_row_q3_K_impl), row by row."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        L = np.empty(QK_K, dtype=np.int8)
        scales = np.empty(16, dtype=np.float32)
        weight = np.empty(16, dtype=np.float32)
        sw = np.empty(16, dtype=np.float32)
        Ls = np.empty(16, dtype=np.int8)
        for i in range(nb):
            xb = i * QK_K
            ob = i * Q3_K_BYTES
            sumx2 = f32(0.0)
            for j in range(QK_K):
                sumx2 += xr[xb + j] * xr[xb + j]
            sigma2 = f32(2.0) * sumx2 / f32(QK_K)
            for j in range(16):
                for l in range(16):
                    v = xr[xb + 16 * j + l]
                    weight[l] = qw[xb + 16 * j + l] * np.sqrt(sigma2 + v * v)
                sumw = f32(0.0)
                for l in range(16):
                    sumw += weight[l]
                sw[j] = sumw
                scales[j] = make_qx_quants(16, 4, xr[xb + 16 * j: xb + 16 * j + 16], L[16 * j: 16 * j + 16], 1, weight, True)
            for j in range(12):
                o[ob + 96 + j] = np.uint8(0)
            d_block = make_qx_quants(16, 32, scales, Ls, 1, sw, True)
            for j in range(16):
                _q3_put_scale(o, ob, j, np.int32(Ls[j]))
            _put_half(o, ob + 108, d_block)
            _q3_K_finish(xr, xb, o, ob, L)


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


@njit(**JIT)
def _q6_K_finish(x, xb, o, ob, L, scales):
    """The tail both Q6_K quantizers share: int8 scales, requantization, ql/qh packing."""
    max_scale = f32(0.0)
    max_abs_scale = f32(0.0)
    for ib in range(16):
        if abs(scales[ib]) > max_abs_scale:
            max_abs_scale = abs(scales[ib])
            max_scale = scales[ib]
    if max_abs_scale < f32(1e-15):  # GROUP_MAX_EPS
        for j in range(Q6_K_BYTES):
            o[ob + j] = np.uint8(0)
        return
    iscale = f32(-128.0) / max_scale
    _put_half(o, ob + 208, f32(1.0) / iscale)
    for ib in range(16):
        o[ob + 192 + ib] = np.uint8(min(127, nearest_int(iscale * scales[ib])) & 0xFF)
    d_all = _half(o, ob + 208)
    for j in range(16):
        d = d_all * f32(np.int8(o[ob + 192 + j]))
        if d == f32(0.0):
            continue  # L keeps the search's levels
        for ii in range(16):
            l = nearest_int(x[xb + 16 * j + ii] / d)
            l = max(-32, min(31, l))
            L[16 * j + ii] = l + 32
    for h in range(2):
        jj = 128 * h
        ql = ob + 64 * h
        qh = ob + 128 + 32 * h
        for l in range(32):
            a = np.int32(L[jj + l])
            b = np.int32(L[jj + l + 32])
            c = np.int32(L[jj + l + 64])
            e = np.int32(L[jj + l + 96])
            o[ql + l] = np.uint8((a & 0xF) | ((c & 0xF) << 4))
            o[ql + 32 + l] = np.uint8((b & 0xF) | ((e & 0xF) << 4))
            o[qh + l] = np.uint8(((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)) & 0xFF)


@njit(**PJIT)
def quantize_rows_q6_K(x, out):
    """ggml's quantize_row_q6_K_ref."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        L = np.empty(QK_K, dtype=np.int8)
        scales = np.empty(16, dtype=np.float32)
        for i in range(nb):
            xb = i * QK_K
            for ib in range(16):
                xs = xr[xb + 16 * ib: xb + 16 * ib + 16]
                scales[ib] = make_qx_quants(16, 32, xs, L[16 * ib: 16 * ib + 16], 1, xs, False)
            _q6_K_finish(xr, xb, o, i * Q6_K_BYTES, L, scales)


@njit(**PJIT)
def quantize_imatrix_rows_q6_K(x, qw, out):
    """ggml's quantize_q6_K with quant_weights (quantize_row_q6_K_impl): the weights go to make_qx_quants as is."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        xr = x[r]
        o = out[r]
        L = np.empty(QK_K, dtype=np.int8)
        scales = np.empty(16, dtype=np.float32)
        for i in range(nb):
            xb = i * QK_K
            for ib in range(16):
                a = xb + 16 * ib
                scales[ib] = make_qx_quants(16, 32, xr[a: a + 16], L[16 * ib: 16 * ib + 16], 1, qw[a: a + 16], True)
            _q6_K_finish(xr, xb, o, i * Q6_K_BYTES, L, scales)


register(T.Q3_K, Kernels(quantize_rows_q3_K, dequantize_rows_q3_K, quantize_imatrix_rows_q3_K, imatrix=WEIGHTED))
register(T.Q6_K, Kernels(quantize_rows_q6_K, dequantize_rows_q6_K, quantize_imatrix_rows_q6_K, imatrix=WEIGHTED))
register(T.Q8_K, Kernels(quantize_rows_q8_K, dequantize_rows_q8_K, imatrix=UNSUPPORTED))
