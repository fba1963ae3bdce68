"""Property tests: error bounds derived from each format, and idempotence where the format guarantees it.

Every quantized type here represents each *group* of elements (a block, or a sub-block of a k-quant super-block)
on an integer grid ``y = s * l + off`` with ``l`` in ``[lo, hi]``; ``decode_groups`` reads ``s``, ``off`` from the
bytes, written from the format description alone (independently of pyquant's kernels). Two bounds follow:

A. Rounding (per element, every type, with or without imatrix): the output is the grid point nearest to ``x``,
   up to the slack of the type's arithmetic. For the k-quants the final pass of ggml's quantizers re-picks each
   level as ``nearest_int((x + dm) / d)`` with the *stored* (fp16) scales, so the slack is float32 rounding only.
   For the legacy types the level ``q`` is the nearest for the float32 scale ``d`` (and min ``m``) before they are
   rounded to fp16, while the grid uses the rounded ones; with ``l*`` the level nearest on the stored grid,
   ``|x - q*d16 - m16| <= |x - q*d - m| + |q||d - d16| + |m - m16| <= |x - l*·d16 - m16| + (|q| + |l*|)|d - d16|
   + 2|m - m16|``, so the slack adds ``2 * lmax * halfulp16(d)`` (and ``2 * halfulp16(m)``).

B. Scale choice (per group, reference path): the stored scale is what the format prescribes.
   - Q4_0 / Q5_0: ``|d| = amax/8`` / ``amax/16`` up to fp16 rounding; Q8_0 / Q8_1: ``amax/127``; Q8_K: ``amax/127``
     in float32; Q4_1 / Q5_1: ``d = (max - min)/15`` / ``/31`` and ``m = min``, up to fp16 rounding. With A this gives
     the classic ``|x - y| <= d/2`` (and ``<= d`` on the clipped top level of Q4_0/Q5_0).
   - k-quants: ggml's searches (make_qkx2_quants, make_q3_quants, make_qx_quants) keep a candidate only if its
     weighted error beats the plain grid's, whose error per element is at most half a step (``range/(2*nmax)``;
     a full step ``amax/nmax`` on the one clipped side of the symmetric grids). Quantizing the sub-block scales and
     mins to 4/6/8 bits then moves each by at most half a super-block step plus fp16 rounding of the super-block
     scale, ``ds`` and ``dm``, and the final pass only moves levels closer. By Minkowski's inequality, per group,
     ``weighted_rms(x - y) <= grid_bound + nmax * ds + dm`` (Q2_K's search minimizes the weighted mean absolute
     error instead, so there the weighted mean of ``|x - y|`` obeys the same bound). The weights are the ones
     ggml's reference path uses (Q4_K/Q5_K: ``rms(x_group) + |x|``; Q2_K: ``|x|``; Q3_K/Q6_K: ``x^2``).

The non-linear types put each group on ``y = s * v[l]`` with a fixed table ``v`` (``decode_nonlinear``):
IQ4_NL / IQ4_XS use kvalues_iq4nl ``{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}``
(largest gap 24, between 89 and 113; asymmetric: the ends are -127 and +113), MXFP4 the doubled e2m1 values
``{0, 1, 2, 3, 4, 6, 8, 12}`` and their negatives (gaps 1, 1, 1, 1, 2, 2, 4) times ``s = 2^(e - 128)``.

A'. Rounding: each level is the nearest table value to ``x/s`` (best_index_int8 / best_index_mxfp4, both over
   the whole table, so the ends clip to the nearest end: that is still the nearest grid point). IQ4 picks it for
   the float32 scale before fp16 rounding, so as for the legacy types the slack adds ``2 * 127 * |s - s16|``
   (IQ4_XS: ``s = d * (ls - 32)``, ``|s - s16| <= 32 * halfulp16(d)``); MXFP4's scale is a power of two, stored
   exactly: float32 rounding only.

B'. Scale choice:
   - MXFP4: ``s = 2^(floor(log2f(amax)) - 3)`` exactly: ``2^(E-3)`` with ``E`` amax's binary exponent, or ``2^(E-2)``
     when log2f rounds amax (within 2^-18 of ``2^(E+1)``) up. So ``amax/s`` is in [8, 16) (or ~8): elements up
     to ``12 s`` are within half a gap (``<= 2 s <= amax/4``), the ones past it clip to ``12 s`` with error
     ``amax - 12 s < amax/4``: ``|x - y| <= amax/4`` for every element. Below 2^-125 the exponent byte wraps
     (see pyquant.cpu.iquants) and the block decodes to zeros.
   - IQ4 (quantize_row_iq4_nl_impl): the first candidate is the grid of ``d0 = max/127`` (max the signed element
     of largest magnitude). On it every element is within half a gap (<= 12 |d0|), except the ones that
     ``127/max`` sends past +113, clipped with error <= 14 |d0| (the +127 end maps to 113): weighted RMS error
     <= 14 |d0| = 14 amax/127. Every later candidate replaces it only with a larger ``sumqx^2/sumq2``, i.e. a
     smaller weighted error at its least-squares scale (which the block stores), and the final pass re-picks
     each level nearest for that scale. So per 32-element group ``wrms(x - y) <= 14 amax/127 + 127 |d - d16|``,
     with ggml's weights (``x^2``; with an imatrix ``qw * sqrt(sigma2 + x^2)``: the argument holds for any
     weights). IQ4_XS then rounds the sub-block scale to ``d * l`` with ``l = nearest_int(scale / d)`` in
     [-32, 31], ``d = -max_scale/32``: it moves by at most ``|d|/2`` (``|d|`` when clamped to 31, ls = 63), adding
     ``127 * (|d|/2 + 32 * halfulp16(d))``. Blocks below GROUP_MAX_EPS = 1e-15 get scale 0 (y = 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import pyquant
from pyquant.formats import layout

from .strategies import IMATRIX_KINDS, make_imatrix, rows_case

E32 = 2.0**-24  # float32 unit roundoff


def halfulp16(v):
    """Largest distance from |v| to its fp16 rounding (normal: half an ulp; subnormal: 2^-25)."""
    a = np.abs(np.asarray(v, dtype=np.float64))
    e = np.floor(np.log2(np.maximum(a, 2.0**-14)))
    return np.where(a >= 2.0**-14, 2.0 ** (e - 11), 2.0**-25)


def _f16(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view(np.float16).astype(np.float64)[..., 0]


def decode_groups(qtype, data: np.ndarray):
    """(s, off, lo, hi, group) of every group: rows x groups arrays s and off; y = s*l + off, l in [lo, hi]."""
    name = qtype.name
    lay = layout(qtype)
    blocks = data.reshape(data.shape[0], -1, lay.type_size)
    fb = {f.name: blocks[..., f.offset:f.offset + f.nbytes] for f in lay.fields}
    if name in ("Q4_0", "Q5_0"):
        d = _f16(fb["d"])
        half = 8 if name == "Q4_0" else 16
        return d, -half * d, 0, 2 * half - 1, 32
    if name in ("Q4_1", "Q5_1"):
        return _f16(fb["d"]), _f16(fb["m"]), 0, (15 if name == "Q4_1" else 31), 32
    if name in ("Q8_0", "Q8_1"):
        d = _f16(fb["d"])
        return d, 0 * d, -128, 127, 32
    if name == "Q8_K":
        d = np.ascontiguousarray(fb["d"]).view(np.float32).astype(np.float64)[..., 0]
        return d, 0 * d, -128, 127, 256
    if name == "Q2_K":
        sc = fb["scales"].astype(np.float64)  # (rows, nb, 16)
        d, dmin = _f16(fb["d"])[..., None], _f16(fb["dmin"])[..., None]
        s, off = d * (sc % 16), -dmin * np.floor(sc / 16)
        return s.reshape(s.shape[0], -1), off.reshape(s.shape[0], -1), 0, 3, 16
    if name == "Q3_K":
        raw = fb["scales"].astype(np.int64)
        sc = np.empty(raw.shape[:-1] + (16,), np.int64)
        for j in range(16):
            low = (raw[..., j] & 0xF) if j < 8 else (raw[..., j - 8] >> 4)
            sc[..., j] = (low | (((raw[..., 8 + j % 4] >> (2 * (j // 4))) & 3) << 4)) - 32
        s = _f16(fb["d"])[..., None] * sc
        return s.reshape(s.shape[0], -1), 0 * s.reshape(s.shape[0], -1), -4, 3, 16
    if name in ("Q4_K", "Q5_K"):
        q = fb["scales"].astype(np.int64)
        sc = np.empty(q.shape[:-1] + (8,), np.int64)
        mn = np.empty_like(sc)
        for j in range(8):
            if j < 4:
                sc[..., j], mn[..., j] = q[..., j] & 63, q[..., j + 4] & 63
            else:
                sc[..., j] = (q[..., j + 4] & 0xF) | ((q[..., j - 4] >> 6) << 4)
                mn[..., j] = (q[..., j + 4] >> 4) | ((q[..., j] >> 6) << 4)
        s = _f16(fb["d"])[..., None] * sc
        off = -_f16(fb["dmin"])[..., None] * mn
        return s.reshape(s.shape[0], -1), off.reshape(s.shape[0], -1), 0, (15 if name == "Q4_K" else 31), 32
    if name == "Q6_K":
        sc = fb["scales"].view(np.int8).astype(np.float64)
        s = _f16(fb["d"])[..., None] * sc
        return s.reshape(s.shape[0], -1), 0 * s.reshape(s.shape[0], -1), -32, 31, 16
    raise ValueError(name)


GRID_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"]
LEGACY = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1"}


def nearest_level_bound(qtype, x, data):
    """Bound A: distance from x to its group's grid, plus the type's arithmetic slack (see module docstring)."""
    s, off, lo, hi, g = decode_groups(qtype, data)
    rows, n = x.shape
    xs = x.astype(np.float64).reshape(rows, -1, g)
    S, O = s[..., None], off[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = np.clip(np.rint(np.where(S != 0, (xs - O) / S, 0)), lo, hi)
    dist = np.abs(xs - (S * lev + O))
    lmax = max(abs(lo), abs(hi))
    slack = 8 * E32 * (np.abs(xs) + np.abs(O) + np.abs(S) * lmax)
    if qtype.name in LEGACY:
        slack = slack + 2 * lmax * halfulp16(s)[..., None]
        if qtype.name in ("Q4_1", "Q5_1"):
            slack = slack + 2 * halfulp16(off)[..., None]
    if qtype.name == "Q8_K":  # d stored as float32 1/iscale while levels were picked with iscale
        slack = slack + 128 * E32 * np.abs(S)
    return (dist + slack).reshape(rows, n)


def scale_choice_check(qtype, x, data, y):
    """Bound B for the reference path; raises AssertionError naming the group that breaks it."""
    name = qtype.name
    s, off, lo, hi, g = decode_groups(qtype, data)
    rows = x.shape[0]
    xs = x.astype(np.float64).reshape(rows, -1, g)
    err = (x.astype(np.float64) - y.astype(np.float64)).reshape(rows, -1, g)
    amax = np.abs(xs).max(-1)
    if name in ("Q4_0", "Q5_0", "Q8_0", "Q8_1", "Q8_K"):
        div = {"Q4_0": 8, "Q5_0": 16}.get(name, 127)
        want = amax / div
        tol = (halfulp16(want) if name != "Q8_K" else 0) + 4 * E32 * want
        if name == "Q8_K":
            # Q8_K keeps d = 1/iscale with iscale = -127/max in float32: for amax below 127/FLT_MAX the
            # reciprocal overflows to inf and ggml stores d = 0 (all levels zero). That is the format's edge.
            tiny = amax < 127 / np.finfo(np.float32).max
            assert np.all(s[tiny] == 0), "Q8_K: overflowing iscale must give d = 0"
            want, s, tol = want[~tiny], s[~tiny], tol[~tiny]
        assert np.all(np.abs(np.abs(s) - want) <= tol * (1 + 1e-9)), f"{name}: block scale is not amax/{div}"
        return
    if name in ("Q4_1", "Q5_1"):
        mn, mx = xs.min(-1), xs.max(-1)
        want = (mx - mn) / hi
        assert np.all(np.abs(s - want) <= halfulp16(want) + 4 * E32 * want), f"{name}: d is not (max-min)/{hi}"
        assert np.all(np.abs(off - mn) <= halfulp16(mn)), f"{name}: m is not the block min"
        return
    # k-quants: weighted error per group against the grid bound plus scale/min quantization.
    nb = x.shape[1] // 256
    lay = layout(qtype)
    blocks = data.reshape(rows, nb, lay.type_size)
    dsup = _f16(blocks[..., lay.field("d").offset:][..., :2])  # super-block scale (fp16)
    per = 256 // g
    dsup = np.repeat(dsup, per, axis=1)
    nmax = hi - lo
    if name in ("Q4_K", "Q5_K", "Q2_K"):
        dmin = np.repeat(_f16(blocks[..., lay.field("dmin").offset:][..., :2]), per, axis=1)
        steps = 63 if name != "Q2_K" else 15
        ds = 0.5 * (dsup + halfulp16(dsup)) + steps * halfulp16(dsup)
        dm = 0.5 * (dmin + halfulp16(dmin)) + steps * halfulp16(dmin)
        lo_x = np.minimum(xs.min(-1), 0)
        grid = (xs.max(-1) - lo_x) / (2 * nmax)
        if name == "Q2_K":
            w = np.abs(xs)
        else:
            w = np.sqrt((xs * xs).mean(-1, keepdims=True)) + np.abs(xs)
    else:  # Q3_K, Q6_K: symmetric grids, one side clipped: a full step amax/nmax_half; scale levels clipped one side
        half = -lo
        steps = 32 if name == "Q3_K" else 128
        ds = (np.abs(dsup) + halfulp16(dsup)) + steps * halfulp16(dsup)
        dm = 0.0
        grid = amax / half
        w = xs * xs
    bound = (grid * (1 + 1e-5) + nmax * ds + dm) * (1 + 1e-6) + 16 * E32 * amax
    sw = w.sum(-1)
    ok = sw > 0
    if name == "Q2_K":
        stat = np.where(ok, (w * np.abs(err)).sum(-1) / np.where(ok, sw, 1), 0)
    else:
        stat = np.where(ok, np.sqrt((w * err * err).sum(-1) / np.where(ok, sw, 1)), 0)
    bad = np.argwhere(stat > bound)
    if bad.size:
        r, j = bad[0]
        raise AssertionError(f"{name}: group {j} of row {r}: weighted error {stat[r, j]:.6g} > bound {bound[r, j]:.6g}")


def _check_a(qtype, x, q, bound_of=None):
    """Bound A (or ``bound_of``'s nearest-level bound) for every element; returns the dequantized values."""
    y = q.dequantize()
    bound = (bound_of or nearest_level_bound)(qtype, x, q.data)
    err = np.abs(x.astype(np.float64) - y.astype(np.float64))
    bad = np.argwhere(err > bound)
    if bad.size:
        r, c = bad[0]
        raise AssertionError(f"{qtype.name}: |x-y| = {err[r, c]:.6g} > nearest-level bound {bound[r, c]:.6g} at ({r}, {c}), x={x[r, c]!r}")
    return y


@pytest.mark.parametrize("name", GRID_TYPES)
@given(data=st.data())
def test_error_bounds_reference_path(name, data):
    qtype = pyquant.qtype_of(name)
    kind, x, seed = data.draw(rows_case(layout(qtype).block_size))
    note(f"kind={kind} seed={seed}")
    q = pyquant.quantize(x, qtype)
    y = _check_a(qtype, x, q)
    scale_choice_check(qtype, x, q.data, y)


# With an imatrix, the k-quants still end with ggml's requantization pass on the stored scales, so bound A holds.
# The legacy types' weighted paths (quantize_row_q4_0_impl & co.) store the levels of the search candidate as
# they are, with the least-squares scale of the best candidate: those levels need not be the nearest on the
# stored grid, so bound A is not a property of ggml's algorithm there (the differential tests pin their bytes).
@pytest.mark.parametrize("name", ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
@given(data=st.data(), wkind=st.sampled_from(IMATRIX_KINDS))
def test_nearest_level_with_imatrix(name, data, wkind):
    qtype = pyquant.qtype_of(name)
    kind, x, seed = data.draw(rows_case(layout(qtype).block_size))
    note(f"kind={kind} imatrix={wkind} seed={seed}")
    _check_a(qtype, x, pyquant.quantize(x, qtype, imatrix=make_imatrix(wkind, x.shape[1], seed)))


# ----------------------------------------------------------------------------------------------- non-linear grids

KV_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float64)
KV_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, -1, -2, -3, -4, -6, -8, -12], np.float64)  # the distinct values
NONLINEAR_TYPES = ["IQ4_NL", "IQ4_XS", "MXFP4"]


