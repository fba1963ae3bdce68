"""IQ4_NL, IQ4_XS, MXFP4: the cases particular to the non-linear 4-bit types, against ggml (pyquant.oracle).

The generic differential and property tests cover ordinary data; these pin the edges: MXFP4's exponent
``floorf(log2f(amax)) - 2 + 127`` at every binade edge (where log2f rounds up to the integer) and its wrap-around
below 2^-125, E8M0 scales in the subnormal range, ties in both nearest-value searches, blocks below
GROUP_MAX_EPS, importance matrices with zeros, and IQ4_XS's packing of 6-bit scales into scales_l/scales_h.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

import pyquant
from pyquant import cpu
from pyquant.cpu import iquants
from pyquant.formats import layout

oracle = pytest.importorskip("pyquant.oracle")
pytest.importorskip("ggml")

from . import test_legacy  # noqa: E402  (after the oracle's skip)

TYPES = [T.IQ4_NL, T.IQ4_XS, T.MXFP4]
IDS = [t.name for t in TYPES]
f32 = np.float32
KV = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]  # ggml-common.h kvalues_iq4nl
KVM = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]  # kvalues_mxfp4


# ggml-differential helpers shared with the legacy types' tests
_quantize, _dequantize, _check = test_legacy._quantize, test_legacy._dequantize, test_legacy._check


def _bits(b):
    return np.asarray(b, np.uint32).view(np.float32)


def test_registered_with_ggml_imatrix_behaviour():
    assert cpu.kernels(T.IQ4_NL).imatrix == cpu.WEIGHTED
    assert cpu.kernels(T.IQ4_XS).imatrix == cpu.WEIGHTED
    assert cpu.kernels(T.MXFP4).imatrix == cpu.IGNORED
    for t in TYPES:
        lay = layout(t)
        assert (lay.block_size, lay.type_size) == {T.IQ4_NL: (32, 18), T.IQ4_XS: (256, 136), T.MXFP4: (32, 17)}[t]
        assert [(f.name, f.offset) for f in lay.fields] == {
            T.IQ4_NL: [("d", 0), ("qs", 2)],
            T.IQ4_XS: [("d", 0), ("scales_h", 2), ("scales_l", 4), ("qs", 8)],
            T.MXFP4: [("e", 0), ("qs", 1)],
        }[t]


# ----------------------------------------------------------------------------------------------- MXFP4


def _binade_edges():
    """Positive float32 patterns around every power of two 2^-149 .. 2^127: the 64 below it and 2 above."""
    starts = [1 << (k + 149) for k in range(-149, -126)] + [(k + 127) << 23 for k in range(-126, 128)]
    pats = {p for s in starts for p in range(max(1, s - 64), s + 3)}
    pats |= {0x7F7FFFFF, 0x7F7FFFFE}
    return np.array(sorted(p for p in pats if p < 0x7F800000), np.uint32)


def test_mxfp4_exponent_matches_c_log2f_at_every_binade_edge():
    """floorf(log2f(a)) - 2 + 127 as C computes it with the C library's log2f (the function ggml calls).

    log2f(2^k (1 - j 2^-24)) rounds up to k for the top 1 to 44 floats of a binade (more for larger |k|): there
    floor(log2f) is one above amax's exponent. Below 2^-125 the float is negative and the uint8 cast wraps.
    """
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.log2f.restype = ctypes.c_float
    libm.log2f.argtypes = [ctypes.c_float]
    a = _bits(_binade_edges())
    want = []
    for v in a.tolist():
        t = f32(np.floor(f32(libm.log2f(v)))) - f32(2) + f32(127)
        want.append(int(t) & 0xFF)  # cvttss2si, then the low byte
    got = [int(iquants.mxfp4_exponent(f32(v))) for v in a]
    bad = [(float(v), g, w) for v, g, w in zip(a, got, want, strict=True) if g != w]
    assert not bad, bad[:5]
    assert iquants.mxfp4_exponent(f32(0)) == 0
    # the float just below 2^100 gives floor(log2f) = 100, not 99; just below 2^2 it does not round up
    assert iquants.mxfp4_exponent(_bits(0x71800000 - 1)[()]) == 100 - 2 + 127
    assert iquants.mxfp4_exponent(_bits(0x40800000 - 1)[()]) == 1 - 2 + 127
    # the wrap-around: 2^-126 gives -126 - 2 + 127 = -1 -> 255; the smallest subnormal -24 -> 232
    assert iquants.mxfp4_exponent(f32(2.0**-126)) == 255 and iquants.mxfp4_exponent(_bits(1)[()]) == 232


def test_mxfp4_blocks_at_every_binade_edge():
    """Whole blocks whose amax is each edge value (at the first, middle or last element, either sign), the rest of
    the block spread below it: bytes and dequantized floats as ggml's."""
    rng = np.random.default_rng(0)
    amax = _bits(_binade_edges())
    rows = []
    for i, a in enumerate(amax):
        b = (rng.uniform(-1, 1, 32) * a).astype(np.float32)
        b[[0, 16, 31][i % 3]] = a if i % 2 else -a
        rows.append(b)
    x = np.stack(rows)  # one block per row
    with np.errstate(over="ignore"):
        _check(x, T.MXFP4)
    # zero amax (both signs of zero) stores e = 0 and level 0
    z = np.zeros((1, 64), np.float32)
    z[0, 32:] = -0.0
    q = _check(z, T.MXFP4)
    assert not q.any()


