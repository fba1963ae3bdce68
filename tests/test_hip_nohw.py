"""The HIP path up to the hardware, and the device-memory plumbing, on a machine without a GPU.

Three layers, none needing AMD hardware:
1. the real hip-python (when installed) without a HIP runtime: selecting HIP raises a clear error, never crashes;
2. a fake ``hip`` module that answers like hip-python (tuples led by a ``hipError_t``) over host memory:
   device selection, architecture names, code-object choice and its errors, launch argument packing
   (``extra=`` ctypes values), error mapping, padding of device rows, freeing on collection, and the whole
   ``QTensor.to("hip").dequantize()`` plumbing with the kernel emulated by the CPU dequantizer;
3. DLPack export/import checked against numpy's own DLPack implementation on host memory.
"""

from __future__ import annotations

import ctypes
import enum
import gc
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import pyquant
from pyquant import cpu
from pyquant.device import codeobjects, memory, runtime
from pyquant.device import tensor as dtensor
from pyquant.formats import MATRIX_ROW_PADDING, SUPPORTED, layout, row_bytes

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------- 1. real hip-python


def test_import_pyquant_does_no_gpu_work():
    code = ("import sys, pyquant, pyquant.device, pyquant.tensor;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('hip','cuda','rocm','torch','cupy')];"
            "print(bad); assert not bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_real_hip_python_without_runtime_raises_clearly():
    pytest.importorskip("hip", reason="hip-python not installed (pip install hip-python)")
    count, why = runtime.probe("hip")
    if count:
        pytest.skip("an AMD GPU is present: this test is about machines without one")
    assert "libamdhip64" in why or "hipGetDeviceCount" in why, why
    with pytest.raises(pyquant.device.NoDeviceError, match=r"AMD GPU \(HIP\).*HIP: "):
        pyquant.device.get_device("hip")
    # the same through the tensor API, with a message naming what is missing
    qt = pyquant.QTensor(np.zeros((1, 4), np.uint8), "F32", (1, 1))
    with pytest.raises(pyquant.device.NoDeviceError, match="HIP"):
        qt.to("hip")


# ---------------------------------------------------------------------------------------------- 2. a fake hip module


class hipError_t(enum.IntEnum):
    hipSuccess = 0
    hipErrorInvalidValue = 1
    hipErrorOutOfMemory = 2
    hipErrorNoDevice = 100
    hipErrorInvalidImage = 200
    hipErrorNotFound = 500


class hipMemcpyKind(enum.IntEnum):
    hipMemcpyHostToHost = 0
    hipMemcpyHostToDevice = 1
    hipMemcpyDeviceToHost = 2
    hipMemcpyDeviceToDevice = 3


class FakeHip:
    """Answers like hip-python: every call returns a tuple whose first item is a hipError_t.

    "Device memory" is host memory (ctypes buffers), so copies are memmoves and a launched
    ``dequantize_block_*`` kernel is emulated with the CPU dequantizer over the raw addresses.
    """

    hipError_t = hipError_t
    hipMemcpyKind = hipMemcpyKind

    def __init__(self, arch="gfx90a:sramecc+:xnack-", count=1, memory_limit=1 << 30):
        self.arch, self.count, self.memory_limit = arch, count, memory_limit
        self.allocs: dict[int, ctypes.Array] = {}
        self.freed: list[int] = []
        self.launches: list[dict] = []
        self.fail: dict[str, hipError_t] = {}  # call name -> error to return
        self.current = None

    def _err(self, name):
        return self.fail.get(name, hipError_t.hipSuccess)

    def hipGetErrorName(self, e):
        return (hipError_t.hipSuccess, hipError_t(e).name.encode())

    def hipGetErrorString(self, e):
        return (hipError_t.hipSuccess, {2: b"out of memory", 500: b"named symbol not found"}.get(int(e), b"error"))

    def hipGetDeviceCount(self):
        e = self._err("hipGetDeviceCount")
        return (e, 0 if e else self.count)

    def hipSetDevice(self, i):
        self.current = i
        return (hipError_t.hipSuccess,)

    def hipGetDeviceProperties(self, i):
        p = SimpleNamespace(gcnArchName=self.arch, name=f"Fake AMD {i}", totalGlobalMem=self.memory_limit,
                            multiProcessorCount=104, warpSize=64 if self.arch.startswith("gfx9") else 32,
                            l2CacheSize=8 << 20, maxThreadsPerBlock=1024, maxGridSize=[2**31 - 1, 65535, 65535])
        return (hipError_t.hipSuccess, p)

    def hipMemGetInfo(self):
        used = sum(ctypes.sizeof(b) for b in self.allocs.values())
        return (hipError_t.hipSuccess, self.memory_limit - used, self.memory_limit)

    def hipMalloc(self, n):
        used = sum(ctypes.sizeof(b) for b in self.allocs.values())
        if used + n > self.memory_limit:
            return (hipError_t.hipErrorOutOfMemory, None)
        buf = (ctypes.c_uint8 * n)()
        ctypes.memset(buf, 0xA5, n)  # device memory is not zeroed: padding must be written explicitly
        self.allocs[ctypes.addressof(buf)] = buf
        return (hipError_t.hipSuccess, ctypes.addressof(buf))

    def hipFree(self, p):
        assert p in self.allocs, f"hipFree of unknown pointer {p:#x}"
        del self.allocs[p]
        self.freed.append(p)
        return (hipError_t.hipSuccess,)

    def _check_range(self, p, n):
        if any(a <= p and p + n <= a + ctypes.sizeof(b) for a, b in self.allocs.items()):
            return
        raise AssertionError(f"access outside device allocations: {p:#x}+{n}")

    def hipMemcpyAsync(self, dst, src, n, kind, stream):
        assert isinstance(kind, hipMemcpyKind)
        if kind in (hipMemcpyKind.hipMemcpyHostToDevice, hipMemcpyKind.hipMemcpyDeviceToDevice):
            self._check_range(dst, n)
        if kind in (hipMemcpyKind.hipMemcpyDeviceToHost, hipMemcpyKind.hipMemcpyDeviceToDevice):
            self._check_range(src, n)
        ctypes.memmove(dst, src, n)
        return (hipError_t.hipSuccess,)

    def hipMemsetAsync(self, p, v, n, stream):
        self._check_range(p, n)
        ctypes.memset(p, v, n)
        return (hipError_t.hipSuccess,)

    def hipStreamSynchronize(self, s):
        return (hipError_t.hipSuccess,)

    def hipDeviceSynchronize(self):
        return (hipError_t.hipSuccess,)

    def hipModuleLoadData(self, image):
        if not bytes(image[:4]) == b"\x7fELF":
            return (hipError_t.hipErrorInvalidImage, None)
        return (hipError_t.hipSuccess, "module")

    def hipModuleGetFunction(self, module, name):
        e = self._err("hipModuleGetFunction")
        if not e and not (name.startswith(b"dequantize_block_") or name == b"k"):
            e = hipError_t.hipErrorNotFound
        return (e, None) if e else (hipError_t.hipSuccess, name.decode())

    def hipModuleLaunchKernel(self, f, gx, gy, gz, bx, by, bz, shm, stream, kernelParams, extra=None):
        # hip-python packs `extra` from ctypes values; kernelParams would need addresses (a segfault otherwise)
        assert kernelParams is None
        assert isinstance(extra, tuple) and all(isinstance(a, ctypes._SimpleCData) for a in extra), extra
        self.launches.append(dict(kernel=f, grid=(gx, gy, gz), block=(bx, by, bz), shared=shm, args=extra))
        if f.startswith("dequantize_block_"):
            self._emulate_dequantize(f, [a.value for a in extra])
        return (hipError_t.hipSuccess,)

    def _emulate_dequantize(self, name, args):
        x, y, nrows, n, stride = args
        self._check_range(x, nrows * stride)
        self._check_range(y, nrows * n * (4 if name.endswith("f32") else 2))
        emulate_dequantize(name, x, y, nrows, n, stride)

    # streams and events
    def hipStreamCreate(self):
        return (hipError_t.hipSuccess, 0x5000)

    def hipStreamDestroy(self, s):
        return (hipError_t.hipSuccess,)

    def hipEventCreate(self):
        return (hipError_t.hipSuccess, object())

    def hipEventRecord(self, e, s):
        return (hipError_t.hipSuccess,)

    def hipEventSynchronize(self, e):
        return (hipError_t.hipSuccess,)

    def hipEventElapsedTime(self, a, b):
        return (hipError_t.hipSuccess, 1.5)

    def hipEventDestroy(self, e):
        return (hipError_t.hipSuccess,)

    def hipPointerGetAttributes(self, p):
        return (hipError_t.hipSuccess, SimpleNamespace(device=0))


def emulate_dequantize(name: str, x: int, y: int, nrows: int, n: int, stride: int) -> None:
    """What ``dequantize_block_<type>_<out>(x, y, nrows, n, stride)`` computes, done by the CPU on raw addresses."""
    ggml, out = name[len("dequantize_block_"):].rsplit("_", 1)
    qtype = pyquant.qtype_of(ggml)
    rb = row_bytes(qtype, n)
    raw = np.ctypeslib.as_array((ctypes.c_uint8 * (nrows * stride)).from_address(x)).reshape(nrows, stride)
    values = pyquant.dequantize(np.ascontiguousarray(raw[:, :rb]), qtype, (nrows, n))
    ref = dtensor.host_reference(values, {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[out])
    ctypes.memmove(y, ref.ctypes.data, ref.nbytes)


@pytest.fixture
def fake_hip(monkeypatch, tmp_path):
    """Install a FakeHip as hip-python, and a kernels directory with a gfx90a 'code object'."""
    from pyquant.device import hip as hipmod

    fake = FakeHip()
    monkeypatch.setattr(hipmod, "_hip", fake)
    monkeypatch.setattr(runtime, "_devices", {})
    monkeypatch.setattr(runtime, "probe", lambda v: hipmod.probe() if v == "hip" else (0, "CUDA: not in this test"))
    write_manifest(tmp_path, ["gfx90a", "gfx942", "gfx1100"])
    monkeypatch.setenv("PYQUANT_KERNELS_DIR", str(tmp_path))
    monkeypatch.setattr(dtensor, "dequantize_spec", stub_dequantize_spec)
    return fake


def write_manifest(path, archs, kernels=None, source_hash=None):
    if source_hash is None:  # match the checkout's sources: no staleness warning
        source_hash = codeobjects.source_hash() if codeobjects.SOURCE_DIR.exists() else "x"
    objects = {}
    for a in archs:
        (path / f"pyquant.{a}.hsaco").write_bytes(b"\x7fELF" + a.encode())
        objects[a] = {"file": f"pyquant.{a}.hsaco", "compiler": "clang-22", "vendor": "amd",
                      "wavefront_size": 64 if a.startswith("gfx9") else 32}
    if kernels is None:
        kernels = [f"dequantize_block_{layout(t).c_name[6:]}_{o}" for t in SUPPORTED for o in ("f32", "f16", "bf16")]
        kernels.append("k")  # a test kernel for the launch tests
    (path / "manifest.json").write_text(json.dumps({"source_hash": source_hash, "objects": objects, "kernels": kernels}))


def stub_dequantize_spec(qtype, out, nrows, n):
    """The launch contract's shape (kernel, grid, block, shared_mem, arg_types), independent of launch.py."""
    name = f"dequantize_block_{layout(qtype).c_name[6:]}_{out}"
    return SimpleNamespace(kernel=name, grid=(nrows, 1, 1), block=(64, 1, 1), shared_mem=0,
                           arg_types=("ptr", "ptr", "i64", "i64", "i64"))


def test_no_device_error_from_error_tuple(fake_hip):
    fake_hip.fail["hipGetDeviceCount"] = hipError_t.hipErrorNoDevice
    with pytest.raises(pyquant.device.NoDeviceError, match=r"hipGetDeviceCount\(\) failed: hipErrorNoDevice"):
        pyquant.device.get_device("hip")


def test_selection_and_arch_name(fake_hip):
    dev = pyquant.device.get_device("gpu")
    assert dev.vendor == "hip" and str(dev) == "hip:0"
    assert dev.arch == "gfx90a" and dev.properties.full_arch == "gfx90a:sramecc+:xnack-"
    assert dev.properties.warp_size == 64
    assert pyquant.device.get_device("hip:0") is dev and pyquant.device.get_device(0) is dev
    with pytest.raises(pyquant.device.NoDeviceError, match="device 3 does not exist"):
        pyquant.device.get_device("hip:3")
    with pytest.raises(ValueError, match="unknown device"):
        pyquant.device.get_device("tpu")


@pytest.mark.parametrize("arch", ["gfx1036", "gfx1151:xnack-"])
def test_unbuilt_arch_names_device_shipped_and_build_command(fake_hip, arch):
    fake_hip.arch = arch
    dev = pyquant.device.get_device("hip")
    with pytest.raises(pyquant.device.CodeObjectError) as e:
        dev.function("dequantize_block_q4_0_f32")
    msg = str(e.value)
    stripped = arch.split(":")[0]
    assert f"is {stripped}" in msg and "ships gfx90a, gfx942, gfx1100 in" in msg
    assert f"python hsaco/build.py --arch {stripped}" in msg


def test_missing_manifest_and_stale_kernel_list(fake_hip, tmp_path, monkeypatch):
    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.setenv("PYQUANT_KERNELS_DIR", str(empty))
    dev = pyquant.device.get_device("hip")
    with pytest.raises(pyquant.device.CodeObjectError, match="python hsaco/build.py"):
        dev.function("dequantize_block_q4_0_f32")
    other = tmp_path / "old"
    other.mkdir()
    write_manifest(other, ["gfx90a"], kernels=["dequantize_block_q4_0_f32"])
    monkeypatch.setenv("PYQUANT_KERNELS_DIR", str(other))
    runtime._devices.clear()
    dev = pyquant.device.get_device("hip")
    assert dev.function("dequantize_block_q4_0_f32") == "dequantize_block_q4_0_f32"
    with pytest.raises(pyquant.device.CodeObjectError, match="not in pyquant.gfx90a.hsaco.*rebuild"):
        dev.function("dequantize_block_q4_K_f32")


def test_stale_code_objects_warn_in_a_source_checkout(fake_hip, tmp_path, monkeypatch):
    if not (codeobjects.SOURCE_DIR / "pyquant.hip").exists():
        pytest.skip("not a source checkout")
    d = tmp_path / "stale"
    d.mkdir()
    write_manifest(d, ["gfx90a"], source_hash="0" * 64)
    monkeypatch.setenv("PYQUANT_KERNELS_DIR", str(d))
    with pytest.warns(RuntimeWarning, match="built from other sources"):
        pyquant.device.get_device("hip").function("dequantize_block_q4_0_f32")


def test_launch_packs_ctypes_values_once(fake_hip):
    dev = pyquant.device.get_device("hip")
    buf = dev.alloc(64)
    spec = SimpleNamespace(kernel="k", grid=(3, 2), block=128, shared_mem=256,
                           arg_types=("ptr", "i64", "i32", "f32", "ptr"))
    dev.launch(spec, (buf, 2**40, -7, 0.5, None))
    (call,) = fake_hip.launches
    assert call["grid"] == (3, 2, 1) and call["block"] == (128, 1, 1) and call["shared"] == 256
    types = [type(a) for a in call["args"]]
    assert types == [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float, ctypes.c_void_p]
    assert [a.value for a in call["args"]] == [buf.ptr, 2**40, -7, 0.5, None]
    with pytest.raises(OverflowError, match="argument 2"):
        dev.launch(spec, (buf, 1, 2**31, 0.0, 0))
    with pytest.raises(TypeError, match="takes 5 arguments"):
        dev.launch(spec, (buf,))
    with pytest.raises(ValueError, match="2048 threads"):
        dev.launch(SimpleNamespace(kernel="k", grid=1, block=(2048,), shared_mem=0, arg_types=()), ())
    with pytest.raises(ValueError, match="exceeds"):
        dev.launch(SimpleNamespace(kernel="k", grid=(1, 70000), block=1, shared_mem=0, arg_types=()), ())


def test_errors_name_call_and_error(fake_hip):
    dev = pyquant.device.get_device("hip")
    fake_hip.fail["hipModuleGetFunction"] = hipError_t.hipErrorNotFound
    with pytest.raises(pyquant.device.DeviceError,
                       match=r"hipModuleGetFunction\('dequantize_block_q8_0_f32'\) failed: hipErrorNotFound "
                             r"\(named symbol not found\)") as e:
        dev.function("dequantize_block_q8_0_f32")
    assert e.value.call.startswith("hipModuleGetFunction") and e.value.error_name == "hipErrorNotFound"


def test_out_of_memory_is_a_memory_error(fake_hip):
    dev = pyquant.device.get_device("hip")
    with pytest.raises(MemoryError, match=r"out of device memory on hip:0 .*asked for 2048.0 MiB.*hipErrorOutOfMemory"):
        dev.alloc(2 << 30)
    with pytest.raises(pyquant.device.DeviceMemoryError):
        dev.empty((1 << 20, 1 << 10), "float32")


def test_memory_freed_when_owner_collected(fake_hip):
    dev = pyquant.device.get_device("hip")
    a = dev.empty((4, 8), "float16")
    ptr = a.ptr
    assert ptr in fake_hip.allocs
    del a
    gc.collect()
    assert ptr in fake_hip.freed and ptr not in fake_hip.allocs
    b = dev.alloc(16)
    b.free()
    b.free()  # idempotent
    assert fake_hip.freed.count(b.ptr) == 1


def _random_qtensor(qtype, nrows, n, rng):
    """Valid quantized bytes: random floats through the CPU quantizer."""
    x = rng.standard_normal((nrows, n)).astype(np.float32)
    return pyquant.quantize(x, qtype)


def _cpu_types():
    return [t for t in SUPPORTED if t in cpu.available()]


@pytest.mark.parametrize("n_blocks", [1, 3, 17])
def test_to_device_pads_rows_with_zeros_and_round_trips(fake_hip, n_blocks):
    rng = np.random.default_rng(n_blocks)
    for t in _cpu_types():
        lay = layout(t)
        n = lay.block_size * n_blocks
        qt = pyquant.QTensor(rng.integers(0, 256, (3, n // lay.block_size * lay.type_size), dtype=np.uint8), t, (3, n))
        g = qt.to("hip")
        assert g.device.vendor == "hip" and g.shape == qt.shape and g.qtype == t
        st = g._device
        assert st.row_bytes == row_bytes(t, n)
        padded_n = -(-n // MATRIX_ROW_PADDING) * MATRIX_ROW_PADDING
        assert st.row_stride == -(-row_bytes(t, padded_n) // 16) * 16  # 512 elements, then 16 bytes
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * (3 * st.row_stride)).from_address(st.ptr)).reshape(3, -1)
        assert (raw[:, st.row_bytes:] == 0).all(), "padding must be zeroed"
        np.testing.assert_array_equal(raw[:, : st.row_bytes], qt.data)
        back = g.cpu()
        assert back.device == "cpu"
        np.testing.assert_array_equal(back.data, qt.data)
        with pytest.raises(RuntimeError, match="lives on a device"):
            g.data  # noqa: B018
        assert g.to("hip") is g and g.to("cpu").device == "cpu"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_device_dequantize_plumbing(fake_hip, dtype):
    """Arguments reach the kernel as the contract says: x, y, nrows, n, padded row stride in bytes."""
    rng = np.random.default_rng(0)
    for t in _cpu_types():
        lay = layout(t)
        n = lay.block_size * 5
        qt = _random_qtensor(t, 4, n, rng) if t.name not in ("Q8_1", "Q8_K") else pyquant.QTensor(
            rng.integers(0, 256, (4, row_bytes(t, n)), dtype=np.uint8), t, (4, n))
        out = qt.to("hip").dequantize(dtype=dtype)
        assert isinstance(out, pyquant.device.DeviceArray)
        assert out.shape == (4, n) and out.dtype.name == dtype
        call = fake_hip.launches[-1]
        x, y, nrows, nn, stride = (a.value for a in call["args"])
        assert (y, nrows, nn) == (out.ptr, 4, n)
        assert stride == -(-row_bytes(t, -(-n // MATRIX_ROW_PADDING) * MATRIX_ROW_PADDING) // 16) * 16
        want = dtensor.host_reference(qt.dequantize(), dtype)
        got = out.cpu()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        assert out.__dlpack_device__() == (10, 0)
        if dtype == "bfloat16":
            assert not hasattr(out, "__cuda_array_interface__")
        else:
            cai = out.__cuda_array_interface__
            assert cai["data"] == (out.ptr, False) and cai["shape"] == (4, n) and cai["version"] == 3


def test_dequantize_refuses_other_dtypes_and_empty_is_fine(fake_hip):
    qt = pyquant.QTensor(np.zeros((0, 4), np.uint8), "F32", (0, 1))
    g = qt.to("hip")
    out = g.dequantize()
    assert out.shape == (0, 1) and not fake_hip.launches
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        g.dequantize(dtype="int8")


# ---------------------------------------------------------------------------------------------- 3. DLPack on host memory


def _host_device_array(a: np.ndarray, dtype=None, strides=None) -> memory.DeviceArray:
    return memory.DeviceArray(a.ctypes.data, a.shape, dtype or a.dtype, strides if strides is not None else a.strides,
                              owner=a, dl_device=(memory.KDL_CPU, 0))


class _Capsule:
    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kw):
        return self.capsule

    def __dlpack_device__(self):
        return (memory.KDL_CPU, 0)


@pytest.mark.parametrize("versioned", [False, True])
def test_dlpack_export_is_zero_copy_and_released(versioned):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    d = _host_device_array(a)
    cap = d.__dlpack__(max_version=(1, 0) if versioned else None)
    assert type(cap).__name__ == "PyCapsule"
    before = len(memory._exported)
    b = np.from_dlpack(_Capsule(cap))
    assert b.ctypes.data == a.ctypes.data and b.shape == (4, 6)
    np.testing.assert_array_equal(b, a)
    del b, cap
    gc.collect()
    assert len(memory._exported) == before - 1, "the consumer's deleter must drop our reference"


def test_dlpack_unconsumed_capsule_is_released():
    a = np.zeros(5, np.float16)
    before = len(memory._exported)
    cap = _host_device_array(a).__dlpack__()
    assert len(memory._exported) == before + 1
    del cap
    gc.collect()
    assert len(memory._exported) == before


def test_dlpack_strided_and_numpy_from_dlpack_directly():
    a = np.arange(30, dtype=np.int32).reshape(5, 6)[:, ::2]
    d = _host_device_array(a)
    assert not d.is_c_contiguous
    b = np.from_dlpack(d)
    np.testing.assert_array_equal(b, a)
    assert b.ctypes.data == a.ctypes.data


def test_dlpack_import_is_zero_copy():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    d = memory._from_dlpack(a, allow_host=True)
    assert d.ptr == a.ctypes.data and d.shape == (3, 4) and d.dtype.name == "float32" and d.strides == a.strides
    with pytest.raises(TypeError, match="not on a GPU"):
        pyquant.device.as_device_array(a)


def test_bfloat16_dlpack_code():
    bits = np.array([0x3F80, 0x4000], dtype=np.uint16)
    d = _host_device_array(bits, dtype="bfloat16")
    cap = d.__dlpack__()
    t, holder, _ = memory._consume_capsule(cap)
    assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (memory.KDL_BFLOAT, 16, 1)
    assert t.data == bits.ctypes.data


def test_dtype_names():
    assert memory.dtype_of("bf16").name == "bfloat16"
    assert memory.dtype_of(np.float16).name == "float16"
    assert memory.dtype_of(None).name == "float32"
    assert memory.dtype_of("half").name == "float16"

    class TorchLike:
        def __str__(self):
            return "torch.bfloat16"

    assert memory.dtype_of(TorchLike()).name == "bfloat16"
    with pytest.raises(TypeError, match="unsupported device dtype"):
        memory.dtype_of("complex64")


def test_host_reference_rounding():
    x = np.array([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 65520.0, -0.0, np.inf, 1e-8], dtype=np.float32)
    bf = dtensor.host_reference(x, "bfloat16")
    # 1+2^-8 is a tie between 1 and 1+2^-7: even mantissa (1.0) wins; 1+3*2^-8 rounds up to 1+2^-6
    assert bf[0] == 0x3F80 and bf[1] == 0x3F80 and bf[2] == 0x3F82
    assert bf[4] == 0x8000 and bf[5] == 0x7F80
    h = dtensor.host_reference(x, "float16")
    assert np.isinf(h[3]) and h[0] == 1.0
    nan = dtensor.host_reference(np.array([np.float32("nan")]), "bfloat16")
    assert nan[0] & 0x7FC0 == 0x7FC0


# ---------------------------------------------------------------------------------------------- 2b. real hip-python, stand-in runtime
#
# A stand-in libamdhip64.so (C, compiled here) under $ROCM_PATH/lib, loaded by the *real* hip-python: its own
# argument conversion runs (the ``extra=`` buffer of ctypes values with HIP_LAUNCH_PARAM_BUFFER_POINTER/SIZE,
# ints as pointers, names as C strings) and its hipDeviceProp_t decoding (the fake copies a struct image that
# hip-python's own wrapper wrote). The GPU suite (tests/test_device.py) then runs against it in a subprocess,
# kernels emulated by the CPU.

FAKE_LIBAMDHIP64 = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
typedef int hipError_t;
static size_t g_limit = (size_t)1 << 32, g_used = 0;
static long g_frees = 0, g_launches = 0, g_bad_launches = 0;
static unsigned char g_props[8192]; static size_t g_props_size = 0;
typedef void (*launch_cb)(const char *name, const unsigned *dims, const void *args, size_t size);
static launch_cb g_cb = 0;
void fake_configure(size_t limit, const void *props, size_t props_size, launch_cb cb) {
  g_limit = limit; g_cb = cb; g_props_size = props_size < sizeof g_props ? props_size : sizeof g_props;
  memcpy(g_props, props, g_props_size); }
long fake_frees(void) { return g_frees; }
long fake_launches(void) { return g_launches; }
long fake_bad_launches(void) { return g_bad_launches; }
hipError_t hipGetDeviceCount(int *n) { *n = 1; return 0; }
hipError_t hipSetDevice(int d) { return d == 0 ? 0 : 101; }
hipError_t hipGetDevicePropertiesR0600(void *p, int d) { if (d) return 101; memcpy(p, g_props, g_props_size); return 0; }
hipError_t hipMemGetInfo(size_t *f, size_t *t) { *f = g_limit - g_used; *t = g_limit; return 0; }
hipError_t hipModuleLoadData(void **m, const void *img) {
  if (memcmp(img, "\x7f" "ELF", 4) != 0) return 200;
  *m = (void *)0x2000; return 0; }
hipError_t hipModuleUnload(void *m) { (void)m; return 0; }
hipError_t hipModuleGetFunction(void **f, void *m, const char *name) {
  (void)m; if (strncmp(name, "dequantize_block_", 17) != 0 && strcmp(name, "k") != 0) return 500;
  *f = strdup(name); return 0; }
hipError_t hipModuleLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                 unsigned bz, unsigned shm, void *stream, void **params, void **extra) {
  (void)stream;
  unsigned dims[7] = {gx, gy, gz, bx, by, bz, shm};
  /* extra = {HIP_LAUNCH_PARAM_BUFFER_POINTER, buf, HIP_LAUNCH_PARAM_BUFFER_SIZE, &size, HIP_LAUNCH_PARAM_END} */
  if (params || !extra || extra[0] != (void *)1 || extra[2] != (void *)2 || extra[4] != (void *)3) {
    g_bad_launches++; return 1; }
  g_launches++;
  if (g_cb) g_cb((const char *)f, dims, extra[1], *(size_t *)extra[3]);
  return 0; }
typedef struct { size_t n; size_t pad; } hdr;
hipError_t hipMalloc(void **p, size_t n) {
  if (g_used + n > g_limit) return 2;
  hdr *h = malloc(sizeof(hdr) + n); if (!h) return 2;
  h->n = n; memset(h + 1, 0xA5, n); g_used += n; *p = h + 1; return 0; }
hipError_t hipFree(void *p) { if (!p) return 0; hdr *h = ((hdr *)p) - 1; g_used -= h->n; free(h); g_frees++; return 0; }
hipError_t hipMemcpyAsync(void *d, const void *s, size_t n, int kind, void *st) {
  (void)st; if (kind < 1 || kind > 3) return 1; memmove(d, s, n); return 0; }
hipError_t hipMemsetAsync(void *d, int v, size_t n, void *st) { (void)st; memset(d, v, n); return 0; }
hipError_t hipPointerGetAttributes(void *attr, const void *p) { (void)p; memset(attr, 0, 32); ((int *)attr)[0] = 2; return 0; }
hipError_t hipStreamCreate(void **s) { *s = malloc(8); return 0; }
hipError_t hipStreamDestroy(void *s) { free(s); return 0; }
hipError_t hipStreamSynchronize(void *s) { (void)s; return 0; }
hipError_t hipDeviceSynchronize(void) { return 0; }
hipError_t hipEventCreate(void **e) { *e = malloc(8); return 0; }
hipError_t hipEventDestroy(void *e) { free(e); return 0; }
hipError_t hipEventRecord(void *e, void *s) { (void)e; (void)s; return 0; }
hipError_t hipEventSynchronize(void *e) { (void)e; return 0; }
hipError_t hipEventElapsedTime(float *ms, void *a, void *b) { (void)a; (void)b; *ms = 1.25f; return 0; }
const char *hipGetErrorName(hipError_t e) {
  switch (e) { case 0: return "hipSuccess"; case 1: return "hipErrorInvalidValue"; case 2: return "hipErrorOutOfMemory";
    case 101: return "hipErrorInvalidDevice"; case 200: return "hipErrorInvalidImage"; case 500: return "hipErrorNotFound";
    default: return "hipErrorUnknown"; } }
const char *hipGetErrorString(hipError_t e) {
  return e == 2 ? "out of memory" : e == 500 ? "named symbol not found" : "error"; }

"""

HIP_DRIVER = textwrap.dedent("""
    import ctypes, os, struct, sys
    sys.path.insert(0, os.getcwd())
    from hip import hip
    lib = ctypes.CDLL(os.environ["ROCM_PATH"] + "/lib/libamdhip64.so")
    # a hipDeviceProp_t image written through hip-python's wrapper (array fields located by probing)
    p = hip.hipDeviceProp_t()
    addr, size = int(p), p.c_sizeof()
    def find(getter, probe):
        for off in range(size - len(probe)):
            old = ctypes.string_at(addr + off, len(probe))
            ctypes.memmove(addr + off, probe, len(probe))
            hit = getter()
            ctypes.memmove(addr + off, old, len(probe))
            if hit:
                return off
        raise LookupError(probe)
    gcn = find(lambda: p.gcnArchName.startswith("Q"), b"Q")
    name = find(lambda: p.name.startswith("Q"), b"Q")
    grid = find(lambda: p.maxGridSize[0] == 0x01020304, (0x01020304).to_bytes(4, "little"))
    ctypes.memmove(addr + gcn, sys.argv[3].encode() + b"\\0", len(sys.argv[3]) + 1)
    ctypes.memmove(addr + name, b"Stand-in AMD GPU\\0", 17)
    ctypes.memmove(addr + grid, (ctypes.c_int * 3)(2**31 - 1, 65535, 65535), 12)
    p.warpSize = 64 if sys.argv[3].startswith("gfx9") else 32
    p.totalGlobalMem, p.multiProcessorCount, p.l2CacheSize, p.maxThreadsPerBlock = 4 << 30, 104, 8 << 20, 1024
    from tests.test_hip_nohw import emulate_dequantize
    CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p, ctypes.c_size_t)
    def on_launch(kname, dims, buf, n):
        kname = kname.decode()
        if kname.startswith("dequantize_block_"):
            assert n == 40, n  # two pointers and three int64, naturally aligned: hip-python's packing
            emulate_dequantize(kname, *struct.unpack("<QQqqq", ctypes.string_at(buf, n)))
    cb = CB(on_launch)
    lib.fake_configure.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, CB]
    lib.fake_configure(4 << 30, ctypes.string_at(addr, size), size, cb)
    os.environ["PYQUANT_KERNELS_DIR"] = sys.argv[2]
    import pytest
    from pyquant.device import runtime
    runtime._warn_if_stale = lambda d: None  # kernel sources may change under a long run; not this test's subject
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "gpu", "-W", "error::RuntimeWarning", *sys.argv[4:]])
    print("FAKE LAUNCHES", lib.fake_launches(), "BAD", lib.fake_bad_launches(), "FREES", lib.fake_frees())
    sys.exit(int(code))
""")

HIP_SUBSET = ("identity or errors or memory or copies or padded or quantized_data "
              "or (random_blocks and (Q4_K or Q5_0))")


@pytest.fixture(scope="module")
def fake_libamdhip64(tmp_path_factory):
    pytest.importorskip("hip", reason="hip-python not installed (pip install hip-python)")
    cc = next((c for c in ("cc", "gcc", "clang", "clang-22") if shutil.which(c)), None)
    if cc is None:
        pytest.skip("no C compiler to build the stand-in libamdhip64")
    root = tmp_path_factory.mktemp("fakerocm")
    (root / "lib").mkdir()
    (root / "fake.c").write_text(FAKE_LIBAMDHIP64)
    r = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(root / "lib" / "libamdhip64.so"),
                        "-Wl,-soname,libamdhip64.so", str(root / "fake.c")], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"{cc} cannot build a shared library here: {r.stderr[-300:]}")
    kd = root / "kernels"
    kd.mkdir()
    write_manifest(kd, ["gfx90a", "gfx1100"])
    return root, kd


@pytest.mark.parametrize("arch,subset", [
    ("gfx90a:sramecc+:xnack-", HIP_SUBSET),  # wave64 CDNA, features in the name
    ("gfx1100", "identity or (random_blocks and Q4_K and float16)"),  # wave32 RDNA
])
def test_gpu_suite_against_real_hip_python_and_standin_runtime(fake_libamdhip64, arch, subset):
    root, kd = fake_libamdhip64
    env = dict(os.environ, ROCM_PATH=str(root))
    r = subprocess.run([sys.executable, "-c", HIP_DRIVER, "-", str(kd), arch, str(ROOT / "tests" / "test_device.py"),
                        "-k", os.environ.get("PYQUANT_FAKE_HIP_K", subset)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    launches, bad = (int(out.split(k)[1].split()[0]) for k in ("FAKE LAUNCHES", "BAD"))
    assert launches >= 3 and bad == 0, out[-2000:]


def test_unbuilt_arch_through_real_hip_python(fake_libamdhip64):
    root, kd = fake_libamdhip64
    code = HIP_DRIVER.replace('code = pytest.main', 'code = 0 #').replace(
        'print("FAKE LAUNCHES"', 'import pyquant.device as pd\ntry:\n    pd.get_device("hip").function("k")\n'
        'except pd.CodeObjectError as e:\n    print("ERR", e)\nprint("FAKE LAUNCHES"')
    r = subprocess.run([sys.executable, "-c", code, "-", str(kd), "gfx1036"], cwd=ROOT,
                       env=dict(os.environ, ROCM_PATH=str(root)), capture_output=True, text=True, timeout=300)
    assert "ERR no code object for this GPU: Stand-in AMD GPU is gfx1036" in r.stdout, r.stdout + r.stderr
    assert "ships gfx90a, gfx1100" in r.stdout and "python hsaco/build.py --arch gfx1036" in r.stdout