def _xs_ls(blocks):
    """IQ4_XS's 6-bit sub-block scales (rows, nb, 8) from scales_l (low nibbles) and scales_h (2-bit pairs)."""
    sh = blocks[..., 2].astype(np.int64) | (blocks[..., 3].astype(np.int64) << 8)
    sl = blocks[..., 4:8].astype(np.int64)
    ib = np.arange(8)
    return ((sl[..., ib // 2] >> (4 * (ib % 2))) & 0xF) | (((sh[..., None] >> (2 * ib)) & 3) << 4)


def decode_nonlinear(qtype, data: np.ndarray):
    """(s, d, values, group): y = s * values[l] per group of ``group`` elements; ``d`` the stored fp16 super-scale
    (IQ4_NL: d = s; IQ4_XS: s = d * (ls - 32) in float32 as ggml computes it; MXFP4: s = 2^(e-128), no d)."""
    name = qtype.name
    lay = layout(qtype)
    blocks = data.reshape(data.shape[0], -1, lay.type_size)
    if name == "IQ4_NL":
        d = _f16(blocks[..., :2])
        return d, d, KV_IQ4NL, 32
    if name == "IQ4_XS":
        d = _f16(blocks[..., :2])
        s = (d.astype(np.float32)[..., None] * (_xs_ls(blocks) - 32).astype(np.float32)).astype(np.float64)
        return s.reshape(s.shape[0], -1), np.repeat(d, 8, axis=1), KV_IQ4NL, 32
    if name == "MXFP4":
        s = np.ldexp(1.0, blocks[..., 0].astype(np.int64) - 128)
        return s, 0 * s, KV_MXFP4, 32
    raise ValueError(name)


def nonlinear_nearest_bound(qtype, x, data):
    """Bound A' (module docstring): distance from x to its group's grid plus the type's slack."""
    s, d, vals, g = decode_nonlinear(qtype, data)
    rows, n = x.shape
    xs = x.astype(np.float64).reshape(rows, -1, g)
    S = s[..., None]
    dist = np.abs(xs[..., None] - S[..., None] * vals).min(-1)
    vmax = np.abs(vals).max()
    slack = 8 * E32 * (np.abs(xs) + np.abs(S) * vmax)
    if qtype.name == "IQ4_NL":
        slack = slack + 2 * vmax * halfulp16(d)[..., None]
    elif qtype.name == "IQ4_XS":
        slack = slack + 2 * vmax * (32 * halfulp16(d) + 2 * E32 * np.abs(s))[..., None]
    return (dist + slack).reshape(rows, n)


def nonlinear_scale_check(qtype, x, data, y, w=None):
    """Bound B' (module docstring), for ggml's weights (``x^2``, or the imatrix's ``qw * sqrt(sigma2 + x^2)``)."""
    name = qtype.name
    s, d, vals, g = decode_nonlinear(qtype, data)
    rows, n = x.shape
    x64 = x.astype(np.float64)
    xs = x64.reshape(rows, -1, g)
    err = (x64 - y.astype(np.float64)).reshape(rows, -1, g)
    amax = np.abs(xs).max(-1)
    if name == "MXFP4":
        x32 = x.astype(np.float32).reshape(rows, -1, g)
        E = np.floor(np.log2(np.where(amax > 0, amax, 1.0)))
        up = amax >= 2.0 ** (E + 1) * (1 - 2.0**-18)  # log2f may round these up to E + 1
        normal = (E >= -125 - up) & (amax > 0)
        assert np.all(s[amax == 0] == 2.0**-128), f"{name}: an all-zero block stores e != 0"
        ok_s = (s == 2.0 ** (E - 3)) | (up & (s == 2.0 ** (E - 2)))
        assert np.all(ok_s | ~normal), f"{name}: e is not floor(log2(amax)) - 2 + 127"
        within = np.abs(err) <= (amax / 4 * (1 + 4 * E32))[..., None]
        assert np.all(within[normal]), f"{name}: |x - y| > amax/4"
        assert np.all(y.reshape(rows, -1, g)[~normal] == 0) and np.all(np.abs(x32).max(-1)[~normal] < 2.0**-125), \
            f"{name}: a block below 2^-125 does not decode to zeros"
        return
    tiny = amax < np.float32(1e-15)
    assert np.all(y.reshape(rows, -1, g)[tiny] == 0), f"{name}: a block below GROUP_MAX_EPS is not zero"
    bound = 14 * amax / 127 + 127 * halfulp16(d)
    if name == "IQ4_XS":
        blocks = data.reshape(rows, -1, layout(qtype).type_size)
        ls = _xs_ls(blocks).reshape(rows, -1)
        dd = np.abs(d) + halfulp16(d)  # |d| before fp16 rounding, at most
        bound = bound + 127 * (np.where(ls == 63, 1.0, 0.5) * dd + 32 * halfulp16(d))
    if w is None:
        wt = xs * xs
    else:
        sb = 32 if name == "IQ4_NL" else 256
        xsb = x64.reshape(rows, -1, sb)
        sigma2 = (xsb * xsb).sum(-1, keepdims=True) * 2 / sb
        wt = (w.astype(np.float64).reshape(1, -1, sb) * np.sqrt(sigma2 + xsb * xsb)).reshape(rows, -1, g)
    sw = wt.sum(-1)
    ok = sw > 0
    stat = np.where(ok, np.sqrt((wt * err * err).sum(-1) / np.where(ok, sw, 1)), 0)
    bound = (bound * (1 + 1e-5)) * (1 + 1e-6) + 16 * E32 * amax
    bad = np.argwhere((stat > bound) & ~tiny)
    if bad.size:
        r, j = bad[0]
        raise AssertionError(f"{name}: group {j} of row {r}: weighted error {stat[r, j]:.6g} > bound {bound[r, j]:.6g}")


def _check_nonlinear_a(qtype, x, q):
    return _check_a(qtype, x, q, nonlinear_nearest_bound)


@pytest.mark.parametrize("name", NONLINEAR_TYPES)
@given(data=st.data())
def test_error_bounds_nonlinear_reference_path(name, data):
    qtype = pyquant.qtype_of(name)
    kind, x, seed = data.draw(rows_case(layout(qtype).block_size))
    note(f"kind={kind} seed={seed}")
    q = pyquant.quantize(x, qtype)
    y = _check_nonlinear_a(qtype, x, q)
    nonlinear_scale_check(qtype, x, q.data, y)


# IQ4's weighted path is the same search with other weights, and still ends with the nearest-level pass: A' and B'
# both hold (B' with the imatrix weights). MXFP4 ignores the imatrix (the API test checks the bytes are the same).
@pytest.mark.parametrize("name", ["IQ4_NL", "IQ4_XS"])
@given(data=st.data(), wkind=st.sampled_from(IMATRIX_KINDS))
def test_error_bounds_nonlinear_with_imatrix(name, data, wkind):
    qtype = pyquant.qtype_of(name)
    kind, x, seed = data.draw(rows_case(layout(qtype).block_size))
    w = make_imatrix(wkind, x.shape[1], seed)
    note(f"kind={kind} imatrix={wkind} seed={seed}")
    q = pyquant.quantize(x, qtype, imatrix=w)
    y = _check_nonlinear_a(qtype, x, q)
    nonlinear_scale_check(qtype, x, q.data, y, w)


@pytest.mark.parametrize("name,rel,absolute", [("F16", 2.0**-11, 2.0**-25), ("BF16", 2.0**-8, 2.0**-134), ("F32", 0.0, 0.0)])
@given(data=st.data())
def test_float_types_round_to_nearest(name, rel, absolute, data):
    """F16/BF16 round to nearest: |x - y| <= max(|x| * 2^-(p+1), half the smallest subnormal step)."""
    kind, x, seed = data.draw(rows_case(1, max_blocks=64))
    y = pyquant.quantize(x, name).dequantize()
    err = np.abs(x.astype(np.float64) - y)
    assert np.all(err <= np.maximum(np.abs(x) * rel, absolute)), kind


# Idempotence quantize(dequantize(q)) == q.
# Holds (for blocks whose fp16 scale is a normal number, see below):
#  - F32, F16, BF16: dequantized values are representable, so rounding them is exact.
#  - Q8_0: the element with |q| = 127 comes back as 127*d16 exactly, so amax/127 = d16 again and every
#    x/d lands within float32 rounding of its integer: the same roundf.
#  - Q4_0, Q5_0: the extreme element comes back as -8*d16 (-16*d16), the new scale is d16 exactly and
#    x*id + 8.5 is within rounding of q + 0.5: the same truncation.
# Does not hold in general:
#  - Q8_1: the quants do (as Q8_0), but s = fp16(sum(q) * d) uses the float32 d of the first pass and d16 of
#    the second, which can round to different halves;
#  - Q4_1, Q5_1: max is rebuilt as 15*d16 + m16 in float32, whose rounding can move (max - min)/15 off d16;
#  - Q8_K: d = 1/iscale is rounded in float32, so amax' = 127*d is not the old amax and iscale' can differ;
#  - every k-quant: the scale search runs again on new data and may pick another (equally good) scale.
#  - MXFP4: amax/s is in [8, 16) (or ~8, see B'), so the largest element comes back as 8s or 12s, whose
#    floor(log2) is the same exponent (8s = 2^E exactly, 12s = 1.5 * 2^E, far from a rounding edge): the same e and
#    s, and every dequantized value is a grid point (error 0, found exactly; a 0 comes back as +0 and takes
#    index 0, which the first pass also picks, since index 8's 0 never has a strictly smaller error).
# Does not hold for IQ4_NL / IQ4_XS: the search tries only scales derived from the new max (max/127 and
#   (itry - 127)/max), and the grid is asymmetric (-127 .. +113): when the largest element sits at +113 s, no
#   candidate reproduces s, and another scale with near-equal weighted error wins; IQ4_XS also re-rounds the
#   sub-block scales to 6 bits relative to a new max_scale.
# Blocks whose scale underflows fp16 (data below ~1e-6 for Q4_0) decode to zeros: not idempotent either (nor
# MXFP4 blocks below 2^-125, whose exponent wraps), so the property draws magnitudes in a normal range.
IDEMPOTENT = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "MXFP4"]


@pytest.mark.parametrize("name", IDEMPOTENT)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 0.1, 1.0, 100.0]), heavy=st.booleans())
def test_idempotent(name, seed, scale, heavy):
    rng = np.random.default_rng(seed)
    bs = layout(name).block_size
    shape = (3, bs * 8 if bs > 1 else 64)
    x = (rng.standard_t(2, shape) if heavy else rng.standard_normal(shape)) * scale
    q = pyquant.quantize(x.astype(np.float32), name)
    q2 = pyquant.quantize(q.dequantize(), name)
    assert np.array_equal(q.data, q2.data)


