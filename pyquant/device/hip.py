"""The HIP backend (AMD GPUs) through hip-python: ``from hip import hip``.

Every hip-python call returns a tuple whose first item is a ``hipError_t``; :func:`_call` checks it every
time and turns a failure into :class:`~pyquant.device.runtime.DeviceError` naming the call, the error's name
(``hipGetErrorName``) and text (``hipGetErrorString``). Kernel arguments go through ``extra=`` as a tuple of
ctypes values, which hip-python packs into one aligned buffer (``kernelParams`` would need their addresses).

Pin hip-python to your ROCm release: an older runtime lacks symbols a newer hip-python calls.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from .runtime import Backend as _Backend
from .runtime import NoDeviceError, Properties, raise_for, strip_arch_features

_hip = None  # the hip-python module, imported on first use


def _module():
    global _hip
    if _hip is None:
        from hip import hip  # noqa: PLC0415 - optional dependency, imported lazily

        _hip = hip
    return _hip


def _text(value: Any) -> str:
    if isinstance(value, tuple):  # hip-python returns (hipSuccess, bytes) for the string functions
        value = value[-1]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def error_strings(err: Any) -> tuple[str, str]:
    """``(name, text)`` of a ``hipError_t``."""
    hip = _module()
    try:
        name = _text(hip.hipGetErrorName(err))
    except Exception:
        name = getattr(err, "name", str(err))
    try:
        text = _text(hip.hipGetErrorString(err))
    except Exception:
        text = ""
    return name, text


def _is_oom(err: Any) -> bool:
    return int(err) == int(_module().hipError_t.hipErrorOutOfMemory)


def _call(call: str, result: Any, hint: str = "") -> Any:
    """Check a hip-python result tuple; return the payload (None, one value, or a tuple of values)."""
    res = result if isinstance(result, tuple) else (result,)
    err = res[0]
    if int(err) != 0:
        name, text = error_strings(err)
        raise_for(call, int(err), name, text, out_of_memory=_is_oom(err), hint=hint)
    payload = res[1:]
    if not payload:
        return None
    return payload[0] if len(payload) == 1 else payload


def probe() -> tuple[int, str]:
    """``(device_count, reason)``; never raises."""
    try:
        hip = _module()
    except ImportError:
        return 0, "hip-python is not installed (pip install hip-python, pinned to your ROCm release)"
    except Exception as e:  # a broken install
        return 0, f"hip-python failed to import: {e}"
    try:
        res = hip.hipGetDeviceCount()
    except Exception as e:  # RuntimeError: failed to dlopen 'libamdhip64.so'
        return 0, f"the HIP runtime (libamdhip64.so) could not be loaded: {e}; install ROCm"
    try:
        count = _call("hipGetDeviceCount()", res)
    except Exception as e:
        return 0, str(e)
    if not count:
        return 0, "hipGetDeviceCount() reports no AMD GPU"
    return int(count), ""


def _int(ptr: Any) -> int:
    if ptr is None:
        return 0
    if isinstance(ptr, int):
        return ptr
    try:
        return int(ptr)
    except TypeError:
        v = ptr.as_c_void_p().value
        return int(v or 0)


class Backend(_Backend):
    vendor = "hip"
    dlpack_device_type = 10  # kDLROCM
    code_object_kinds = ("hsaco",)

    def __init__(self, index: int):
        count, why = probe()
        if count == 0:
            raise NoDeviceError(f"HIP: {why}")
        if not 0 <= index < count:
            raise NoDeviceError(f"HIP device {index} does not exist: {count} device(s) present")
        self.index = index
        self.hip = _module()

    def _activate(self) -> None:
        _call(f"hipSetDevice({self.index})", self.hip.hipSetDevice(self.index))

    def properties(self) -> Properties:
        hip = self.hip
        p = _call(f"hipGetDeviceProperties({self.index})", hip.hipGetDeviceProperties(self.index))
        full = _text(p.gcnArchName)
        grid = tuple(int(x) for x in p.maxGridSize)
        return Properties(
            vendor="hip", index=self.index, name=_text(p.name), arch=strip_arch_features(full),
            total_memory=int(p.totalGlobalMem), multiprocessors=int(p.multiProcessorCount),
            warp_size=int(p.warpSize), l2_cache_bytes=int(p.l2CacheSize),
            max_threads_per_block=int(p.maxThreadsPerBlock) or 1024,
            max_grid=grid if len(grid) == 3 and all(grid) else (2**31 - 1, 65535, 65535),  # type: ignore[arg-type]
            compute_capability=None, full_arch=full,
        )

    def mem_info(self) -> tuple[int, int]:
        self._activate()
        free, total = _call("hipMemGetInfo()", self.hip.hipMemGetInfo())
        return int(free), int(total)

    # ---- code objects
    def load_module(self, image: bytes, kind: str) -> Any:
        self._activate()
        return _call(f"hipModuleLoadData({len(image)}-byte {kind})", self.hip.hipModuleLoadData(image),
                     hint="the code object does not match this GPU or this ROCm release")

    def unload_module(self, module: Any) -> None:
        _call("hipModuleUnload()", self.hip.hipModuleUnload(module))

    def get_function(self, module: Any, name: str) -> Any:
        return _call(f"hipModuleGetFunction({name!r})", self.hip.hipModuleGetFunction(module, name.encode()))

    def launch(self, function: Any, grid: tuple[int, int, int], block: tuple[int, int, int], shared_mem: int,
               stream: Any, args: Sequence[ctypes._SimpleCData], overlap: bool = False) -> None:
        # overlap: HIP has no programmatic dependent launch; an ordinary launch (pq_wait_previous is a no-op)
        self._activate()
        _call(
            f"hipModuleLaunchKernel(grid={grid}, block={block})",
            self.hip.hipModuleLaunchKernel(function, *grid, *block, shared_mem, stream, None, extra=tuple(args)),
        )

    # ---- memory
    def alloc(self, nbytes: int) -> int:
        self._activate()
        return _int(_call(f"hipMalloc({nbytes})", self.hip.hipMalloc(nbytes)))

    def free(self, ptr: int) -> None:
        _call(f"hipFree({ptr:#x})", self.hip.hipFree(ptr))

    def _copy(self, name: str, dst: int, src: int, nbytes: int, kind: Any, stream: Any, host: bool) -> None:
        self._activate()
        _call(f"hipMemcpyAsync({name}, {nbytes})", self.hip.hipMemcpyAsync(dst, src, nbytes, kind, stream))
        if host:  # the host buffer must stay valid and be complete when we return
            self.stream_synchronize(stream)

    def memcpy_htod(self, dst: int, src_host: int, nbytes: int, stream: Any = None) -> None:
        self._copy("HostToDevice", dst, src_host, nbytes, self.hip.hipMemcpyKind.hipMemcpyHostToDevice, stream, True)

    def memcpy_dtoh(self, dst_host: int, src: int, nbytes: int, stream: Any = None) -> None:
        self._copy("DeviceToHost", dst_host, src, nbytes, self.hip.hipMemcpyKind.hipMemcpyDeviceToHost, stream, True)

    def memcpy_dtod(self, dst: int, src: int, nbytes: int, stream: Any = None) -> None:
        self._copy("DeviceToDevice", dst, src, nbytes, self.hip.hipMemcpyKind.hipMemcpyDeviceToDevice, stream, False)

    def memset(self, ptr: int, value: int, nbytes: int, stream: Any = None) -> None:
        self._activate()
        _call(f"hipMemsetAsync({ptr:#x}, {value}, {nbytes})", self.hip.hipMemsetAsync(ptr, value, nbytes, stream))

    def pointer_device(self, ptr: int) -> int | None:
        try:
            attrs = _call("hipPointerGetAttributes()", self.hip.hipPointerGetAttributes(ptr))
            return int(attrs.device)
        except Exception:
            return None

    # ---- streams, events
    def stream_create(self) -> Any:
        self._activate()
        return _call("hipStreamCreate()", self.hip.hipStreamCreate())

    def stream_destroy(self, stream: Any) -> None:
        _call("hipStreamDestroy()", self.hip.hipStreamDestroy(stream))

    def stream_synchronize(self, stream: Any = None) -> None:
        self._activate()
        _call("hipStreamSynchronize()", self.hip.hipStreamSynchronize(stream))

    def stream_handle(self, stream: Any) -> int:
        return _int(stream)

    def synchronize(self) -> None:
        self._activate()
        _call("hipDeviceSynchronize()", self.hip.hipDeviceSynchronize())

    def event_create(self) -> Any:
        self._activate()
        return _call("hipEventCreate()", self.hip.hipEventCreate())

    def event_destroy(self, event: Any) -> None:
        _call("hipEventDestroy()", self.hip.hipEventDestroy(event))

    def event_record(self, event: Any, stream: Any = None) -> None:
        _call("hipEventRecord()", self.hip.hipEventRecord(event, stream))

    def event_synchronize(self, event: Any) -> None:
        _call("hipEventSynchronize()", self.hip.hipEventSynchronize(event))

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(_call("hipEventElapsedTime()", self.hip.hipEventElapsedTime(start, end)))
