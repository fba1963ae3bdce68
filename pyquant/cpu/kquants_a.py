"""Q2_K, Q4_K and Q5_K: ggml's k-quants with a per-block minimum (``ggml-quants.c``), bit-exact.

Quantizers follow ``quantize_row_<t>_ref`` (no importance matrix) and ``quantize_row_<t>_impl`` (with one);
dequantizers follow ``dequantize_row_<t>``. All arithmetic is float32 in ggml's evaluation order.
Speed (single thread, against ggml's own C in the same run) comes from two reshapings that keep every rounding:
the dequantizers loop once over a block's 32 byte columns writing all its sub-blocks (LLVM vectorizes that
loop), and the quantizers' make_qkx2/qkx3 searches run 8 search steps side by side (see ``qkx_search``).
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T
from numba import njit, prange

from . import WEIGHTED, Kernels, register
from .common import JIT, PJIT, f32, f32_bits, fp16_to_fp32, fp32_to_fp16, row_bad
from .search import get_scale_min_k4, make_qp_quants, nearest_int

QK_K = 256
i32 = np.int32
Q2_K_BYTES = 84  # scales[16] qs[64] d dmin
Q4_K_BYTES = 144  # d dmin scales[12] qs[128]
Q5_K_BYTES = 176  # d dmin scales[12] qh[32] qs[128]


@njit(**JIT)
def _get_half(b, pos):
    return fp16_to_fp32(np.uint16(b[pos]) | (np.uint16(b[pos + 1]) << np.uint16(8)))


@njit(**JIT)
def _put_half(b, pos, h):
    b[pos] = np.uint8(h & np.uint16(0xFF))
    b[pos + 1] = np.uint8(h >> np.uint16(8))


# ----------------------------------------------------------------------------------------------- dequantize


@njit(**PJIT)
def dequantize_q2_k(data, out):
    """ggml's dequantize_row_q2_K, rows in parallel."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for i in range(nb):
            o = i * Q2_K_BYTES
            d = _get_half(row, o + 80)
            mn = _get_half(row, o + 82)
            for n in range(2):
                qo = o + 16 + 32 * n
                so = o + 8 * n
                base = i * QK_K + 128 * n
                dl0 = d * f32(row[so] & 0xF)
                ml0 = mn * f32(row[so] >> 4)
                dl1 = d * f32(row[so + 2] & 0xF)
                ml1 = mn * f32(row[so + 2] >> 4)
                dl2 = d * f32(row[so + 4] & 0xF)
                ml2 = mn * f32(row[so + 4] >> 4)
                dl3 = d * f32(row[so + 6] & 0xF)
                ml3 = mn * f32(row[so + 6] >> 4)
                dh0 = d * f32(row[so + 1] & 0xF)
                mh0 = mn * f32(row[so + 1] >> 4)
                dh1 = d * f32(row[so + 3] & 0xF)
                mh1 = mn * f32(row[so + 3] >> 4)
                dh2 = d * f32(row[so + 5] & 0xF)
                mh2 = mn * f32(row[so + 5] >> 4)
                dh3 = d * f32(row[so + 7] & 0xF)
                mh3 = mn * f32(row[so + 7] >> 4)
                # element 32*j + l (+16) of this half takes bits 2j of byte l (+16), scale byte 2j (+1)
                for l in range(16):
                    a = row[qo + l]
                    b = row[qo + 16 + l]
                    y[base + l] = dl0 * f32(a & np.uint8(3)) - ml0
                    y[base + 16 + l] = dh0 * f32(b & np.uint8(3)) - mh0
                    y[base + 32 + l] = dl1 * f32((a >> np.uint8(2)) & np.uint8(3)) - ml1
                    y[base + 48 + l] = dh1 * f32((b >> np.uint8(2)) & np.uint8(3)) - mh1
                    y[base + 64 + l] = dl2 * f32((a >> np.uint8(4)) & np.uint8(3)) - ml2
                    y[base + 80 + l] = dh2 * f32((b >> np.uint8(4)) & np.uint8(3)) - mh2
                    y[base + 96 + l] = dl3 * f32(a >> np.uint8(6)) - ml3
                    y[base + 112 + l] = dh3 * f32(b >> np.uint8(6)) - mh3


