"""Device memory: owned buffers, typed device arrays, and zero-copy exchange with torch, CuPy and friends.

- :class:`DeviceBuffer` owns an allocation and frees it when collected (``weakref.finalize``).
- :class:`DeviceArray` is a typed, shaped view (pointer, shape, dtype, byte strides) that keeps its owner
  alive. It exports ``__dlpack__``/``__dlpack_device__`` (DLPack 1.x capsules and legacy ones) and
  ``__cuda_array_interface__`` (v3), so ``torch.from_dlpack(a)`` / ``cupy.asarray(a)`` take it without a copy.
- :func:`as_device_array` takes any of those (torch/CuPy arrays, our own) and returns a :class:`DeviceArray`
  on the same memory, again without a copy.

DLPack structures follow dlpack.h (Apache-2.0, https://github.com/dmlc/dlpack); capsules are built with
``ctypes.pythonapi`` so that no compiled extension is needed.
"""

from __future__ import annotations

import ctypes
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------------- dtypes

KDL_INT, KDL_UINT, KDL_FLOAT, KDL_BFLOAT, KDL_BOOL = 0, 1, 2, 4, 6
KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_ROCM, KDL_CUDA_MANAGED = 1, 2, 3, 10, 13


@dataclass(frozen=True)
class DType:
    name: str
    itemsize: int
    dl_code: int
    typestr: str | None  # __cuda_array_interface__ spelling; None where the protocol has none (bfloat16)

    @property
    def numpy(self) -> np.dtype:
        """The host numpy dtype; bfloat16 comes back as its uint16 bit patterns (numpy has no bfloat16)."""
        return np.dtype("<u2") if self.name == "bfloat16" else np.dtype(self.typestr)


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("float32", 4, KDL_FLOAT, "<f4"), DType("float16", 2, KDL_FLOAT, "<f2"),
        DType("bfloat16", 2, KDL_BFLOAT, None), DType("float64", 8, KDL_FLOAT, "<f8"),
        DType("uint8", 1, KDL_UINT, "|u1"), DType("int8", 1, KDL_INT, "|i1"),
        DType("uint16", 2, KDL_UINT, "<u2"), DType("int16", 2, KDL_INT, "<i2"),
        DType("uint32", 4, KDL_UINT, "<u4"), DType("int32", 4, KDL_INT, "<i4"),
        DType("uint64", 8, KDL_UINT, "<u8"), DType("int64", 8, KDL_INT, "<i8"),
        DType("bool", 1, KDL_BOOL, "|b1"),
    )
}
_DL_TO_NAME = {(d.dl_code, d.itemsize * 8): d.name for d in DTYPES.values()}
_ALIASES = {"f32": "float32", "f16": "float16", "half": "float16", "bf16": "bfloat16", "float": "float32",
            "u8": "uint8", "i8": "int8", "i32": "int32", "i64": "int64"}


