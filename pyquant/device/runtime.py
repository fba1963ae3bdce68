"""The vendor-neutral device runtime: errors, the backend interface, code-object choice, launches.

A *backend* (``hip.py`` through hip-python, ``cuda.py`` through cuda-python) is a thin, checked wrapper
around one vendor's driver calls on raw integer addresses; everything shared — launch geometry, argument
packing, which code object fits the device, how errors read — lives here, once. :class:`Device` is what the
rest of pyquant talks to; nothing above this module knows which vendor runs.

Nothing here imports hip-python or cuda-python at module level: ``import pyquant`` must work without them.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------- errors


class DeviceError(RuntimeError):
    """A device call failed. The message names the call and the vendor's error name and text."""

    def __init__(self, message: str, *, call: str | None = None, code: int | None = None,
                 error_name: str | None = None):
        super().__init__(message)
        self.call = call
        self.code = code
        self.error_name = error_name


class DeviceMemoryError(DeviceError, MemoryError):
    """The device ran out of memory (``hipErrorOutOfMemory`` / ``CUDA_ERROR_OUT_OF_MEMORY``)."""


class NoDeviceError(DeviceError):
    """No usable GPU of the asked kind: runtime library missing, no device, or bad index."""


class CodeObjectError(DeviceError):
    """No code object fits this device (architecture not built, manifest missing, kernel missing)."""


def raise_for(call: str, code: int, error_name: str, error_text: str, out_of_memory: bool = False,
              hint: str = "") -> None:
    """Raise the exception that ``code`` (non-zero) of ``call`` stands for; written once for both vendors."""
    text = f"{call} failed: {error_name}"
    if error_text and error_text != error_name:
        text += f" ({error_text})"
    if hint:
        text += f"; {hint}"
    cls = DeviceMemoryError if out_of_memory else DeviceError
    raise cls(text, call=call, code=code, error_name=error_name)


# ---------------------------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Properties:
    """What pyquant needs to know of a device; the same fields for both vendors."""

    vendor: str  # "hip" or "cuda"
    index: int
    name: str
    arch: str  # "gfx942" (features stripped) or "sm_90"
    total_memory: int  # bytes
    multiprocessors: int  # CUs on AMD, SMs on NVIDIA
    warp_size: int  # 64 on gfx9 (CDNA/GCN), 32 on RDNA and NVIDIA
    l2_cache_bytes: int
    max_threads_per_block: int
    max_grid: tuple[int, int, int]
    compute_capability: tuple[int, int] | None = None  # NVIDIA only
    full_arch: str = ""  # gcnArchName as reported, with target features ("gfx90a:sramecc+:xnack-")


def strip_arch_features(gcn_arch_name: str) -> str:
    """``"gfx90a:sramecc+:xnack-"`` -> ``"gfx90a"``: code objects are chosen by the processor name alone."""
    return gcn_arch_name.strip().split(":", 1)[0].strip().lower()


def cuda_arch(major: int, minor: int) -> str:
    return f"sm_{major}{minor}"


# ---------------------------------------------------------------------------------------------- backend interface


