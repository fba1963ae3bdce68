"""``pyquant.linear`` on the CPU, and the GPU matmul kernels run on the CPU through the SIMT emulator.

The emulator (tests/simt) runs the very kernel sources with the launch specs and tuning of an NVIDIA GPU
(32-lane warps) and of a CDNA GPU (64-lane waves), with real barriers and lane exchanges: index arithmetic,
tiling, padding, reductions of either logical width and every output being written are checked here;
tests/test_linear_gpu.py runs the same checks on a GPU. Error bounds: tests/linear_ref.py derives them.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyquant
from pyquant.device import launch_matmul as lm
from pyquant.formats import SUPPORTED, layout

from . import linear_ref as ref
from .simt import emu

QUANTIZED = [t for t in SUPPORTED if layout(t).is_quantized]
FLOATS = [t for t in SUPPORTED if not layout(t).is_quantized]


def weights(qtype, m: int, k: int, seed: int) -> pyquant.QTensor:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k)).astype(np.float32) * rng.uniform(0.01, 2.0, (m, 1)).astype(np.float32)
    return pyquant.quantize(w, qtype)


def activations(n: int, k: int, seed: int, kind: str = "outliers") -> np.ndarray:
    """``outliers``: Gaussian rows of different scales with a few features 20x larger (as LLM activations have);
    ``uniform``: uniform in [-1, 1], test-backend-ops' own draw (its NMSE criterion is calibrated on it)."""
    rng = np.random.default_rng(seed + 1000)
    if kind == "uniform":
        return rng.uniform(-1, 1, (n, k)).astype(np.float32)
    x = rng.standard_normal((n, k)) * rng.uniform(0.1, 3.0, (n, 1))
    x[:, rng.integers(0, k, max(1, k // 64))] *= 20.0
    return x.astype(np.float32)


def k_for(qtype, blocks: int) -> int:
    return layout(qtype).block_size * blocks if layout(qtype).is_quantized else 32 * blocks


# ---------------------------------------------------------------------------------------------- CPU


@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda t: t.name)
def test_cpu_linear_matches_float64(qtype):
    """CPU linear = dequantized weights times the activations in float32: within float32 accumulation of
    the float64 product (8 interleaved partial sums of k/8 terms, or the BLAS: (k + 16) u sum |w||x| bounds
    both)."""
    k = k_for(qtype, 3 if layout(qtype).block_size == 256 else 24)
    q = weights(qtype, 45, k, 1)
    w = ref.dequant64(q)
    for n in (1, 5, 17):  # 17: the BLAS branch
        x = activations(n, k, n)
        y = pyquant.linear(x, q)
        assert y.dtype == np.float32 and y.shape == (n, 45)
        exact = x.astype(np.float64) @ w.T
        bound = (k + 16) * ref.U * (np.abs(x.astype(np.float64)) @ np.abs(w).T)
        assert (np.abs(y - exact) <= bound).all()


def test_cpu_linear_shapes_and_refusals():
    q = weights("Q4_0", 7, 64, 3)
    x = activations(6, 64, 3).reshape(2, 3, 64)
    y = pyquant.linear(x, q)
    assert y.shape == (2, 3, 7)
    np.testing.assert_array_equal(y.reshape(6, 7), pyquant.linear(x.reshape(6, 64), q))
    assert pyquant.linear(x[0, 0], q).shape == (7,)
    assert pyquant.linear(np.zeros((0, 64), np.float32), q).shape == (0, 7)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 64\)"):
        pyquant.linear(np.zeros((2, 32), np.float32), q)
    with pytest.raises(TypeError, match="float array"):
        pyquant.linear(np.zeros((2, 64), np.int32), q)
    with pytest.raises(TypeError, match="QTensor"):
        pyquant.linear(x, np.zeros((7, 64)))
    with pytest.raises(ValueError, match="path"):
        pyquant.linear(x, q, path="fast")


# ---------------------------------------------------------------------------------------------- generated header


def test_matmul_header_is_generated_from_the_tuning_table():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "hsaco" / "include" / "pq_matmul.h"
    assert path.read_text() == lm.header(), "regenerate: python -m pyquant.device.launch_matmul > " + str(path)


def test_launch_specs_cover_every_type_and_family():
    for fam, arch in (("nvidia", "sm_90"), ("cdna", "gfx942"), ("rdna2", "gfx1030"), ("rdna3", "gfx1100"),
                      ("rdna4", "gfx1201"), ("cdna", "gfx906")):
        assert lm.family(arch) == fam
        tune = lm.MATVEC_TUNING[fam]
        for t in SUPPORTED:
            for c in range(1, lm.MAX_NCOLS + 1):
                spec = lm.matvec_spec(t, c, 1000, arch)
                rows = tune.f_rows_per_warp[c - 1] if not layout(t).is_quantized else tune.rows(t, c)
                assert spec.grid[0] * rows >= 1000 > (spec.grid[0] - 1) * rows
                assert spec.block[0] % tune.warp == 0 and spec.kernel in lm.matmul_kernel_names()
    with pytest.raises(ValueError):
        lm.matvec_spec("Q4_0", 9, 10, "sm_90")
    assert lm.plan("Q4_K", 8, "sm_90", True) == "mmv" and lm.plan("Q4_K", 512, "sm_90", True) == "gemm"
    assert lm.plan("Q4_K", 512, "sm_90", False) == "mmv" and lm.plan("F16", 9, "sm_90", True) == "gemm"
    assert lm.plan("Q4_K", 24, "sm_90", True) == "mmv" and lm.plan("Q4_K", 25, "sm_90", True) == "gemm"
    assert lm.plan("F16", 4, "sm_90", True) == "mmv" and lm.plan("BF16", 5, "sm_90", True) == "gemm"
    assert lm.plan("F32", 8, "sm_90", True) == "mmv" and lm.plan("F32", 9, "sm_90", True) == "gemm"


# ---------------------------------------------------------------------------------------------- emulated kernels

needs_cxx = pytest.mark.skipif(not emu.available(), reason="no C++ compiler for the SIMT emulator")


@pytest.fixture(scope="module", params=[32, 64], ids=["warp32", "wave64"])
def gpu(request):
    if not emu.available():
        pytest.skip("no C++ compiler for the SIMT emulator")
    return emu.Emulator(request.param)


@needs_cxx
@pytest.mark.parametrize("x_dtype", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("k", [32, 480, 1536])
def test_quantize_q8_1_kernel_is_the_cpu_bytes(gpu, x_dtype, k):
    """quantize_q8_1_<in>: the CPU's Q8_1 bytes, blocks past k zero; the split layout holds the same quants,
    the same d and the exact sum of the quants; the interleaved layout the same bytes as the split one, each
    block's quants in the order x0, x16, x1, x17, ..., x15, x31."""
    n = 3
    x = activations(n, k, k) * np.float32(1e-3)
    x[1, :32] = 0.0  # an all-zero block: d = 0
    x[2, 32:64] *= np.float32(1e-30)  # a block whose d is a float32 subnormal... still finite in fp16? no: 0
    if x_dtype == "f16":
        xin, values = x.astype(np.float16), x.astype(np.float16).astype(np.float32)
    elif x_dtype == "bf16":
        bits = (x.view(np.uint32) >> 16).astype(np.uint16)  # truncation: any bf16 pattern will do
        xin, values = bits, (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        xin, values = x, x
    cpu = pyquant.quantize(values, "Q8_1").data
    kp = lm.padded(k)
    plain = gpu.quantize_q8_1_as(xin, x_dtype, split=False).reshape(n, kp // 32, 36)
    np.testing.assert_array_equal(plain[:, : k // 32].reshape(n, -1), cpu)
    assert not plain[:, k // 32:].any()
    split = gpu.quantize_q8_1_as(xin, x_dtype, split=True)
    ka = lm.padded_act(k)
    qs = split[: n * ka].reshape(n, ka // 1024, 2, 32, 16).transpose(0, 1, 3, 2, 4).reshape(n, ka).view(np.int8)
    ds = split[n * ka:].view(np.uint32).reshape(n, ka // 32)
    blocks = cpu.reshape(n, k // 32, 36)
    np.testing.assert_array_equal(qs[:, :k], blocks[:, :, 4:].reshape(n, k).view(np.int8))
    assert not qs[:, k:].any() and not ds[:, k // 32:].any()
    np.testing.assert_array_equal((ds[:, : k // 32] & 0xFFFF).astype(np.uint16), blocks[:, :, :2].copy().view(np.uint16)[..., 0])
    sums = blocks[:, :, 4:].view(np.int8).astype(np.int64).sum(axis=2)
    np.testing.assert_array_equal((ds[:, : k // 32] >> 16).astype(np.uint16).view(np.int16), sums)
    il = gpu.quantize_q8_1_as(xin, x_dtype, split=True, interleaved=True)
    np.testing.assert_array_equal(il[n * ka:], split[n * ka:])
    order = np.stack([np.arange(16), np.arange(16, 32)], axis=1).reshape(32)  # 0, 16, 1, 17, ...
    qil = il[: n * ka].reshape(n, ka // 1024, 2, 32, 16).transpose(0, 1, 3, 2, 4).reshape(n, ka // 32, 32)
    np.testing.assert_array_equal(qil, qs.view(np.uint8).reshape(n, ka // 32, 32)[:, :, order])


@needs_cxx
@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda t: t.name)
def test_matvec_kernels_every_type(gpu, qtype):
    """Every type, every column count of one launch (1..8) and 16 (two passes), on a shape with odd rows."""
    bs = layout(qtype).block_size
    k = 3 * 256 if bs == 256 else (24 * 32 if bs == 32 else 777)
    m = 37  # not a multiple of any block's rows
    q = weights(qtype, m, k, 7)
    wpad = emu.pad_rows(q.data, qtype, k)
    cols = (1, 2, 5, 8, 16) if gpu.width == 32 else (1, 4, 7)
    for i, n in enumerate(cols):
        kind = ("outliers", "uniform")[i % 2]
        x = activations(n, k, n, kind)
        y = np.concatenate([gpu.matvec(wpad, qtype, m, k, x[c0:c0 + 8]) for c0 in range(0, n, 8)])
        ref.check_quantized_path(y, q, x, ggml_floor=kind == "uniform")


@needs_cxx
@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0", "Q3_K", "Q6_K", "F16"])
@pytest.mark.parametrize("m,blocks", [(1, 1), (5, 1), (70, 3), (9, 17)])
def test_matvec_kernels_odd_shapes(gpu, qtype, m, blocks):
    """One row; one block or super-block per row; rows past a tile (partial tiles, 512-element padding)."""
    k = layout(qtype).block_size * blocks if layout(qtype).is_quantized else 8 * blocks + 1
    q = weights(qtype, m, k, m + blocks)
    wpad = emu.pad_rows(q.data, qtype, k)
    for n in (1, 6):
        x = activations(n, k, 3 * n + m)
        ref.check_quantized_path(gpu.matvec(wpad, qtype, m, k, x), q, x)


@needs_cxx
def test_matvec_kernels_awkward_values(gpu):
    """Blocks of zeros (d = 0), tiny and huge activations, zero weight rows."""
    k = 512
    q = weights("Q4_K", 20, k, 11)
    data = q.data.copy()
    data[3] = 0  # a row whose scales are all zero
    q = pyquant.QTensor(data, q.qtype, q.shape)
    x = activations(4, k, 11)
    x[0, :64] = 0.0
    x[1] *= np.float32(1e-20)
    x[2] *= np.float32(3e3)
    y = gpu.matvec(emu.pad_rows(q.data, q.qtype, k), q.qtype, 20, k, x)
    ref.check_quantized_path(y, q, x)
    assert (y[:, 3] == 0).all()


@needs_cxx
@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q5_1", "Q8_0", "Q5_K", "Q6_K", "F16", "BF16"])
def test_matvec_kernels_long_rows(gpu, qtype):
    """Rows of several tiles and a partial last one, for the one-column kernels whose blocks start their rows at
    rotated tiles (the NVIDIA row's ``n1_by_type``: block b begins at tile round b mod rounds and wraps around)
    and for one that does not (Q6_K); 9 rows, so 5 blocks of 2 rows start at 5 different tiles. F16/BF16: rows
    of 5 batches of weight loads and a partial sixth (the first batch's loads go out before the wait)."""
    tune = lm.MATVEC_TUNING[lm.family(gpu.arch)]
    rows = tune.rows(qtype, 1)
    units = 32 * tune.units_per_lane[0] * 32  # elements per tile at the family's widest one-column geometry
    k = 5 * units + (256 if layout(qtype).block_size == 32 else 512)
    m = 9
    assert -(-m // rows) >= 5
    q = weights(qtype, m, k, 13)
    wpad = emu.pad_rows(q.data, qtype, k)
    for n in (1, 2):
        x = activations(n, k, 5 + n)
        ref.check_quantized_path(gpu.matvec(wpad, qtype, m, k, x), q, x)