@njit(**JIT)
def _k4_sub(row, o, j, d, dmin):
    """Sub-block j of the Q4_K/Q5_K block at row[o:]: (d * scale, dmin * min), scale and min from get_scale_min_k4."""
    sc, m = get_scale_min_k4(j, row, o + 4)
    return d * f32(sc), dmin * f32(m)


@njit(**PJIT)
def dequantize_q4_k(data, out):
    """ggml's dequantize_row_q4_K, rows in parallel.

    Per pair of sub-blocks (2k from the low nibbles of bytes k*32 .. k*32+31, 2k+1 from their high ones) one loop
    over the 32 bytes: one load and two store streams, few enough that LLVM vectorizes it without runtime alias
    checks giving up (one loop writing all eight sub-blocks ran at half the speed in cache).
    """
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for i in range(nb):
            o = i * Q4_K_BYTES
            d = _get_half(row, o)
            dmin = _get_half(row, o + 2)
            for k in range(4):
                da, ma = _k4_sub(row, o, 2 * k, d, dmin)
                db, mb = _k4_sub(row, o, 2 * k + 1, d, dmin)
                qb = o + 16 + 32 * k
                yb = i * QK_K + 64 * k
                for l in range(32):
                    q = i32(row[qb + l])  # int32 nibbles (uint8 shifts would be widened to 64-bit lanes)
                    y[yb + l] = da * f32(i32(q & i32(15))) - ma
                    y[yb + 32 + l] = db * f32(i32(q >> i32(4))) - mb


@njit(**PJIT)
def dequantize_q5_k(data, out):
    """ggml's dequantize_row_q5_K, rows in parallel (the loop shape of dequantize_q4_k; bit k of qh[l] is the
    fifth bit of sub-block k's level l)."""
    nb = out.shape[1] // QK_K
    for r in prange(out.shape[0]):
        row = data[r]
        y = out[r]
        for i in range(nb):
            o = i * Q5_K_BYTES
            d = _get_half(row, o)
            dmin = _get_half(row, o + 2)
            for k in range(4):
                da, ma = _k4_sub(row, o, 2 * k, d, dmin)
                db, mb = _k4_sub(row, o, 2 * k + 1, d, dmin)
                qb = o + 48 + 32 * k
                yb = i * QK_K + 64 * k
                for l in range(32):
                    # bits 2k and 2k+1 of qh[l] are the fifth bits; every step cut back to int32 (Numba computes
                    # in int64, and LLVM would keep 64-bit vector lanes: twice the instructions)
                    h = i32(i32(row[o + 16 + l]) >> i32(2 * k))
                    q = i32(row[qb + l])
                    y[yb + l] = da * f32(i32(i32(q & i32(15)) | i32(i32(h & i32(1)) << i32(4)))) - ma
                    y[yb + 32 + l] = db * f32(i32(i32(q >> i32(4)) | i32(i32(h & i32(2)) << i32(3)))) - mb


# ------------------------------------------------------------------------------------------------- searches
# ggml's make_qkx2_quants / make_qkx3_quants (with weights), reshaped for speed without changing one rounding.
# In C, step ``is`` of the search sums w*l, w*l*l and w*l*x over the sub-block, with levels l from
# iscale = (rmin + rdelta*is + nmax)/(max - min), and keeps the step if its weighted error beats the best so
# far, which also moves ``min`` to the step's min, on which the later steps depend. Here 8 consecutive steps
# run side by side in vector lanes (each lane adds its terms in C's order, so every sum is the same float); a
# sequential scan then picks among them as C does, and the next 8 lanes start after the last step scanned
# with the min then current (right after a pick that moved min). tests/test_kquants_a.py checks this against
# pyquant.cpu.search, the literal transcription.

NLANE = 48  # room for steps up to nstep + 7 (nstep <= 36 in ggml's calls) in each lane array
_ISC, _SL, _SL2, _SXL, _D, _TS, _TM, _ERR = (k * NLANE for k in range(8))
_MAGIC = f32(12582912.0)  # 1.5 * 2^23: nearest_int's rounding constant