class Backend:
    """One vendor's driver, one device. Addresses are ints; streams/events/modules are vendor handles.

    Every method checks the vendor's return code and raises :class:`DeviceError` naming the call.
    ``stream=None`` is the legacy default (null) stream, which orders itself with every blocking stream —
    so arrays handed to torch or CuPy (which use it by default) need no extra synchronization.
    """

    vendor: str = ""
    dlpack_device_type: int = 0  # kDLCUDA = 2, kDLROCM = 10
    code_object_kinds: tuple[str, ...] = ()

    index: int

    def properties(self) -> Properties: raise NotImplementedError
    def mem_info(self) -> tuple[int, int]: raise NotImplementedError  # (free, total) bytes
    # code objects
    def load_module(self, image: bytes, kind: str) -> Any: raise NotImplementedError
    def unload_module(self, module: Any) -> None: raise NotImplementedError
    def get_function(self, module: Any, name: str) -> Any: raise NotImplementedError

    def launch(self, function: Any, grid: tuple[int, int, int], block: tuple[int, int, int], shared_mem: int,
               stream: Any, args: Sequence[ctypes._SimpleCData], overlap: bool = False) -> None:
        """Launch with arguments already packed as ctypes values (see :func:`pack_args`).

        ``overlap``: the kernel may start before the previous kernel in the stream has finished, where the
        vendor can (a programmatic dependent launch on NVIDIA sm_90+); it waits for it in
        ``pq_wait_previous()`` before touching that kernel's output. Elsewhere an ordinary launch."""
        raise NotImplementedError

    # memory
    def alloc(self, nbytes: int) -> int: raise NotImplementedError
    def free(self, ptr: int) -> None: raise NotImplementedError
    def memcpy_htod(self, dst: int, src_host: int, nbytes: int, stream: Any = None) -> None: raise NotImplementedError
    def memcpy_dtoh(self, dst_host: int, src: int, nbytes: int, stream: Any = None) -> None: raise NotImplementedError
    def memcpy_dtod(self, dst: int, src: int, nbytes: int, stream: Any = None) -> None: raise NotImplementedError
    def memset(self, ptr: int, value: int, nbytes: int, stream: Any = None) -> None: raise NotImplementedError
    def pointer_device(self, ptr: int) -> int | None: return None  # the ordinal owning ``ptr``, if known
    # streams, events, synchronization
    def stream_create(self) -> Any: raise NotImplementedError
    def stream_destroy(self, stream: Any) -> None: raise NotImplementedError
    def stream_synchronize(self, stream: Any = None) -> None: raise NotImplementedError
    def stream_handle(self, stream: Any) -> int: raise NotImplementedError  # the integer handle (DLPack, CAI)
    def synchronize(self) -> None: raise NotImplementedError
    def event_create(self) -> Any: raise NotImplementedError
    def event_destroy(self, event: Any) -> None: raise NotImplementedError
    def event_record(self, event: Any, stream: Any = None) -> None: raise NotImplementedError
    def event_synchronize(self, event: Any) -> None: raise NotImplementedError
    def event_elapsed_ms(self, start: Any, end: Any) -> float: raise NotImplementedError


# ---------------------------------------------------------------------------------------------- launches

ARG_CTYPES = {"ptr": ctypes.c_void_p, "i64": ctypes.c_int64, "i32": ctypes.c_int32, "f32": ctypes.c_float}
_INT_RANGE = {"i64": (-(2**63), 2**63 - 1), "i32": (-(2**31), 2**31 - 1)}


def address_of(obj: Any) -> int:
    """The device address of ``obj``: an int, a pyquant buffer/array (``.ptr``) or a CAI object."""
    if obj is None:
        return 0
    if isinstance(obj, int):
        return obj
    ptr = getattr(obj, "ptr", None)
    if isinstance(ptr, int):
        return ptr
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is not None:
        return int(cai["data"][0])
    raise TypeError(f"expected a device address (int, device buffer or array), got {type(obj).__name__}")


def pack_args(arg_types: Sequence[str], args: Sequence[Any], kernel: str = "?") -> list[ctypes._SimpleCData]:
    """Kernel arguments as ctypes values in declaration order; the one place arguments are typed."""
    if len(arg_types) != len(args):
        raise TypeError(f"kernel {kernel} takes {len(arg_types)} arguments ({', '.join(arg_types)}), got {len(args)}")
    out: list[ctypes._SimpleCData] = []
    for i, (t, a) in enumerate(zip(arg_types, args, strict=True)):
        if t == "ptr":
            out.append(ctypes.c_void_p(address_of(a)))
        elif t in _INT_RANGE:
            if isinstance(a, float) or not hasattr(a, "__index__"):
                raise TypeError(f"kernel {kernel} argument {i} ({t}) must be an integer, got {a!r}")
            v = int(a)
            lo, hi = _INT_RANGE[t]
            if not lo <= v <= hi:
                raise OverflowError(f"kernel {kernel} argument {i} ({t}) out of range: {v}")
            out.append(ARG_CTYPES[t](v))
        elif t == "f32":
            out.append(ctypes.c_float(float(a)))
        else:
            raise ValueError(f"kernel {kernel}: unknown argument type {t!r}; expected one of {sorted(ARG_CTYPES)}")
    return out


def dim3(v: int | Sequence[int], what: str) -> tuple[int, int, int]:
    t = (int(v),) if isinstance(v, int) or hasattr(v, "__index__") else tuple(int(x) for x in v)
    if not 1 <= len(t) <= 3:
        raise ValueError(f"{what} must have 1 to 3 dimensions, got {v!r}")
    t = t + (1,) * (3 - len(t))
    if min(t) < 1:
        raise ValueError(f"{what} dimensions must be positive, got {t}")
    return t  # type: ignore[return-value]