def test_mxfp4_dequantize_every_exponent_and_level():
    """All 256 E8M0 bytes with all 16 levels: 2^-128 and 2^-127 (e = 0, 1) are subnormal halves, 12 * 2^127
    overflows to inf (e = 255)."""
    blocks = np.zeros((256, 17), np.uint8)
    blocks[:, 0] = np.arange(256)
    blocks[:, 1:] = (np.arange(16) | (np.arange(16)[::-1] << 4)).astype(np.uint8)
    data = blocks.reshape(8, -1)
    with np.errstate(over="ignore"):
        want = oracle.dequantize(data, T.MXFP4, 32 * 32)
    got = _dequantize(data, T.MXFP4, 32 * 32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert [iquants.e8m0_to_fp32_half(e) for e in (0, 1, 2, 128, 254)] == [2.0**-128, 2.0**-127, 2.0**-126, 1.0, 2.0**126]


def test_mxfp4_ties_go_to_the_first_index():
    """best_index_mxfp4 keeps the first of equal errors: midpoints round to the smaller magnitude (index order
    0,1,2,3,4,6,8,12 then the negatives), and -0 takes index 0, not 8."""
    # amax 8 -> e = floor(3) - 2 + 127 = 128, d = 1: the grid is KVM itself
    mids = [0.5, 1.5, 2.5, 3.5, 5.0, 7.0, 10.0, 14.0]
    b = np.array(mids + [-m for m in mids] + [8.0, -0.0, 0.0, 12.0, -12.0, 0.25, -0.25, 13.0] + [0.0] * 8, np.float32)
    q = _check(b[None, :], T.MXFP4)
    assert q[0, 0] == 128
    lev = np.concatenate([q[0, 1:] & 0xF, q[0, 1:] >> 4])
    assert KVM[lev[0]] == 0 and KVM[lev[1]] == 1 and KVM[lev[4]] == 4 and KVM[lev[7]] == 12  # 0.5, 1.5, 5, 14
    assert KVM[lev[8]] == 0 and lev[8] == 0 and KVM[lev[9]] == -1  # -0.5 -> 0 (index 0), -1.5 -> -1
    assert lev[17] == 0  # -0.0


def test_mxfp4_ignores_the_imatrix():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 128)).astype(np.float32)
    w = rng.uniform(0, 1, 128).astype(np.float32)
    with_w = pyquant.quantize(x, "MXFP4", imatrix=w).data
    assert np.array_equal(with_w, pyquant.quantize(x, "MXFP4").data)
    assert np.array_equal(with_w, oracle.quantize(x, T.MXFP4, imatrix=w))


def test_mxfp4_extreme_magnitudes():
    """Subnormal blocks (e wraps to 232..255, scales up to 2^127, every level 0), FLT_MAX-sized blocks."""
    rng = np.random.default_rng(2)
    rows = [rng.uniform(-1, 1, 32) * s for s in (1e-45, 1e-42, 1e-39, 2.0**-126, 2.0**-125, 1e-30, 1e30, 3.4e38)]
    x = np.stack([np.asarray(r, np.float32) for r in rows]).reshape(1, -1)
    with np.errstate(over="ignore"):
        _check(x, T.MXFP4)


# ----------------------------------------------------------------------------------------------- IQ4


def _best_index_int8_c(x):
    """ggml's best_index_int8(16, kvalues_iq4nl, x), line by line, in float32."""
    x = f32(x)
    if x <= KV[0]:
        return 0
    if x >= KV[15]:
        return 15
    ml, mu = 0, 15
    while mu - ml > 1:
        mav = (ml + mu) // 2
        if x < KV[mav]:
            mu = mav
        else:
            ml = mav
    return mu - 1 if (x - f32(KV[mu - 1])) < (f32(KV[mu]) - x) else mu