@njit(**JIT)
def _level(v, nmax):
    """MAX(0, MIN(nmax, nearest_int(v))) with ggml's bit trick, in int32 so that it vectorizes."""
    l = np.int32(np.int32(f32_bits(v + _MAGIC) & np.uint32(0x007FFFFF)) - np.int32(0x00400000))
    return np.int32(max(np.int32(0), min(np.int32(nmax), l)))


@njit(**JIT)
def _qkx_lanes(n, nmax, x, xo, w, mn, mx, sum_w, sum_x, rmin, rdelta, p, use_mad, ln):
    """Steps p..p+7 of the search from the current ``mn``: each step's sums, D, scale, min and weighted error.

    The lane loops have a constant trip count of 8 and a body of 4 elements, which LLVM turns into one
    8-float vector per operation (a smaller body gets unrolled into scalar code instead).
    """
    fnmax = f32(nmax)
    den = mx - mn
    a = ln[p:]  # lane k is step p + k; indices from 0 keep the loops vectorizable
    for k in range(8):
        a[_ISC + k] = (rmin + rdelta * f32(p + k) + fnmax) / den
        a[_SL + k] = f32(0.0)
        a[_SL2 + k] = f32(0.0)
        a[_SXL + k] = f32(0.0)
        a[_ERR + k] = f32(0.0)
    for i in range(0, n, 4):
        x0 = x[xo + i]
        x1 = x[xo + i + 1]
        x2 = x[xo + i + 2]
        x3 = x[xo + i + 3]
        w0 = w[i]
        w1 = w[i + 1]
        w2 = w[i + 2]
        w3 = w[i + 3]
        d0 = x0 - mn
        d1 = x1 - mn
        d2 = x2 - mn
        d3 = x3 - mn
        for k in range(8):
            c = a[_ISC + k]
            f0 = f32(_level(c * d0, nmax))
            f1 = f32(_level(c * d1, nmax))
            f2 = f32(_level(c * d2, nmax))
            f3 = f32(_level(c * d3, nmax))
            l0 = w0 * f0
            l1 = w1 * f1
            l2 = w2 * f2
            l3 = w3 * f3
            # left to right: ((s + t0) + t1) + ..., C's sequential order
            a[_SL + k] = a[_SL + k] + l0 + l1 + l2 + l3
            a[_SL2 + k] = a[_SL2 + k] + l0 * f0 + l1 * f1 + l2 * f2 + l3 * f3
            a[_SXL + k] = a[_SXL + k] + l0 * x0 + l1 * x1 + l2 * x2 + l3 * x3
    for k in range(8):
        sl = a[_SL + k]
        sl2 = a[_SL2 + k]
        sxl = a[_SXL + k]
        D = sum_w * sl2 - sl * sl
        ts = (sum_w * sxl - sum_x * sl) / D
        tm = (sl2 * sum_x - sl * sxl) / D
        if tm > 0:
            tm = f32(0.0)
            ts = sxl / sl2
        a[_D + k] = D
        a[_TS + k] = ts
        a[_TM + k] = tm
    for i in range(0, n, 4):
        x0 = x[xo + i]
        x1 = x[xo + i + 1]
        x2 = x[xo + i + 2]
        x3 = x[xo + i + 3]
        w0 = w[i]
        w1 = w[i + 1]
        w2 = w[i + 2]
        w3 = w[i + 3]
        d0 = x0 - mn
        d1 = x1 - mn
        d2 = x2 - mn
        d3 = x3 - mn
        for k in range(8):
            c = a[_ISC + k]
            ts = a[_TS + k]
            tm = a[_TM + k]
            e0 = ts * f32(_level(c * d0, nmax)) + tm - x0
            e1 = ts * f32(_level(c * d1, nmax)) + tm - x1
            e2 = ts * f32(_level(c * d2, nmax)) + tm - x2
            e3 = ts * f32(_level(c * d3, nmax)) + tm - x3
            if use_mad:
                e0 = abs(e0)
                e1 = abs(e1)
                e2 = abs(e2)
                e3 = abs(e3)
            else:
                e0 = e0 * e0
                e1 = e1 * e1
                e2 = e2 * e2
                e3 = e3 * e3
            a[_ERR + k] = a[_ERR + k] + w0 * e0 + w1 * e1 + w2 * e2 + w3 * e3


