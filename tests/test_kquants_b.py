"""Q3_K, Q6_K and Q8_K kernels (pyquant.cpu.kquants_b) against ggml, and its fast searches against search.py.

The generic differential tests draw shapes and distributions at random; here every distribution of
``strategies.KINDS`` and every imatrix kind of ``IMATRIX_KINDS`` is run for these three types, and the corners
that these quantizers treat specially are pinned (Q8_K's overflowing ``-127/max``, Q3_K's all-zero sub-blocks
with levels left from the search, Q6_K's zeroed blocks).
"""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pyquant import cpu, oracle
from pyquant.formats import row_bytes

from .strategies import IMATRIX_KINDS, KINDS, make_imatrix, make_rows

cpu.available()  # load the registry's own families first: importing one family first would hide the others
from pyquant.cpu import kquants_b as kb  # noqa: E402
from pyquant.cpu import search  # noqa: E402

TYPES = {
    T.Q3_K: (kb.quantize_rows_q3_K, kb.quantize_imatrix_rows_q3_K, kb.dequantize_rows_q3_K),
    T.Q6_K: (kb.quantize_rows_q6_K, kb.quantize_imatrix_rows_q6_K, kb.dequantize_rows_q6_K),
    T.Q8_K: (kb.quantize_rows_q8_K, None, kb.dequantize_rows_q8_K),
}


def _quantize(qtype, x, w=None):
    q, qi, _ = TYPES[qtype]
    out = np.empty((x.shape[0], row_bytes(qtype, x.shape[1])), dtype=np.uint8)
    bad = np.ones(x.shape[0], dtype=np.uint8)
    q(x, out, bad) if w is None else qi(x, w, out, bad)
    assert not bad.any()
    return out


def _dequantize(qtype, data, n):
    out = np.empty((data.shape[0], n), dtype=np.float32)
    TYPES[qtype][2](data, out)
    return out


def _check(qtype, x, w=None, what=""):
    ours = _quantize(qtype, x, w)
    ref = oracle.quantize(x, qtype, imatrix=w)
    if not np.array_equal(ours, ref):
        r, c = np.argwhere(ours != ref)[0]
        size = ref.shape[1] // (x.shape[1] // 256)
        raise AssertionError(f"{qtype.name} {what}: bytes differ at row {r} block {c // size} byte {c % size}")
    y = _dequantize(qtype, ref, x.shape[1])
    y_ref = oracle.dequantize(ref, qtype, x.shape[1])
    assert np.array_equal(y.view(np.uint32), y_ref.view(np.uint32)), f"{qtype.name} {what}: dequantized floats differ"


@pytest.mark.parametrize("qtype", list(TYPES), ids=lambda t: t.name)
@pytest.mark.parametrize("kind", KINDS)
def test_reference_path_every_distribution(qtype, kind):
    for seed, (rows, nb) in enumerate([(3, 1), (2, 3), (1, 5)]):
        _check(qtype, make_rows(kind, rows, nb * 256, 256, seed * 31 + len(kind)), what=kind)


@pytest.mark.parametrize("qtype", [T.Q3_K, T.Q6_K], ids=lambda t: t.name)
@pytest.mark.parametrize("kind", KINDS)
def test_imatrix_path_every_distribution(qtype, kind):
    for seed, wkind in enumerate(IMATRIX_KINDS):
        x = make_rows(kind, 2, 512, 256, 1000 + seed)
        _check(qtype, x, make_imatrix(wkind, 512, seed), what=f"{kind} imatrix={wkind}")


def test_q8_K_overflowing_iscale():
    """|max| < 127/FLT_MAX: ggml's -127/max is -inf, nearest_int(±inf or NaN) leaves byte 0, and d = 1/-inf = -0."""
    x = np.zeros((4, 256), dtype=np.float32)
    x[0, 5] = 1e-38
    x[1, :] = np.float32(1e-45)
    x[2, 7] = -3e-37
    x[2, 9] = 1e-39
    x[3, 3] = 4e-37  # just above: -127/max stays finite
    ref = oracle.quantize(x, T.Q8_K)
    assert ref[0, :4].view(np.uint32)[0] == 0x80000000 and not ref[0, 4:].any()
    _check(T.Q8_K, x, what="tiny maxima")