def test_best_index_int8_ties_and_ends():
    """Midpoints go up (``x - lo < hi - x`` is false on a tie), the ends clamp, a NaN gives 15 (as in C)."""
    vals = [f32(v) for v in KV]
    mids = [f32((a + b) / 2) for a, b in zip(KV[:-1], KV[1:], strict=True)]
    near = [np.nextafter(m, f32(s)) for m in mids for s in (-np.inf, np.inf)]
    rng = np.random.default_rng(3)
    xs = vals + mids + near + [f32(v) for v in (-200, 200, -127.5, 113.5, 0.0, -0.0, 1e-30, np.inf, -np.inf)]
    xs += list(rng.uniform(-140, 130, 2000).astype(np.float32))
    with np.errstate(invalid="ignore"):
        for x in xs:
            assert iquants.best_index_iq4nl(f32(x)) == _best_index_int8_c(x), x
    assert iquants.best_index_iq4nl(f32(np.nan)) == 15
    assert [iquants.best_index_iq4nl(m) for m in mids] == list(range(1, 16))  # every tie takes the upper value


def test_branch_free_level_matches_the_binary_search():
    """iq4_level_value (the lane form: neighbours from comparison counts) picks C's value for every finite input,
    including the table values, the midpoints (ties), the floats next to them, the ends and beyond."""
    vals = [f32(v) for v in KV]
    mids = [f32((a + b) / 2) for a, b in zip(KV[:-1], KV[1:], strict=True)]
    near = [np.nextafter(m, f32(s)) for m in vals + mids for s in (-np.inf, np.inf)]
    rng = np.random.default_rng(4)
    xs = vals + mids + near + [f32(v) for v in (-1e30, 1e30, -200, 200, -127.5, 113.5, 0.0, -0.0, 1e-30, -1e-30)]
    xs += list(rng.uniform(-140, 130, 5000).astype(np.float32))
    for x in xs:
        assert iquants.iq4_level_value(f32(x)) == KV[_best_index_int8_c(x)], x


@pytest.mark.parametrize("seed", range(4))
def test_lane_scale_search_matches_the_literal_one(seed):
    """iq4_block_scale (16 candidate scales side by side) returns the bits of the one-at-a-time search, on blocks
    built to tie: levels landing on midpoints, repeated values, a dominant element of either sign, zero weights."""
    rng = np.random.default_rng(seed)
    lanes = np.empty(3 * iquants.NTRY_LANES, np.float32)
    for trial in range(300):
        kind = trial % 5
        if kind == 0:
            x = rng.standard_normal(32).astype(np.float32)
        elif kind == 1:  # values on the grid and its midpoints, scaled
            kv = np.asarray(KV, np.float32)
            pts = np.concatenate([kv, (kv[:-1] + kv[1:]) / 2]).astype(np.float32)
            x = (rng.choice(pts, 32) * f32(rng.uniform(0.01, 3))).astype(np.float32)
        elif kind == 2:  # a few distinct values
            x = rng.choice(rng.standard_normal(3).astype(np.float32), 32)
        elif kind == 3:  # one dominant element, sign random
            x = (rng.standard_normal(32) * 0.01).astype(np.float32)
            x[rng.integers(32)] = f32(rng.choice([-1, 1]) * rng.uniform(1, 100))
        else:
            x = rng.standard_cauchy(32).astype(np.float32)
        w = (x * x).astype(np.float32) if trial % 2 else rng.uniform(0, 2, 32).astype(np.float32)
        w[rng.integers(32, size=4)] = 0
        got = iquants.iq4_block_scale(x, 0, w, lanes)
        want = iquants.iq4_block_scale_literal(x, 0, w)
        assert np.float32(got).view(np.uint32) == np.float32(want).view(np.uint32), (trial, x, w)


@pytest.mark.parametrize("t", [T.IQ4_NL, T.IQ4_XS], ids=["IQ4_NL", "IQ4_XS"])
def test_iq4_zero_and_sub_eps_blocks(t):
    """Blocks below GROUP_MAX_EPS (1e-15) get scale 0 and level 8 (value 1, nearest to 0*x) everywhere; an
    IQ4_XS super-block made only of them stores d = -0.0 (0x8000: -max_scale/32 with max_scale = +0) and every
    sub-block scale 32 (ls - 32 = 0: scales_h = 0xAAAA)."""
    n = layout(t).block_size
    eps = f32(1e-15)
    below = np.nextafter(eps, f32(0))
    rows = [np.zeros(n), np.full(n, -0.0), np.full(n, below), np.where(np.arange(n) % 2, below, -below),
            np.full(n, eps), np.where(np.arange(n) == 3, eps, 0.0)]
    x = np.stack([np.asarray(r, np.float32) for r in rows])
    q = _check(x, t)
    for r in range(4):
        if t == T.IQ4_NL:
            assert q[r].tolist() == [0, 0] + [0x88] * 16
        else:
            assert q[r].tolist() == [0x00, 0x80, 0xAA, 0xAA, 0, 0, 0, 0] + [0x88] * 128
    qs = layout(t).field("qs").offset
    assert (q[4:, qs:] != 0x88).any(axis=1).all()  # amax = 1e-15 is searched (its d then underflows fp16)