@njit(**JIT)
def qkx_search(n, nmax, x, xo, w, L, lo, rmin, rdelta, nstep, use_mad, x3, ln):
    """ggml's make_qkx2_quants (x3 False) / make_qkx3_quants (x3 True) with weights ``w``; n % 4 == 0.

    Sub-block x[xo:xo+n], levels into L[lo:lo+n]; ``ln`` is float32 scratch of 8*NLANE.
    Returns (scale, the_min).
    """
    mn = x[xo]
    mx = x[xo]
    sum_w = w[0]
    sum_x = sum_w * x[xo]
    for i in range(1, n):
        xi = x[xo + i]
        if xi < mn:
            mn = xi
        if xi > mx:
            mx = xi
        wi = w[i]
        sum_w += wi
        sum_x += wi * xi
    if mn > 0:
        mn = f32(0.0)
    if (mx <= mn) if x3 else (mx == mn):
        for i in range(n):
            L[lo + i] = 0
        return f32(0.0), -mn
    iscale = f32(nmax) / (mx - mn)
    scale = f32(1.0) / iscale
    best = f32(0.0)
    for i in range(n):
        l = _level(iscale * (x[xo + i] - mn), nmax)
        L[lo + i] = l
        diff = scale * f32(l) + mn - x[xo + i]
        diff = abs(diff) if use_mad else diff * diff
        best += w[i] * diff
    if nstep < 1:
        return scale, -mn
    pick_isc = f32(0.0)
    pick_mn = mn
    picked = False
    p = 0
    while p <= nstep:
        _qkx_lanes(n, nmax, x, xo, w, mn, mx, sum_w, sum_x, rmin, rdelta, p, use_mad, ln)
        stop = min(p + 8, nstep + 1)
        k = p
        p = stop
        while k < stop:
            if ln[_D + k] > 0 and ln[_ERR + k] < best:
                best = ln[_ERR + k]
                scale = ln[_TS + k]
                pick_isc = ln[_ISC + k]
                pick_mn = mn
                picked = True
                new_mn = ln[_TM + k]
                moved = new_mn != mn  # (+0 and -0 give the same levels: the lanes stay valid)
                mn = new_mn
                if moved:
                    p = k + 1  # the lanes after k assumed the old min: redo them
                    break
            k += 1
    if picked:
        for i in range(n):
            L[lo + i] = _level(pick_isc * (x[xo + i] - pick_mn), nmax)
    return scale, -mn


# ------------------------------------------------------------------------------------------------- quantize


@njit(**JIT)
def _q2_k_finish(x, xo, row, o, L, d_bits, dmin_bits):
    """Tail shared by Q2_K's quantizers: write d/dmin, requantize against the stored scales, pack the levels."""
    _put_half(row, o + 80, d_bits)
    _put_half(row, o + 82, dmin_bits)
    dd = fp16_to_fp32(d_bits)
    dmn = fp16_to_fp32(dmin_bits)
    for j in range(16):
        sc = row[o + j]
        d = dd * f32(sc & 0xF)
        if d == 0:
            continue
        dm = dmn * f32(sc >> 4)
        for ii in range(16):
            l = nearest_int((x[xo + 16 * j + ii] + dm) / d)
            L[16 * j + ii] = max(0, min(3, l))
    for half in range(2):
        for l in range(32):
            b = 128 * half + l
            row[o + 16 + 32 * half + l] = np.uint8(L[b] | (L[b + 32] << 2) | (L[b + 64] << 4) | (L[b + 96] << 6))


