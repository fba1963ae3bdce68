"""The device side of :class:`~pyquant.tensor.QTensor`: quantized bytes on a GPU, and dequantizing them there.

On the device each row is padded to a multiple of ``MATRIX_ROW_PADDING`` (512) elements, then to a multiple of
16 bytes (:func:`~pyquant.device.launch.device_row_stride`), the padding zeroed (ggml's convention, so kernels
may read whole tiles past the row end; every row starts 16-byte aligned); ``row_stride`` is the padded row size
in bytes and is what kernels receive as ``x_row_stride_bytes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..formats import layout, row_bytes
from .launch import device_row_stride
from .memory import DeviceArray, DeviceBuffer, dtype_of
from .runtime import Device, get_device

#: Output types of the dequantize kernels, by pyquant dtype name -> the kernel-name suffix.
DEQUANTIZE_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class DeviceStorage:
    """Quantized rows on a device: ``nrows`` rows of ``row_bytes`` each, ``row_stride`` bytes apart."""

    buffer: DeviceBuffer
    nrows: int
    row_bytes: int  # unpadded bytes of one row
    row_stride: int  # padded bytes of one row (launch.device_row_stride: 512 elements, then 16 bytes)

    @property
    def device(self) -> Device:
        return self.buffer.device

    @property
    def ptr(self) -> int:
        return self.buffer.ptr


def _from_storage(storage: DeviceStorage, qtype: Any, shape: tuple[int, ...]):
    from ..tensor import QTensor

    qt = QTensor.__new__(QTensor)
    qt.qtype = qtype
    qt.shape = shape
    qt._data = None
    qt._device = storage
    return qt


def to_device(qt: Any, device: Any = "gpu"):
    """A copy of host QTensor ``qt`` on ``device`` with padded, zeroed rows."""
    dev = get_device(device)
    n = qt.shape[-1]
    nrows = math.prod(qt.shape[:-1])
    rb = row_bytes(qt.qtype, n)
    stride = device_row_stride(qt.qtype, n)
    host = np.ascontiguousarray(qt.data).reshape(nrows, rb)
    if stride != rb:
        padded = np.zeros((nrows, stride), dtype=np.uint8)
        padded[:, :rb] = host
        host = padded
    buf = DeviceBuffer(dev, nrows * stride)
    if host.nbytes:
        dev.backend.memcpy_htod(buf.ptr, host.ctypes.data, host.nbytes)
    return _from_storage(DeviceStorage(buf, nrows, rb, stride), qt.qtype, qt.shape)


def move(qt: Any, device: Any):
    """``qt`` on ``device``: itself if already there, else a device-to-device copy through the host."""
    st: DeviceStorage = qt._device
    dev = get_device(device)
    if dev is st.device:
        return qt
    return to_device(_from_host_bytes(qt), dev)


def _from_host_bytes(qt: Any):
    from ..tensor import QTensor

    return QTensor(to_host_bytes(qt), qt.qtype, qt.shape)


def to_host_bytes(qt: Any) -> np.ndarray:
    """The quantized bytes of device QTensor ``qt`` as a host array of shape ``(..., row_bytes)``."""
    st: DeviceStorage = qt._device
    raw = np.empty((st.nrows, st.row_stride), dtype=np.uint8)
    if raw.nbytes:
        st.device.backend.memcpy_dtoh(raw.ctypes.data, st.ptr, raw.nbytes)
    out = raw if st.row_stride == st.row_bytes else np.ascontiguousarray(raw[:, : st.row_bytes])
    return out.reshape(qt.shape[:-1] + (st.row_bytes,))


def cpu(qt: Any):
    """A host QTensor with the bytes of device QTensor ``qt`` (padding dropped)."""
    return _from_host_bytes(qt)


def dequantize_spec(qtype: Any, out_dtype: str, nrows: int, n: int):
    """The kernel helper's launch spec for dequantizing ``nrows`` rows of ``n`` elements to ``out_dtype``."""
    from . import launch

    return launch.dequantize_spec(qtype, out_dtype, nrows, n)


def dequantize(qt: Any, dtype: Any = None, out: DeviceArray | None = None) -> DeviceArray:
    """Dequantize device QTensor ``qt`` on its device to a new (or the given) C-contiguous device array.

    ``dtype``: float32 (default), float16 or bfloat16 — float16/bfloat16 equal ggml's float32 result rounded
    to nearest-even. The result is asynchronous on the default stream, like a CUDA/HIP library call.
    """
    st: DeviceStorage = qt._device
    dt = dtype_of(dtype)
    if dt.name not in DEQUANTIZE_DTYPES:
        raise TypeError(f"device dequantize produces float32, float16 or bfloat16, not {dt.name}")
    dev = st.device
    if out is None:
        out = DeviceArray.empty(dev, qt.shape, dt)
    else:
        if out.shape != tuple(qt.shape) or out.dtype.name != dt.name or not out.is_c_contiguous:
            raise ValueError(f"out must be a C-contiguous {dt.name} array of shape {qt.shape}, got {out!r}")
        if out.device is not dev:
            raise ValueError(f"out lives on {out.device}, the tensor on {dev}")
    n = qt.shape[-1]
    if st.nrows == 0 or n == 0:
        return out
    lay = layout(qt.qtype)
    assert n % lay.block_size == 0
    spec = dequantize_spec(qt.qtype, DEQUANTIZE_DTYPES[dt.name], st.nrows, n)
    dev.launch(spec, (st.ptr, out.ptr, st.nrows, n, st.row_stride))
    return out


def host_reference(values: np.ndarray, dtype: Any) -> np.ndarray:
    """What device dequantize to ``dtype`` must return, from the host float32 result ``values``.

    float32: the values; float16: IEEE round-to-nearest-even (ggml's ``GGML_FP32_TO_FP16``, CUDA's
    ``__float2half``); bfloat16: round-to-nearest-even on the bits, NaN kept quiet (ggml's
    ``ggml_compute_fp32_to_bf16``, CUDA's ``__float2bfloat16``), as uint16 bit patterns.
    """
    x = np.ascontiguousarray(values, dtype=np.float32)
    name = dtype_of(dtype).name
    if name == "float32":
        return x.copy()
    if name == "float16":
        with np.errstate(over="ignore"):  # overflow to inf is the rounding's answer, not an accident
            return x.astype(np.float16)
    if name == "bfloat16":
        u = x.view(np.uint32).astype(np.uint64)
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        nan = (u & 0x7FFFFFFF) > 0x7F800000
        r[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)
        return r
    raise TypeError(f"no device dequantize to {name}")
