"""The vendor GEMM for large batches: cuBLAS on NVIDIA (ctypes on ``libcublas``), hipBLAS on AMD (through the
ROCm Python bindings' ``rocm.bindings.hipblas``; hipBLAS runs rocBLAS or hipBLASLt underneath).

One operation: ``C[n][m] = B[n][k] @ A[m][k].T`` with A and B row-major half/bfloat16/float32 (leading
dimensions ``lda``, ``ldb`` in elements) and C float32 row-major (``ldc``), float32 accumulation. In the
vendors' column-major terms that is ``C^T (m x n) = op_T(A) (m x k) * B^T (k x n)``.

Nothing is imported or loaded until the first GEMM; :func:`gemm_available` says whether one will work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
import threading
from typing import Any

from .runtime import DeviceError

WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper
_DTYPES = {"f16": (2, 2), "bf16": (14, 14), "f32": (0, 0)}  # name -> (cudaDataType, hipDataType): same numbers
_R_32F = 0

_lock = threading.Lock()
_handles: dict[tuple[str, int], Any] = {}
_unavailable: dict[str, str] = {}


class BlasUnavailable(DeviceError):
    """No vendor BLAS could be loaded; the message says what was tried."""


# ---------------------------------------------------------------------------------------------- cuBLAS

_CUBLAS_NAMES = ("libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so")


def _cublas_candidates() -> list[str]:
    """Where libcublas may be: $PYQUANT_CUBLAS, the pip wheels (nvidia-cublas, torch's), CUDA_HOME, the loader."""
    out: list[str] = []
    env = os.environ.get("PYQUANT_CUBLAS")
    if env:
        out.append(env)
    for base in sys.path:
        if not base or not os.path.isdir(base):
            continue
        for sub in ("nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib"):
            for name in _CUBLAS_NAMES:
                out += sorted(glob.glob(os.path.join(base, sub, name)))
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            for name in _CUBLAS_NAMES:
                out += sorted(glob.glob(os.path.join(home, "lib64", name)))
    found = ctypes.util.find_library("cublas")
    if found:
        out.append(found)
    out += list(_CUBLAS_NAMES)  # the loader's own search path
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


class _Cublas:
    def __init__(self, device: Any):
        errors = []
        lib = None
        for path in _cublas_candidates():
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                errors.append(f"{path}: {e}")
        if lib is None:
            raise BlasUnavailable("cuBLAS not found (pip install nvidia-cublas, or set PYQUANT_CUBLAS to "
                                  "libcublas.so): " + "; ".join(errors[-3:]))
        self.lib = lib
        self.device = device
        vp, i32 = ctypes.c_void_p, ctypes.c_int
        lib.cublasCreate_v2.argtypes = [ctypes.POINTER(vp)]
        lib.cublasSetStream_v2.argtypes = [vp, vp]
        lib.cublasGemmEx.argtypes = [vp, i32, i32, i32, i32, i32, vp, vp, i32, i32, vp, i32, i32, vp, vp, i32, i32,
                                     i32, i32]
        try:
            lib.cublasGetStatusName.restype = ctypes.c_char_p
            lib.cublasGetStatusName.argtypes = [i32]
        except AttributeError:
            pass
        device.backend.synchronize()  # the primary context is current: cuBLAS (runtime API) shares it
        h = vp()
        self._check("cublasCreate_v2", lib.cublasCreate_v2(ctypes.byref(h)))
        self.handle = h
        # a workspace of our own: cuBLAS then allocates nothing per call, which also makes it capturable into
        # CUDA graphs (benchmarks/matmul.py times through graphs)
        from .memory import DeviceBuffer

        self.workspace = DeviceBuffer(device, WORKSPACE_BYTES)
        lib.cublasSetWorkspace_v2.argtypes = [vp, vp, ctypes.c_size_t]
        self._check("cublasSetWorkspace_v2",
                    lib.cublasSetWorkspace_v2(h, self.workspace.ptr, self.workspace.nbytes))
        self.alpha = ctypes.c_float(1.0)
        self.beta = ctypes.c_float(0.0)

    def _check(self, call: str, status: int) -> None:
        if status != 0:
            name = f"CUBLAS_STATUS {status}"
            try:
                name = self.lib.cublasGetStatusName(status).decode()
            except Exception:
                pass
            raise DeviceError(f"{call} failed: {name}", call=call, code=status, error_name=name)

    def gemm(self, a: int, b: int, c: int, m: int, n: int, k: int, lda: int, ldb: int, ldc: int, dtype: str,
             stream: Any) -> None:
        t = _DTYPES[dtype][0]
        self._check("cublasSetStream_v2", self.lib.cublasSetStream_v2(self.handle, stream or None))
        # C^T (m x n, ld ldc) = A^T (op T of the k x m column-major A) * B^T (k x n column-major B)
        self._check("cublasGemmEx", self.lib.cublasGemmEx(
            self.handle, 1, 0, m, n, k, ctypes.addressof(self.alpha), a, t, lda, b, t, ldb,
            ctypes.addressof(self.beta), c, _R_32F, ldc, 68, -1))  # CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT


# ---------------------------------------------------------------------------------------------- hipBLAS


class _Hipblas:
    def __init__(self, device: Any):
        try:
            from rocm.bindings import hipblas  # pip install rocm-bindings-libraries (hip-python's family)
        except ImportError as e:
            raise BlasUnavailable(f"hipBLAS bindings missing ({e}); pip install rocm-bindings-libraries matching "
                                  "your ROCm release") from None
        self.hb = hipblas
        self.device = device
        device.backend.synchronize()  # makes the device current
        try:
            status, handle = hipblas.hipblasCreate()
        except RuntimeError as e:  # libhipblas.so not loadable
            raise BlasUnavailable(f"hipBLAS library not loadable: {e}") from None
        self._check("hipblasCreate", status)
        self.handle = handle
        self.alpha = ctypes.c_float(1.0)
        self.beta = ctypes.c_float(0.0)
        self.op_n = hipblas.hipblasOperation_t.HIPBLAS_OP_N
        self.op_t = hipblas.hipblasOperation_t.HIPBLAS_OP_T
        self.compute = hipblas.hipblasComputeType_t.HIPBLAS_COMPUTE_32F
        self.algo = hipblas.hipblasGemmAlgo_t.HIPBLAS_GEMM_DEFAULT

    def _check(self, call: str, status: Any) -> None:
        if int(status) != 0:
            name = getattr(status, "name", str(status))
            raise DeviceError(f"{call} failed: {name}", call=call, code=int(status), error_name=name)

    def gemm(self, a: int, b: int, c: int, m: int, n: int, k: int, lda: int, ldb: int, ldc: int, dtype: str,
             stream: Any) -> None:
        from rocm.bindings import hip as hipmod

        t = hipmod.hipDataType(_DTYPES[dtype][1])
        r32 = hipmod.hipDataType(_R_32F)
        (status,) = _as_tuple(self.hb.hipblasSetStream(self.handle, stream))
        self._check("hipblasSetStream", status)
        (status,) = _as_tuple(self.hb.hipblasGemmEx(
            self.handle, self.op_t, self.op_n, m, n, k, ctypes.addressof(self.alpha), a, t, lda, b, t, ldb,
            ctypes.addressof(self.beta), c, r32, ldc, self.compute, self.algo))
        self._check("hipblasGemmEx", status)


def _as_tuple(r: Any) -> tuple:
    return r if isinstance(r, tuple) else (r,)


# ---------------------------------------------------------------------------------------------- entry points


def _get(device: Any):
    key = (device.vendor, device.index)
    h = _handles.get(key)
    if h is not None:
        return h
    if device.vendor in _unavailable:
        raise BlasUnavailable(_unavailable[device.vendor])
    with _lock:
        h = _handles.get(key)
        if h is None:
            try:
                h = _Cublas(device) if device.vendor == "cuda" else _Hipblas(device)
            except BlasUnavailable as e:
                _unavailable[device.vendor] = str(e)
                raise
            _handles[key] = h
    return h


def gemm_available(device: Any) -> bool:
    """Whether :func:`gemm` can run on ``device`` (loads the library on first call; never raises)."""
    try:
        _get(device)
        return True
    except Exception:
        return False


def gemm(device: Any, a: int, b: int, c: int, m: int, n: int, k: int, lda: int, ldb: int, ldc: int,
         dtype: str, stream: Any = None) -> None:
    """``C[n][m] = B[n][k] @ A[m][k].T`` (row-major; ``dtype`` of A and B: f16, bf16 or f32; C float32)."""
    if dtype not in _DTYPES:
        raise ValueError(f"gemm inputs must be f16, bf16 or f32, got {dtype!r}")
    if min(m, n, k) <= 0:
        return
    _get(device).gemm(int(a), int(b), int(c), int(m), int(n), int(k), int(lda), int(ldb), int(ldc), dtype, stream)