@njit(**PJIT)
def quantize_q2_k(x, out, bad):
    """ggml's quantize_row_q2_K_ref, rows in parallel."""
    nb = x.shape[1] // QK_K
    q4scale = f32(15.0)
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        row = out[r]
        L = np.empty(QK_K, np.uint8)
        weights = np.empty(16, np.float32)
        mins = np.empty(16, np.float32)
        scales = np.empty(16, np.float32)
        ln = np.empty(8 * NLANE, np.float32)
        for i in range(nb):
            xo = i * QK_K
            o = i * Q2_K_BYTES
            max_scale = f32(0.0)
            max_min = f32(0.0)
            for j in range(16):
                xs = xr[xo + 16 * j:xo + 16 * j + 16]
                for l in range(16):
                    weights[l] = abs(xs[l])
                scale, the_min = qkx_search(16, 3, xr, xo + 16 * j, weights, L, 16 * j, f32(-0.5), f32(0.1), 15,
                                            True, False, ln)
                scales[j] = scale
                mins[j] = the_min
                if scale > max_scale:
                    max_scale = scale
                if the_min > max_min:
                    max_min = the_min
            if max_scale > 0:
                iscale = q4scale / max_scale
                for j in range(16):
                    row[o + j] = np.uint8(nearest_int(iscale * scales[j]) & 0xFF)
                d_bits = fp32_to_fp16(max_scale / q4scale)
            else:
                for j in range(16):
                    row[o + j] = 0
                d_bits = fp32_to_fp16(f32(0.0))
            if max_min > 0:
                iscale = q4scale / max_min
                for j in range(16):
                    l = nearest_int(iscale * mins[j])
                    row[o + j] = np.uint8((np.int32(row[o + j]) | (l << 4)) & 0xFF)
                dmin_bits = fp32_to_fp16(max_min / q4scale)
            else:
                dmin_bits = fp32_to_fp16(f32(0.0))
            _q2_k_finish(xr, xo, row, o, L, d_bits, dmin_bits)


@njit(**PJIT)
def quantize_imatrix_q2_k(x, qw, out, bad):
    """ggml's quantize_q2_K with quant_weights (quantize_row_q2_K_impl), rows in parallel."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        row = out[r]
        L = np.empty(QK_K, np.uint8)
        weight = np.empty(16, np.float32)
        mins = np.empty(16, np.float32)
        scales = np.empty(16, np.float32)
        sw = np.empty(16, np.float32)
        Ls = np.empty(16, np.uint8)
        Lm = np.empty(16, np.uint8)
        ln = np.empty(8 * NLANE, np.float32)
        for i in range(nb):
            xo = i * QK_K
            o = i * Q2_K_BYTES
            sumx2 = f32(0.0)
            for j in range(QK_K):
                sumx2 += xr[xo + j] * xr[xo + j]
            sigma2 = sumx2 / f32(QK_K)
            for j in range(16):
                xs = xr[xo + 16 * j:xo + 16 * j + 16]
                for l in range(16):
                    weight[l] = qw[xo + 16 * j + l] * np.sqrt(sigma2 + xs[l] * xs[l])
                s = f32(0.0)
                for l in range(16):
                    s += weight[l]
                sw[j] = s
                scales[j], mins[j] = qkx_search(16, 3, xr, xo + 16 * j, weight, L, 16 * j, f32(-0.9), f32(0.05), 36,
                                                False, True, ln)
            dm = make_qp_quants(16, 15, scales, Ls, sw)
            mm = make_qp_quants(16, 15, mins, Lm, sw)
            for j in range(16):
                row[o + j] = np.uint8((np.int32(Ls[j]) | (np.int32(Lm[j]) << 4)) & 0xFF)
            _q2_k_finish(xr, xo, row, o, L, fp32_to_fp16(dm), fp32_to_fp16(mm))


@njit(**JIT)
def _pack_scales_k4(row, so, j, ls, lm):
    """The 6-bit scale/min packing of Q4_K and Q5_K (12 bytes at row[so:]), C's uint8 truncations kept."""
    if j < 4:
        row[so + j] = np.uint8(ls)
        row[so + j + 4] = np.uint8(lm)
    else:
        row[so + j + 4] = np.uint8(((ls & 0xF) | ((lm & 0xF) << 4)) & 0xFF)
        row[so + j - 4] = np.uint8((np.int32(row[so + j - 4]) | ((ls >> 4) << 6)) & 0xFF)
        row[so + j] = np.uint8((np.int32(row[so + j]) | ((lm >> 4) << 6)) & 0xFF)


@njit(**JIT)
def _requantize_k4(x, xo, row, o, L, nmax):
    """Q4_K/Q5_K: levels against the stored half d/dmin and 6-bit scales (sub-blocks with d == 0 keep theirs)."""
    dd = fp16_to_fp32(np.uint16(row[o]) | (np.uint16(row[o + 1]) << np.uint16(8)))
    dmn = fp16_to_fp32(np.uint16(row[o + 2]) | (np.uint16(row[o + 3]) << np.uint16(8)))
    for j in range(8):
        sc, m = get_scale_min_k4(j, row, o + 4)
        d = dd * f32(sc)
        if d == 0:
            continue
        dm = dmn * f32(m)
        for ii in range(32):
            l = nearest_int((x[xo + 32 * j + ii] + dm) / d)
            L[32 * j + ii] = max(0, min(nmax, l))


