"""``pyquant.linear`` on a GPU: the Q8_1 activation kernels, the fused mat-vec, the dequantize + GEMM path.

Run where there is a GPU and built code objects: ``python hsaco/build.py && pytest -m gpu tests/test_linear_gpu.py``.
Every output is poisoned (0xFF bytes: NaN) before the launch. Bounds: tests/linear_ref.py (the mat-vec path) and
:func:`gemm_bound` (the GEMM path).
"""

from __future__ import annotations

import numpy as np
import pytest

import pyquant
from pyquant.device import launch_matmul as lm
from pyquant.formats import SUPPORTED, layout

from . import linear_ref as ref
from .test_linear import activations, weights

pytestmark = pytest.mark.gpu


def run(dev, x: np.ndarray, q_dev, path="auto", **kw) -> np.ndarray:
    lead = x.shape[:-1]
    out = dev.empty(lead + (q_dev.shape[0],), "float32").fill_bytes(0xFF)
    y = pyquant.linear(dev.from_host(x), q_dev, out=out, path=path, **kw)
    assert y is out
    dev.synchronize()
    return out.cpu()


def gemm_bound(q, x: np.ndarray, dtype: str) -> np.ndarray:
    """The GEMM path: weights rounded to ``dtype`` (the dequantize kernel rounds ggml's float32 values to nearest
    even; float weights are used as stored), activations rounded the same way, products exact in float32,
    float32 accumulation (tensor cores may truncate: 2u per addition, chains of at most k):
      |w - w16| <= r |w| + s,  |x - x16| <= r |x| + s  (r = 2**-11, s = 2**-25 for float16; r = 2**-8 for
      bfloat16; r = 0 for float32), and
      |y - sum w x| <= sum (|w| e_x + |x| e_w + e_w e_x) + 2 (k + 16) u sum |w16| |x16|."""
    w = ref.dequant64(q)
    x64 = x.astype(np.float64)
    k = w.shape[1]
    r, s = {"f16": (2.0**-11, 2.0**-25), "bf16": (2.0**-8, 2.0**-133), "f32": (0.0, 0.0)}[dtype]
    lay = layout(q.qtype)
    ew = np.zeros_like(w) if not lay.is_quantized else r * np.abs(w) + s
    ex = r * np.abs(x64) + s
    aw, ax = np.abs(w), np.abs(x64)
    return ex @ aw.T + ax @ ew.T + ex @ ew.T + 2 * (k + 16) * ref.U * ((ax + ex) @ (aw + ew).T)


# ---------------------------------------------------------------------------------------------- activations


