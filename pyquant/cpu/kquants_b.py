"""Q3_K, Q6_K and Q8_K rows: ggml's ``quantize_row_<t>_ref``, ``quantize_<t>`` (imatrix) and ``dequantize_row_<t>``.

Block layouts (ggml-common.h), byte offsets inside one block of QK_K = 256 elements:

- Q3_K (110 B): hmask[32] @0, qs[64] @32, scales[12] @96 (sixteen 6-bit scales), d (half) @108;
- Q6_K (210 B): ql[128] @0, qh[64] @128, scales[16] (int8) @192, d (half) @208;
- Q8_K (292 B): d (float) @0, qs[256] (int8) @4, bsums[16] (int16) @260.

Helpers take one block as array views (``x[xb:xb + QK_K]``, ``row[ob:ob + size]``) and index them only with
range variables: Numba cannot prove ``base + i`` non-negative for a ``base`` passed in, and its negative-index
wrap-around then keeps LLVM from vectorizing the loop.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from . import UNSUPPORTED, WEIGHTED, Kernels, register
from .common import JIT, PJIT, bits_f32, f32, f32_bits, fp16_to_fp32, fp32_to_fp16, row_bad
from .search import GROUP_MAX_EPS, nearest_int

QK_K = 256
Q3_K_BYTES = 110
Q6_K_BYTES = 210
Q8_K_BYTES = 292


@njit(**JIT)
def _get_half(b, pos):
    return fp16_to_fp32(np.uint16(b[pos]) | (np.uint16(b[pos + 1]) << np.uint16(8)))


@njit(**JIT)
def _put_half(b, pos, f):
    h = fp32_to_fp16(f)
    b[pos] = np.uint8(h & np.uint16(0xFF))
    b[pos + 1] = np.uint8(h >> np.uint16(8))


@njit(**JIT)
def _absmax(x, n):
    """(amax, max) as ggml's loop ``if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }`` leaves them.

    The first element of largest magnitude wins, NaNs never do (``NaN > amax`` is false). Found through the
    magnitudes' bit patterns, whose integer order is the float order, so that the reduction vectorizes.
    """
    mb = np.uint32(0)
    for i in range(n):
        a = f32_bits(x[i]) & np.uint32(0x7FFFFFFF)
        mb = max(mb, a if a <= np.uint32(0x7F800000) else np.uint32(0))
    for i in range(n):
        if (f32_bits(x[i]) & np.uint32(0x7FFFFFFF)) == mb:
            return bits_f32(mb), x[i]
    return f32(0.0), f32(0.0)


# ------------------------------------------------------------------------------------------- searches
# ggml's make_qx_quants and make_q3_quants as Q3_K and Q6_K call them (n = 16; rmse_type 1, do_rmse true),
# reorganised for speed without changing one rounding: the weights and w*x are computed once (C recomputes
# the same float products in every pass), make_qx_quants' 19 candidate scales run side by side in vector
# lanes, each lane summing its 16 terms in C's order, and only the choice among them is sequential, as in C.
# tests/test_kquants_b.py checks both against pyquant.cpu.search, the literal transcriptions.

NLANE = 24  # the first guess and is = -9..-1, 1..9: 19 candidate scales, padded to whole 8-float vectors


@njit(**JIT, inline="always")
def make_qx_quants_lanes(n, x, L, nmax, w, isc, slx, sl2):
    """ggml's make_qx_quants(n, nmax, x, L, 1, w), its 19 candidate scales in lanes; isc, slx, sl2 are float32 scratch of NLANE."""
    amax, mx = _absmax(x, n)
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return f32(0.0)
    fnmax = f32(nmax)
    isc[0] = f32(-nmax) / mx
    for p in range(1, 19):
        isc[p] = -(fnmax + f32(0.1) * f32(p - 10 if p < 10 else p - 9)) / mx
    for p in range(19, NLANE):
        isc[p] = f32(0.0)
    for p in range(NLANE):
        slx[p] = f32(0.0)
        sl2[p] = f32(0.0)
    lo = np.int32(-nmax)
    hi = np.int32(nmax - 1)
    for i in range(n):
        xi = x[i]
        wi = w[i]
        wxi = wi * xi
        for p in range(NLANE):
            fl = f32(max(lo, min(hi, nearest_int(isc[p] * xi))))
            slx[p] += wxi * fl
            sl2[p] += wi * fl * fl
    scale = slx[0] / sl2[0] if sl2[0] != f32(0.0) else f32(0.0)
    best = scale * slx[0]
    c = 0
    for p in range(1, 19):
        if sl2[p] > f32(0.0) and slx[p] * slx[p] > best * sl2[p]:
            scale = slx[p] / sl2[p]
            best = scale * slx[p]
            c = p
    ic = isc[c]
    for i in range(n):
        L[i] = np.int32(nmax) + max(lo, min(hi, nearest_int(ic * x[i])))
    return scale