@njit(**JIT)
def _ref_scales_k4(xr, xo, row, o, L, weights, scales, mins, ln, nmax, rmin, rdelta, nstep):
    """Body of quantize_row_q4_K_ref / quantize_row_q5_K_ref up to the requantization."""
    max_scale = f32(0.0)
    max_min = f32(0.0)
    for j in range(8):
        xs = xr[xo + 32 * j:xo + 32 * j + 32]
        sum_x2 = f32(0.0)
        for l in range(32):
            sum_x2 += xs[l] * xs[l]
        av_x = np.sqrt(sum_x2 / f32(32.0))
        for l in range(32):
            weights[l] = av_x + abs(xs[l])
        scale, the_min = qkx_search(32, nmax, xr, xo + 32 * j, weights, L, 32 * j, rmin, rdelta, nstep, False, False, ln)
        scales[j] = scale
        mins[j] = the_min
        if scale > max_scale:
            max_scale = scale
        if the_min > max_min:
            max_min = the_min
    inv_scale = f32(63.0) / max_scale if max_scale > 0 else f32(0.0)
    inv_min = f32(63.0) / max_min if max_min > 0 else f32(0.0)
    for j in range(8):
        ls = min(63, nearest_int(inv_scale * scales[j]) & 0xFF)
        lm = min(63, nearest_int(inv_min * mins[j]) & 0xFF)
        _pack_scales_k4(row, o + 4, j, ls, lm)
    _put_half(row, o, fp32_to_fp16(max_scale / f32(63.0)))
    _put_half(row, o + 2, fp32_to_fp16(max_min / f32(63.0)))


@njit(**JIT)
def _impl_scales_k4(xr, xo, qw, row, o, L, weights, scales, mins, sw, Ls, Lm, ln, nmax, clamp63):
    """Body of quantize_row_q4_K_impl / quantize_row_q5_K_impl (with quant_weights) up to the requantization."""
    sum_x2 = f32(0.0)
    for l in range(QK_K):
        sum_x2 += xr[xo + l] * xr[xo + l]
    sigma2 = f32(2.0) * sum_x2 / f32(QK_K)
    for j in range(8):
        xs = xr[xo + 32 * j:xo + 32 * j + 32]
        for l in range(32):
            weights[l] = qw[xo + 32 * j + l] * np.sqrt(sigma2 + xs[l] * xs[l])
        sumw = f32(0.0)
        for l in range(32):
            sumw += weights[l]
        sw[j] = sumw
        scales[j], mins[j] = qkx_search(32, nmax, xr, xo + 32 * j, weights, L, 32 * j, f32(-0.9), f32(0.05), 36,
                                        False, True, ln)
    d_block = make_qp_quants(8, 63, scales, Ls, sw)
    m_block = make_qp_quants(8, 63, mins, Lm, sw)
    for j in range(8):
        ls = np.int32(Ls[j])
        lm = np.int32(Lm[j])
        if clamp63:  # Q5_K clamps, Q4_K does not (make_qp_quants already keeps them <= 63)
            ls = min(63, ls)
            lm = min(63, lm)
        _pack_scales_k4(row, o + 4, j, ls, lm)
    _put_half(row, o, fp32_to_fp16(d_block))
    _put_half(row, o + 2, fp32_to_fp16(m_block))


@njit(**JIT)
def _pack_q4_k(row, o, L):
    for jj in range(4):
        for l in range(32):
            row[o + 16 + 32 * jj + l] = np.uint8(L[64 * jj + l] | (L[64 * jj + 32 + l] << 4))