def test_q3_K_levels_kept_where_scale_rounds_to_zero():
    """Sub-blocks whose 6-bit scale is 32 (d = 0) keep make_q3_quants' levels, all-zero ones level 0."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 512)).astype(np.float32)
    x[:, :16] *= 1e-3
    x[:, 32:48] = 0.0
    x[1, 256:] *= 1e-12
    x[2, 300:316] = -0.0
    _check(T.Q3_K, x, what="small sub-blocks")
    w = rng.random(512).astype(np.float32)
    w[:40] = 0.0
    _check(T.Q3_K, x, w, what="small sub-blocks, imatrix")
    _check(T.Q6_K, x, what="small sub-blocks")
    _check(T.Q6_K, x, w, what="small sub-blocks, imatrix")


@pytest.mark.parametrize("mag", [1e20, 3.4e38])
def test_beyond_fp16_range_follows_ggml(mag):
    """Finite inputs far past fp16 and float32-squared range: inf/NaN scales, levels and halves as ggml has them."""
    x = make_rows("outliers", 2, 512, 256, 4).astype(np.float64) / 6e4 * mag
    x = np.clip(x, -3.4e38, 3.4e38).astype(np.float32)
    w = make_imatrix("sparse", 512, 4)
    for qtype in TYPES:
        _check(qtype, x, what=f"|x| up to {mag:g}")
    for qtype in (T.Q3_K, T.Q6_K):
        _check(qtype, x, w, what=f"|x| up to {mag:g}, imatrix")


def test_imatrix_overflowing_weights():
    """Weights near FLT_MAX overflow Q3_K's sub-block weight sums to inf and its scales to NaN; ggml's
    ``fabsf(x) > amax`` never picks a NaN, so the scale of scales is 0, and so must ours be."""
    x = make_rows("gaussian", 2, 512, 256, 9)
    w = np.random.default_rng(3).random(512).astype(np.float32) * np.float32(3e38)
    w[::3] = 0.0
    _check(T.Q3_K, x, w, what="weights near FLT_MAX")
    _check(T.Q6_K, x, w, what="weights near FLT_MAX")


def test_q8_K_refuses_imatrix_through_the_registry():
    assert cpu.kernels(T.Q8_K).imatrix == cpu.UNSUPPORTED and cpu.kernels(T.Q8_K).quantize_imatrix is None
    assert cpu.kernels(T.Q3_K).imatrix == cpu.WEIGHTED and cpu.kernels(T.Q6_K).imatrix == cpu.WEIGHTED


# ---------------------------------------------------------------- the fast searches against search.py

_f32s = st.floats(-6e4, 6e4, width=32, allow_nan=False, allow_infinity=False)
_vals = st.one_of(
    _f32s,
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, 1e-20, 1e-40, -1e-40, 1e-16]),
    st.integers(-8, 8).map(float),
)


@st.composite
def _group(draw):
    x = draw(arrays(np.float32, 16, elements=_vals))
    return x * np.float32(draw(st.sampled_from([1.0, 1e-3, 1e-14, 1e-30, 37.0])))


_weights = arrays(np.float32, 16, elements=st.one_of(st.just(0.0), st.floats(0, 1e4, width=32)))


def _bits(v):
    return np.float32(v).view(np.uint32)


@example(x=np.array([0.5, -0.5] * 8, dtype=np.float32), w=np.zeros(16, dtype=np.float32), nmax=4)
@example(x=np.arange(16, dtype=np.float32) - 8, w=np.ones(16, dtype=np.float32), nmax=32)
@given(x=_group(), w=st.one_of(st.none(), _weights), nmax=st.sampled_from([4, 32]))
def test_make_qx_quants_16_is_make_qx_quants(x, w, nmax):
    w = x * x if w is None else w  # rmse_type 1 without weights: w = x*x, the same float32 product
    L_ref = np.zeros(16, dtype=np.int8)
    L = np.full(16, 99, dtype=np.int8)
    s_ref = search.make_qx_quants(16, nmax, x, L_ref, 1, w, True)
    scratch = [np.empty(kb.NLANE, dtype=np.float32) for _ in range(3)]
    s = kb.make_qx_quants_16(x, L, nmax, w, *scratch)
    assert _bits(s) == _bits(s_ref) and np.array_equal(L, L_ref)


@example(x=np.array([1.0, -1.0, 0.75, 0.25] * 4, dtype=np.float32))
@given(x=_group())
def test_make_q3_quants_16_is_make_q3_quants(x):
    L_ref = np.zeros(16, dtype=np.int8)
    L = np.full(16, 99, dtype=np.int8)
    s_ref = search.make_q3_quants(16, 4, x, L_ref, True)
    w = x * x
    s = kb.make_q3_quants_16(x, L, w, w * x, np.empty(16, dtype=np.int32))
    assert _bits(s) == _bits(s_ref) and np.array_equal(L, L_ref)