def test_bounds_are_tight_enough_to_catch_a_wrong_level():
    """A check that cannot fail is a defect: corrupt one level and one scale and both bounds must notice."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256)).astype(np.float32)
    for name in ("Q4_K", "Q4_0", "Q6_K"):
        t = pyquant.qtype_of(name)
        q = pyquant.quantize(x, t)
        lay = layout(t)
        bad = q.data.copy()
        qs = lay.field("ql" if name == "Q6_K" else "qs")
        bad[0, qs.offset] ^= 0x03  # move the first element's level by up to 3 steps
        y = pyquant.dequantize(bad, t)
        err = np.abs(x.astype(np.float64) - y)
        assert (err > nearest_level_bound(t, x, bad)).any(), name
    t = pyquant.qtype_of("Q4_K")
    q = pyquant.quantize(x, t)
    bad = q.data.copy()
    bad[0, 1] = np.uint8(bad[0, 1] + 8)  # super-block scale d (fp16, high byte) scaled by 2^2
    with pytest.raises(AssertionError):
        scale_choice_check(t, x, bad, pyquant.dequantize(bad, t))
    for name in NONLINEAR_TYPES:
        t = pyquant.qtype_of(name)
        q = pyquant.quantize(x, t)
        lay = layout(t)
        bad = q.data.copy()
        bad[0, lay.field("qs").offset] ^= 0x03  # the first element's level moves by up to 3 table entries
        y = pyquant.dequantize(bad, t)
        assert (np.abs(x.astype(np.float64) - y) > nonlinear_nearest_bound(t, x, bad)).any(), name
        for scale_byte, delta in ((1, 8), (1, -8)) if name != "MXFP4" else ((0, 1), (0, -1)):
            bad = q.data.copy()
            bad[0, scale_byte] = np.uint8(int(bad[0, scale_byte]) + delta)  # scale x2^(+-2) (fp16), x2^(+-1) (E8M0)
            with pytest.raises(AssertionError):
                y = pyquant.dequantize(bad, t)
                nonlinear_scale_check(t, x, bad, y)


# ----------------------------------------------------------------------------------------------- ternary types
# TQ1_0 / TQ2_0 (quantize_row_tq<k>_0_ref): per 256-element block, d = amax in float32, stored as d16 =
# fp16(amax); id = 1/d in float32; each element's level q = lroundf(x * id) in {-1, 0, 1}; y = q * d16.
# Derivation, per element: t = fl(x * fl(1/d)) is within 2 float32 roundings of x/d (|x/d| <= 1), so
# |t - x/d| <= 2 * E32 * 2; lroundf gives |t - q| <= 1/2; hence |x - q d| <= d (1/2 + 4 E32), and
# |x - y| <= |x - q d| + |q| |d - d16| <= d (1/2 + 4 E32) + halfulp16(d). Elements at d/2 reach d/2: the bound is
# tight to its slack. B: the stored scale is exactly fp16(amax), and the levels are the same whichever
# representation (TQ1_0's base-3 bytes, TQ2_0's bit pairs) holds them.
TERNARY = ["TQ1_0", "TQ2_0"]


def _ternary_d16(name, data):
    lay = layout(name)
    off = lay.field("d").offset
    blocks = data.reshape(data.shape[0], -1, lay.type_size)
    return _f16(blocks[..., off:off + 2])


@pytest.mark.parametrize("name", TERNARY)
@given(data=st.data())
def test_ternary_error_bound_and_scale(name, data):
    kind, x, seed = data.draw(rows_case(256, max_blocks=4))
    note(f"kind={kind} seed={seed}")
    q = pyquant.quantize(x, name)
    amax = np.abs(x.astype(np.float64)).reshape(x.shape[0], -1, 256).max(-1)
    d16 = _ternary_d16(name, q.data)
    np.testing.assert_array_equal(d16, amax.astype(np.float32).astype(np.float16).astype(np.float64))
    y = q.dequantize().astype(np.float64)
    bound = np.repeat(amax * (0.5 + 4 * E32) + halfulp16(amax), 256, axis=1)
    err = np.abs(x.astype(np.float64) - y)
    bad = np.argwhere(err > bound)
    assert not bad.size, f"{name}: |x-y| {err[tuple(bad[0])]:.6g} > {bound[tuple(bad[0])]:.6g} at {tuple(bad[0])}"
    d = np.repeat(d16, 256, axis=1)
    levels = np.where(d > 0, y / np.where(d > 0, d, 1), 0)
    assert set(np.unique(levels)) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("name", TERNARY)
def test_ternary_ties_round_away_from_zero(name):
    """lroundf: x * id exactly +-1/2 goes to +-1 (amax 2: id 0.5 exactly, x = +-1); just below stays 0."""
    x = np.zeros((1, 256), np.float32)
    x[0, :4] = [2.0, 1.0, -1.0, np.nextafter(np.float32(1.0), np.float32(0))]
    y = pyquant.quantize(x, name).dequantize()[0]
    np.testing.assert_array_equal(y[:5], [2.0, 2.0, -2.0, 0.0, 0.0])


# Idempotent: y takes the values -d16, 0, d16, so the requantized block has amax = d16 (an fp16 value: stored
# as is) and x * id = +-d16 * fl(1/d16), within an ulp of +-1: the same levels. Drawn short of fp16's range
# (d = amax itself is stored) and above its subnormals' underflow (amax < 2^-25 stores d16 = 0).
@pytest.mark.parametrize("name", TERNARY)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 0.1, 1.0, 100.0]), heavy=st.booleans())
def test_ternary_idempotent(name, seed, scale, heavy):
    rng = np.random.default_rng(seed)
    x = (rng.standard_t(2, (3, 1024)) if heavy else rng.standard_normal((3, 1024))) * scale
    q = pyquant.quantize(np.clip(x, -60000, 60000).astype(np.float32), name)
    assert np.array_equal(pyquant.quantize(q.dequantize(), name).data, q.data)