@njit(**JIT)
def _pack_q5_k(row, o, L):
    for l in range(32):
        h = 0
        for jj in range(4):
            l1 = np.int32(L[64 * jj + l])
            l2 = np.int32(L[64 * jj + 32 + l])
            if l1 > 15:
                l1 -= 16
                h |= 1 << (2 * jj)
            if l2 > 15:
                l2 -= 16
                h |= 2 << (2 * jj)
            row[o + 48 + 32 * jj + l] = np.uint8((l1 | (l2 << 4)) & 0xFF)
        row[o + 16 + l] = np.uint8(h)


@njit(**PJIT)
def quantize_q4_k(x, out, bad):
    """ggml's quantize_row_q4_K_ref, rows in parallel."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        row = out[r]
        L = np.empty(QK_K, np.uint8)
        weights = np.empty(32, np.float32)
        mins = np.empty(8, np.float32)
        scales = np.empty(8, np.float32)
        ln = np.empty(8 * NLANE, np.float32)
        for i in range(nb):
            o = i * Q4_K_BYTES
            _ref_scales_k4(xr, i * QK_K, row, o, L, weights, scales, mins, ln, 15,
                           f32(-1.0), f32(0.1), 20)
            _requantize_k4(xr, i * QK_K, row, o, L, 15)
            _pack_q4_k(row, o, L)


@njit(**PJIT)
def quantize_imatrix_q4_k(x, qw, out, bad):
    """ggml's quantize_q4_K with quant_weights (quantize_row_q4_K_impl), rows in parallel."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        row = out[r]
        L = np.empty(QK_K, np.uint8)
        weights = np.empty(32, np.float32)
        mins = np.empty(8, np.float32)
        scales = np.empty(8, np.float32)
        sw = np.empty(8, np.float32)
        Ls = np.empty(8, np.uint8)
        Lm = np.empty(8, np.uint8)
        ln = np.empty(8 * NLANE, np.float32)
        for i in range(nb):
            o = i * Q4_K_BYTES
            _impl_scales_k4(xr, i * QK_K, qw, row, o, L, weights, scales, mins, sw, Ls, Lm, ln, 15, False)
            _requantize_k4(xr, i * QK_K, row, o, L, 15)
            _pack_q4_k(row, o, L)


@njit(**PJIT)
def quantize_q5_k(x, out, bad):
    """ggml's quantize_row_q5_K_ref, rows in parallel."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        row = out[r]
        L = np.empty(QK_K, np.uint8)
        weights = np.empty(32, np.float32)
        mins = np.empty(8, np.float32)
        scales = np.empty(8, np.float32)
        ln = np.empty(8 * NLANE, np.float32)
        for i in range(nb):
            o = i * Q5_K_BYTES
            _ref_scales_k4(xr, i * QK_K, row, o, L, weights, scales, mins, ln, 31,
                           f32(-0.5), f32(0.1), 15)
            _requantize_k4(xr, i * QK_K, row, o, L, 31)
            _pack_q5_k(row, o, L)


@njit(**PJIT)
def quantize_imatrix_q5_k(x, qw, out, bad):
    """ggml's quantize_q5_K with quant_weights (quantize_row_q5_K_impl), rows in parallel."""
    nb = x.shape[1] // QK_K
    for r in prange(x.shape[0]):
        if row_bad(x, r, bad):
            continue
        xr = x[r]
        row = out[r]
        L = np.empty(QK_K, np.uint8)
        weights = np.empty(32, np.float32)
        mins = np.empty(8, np.float32)
        scales = np.empty(8, np.float32)
        sw = np.empty(8, np.float32)
        Ls = np.empty(8, np.uint8)
        Lm = np.empty(8, np.uint8)
        ln = np.empty(8 * NLANE, np.float32)
        for i in range(nb):
            o = i * Q5_K_BYTES
            _impl_scales_k4(xr, i * QK_K, qw, row, o, L, weights, scales, mins, sw, Ls, Lm, ln, 31, True)
            _requantize_k4(xr, i * QK_K, row, o, L, 31)
            _pack_q5_k(row, o, L)


register(T.Q2_K, Kernels(quantize_q2_k, dequantize_q2_k, quantize_imatrix_q2_k, WEIGHTED))
register(T.Q4_K, Kernels(quantize_q4_k, dequantize_q4_k, quantize_imatrix_q4_k, WEIGHTED))
register(T.Q5_K, Kernels(quantize_q5_k, dequantize_q5_k, quantize_imatrix_q5_k, WEIGHTED))