def check_geometry(kernel: str, grid: tuple[int, int, int], block: tuple[int, int, int], shared_mem: int,
                   props: Properties) -> None:
    """Refuse launches the hardware would reject, with a message instead of a vendor error code."""
    threads = block[0] * block[1] * block[2]
    if threads > props.max_threads_per_block:
        raise ValueError(f"kernel {kernel}: block {block} has {threads} threads, {props.name} allows "
                         f"{props.max_threads_per_block}")
    for d in range(3):
        if grid[d] > props.max_grid[d]:
            raise ValueError(f"kernel {kernel}: grid {grid} exceeds {props.name}'s limit {props.max_grid}")
        if props.vendor == "hip" and grid[d] * block[d] >= 2**32:
            raise ValueError(f"kernel {kernel}: HIP needs grid*block < 2**32 per dimension, got {grid} x {block}")
    if shared_mem < 0:
        raise ValueError(f"kernel {kernel}: negative shared memory {shared_mem}")


# ---------------------------------------------------------------------------------------------- code objects

BUILD_HINT = "build them with: python hsaco/build.py"


def kernels_dir() -> Path:
    """Where code objects live: ``$PYQUANT_KERNELS_DIR`` or ``pyquant/kernels`` of the installed package."""
    from . import codeobjects

    return codeobjects.kernels_dir()


def read_manifest(directory: Path | None = None) -> dict:
    from . import codeobjects

    directory = directory or kernels_dir()
    try:
        return codeobjects.read_manifest(directory)
    except FileNotFoundError:
        raise CodeObjectError(f"no GPU code objects: {directory / 'manifest.json'} does not exist; {BUILD_HINT} "
                              "(clang-22/ROCm clang for AMD, nvcc for NVIDIA)") from None


def _sorted_archs(archs: Iterable[str]) -> list[str]:
    from . import codeobjects

    return sorted(archs, key=codeobjects.arch_sort_key)


@dataclass(frozen=True)
class CodeObject:
    arch: str  # manifest key: "gfx942", "sm_90", "compute_80"
    path: Path
    kind: str  # "hsaco", "cubin" or "ptx"
    kernels: tuple[str, ...]


def _kind_of(path: str) -> str:
    suffix = Path(path).suffix.lstrip(".").lower()
    return {"co": "hsaco"}.get(suffix, suffix)


