"""Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: the cases particular to the legacy types, against ggml (pyquant.oracle).

The generic differential and property tests cover ordinary data; these pin what the legacy kernels do
differently from a straightforward port: the integer block scans (sign ties, signed zeros), the exact emulation
of C's float -> int8 casts when a scale's reciprocal overflows, scales past fp16 range, NaN precedence in
``q*d + m`` on arbitrary bytes, and the row-wide sigma2 of the imatrix paths.
"""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

import pyquant
from pyquant import cpu
from pyquant.cpu import legacy
from pyquant.formats import layout

oracle = pytest.importorskip("pyquant.oracle")
pytest.importorskip("ggml")

LEGACY = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q8_1]
WEIGHTED = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]
IDS = [t.name for t in LEGACY]


def _quantize(x, t, w=None):
    """Our bytes through the kernels directly (no API checks), as (rows, row_bytes)."""
    x = np.ascontiguousarray(x, np.float32)
    lay = layout(t)
    out = np.empty((x.shape[0], x.shape[1] // lay.block_size * lay.type_size), np.uint8)
    k = cpu.kernels(t)
    bad = np.ones(x.shape[0], np.uint8)
    if w is not None and k.imatrix == cpu.WEIGHTED:
        k.quantize_imatrix(x, np.ascontiguousarray(w, np.float32), out, bad)
    else:
        k.quantize(x, out, bad)
    assert not bad.any()
    return out


def _dequantize(data, t, n):
    out = np.empty((data.shape[0], n), np.float32)
    cpu.kernels(t).dequantize(np.ascontiguousarray(data), out)
    return out


def _check(x, t, w=None):
    """Bytes equal to ggml's, and dequantized floats bit-identical to ggml's dequantization of them."""
    ours = _quantize(x, t, w)
    ref = oracle.quantize(x, t, imatrix=w)
    if not np.array_equal(ours, ref):
        r, b = np.argwhere(ours != ref)[0]
        ts = layout(t).type_size
        raise AssertionError(f"{t.name}: row {r} block {b // ts} byte {b % ts}: ours {ours[r, b]} ggml {ref[r, b]}")
    with np.errstate(invalid="ignore", over="ignore"):
        want = oracle.dequantize(ref, t, x.shape[1])
    got = _dequantize(ours, t, x.shape[1])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"{t.name}: dequantized floats differ"
    return ours


def _blocks(*blocks):
    """One row made of the given 32-element blocks."""
    return np.concatenate([np.asarray(b, np.float32).reshape(32) for b in blocks])[None, :]


def test_registered_with_ggml_imatrix_behaviour():
    for t in WEIGHTED:
        assert cpu.kernels(t).imatrix == cpu.WEIGHTED
    assert cpu.kernels(T.Q8_0).imatrix == cpu.IGNORED
    assert cpu.kernels(T.Q8_1).imatrix == cpu.UNSUPPORTED


def test_c_conversions():
    """cvtt/to_i8/roundf_i8 are x86's cvttss2si and C's roundf, low byte sign-extended."""
    f = np.float32
    assert [legacy.roundf_i8(f(v)) for v in (0.5, -0.5, 1.5, 2.5, -2.5, 0.49999997, 126.5, -127.0)] == [
        1, -1, 2, 3, -3, 0, 127, -127]
    assert legacy.roundf_i8(f(200.0)) == -56  # (int8_t)200
    for v in (np.inf, -np.inf, np.nan, f(3e9), f(-3e9)):
        assert legacy.cvtt(f(v)) == -(2**31)
        assert legacy.to_i8(f(v)) == 0 and legacy.roundf_i8(f(v)) == 0
    assert legacy.to_i8(f(-0.99)) == 0 and legacy.to_i8(f(16.9)) == 16 and legacy.to_i8(f(300.7)) == 44


@pytest.mark.parametrize("t", LEGACY, ids=IDS)
def test_sign_ties_and_signed_zeros(t):
    """C's scans keep the first of +a/-a (symmetric types) and the first of +0/-0 (min/max types)."""
    rng = np.random.default_rng(1)
    base = rng.uniform(-0.5, 0.5, 32).astype(np.float32)
    rows = []
    for first, second in ((1.0, -1.0), (-1.0, 1.0)):
        b = base.copy()
        b[3], b[20] = first, second
        rows.append(b)
    pos = np.abs(base) + 0.25
    for z0, z1 in ((0.0, -0.0), (-0.0, 0.0)):
        b = pos.copy()
        b[5], b[9] = z0, z1  # zero is the minimum, both signs present
        rows.append(b)
        rows.append(-b)  # zero is the maximum
        rows.append(np.where(np.arange(32) % 2, z0, z1).astype(np.float32))  # all zeros, both signs
    rows.append(np.full(32, -0.0, np.float32))
    rows.append(np.zeros(32, np.float32))
    x = _blocks(*rows)
    _check(x, t)
    _check(np.ascontiguousarray(x.reshape(-1, 32)), t)  # one block per row too


def test_first_of_tied_extremes_sets_the_sign_of_d():
    """Q4_0/Q5_0: d = max/-8 with max the first of the tied extremes, so its sign follows the order."""
    a = np.zeros(32, np.float32)
    a[0], a[31] = 2.0, -2.0
    b = a[::-1].copy()
    for t, div in ((T.Q4_0, -8), (T.Q5_0, -16)):
        q = _quantize(_blocks(a, b), t)
        d = q.reshape(2, -1)[:, :2].copy().view(np.float16).ravel()
        assert d.tolist() == [2.0 / div, -2.0 / div]


@pytest.mark.parametrize("t", LEGACY, ids=IDS)
def test_scales_whose_reciprocal_overflows(t):
    """Subnormal blocks: 1/d is inf, x*inf is +-inf and 0*inf NaN, and C's casts of those give level 0.

    One such block sends the whole row down the exact-conversion path; rows without keep the fast one.
    """
    rng = np.random.default_rng(2)
    normal = rng.standard_normal(32).astype(np.float32)
    sub = (rng.standard_normal(32) * 1e-40).astype(np.float32)
    sub[::4] = 0.0
    sub[1::4] = -0.0
    tiny = np.where(rng.random(32) < 0.5, 1.4e-45, -1.4e-45).astype(np.float32)
    edge = (rng.standard_normal(32) * 3e-38).astype(np.float32)  # d near the bottom of the normal range
    x = np.concatenate([_blocks(normal, sub, tiny, edge), _blocks(normal, normal, normal, normal)])
    _check(x, t)


@pytest.mark.parametrize("t", LEGACY, ids=IDS)
def test_magnitudes_past_fp16(t):
    """Scales past 65504 store as inf; max - min past FLT_MAX (Q4_1, Q5_1) gives d = inf and id = 0."""
    rng = np.random.default_rng(3)
    rows = [rng.uniform(-1, 1, 32) * s for s in (6e4, 1e5, 1e6, 1e20, 3.4e38)]
    rows.append(np.where(np.arange(32) % 2, 3.4e38, -3.4e38))
    rows.append(np.full(32, 3.0e38))
    x = _blocks(*[np.asarray(r, np.float32) for r in rows])
    with np.errstate(over="ignore"):
        _check(x, t)


@pytest.mark.parametrize("t", LEGACY, ids=IDS)
def test_constant_and_zero_blocks(t):
    rng = np.random.default_rng(4)
    x = _blocks(np.full(32, 0.7), np.full(32, -3.0), np.zeros(32), np.full(32, 1e-3), rng.standard_normal(32))
    _check(x, t)


@pytest.mark.parametrize("t", LEGACY, ids=IDS)
@pytest.mark.parametrize("n", [32, 96, 160, 4096])
def test_row_lengths(t, n):
    """Every block count (the vectorized loops run to a 32 LLVM cannot see; the row count is arbitrary)."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((3, n)) * rng.uniform(0.01, 10, (3, 1))).astype(np.float32)
    _check(x, t)


@pytest.mark.parametrize("t", LEGACY, ids=IDS)
def test_dequantize_arbitrary_bytes(t):
    """Any bytes, NaN and inf halves included, decode exactly as ggml's dequantize_row (Q8_1: d*q)."""
    rng = np.random.default_rng(5)
    ts = layout(t).type_size
    data = rng.integers(0, 256, (4, 8 * ts), dtype=np.uint8)
    blocks = data.reshape(-1, ts)
    # force non-finite scales (and mins) in some blocks: exponent bits all ones in the high byte
    for i, hi in enumerate((0x7C, 0xFC, 0x7E, 0xFF, 0x7F, 0xFD)):
        blocks[i, 1] = hi
        if t in (T.Q4_1, T.Q5_1):
            blocks[i, 3] = (0x7D, 0xFE, 0x7C, 0x7F, 0xFC, 0xFF)[i]  # m as well: both NaN, or NaN and inf
            blocks[i + 8, 3] = 0x7E  # m alone NaN
    with np.errstate(invalid="ignore", over="ignore"):
        want = oracle.dequantize(data, t, 8 * 32)
    got = _dequantize(data, t, 8 * 32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("t", WEIGHTED, ids=[t.name for t in WEIGHTED])
def test_imatrix_row_wide_sigma2_and_degenerate_blocks(t):
    """The weights use sigma2 over the whole row: a block's levels depend on the other blocks of its row."""
    rng = np.random.default_rng(6)
    g = rng.standard_normal(32).astype(np.float32)
    x = np.concatenate([
        _blocks(g, g * 100, np.zeros(32), np.full(32, 0.3)),
        _blocks(g, g * 0.01, g, -np.abs(g)),
        _blocks(g, np.abs(g), (g * 1e-40), g),
    ])
    for w in (rng.uniform(0, 1, 128), np.where(rng.random(128) < 0.3, 0, rng.uniform(0, 2, 128)),
              np.zeros(128), np.ones(128), np.repeat([0.0, 1.0, 0.0, 5.0], 32)):
        _check(x, t, w.astype(np.float32))
    # rows 0 and 1 start with the same block; the rest of the row changes sigma2 and so that block's bytes
    # (as in ggml: checked above), which a per-block sigma2 would not reproduce
    ts = layout(t).type_size
    q = _quantize(x[:2], t, np.ones(128, np.float32))
    assert not np.array_equal(q[0, :ts], q[1, :ts])


def test_q8_0_ignores_the_imatrix():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 256)).astype(np.float32)
    w = rng.uniform(0, 1, 256).astype(np.float32)
    with_w = pyquant.quantize(x, "Q8_0", imatrix=w).data
    assert np.array_equal(with_w, pyquant.quantize(x, "Q8_0").data)
    assert np.array_equal(with_w, oracle.quantize(x, T.Q8_0, imatrix=w))