def dtype_of(dtype: Any) -> DType:
    """Resolve ``"bfloat16"``, ``"bf16"``, ``np.float16``, ``torch.bfloat16``, ml_dtypes' bfloat16, ..."""
    if isinstance(dtype, DType):
        return dtype
    if dtype is None:
        return DTYPES["float32"]
    name = None
    if isinstance(dtype, str):
        name = dtype.strip().lower()
    else:
        s = str(dtype)
        if s.startswith("torch."):  # torch.float16 / torch.bfloat16 without importing torch
            name = s[6:]
        else:
            try:
                name = np.dtype(dtype).name
            except TypeError:
                name = s.lower()
    name = _ALIASES.get(name, name)
    if name not in DTYPES:
        raise TypeError(f"unsupported device dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return DTYPES[name]


# ---------------------------------------------------------------------------------------------- buffers


class DeviceBuffer:
    """``nbytes`` of device memory on ``device``, freed when this object is collected (or :meth:`free`)."""

    __slots__ = ("device", "ptr", "nbytes", "_fin", "__weakref__")

    def __init__(self, device: Any, nbytes: int):
        nbytes = int(nbytes)
        if nbytes < 0:
            raise ValueError(f"cannot allocate {nbytes} bytes")
        self.device = device
        self.nbytes = nbytes
        if nbytes == 0:
            self.ptr = 0
            self._fin = None
            return
        from .runtime import DeviceMemoryError, _quiet

        try:
            self.ptr = device.backend.alloc(nbytes)
        except DeviceMemoryError as e:
            try:
                free, total = device.mem_info()
                have = f"{free / 2**20:.1f} MiB free of {total / 2**20:.1f} MiB"
            except Exception:
                have = "free memory unknown"
            raise DeviceMemoryError(
                f"out of device memory on {device} ({device.name}): asked for {nbytes / 2**20:.1f} MiB, {have} ({e})",
                call=e.call, code=e.code, error_name=e.error_name,
            ) from None
        self._fin = weakref.finalize(self, _quiet, device.backend.free, self.ptr)

    def free(self) -> None:
        """Release the memory now (idempotent); arrays over it must not be used afterwards."""
        if self._fin is not None:
            self._fin()

    def __repr__(self) -> str:
        return f"DeviceBuffer({self.device}, {self.nbytes} bytes at {self.ptr:#x})"


# ---------------------------------------------------------------------------------------------- arrays


def _c_strides(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    out, acc = [], itemsize
    for s in reversed(shape):
        out.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(out))


class DeviceArray:
    """A typed view of device memory: ``ptr`` (int address), ``shape``, ``dtype`` (:class:`DType`),
    ``strides`` (bytes, numpy's convention) and the ``device``; ``owner`` keeps the memory alive.

    Exchange without copies: ``torch.from_dlpack(a)``, ``cupy.asarray(a)`` / ``cupy.from_dlpack(a)``,
    ``numba.cuda.as_cuda_array(a)``. Copy to the host with :meth:`cpu`.
    """

    __slots__ = ("ptr", "shape", "dtype", "strides", "device", "owner", "readonly", "_dl_device", "__weakref__")

    def __init__(self, ptr: int, shape: Sequence[int], dtype: Any, strides: Sequence[int] | None = None,
                 device: Any = None, owner: Any = None, readonly: bool = False,
                 dl_device: tuple[int, int] | None = None):
        self.ptr = int(ptr)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype_of(dtype)
        self.strides = _c_strides(self.shape, self.dtype.itemsize) if strides is None else tuple(int(s) for s in strides)
        self.device = device
        self.owner = owner
        self.readonly = bool(readonly)
        if dl_device is None:
            if device is None:
                raise ValueError("a DeviceArray needs a device (or an explicit DLPack device)")
            dl_device = (device.backend.dlpack_device_type, device.index)
        self._dl_device = dl_device

    # ---- construction
    @classmethod
    def empty(cls, device: Any, shape: int | Sequence[int], dtype: Any = "float32") -> DeviceArray:
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        dt = dtype_of(dtype)
        buf = DeviceBuffer(device, math.prod(shape) * dt.itemsize)
        return cls(buf.ptr, shape, dt, device=device, owner=buf)

    @classmethod
    def from_host(cls, device: Any, array: Any, dtype: Any = None) -> DeviceArray:
        """Copy a host array; ``dtype="bfloat16"`` takes uint16 bit patterns (or ml_dtypes' bfloat16)."""
        a = np.ascontiguousarray(array)
        dt = dtype_of(dtype if dtype is not None else a.dtype)
        if a.dtype.itemsize != dt.itemsize:
            raise TypeError(f"host dtype {a.dtype} does not match device dtype {dt.name}")
        out = cls.empty(device, a.shape, dt)
        if a.nbytes:
            device.backend.memcpy_htod(out.ptr, a.ctypes.data, a.nbytes)
        return out

    # ---- properties
    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def is_c_contiguous(self) -> bool:
        if self.size <= 1:
            return True
        want = _c_strides(self.shape, self.dtype.itemsize)
        return all(s == w for s, w, n in zip(self.strides, want, self.shape, strict=True) if n != 1)

    def __repr__(self) -> str:
        where = self.device if self.device is not None else f"dl{self._dl_device}"
        return f"DeviceArray({where}, shape={self.shape}, dtype={self.dtype.name}, ptr={self.ptr:#x})"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d device array")
        return self.shape[0]

    # ---- host copies
    def cpu(self) -> np.ndarray:
        """A host copy (numpy). bfloat16 comes back as uint16 bit patterns: numpy has no bfloat16."""
        if not self.is_c_contiguous:
            raise ValueError("cpu() needs a C-contiguous device array; copy it on the device first")
        out = np.empty(self.shape, dtype=self.dtype.numpy)
        if out.nbytes:
            self._backend.memcpy_dtoh(out.ctypes.data, self.ptr, out.nbytes)
        return out

    numpy = cpu

    def fill_bytes(self, value: int) -> DeviceArray:
        """Set every byte to ``value`` (e.g. 0xFF: all-NaN floats, used to poison outputs in tests)."""
        if not self.is_c_contiguous:
            raise ValueError("fill_bytes needs a C-contiguous device array")
        if self.nbytes:
            self._backend.memset(self.ptr, int(value) & 0xFF, self.nbytes)
        return self

    def copy_(self, src: DeviceArray) -> DeviceArray:
        """Device-to-device copy from ``src`` (same byte size, both contiguous)."""
        if src.nbytes != self.nbytes or not (src.is_c_contiguous and self.is_c_contiguous):
            raise ValueError(f"copy_ needs two contiguous arrays of equal size, got {src.nbytes} and {self.nbytes}")
        if self.nbytes:
            self._backend.memcpy_dtod(self.ptr, src.ptr, self.nbytes)
        return self

    @property
    def _backend(self):
        if self.device is None:
            raise RuntimeError("this array has no pyquant device")
        return self.device.backend

    # ---- __cuda_array_interface__ (v3)
    @property
    def __cuda_array_interface__(self) -> dict:
        if self.device is None or self.dtype.typestr is None:
            # bfloat16 has no typestr in the protocol: consumers fall back to DLPack (hasattr is False)
            raise AttributeError(
                f"__cuda_array_interface__ is not available for {self.dtype.name} arrays; use DLPack"
                if self.device is not None else "__cuda_array_interface__ needs a device array"
            )
        stream: int | None = None
        if self.device.vendor == "cuda":
            stream = 1  # our work runs on the legacy default stream; consumers order themselves after it
        else:
            self.device.default_stream.synchronize()
        return {
            "shape": self.shape,
            "typestr": self.dtype.typestr,
            "data": (self.ptr, self.readonly),
            "strides": None if self.is_c_contiguous else self.strides,
            "version": 3,
            "stream": stream,
        }

    # ---- DLPack
    def __dlpack_device__(self) -> tuple[int, int]:
        return self._dl_device

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
        if copy:
            raise BufferError("pyquant device arrays export without copies only (copy=True is not supported)")
        if dl_device is not None and tuple(dl_device) != self._dl_device:
            raise BufferError(f"array lives on DLPack device {self._dl_device}, asked for {tuple(dl_device)}")
        if self.device is not None:
            self._order_for_consumer(stream)
        versioned = max_version is not None and int(max_version[0]) >= 1
        return export_capsule(self, versioned)

    def _order_for_consumer(self, stream: Any) -> None:
        """Make our pending work visible on the consumer's stream (our work is on the default stream)."""
        if stream is None:
            return
        if self.device.vendor == "cuda" and stream == 1:  # the legacy default stream: already ordered
            return
        if self.device.vendor == "hip" and stream == 0:
            return
        if stream == -1:  # the consumer asks for no synchronization
            return
        self.device.default_stream.synchronize()


# ---------------------------------------------------------------------------------------------- DLPack structs


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32), ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER),
        ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor),
    ]


