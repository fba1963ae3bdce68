"""``pyquant.linear(x, w)``: ``x @ w.T`` with ``w`` a quantized matrix (torch's ``F.linear`` convention).

``w`` is a :class:`~pyquant.QTensor` of shape ``(out, in)``; ``x`` has shape ``(..., in)``; the result has shape
``(..., out)`` and dtype float32.

- ``w`` on the host: ``x`` a NumPy float array; the CPU path (:mod:`pyquant.cpu.linear`) dequantizes slabs of
  weight rows exactly as ggml does and multiplies them in float32. The result is a NumPy array.
- ``w`` on a GPU (``w.to("gpu")``): ``x`` a device array in float32, float16 or bfloat16 (a torch or CuPy tensor,
  anything with DLPack or ``__cuda_array_interface__``, a pyquant ``DeviceArray``; a NumPy array is copied over).
  The result is a pyquant ``DeviceArray`` (``torch.from_dlpack(y)`` takes it without a copy), computed
  asynchronously on the default stream. By the number of activation rows ``n``:

  - ``n <= 8``: activations quantized to Q8_1 (the CPU's bytes), then one fused mat-vec kernel that reads each
    weight byte once for all ``n`` rows (ggml's ``mul_mat_vec_q``; float weights: a float32 mat-vec);
  - larger ``n``: mat-vec passes of 8 rows up to a per-architecture limit (24 rows on NVIDIA), then the vendor
    GEMM (cuBLAS, hipBLAS) on weights dequantized to float16 (``gemm_dtype="bfloat16"`` for weights beyond
    float16's range) and activations converted to the same type, float32 accumulation. F16/BF16 weights go to
    the GEMM as stored from 5 rows on.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from .formats import layout
from .tensor import QTensor

PATHS = ("auto", "mmv", "gemm")


def linear(x: Any, w: QTensor, *, out: Any = None, path: str = "auto", gemm_dtype: str = "float16",
           stream: Any = None) -> Any:
    """``x @ w.T`` (see the module docstring).

    ``out``: where to write the result (GPU: a C-contiguous float32 device array of shape ``(..., out)``;
    CPU: a float32 NumPy array of that shape). ``path`` (GPU): ``"auto"``, or force ``"mmv"`` / ``"gemm"``.
    ``stream`` (GPU): a ``pyquant.device.Stream`` to queue the work on (default: the legacy default stream).
    """
    if not isinstance(w, QTensor):
        raise TypeError(f"w must be a pyquant.QTensor of shape (out, in), got {type(w).__name__}")
    if len(w.shape) != 2:
        raise ValueError(f"w must have shape (out, in), got {w.shape}")
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if w._device is None:
        return _linear_cpu(x, w, out)
    return _linear_device(x, w, out, path, gemm_dtype, stream)


# ---------------------------------------------------------------------------------------------- CPU


def _linear_cpu(x: Any, w: QTensor, out: Any) -> np.ndarray:
    from .cpu.linear import linear as cpu_linear

    if hasattr(x, "__cuda_array_interface__") or hasattr(x, "__dlpack_device__") and not isinstance(x, np.ndarray):
        raise TypeError("w is on the host but x is not a NumPy array: move w to the GPU (w.to('gpu')) or x to the host")
    xa = np.asarray(x)
    if not np.issubdtype(xa.dtype, np.floating):
        raise TypeError(f"x must be a float array, got dtype {xa.dtype}")
    m, k = w.shape
    if xa.ndim == 0 or xa.shape[-1] != k:
        raise ValueError(f"x must have shape (..., {k}) to meet w of shape {w.shape}, got {xa.shape}")
    lead = xa.shape[:-1]
    if out is not None:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != lead + (m,) or \
                not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {lead + (m,)}")
    y = cpu_linear(xa.reshape(-1, k), w.data.reshape(m, -1), w.qtype, k,
                   out=None if out is None else out.reshape(-1, m))
    return y.reshape(lead + (m,)) if out is None else out


# ---------------------------------------------------------------------------------------------- GPU

_scratch: dict[tuple[int, int, str], Any] = {}
_scratch_lock = threading.Lock()


def _scratch_buffer(dev: Any, stream: Any, name: str, nbytes: int) -> int:
    """Scratch memory per (device, stream), reused across calls: work queued on one stream runs in order, so
    a later call overwrites it only after the earlier one is done. Grows as needed."""
    from .device.memory import DeviceBuffer

    key = (id(dev), 0 if stream is None else stream.int_handle, name)
    with _scratch_lock:
        buf = _scratch.get(key)
        if buf is None or buf.nbytes < nbytes:
            _scratch.pop(key, None)
            buf = DeviceBuffer(dev, max(nbytes, 256))
            _scratch[key] = buf
        return buf.ptr


_X_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


def _device_x(x: Any, dev: Any):
    from .device.memory import DeviceArray, as_device_array

    if isinstance(x, np.ndarray):
        return DeviceArray.from_host(dev, x if x.dtype in (np.float16, np.float32) else x.astype(np.float32))
    xa = as_device_array(x)
    if xa.device is not dev:
        raise ValueError(f"x lives on {xa.device}, w on {dev}: move one of them")
    return xa


def _row_stride(xa: Any, k: int) -> int:
    """Elements between consecutive rows of ``x`` seen as (n, k); refuses layouts that are not rows."""
    item = xa.dtype.itemsize
    if xa.ndim == 0:
        raise ValueError("x must have shape (..., in), got a scalar")
    if k > 1 and xa.strides[-1] != item:
        raise ValueError(f"x's last axis must be contiguous (stride {item} bytes), got strides {xa.strides}")
    if xa.ndim == 1:
        return k
    stride = xa.strides[-2]
    for i in range(xa.ndim - 3, -1, -1):  # leading axes must collapse into rows of the same stride
        if xa.shape[i] > 1 and xa.strides[i] != xa.strides[i + 1] * xa.shape[i + 1]:
            raise ValueError(f"x's leading axes do not collapse into rows (shape {xa.shape}, strides {xa.strides})")
    if stride % item or (math.prod(xa.shape[:-1]) > 1 and stride < k * item):
        raise ValueError(f"x's rows overlap or are misaligned (strides {xa.strides})")
    return stride // item


def _linear_device(x: Any, w: QTensor, out: Any, path: str, gemm_dtype: str, stream: Any) -> Any:
    from .device import blas, launch
    from .device import launch_matmul as lm
    from .device.memory import DeviceArray, dtype_of

    st = w._device
    dev = st.device
    m, k = w.shape
    xa = _device_x(x, dev)
    xd = _X_DTYPES.get(xa.dtype.name)
    if xd is None:
        raise TypeError(f"x must be float32, float16 or bfloat16 on the GPU, got {xa.dtype.name}")
    if xa.ndim == 0 or xa.shape[-1] != k:
        raise ValueError(f"x must have shape (..., {k}) to meet w of shape {w.shape}, got {xa.shape}")
    lead = xa.shape[:-1]
    n = math.prod(lead)
    if out is None:
        out = DeviceArray.empty(dev, lead + (m,), "float32")
    else:
        out = _device_x(out, dev) if not isinstance(out, np.ndarray) else None
        if out is None or out.dtype.name != "float32" or out.shape != lead + (m,) or not out.is_c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 device array of shape {lead + (m,)}")
    if n == 0 or m == 0:
        return out
    xs = _row_stride(xa, k)
    kp = lm.padded(k)
    lay = layout(w.qtype)
    arch = dev.arch
    if path == "auto":
        gemm_ok = lm.plan(w.qtype, n, arch, True) == "gemm" and blas.gemm_available(dev)
        path = lm.plan(w.qtype, n, arch, gemm_ok)

    if path == "mmv":
        if lay.is_quantized:
            ka = lm.padded_act(k)
            act = _scratch_buffer(dev, stream, "act", n * ka + n * (ka // 32) * 4)
            dev.launch(lm.quantize_spec(xd, n, k, True, lm.act_interleaved(w.qtype)), (xa.ptr, act, n, k, xs, ka),
                       stream)
            aq, ads = act, act + n * ka
            for c0 in range(0, n, lm.MAX_NCOLS):
                nc = min(lm.MAX_NCOLS, n - c0)
                dev.launch(lm.matvec_spec(w.qtype, nc, m, arch),
                           (st.ptr, aq + c0 * ka, ads + c0 * (ka // 32) * 4, out.ptr + c0 * m * 4, m, k,
                            st.row_stride, ka, m), stream)
        else:
            if xd == "f32" and k == kp and xs % 4 == 0 and xa.ptr % 16 == 0:
                xf, xstride = xa.ptr, xs  # already what the float mat-vec reads: rows of kp floats, 16-byte loads
            else:
                xf, xstride = _scratch_buffer(dev, stream, "xf32", n * kp * 4), kp
                dev.launch(lm.convert_spec(xd, "f32", n, k), (xa.ptr, xf, n, k, xs, kp), stream)
            for c0 in range(0, n, lm.MAX_NCOLS):
                nc = min(lm.MAX_NCOLS, n - c0)
                dev.launch(lm.matvec_spec(w.qtype, nc, m, arch),
                           (st.ptr, xf + c0 * xstride * 4, 0, out.ptr + c0 * m * 4, m, k, st.row_stride, xstride,
                            m), stream)
        return out

    # GEMM: A = the weights as 16-bit (or float32) rows, B = the activations converted to the same type
    if lay.is_quantized:
        gd = _X_DTYPES[dtype_of(gemm_dtype).name]
        if gd == "f32":
            raise ValueError("gemm_dtype must be float16 or bfloat16 for quantized weights")
        a = _scratch_buffer(dev, stream, "wdeq", m * k * 2)
        dev.launch(launch.dequantize_spec(w.qtype, gd, m, k), (st.ptr, a, m, k, st.row_stride), stream)
        lda = k
    else:
        gd = {"F32": "f32", "F16": "f16", "BF16": "bf16"}[lay.name]
        a = st.ptr
        lda = st.row_stride // lay.type_size
    b = _scratch_buffer(dev, stream, "xgemm", n * kp * (4 if gd == "f32" else 2))
    dev.launch(lm.convert_spec(xd, gd, n, k), (xa.ptr, b, n, k, xs, kp), stream)
    blas.gemm(dev, a, b, out.ptr, m, n, k, lda, kp, m, gd, None if stream is None else stream.int_handle)
    return out