def test_iq4_xs_mixed_sub_blocks():
    """Super-blocks where some sub-blocks are zero or below GROUP_MAX_EPS and the others span decades:
    the sub-block scales quantize to 6 bits relative to the largest (ls = 0 for it), the small ones to 32."""
    rng = np.random.default_rng(4)
    g = rng.standard_normal(256).astype(np.float32)
    mult = np.repeat(np.array([1, 0, 1e-17, 0.3, 1e-3, 5, -0.0, 0.01], np.float32), 32)
    x = np.stack([g * mult, g * mult[::-1], g * np.repeat(np.float32(2.0) ** np.arange(8, dtype=np.float32), 32)])
    q = _check(x, T.IQ4_XS)
    ls = _xs_scales(q)
    big = np.argmax(np.abs(x).reshape(3, 8, 32).max(-1), axis=1)
    assert (ls[np.arange(3), big] == 0).all()  # the largest scale is -32 * d: ls = 0
    assert ls[0, 1] == 32 and ls[0, 2] == 32 and ls[0, 6] == 32  # zero and sub-eps sub-blocks: scale 0


def _xs_scales(q):
    """IQ4_XS's 6-bit sub-block scales ls (rows, blocks*8), from the bytes alone (ggml-common.h layout)."""
    blocks = q.reshape(q.shape[0], -1, 136)
    sh = blocks[..., 2].astype(np.int64) | (blocks[..., 3].astype(np.int64) << 8)
    sl = blocks[..., 4:8].astype(np.int64)
    ib = np.arange(8)
    low = (sl[..., ib // 2] >> (4 * (ib % 2))) & 0xF
    high = (sh[..., None] >> (2 * ib)) & 3
    return (low | (high << 4)).reshape(q.shape[0], -1)


def test_iq4_xs_scale_packing_decodes_independently():
    """Dequantization rebuilt from the format alone (scales_l nibbles, scales_h 2-bit pairs, qs nibbles) equals
    pyquant's and ggml's; the packed scales use their whole 6-bit range."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 1024)) * np.repeat(10.0 ** rng.uniform(-3, 1, (4, 32)), 32, axis=1)).astype(np.float32)
    q = _check(x, T.IQ4_XS)
    ls = _xs_scales(q)
    blocks = q.reshape(4, -1, 136)
    d = np.ascontiguousarray(blocks[..., :2]).view(np.float16).astype(np.float32)[..., 0]
    qs = blocks[..., 8:].reshape(4, -1, 8, 16)
    lev = np.concatenate([qs & 0xF, qs >> 4], axis=-1)  # (rows, blocks, 8, 32): j low, j+16 high
    dl = (d[..., None] * (ls.reshape(4, -1, 8) - 32).astype(np.float32)).astype(np.float32)
    y = (dl[..., None] * np.array(KV, np.float32)[lev]).astype(np.float32).reshape(4, -1)
    assert np.array_equal(y.view(np.uint32), _dequantize(q, T.IQ4_XS, 1024).view(np.uint32))
    assert ls.min() == 0 and ls.max() >= 48 and len(np.unique(ls)) > 20


@pytest.mark.parametrize("t", [T.IQ4_NL, T.IQ4_XS], ids=["IQ4_NL", "IQ4_XS"])
def test_iq4_imatrix_with_zeros(t):
    """Zero weights: all zero gives sumq2 = 0, so d = 0 in every block (NL: d = 0, levels 8; XS as a zero
    super-block); zeros in part of a block or in whole sub-blocks change the search there only."""
    rng = np.random.default_rng(6)
    n = 512
    x = rng.standard_normal((3, n)).astype(np.float32)
    x[1, :32] = 0.0
    x[2] *= np.repeat(10.0 ** rng.uniform(-3, 2, n // 32), 32).astype(np.float32)
    q0 = _check(x, t, np.zeros(n, np.float32))
    if t == T.IQ4_NL:
        assert (q0.reshape(3, -1, 18)[..., :2] == 0).all() and (q0.reshape(3, -1, 18)[..., 2:] == 0x88).all()
    else:
        assert (q0.reshape(3, -1, 136)[..., :8] == [0x00, 0x80, 0xAA, 0xAA, 0, 0, 0, 0]).all()
    for w in (np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 3, n)),
              np.repeat(np.where(rng.random(n // 32) < 0.5, 0.0, 1.0), 32),
              np.exp(rng.standard_normal(n) * 3), np.full(n, 1e-30), np.full(n, 1e30)):
        _check(x, t, w.astype(np.float32))


@pytest.mark.parametrize("t", [T.IQ4_NL, T.IQ4_XS], ids=["IQ4_NL", "IQ4_XS"])
def test_iq4_imatrix_sigma2_spans_the_super_block(t):
    """sigma2 = 2*sum(x^2)/n over the super-block (32 for IQ4_NL, 256 for IQ4_XS), not the row: a block's bytes
    depend on its neighbours within a super-block only."""
    rng = np.random.default_rng(7)
    g = rng.standard_normal(256).astype(np.float32)
    x = np.stack([np.concatenate([g, g]), np.concatenate([g, g * 100])])
    w = np.tile(rng.uniform(0, 1, 256), 2).astype(np.float32)
    q = _check(x, t, w)
    half = q.shape[1] // 2
    assert np.array_equal(q[0, :half], q[1, :half])  # the first super-block(s) do not see the second half


@pytest.mark.parametrize("t", [T.IQ4_NL, T.IQ4_XS], ids=["IQ4_NL", "IQ4_XS"])
def test_iq4_grid_values_midpoints_and_extremes(t):
    """Blocks built on the grid (kvalues times a scale), on its midpoints, with sign ties for the max, tiny,
    subnormal-mixed and huge magnitudes (fp16 d overflowing to inf)."""
    rng = np.random.default_rng(8)
    kv = np.array(KV, np.float32)
    mids = (kv[:-1] + kv[1:]) / 2
    on_grid = np.concatenate([kv, kv[::-1]]) * f32(0.01)
    on_mids = np.concatenate([mids, mids[:1], -mids[::-1], mids[-1:]]) * f32(0.37)
    tie = rng.uniform(-1, 1, 32).astype(np.float32)
    tie[4], tie[20] = 2.0, -2.0
    tie2 = tie.copy()
    tie2[4], tie2[20] = -2.0, 2.0
    subn = (rng.standard_normal(32) * 1e-15).astype(np.float32)
    subn[::3] = 1e-40
    blocks = [on_grid, on_mids, tie, tie2, subn, rng.uniform(-1, 1, 32) * 1e3, rng.uniform(-1, 1, 32) * 1e7,
              np.full(32, 0.5), rng.standard_normal(32)]
    n = layout(t).block_size
    row = np.concatenate([np.asarray(b, np.float32) for b in blocks])
    row = np.concatenate([row, np.zeros(-len(row) % n, np.float32)])
    x = np.stack([row, row[::-1].copy()])
    with np.errstate(over="ignore"):
        _check(x, t)
        _check(x, t, rng.uniform(0, 1, x.shape[1]).astype(np.float32))


@pytest.mark.parametrize("t", [T.IQ4_NL, T.IQ4_XS], ids=["IQ4_NL", "IQ4_XS"])
def test_iq4_dequantize_arbitrary_bytes(t):
    """Any bytes, with inf and NaN halves, decode exactly as ggml's dequantize_row."""
    rng = np.random.default_rng(9)
    ts = layout(t).type_size
    data = rng.integers(0, 256, (3, 6 * ts), dtype=np.uint8)
    blocks = data.reshape(-1, ts)
    for i, hi in enumerate((0x7C, 0xFC, 0x7E, 0xFF, 0x00, 0x80)):
        blocks[i, 1] = hi
        blocks[i, 0] = 0 if i % 2 == 0 else 3
    with np.errstate(invalid="ignore", over="ignore"):
        want = oracle.dequantize(data, t, 6 * layout(t).block_size)
        got = _dequantize(data, t, 6 * layout(t).block_size)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("t", TYPES, ids=IDS)
@pytest.mark.parametrize("rows", [1, 5])
def test_many_random_inputs(t, rows):
    """Many seeds of mixed-scale data through both paths (the rounding of every float operation has to agree)."""
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        n = 1024
        x = (rng.standard_t(3, (rows, n)) * np.repeat(10.0 ** rng.uniform(-4, 3, (rows, n // 32)), 32, axis=1)).astype(np.float32)
        _check(x, t)
        _check(x, t, (rng.uniform(0, 1, n) ** 4).astype(np.float32))