DLPACK_VERSION = (1, 1)
DLPACK_FLAG_READ_ONLY = 1

_CAPSULE_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_api = ctypes.pythonapi
# Own function objects (not ctypes.pythonapi.X, whose argtypes other libraries may set differently).
_PyCapsule_New = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, _CAPSULE_DESTRUCTOR)(
    ("PyCapsule_New", _api))
_PyCapsule_IsValid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(("PyCapsule_IsValid", _api))
_PyCapsule_IsValid_raw = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(("PyCapsule_IsValid", _api))
_PyCapsule_GetPointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _api))
_PyCapsule_GetPointer_raw = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _api))
_PyCapsule_SetName = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(("PyCapsule_SetName", _api))

# The names must outlive every capsule: module-level bytes constants.
_NAME = b"dltensor"
_NAME_V = b"dltensor_versioned"
_USED = b"used_dltensor"
_USED_V = b"used_dltensor_versioned"

# Exported tensors alive in some consumer: struct address -> (struct, shape, strides, array). The consumer
# calls the deleter when done, which drops the entry and with it our reference to the array's memory.
_exported: dict[int, tuple] = {}
_exported_lock = threading.Lock()


@_DELETER
def _deleter(addr: int | None) -> None:
    with _exported_lock:
        _exported.pop(addr or 0, None)