@njit(**JIT, inline="always")
def make_qx_quants_16(x, L, nmax, w, isc, slx, sl2):
    """ggml's make_qx_quants(16, nmax, x, L, 1, w); isc, slx, sl2 are float32 scratch arrays of NLANE."""
    return make_qx_quants_lanes(16, x, L, nmax, w, isc, slx, sl2)


@njit(**JIT, inline="always")
def make_q3_quants_16(x, L, w, wx, nl):
    """ggml's make_q3_quants(16, 4, x, L, true), given w = x*x and wx = w*x; nl is int32 scratch of 16.

    The descent's state (sumlx, suml2) changes only when a move is accepted, so the candidate level of all
    16 elements is computed at once; the sequential scan recomputes them after each accepted move.
    """
    amax, mx = _absmax(x, 16)
    if amax < GROUP_MAX_EPS:
        for i in range(16):
            L[i] = 0
        return f32(0.0)
    iscale = f32(-4.0) / mx
    for i in range(16):
        L[i] = max(np.int32(-4), min(np.int32(3), nearest_int(iscale * x[i])))
    sumlx = f32(0.0)
    suml2 = f32(0.0)
    for i in range(16):
        fl = f32(L[i])
        sumlx += wx[i] * fl
        suml2 += w[i] * fl * fl
    for _ in range(5):
        n_changed = 0
        start = 0
        while start < 16:
            for i in range(16):
                fLi = f32(L[i])
                slx = sumlx - wx[i] * fLi
                sl2 = suml2 - w[i] * fLi * fLi
                cand = max(np.int32(-4), min(np.int32(3), nearest_int(x[i] * sl2 / slx)))
                nl[i] = cand if slx > f32(0.0) else np.int32(L[i])  # C skips elements with slx <= 0
            moves = np.int32(0)
            for i in range(16):
                moves += np.int32(nl[i] != L[i])
            if moves == 0:  # the common case: nothing to try in the rest of this pass
                break
            i = start
            start = 16
            while i < 16:
                if nl[i] != L[i]:
                    fLi = f32(L[i])
                    slx = sumlx - wx[i] * fLi
                    sl2 = suml2 - w[i] * fLi * fLi
                    fnl = f32(nl[i])
                    slx += wx[i] * fnl
                    sl2 += w[i] * fnl * fnl
                    if sl2 > f32(0.0) and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = nl[i]
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
                        start = i + 1
                        break
                i += 1
        if n_changed == 0:
            break
    for i in range(16):
        L[i] += 4
    return sumlx / suml2 if suml2 > f32(0.0) else f32(0.0)


@njit(**JIT)
def _requantize(xs, L, d256, nmax):
    """ggml's final pass: L = nmax + clamp(nearest_int(x / d), -nmax, nmax - 1) where d != 0, else L stays.

    d256 holds each element's sub-block scale; the blend is arithmetic, not a branch, so the loop vectorizes.
    """
    lo = np.int32(-nmax)
    hi = np.int32(nmax - 1)
    for i in range(QK_K):
        d = d256[i]
        v = max(lo, min(hi, nearest_int(xs[i] / d))) + np.int32(nmax)
        old = np.int32(L[i])
        L[i] = old + np.int32(d != f32(0.0)) * (v - old)  # levels of d == 0 sub-blocks stay the search's