def select_code_object(props: Properties, directory: Path | None = None) -> CodeObject:
    """The code object for this device's exact architecture; NVIDIA falls back to PTX (JIT by the driver)."""
    directory = directory or kernels_dir()
    man = read_manifest(directory)
    objects: dict = man.get("objects", {})
    kernels = tuple(man.get("kernels", ()))

    def make(arch: str) -> CodeObject:
        entry = objects[arch]
        path = directory / entry["file"]
        if not path.exists():
            raise CodeObjectError(f"manifest lists {entry['file']} for {arch} but {path} is missing; {BUILD_HINT}")
        return CodeObject(arch, path, _kind_of(entry["file"]), kernels)

    if props.vendor == "hip":
        shipped = _sorted_archs(a for a in objects if a.startswith("gfx"))
        if props.arch in objects:
            return make(props.arch)
        raise CodeObjectError(
            f"no code object for this GPU: {props.name} is {props.arch} ({props.full_arch or props.arch}); "
            f"pyquant ships {', '.join(shipped) or 'no AMD architectures'} in {directory}. "
            f"Build one with: python hsaco/build.py --arch {props.arch} (needs clang-22 + lld-22 or ROCm's clang)"
        )
    if props.vendor == "cuda":
        if props.arch in objects:
            return make(props.arch)
        major, minor = props.compute_capability or (0, 0)
        have = props.arch
        ptx = [a for a in objects if a.startswith("compute_")]
        usable = [a for a in ptx if (int(a[8:]) // 10, int(a[8:]) % 10) <= (major, minor)]
        if usable:  # the newest PTX the device can JIT
            return make(max(usable, key=lambda a: int(a[8:])))
        cubins = _sorted_archs(a for a in objects if a.startswith("sm_"))
        raise CodeObjectError(
            f"no code object for this GPU: {props.name} is {have}; pyquant ships {', '.join(cubins) or 'no cubins'}"
            f" and PTX for {', '.join(ptx) or 'nothing'} in {directory}; "
            f"build with: python hsaco/build.py --arch {have} (needs nvcc)"
        )
    raise CodeObjectError(f"unknown vendor {props.vendor!r}")


def _warn_if_stale(directory: Path) -> None:
    """In a source checkout, code objects older than the kernel sources give old answers: say so."""
    from . import codeobjects

    try:
        why = codeobjects.staleness(directory)
    except Exception:  # a check must never stop a load
        why = None
    if why:
        import warnings

        warnings.warn(f"pyquant: {why}", RuntimeWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------- streams and events


class Stream:
    """A device stream; destroyed when collected. ``Device.default_stream`` is the legacy null stream."""

    def __init__(self, device: Device, handle: Any = None, owned: bool = False):
        self.device = device
        self.handle = handle
        if owned:
            self._fin = weakref.finalize(self, _quiet, device.backend.stream_destroy, handle)

    def synchronize(self) -> None:
        self.device.backend.stream_synchronize(self.handle)

    @property
    def int_handle(self) -> int:
        return self.device.backend.stream_handle(self.handle)

    def __repr__(self) -> str:
        return f"Stream({self.device}, {'default' if self.handle is None else hex(self.int_handle)})"


class Event:
    """A timing event (device clock); ``end.elapsed_ms(start)`` after both are recorded."""

    def __init__(self, device: Device):
        self.device = device
        self.handle = device.backend.event_create()
        self._fin = weakref.finalize(self, _quiet, device.backend.event_destroy, self.handle)

    def record(self, stream: Stream | None = None) -> Event:
        self.device.backend.event_record(self.handle, None if stream is None else stream.handle)
        return self

    def synchronize(self) -> None:
        self.device.backend.event_synchronize(self.handle)

    def elapsed_ms(self, start: Event) -> float:
        """Milliseconds from ``start`` to this event (both recorded; waits for this one)."""
        self.synchronize()
        return self.device.backend.event_elapsed_ms(start.handle, self.handle)


def _quiet(fn, *args) -> None:
    """Release a device resource from a finalizer; at interpreter exit the driver may already be gone."""
    try:
        fn(*args)
    except Exception:
        import sys

        if not sys.is_finalizing():
            import warnings

            warnings.warn(f"pyquant.device: releasing a device resource failed ({fn.__name__})", RuntimeWarning,
                          stacklevel=1)


# ---------------------------------------------------------------------------------------------- the device


class Device:
    """One GPU behind either vendor's runtime; the interface the rest of pyquant uses.

    ``device.launch(spec, args)`` runs a kernel described by a launch spec (``kernel``, ``grid``, ``block``,
    ``shared_mem``, ``arg_types``) from the code object chosen for this device's architecture.
    """

    def __init__(self, backend: Backend):
        self.backend = backend
        self.vendor: str = backend.vendor
        self.index: int = backend.index
        self.properties: Properties = backend.properties()
        self.default_stream = Stream(self, None)
        self._lock = threading.Lock()
        self._module: Any = None
        self._code_object: CodeObject | None = None
        self._functions: dict[str, Any] = {}

    # ---- identity
    @property
    def arch(self) -> str:
        return self.properties.arch

    @property
    def name(self) -> str:
        return self.properties.name

    def __str__(self) -> str:
        return f"{self.vendor}:{self.index}"

    def __repr__(self) -> str:
        return f"Device({self.vendor}:{self.index}, {self.name!r}, {self.arch})"

    # ---- code objects and launches
    @property
    def code_object(self) -> CodeObject:
        if self._code_object is None:
            self._load()
        return self._code_object  # type: ignore[return-value]

    def _load(self) -> None:
        with self._lock:
            if self._module is not None:
                return
            co = select_code_object(self.properties)
            _warn_if_stale(co.path.parent)
            self._module = self.backend.load_module(co.path.read_bytes(), co.kind)
            self._code_object = co

    def function(self, name: str) -> Any:
        """The kernel ``name`` from this device's code object (loaded on first use, then cached)."""
        f = self._functions.get(name)
        if f is not None:
            return f
        if self._module is None:
            self._load()
        co = self._code_object
        if co is not None and co.kernels and name not in co.kernels:
            raise CodeObjectError(
                f"kernel {name} is not in {co.path.name} (manifest lists {len(co.kernels)} kernels); the code objects "
                f"are older than this pyquant; rebuild: python hsaco/build.py"
            )
        f = self.backend.get_function(self._module, name)
        self._functions[name] = f
        return f

    def launch(self, spec: Any, args: Sequence[Any], stream: Stream | None = None) -> None:
        """Launch ``spec.kernel`` over ``spec.grid`` x ``spec.block`` with ``args`` typed by ``spec.arg_types``."""
        kernel = spec.kernel
        grid, block = dim3(spec.grid, f"{kernel} grid"), dim3(spec.block, f"{kernel} block")
        shared = int(getattr(spec, "shared_mem", 0) or 0)
        check_geometry(kernel, grid, block, shared, self.properties)
        packed = pack_args(spec.arg_types, args, kernel)
        self.backend.launch(self.function(kernel), grid, block, shared, None if stream is None else stream.handle,
                            packed, overlap=bool(getattr(spec, "overlap", False)))

    # ---- memory
    def alloc(self, nbytes: int):
        """A new :class:`~pyquant.device.memory.DeviceBuffer` of ``nbytes`` (freed when collected)."""
        from .memory import DeviceBuffer

        return DeviceBuffer(self, nbytes)

    def empty(self, shape: int | Sequence[int], dtype: Any = "float32"):
        """An uninitialized C-contiguous :class:`~pyquant.device.memory.DeviceArray`."""
        from .memory import DeviceArray

        return DeviceArray.empty(self, shape, dtype)

    def from_host(self, array: Any):
        """Copy a host (numpy) array to a new device array of the same shape and dtype."""
        from .memory import DeviceArray

        return DeviceArray.from_host(self, array)

    def mem_info(self) -> tuple[int, int]:
        """``(free, total)`` device memory in bytes."""
        return self.backend.mem_info()

    # ---- synchronization and timing
    def stream(self) -> Stream:
        return Stream(self, self.backend.stream_create(), owned=True)

    def event(self) -> Event:
        return Event(self)

    def synchronize(self) -> None:
        """Wait for all work on this device."""
        self.backend.synchronize()


# ---------------------------------------------------------------------------------------------- selection

VENDORS = ("hip", "cuda")  # the order "gpu" tries: AMD first (the seed's target), then NVIDIA
_ALIASES = {"hip": "hip", "rocm": "hip", "amd": "hip", "cuda": "cuda", "nvidia": "cuda", "gpu": "gpu"}
_devices: dict[tuple[str, int], Device] = {}
_devices_lock = threading.Lock()


def _backend_module(vendor: str):
    if vendor == "hip":
        from . import hip as mod
    else:
        from . import cuda as mod
    return mod


def probe(vendor: str) -> tuple[int, str]:
    """``(device_count, reason)`` for one vendor, without raising: count 0 and why when unusable."""
    return _backend_module(vendor).probe()


def parse_device_spec(spec: Any) -> tuple[str, int | None]:
    """``"gpu"``, ``"cuda"``, ``"hip"``, ``"cuda:1"``, ``"rocm:0"`` or an index -> ``(kind, index or None)``."""
    if isinstance(spec, Device):
        return spec.vendor, spec.index
    if spec is None:
        return "gpu", None
    if isinstance(spec, bool):
        raise TypeError("device must be a name or an index, got a bool")
    if isinstance(spec, int) or (hasattr(spec, "__index__") and not isinstance(spec, str)):
        return "gpu", int(spec)
    if not isinstance(spec, str):
        s = str(spec)  # e.g. torch.device("cuda:0")
    else:
        s = spec
    s = s.strip().lower()
    name, _, idx = s.partition(":")
    if name not in _ALIASES:
        raise ValueError(f"unknown device {spec!r}; expected 'gpu', 'cuda', 'hip' (optionally ':N') or an index")
    if idx:
        if not idx.isdigit():
            raise ValueError(f"bad device index in {spec!r}")
        return _ALIASES[name], int(idx)
    return _ALIASES[name], None


def get_device(spec: Any = "gpu") -> Device:
    """The :class:`Device` for ``spec`` (cached): ``"gpu"`` picks HIP where an AMD GPU is present, else CUDA."""
    if isinstance(spec, Device):
        return spec
    kind, index = parse_device_spec(spec)
    reasons = []
    vendors: Iterable[str] = VENDORS if kind == "gpu" else (kind,)
    for vendor in vendors:
        key = (vendor, index or 0)
        dev = _devices.get(key)
        if dev is not None:
            return dev
        count, why = probe(vendor)
        if count == 0:
            reasons.append(f"{vendor.upper()}: {why}")
            continue
        if key[1] >= count:
            raise NoDeviceError(f"{vendor} device {key[1]} does not exist: {count} {vendor.upper()} device(s) present")
        with _devices_lock:
            dev = _devices.get(key)
            if dev is None:
                dev = Device(_backend_module(vendor).Backend(key[1]))
                _devices[key] = dev
        return dev
    asked = {"gpu": "GPU", "hip": "AMD GPU (HIP)", "cuda": "NVIDIA GPU (CUDA)"}[kind]
    raise NoDeviceError(f"pyquant found no usable {asked}: " + "; ".join(reasons))


def available() -> dict[str, tuple[int, str]]:
    """For each vendor, ``(device_count, reason)``; never raises."""
    return {v: probe(v) for v in VENDORS}
