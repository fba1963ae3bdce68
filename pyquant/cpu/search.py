"""ggml's shared scale searches (``ggml-quants.c``), written once for every family.

Each function reproduces the ggml function of the same name, operation for operation in float32, so that
the chosen integer levels and scales are bit-identical. Arrays the C code fills through pointers (``L``,
``Laux``, ``the_min``) are passed in; ``the_min`` is a one-element float32 array. Where the C code takes an
optional weight pointer, a ``has_weights`` flag says whether ``weights`` is meaningful.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .common import JIT, f32, f32_bits

GROUP_MAX_EPS = np.float32(1e-15)


@njit(**JIT)
def nearest_int(fval):
    """ggml's nearest_int: round half to even by adding 1.5*2^23 in float32 and reading the mantissa bits.

    Kept bit-for-bit, not replaced by ``rint``: for |fval| > 2^22 (ggml only asserts against it in debug
    builds) the trick wraps, and the searches clamp whatever it returns.
    """
    val = f32(fval) + f32(12582912.0)
    return np.int32((np.int64(f32_bits(val)) & 0x007FFFFF) - 0x00400000)


@njit(**JIT)
def _qx_weight(x, qw, has_qw, i, rmse_type):
    if has_qw:
        return qw[i]
    xi = x[i]
    if rmse_type == 1:
        return xi * xi
    if rmse_type == 2:
        return f32(1.0)
    if rmse_type == 3:
        return abs(xi)
    return np.sqrt(abs(xi))


@njit(**JIT)
def make_qx_quants(n, nmax, x, L, rmse_type, qw, has_qw):
    """ggml's make_qx_quants: symmetric levels L in [0, 2*nmax), returns the scale."""
    mx = f32(0.0)
    amax = f32(0.0)
    for i in range(n):
        ax = abs(x[i])
        if ax > amax:
            amax = ax
            mx = x[i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return f32(0.0)
    fnmax = f32(nmax)
    iscale = f32(-nmax) / mx
    if rmse_type == 0:
        for i in range(n):
            l = nearest_int(iscale * x[i])
            L[i] = nmax + max(-nmax, min(nmax - 1, l))
        return f32(1.0) / iscale
    return_early = False
    if rmse_type < 0:
        rmse_type = -rmse_type
        return_early = True
    sumlx = f32(0.0)
    suml2 = f32(0.0)
    for i in range(n):
        l = nearest_int(iscale * x[i])
        l = max(-nmax, min(nmax - 1, l))
        L[i] = l + nmax
        w = _qx_weight(x, qw, has_qw, i, rmse_type)
        fl = f32(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    scale = sumlx / suml2 if suml2 != 0 else f32(0.0)
    if return_early:
        return f32(0.5) * (scale + f32(1.0) / iscale) if suml2 > 0 else f32(1.0) / iscale
    best = scale * sumlx
    for is_ in range(-9, 10):
        if is_ == 0:
            continue
        iscale = -(fnmax + f32(0.1) * f32(is_)) / mx
        sumlx = f32(0.0)
        suml2 = f32(0.0)
        for i in range(n):
            l = nearest_int(iscale * x[i])
            l = max(-nmax, min(nmax - 1, l))
            w = _qx_weight(x, qw, has_qw, i, rmse_type)
            fl = f32(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            for i in range(n):
                l = nearest_int(iscale * x[i])
                L[i] = nmax + max(-nmax, min(nmax - 1, l))
            scale = sumlx / suml2
            best = scale * sumlx
    return scale


@njit(**JIT)
def make_q3_quants(n, nmax, x, L, do_rmse):
    """ggml's make_q3_quants: symmetric levels with an iterative weighted refinement (weights x^2)."""
    mx = f32(0.0)
    amax = f32(0.0)
    for i in range(n):
        ax = abs(x[i])
        if ax > amax:
            amax = ax
            mx = x[i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return f32(0.0)
    iscale = f32(-nmax) / mx
    if do_rmse:
        sumlx = f32(0.0)
        suml2 = f32(0.0)
        for i in range(n):
            l = nearest_int(iscale * x[i])
            l = max(-nmax, min(nmax - 1, l))
            L[i] = l
            w = x[i] * x[i]
            fl = f32(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        for _ in range(5):
            n_changed = 0
            for i in range(n):
                w = x[i] * x[i]
                Li = f32(L[i])
                slx = sumlx - w * x[i] * Li
                if slx > 0:
                    sl2 = suml2 - w * Li * Li
                    new_l = nearest_int(x[i] * sl2 / slx)
                    new_l = max(-nmax, min(nmax - 1, new_l))
                    if new_l != L[i]:
                        fnl = f32(new_l)
                        slx += w * x[i] * fnl
                        sl2 += w * fnl * fnl
                        if sl2 > 0 and slx * slx * suml2 > sumlx * sumlx * sl2:
                            L[i] = new_l
                            sumlx = slx
                            suml2 = sl2
                            n_changed += 1
            if n_changed == 0:
                break
        for i in range(n):
            L[i] += nmax
        return sumlx / suml2 if suml2 > 0 else f32(0.0)
    for i in range(n):
        l = nearest_int(iscale * x[i])
        l = max(-nmax, min(nmax - 1, l))
        L[i] = l + nmax
    return f32(1.0) / iscale


@njit(**JIT)
def _qkx_search(n, nmax, x, weights, has_weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad, x3):
    """The body shared by make_qkx2_quants (x3=False) and make_qkx3_quants (x3=True).

    They differ only in the default weights (x^2 when none are given, qkx3 only) and in the degenerate
    test (``max == min`` vs ``max <= min``, the same after ``min`` is clamped to <= 0 and max >= x[0]).
    """
    mn = x[0]
    mx = x[0]
    sum_w = weights[0] if has_weights else x[0] * x[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        w = weights[i] if has_weights else x[i] * x[i]
        sum_w += w
        sum_x += w * x[i]
    if mn > 0:
        mn = f32(0.0)
    if (mx <= mn) if x3 else (mx == mn):
        for i in range(n):
            L[i] = 0
        the_min[0] = -mn
        return f32(0.0)
    fnmax = f32(nmax)
    iscale = fnmax / (mx - mn)
    scale = f32(1.0) / iscale
    best_error = f32(0.0)
    for i in range(n):
        l = nearest_int(iscale * (x[i] - mn))
        L[i] = max(0, min(nmax, l))
        diff = scale * f32(L[i]) + mn - x[i]
        diff = abs(diff) if use_mad else diff * diff
        w = weights[i] if has_weights else x[i] * x[i]
        best_error += w * diff
    if nstep < 1:
        the_min[0] = -mn
        return scale
    for is_ in range(nstep + 1):
        iscale = (rmin + rdelta * f32(is_) + fnmax) / (mx - mn)
        sum_l = f32(0.0)
        sum_l2 = f32(0.0)
        sum_xl = f32(0.0)
        for i in range(n):
            l = nearest_int(iscale * (x[i] - mn))
            l = max(0, min(nmax, l))
            Laux[i] = l
            w = weights[i] if has_weights else x[i] * x[i]
            fl = f32(l)
            sum_l += w * fl
            sum_l2 += w * fl * fl
            sum_xl += w * fl * x[i]
        D = sum_w * sum_l2 - sum_l * sum_l
        if D > 0:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            if this_min > 0:
                this_min = f32(0.0)
                this_scale = sum_xl / sum_l2
            cur_error = f32(0.0)
            for i in range(n):
                diff = this_scale * f32(Laux[i]) + this_min - x[i]
                diff = abs(diff) if use_mad else diff * diff
                w = weights[i] if has_weights else x[i] * x[i]
                cur_error += w * diff
            if cur_error < best_error:
                for i in range(n):
                    L[i] = Laux[i]
                best_error = cur_error
                scale = this_scale
                mn = this_min
    the_min[0] = -mn
    return scale


@njit(**JIT)
def make_qkx2_quants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad):
    """ggml's make_qkx2_quants: asymmetric levels in [0, nmax] with a min, searched over nstep scales."""
    return _qkx_search(n, nmax, x, weights, True, L, the_min, Laux, f32(rmin), f32(rdelta), nstep, use_mad, False)


@njit(**JIT)
def make_qkx3_quants(n, nmax, x, weights, has_weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad):
    """ggml's make_qkx3_quants (``weights`` NULL in C <=> ``has_weights`` False: weights x^2)."""
    return _qkx_search(n, nmax, x, weights, has_weights, L, the_min, Laux, f32(rmin), f32(rdelta), nstep, use_mad, True)


@njit(**JIT)
def make_qp_quants(n, nmax, x, L, quant_weights):
    """ggml's make_qp_quants: non-negative levels in [0, nmax] for the (non-negative) scales of a super-block."""
    mx = f32(0.0)
    for i in range(n):
        mx = max(mx, x[i])
    if mx < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return f32(0.0)
    fnmax = f32(nmax)
    iscale = fnmax / mx
    for i in range(n):
        L[i] = nearest_int(iscale * x[i])
    scale = f32(1.0) / iscale
    best_mse = f32(0.0)
    for i in range(n):
        diff = x[i] - scale * f32(L[i])
        w = quant_weights[i]
        best_mse += w * diff * diff
    for is_ in range(-4, 5):
        if is_ == 0:
            continue
        iscale_is = (f32(0.1) * f32(is_) + fnmax) / mx
        scale_is = f32(1.0) / iscale_is
        mse = f32(0.0)
        for i in range(n):
            l = nearest_int(iscale_is * x[i])
            l = min(nmax, l)
            diff = x[i] - scale_is * f32(l)
            w = quant_weights[i]
            mse += w * diff * diff
        if mse < best_mse:
            best_mse = mse
            iscale = iscale_is
    sumlx = f32(0.0)
    suml2 = f32(0.0)
    for i in range(n):
        l = nearest_int(iscale * x[i])
        l = min(nmax, l)
        L[i] = l
        w = quant_weights[i]
        fl = f32(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = quant_weights[i]
            Li = f32(L[i])
            slx = sumlx - w * x[i] * Li
            sl2 = suml2 - w * Li * Li
            if slx > 0 and sl2 > 0:
                new_l = nearest_int(x[i] * sl2 / slx)
                new_l = min(nmax, new_l)
                if new_l != L[i]:
                    fnl = f32(new_l)
                    slx += w * x[i] * fnl
                    sl2 += w * fnl * fnl
                    if slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = new_l
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > 0 else f32(0.0)


@njit(**JIT)
def get_scale_min_k4(j, q, off):
    """ggml's get_scale_min_k4: the 6-bit scale and min of sub-block ``j`` from 12 packed bytes at q[off:]."""
    if j < 4:
        d = q[off + j] & 63
        m = q[off + j + 4] & 63
    else:
        d = (q[off + j + 4] & 0xF) | ((q[off + j - 4] >> 6) << 4)
        m = (q[off + j + 4] >> 4) | ((q[off + j] >> 6) << 4)
    return np.uint8(d), np.uint8(m)
