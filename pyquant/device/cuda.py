"""The CUDA backend (NVIDIA GPUs) through cuda-python's driver API: ``from cuda.bindings import driver``.

Uses the device's primary context (the one PyTorch and CuPy use), so device pointers are shared with
them. Every call's ``CUresult`` is checked and turned into :class:`~pyquant.device.runtime.DeviceError`
naming the call and the error (``cuGetErrorName`` / ``cuGetErrorString``). Kernel arguments go through
``kernelParams=((values...), (ctypes types...))``, which cuda-python packs itself.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

from .runtime import Backend as _Backend
from .runtime import NoDeviceError, Properties, cuda_arch, raise_for

_driver = None
_OOM = 2  # CUDA_ERROR_OUT_OF_MEMORY


def _module():
    global _driver
    if _driver is None:
        try:
            from cuda.bindings import driver  # noqa: PLC0415 - optional dependency, imported lazily
        except ImportError:
            from cuda import cuda as driver  # cuda-python before 12.6 spelled it this way
        _driver = driver
    return _driver


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        value = value[-1]
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode(errors="replace")
    return str(value)


def error_strings(err: Any) -> tuple[str, str]:
    d = _module()
    try:
        name = _text(d.cuGetErrorName(err))
    except Exception:
        name = getattr(err, "name", str(err))
    try:
        text = _text(d.cuGetErrorString(err))
    except Exception:
        text = ""
    return name, text


def _call(call: str, result: Any, hint: str = "") -> Any:
    res = result if isinstance(result, tuple) else (result,)
    err = res[0]
    if int(err) != 0:
        name, text = error_strings(err)
        raise_for(call, int(err), name, text, out_of_memory=int(err) == _OOM, hint=hint)
    payload = res[1:]
    if not payload:
        return None
    return payload[0] if len(payload) == 1 else payload


def probe() -> tuple[int, str]:
    """``(device_count, reason)``; never raises."""
    try:
        d = _module()
    except ImportError:
        return 0, "cuda-python is not installed (pip install cuda-bindings)"
    except Exception as e:
        return 0, f"cuda-python failed to import: {e}"
    try:
        res = d.cuInit(0)
    except Exception as e:  # DynamicLibNotFoundError: no libcuda.so (no NVIDIA driver)
        return 0, f"the CUDA driver (libcuda.so) could not be loaded: {e}"
    try:
        _call("cuInit(0)", res)
        count = _call("cuDeviceGetCount()", d.cuDeviceGetCount())
    except Exception as e:
        return 0, str(e)
    if not count:
        return 0, "cuDeviceGetCount() reports no NVIDIA GPU"
    return int(count), ""


def _ptr(p: Any) -> int:
    return 0 if p is None else int(p)


class Backend(_Backend):
    vendor = "cuda"
    dlpack_device_type = 2  # kDLCUDA
    code_object_kinds = ("cubin", "ptx")

    def __init__(self, index: int):
        count, why = probe()
        if count == 0:
            raise NoDeviceError(f"CUDA: {why}")
        if not 0 <= index < count:
            raise NoDeviceError(f"CUDA device {index} does not exist: {count} device(s) present")
        d = self.driver = _module()
        self.index = index
        self.dev = _call(f"cuDeviceGet({index})", d.cuDeviceGet(index))
        self.ctx = _call(f"cuDevicePrimaryCtxRetain({index})", d.cuDevicePrimaryCtxRetain(self.dev))

    def _pdl(self) -> bool:
        """Programmatic dependent launches: compute capability 9.0+, unless PYQUANT_PDL=0 (for A/B timing)."""
        if not hasattr(self, "_pdl_attr"):
            ok = os.environ.get("PYQUANT_PDL", "1") != "0" and self._attr("COMPUTE_CAPABILITY_MAJOR") >= 9
            attr = None
            if ok:
                d = self.driver
                attr = d.CUlaunchAttribute()
                attr.id = d.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
                attr.value.programmaticStreamSerializationAllowed = 1
            self._pdl_attr = attr
        return self._pdl_attr is not None

    def _activate(self) -> None:
        _call("cuCtxSetCurrent()", self.driver.cuCtxSetCurrent(self.ctx))

    def _attr(self, name: str) -> int:
        d = self.driver
        a = getattr(d.CUdevice_attribute, "CU_DEVICE_ATTRIBUTE_" + name)
        return int(_call(f"cuDeviceGetAttribute({name})", d.cuDeviceGetAttribute(a, self.dev)))

    def properties(self) -> Properties:
        d = self.driver
        major, minor = self._attr("COMPUTE_CAPABILITY_MAJOR"), self._attr("COMPUTE_CAPABILITY_MINOR")
        return Properties(
            vendor="cuda", index=self.index, name=_text(_call("cuDeviceGetName()", d.cuDeviceGetName(256, self.dev))),
            arch=cuda_arch(major, minor),
            total_memory=int(_call("cuDeviceTotalMem()", d.cuDeviceTotalMem(self.dev))),
            multiprocessors=self._attr("MULTIPROCESSOR_COUNT"), warp_size=self._attr("WARP_SIZE"),
            l2_cache_bytes=self._attr("L2_CACHE_SIZE"), max_threads_per_block=self._attr("MAX_THREADS_PER_BLOCK"),
            max_grid=(self._attr("MAX_GRID_DIM_X"), self._attr("MAX_GRID_DIM_Y"), self._attr("MAX_GRID_DIM_Z")),
            compute_capability=(major, minor), full_arch=cuda_arch(major, minor),
        )

    def mem_info(self) -> tuple[int, int]:
        self._activate()
        free, total = _call("cuMemGetInfo()", self.driver.cuMemGetInfo())
        return int(free), int(total)

    # ---- code objects
    def load_module(self, image: bytes, kind: str) -> Any:
        self._activate()
        hint = "the cubin does not match this GPU"
        if kind == "ptx":
            if not image.endswith(b"\0"):
                image = image + b"\0"  # the driver reads PTX as a NUL-terminated string
            hint = "the driver could not JIT-compile the PTX (driver older than the nvcc that wrote it?)"
        return _call(f"cuModuleLoadData({len(image)}-byte {kind})", self.driver.cuModuleLoadData(image), hint=hint)

    def unload_module(self, module: Any) -> None:
        self._activate()
        _call("cuModuleUnload()", self.driver.cuModuleUnload(module))

    def get_function(self, module: Any, name: str) -> Any:
        return _call(f"cuModuleGetFunction({name!r})", self.driver.cuModuleGetFunction(module, name.encode()))

    def launch(self, function: Any, grid: tuple[int, int, int], block: tuple[int, int, int], shared_mem: int,
               stream: Any, args: Sequence[ctypes._SimpleCData], overlap: bool = False) -> None:
        self._activate()
        values = tuple((a.value or 0) if isinstance(a, ctypes.c_void_p) else a.value for a in args)
        types = tuple(type(a) for a in args)
        if overlap and self._pdl():
            d = self.driver
            config = d.CUlaunchConfig()
            config.gridDimX, config.gridDimY, config.gridDimZ = grid
            config.blockDimX, config.blockDimY, config.blockDimZ = block
            config.sharedMemBytes = shared_mem
            config.hStream = 0 if stream is None else stream
            config.attrs = [self._pdl_attr]
            config.numAttrs = 1
            _call(f"cuLaunchKernelEx(grid={grid}, block={block}, programmatic stream serialization)",
                  d.cuLaunchKernelEx(config, function, (values, types), 0))
            return
        _call(
            f"cuLaunchKernel(grid={grid}, block={block})",
            self.driver.cuLaunchKernel(function, *grid, *block, shared_mem, 0 if stream is None else stream,
                                       (values, types), 0),
        )

    # ---- memory
    def alloc(self, nbytes: int) -> int:
        self._activate()
        return _ptr(_call(f"cuMemAlloc({nbytes})", self.driver.cuMemAlloc(nbytes)))

    def free(self, ptr: int) -> None:
        self._activate()
        _call(f"cuMemFree({ptr:#x})", self.driver.cuMemFree(ptr))

    def _stream(self, stream: Any) -> Any:
        return 0 if stream is None else stream

    def memcpy_htod(self, dst: int, src_host: int, nbytes: int, stream: Any = None) -> None:
        self._activate()
        _call(f"cuMemcpyHtoDAsync({nbytes})", self.driver.cuMemcpyHtoDAsync(dst, src_host, nbytes, self._stream(stream)))
        self.stream_synchronize(stream)  # the host buffer may be released as soon as we return

    def memcpy_dtoh(self, dst_host: int, src: int, nbytes: int, stream: Any = None) -> None:
        self._activate()
        _call(f"cuMemcpyDtoHAsync({nbytes})", self.driver.cuMemcpyDtoHAsync(dst_host, src, nbytes, self._stream(stream)))
        self.stream_synchronize(stream)

    def memcpy_dtod(self, dst: int, src: int, nbytes: int, stream: Any = None) -> None:
        self._activate()
        _call(f"cuMemcpyDtoDAsync({nbytes})", self.driver.cuMemcpyDtoDAsync(dst, src, nbytes, self._stream(stream)))

    def memset(self, ptr: int, value: int, nbytes: int, stream: Any = None) -> None:
        self._activate()
        _call(f"cuMemsetD8Async({ptr:#x}, {value}, {nbytes})",
              self.driver.cuMemsetD8Async(ptr, value, nbytes, self._stream(stream)))

    def pointer_device(self, ptr: int) -> int | None:
        d = self.driver
        try:
            attr = d.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL
            return int(_call("cuPointerGetAttribute(DEVICE_ORDINAL)", d.cuPointerGetAttribute(attr, ptr)))
        except Exception:
            return None

    # ---- streams, events
    def stream_create(self) -> Any:
        self._activate()
        return _call("cuStreamCreate()", self.driver.cuStreamCreate(0))

    def stream_destroy(self, stream: Any) -> None:
        self._activate()
        _call("cuStreamDestroy()", self.driver.cuStreamDestroy(stream))

    def stream_synchronize(self, stream: Any = None) -> None:
        self._activate()
        _call("cuStreamSynchronize()", self.driver.cuStreamSynchronize(self._stream(stream)))

    def stream_handle(self, stream: Any) -> int:
        return 0 if stream is None else int(stream)

    def synchronize(self) -> None:
        self._activate()
        _call("cuCtxSynchronize()", self.driver.cuCtxSynchronize())

    def event_create(self) -> Any:
        self._activate()
        return _call("cuEventCreate()", self.driver.cuEventCreate(0))

    def event_destroy(self, event: Any) -> None:
        self._activate()
        _call("cuEventDestroy()", self.driver.cuEventDestroy(event))

    def event_record(self, event: Any, stream: Any = None) -> None:
        _call("cuEventRecord()", self.driver.cuEventRecord(event, self._stream(stream)))

    def event_synchronize(self, event: Any) -> None:
        _call("cuEventSynchronize()", self.driver.cuEventSynchronize(event))

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(_call("cuEventElapsedTime()", self.driver.cuEventElapsedTime(start, end)))