@pytest.mark.parametrize("x_dtype", ["float32", "float16", "bfloat16"])
def test_quantize_q8_1_on_gpu_is_the_cpu_bytes(dev, x_dtype):
    n, k = 5, 1000 - 1000 % 32
    x = activations(n, k, 1)
    x[2, :32] = 0
    if x_dtype == "float16":
        xin, vals = x.astype(np.float16), x.astype(np.float16).astype(np.float32)
        xd = dev.from_host(xin)
    elif x_dtype == "bfloat16":
        bits = (x.view(np.uint32) >> 16).astype(np.uint16)
        vals = (bits.astype(np.uint32) << 16).view(np.float32)
        from pyquant.device.memory import DeviceArray

        xd = DeviceArray.from_host(dev, bits, "bfloat16")
    else:
        vals, xd = x, dev.from_host(x)
    kp = lm.padded(k)
    out = dev.empty((n * (kp // 32) * 36,), "uint8").fill_bytes(0xA5)  # poison
    dev.launch(lm.quantize_spec(lm._x(x_dtype), n, k, False), (xd.ptr, out.ptr, n, k, k, kp))
    got = out.cpu().reshape(n, kp // 32, 36)
    np.testing.assert_array_equal(got[:, : k // 32].reshape(n, -1), pyquant.quantize(vals, "Q8_1").data)
    assert not got[:, k // 32:].any()


# ---------------------------------------------------------------------------------------------- mat-vec


@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda t: t.name)
def test_linear_matvec_every_type(dev, qtype):
    """n = 1..8 in one launch, 16 in two; m not a multiple of any block's rows; k spanning partial tiles."""
    bs = layout(qtype).block_size
    k = 4096 + 256 if bs == 256 else (4096 + 96 if bs == 32 else 4100)
    m = 333
    q = weights(qtype, m, k, 5)
    qd = q.to(dev)
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 16):
        kind = ("outliers", "uniform")[n % 2]
        x = activations(n, k, n, kind)
        ref.check_quantized_path(run(dev, x, qd, "mmv"), q, x, ggml_floor=kind == "uniform")


@pytest.mark.parametrize("qtype", ["Q4_0", "Q5_0", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q6_K", "F16", "F32"])
@pytest.mark.parametrize("m,blocks", [(1, 1), (7, 1), (1000, 2), (65, 61)])
def test_linear_matvec_odd_shapes(dev, qtype, m, blocks):
    k = layout(qtype).block_size * blocks if layout(qtype).is_quantized else 16 * blocks + 4
    q = weights(qtype, m, k, m)
    qd = q.to(dev)
    for n in (1, 8):
        x = activations(n, k, m + n)
        ref.check_quantized_path(run(dev, x, qd, "mmv"), q, x)


def test_linear_batches_and_strides(dev):
    """Leading axes, a strided row view (torch-style slices), float16 input, n = 64 through mat-vec passes."""
    q = weights("Q4_K", 100, 512, 9)
    qd = q.to(dev)
    x = activations(64, 512, 9)
    y = run(dev, x.reshape(4, 16, 512), qd, "mmv").reshape(64, 100)
    ref.check_quantized_path(y, q, x)
    wide = np.zeros((6, 700), np.float32)
    wide[:, :512] = x[:6]
    xd = dev.from_host(wide)
    from pyquant.device.memory import DeviceArray

    view = DeviceArray(xd.ptr, (6, 512), "float32", strides=(700 * 4, 4), device=dev, owner=xd)
    out = pyquant.linear(view, qd)
    ref.check_quantized_path(out.cpu(), q, x[:6])
    x16 = x[:3].astype(np.float16)
    ref.check_quantized_path(run(dev, x16, qd), q, x16.astype(np.float32))


@pytest.mark.parametrize("qtype", ["F16", "BF16", "F32"])
def test_linear_float_weights_read_x_in_place(dev, qtype):
    """Float weights with float32 x whose rows are already what the float mat-vec reads (k a multiple of 512,
    16-byte aligned rows) skip the conversion kernel: contiguous x, a row view of stride 1028 (in place, its
    padding never read), and layouts that must be converted (stride 1030: rows not 16-byte aligned; a view that
    starts one float in: the base not aligned)."""
    from pyquant.device.memory import DeviceArray

    k, m = 1024, 77
    q = weights(qtype, m, k, 3)
    qd = q.to(dev)
    for n in (1, 3, 8):
        x = activations(n, k, n + 40)
        ref.check_quantized_path(run(dev, x, qd, "mmv"), q, x)
        for stride, start in ((1028, 0), (1030, 0), (1028, 1)):
            buf = np.full(start + n * stride, np.nan, np.float32)  # NaN wherever a read past the rows would land
            for i in range(n):
                buf[start + i * stride: start + i * stride + k] = x[i]
            xd = dev.from_host(buf)
            view = DeviceArray(xd.ptr + 4 * start, (n, k), "float32", strides=(4 * stride, 4), device=dev, owner=xd)
            out = pyquant.linear(view, qd, path="mmv")
            ref.check_quantized_path(out.cpu(), q, x)


# ---------------------------------------------------------------------------------------------- GEMM


@pytest.mark.parametrize("qtype", SUPPORTED, ids=lambda t: t.name)
def test_linear_gemm_every_type(dev, qtype):
    from pyquant.device import blas

    if not blas.gemm_available(dev):
        pytest.fail("no vendor GEMM on this GPU")
    bs = layout(qtype).block_size
    k = 2048 + 256 if bs == 256 else (2048 + 32 if bs == 32 else 2052)
    m = 300
    q = weights(qtype, m, k, 11)
    qd = q.to(dev)
    lay = layout(qtype)
    for n in (9, 64, 512):
        x = activations(n, k, n)
        y = run(dev, x, qd, "gemm")
        assert np.isfinite(y).all()
        dtype = {"F32": "f32", "BF16": "bf16"}.get(lay.name, "f16")
        exact = x.astype(np.float64) @ ref.dequant64(q).T
        assert (np.abs(y - exact) <= gemm_bound(q, x, dtype)).all()
        assert ref.nmse(y, exact) <= 5e-4
    x = activations(40, k, 3)
    y = run(dev, x, qd, "gemm", gemm_dtype="bfloat16")
    exact = x.astype(np.float64) @ ref.dequant64(q).T
    assert (np.abs(y - exact) <= gemm_bound(q, x, "bf16" if lay.is_quantized or lay.name == "BF16" else dtype)).all()


def test_linear_auto_dispatch(dev):
    q = weights("Q8_0", 256, 1024, 2)
    qd = q.to(dev)
    for n in (1, 8, 24, 100):
        x = activations(n, 1024, n)
        y = run(dev, x, qd)
        exact = x.astype(np.float64) @ ref.dequant64(q).T
        bound = np.maximum(ref.q8_1_bound(ref.dequant64(q), x) + ref.accumulation_bound(q, ref.q8_1_values(x)),
                           gemm_bound(q, x, "f16"))
        assert (np.abs(y - exact) <= bound).all()


# ---------------------------------------------------------------------------------------------- ordering


def test_linear_chain_without_syncs(dev):
    """Twelve calls on one stream, each reading the output of the call before, with no synchronization between
    them. Every kernel of the path is launched overlapped; the float mat-vec releases its successor at its start
    (an activation kernel or another float mat-vec), which must wait for it before it reads x or rewrites the
    activation scratch that a mat-vec still reads. The outputs are bit-identical to the same calls synchronized
    one by one; a missing wait shows up as a different (or NaN) layer."""
    k = 4096
    types = ["Q4_K", "F16", "BF16", "Q8_0", "IQ4_XS", "Q6_K"]  # a float mat-vec after each kind
    # rows of norm about 1, so the activations keep their scale through twelve layers (Q8_1's fp16 d would
    # overflow past 127 * 65504)
    rng = np.random.default_rng(20)
    ws = [pyquant.quantize((rng.standard_normal((k, k)) / np.sqrt(k)).astype(np.float32), t).to(dev)
          for t in types] * 2
    x = dev.from_host(activations(1, k, 20))

    def chain(sync: bool) -> list[np.ndarray]:
        outs = [dev.empty((1, k), "float32").fill_bytes(0xFF) for _ in ws]
        dev.synchronize()
        cur = x
        for w, out in zip(ws, outs, strict=True):
            cur = pyquant.linear(cur, w, out=out, path="mmv")
            if sync:
                dev.synchronize()
        dev.synchronize()
        return [o.cpu() for o in outs]

    synced = chain(True)
    assert all(np.isfinite(y).all() for y in synced)
    for _ in range(3):
        chained = chain(False)
        for i, (a, b) in enumerate(zip(synced, chained, strict=True)):
            assert np.array_equal(a, b), f"layer {i} ({types[i % len(types)]}) differs without synchronization"