# ----------------------------------------------------------------------------------------------- Q8_K


@njit(**JIT)
def _q8_K_block(xs, b):
    """ggml's quantize_row_q8_K_ref on one block: xs float32[256] -> b uint8[292]."""
    amax, mx = _absmax(xs, QK_K)
    if amax == f32(0.0):
        for j in range(Q8_K_BYTES):
            b[j] = np.uint8(0)  # ggml leaves bsums unwritten here; zero is what its zeroed buffer holds
        return
    # For |max| < ~3.7e-37, -127/max is -inf: nearest_int's bit trick then gives low bytes 0, and d = -0.
    iscale = f32(-127.0) / mx
    qs = b[4: 4 + QK_K]
    for j in range(QK_K):
        qs[j] = np.uint8(min(np.int32(127), nearest_int(iscale * xs[j])) & 0xFF)  # C's int8_t store
    for j in range(QK_K // 16):
        s = np.int32(0)
        for ii in range(16):
            s += np.int32(np.int8(qs[16 * j + ii]))
        b[260 + 2 * j] = np.uint8(s & 0xFF)
        b[261 + 2 * j] = np.uint8((s >> 8) & 0xFF)
    u = f32_bits(f32(1.0) / iscale)
    for k in range(4):
        b[k] = np.uint8((u >> np.uint32(8 * k)) & np.uint32(0xFF))


@njit(**PJIT)
def quantize_rows_q8_K(x, out, bad):
    """ggml's quantize_row_q8_K_ref, one row per prange iteration."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        for i in range(nb):
            _q8_K_block(x[r, i * QK_K: (i + 1) * QK_K], out[r, i * Q8_K_BYTES: (i + 1) * Q8_K_BYTES])


@njit(**PJIT)
def dequantize_rows_q8_K(data, out):
    """ggml's dequantize_row_q8_K: y = d * q."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        for i in range(nb):
            b = data[r, i * Q8_K_BYTES: (i + 1) * Q8_K_BYTES]
            y = out[r, i * QK_K: (i + 1) * QK_K]
            u = np.uint32(b[0]) | (np.uint32(b[1]) << 8) | (np.uint32(b[2]) << 16) | (np.uint32(b[3]) << 24)
            d = bits_f32(u)
            for j in range(QK_K):
                y[j] = d * f32(np.int8(b[4 + j]))


# ----------------------------------------------------------------------------------------------- Q3_K


@njit(**JIT)
def _q3_scale(b, j):
    """The j-th 6-bit scale (0..63, before the -32) from the 12 packed scale bytes at b[96:108]."""
    if j < 8:
        lo = np.int32(b[96 + j] & np.uint8(0xF))
    else:
        lo = np.int32(b[96 + j - 8] >> np.uint8(4))
    hi = (np.int32(b[104 + (j % 4)]) >> (2 * (j // 4))) & 3
    return lo | (hi << 4)


@njit(**JIT)
def _q3_put_scale(b, j, l):
    """Pack the j-th 6-bit scale l (0..63) into the zeroed scales[12] at b[96:108]."""
    if j < 8:
        b[96 + j] = np.uint8(l & 0xF)
    else:
        b[96 + j - 8] |= np.uint8((l & 0xF) << 4)
    b[104 + (j % 4)] |= np.uint8((l >> 4) << (2 * (j // 4)))


@njit(**JIT)
def _q3_K_finish(xs, b, L, d256):
    """The tail both Q3_K quantizers share: requantize with the stored scales, then pack hmask and qs."""
    d_all = _get_half(b, 108)
    for j in range(16):
        d = d_all * f32(_q3_scale(b, j) - 32)
        for ii in range(16):
            d256[16 * j + ii] = d
    _requantize(xs, L, d256, 4)
    # levels are 0..7: bit 2 of level j goes to hmask[j % 32], bit j // 32; the low two bits to qs
    for m in range(32):
        h = np.int32(0)
        for k in range(8):
            h |= ((np.int32(L[m + 32 * k]) >> 2) & 1) << k
        b[m] = np.uint8(h)
    for hh in range(2):
        for l in range(32):
            j = 128 * hh + l
            b[32 + 32 * hh + l] = np.uint8(
                (np.int32(L[j]) & 3)
                | ((np.int32(L[j + 32]) & 3) << 2)
                | ((np.int32(L[j + 64]) & 3) << 4)
                | ((np.int32(L[j + 96]) & 3) << 6)
            )


@njit(**JIT)
def _q3_K_block_ref(xs, b, L, scales, w, wx, nl):
    """ggml's quantize_row_q3_K_ref on one block: xs float32[256] -> b uint8[110]."""
    for j in range(QK_K):
        w[j] = xs[j] * xs[j]
        wx[j] = w[j] * xs[j]
    max_scale = f32(0.0)
    amax = f32(0.0)
    for j in range(16):
        s = make_q3_quants_16(xs[16 * j: 16 * j + 16], L[16 * j: 16 * j + 16], w[16 * j: 16 * j + 16],
                              wx[16 * j: 16 * j + 16], nl)
        scales[j] = s
        if abs(s) > amax:
            amax = abs(s)
            max_scale = s
    for j in range(12):
        b[96 + j] = np.uint8(0)
    if max_scale != f32(0.0):
        iscale = f32(-32.0) / max_scale
        for j in range(16):
            l = np.int32(np.int8(nearest_int(iscale * scales[j])))  # C keeps it in an int8_t first
            _q3_put_scale(b, j, max(-32, min(31, l)) + 32)
        _put_half(b, 108, f32(1.0) / iscale)
    else:
        _put_half(b, 108, f32(0.0))
    _q3_K_finish(xs, b, L, w)


@njit(**PJIT)
def quantize_rows_q3_K(x, out, bad):
    """ggml's quantize_row_q3_K_ref."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        L = np.empty(QK_K, dtype=np.int8)
        scales = np.empty(16, dtype=np.float32)
        w = np.empty(QK_K, dtype=np.float32)
        wx = np.empty(QK_K, dtype=np.float32)
        nl = np.empty(16, dtype=np.int32)
        for i in range(nb):
            _q3_K_block_ref(x[r, i * QK_K: (i + 1) * QK_K], out[r, i * Q3_K_BYTES: (i + 1) * Q3_K_BYTES],
                            L, scales, w, wx, nl)


@njit(**JIT)
def _q3_K_block_imatrix(xs, qw, b, L, scales, weight, sw, Ls, isc, slx, sl2):
    """ggml's quantize_row_q3_K_impl with quant_weights on one block (qw: its 256 weights)."""
    sumx2 = f32(0.0)
    for j in range(QK_K):
        sumx2 += xs[j] * xs[j]
    sigma2 = f32(2.0) * sumx2 / f32(QK_K)
    for j in range(QK_K):
        weight[j] = qw[j] * np.sqrt(sigma2 + xs[j] * xs[j])
    for j in range(16):
        sumw = f32(0.0)
        for l in range(16):
            sumw += weight[16 * j + l]
        sw[j] = sumw
        scales[j] = make_qx_quants_16(xs[16 * j: 16 * j + 16], L[16 * j: 16 * j + 16], 4,
                                      weight[16 * j: 16 * j + 16], isc, slx, sl2)
    for j in range(12):
        b[96 + j] = np.uint8(0)
    d_block = make_qx_quants_16(scales, Ls, 32, sw, isc, slx, sl2)
    for j in range(16):
        _q3_put_scale(b, j, np.int32(Ls[j]))
    _put_half(b, 108, d_block)
    _q3_K_finish(xs, b, L, weight)


@njit(**PJIT)
def quantize_imatrix_rows_q3_K(x, qw, out, bad):
    """ggml's quantize_q3_K with quant_weights (quantize_row_q3_K_impl), row by row."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        L = np.empty(QK_K, dtype=np.int8)
        scales = np.empty(16, dtype=np.float32)
        weight = np.empty(QK_K, dtype=np.float32)
        sw = np.empty(16, dtype=np.float32)
        Ls = np.empty(16, dtype=np.int8)
        isc = np.empty(NLANE, dtype=np.float32)
        slx = np.empty(NLANE, dtype=np.float32)
        sl2 = np.empty(NLANE, dtype=np.float32)
        for i in range(nb):
            _q3_K_block_imatrix(x[r, i * QK_K: (i + 1) * QK_K], qw[i * QK_K: (i + 1) * QK_K],
                                out[r, i * Q3_K_BYTES: (i + 1) * Q3_K_BYTES],
                                L, scales, weight, sw, Ls, isc, slx, sl2)


@njit(**JIT)
def _q3_K_dequant_block(b, y, dl):
    d_all = _get_half(b, 108)
    for j in range(16):
        dl[j] = d_all * f32(_q3_scale(b, j) - 32)
    for h in range(2):
        for j in range(4):
            for half in range(2):
                s = dl[8 * h + 2 * j + half]
                for l in range(16):
                    k = 16 * half + l
                    q = (np.int32(b[32 + 32 * h + k]) >> (2 * j)) & 3
                    hb = (np.int32(b[k]) >> (4 * h + j)) & 1
                    y[128 * h + 32 * j + k] = s * f32(q + 4 * hb - 4)


@njit(**PJIT)
def dequantize_rows_q3_K(data, out):
    """ggml's dequantize_row_q3_K."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        dl = np.empty(16, dtype=np.float32)
        for i in range(nb):
            _q3_K_dequant_block(data[r, i * Q3_K_BYTES: (i + 1) * Q3_K_BYTES], out[r, i * QK_K: (i + 1) * QK_K], dl)


# ----------------------------------------------------------------------------------------------- Q6_K


@njit(**JIT)
def _q6_K_finish(xs, b, L, scales, d256):
    """The tail both Q6_K quantizers share: int8 scales, requantization, ql/qh packing."""
    max_scale = f32(0.0)
    max_abs_scale = f32(0.0)
    for ib in range(16):
        if abs(scales[ib]) > max_abs_scale:
            max_abs_scale = abs(scales[ib])
            max_scale = scales[ib]
    if max_abs_scale < GROUP_MAX_EPS:
        for j in range(Q6_K_BYTES):
            b[j] = np.uint8(0)
        return
    iscale = f32(-128.0) / max_scale
    _put_half(b, 208, f32(1.0) / iscale)
    for ib in range(16):
        b[192 + ib] = np.uint8(min(127, nearest_int(iscale * scales[ib])) & 0xFF)
    d_all = _get_half(b, 208)
    for j in range(16):
        d = d_all * f32(np.int8(b[192 + j]))
        for ii in range(16):
            d256[16 * j + ii] = d
    _requantize(xs, L, d256, 32)
    for h in range(2):
        for l in range(32):
            j = 128 * h + l
            q1 = np.int32(L[j])
            q2 = np.int32(L[j + 32])
            q3 = np.int32(L[j + 64])
            q4 = np.int32(L[j + 96])
            b[64 * h + l] = np.uint8((q1 & 0xF) | ((q3 & 0xF) << 4))
            b[64 * h + 32 + l] = np.uint8((q2 & 0xF) | ((q4 & 0xF) << 4))
            b[128 + 32 * h + l] = np.uint8(((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)) & 0xFF)


@njit(**JIT)
def _q6_K_block(xs, qw, has_qw, b, L, scales, w, isc, slx, sl2):
    """ggml's quantize_row_q6_K_ref (has_qw false) or quantize_row_q6_K_impl (weights qw) on one block."""
    if has_qw:
        for j in range(QK_K):
            w[j] = qw[j]  # the imatrix goes to make_qx_quants as is
    else:
        for j in range(QK_K):
            w[j] = xs[j] * xs[j]  # make_qx_quants' rmse_type 1 weights
    for ib in range(16):
        scales[ib] = make_qx_quants_16(xs[16 * ib: 16 * ib + 16], L[16 * ib: 16 * ib + 16], 32,
                                       w[16 * ib: 16 * ib + 16], isc, slx, sl2)
    _q6_K_finish(xs, b, L, scales, w)


@njit(**JIT)
def _q6_K_row(xr, qw, has_qw, o):
    L = np.empty(QK_K, dtype=np.int8)
    scales = np.empty(16, dtype=np.float32)
    w = np.empty(QK_K, dtype=np.float32)
    isc = np.empty(NLANE, dtype=np.float32)
    slx = np.empty(NLANE, dtype=np.float32)
    sl2 = np.empty(NLANE, dtype=np.float32)
    for i in range(xr.shape[0] // QK_K):
        _q6_K_block(xr[i * QK_K: (i + 1) * QK_K], qw[i * QK_K: (i + 1) * QK_K], has_qw,
                    o[i * Q6_K_BYTES: (i + 1) * Q6_K_BYTES], L, scales, w, isc, slx, sl2)


@njit(**PJIT)
def quantize_rows_q6_K(x, out, bad):
    """ggml's quantize_row_q6_K_ref."""
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        _q6_K_row(x[r], x[r], False, out[r])


@njit(**PJIT)
def quantize_imatrix_rows_q6_K(x, qw, out, bad):
    """ggml's quantize_q6_K with quant_weights (quantize_row_q6_K_impl), row by row."""
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        _q6_K_row(x[r], qw, True, out[r])


@njit(**JIT)
def _q6_K_dequant_block(b, y, ds):
    d = _get_half(b, 208)
    for j in range(16):
        ds[j] = d * f32(np.int8(b[192 + j]))  # C's d * sc[is] * q rounds d * sc first
    for h in range(2):
        for l in range(32):
            is_ = 8 * h + l // 16
            a = np.int32(b[64 * h + l])
            c = np.int32(b[64 * h + 32 + l])
            e = np.int32(b[128 + 32 * h + l])
            y[128 * h + l] = ds[is_] * f32(((a & 0xF) | ((e & 3) << 4)) - 32)
            y[128 * h + 32 + l] = ds[is_ + 2] * f32(((c & 0xF) | (((e >> 2) & 3) << 4)) - 32)
            y[128 * h + 64 + l] = ds[is_ + 4] * f32(((a >> 4) | (((e >> 4) & 3) << 4)) - 32)
            y[128 * h + 96 + l] = ds[is_ + 6] * f32(((c >> 4) | (((e >> 6) & 3) << 4)) - 32)


@njit(**PJIT)
def dequantize_rows_q6_K(data, out):
    """ggml's dequantize_row_q6_K: y = (d * scale) * q, rounded in that order."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        ds = np.empty(16, dtype=np.float32)
        for i in range(nb):
            _q6_K_dequant_block(data[r, i * Q6_K_BYTES: (i + 1) * Q6_K_BYTES], out[r, i * QK_K: (i + 1) * QK_K], ds)


register(T.Q3_K, Kernels(quantize_rows_q3_K, dequantize_rows_q3_K, quantize_imatrix_rows_q3_K, imatrix=WEIGHTED))
register(T.Q6_K, Kernels(quantize_rows_q6_K, dequantize_rows_q6_K, quantize_imatrix_rows_q6_K, imatrix=WEIGHTED))
register(T.Q8_K, Kernels(quantize_rows_q8_K, dequantize_rows_q8_K, imatrix=UNSUPPORTED))