@_CAPSULE_DESTRUCTOR
def _capsule_destructor(capsule: int | None) -> None:
    # A capsule nobody consumed still has its original name: the producer (we) must release it.
    try:
        for name in (_NAME, _NAME_V):
            if _PyCapsule_IsValid_raw(capsule, name):
                _deleter(_PyCapsule_GetPointer_raw(capsule, name))
                return
    except Exception:  # never let an exception escape a C destructor
        pass


def export_capsule(arr: DeviceArray, versioned: bool) -> Any:
    """A DLPack capsule viewing ``arr``'s memory; the capsule (or its consumer) keeps ``arr`` alive."""
    nd = arr.ndim
    shape = (ctypes.c_int64 * max(nd, 1))(*arr.shape)
    isz = arr.dtype.itemsize
    if any(s % isz for s in arr.strides):
        raise BufferError(f"strides {arr.strides} are not whole elements of {isz} bytes")
    strides = (ctypes.c_int64 * max(nd, 1))(*(s // isz for s in arr.strides))
    if versioned:
        m = DLManagedTensorVersioned()
        m.version.major, m.version.minor = DLPACK_VERSION
        m.flags = DLPACK_FLAG_READ_ONLY if arr.readonly else 0
        name = _NAME_V
    else:
        m = DLManagedTensor()
        name = _NAME
    t = m.dl_tensor
    t.data = arr.ptr or None
    t.device.device_type, t.device.device_id = arr.__dlpack_device__()
    t.ndim = nd
    t.dtype.code, t.dtype.bits, t.dtype.lanes = arr.dtype.dl_code, arr.dtype.itemsize * 8, 1
    t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
    t.byte_offset = 0
    m.manager_ctx = None
    m.deleter = _deleter
    addr = ctypes.addressof(m)
    with _exported_lock:
        _exported[addr] = (m, shape, strides, arr)
    return _PyCapsule_New(addr, name, _capsule_destructor)


# ---------------------------------------------------------------------------------------------- import


class _ImportedCapsule:
    """Owns a consumed DLPack tensor: calls the producer's deleter once we no longer need the memory."""

    __slots__ = ("_fin", "__weakref__")

    def __init__(self, addr: int, deleter: Any):
        self._fin = weakref.finalize(self, _call_deleter, deleter, addr) if deleter else None


def _call_deleter(deleter: Any, addr: int) -> None:
    try:
        deleter(addr)
    except Exception:
        pass


def _consume_capsule(capsule: Any) -> tuple[DLTensor, _ImportedCapsule, bool]:
    if _PyCapsule_IsValid(capsule, _NAME_V):
        addr = _PyCapsule_GetPointer(capsule, _NAME_V)
        m = DLManagedTensorVersioned.from_address(addr)
        if m.version.major > DLPACK_VERSION[0]:
            raise BufferError(f"DLPack {m.version.major}.{m.version.minor} is newer than pyquant understands")
        _PyCapsule_SetName(capsule, _USED_V)
        readonly = bool(m.flags & DLPACK_FLAG_READ_ONLY)
    elif _PyCapsule_IsValid(capsule, _NAME):
        addr = _PyCapsule_GetPointer(capsule, _NAME)
        m = DLManagedTensor.from_address(addr)
        _PyCapsule_SetName(capsule, _USED)
        readonly = False
    else:
        raise BufferError("not a DLPack capsule (or one already consumed)")
    deleter = ctypes.cast(m.deleter, ctypes.c_void_p).value
    holder = _ImportedCapsule(addr, _DELETER(deleter) if deleter else None)
    return m.dl_tensor, holder, readonly


def _from_dlpack(obj: Any, device: Any = None, allow_host: bool = False) -> DeviceArray:
    dev_type, dev_id = obj.__dlpack_device__()
    dev_type, dev_id = int(dev_type), int(dev_id)
    if dev_type not in (KDL_CUDA, KDL_ROCM, KDL_CUDA_MANAGED) and not (allow_host and dev_type == KDL_CPU):
        raise TypeError(f"{type(obj).__name__} lives on DLPack device type {dev_type}, not on a GPU; "
                        "copy it to the device first")
    if device is None and dev_type != KDL_CPU:
        from .runtime import get_device

        device = get_device(f"{'hip' if dev_type == KDL_ROCM else 'cuda'}:{dev_id}")
    stream = None
    if device is not None:
        stream = 1 if device.vendor == "cuda" else 0  # we work on the legacy default stream
    try:
        capsule = obj.__dlpack__(stream=stream, max_version=DLPACK_VERSION)
    except TypeError:  # producers older than DLPack 1.0 take no max_version
        capsule = obj.__dlpack__(stream=stream)
    t, holder, readonly = _consume_capsule(capsule)
    key = (t.dtype.code, t.dtype.bits)
    if t.dtype.lanes != 1 or key not in _DL_TO_NAME:
        raise TypeError(f"unsupported DLPack dtype code={t.dtype.code} bits={t.dtype.bits} lanes={t.dtype.lanes}")
    dt = DTYPES[_DL_TO_NAME[key]]
    shape = tuple(t.shape[i] for i in range(t.ndim))
    strides = None if not t.strides else tuple(t.strides[i] * dt.itemsize for i in range(t.ndim))
    ptr = (t.data or 0) + int(t.byte_offset)
    return DeviceArray(ptr, shape, dt, strides, device=device, owner=(holder, obj), readonly=readonly,
                       dl_device=(dev_type, dev_id))


def _from_cai(obj: Any, cai: dict, device: Any = None) -> DeviceArray:
    from .runtime import get_device

    ptr, readonly = cai["data"]
    ptr = int(ptr or 0)
    typestr = cai["typestr"]
    try:
        dt = dtype_of(np.dtype(typestr))
    except TypeError:
        raise TypeError(f"unsupported __cuda_array_interface__ typestr {typestr!r}") from None
    shape = tuple(int(s) for s in cai["shape"])
    strides = cai.get("strides")
    if device is None:
        device = get_device("gpu")
        owner_index = device.backend.pointer_device(ptr) if ptr else None
        if owner_index is not None and owner_index != device.index:
            device = get_device(f"{device.vendor}:{owner_index}")
    stream = cai.get("stream")
    if stream not in (None, 1, 2) and device.vendor == "cuda":
        # the producer's work is queued on its own stream: wait for it before we launch on ours
        device.backend.stream_synchronize(int(stream))
    return DeviceArray(ptr, shape, dt, None if strides is None else tuple(int(s) for s in strides), device=device,
                       owner=obj, readonly=bool(readonly))


def as_device_array(obj: Any, device: Any = None) -> DeviceArray:
    """A :class:`DeviceArray` on the same memory as ``obj`` (no copy).

    ``obj``: a pyquant :class:`DeviceArray`, or anything exporting ``__cuda_array_interface__`` (CuPy, torch on
    CUDA, Numba) or ``__dlpack__`` (torch on CUDA or ROCm, JAX, CuPy). The result keeps ``obj`` alive and gives
    ``ptr`` (int address), ``shape``, ``dtype``, ``strides`` (bytes) and ``device``.
    """
    if isinstance(obj, DeviceArray):
        return obj
    try:
        cai = obj.__cuda_array_interface__
    except (AttributeError, TypeError, RuntimeError):  # torch raises TypeError for bfloat16
        cai = None
    if cai is not None:
        try:
            return _from_cai(obj, cai, device)
        except TypeError:
            if not hasattr(obj, "__dlpack__"):
                raise
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        return _from_dlpack(obj, device)
    raise TypeError(f"{type(obj).__name__} is not a device array (no __cuda_array_interface__ or __dlpack__)")
